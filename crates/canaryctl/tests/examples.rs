//! Every `canaryctl` example the project shows a user runs here, so an example that stops working fails CI:
//! the commands in the code blocks of README.md and docs/*.md, and every example of `canaryctl --help` and of
//! each subcommand's help (a whole command, or a flag's example run on the subcommand it belongs to).
//!
//! They run offline. `plan` and `help` run whole and must succeed (exit 0). Every other command runs up to its
//! first AWS call, against an endpoint where nothing listens, and must get that far: exit 4, AWS could not be
//! reached. So its command line parsed, its files were read, and its request was built and checked; a wrong
//! flag (2), a refused request (3) or a missing file fails the example. Placeholders a reader replaces
//! (`EXECUTION_ARN`, `PORT`, `...`) are replaced by values of the right shape; any other one fails the test,
//! so a new placeholder is added here on purpose.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:canary-rollout";
const EXECUTION_NAME: &str = "orders-api-live-v43-20261128T120000Z";
const SUBCOMMANDS: [&str; 12] =
    ["plan", "start", "status", "watch", "list", "history", "undo", "retry", "promote", "abort", "pause", "resume"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port on 127.0.0.1 where nothing listens (just released by the kernel).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A shared AWS config with the profile the examples name, so `--profile` resolves to fake credentials.
fn aws_config_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("canaryctl-examples-{}.ini", std::process::id()));
    let profile =
        "[profile prod-deployer]\nregion = eu-west-1\naws_access_key_id = testing\naws_secret_access_key = testing\n";
    std::fs::write(&path, profile).unwrap();
    path
}

/// Replaces the placeholders a reader fills in by values of the right shape; fails on one it does not know.
fn fill(command: &str, port: u16) -> String {
    let execution_arn = format!("{}:{EXECUTION_NAME}", STATE_MACHINE.replace(":stateMachine:", ":execution:"));
    let mut words = Vec::new();
    for word in command.split_whitespace() {
        let word = match word {
            "EXECUTION_ARN" | "\"$EXECUTION_ARN\"" | "$EXECUTION_ARN" => execution_arn.clone(),
            // The CI examples' shell variables.
            "\"$FUNCTION_NAME\"" | "$FUNCTION_NAME" => "orders-api".to_string(),
            "\"$NEW\"" | "\"$new\"" => "43".to_string(),
            "ARN" | "\"$ARN\"" | "$ARN" => STATE_MACHINE.to_string(),
            "..." => EXECUTION_NAME.to_string(),
            "\"$NEW_VERSION\"" | "$NEW_VERSION" => "43".to_string(),
            w if w.starts_with("http://127.0.0.1:") => format!("http://127.0.0.1:{port}"),
            w => w.to_string(),
        };
        let placeholder = word.len() >= 3 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        assert!(!placeholder, "`{command}`: unknown placeholder {word}: give a concrete value, or teach this test it");
        words.push(word);
    }
    words.join(" ")
}

/// The `canaryctl` commands in the fenced code blocks of a Markdown file: continuation lines joined,
/// comments dropped, the program's path (`target/debug/canaryctl`) reduced to its name.
fn commands_in_markdown(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let (mut in_block, mut pending) = (false, String::new());
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.split(" #").next().unwrap_or_default().trim_end();
        pending.push_str(line.trim_end_matches('\\'));
        if line.ends_with('\\') {
            pending.push(' ');
            continue;
        }
        let command = std::mem::take(&mut pending);
        let mut words = command.split_whitespace();
        if words.next().is_some_and(|program| program == "canaryctl" || program.ends_with("/canaryctl")) {
            commands.push(format!("canaryctl {}", words.collect::<Vec<_>>().join(" ")));
        }
    }
    commands
}

/// The `canaryctl` commands of a CI definition's shell steps (YAML `run:`/`script:` blocks): continuation lines
/// joined, quotes kept for [`fill`], what follows a redirection or a pipe dropped, `echo` lines and comments
/// left out.
fn commands_in_ci(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches("- ").trim();
        if pending.is_empty() && !line.starts_with("canaryctl ") {
            continue;
        }
        pending.push_str(line.trim_end_matches('\\'));
        if line.ends_with('\\') {
            pending.push(' ');
            continue;
        }
        let command = std::mem::take(&mut pending);
        let command = command.split(['>', '|']).next().unwrap_or_default().trim().to_string();
        commands.push(command);
    }
    commands
}

/// Runs `canaryctl` with `args` offline: fake credentials, one attempt per call, `AWS_ENDPOINT_URL` where
/// nothing listens. Returns the exit code and what it printed on stderr.
fn run(args: &[String], port: u16, config: &Path) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_canaryctl"));
    command.env_clear();
    // Under coverage, the binary writes its profile where cargo-llvm-cov says, not into the working directory.
    if let Ok(profile) = std::env::var("LLVM_PROFILE_FILE") {
        command.env("LLVM_PROFILE_FILE", profile);
    }
    let output = command
        .args(args)
        .current_dir(root())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", config)
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("CANARY_STATE_MACHINE_ARN", STATE_MACHINE)
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Runs one example and checks it got as far as it should.
fn check(example: &str, where_from: &str, port: u16, config: &Path) {
    let filled = fill(example, port);
    let args: Vec<String> = filled.split_whitespace().skip(1).map(str::to_string).collect();
    let subcommand = args.iter().find(|a| SUBCOMMANDS.contains(&a.as_str()) || *a == "help");
    let (code, stderr) = run(&args, port, config);
    let expected = match subcommand.map(String::as_str) {
        Some("plan" | "help") | None => 0,
        _ => 4,
    };
    assert_eq!(code, expected, "{where_from}: `{example}` (run as `{filled}`) exited {code}:\n{stderr}");
    if expected == 4 {
        assert!(stderr.contains("could not reach AWS"), "{where_from}: `{example}`: {stderr}");
    }
}

