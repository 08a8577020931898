//! `cargo xtask test`: the whole suite, as CI runs it.

use crate::local;
use crate::tools::{self, root, run_with, step};
use std::process::Command;
use tools::run as sh;

/// Coverage gate: the pure core stays at 100% of lines.
const CORE_SOURCES: &str = "crates/canary-core/src/";

pub async fn run() -> Result<(), String> {
    tools::ensure_components()?;
    tools::ensure_npm()?;
    tools::ensure_venv()?;
    tools::ensure_cargo_tool("llvm-cov", "cargo-llvm-cov", "0.9.1")?;
    tools::ensure_cargo_tool("deny", "cargo-deny", "0.20.2")?;
    tools::ensure_cargo_tool("nextest", "cargo-nextest", "0.9.143")?;

    step("format");
    sh("cargo", &["fmt", "--all", "--check"])?;
    step("lint");
    sh("cargo", &["clippy", "--quiet", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    step("state machine schema (asl-validator)");
    sh("npx", &["--no-install", "asl-validator", "--json-path", "statemachine/canary.asl.json"])?;
    step("dependency audit (RustSec advisories, offline snapshot)");
    audit()?;

    step("unit and mocked tests, with coverage");
    sh("cargo", &["llvm-cov", "nextest", "--workspace", "--no-report", "--no-fail-fast"])?;
    sh("cargo", &["llvm-cov", "report", "--summary-only"])?;
    step("coverage gate: canary-core at 100% of lines");
    let others = "crates/(canary-aws|canary-functions|canaryctl|canary-e2e|local-aws)/|sample-service/|xtask/";
    sh(
        "cargo",
        &["llvm-cov", "report", "--summary-only", "--fail-under-lines", "100", "--ignore-filename-regex", others],
    )
    .map_err(|e| format!("{e}: lines of {CORE_SOURCES} are not all covered"))?;

    step("end-to-end tests on the local AWS stack");
    let stack = local::up().await?;
    let result = run_with(
        local::fake_credentials(&mut Command::new("cargo"))
            .args([
                "nextest",
                "run",
                "-p",
                "canary-e2e",
                "--run-ignored",
                "only",
                "--test-threads",
                "1",
                "--no-fail-fast",
            ])
            .env("CANARY_E2E_ENDPOINT_URL", &stack.endpoint_url)
            .env("CANARY_E2E_STATE_MACHINE_ARN", &stack.state_machine_arn),
    );
    local::down()?;
    result
}

/// cargo-deny against the advisory database snapshot in ../shared (CI machines here cannot fetch the
/// live one; the Jenkins pipelines do).
fn audit() -> Result<(), String> {
    let snapshot = root().join("../shared/advisory-db/advisory-db-2026-08-21.tar.gz");
    let db_root = root().join("target/advisory-dbs");
    // cargo-deny looks for a git repository named after the database URL's hash.
    let db = db_root.join("advisory-db-3157b0e258782691");
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
    sh("cargo", &["deny", "--offline", "check", "advisories", "bans", "licenses", "sources"])
}
