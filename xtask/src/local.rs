//! The local AWS stack: moto (Lambda, IAM, CloudWatch, Step Functions with its ASL interpreter) behind
//! the project's router, which runs the real Lambda binaries with `cargo lambda watch`. All on 127.0.0.1.

use crate::tools::{self, path_with_venv, root, step};
// The controller functions, named as their local binaries: `ControllerTask` is the one list of them.
use canary_functions::serve::ControllerTask;
use rustix::process::{Pid, Signal};
use serde_json::{Value, json};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use local_aws::fixtures::{ACCOUNT, REGION, sdk_config};

pub const STATE_MACHINE: &str = "canary-rollout";
/// Invoked by EventBridge in AWS when an execution ends ABORTED, TIMED_OUT or FAILED; by the router here.
fn safety_net() -> String {
    ControllerTask::SafetyNet.binary()
}

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

fn read_stack() -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(stack_file()).ok()?).ok()
}

/// The recorded processes that are still the ones this stack started: (role, PID).
fn our_processes(stack: &Value) -> Vec<(String, u64)> {
    stack["processes"]
        .as_object()
        .map(|p| p.iter().filter_map(|(role, pid)| Some((role.clone(), pid.as_u64()?))).collect())
        .unwrap_or_default()
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
    let running = |s: &Value| {
        let processes = our_processes(s);
        processes.len() == 2 && processes.iter().all(|(role, pid)| ours(role, *pid))
    };
    let endpoint_url = match read_stack().filter(running) {
        Some(stack) => stack["endpoint_url"].as_str().unwrap_or_default().to_string(),
        None => {
            down()?;
            start_processes().await?
        }
    };
    let state_machine_arn = deploy_controller(&endpoint_url).await?;
    let mut stack = read_stack().unwrap_or_else(|| json!({}));
    stack["endpoint_url"] = json!(endpoint_url);
    stack["region"] = json!(REGION);
    stack["state_machine_arn"] = json!(state_machine_arn);
    std::fs::write(stack_file(), serde_json::to_string_pretty(&stack).expect("json")).map_err(|e| e.to_string())?;
    let moto_url = stack["moto_url"].as_str().unwrap_or_default().to_string();
    Ok(Stack { endpoint_url, state_machine_arn, moto_url })
}

async fn start_processes() -> Result<String, String> {
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
    let stack = json!({"processes": {"moto": moto}, "moto_url": format!("http://127.0.0.1:{moto_port}")});
    std::fs::write(stack_file(), stack.to_string()).map_err(|e| e.to_string())?;
    wait_for_port(moto_port, "moto", 60)?;
    let config = r#"{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}"#;
    let moto_url = format!("http://127.0.0.1:{moto_port}");
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
                    &safety_net(),
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
    let stack =
        json!({"processes": {"moto": moto, "router": router}, "moto_url": format!("http://127.0.0.1:{moto_port}")});
    std::fs::write(stack_file(), stack.to_string()).map_err(|e| e.to_string())?;
    wait_for_port(router_port, "the router", 30)?;
    Ok(format!("http://127.0.0.1:{router_port}"))
}

pub async fn ensure_role(config: &aws_config::SdkConfig, name: &str) -> Result<String, String> {
    let iam = aws_sdk_iam::Client::new(config);
    if let Ok(out) = iam.get_role().role_name(name).send().await
        && let Some(role) = out.role()
    {
        return Ok(role.arn().to_string());
    }
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]});
    let out = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .map_err(|e| format!("creating role {name}: {}", aws_sdk_iam::error::DisplayErrorContext(&e)))?;
    Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
}

/// Creates a function with the given environment unless it exists.
pub async fn ensure_function(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    role: &str,
    environment: &[(&str, &str)],
) -> Result<(), String> {
    use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
    if lambda.get_function().function_name(name).send().await.is_ok() {
        return Ok(());
    }
    let variables = environment.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .timeout(30)
        .environment(Environment::builder().set_variables(Some(variables)).build())
        .code(
            FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(local_aws::fixtures::EMPTY_ZIP))
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("creating function {name}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)))?;
    Ok(())
}

/// The state machine definition with its `${...}` substitutions filled, as SAM's DefinitionSubstitutions do.
pub fn definition() -> Result<String, String> {
    let path = root().join("statemachine/canary.asl.json");
    let mut text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for task in ControllerTask::ALL {
        let (substitution, function) = (task.substitution(), task.binary());
        text = text.replace(
            &format!("${{{substitution}}}"),
            &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"),
        );
    }
    // The local stack publishes every invocation's metrics at once: its rollouts may hold for seconds.
    for (name, value) in canary_core::deployment::Deployment::LOCAL.substitutions() {
        text = text.replace(&format!("${{{name}}}"), &value);
    }
    if let Some(at) = text.find("${") {
        return Err(format!(
            "statemachine/canary.asl.json: no substitution for {}",
            &text[at..text.len().min(at + 40)]
        ));
    }
    Ok(text)
}

async fn deploy_controller(endpoint_url: &str) -> Result<String, String> {
    step("deploying the controller functions and the state machine");
    let config = sdk_config(endpoint_url).await;
    let role = ensure_role(&config, local_aws::fixtures::ROLE_NAME).await?;
    let lambda = aws_sdk_lambda::Client::new(&config);
    for task in ControllerTask::ALL {
        ensure_function(&lambda, &task.binary(), &role, &[]).await?;
    }
    let sfn = aws_sdk_sfn::Client::new(&config);
    let arn = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}");
    let definition = definition()?;
    if sfn.describe_state_machine().state_machine_arn(&arn).send().await.is_ok() {
        sfn.update_state_machine()
            .state_machine_arn(&arn)
            .definition(definition)
            .send()
            .await
            .map_err(|e| format!("updating the state machine: {}", aws_sdk_sfn::error::DisplayErrorContext(&e)))?;
        return Ok(arn);
    }
    let out = sfn
        .create_state_machine()
        .name(STATE_MACHINE)
        .definition(definition)
        .role_arn(role)
        .send()
        .await
        .map_err(|e| format!("creating the state machine: {}", aws_sdk_sfn::error::DisplayErrorContext(&e)))?;
    Ok(out.state_machine_arn().to_string())
}

/// Stops exactly the processes `up` started (each with everything it started), by their recorded PIDs.
pub fn down() -> Result<(), String> {
    let Some(stack) = read_stack() else { return Ok(()) };
    // Only groups that are provably still ours: a recorded PID whose process ended may belong to
    // anyone by now.
    let processes: Vec<(String, u64)> =
        our_processes(&stack).into_iter().filter(|(role, pid)| ours(role, *pid)).collect();
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

pub fn status() -> Result<(), String> {
    match read_stack() {
        Some(stack) if our_processes(&stack).iter().all(|(role, pid)| ours(role, *pid)) => {
            println!("{}", serde_json::to_string_pretty(&stack).expect("json"));
            Ok(())
        }
        Some(_) => Err("the stack is recorded but not all of its processes run: cargo xtask local down".into()),
        None => Err("the local AWS stack is not up: cargo xtask local up".into()),
    }
}