#[test]
fn every_example_in_the_readme_and_docs_runs() {
    let (port, config) = (closed_port(), aws_config_file());
    let mut files = vec![root().join("README.md")];
    files.extend(
        std::fs::read_dir(root().join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut count = 0;
    for file in files {
        for example in commands_in_markdown(&std::fs::read_to_string(&file).unwrap()) {
            check(&example, &file.display().to_string(), port, &config);
            count += 1;
        }
    }
    assert!(count >= 15, "only {count} examples found in README.md and docs/");
}

/// Every `canaryctl` command of the CI examples runs as the others do (a pipeline whose command stopped
/// parsing would fail only in a user's CI).
#[test]
fn every_command_of_the_ci_examples_runs() {
    let (port, config) = (closed_port(), aws_config_file());
    let mut count = 0;
    for file in ["docs/ci/github-actions.yml", "docs/ci/gitlab-deploy.yml"] {
        for example in commands_in_ci(&std::fs::read_to_string(root().join(file)).unwrap()) {
            check(&example, file, port, &config);
            count += 1;
        }
    }
    assert!(count >= 5, "only {count} canaryctl commands found in the CI examples");
}

/// The JSON the docs show canaryctl printing is valid under the published output schema: each `watch -o json`
/// line of docs/operators.md against its `EventLine`.
#[test]
fn the_docs_json_examples_hold_to_the_output_schema() {
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/canaryctl-output.schema.json")).unwrap())
            .unwrap();
    schema.as_object_mut().unwrap().remove("anyOf");
    schema["$ref"] = schema["x-commands"]["watch"].clone();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let operators = std::fs::read_to_string(root().join("docs/operators.md")).unwrap();
    let events: Vec<serde_json::Value> = operators
        .lines()
        .filter(|l| l.starts_with("{\"event_version\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!events.is_empty(), "docs/operators.md shows no watch event");
    for event in &events {
        let errors: Vec<String> =
            validator.iter_errors(event).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "docs/operators.md: {event}: {errors:?}");
    }
}

/// The help text of `canaryctl` (no subcommand) or of one subcommand.
fn help(subcommand: Option<&str>) -> String {
    let args: Vec<String> = ["help"].into_iter().chain(subcommand).map(str::to_string).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_canaryctl")).args(&args).output().unwrap();
    assert!(output.status.success(), "canaryctl {args:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// What a flag's example needs besides itself to run on `subcommand`: the arguments it requires, each
/// left out when the example gives it.
fn completing(subcommand: &str, example: &str) -> Vec<String> {
    let request = [("--function", "orders-api"), ("--alias", "live"), ("--version", "42")];
    let given = |flag: &str| example.split_whitespace().any(|w| w == flag);
    // `--function NAME:VERSION` gives its version.
    let words: Vec<&str> = example.split_whitespace().collect();
    let versioned = words
        .windows(2)
        .any(|w| w[0] == "--function" && w[1].rsplit_once(':').is_some_and(|(_, v)| v.parse::<u64>().is_ok()));
    match subcommand {
        "plan" | "start" => request
            .iter()
            .filter(|(flag, _)| !(given(flag) || (versioned && *flag == "--version")))
            .flat_map(|(f, v)| [f.to_string(), v.to_string()])
            .collect(),
        "list" => Vec::new(),
        "history" | "undo" => vec!["orders-api".to_string(), "live".to_string()],
        _ => vec![EXECUTION_NAME.to_string()],
    }
}

#[test]
fn every_example_in_the_help_runs() {
    let (port, config) = (closed_port(), aws_config_file());
    let mut seen = BTreeSet::new();
    let top = help(None);
    // The top-level help's list of examples: whole commands.
    for line in top.lines().map(str::trim).filter(|l| l.starts_with("canaryctl ")) {
        check(line, "canaryctl --help", port, &config);
        seen.insert(line.to_string());
    }
    for subcommand in SUBCOMMANDS {
        let text = help(Some(subcommand));
        // Flag help spans lines; an example runs to the end of its line, less a closing remark in brackets
        // and what clap adds after it (`[default: ...]`).
        for example in text.split("Example: ").skip(1) {
            let example = example.lines().next().unwrap_or_default();
            let example = example.split(" (").next().unwrap_or_default();
            let example = example.split(" [").next().unwrap_or_default().trim();
            let command = match example.split_whitespace().next() {
                Some(first) if SUBCOMMANDS.contains(&first) => format!("canaryctl {example}"),
                _ => format!("canaryctl {subcommand} {example} {}", completing(subcommand, example).join(" ")),
            };
            if seen.insert(command.clone()) {
                check(&command, &format!("canaryctl help {subcommand}"), port, &config);
            }
        }
    }
    assert!(seen.len() >= 30, "only {} examples found in the help", seen.len());
}
