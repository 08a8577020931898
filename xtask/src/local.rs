//! The local AWS stack: moto (Lambda, IAM, CloudWatch, Step Functions with its ASL interpreter) behind
//! the project's router, which runs the real Lambda binaries with `cargo lambda watch`. All on 127.0.0.1.

use crate::tools::{self, path_with_venv, root, step};
use rustix::process::{Pid, Signal};
use serde_json::{Value, json};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use local_aws::fixtures::{ACCOUNT, REGION, sdk_config};

/// The template's parameters on the local stack: the controller alone (the tests and the demo deploy their
/// own services, named to fit the template's default function patterns), at the staging stage.
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
    let template = template_stack("translate", &[])?;
    let safety_net = safety_net_of(&template)?;
    // Translated once: `create` below loads this file rather than translating again.
    std::fs::write(translated_file(), template.to_string()).map_err(|e| e.to_string())?;
    let endpoint_url = match read_stack().filter(|s| running(s) && s["endpoint_url"].is_string()) {
        Some(stack) => stack["endpoint_url"].as_str().unwrap_or_default().to_string(),
        None => {
            down()?;
            start_processes(&safety_net).await?
        }
    };
    let mut stack = read_stack().unwrap_or_else(|| json!({}));
    let moto_url = stack["moto_url"].as_str().unwrap_or_default().to_string();
    let created = deploy_controller(&moto_url)?;
    ensure_services_role(&sdk_config(&moto_url).await).await?;
    let state_machine_arn = created.state_machine_arn;
    stack["functions"] = json!(created.functions);
    stack["endpoint_url"] = json!(endpoint_url);
    stack["region"] = json!(REGION);
    stack["state_machine_arn"] = json!(state_machine_arn);
    std::fs::write(stack_file(), serde_json::to_string_pretty(&stack).expect("json")).map_err(|e| e.to_string())?;
    Ok(Stack { endpoint_url, state_machine_arn, moto_url })
}

async fn start_processes(safety_net: &str) -> Result<String, String> {
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
    let stack =
        json!({"processes": {"moto": moto, "router": router}, "moto_url": format!("http://127.0.0.1:{moto_port}")});
    std::fs::write(stack_file(), stack.to_string()).map_err(|e| e.to_string())?;
    wait_for_port(router_port, "the router", 30)?;
    Ok(format!("http://127.0.0.1:{router_port}"))
}

/// Runs `crates/local-aws/emulator/template_stack.py` on template.yaml with the local parameters: the
/// template as SAM translates it, its intrinsic functions resolved (`translate`), or also created on moto.
fn template_stack(command: &str, extra: &[String]) -> Result<Value, String> {
    let mut args = vec![
        root().join("crates/local-aws/emulator/template_stack.py").display().to_string(),
        command.to_string(),
        "--template".into(),
        root().join("template.yaml").display().to_string(),
    ];
    for (name, value) in TEMPLATE_PARAMETERS {
        args.extend(["--param".to_string(), format!("{name}={value}")]);
    }
    args.extend(extra.iter().cloned());
    let output = fake_credentials(Command::new(root().join(".venv/bin/python")).args(&args))
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run template_stack.py: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "loading template.yaml on the local stack failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("template_stack.py printed no stack: {e}"))
}

/// The resources of a resolved stack of one type: (logical ID, resource).
pub fn resources_of<'a>(stack: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
    stack["resources"].as_object().into_iter().flatten().filter(move |(_, r)| r["Type"] == kind)
}

/// The function the template's rule on ended executions invokes (EventBridge in AWS; the router here).
fn safety_net_of(stack: &Value) -> Result<String, String> {
    resources_of(stack, "AWS::Events::Rule")
        .find(|(_, rule)| rule["Properties"]["EventPattern"]["source"] == json!(["aws.states"]))
        .and_then(|(_, rule)| rule["Properties"]["Targets"][0]["Arn"].as_str())
        .and_then(|arn| arn.rsplit(':').next())
        .map(str::to_string)
        .ok_or_else(|| "template.yaml has no rule from aws.states to a function: no safety net".into())
}

