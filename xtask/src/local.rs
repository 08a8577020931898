//! The local AWS stack: moto (Lambda, IAM, CloudWatch, Step Functions with its ASL interpreter) behind
//! the project's router, which runs the real Lambda binaries with `cargo lambda watch`. All on 127.0.0.1.

use crate::tools::{self, path_with_venv, root, step};
use rustix::process::{Pid, Signal};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use local_aws::fixtures::{ACCOUNT, REGION, sdk_config};

mod deploy;
mod iam;

use deploy::{deploy_controller, ensure_services_role, safety_net_of, template_stack, translated_file};
pub use iam::check_iam;

/// The stack the local stack deploys: the staging stage of template.yaml, with the sample service (its API
/// function, order worker, smoke hook and their roles), each at its first version, as a first deploy is.
pub const TEMPLATE_PARAMETERS: [(&str, &str); 4] =
    [("Stage", "staging"), ("SampleService", "true"), ("LiveVersion", "first"), ("WorkerLiveVersion", "first")];

pub fn state_dir() -> PathBuf {
    root().join("target/local-aws")
}

fn stack_file() -> PathBuf {
    state_dir().join("stack.json")
}

/// A running stack, as `target/local-aws/stack.json` records it.
#[derive(Debug, Clone)]
pub struct Stack {
    pub endpoint_url: String,
    pub state_machine_arn: String,
    /// moto itself, behind the router: calls made here are not counted (the benches' own polling).
    pub moto_url: String,
}

impl Stack {
    pub fn describe(&self) -> String {
        format!(
            "local AWS stack up:\n  endpoint_url      {}\n  region            {REGION}\n  state_machine_arn {}\n  recorded in       {}\n\
             stop it with: cargo xtask local down",
            self.endpoint_url,
            self.state_machine_arn,
            stack_file().display()
        )
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.endpoint_url).await
    }
}

/// The environment every process of the stack, and every AWS client of the tests, uses.
pub fn fake_credentials(command: &mut Command) -> &mut Command {
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

fn wait_for_port(port: u16, what: &str, seconds: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "{what} did not listen on 127.0.0.1:{port} within {seconds} s (see {})",
                state_dir().display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Starts a process in its own process group, so that stopping the group stops everything it started.
fn spawn(name: &str, command: &mut Command) -> Result<u32, String> {
    let log = std::fs::File::create(state_dir().join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    let child = command
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok(child.id())
}

/// The program each recorded process runs, to recognise it: a PID is reused once its process ends, and a
/// signal to a reused PID's group would hit someone else's processes.
fn program_of(role: &str) -> &'static str {
    match role {
        "moto" => "moto_server",
        _ => "local-aws-router",
    }
}

/// Whether `pid` still runs the program this stack started for `role`, and leads its own process group
/// that is not ours (so signalling the group stops exactly what `up` started).
fn ours(role: &str, pid: u64) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else { return false };
    // The command line is only in /proc; the process group comes from the kernel directly.
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero())) else { return false };
    String::from_utf8_lossy(&cmdline).contains(program_of(role))
        && rustix::process::getpgid(Some(pid)).is_ok_and(|group| group == pid)
        && rustix::process::getpgrp() != pid
}

/// What `target/local-aws/stack.json` records: the processes started (role to PID) and, once the template
/// is deployed, where the stack answers. A record from a half-started stack has no endpoint yet.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct StackRecord {
    #[serde(default)]
    processes: std::collections::BTreeMap<String, u64>,
    moto_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state_machine_arn: Option<String>,
    /// Logical ID -> function name, for the tests.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    functions: std::collections::BTreeMap<String, String>,
}

impl StackRecord {
    fn write(&self) -> Result<(), String> {
        std::fs::write(stack_file(), serde_json::to_string_pretty(self).expect("records serialise"))
            .map_err(|e| format!("{}: {e}", stack_file().display()))
    }

    /// The recorded processes that still run what this stack started.
    fn all_running(&self) -> bool {
        self.processes.iter().all(|(role, pid)| ours(role, *pid))
    }

    /// The stack it records, when it got as far as being deployed.
    fn stack(&self) -> Option<Stack> {
        Some(Stack {
            endpoint_url: self.endpoint_url.clone()?,
            state_machine_arn: self.state_machine_arn.clone()?,
            moto_url: self.moto_url.clone(),
        })
    }
}

/// The record of the stack, if there is one (a record that does not parse is none: `down` removes it).
fn read_stack() -> Option<StackRecord> {
    serde_json::from_str(&std::fs::read_to_string(stack_file()).ok()?).ok()
}

