//! `cargo xtask bench perf`: what the controller costs to start and to hold, side by side in one run with
//! a `lambda_runtime` hello world and a Python + boto3 handler building the same clients, so the ratios hold
//! on a noisy machine; and the size of what is deployed. A report: it never fails on a figure.
//!
//! Cold init is measured as Lambda sees it: from spawning the process to its first request for an event
//! (`GET /2018-06-01/runtime/invocation/next`) on a fake Runtime API on 127.0.0.1; peak RSS is the
//! process's high-water mark (`VmHWM`) at that moment. Nothing leaves the machine: credentials and region
//! are fake and given in the environment, so no client looks anything up.

use crate::tools::{root, run, step};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Rounds per candidate; each round runs every candidate once, in a shuffled order. `CANARY_BENCH_ROUNDS`
/// sets fewer for a quick look (the suite runs it so, to prove the command works).
const ROUNDS: usize = 15;

fn rounds() -> usize {
    std::env::var("CANARY_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).filter(|&r| r > 0).unwrap_or(ROUNDS)
}

/// The Python candidate: boto3 imported and the four clients `Prepare` uses built, then the first poll.
const PYTHON_HANDLER: &str = r#"
import os, urllib.request
import boto3
session = boto3.session.Session()
clients = [session.client(name) for name in ("lambda", "cloudwatch", "stepfunctions", "events")]
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next", timeout=30)
"#;

struct Candidate {
    name: &'static str,
    command: Vec<String>,
    env: Vec<(&'static str, String)>,
}

struct Sample {
    init: Duration,
    peak_rss_kb: u64,
}

/// Spawns `candidate` against a fake Runtime API and measures it up to its first poll.
fn measure(candidate: &Candidate) -> Result<Sample, String> {
    let mut command = Command::new(&candidate.command[0]);
    command.args(&candidate.command[1..]);
    let deadline = Duration::from_secs(30);
    let (init, peak_rss_kb) = until_first_poll(&mut command, &candidate.env, candidate.name, deadline, |child| {
        let peak = peak_rss_kb(child.id());
        let _ = child.kill();
        let _ = child.wait();
        peak
    })?;
    Ok(Sample { init, peak_rss_kb })
}

/// Runs `command` as Lambda would start a function, with a fake Runtime API on 127.0.0.1 and fake
/// credentials and region, until it first asks for an event; then hands the process to `at_poll`, which
/// must end it. Returns the time from spawn to that poll, and what `at_poll` returned. `env` is set on top
/// of the Lambda environment (`CANARY_TASK`, say).
fn until_first_poll<T>(
    command: &mut Command,
    env: &[(&str, String)],
    name: &str,
    deadline: Duration,
    at_poll: impl FnOnce(&mut Child) -> T,
) -> Result<(Duration, T), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let api = listener.local_addr().map_err(|e| e.to_string())?.to_string();
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("{name}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let result = loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).map_err(|e| e.to_string())?;
                if line.contains("/runtime/invocation/next") {
                    let init = started.elapsed();
                    return Ok((init, at_poll(&mut child)));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if started.elapsed() > deadline {
                    break Err(format!("{name} did not poll for an event within {} s", deadline.as_secs()));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The process's peak resident set, from the kernel's accounting (`VmHWM`).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A venv with boto3 for the Python candidate (its own, so the project's stays as pinned).
fn python_with_boto3() -> Result<PathBuf, String> {
    let venv = root().join("target/bench/python");
    let python = venv.join("bin/python");
    if !python.exists() {
        step("installing boto3 into target/bench/python");
        run("python3", &["-m", "venv", &venv.to_string_lossy()])?;
        run(
            &venv.join("bin/pip").to_string_lossy(),
            &["install", "--quiet", "--disable-pip-version-check", "boto3==1.44.8"],
        )?;
    }
    Ok(python)
}

/// The size of `binary` zipped as Lambda's deployment package (`bootstrap`), by Python's zipfile.
fn zipped_size(binary: &Path) -> Result<u64, String> {
    let zip = root().join("target/bench/bootstrap.zip");
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z: z.write(sys.argv[1], 'bootstrap')";
    run("python3", &["-c", script, &binary.to_string_lossy(), &zip.to_string_lossy()])?;
    std::fs::metadata(&zip).map(|m| m.len()).map_err(|e| e.to_string())
}

pub fn perf() -> Result<(), String> {
    step("building the controller and the hello world (release, as deployed but for this machine)");
    run("cargo", &["build", "--release", "--locked", "-p", "canary-functions", "--bin", "canary-controller"])?;
    run("cargo", &["build", "--release", "--locked", "-p", "hello-lambda"])?;
    let python = python_with_boto3()?;
    std::fs::create_dir_all(root().join("target/bench")).map_err(|e| e.to_string())?;
    let handler = root().join("target/bench/handler.py");
    std::fs::write(&handler, PYTHON_HANDLER).map_err(|e| e.to_string())?;
    let release = root().join("target/release");
    let controller = release.join("canary-controller").to_string_lossy().into_owned();
    let candidates = [
        Candidate {
            name: "hello world (lambda_runtime)",
            command: vec![release.join("hello-lambda").to_string_lossy().into_owned()],
            env: vec![],
        },
        Candidate {
            // Its four adapters are built; each builds its SDK client on its first call (canary-aws/src/lazy.rs).
            name: "controller: prepare",
            command: vec![controller.clone()],
            env: vec![("CANARY_TASK", "prepare".into())],
        },
        Candidate {
            name: "controller: check",
            command: vec![controller.clone()],
            env: vec![("CANARY_TASK", "check".into())],
        },
        Candidate {
            name: "Python 3 + boto3 (the same 4 clients, built at init)",
            command: vec![python.to_string_lossy().into_owned(), handler.to_string_lossy().into_owned()],
            env: vec![],
        },
    ];
    let rounds = rounds();
    step(&format!("{rounds} rounds, each candidate once a round in a shuffled order"));
    let mut samples: Vec<Vec<Sample>> = candidates.iter().map(|_| Vec::new()).collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    for _ in 0..rounds {
        fastrand::shuffle(&mut order);
        for &i in &order {
            samples[i].push(measure(&candidates[i])?);
        }
    }
    // Per candidate: init times sorted (ms), median init, median peak RSS (MB); the hello world is row 0.
    let figures: Vec<(Vec<f64>, f64, f64)> = samples
        .iter()
        .map(|samples| {
            let mut init: Vec<f64> = samples.iter().map(|s| s.init.as_secs_f64() * 1e3).collect();
            let mut rss: Vec<f64> = samples.iter().map(|s| s.peak_rss_kb as f64 / 1024.0).collect();
            let (init_median, rss_median) = (median(&mut init), median(&mut rss));
            (init, init_median, rss_median)
        })
        .collect();
    let (_, hello_init, hello_rss) = figures[0];
    println!("\n| candidate | cold init, median (min-max) ms | x hello world | peak RSS, median MB | x hello world |");
    println!("|---|---:|---:|---:|---:|");
    for (candidate, (init, init_median, rss_median)) in candidates.iter().zip(&figures) {
        println!(
            "| {} | {init_median:.1} ({:.1}-{:.1}) | {:.1} | {rss_median:.1} | {:.1} |",
            candidate.name,
            init[0],
            init[init.len() - 1],
            init_median / hello_init,
            rss_median / hello_rss
        );
    }
    let binary = release.join("canary-controller");
    let size = std::fs::metadata(&binary).map_err(|e| e.to_string())?.len();
    println!(
        "\ncanary-controller (x86_64 here; Lambda runs the arm64 build): {:.1} MB, {:.1} MB zipped; one artifact for all 8 controller functions",
        size as f64 / 1e6,
        zipped_size(&binary)? as f64 / 1e6
    );
    Ok(())
}