/// The roles of the services the demo and the tests deploy, unless they exist.
async fn ensure_services_role(config: &aws_config::SdkConfig) -> Result<(), String> {
    let iam = aws_sdk_iam::Client::new(config);
    for name in [local_aws::fixtures::ROLE_NAME, local_aws::fixtures::OTHER_ROLE_NAME] {
        if iam.get_role().role_name(name).send().await.is_ok() {
            continue;
        }
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"}}]});
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| format!("creating role {name}: {}", aws_sdk_iam::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}

/// template.yaml as SAM translated it and its intrinsics resolved, before anything is created.
fn translated_file() -> PathBuf {
    state_dir().join("template-translated.json")
}

/// What `deploy_controller` created.
struct Created {
    state_machine_arn: String,
    /// Logical ID -> function name, for the tests (AWS would add a random suffix; the local stack does not).
    functions: std::collections::BTreeMap<String, String>,
}

/// Creates (or updates) the template's stack on moto: exactly the translated resources, with one named
/// change, the deployment's facts (the local stack publishes every invocation's metrics at once, so its
/// rollouts may hold for seconds).
fn deploy_controller(moto_url: &str) -> Result<Created, String> {
    step("deploying template.yaml (SAM-translated: the controller and the sample service) onto the emulator");
    let substitutions: serde_json::Map<String, Value> = canary_core::deployment::Deployment::LOCAL
        .substitutions()
        .into_iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    let overrides = json!({"definition_substitutions": substitutions});
    let resolved = translated_file().display().to_string();
    let stack = template_stack(
        "create",
        &[
            "--endpoint".into(),
            moto_url.to_string(),
            "--overrides".into(),
            overrides.to_string(),
            "--resolved".into(),
            resolved,
        ],
    )?;
    std::fs::write(state_dir().join("template-stack.json"), serde_json::to_string_pretty(&stack).expect("json"))
        .map_err(|e| e.to_string())?;
    let state_machine_arn = resources_of(&stack, "AWS::StepFunctions::StateMachine")
        .find_map(|(_, r)| r["Arn"].as_str().map(str::to_string))
        .ok_or("template.yaml has no state machine")?;
    let functions = resources_of(&stack, "AWS::Lambda::Function")
        .filter_map(|(id, r)| Some((id.clone(), r["PhysicalName"].as_str()?.to_string())))
        .collect();
    Ok(Created { state_machine_arn, functions })
}

/// The policy documents each principal of the local stack signs with: every IAM role of the template (its
/// inline policies, as SAM translated them; the managed basic-execution policy grants only logs, which the
/// controller never calls), and `canaryctl`'s published policy (deploy/canaryctl-policy.json), placed.
fn policies_by_principal() -> Result<std::collections::BTreeMap<String, (String, Vec<Value>)>, String> {
    let path = state_dir().join("template-stack.json");
    let stack: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| e.to_string())?;
    let mut out = std::collections::BTreeMap::new();
    for (id, role) in resources_of(&stack, "AWS::IAM::Role") {
        let name = role["PhysicalName"].as_str().unwrap_or_default().to_string();
        let users: Vec<String> = resources_of(&stack, "AWS::Lambda::Function")
            .filter(|(_, f)| f["Properties"]["Role"].as_str() == role["Arn"].as_str())
            .map(|(f, _)| f.clone())
            .collect();
        let documents =
            role["Properties"]["Policies"].as_array().into_iter().flatten().map(|p| p["PolicyDocument"].clone());
        let who = if users.is_empty() { id.clone() } else { users.join(", ") };
        out.insert(name, (who, documents.collect()));
    }
    let parameters = &stack["parameters"];
    let mut text = std::fs::read_to_string(root().join("deploy/canaryctl-policy.json")).map_err(|e| e.to_string())?;
    for (name, value) in [("AWS::Region", REGION), ("AWS::AccountId", ACCOUNT), ("AWS::Partition", "aws")] {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    text = text.replace("${Stage}", parameters["Stage"].as_str().ok_or("the stack has no Stage")?);
    // The pattern the stack's roles were given (the parameter, or the stage's own functions when it is empty),
    // as the template hands it to Prepare.
    let managed = resources_of(&stack, "AWS::StepFunctions::StateMachine")
        .find_map(|(_, r)| r["Properties"]["DefinitionSubstitutions"]["ManagedFunctionPattern"].as_str())
        .ok_or("the state machine is given no ManagedFunctionPattern")?;
    text = text.replace("${ManagedFunctionPattern}", managed);
    let policy: Value = serde_json::from_str(&text).map_err(|e| format!("deploy/canaryctl-policy.json: {e}"))?;
    out.insert(CANARYCTL_PRINCIPAL.to_string(), ("canaryctl".to_string(), vec![policy]));
    Ok(out)
}

/// The access key ID the suite and the demo run `canaryctl` with, so its calls are checked against its
/// published policy.
pub const CANARYCTL_PRINCIPAL: &str = "canaryctl";

/// Checks every AWS call the stack's functions (and canaryctl) made since it came up against the policy
/// their role grants in template.yaml: a call not allowed fails, naming function, action and resource.
pub async fn check_iam(stack: &Stack) -> Result<(), String> {
    step("IAM: every call of the suite against its signer's policy (template.yaml, deploy/canaryctl-policy.json)");
    let (status, body) = local_aws::control::request(&stack.endpoint_url, "GET", "/_local/iam-calls", "").await?;
    if status != 200 {
        return Err(format!("the router did not list its calls: {status} {body}"));
    }
    let calls: Vec<(local_aws::iam::Call, u64)> = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let policies = policies_by_principal()?;
    let (failures, summary) = judge_calls(&calls, &policies);
    println!("{:<44} {:>7} {:>8}", "principal (who)", "calls", "actions");
    for (principal, (count, actions)) in &summary {
        let who = policies.get(principal).map_or("", |(who, _)| who.as_str());
        println!("{:<44} {count:>7} {actions:>8}", format!("{principal} ({who})"));
    }
    let stage = policies_stage()?;
    let reaches = reaches_other_stage(&policies, &stage);
    println!(
        "no role of the {stage} stack may write the other stage's functions: {}",
        if reaches.is_empty() { "proven" } else { "NOT SO" }
    );
    let (unexercised, notes) = unexercised_roles(&policies, &summary);
    for note in notes {
        println!("{note}");
    }
    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!(
            "calls their role does not allow (on AWS each would be AccessDenied):\n  {}",
            failures.join("\n  ")
        ));
    }
    if !reaches.is_empty() {
        problems.push(format!(
            "roles of the {stage} stack allowed to write the other stage's functions:\n  {}",
            reaches.join("\n  ")
        ));
    }
    if !unexercised.is_empty() {
        problems.push(format!(
            "roles of the template that grant AWS calls no test made (their policy is unproven): exercise them in \
             the suite, or list them with a reason in UNEXERCISED (xtask/src/local.rs):\n  {}",
            unexercised.join("\n  ")
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// The stage of the deployed local stack.
fn policies_stage() -> Result<String, String> {
    let path = state_dir().join("template-stack.json");
    let stack: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| e.to_string())?;
    stack["parameters"]["Stage"].as_str().map(str::to_string).ok_or_else(|| "the stack has no Stage".into())
}

/// The writes a stage's roles (and canaryctl's policy) must never be allowed on the other stage's sample
/// functions, whatever the suite happened to call: every alias write and every invocation, on the function,
/// its alias, a version, its worker and its smoke hook. Each allowed one, named.
pub fn reaches_other_stage(
    policies: &std::collections::BTreeMap<String, (String, Vec<Value>)>,
    stage: &str,
) -> Vec<String> {
    let other = if stage == "prod" { "staging" } else { "prod" };
    let base = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:sample-service-{other}");
    let resources = [
        base.clone(),
        format!("{base}:live"),
        format!("{base}:7"),
        format!("{base}-worker:live"),
        format!("{base}-smoke"),
        format!("{base}-smoke:live"),
    ];
    let mut reached = Vec::new();
    for (principal, (who, documents)) in policies {
        for action in ["lambda:UpdateAlias", "lambda:InvokeFunction"] {
            for resource in &resources {
                if local_aws::iam::allowed(documents, action, resource).unwrap_or(true) {
                    reached.push(format!("{who} (role {principal}) may {action} on {resource}"));
                }
            }
        }
    }
    reached
}

/// The roles of the template that the suite may leave without a call, each with the reason: the one place
/// where "never called" is allowed. Every other role that grants an AWS call must be exercised.
pub const UNEXERCISED: [(&str, &str); 1] = [(
    "RolloutStateMachineRole",
    "moto's ASL interpreter invokes the tasks itself, unsigned; the template test checks that this role may invoke \
     exactly the controller's seven task functions",
)];

/// The roles (not canaryctl) that made no call: those that grant calls and are not in [`UNEXERCISED`] (each
/// named with who uses it), and a note for the others.
pub fn unexercised_roles(
    policies: &std::collections::BTreeMap<String, (String, Vec<Value>)>,
    summary: &std::collections::BTreeMap<String, (u64, usize)>,
) -> (Vec<String>, Vec<String>) {
    let (mut unproven, mut notes) = (Vec::new(), Vec::new());
    for (principal, (who, documents)) in policies {
        if principal == CANARYCTL_PRINCIPAL || summary.contains_key(principal) {
            continue;
        }
        let grants = documents.iter().any(|d| d["Statement"].as_array().is_some_and(|s| !s.is_empty()));
        if !grants {
            notes.push(format!("{principal} ({who}) grants no AWS call beyond its logs: nothing to check"));
        } else if let Some((_, why)) = UNEXERCISED.iter().find(|(id, _)| principal.ends_with(id) || who == id) {
            notes.push(format!("{principal} ({who}) is not exercised here: {why}"));
        } else {
            unproven.push(format!("{principal} ({who})"));
        }
    }
    (unproven, notes)
}

/// The calls no policy of their signer allows, and per checked principal (calls, distinct actions). Calls by
/// other principals (the tests' own clients, moto's interpreter) are not the product's and are skipped.
pub fn judge_calls(
    calls: &[(local_aws::iam::Call, u64)],
    policies: &std::collections::BTreeMap<String, (String, Vec<Value>)>,
) -> (Vec<String>, std::collections::BTreeMap<String, (u64, usize)>) {
    let mut failures = Vec::new();
    let mut summary: std::collections::BTreeMap<String, (u64, std::collections::BTreeSet<String>)> = Default::default();
    for (call, count) in calls {
        let Some((who, documents)) = policies.get(&call.principal) else { continue };
        let entry = summary.entry(call.principal.clone()).or_default();
        entry.0 += count;
        entry.1.insert(call.action.clone());
        match local_aws::iam::allowed(documents, &call.action, &call.resource) {
            Ok(true) => {}
            Ok(false) => failures.push(format!(
                "{who} (role {}) called {} on {} ({count} times): not allowed",
                call.principal, call.action, call.resource
            )),
            Err(e) => failures.push(format!("{who} (role {}): {e}", call.principal)),
        }
    }
    (failures, summary.into_iter().map(|(p, (n, a))| (p, (n, a.len()))).collect())
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

/// The stack `up` left running.
pub fn running() -> Result<Stack, String> {
    let stack = read_stack().ok_or("the local AWS stack is not up: cargo xtask local up")?;
    let field = |name: &str| stack[name].as_str().unwrap_or_default().to_string();
    Ok(Stack {
        endpoint_url: field("endpoint_url"),
        state_machine_arn: field("state_machine_arn"),
        moto_url: field("moto_url"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use local_aws::iam::Call;

    #[test]
    fn a_call_its_role_does_not_allow_fails_naming_function_action_and_resource() {
        let policy =
            json!({"Statement": [{"Effect": "Allow", "Action": "lambda:GetAlias", "Resource": "arn:aws:lambda:*"}]});
        let policies = [("role-p".to_string(), ("PrepareFunction".to_string(), vec![policy]))].into();
        let call = |principal: &str, action: &str| {
            (Call { principal: principal.into(), action: action.into(), resource: "*".into() }, 2)
        };
        let calls = [
            (
                Call {
                    principal: "role-p".into(),
                    action: "lambda:GetAlias".into(),
                    resource: "arn:aws:lambda:x".into(),
                },
                1,
            ),
            call("role-p", "cloudwatch:GetMetricData"),
            call("testing", "s3:DeleteBucket"),
        ];
        let (failures, summary) = judge_calls(&calls, &policies);
        assert_eq!(
            failures,
            ["PrepareFunction (role role-p) called cloudwatch:GetMetricData on * (2 times): not allowed"]
        );
        assert_eq!(summary.get("role-p"), Some(&(3, 2)), "the test clients' own calls are not the product's");
        assert!(!summary.contains_key("testing"));
    }

    #[test]
    fn a_role_allowed_to_write_the_other_stages_functions_is_named() {
        let statement = |resource: &str| json!({"Statement": [{"Effect": "Allow", "Action": ["lambda:UpdateAlias"], "Resource": [resource]}]});
        let own = statement("arn:aws:lambda:us-east-1:123456789012:function:sample-service-staging*:*");
        let wide = statement("arn:aws:lambda:us-east-1:123456789012:function:sample-service-*:*");
        let policies = [
            ("role-own".to_string(), ("ShiftFunction".to_string(), vec![own])),
            ("role-wide".to_string(), ("PromoteFunction".to_string(), vec![wide])),
        ]
        .into();
        let reached = reaches_other_stage(&policies, "staging");
        assert!(!reached.is_empty() && reached.iter().all(|r| r.starts_with("PromoteFunction (role role-wide)")));
        assert!(reached.iter().any(|r| {
            r.contains("UpdateAlias on arn:aws:lambda:us-east-1:123456789012:function:sample-service-prod:live")
        }));
    }

    #[test]
    fn a_role_that_grants_calls_no_test_made_fails_unless_listed_with_a_reason() {
        let grants = json!({"Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]});
        let policies = [
            ("canary-HookRole".to_string(), ("SampleSmokeHookFunction".to_string(), vec![grants.clone()])),
            ("canary-WorkerRole".to_string(), ("SampleWorkerFunction".to_string(), vec![])),
            ("canary-RolloutStateMachineRole".to_string(), ("RolloutStateMachineRole".to_string(), vec![grants])),
            (CANARYCTL_PRINCIPAL.to_string(), ("canaryctl".to_string(), vec![])),
        ]
        .into();
        let (unproven, notes) = unexercised_roles(&policies, &Default::default());
        assert_eq!(unproven, ["canary-HookRole (SampleSmokeHookFunction)"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("WorkerRole") && n.contains("nothing to check")), "{notes:?}");
        let called = [("canary-HookRole".to_string(), (3, 1))].into();
        assert!(unexercised_roles(&policies, &called).0.is_empty());
    }
}
