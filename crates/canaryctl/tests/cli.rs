//! `canaryctl` as CI runs it: the real binary, its output and its exit codes.

use serde_json::{Value, json};
use std::process::{Command, Output};

fn canaryctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canaryctl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("CANARY_STATE_MACHINE_ARN")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn plan_json_lists_every_weight_ending_at_100() {
    let output = canaryctl(&["plan", "--input", "tests/fixtures/linear.json", "--output", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let mut expected: Vec<Value> = (1..=9).map(|k| json!({"percent": k as f64 * 10.0, "hold_seconds": 60})).collect();
    expected.push(json!({"percent": 100.0, "hold_seconds": 0}));
    assert_eq!(plan["steps"], Value::Array(expected));
    assert_eq!(plan["total_seconds"], 540);
    assert_eq!(plan["estimated_seconds"], 540 + 9 * 120);
    assert_eq!(plan["request"]["health"]["min_invocations"], 20);
}

#[test]
fn plan_says_how_provisioned_concurrency_is_shared() {
    let args = ["plan", "--input", "tests/fixtures/linear.json", "--provisioned-concurrency", "10"];
    let text = stdout(&canaryctl(&args));
    assert!(text.contains("has 10 provisioned concurrency") && text.contains("about 1 at 10%, 2 at 20%"), "{text}");
    let json: Value = serde_json::from_str(&stdout(&canaryctl(&[&args[..], &["-o", "json"]].concat()))).unwrap();
    assert!(json["provisioned_concurrency"].as_str().unwrap().contains("9 at 90%"), "{json}");
    let none: Value =
        serde_json::from_str(&stdout(&canaryctl(&["plan", "--input", "tests/fixtures/linear.json", "-o", "json"])))
            .unwrap();
    assert!(none.get("provisioned_concurrency").is_none());
}

#[test]
fn plan_accepts_the_legacy_form() {
    let output = canaryctl(&["plan", "--input", "tests/fixtures/legacy.json", "--output", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let percents: Vec<f64> = plan["steps"].as_array().unwrap().iter().map(|s| s["percent"].as_f64().unwrap()).collect();
    assert_eq!(percents, [25.0, 50.0, 75.0, 100.0]);
    assert_eq!(plan["request"]["strategy"]["linear"]["interval_seconds"], 120);

    let text = canaryctl(&["plan", "--input", "tests/fixtures/legacy.json"]);
    assert!(text.status.success());
    let text = stdout(&text);
    assert!(text.contains("Rollout of MyFunction:MyAlias to version 2"), "{text}");
    assert!(text.contains("75%") && text.contains("2m00s"), "{text}");
}

#[test]
fn plan_refuses_bad_input_naming_the_field() {
    let output = canaryctl(&["plan", "--input", "tests/fixtures/typo.json"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("strategy.linear.intervl_seconds"), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
    let missing = canaryctl(&["plan", "--input", "tests/fixtures/nope.json"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn plan_reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_canaryctl"))
        .args(["plan", "--input", "-", "--output", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            br#"{"function":"f","alias":"a","version":"3","strategy":{"all_at_once":{}},"health":{"enabled":false}}"#,
        )
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["steps"], json!([{"percent": 100.0, "hold_seconds": 0}]));
}

/// A bad request never reaches AWS: the endpoint here does not exist, and the refusal comes first.
#[test]
fn start_refuses_bad_input_before_calling_aws() {
    let output = canaryctl(&[
        "start",
        "--function",
        "orders-api",
        "--alias",
        "live",
        "--version",
        "$LATEST",
        "--state-machine-arn",
        "arn:aws:states:us-east-1:123456789012:stateMachine:canary",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--region",
        "us-east-1",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("version: $LATEST"), "{}", stderr(&output));
}

#[test]
fn start_needs_a_state_machine() {
    let output = canaryctl(&["start", "--input", "tests/fixtures/linear.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--state-machine-arn"), "{}", stderr(&output));
    assert!(stderr(&output).contains("or set CANARY_STATE_MACHINE_ARN"), "names the variable: {}", stderr(&output));
}

/// A request file is bounded: a device or a huge file is refused naming the limit, not read until memory runs
/// out; a request with a great many problems names the first ones and counts the rest.
#[test]
fn input_is_bounded_and_so_is_the_list_of_its_problems() {
    let output = canaryctl(&["plan", "--input", "/dev/zero"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("more than 1024 KiB"), "{}", stderr(&output));
    let dir = std::env::temp_dir().join(format!("canaryctl-bounded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alarms: Vec<String> = (0..200).map(|_| String::new()).collect();
    let request = json!({"function": "", "alias": "", "version": "", "health": {"alarms": alarms}});
    let file = dir.join("bad.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let output = canaryctl(&["plan", "--input", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.lines().count() < 40, "{text}");
    assert!(text.contains("more problems (the first 20 are shown)"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_percentage_may_be_written_with_its_sign() {
    let output = canaryctl(&["plan", "--function", "orders", "--alias", "live", "--version", "2", "--linear", "25%"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("25%"), "{}", stdout(&output));
}

#[test]
fn an_unreachable_aws_is_exit_code_4() {
    let output = Command::new(env!("CARGO_BIN_EXE_canaryctl"))
        .args([
            "start",
            "--input",
            "tests/fixtures/linear.json",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--region",
            "us-east-1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CANARY_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:canary")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    // The first call reads the state machine's definition, for the deployment facts Prepare checks against.
    assert!(stderr(&output).contains("could not read the state machine"), "{}", stderr(&output));
}

#[test]
fn completion_scripts_complete_the_subcommands_and_refuse_unknown_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let output = canaryctl(&["completion", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        for word in ["canaryctl", "start", "watch", "abort", "--state-machine-arn"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let unknown = canaryctl(&["completion", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2), "a usage error");
}

#[test]
fn schema_prints_the_published_request_schema() {
    let output = canaryctl(&["schema"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string("../../docs/request.schema.json").unwrap()).unwrap();
    assert_eq!(printed, published);
    let output = canaryctl(&["schema", "request-file"]);
    let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string("../../docs/request-file.schema.json").unwrap()).unwrap();
    assert_eq!(printed, published);
}

#[test]
fn help_documents_the_exit_codes() {
    let output = canaryctl(&["--help"]);
    assert!(stdout(&output).contains("3  the request was refused"));
}

#[test]
fn plan_says_which_steps_are_judged() {
    let linear = canaryctl(&["plan", "--input", "tests/fixtures/linear.json", "--output", "json"]);
    let plan: Value = serde_json::from_str(&stdout(&linear)).unwrap();
    assert_eq!(plan["judged_steps"], json!((1..=9).collect::<Vec<_>>()), "the final 100% is not held");
    let text = stdout(&canaryctl(&["plan", "--input", "tests/fixtures/linear.json"]));
    assert!(text.contains("9 of 10 steps are judged after their hold; the final step (100%) is not"), "{text}");
    // Legacy `steps: 1` is all of the traffic at once, judged after one interval.
    let one = canaryctl(&["plan", "--input", "tests/fixtures/legacy-one-step.json", "--output", "json"]);
    let plan: Value = serde_json::from_str(&stdout(&one)).unwrap();
    assert_eq!(plan["steps"], json!([{"percent": 100.0, "hold_seconds": 300}]));
    assert_eq!(plan["judged_steps"], json!([1]));
    let text = stdout(&canaryctl(&["plan", "--input", "tests/fixtures/legacy-one-step.json"]));
    assert!(text.contains("Every step is judged after its hold, the final 100% included."), "{text}");
}

#[test]
fn plan_refuses_every_request_of_the_corpus_naming_its_field() {
    let rows: Vec<Value> = serde_json::from_str(include_str!("../../canary-core/tests/refused-requests.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("canaryctl-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut refused = 0;
    for (i, row) in rows.iter().enumerate().filter(|(_, r)| r.get("live").is_none()) {
        let text = row.get("text").and_then(Value::as_str).map_or_else(|| row["request"].to_string(), str::to_string);
        let path = dir.join(format!("{i}.json"));
        std::fs::write(&path, text).unwrap();
        let output = canaryctl(&["plan", "--input", path.to_str().unwrap()]);
        let (why, field) = (row["why"].as_str().unwrap(), row["field"].as_str().unwrap());
        assert_eq!(output.status.code(), Some(3), "{why}: {}", stderr(&output));
        assert!(stderr(&output).contains(&format!("{field}: ")), "{why}: {}", stderr(&output));
        assert!(stdout(&output).is_empty(), "{why}");
        refused += 1;
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(refused >= 100, "{refused}");
}

#[test]
fn a_reader_that_stops_early_does_not_make_it_panic() {
    use std::process::Stdio;
    // `canaryctl plan ... | head -1`: the reader is gone before canaryctl writes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_canaryctl"))
        .args(["plan", "--input", "tests/fixtures/linear.json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = stderr(&output);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert!(output.status.success() || output.status.signal() == Some(13), "{:?}", output.status);
}

/// canaryctl against a loopback port where nothing listens, with the environment `env` and nothing else:
/// no profile, no metadata service (nothing leaves the machine).
fn unreachable(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = std::env::temp_dir().join(format!("canaryctl-home-{}", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_canaryctl"));
    command.args(args).args(["--endpoint-url", "http://127.0.0.1:9"]).env_clear();
    command.env("HOME", &home).env("AWS_EC2_METADATA_DISABLED", "true").env("PATH", "/usr/bin:/bin");
    // Under coverage, the binary writes its profile where cargo-llvm-cov says, not into the working directory.
    if let Ok(profile) = std::env::var("LLVM_PROFILE_FILE") {
        command.env("LLVM_PROFILE_FILE", profile);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn an_unknown_profile_is_named_as_such_not_as_missing_credentials() {
    let execution = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
    let dir = std::env::temp_dir().join(format!("canaryctl-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[profile ci]\naws_access_key_id = testing\naws_secret_access_key = testing\n").unwrap();
    let files = [("AWS_CONFIG_FILE", config.to_str().unwrap()), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")];
    let unknown = unreachable(&["--profile", "nope", "status", execution], &files);
    assert_eq!(unknown.status.code(), Some(4));
    let said = stderr(&unknown);
    assert!(said.contains("--profile names profile \"nope\"") && said.contains("list-profiles"), "{said}");
    let by_env = unreachable(&["status", execution], &[files[0], files[1], ("AWS_PROFILE", "nope")]);
    assert!(stderr(&by_env).contains("AWS_PROFILE names profile \"nope\""), "{}", stderr(&by_env));
    // A profile that exists goes on to AWS (here: nothing listens, exit 4 with that reason).
    let known = unreachable(&["--profile", "ci", "status", execution], &files);
    assert!(stderr(&known).contains("could not reach AWS"), "{}", stderr(&known));
}

#[test]
fn debug_logs_each_aws_call_on_stderr_and_is_quiet_otherwise() {
    let execution = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
    let keys = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];
    let debug = unreachable(&["--debug", "status", execution], &keys);
    assert_eq!(debug.status.code(), Some(4));
    // One line a call: the service, the operation, where it went, its attempts, and how it ended.
    let said = stderr(&debug);
    let calls: Vec<&str> = said.lines().filter(|l| l.starts_with("aws: ")).collect();
    assert!(
        !calls.is_empty() && calls.iter().all(|l| l.contains("SFN DescribeExecution at http://127.0.0.1:")),
        "{}",
        stderr(&debug)
    );
    assert!(calls.iter().all(|l| l.ends_with(", failed")), "{calls:?}");
    assert!(
        stderr(&debug).lines().count() <= calls.len() + 1,
        "nothing but the calls and the error: {}",
        stderr(&debug)
    );
    assert!(stdout(&debug).is_empty(), "logs go to stderr, never into the result");
    let quiet = unreachable(&["status", execution], &keys);
    assert_eq!(stderr(&quiet).lines().count(), 1, "{}", stderr(&quiet));
}

#[test]
fn aws_failures_are_one_line_each_with_what_to_do() {
    let execution = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
    let keys = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];
    // No region anywhere: the execution's ARN names one, and it is used (the call then fails to connect).
    let output = unreachable(&["status", execution], &keys);
    assert_eq!(output.status.code(), Some(4));
    let text = stderr(&output);
    assert!(text.contains("could not reach AWS (Connection refused"), "{text}");
    assert!(text.contains("check --endpoint-url") && text.lines().count() == 1, "{text}");
    assert!(!text.contains("DispatchFailure"), "no Debug dump: {text}");
    // No credentials.
    let output = unreachable(&["status", execution], &[("AWS_REGION", "eu-west-1")]);
    assert_eq!(output.status.code(), Some(4));
    let text = stderr(&output);
    assert!(text.contains("no AWS credentials were found") && text.contains("AWS_PROFILE"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    // No region, and an ARN that names none: asked for.
    let output = unreachable(&["list", "--state-machine-arn", "arn:aws:states::123456789012:stateMachine:m"], &keys);
    assert_eq!(output.status.code(), Some(4));
    let text = stderr(&output);
    assert!(text.contains("no AWS region is set: pass --region"), "{text}");
    // A name where an ARN belongs: said before any call.
    let output = unreachable(&["list", "--state-machine-arn", "canary-rollout"], &keys);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("canary-rollout is a name, not an ARN"), "{}", stderr(&output));
}

#[test]
fn plan_takes_starts_request_flags_over_a_file() {
    let output =
        canaryctl(&["plan", "--input", "../../deploy/prod-rollout.json", "--function", "orders-api", "--version", "7"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Rollout of orders-api:live to version 7"), "{}", stdout(&output));
    let flags_only =
        canaryctl(&["plan", "--function", "f", "--alias", "live", "--version", "2", "--canary", "5", "--bake", "600"]);
    assert!(flags_only.status.success(), "{}", stderr(&flags_only));
    assert!(stdout(&flags_only).contains("5%"), "{}", stdout(&flags_only));
}

#[test]
fn output_and_aws_flags_are_global_as_in_the_aws_cli() {
    // Before the subcommand, and -o for --output.
    let output = canaryctl(&["-o", "json", "--region", "eu-west-1", "plan", "--input", "tests/fixtures/linear.json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(serde_json::from_str::<Value>(&stdout(&output)).is_ok(), "{}", stdout(&output));
    // After it, as before.
    let after = canaryctl(&["plan", "--input", "tests/fixtures/linear.json", "-o", "json"]);
    assert_eq!(stdout(&after), stdout(&output));
}

#[test]
fn contradicting_flags_are_refused_with_exit_2() {
    let output =
        canaryctl(&["plan", "--function", "f", "--alias", "a", "--version", "2", "--linear", "10", "--bake", "60"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--bake") && stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plan_takes_a_release_from_repeated_function_flags() {
    let args = ["plan", "--function", "orders-api:43", "--function", "orders-worker:17", "--alias", "live"];
    let text = canaryctl(&args);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(text.starts_with("Release of 2 functions"), "{text}");
    assert!(text.contains("  orders-api:live to version 43\n  orders-worker:live to version 17\n"), "{text}");
    let json = canaryctl(&[&args[..], &["--output", "json"]].concat());
    let plan: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(
        plan["request"]["functions"],
        json!([{"function": "orders-api", "alias": "live", "version": "43"},
               {"function": "orders-worker", "alias": "live", "version": "17"}])
    );
    // One function may give its version the same way.
    let one = canaryctl(&["plan", "--function", "orders-api:43", "--alias", "live", "--output", "json"]);
    let plan: Value = serde_json::from_str(&stdout(&one)).unwrap();
    assert_eq!(
        (plan["request"]["function"].as_str(), plan["request"]["version"].as_str()),
        (Some("orders-api"), Some("43"))
    );
    // Each mistake is a usage error naming the fix.
    for (args, says) in [
        (vec!["--function", "orders-api:43", "--function", "orders-worker", "--alias", "live"], "NAME:VERSION"),
        (vec!["--function", "orders-api:43", "--function", "orders-worker:2"], "needs --alias"),
        (
            vec!["--function", "orders-api:43", "--function", "orders-worker:2", "--alias", "live", "--version", "4"],
            "once",
        ),
        (vec!["--function", "orders-api:43", "--alias", "live", "--version", "4"], "once"),
    ] {
        let output = canaryctl(&[&["plan"], &args[..]].concat());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(says), "{args:?}: {}", stderr(&output));
    }
    // The same function twice is the request's refusal (exit 3), naming the entry.
    let twice = canaryctl(&["plan", "--function", "orders-api:43", "--function", "orders-api:44", "--alias", "live"]);
    assert_eq!(twice.status.code(), Some(3));
    assert!(stderr(&twice).contains("functions[1]"), "{}", stderr(&twice));
}

/// `--version` names the release and the commit the binary was built from (here: this checkout's HEAD).
#[test]
fn version_names_the_release_and_the_commit() {
    let output = canaryctl(&["--version"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let expected = format!("canaryctl {} (commit {head})\n", env!("CARGO_PKG_VERSION"));
    assert!(head.len() == 12 && text == expected, "{text:?} is not {expected:?}");
}

/// `history`, `undo` and `list` take a service as `status` does (`FUNCTION:ALIAS`), as well as their own
/// forms; without an alias, history and undo say how to give one.
#[test]
fn history_undo_and_list_take_function_colon_alias() {
    let keys = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "eu-west-1"),
        ("CANARY_STATE_MACHINE_ARN", "arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout"),
    ];
    for args in [&["history", "orders-api:live"][..], &["undo", "orders-api:live"], &["list", "orders-api:live"]] {
        let output = unreachable(args, &keys);
        assert_eq!(output.status.code(), Some(4), "{args:?} got as far as AWS: {}", stderr(&output));
    }
    for args in [&["history", "orders-api"][..], &["undo", "orders-api"]] {
        let output = unreachable(args, &keys);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains("give FUNCTION ALIAS or FUNCTION:ALIAS"), "{}", stderr(&output));
    }
    let both = unreachable(&["list", "orders-api:live", "--function", "x"], &keys);
    assert_eq!(both.status.code(), Some(2), "a service and --function at once: {}", stderr(&both));
}
