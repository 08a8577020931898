//! Project automation, run as `cargo xtask <command>`:
//!
//! - `test`: the whole suite: `lint` (format, clippy), `audit` (cargo-deny), `packaging` (ASL schema, SAM
//!   template, Jenkinsfiles), `coverage` (unit and mocked tests, 100% gate on the core), `parts` (the README's
//!   by-parts commands that are no stage: `cargo build`, `cargo test`, the benches quick), `e2e` (end-to-end
//!   tests on the local AWS stack). Each stage also runs on its own.
//! - `bench detection [--chart FILE]`: the detection simulator (docs/detection.md): each rollout policy's
//!   false rollbacks, time to rollback and blast radius over seeded synthetic traffic.
//! - `bench perf`: the controller's cold init and peak RSS against a `lambda_runtime` hello world and Python
//!   + boto3, and its artifact's size (docs/performance.md).
//! - `bench rollouts`: on the local stack, a rollout's AWS calls, transitions and history events per judged
//!   step, `Prepare`'s calls against the rollouts running, and how many rollouts the emulator carries at once.
//! - `dist [--target TRIPLE [--zig]]`: canaryctl's release archive for one platform and its SHA256SUMS line
//!   (.github/workflows/release.yml runs it for each).
//! - `demo`: a real canary rollout on the local stack, then one that rolls back on its own.
//! - `local up` / `local down` / `local status`: the local AWS stack on 127.0.0.1 (template.yaml's stack);
//!   `local check-iam`: every call made on it so far against its signer's policy.
//!
//! Everything it needs it installs into the project's own folders (`.venv`, `node_modules`) or with
//! cargo and rustup, so a fresh machine needs only Rust, Python 3 and Node.

mod bench;
mod demo;
mod dist;
mod local;

mod test;
mod tools;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <test | lint | audit | packaging | coverage | parts | e2e | dist [--target TRIPLE [--zig]] | demo [--keep] | bench detection [--chart FILE] | bench perf | bench rollouts | local up | local down | local status | local check-iam>";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["test"] => test::run().await,
        ["lint"] => test::lint(),
        ["audit"] => test::audit(),
        ["packaging"] => test::packaging(),
        ["coverage"] => test::coverage(),
        ["parts"] => test::by_parts(),
        ["e2e"] => test::e2e().await,
        ["bench", "perf"] => bench::perf::perf(),
        ["bench", "rollouts"] => bench::rollouts::rollouts().await,
        ["bench", "detection"] => bench::detection::detection(None),
        ["bench", "detection", "--chart", path] => bench::detection::detection(Some(path)),
        ["dist"] => dist::dist(None, false),
        ["dist", "--target", target] => dist::dist(Some(target), false),
        ["dist", "--target", target, "--zig"] => dist::dist(Some(target), true),
        ["demo"] => demo::run(false).await,
        ["demo", "--keep"] => demo::run(true).await,
        ["local", "up"] => local::up().await.map(|stack| println!("{}", stack.describe())),
        ["local", "down"] => local::down(),
        ["local", "status"] => local::status(),
        ["local", "check-iam"] => match local::running() {
            Ok(stack) => local::check_iam(&stack).await,
            Err(e) => Err(e),
        },
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