/// Brings the stack up, or finds it up already; either way, the controller and state machine are current.
pub async fn up() -> Result<Stack, String> {
    tools::ensure_venv()?;
    step("building the Lambda binaries and the router");
    tools::run(
        "cargo",
        &[
            "build",
            "--quiet",
            "-p",
            "canary-functions",
            "-p",
            "sample-service",
            "-p",
            "local-aws",
            "-p",
            "canaryctl",
            "--bins",
        ],
    )?;
    std::fs::create_dir_all(state_dir()).map_err(|e| e.to_string())?;
    let running = |s: &StackRecord| s.processes.len() == 2 && s.all_running();
    let template = template_stack("translate", &[])?;
    let safety_net = safety_net_of(&template)?;
    // Translated once: `create` below loads this file rather than translating again.
    std::fs::write(translated_file(), template.to_string()).map_err(|e| e.to_string())?;
    let mut record = match read_stack().filter(|s| running(s) && s.endpoint_url.is_some()) {
        Some(record) => record,
        None => {
            down()?;
            start_processes(&safety_net).await?
        }
    };
    let created = deploy_controller(&record.moto_url)?;
    ensure_services_role(&sdk_config(&record.moto_url).await).await?;
    record.functions = created.functions;
    record.region = Some(REGION.to_string());
    record.state_machine_arn = Some(created.state_machine_arn);
    record.write()?;
    record.stack().ok_or_else(|| "the stack record has no endpoint".into())
}

/// Starts moto and the router; the record of both, with the router's endpoint.
async fn start_processes(safety_net: &str) -> Result<StackRecord, String> {
    step("starting moto and the router on 127.0.0.1");
    let (moto_port, router_port) = (free_port()?, free_port()?);
    let moto = spawn(
        "moto",
        fake_credentials(
            // moto_server with percentile statistics in CloudWatch (see the script).
            Command::new(root().join(".venv/bin/python"))
                .arg(root().join("crates/local-aws/emulator/moto_server_local.py"))
                .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
                // Step Functions tasks invoke Lambda at localhost:MOTO_PORT: that is the router.
                .env("MOTO_PORT", router_port.to_string()),
        ),
    )?;
    let moto_url = format!("http://127.0.0.1:{moto_port}");
    let mut record = StackRecord { moto_url: moto_url.clone(), ..StackRecord::default() };
    record.processes.insert("moto".into(), u64::from(moto));
    // Recorded at once, so that `down` stops moto even if the rest fails.
    record.write()?;
    wait_for_port(moto_port, "moto", 60)?;
    let config = r#"{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}"#;
    let (status, answer) = local_aws::control::request(&moto_url, "POST", "/moto-api/config", config).await?;
    if !(200..300).contains(&status) {
        return Err(format!("moto refused the configuration: {status} {answer}"));
    }
    let router = spawn(
        "router",
        fake_credentials(
            Command::new(root().join("target/debug/local-aws-router"))
                .args([
                    "--port",
                    &router_port.to_string(),
                    "--moto",
                    &format!("http://127.0.0.1:{moto_port}"),
                    "--region",
                    REGION,
                    // The template's EventBridge rule on ended executions, played by the router.
                    "--safety-net",
                    safety_net,
                    // The template's schedule is every 5 minutes; the local stack sweeps every 10 s so that a
                    // test of a lost event ends in seconds.
                    "--sweep-every",
                    "10",
                    "--account",
                    ACCOUNT,
                ])
                .arg("--state-dir")
                .arg(state_dir())
                .env("PATH", path_with_venv()),
        ),
    )?;
    record.processes.insert("router".into(), u64::from(router));
    record.write()?;
    wait_for_port(router_port, "the router", 30)?;
    record.endpoint_url = Some(format!("http://127.0.0.1:{router_port}"));
    Ok(record)
}

/// Stops exactly the processes `up` started (each with everything it started), by their recorded PIDs.
pub fn down() -> Result<(), String> {
    let Some(stack) = read_stack() else { return Ok(()) };
    // Only groups that are provably still ours: a recorded PID whose process ended may belong to
    // anyone by now.
    let processes: Vec<(String, u64)> = stack.processes.into_iter().filter(|(role, pid)| ours(role, *pid)).collect();
    // `ours` held for each, so each PID fits a Pid.
    let signal = |signal: Signal, pid: u64| {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    };
    for (_, pid) in &processes {
        signal(Signal::TERM, *pid);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes.iter().any(|(role, pid)| ours(role, *pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (role, pid) in &processes {
        if ours(role, *pid) {
            signal(Signal::KILL, *pid);
        }
    }
    if !processes.is_empty() {
        println!("local AWS stack stopped (process groups {:?})", processes.iter().map(|(_, p)| p).collect::<Vec<_>>());
    }
    std::fs::remove_file(stack_file()).map_err(|e| e.to_string())
}

/// The stack `up` left running.
pub fn running() -> Result<Stack, String> {
    let record = read_stack().ok_or("the local AWS stack is not up: cargo xtask local up")?;
    record.stack().ok_or_else(|| "the local AWS stack was not deployed to the end: cargo xtask local up".into())
}

pub fn status() -> Result<(), String> {
    match read_stack() {
        Some(stack) if stack.all_running() => {
            println!("{}", serde_json::to_string_pretty(&stack).expect("json"));
            Ok(())
        }
        Some(_) => Err("the stack is recorded but not all of its processes run: cargo xtask local down".into()),
        None => Err("the local AWS stack is not up: cargo xtask local up".into()),
    }
}
