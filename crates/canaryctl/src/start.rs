//! `canaryctl start`: build the request from a file and flags, check it, start it, and follow it.

use crate::cli::{AwsArgs, CliError, Exit, Output, read_input};
use crate::events::{self, EventLine};
use canary_aws::{ExecutionControl, ExecutionHistory, Executions, StepFunctionsExecutions};
use canary_core::execution::{ExecutionOutcome, ExecutionResult, ExecutionStatus, interpret};
use canary_core::{RolloutRequest, parse_request};
use clap::Args;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// The request, from a file and flags (flags override the file's fields): `start` and `plan` take the same.
#[derive(Debug, Clone, Default, Args)]
pub struct RequestArgs {
    /// A request file (docs/request.md), or - for standard input, at most 1 MiB; the flags below override its
    /// fields.
    /// Example: --input deploy/prod-rollout.json
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The function whose alias moves: a name or an ARN. Repeated as NAME:VERSION, a release of several
    /// functions moved, judged and rolled back together (their alias is --alias, or the file's).
    /// Example: --function orders-api:43 --function orders-worker:17 --alias live
    #[arg(long, value_name = "FUNCTION[:VERSION]")]
    pub function: Vec<String>,
    /// The alias to move (every function's, in a release). Example: --alias live
    #[arg(long)]
    pub alias: Option<String>,
    /// The published version to roll out. Example: --version 42
    #[arg(long = "version", value_name = "VERSION")]
    pub new_version: Option<String>,
    /// Linear strategy: this percent more at every step (0 < p <= 100; 100 moves all traffic in one step).
    /// Example: --linear 10
    #[arg(long, value_name = "PERCENT", value_parser = crate::cli::percent, conflicts_with_all = ["canary", "all_at_once", "bake"])]
    pub linear: Option<f64>,
    /// Seconds each linear step is held (default 60); alone, it changes the interval of the file's linear
    /// strategy. Example: --linear 10 --interval 120
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["canary", "all_at_once", "bake"])]
    pub interval: Option<u64>,
    /// Canary strategy: this percent first, held --bake seconds (or the file's canary bake), then 100%.
    /// Example: --canary 5 --bake 600
    #[arg(long, value_name = "PERCENT", value_parser = crate::cli::percent, conflicts_with = "all_at_once")]
    pub canary: Option<f64>,
    /// Seconds the canary (or all-at-once) step is watched; alone, it changes the bake of the file's canary or
    /// all_at_once strategy. Example: --all-at-once --bake 300
    #[arg(long, value_name = "SECONDS")]
    pub bake: Option<u64>,
    /// Straight to 100%, watched for --bake seconds if given. Example: --all-at-once --bake 300
    #[arg(long)]
    pub all_at_once: bool,
    /// The new version's highest acceptable error rate, a fraction from 0 to 1 (not a percent): it is rolled
    /// back once its rate is conclusively above it. Example: --max-error-rate 0.02 (2% of invocations)
    #[arg(long, value_name = "FRACTION")]
    pub max_error_rate: Option<f64>,
    /// The fewest invocations of the new version, over the rollout, before it is promoted (more when the
    /// error bound needs it; `plan` prints how many). Example: --min-invocations 50
    #[arg(long, value_name = "COUNT")]
    pub min_invocations: Option<u64>,
    /// What the promotion does without the evidence it needs: wait (for more traffic), fail or pass.
    /// Example: --no-data fail
    #[arg(long, value_name = "POLICY", value_parser = ["wait", "fail", "pass"])]
    pub no_data: Option<String>,
    /// Seconds CloudWatch data may arrive late (default 120). Example: --metrics-delay 180
    #[arg(long, value_name = "SECONDS")]
    pub metrics_delay: Option<u64>,
    /// Seconds between looks within each hold (default: chosen, every 60 s or more): a version conclusively
    /// worse is rolled back at the next look; 0 looks once, at the end of each hold. Example: --check-interval 0
    #[arg(long, value_name = "SECONDS")]
    pub check_interval: Option<u64>,
    /// Turn health checks off: every step passes; the file's health policy is left out (the request says
    /// only `"health": {"enabled": false}`). Example: --linear 50 --interval 60 --no-health-check
    #[arg(
        long,
        conflicts_with_all = ["max_error_rate", "min_invocations", "no_data", "check_interval", "metrics_delay"]
    )]
    pub no_health_check: bool,
}

/// The alias of a file's release (its first entry's), which flags naming its functions keep.
fn first_alias(functions: Option<&Value>) -> Option<Value> {
    functions?.get(0)?.get("alias").cloned()
}

/// `NAME:VERSION` split at its last colon, when what follows is a version number (an ARN's colons stay with
/// the name: `arn:aws:lambda:...:function:orders:43`).
fn function_and_version(given: &str) -> Option<(&str, &str)> {
    let (function, version) = given.rsplit_once(':')?;
    let digits = !version.is_empty() && version.chars().all(|c| c.is_ascii_digit());
    (digits && !function.ends_with(":function")).then_some((function, version))
}

/// What the `--function` flags name.
enum Named {
    /// None: the file's function (or its release) stands.
    Nothing,
    /// One function, with the version it gives (`--function orders-api:43`) or none.
    One(String, Option<String>),
    /// A release: several functions, each with its version.
    Release(Vec<(String, String)>),
}

impl RequestArgs {
    /// What the `--function` flags name: several must each give a version, as NAME:VERSION, and then the
    /// versions are not given again with `--version`.
    fn named(&self) -> Result<Named, CliError> {
        let split: Vec<Option<(&str, &str)>> = self.function.iter().map(|f| function_and_version(f)).collect();
        let given_twice = || CliError::usage("give each version once: --function NAME:VERSION or --version, not both");
        match (self.function.as_slice(), split.as_slice()) {
            ([], _) => Ok(Named::Nothing),
            ([_], [Some(_)]) if self.new_version.is_some() => Err(given_twice()),
            ([_], [Some((function, version))]) => Ok(Named::One(function.to_string(), Some(version.to_string()))),
            ([function], _) => Ok(Named::One(function.clone(), None)),
            _ if self.new_version.is_some() => Err(given_twice()),
            (given, split) => {
                let mut release = Vec::new();
                for (given, split) in given.iter().zip(split) {
                    let Some((function, version)) = split else {
                        return Err(CliError::usage(format!(
                            "--function {given}: each function of a release gives its version, as NAME:VERSION \
                             (orders-api:43)"
                        )));
                    };
                    release.push((function.to_string(), version.to_string()));
                }
                Ok(Named::Release(release))
            }
        }
    }

    /// Whether any flag changes the request (beyond naming its file).
    fn changes_anything(&self) -> bool {
        let RequestArgs {
            input: _,
            function,
            alias,
            new_version,
            linear,
            interval,
            canary,
            bake,
            all_at_once,
            max_error_rate,
            min_invocations,
            no_data,
            metrics_delay,
            check_interval,
            no_health_check,
        } = self;
        !function.is_empty()
            || alias.is_some()
            || new_version.is_some()
            || linear.is_some()
            || interval.is_some()
            || canary.is_some()
            || bake.is_some()
            || *all_at_once
            || max_error_rate.is_some()
            || min_invocations.is_some()
            || no_data.is_some()
            || metrics_delay.is_some()
            || check_interval.is_some()
            || *no_health_check
    }

    /// The strategy the flags ask for, on top of the file's (`file`, the request's `strategy` object if it
    /// has one): a whole strategy (`--linear`, `--canary`, `--all-at-once`), or one of the file's numbers
    /// changed (`--interval` alone, `--bake` alone). `None` leaves the file's strategy as it is. A flag that
    /// has nothing to change is refused, never dropped.
    fn strategy(&self, file: Option<&Value>) -> Result<Option<Value>, CliError> {
        let from_file = |kind: &str, field: &str| file.and_then(|s| s.get(kind)).and_then(|k| k.get(field)).cloned();
        let usage = |message: &str| CliError { code: Exit::Usage, message: message.to_string() };
        if let Some(percent) = self.linear {
            let interval = self.interval.map(|i| json!(i)).or_else(|| from_file("linear", "interval_seconds"));
            return Ok(Some(
                json!({"linear": {"percent": percent, "interval_seconds": interval.unwrap_or(json!(60))}}),
            ));
        }
        if let Some(percent) = self.canary {
            let bake = self.bake.map(|b| json!(b)).or_else(|| from_file("canary", "bake_seconds")).ok_or_else(|| {
                usage("--canary needs --bake SECONDS (how long the canary step is watched), or a file whose canary gives bake_seconds")
            })?;
            return Ok(Some(json!({"canary": {"percent": percent, "bake_seconds": bake}})));
        }
        if self.all_at_once {
            let bake = self.bake.map(|b| json!(b)).or_else(|| from_file("all_at_once", "bake_seconds"));
            return Ok(Some(json!({"all_at_once": bake.map_or(json!({}), |b| json!({"bake_seconds": b}))})));
        }
        let mut changed = file.cloned();
        if let Some(interval) = self.interval {
            let linear = changed.as_mut().and_then(|s| s.get_mut("linear")).and_then(Value::as_object_mut);
            let linear = linear.ok_or_else(|| {
                usage(
                    "--interval changes a linear strategy: give --linear PERCENT too, or a file with a linear strategy",
                )
            })?;
            linear.insert("interval_seconds".into(), json!(interval));
        }
        if let Some(bake) = self.bake {
            let baked = changed.as_mut().and_then(|s| {
                let kind = if s.get("canary").is_some() { "canary" } else { "all_at_once" };
                s.get_mut(kind).and_then(Value::as_object_mut)
            });
            let baked = baked.ok_or_else(|| {
                usage(
                    "--bake changes a canary or all_at_once strategy: give --canary PERCENT or --all-at-once too, or \
                     a file with one of them",
                )
            })?;
            baked.insert("bake_seconds".into(), json!(bake));
        }
        Ok(changed.filter(|_| self.interval.is_some() || self.bake.is_some()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    /// The controller's state machine. Example: --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout-prod
    #[arg(long, env = "CANARY_STATE_MACHINE_ARN", value_name = "ARN", value_parser = crate::cli::state_machine_arn)]
    pub state_machine_arn: String,
    #[command(flatten)]
    pub launch: LaunchArgs,
    #[arg(skip)]
    pub output: Output,
    #[arg(skip)]
    pub aws: AwsArgs,
}

/// How a rollout is started and followed: `start` and `undo` take the same.
#[derive(Debug, Clone, Default, Args)]
pub struct LaunchArgs {
    /// The execution's name (unique per state machine for 90 days; default: function-alias-vVERSION-time).
    /// Example: --name orders-api-release-2026-12-03
    #[arg(long)]
    pub name: Option<String>,
    /// Follow the rollout to its end; the exit code then says whether the version it rolls out was promoted.
    /// Example: --wait
    #[arg(long)]
    pub wait: bool,
    /// With --wait: stop following after this many seconds (exit 6; the rollout goes on).
    /// Example: --wait --timeout 3600
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub timeout: Option<u64>,
    /// Roll out a version even though its last rollout to this alias was rolled back or aborted (without
    /// it, such a version is refused: a pipeline that runs again must not bring a rejected version back).
    /// `retry` always does (retrying a rejected rollout is what it is for); `undo` needs it to go back to a
    /// version a later rollout set aside. Example: --retry-rejected
    #[arg(long)]
    pub retry_rejected: bool,
    /// Seconds between looks at a followed execution. Example: --wait --poll-seconds 10
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub poll_seconds: u64,
}

/// The request: the file's fields, then the flags on top; as sent (JSON) and as checked. A file in the
/// legacy form is sent as it is, or, when flags change it, in the canonical form it means.
pub fn build_request(args: &RequestArgs) -> Result<(Value, RolloutRequest), CliError> {
    let mut request = match &args.input {
        Some(path) => {
            let text = read_input(path)?;
            canary_core::request::read_request_json(&text)
                .map_err(|refusal| CliError::refused(format!("{}: {refusal}", path.display())))?
        }
        None => Value::Object(Map::new()),
    };
    if canary_core::request::is_legacy(&request) && args.changes_anything() {
        let checked = parse_request(&request).map_err(|refusal| CliError::refused(refusal.to_string()))?;
        request = checked.as_written();
    }
    let Some(object) = request.as_object_mut() else {
        // Not an object: the core's refusal names the input and says what a request looks like.
        let refusal = parse_request(&request).err().map(|r| r.to_string());
        return Err(CliError::refused(refusal.unwrap_or_else(|| "the request must be a JSON object".into())));
    };
    let named = args.named()?;
    let (function, version) = match &named {
        Named::One(function, version) => (Some(function), version.as_ref().or(args.new_version.as_ref())),
        _ => (None, args.new_version.as_ref()),
    };
    for (key, value) in [("function", function), ("alias", args.alias.as_ref()), ("version", version)] {
        if let Some(value) = value {
            object.insert(key.into(), json!(value));
        }
    }
    if let Named::Release(functions) = named {
        // A release from the flags: the functions given, each at the alias given or the file's.
        let alias = object.remove("alias").or_else(|| first_alias(object.get("functions")));
        let Some(alias) = alias else {
            return Err(CliError::usage("a release from --function NAME:VERSION needs --alias (or the file's alias)"));
        };
        let entries: Vec<Value> =
            functions.into_iter().map(|(f, v)| json!({"function": f, "alias": alias, "version": v})).collect();
        object.remove("function");
        object.remove("version");
        object.insert("functions".into(), json!(entries));
    }
    if let Some(strategy) = args.strategy(object.get("strategy"))? {
        object.insert("strategy".into(), strategy);
    }
    // Off means off: the file's other health fields would be refused as ignored.
    if args.no_health_check {
        object.insert("health".into(), json!({"enabled": false}));
    }
    let health = [
        ("max_error_rate", args.max_error_rate.map(|v| json!(v))),
        ("min_invocations", args.min_invocations.map(|v| json!(v))),
        ("no_data", args.no_data.as_ref().map(|v| json!(v))),
        ("metrics_delay_seconds", args.metrics_delay.map(|v| json!(v))),
        ("check_interval_seconds", args.check_interval.map(|v| json!(v))),
    ];
    for (key, value) in health {
        if let Some(value) = value {
            let entry = object.entry("health").or_insert_with(|| json!({}));
            entry
                .as_object_mut()
                .ok_or_else(|| CliError::refused("health: must be an object"))?
                .insert(key.into(), value);
        }
    }
    let checked = parse_request(&request).map_err(|refusal| CliError::refused(refusal.to_string()))?;
    Ok((request, checked))
}

/// A readable, unique execution name: `function-alias-vVERSION-YYYYMMDDTHHMMSSZ` (a release's first
/// function, then `-and-N` for the N others), within Step Functions'
/// 80 characters of letters, digits, '-' and '_'. Made from the checked request, whichever form it came in.
pub fn default_name(request: &RolloutRequest, now: chrono::DateTime<chrono::Utc>) -> String {
    // A release is named after its first function, with how many more it moves.
    let more = request.targets().len() - 1;
    let more = if more > 0 { format!("-and-{more}") } else { String::new() };
    let name = format!("{}-{}-v{}{more}", request.function_name(), request.alias, request.version);
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let stamp = now.format("-%Y%m%dT%H%M%SZ").to_string();
    format!("{}{stamp}", &name[..name.len().min(80 - stamp.len())])
}

/// Refuses a request that could not be judged where it runs (`where_`: "aws", "local", or the state
/// machine's ARN), naming the fields in the terms the request was written in.
pub fn check_deployment(
    input: &Value,
    request: &RolloutRequest,
    deployment: &canary_core::deployment::Deployment,
    where_: &str,
) -> Result<(), CliError> {
    deployment.check(request).map_err(|refusal| {
        let refusal = canary_core::request::as_given(input, refusal);
        CliError::refused(format!("{refusal}\n(checked against where it runs: {where_})"))
    })
}

pub async fn run(args: StartArgs) -> Result<Exit, CliError> {
    let (request, checked) = build_request(&args.request)?;
    launch(&args, &request, &checked).await
}

/// Starts `request` (checked as `checked`) as `start` does: the same checks against where it runs, a busy
/// alias and a rejected version, then (with `--wait`) follows it. `args.request` is not read.
pub async fn launch(args: &StartArgs, request: &Value, checked: &RolloutRequest) -> Result<Exit, CliError> {
    let name = args.launch.name.clone().unwrap_or_else(|| default_name(checked, chrono::Utc::now()));
    let config = args.aws.config_for(&args.state_machine_arn).await;
    let executions = StepFunctionsExecutions::from_config(&config);
    // What the deployed Prepare will check the request against: the facts in its state machine's definition.
    let definition = executions
        .definition(&args.state_machine_arn)
        .await
        .map_err(|e| crate::cli::state_machine_unread(&args.state_machine_arn, &e))?;
    let deployment = canary_core::deployment::Deployment::from_definition(&definition).unwrap_or_default();
    check_deployment(request, checked, &deployment, &args.state_machine_arn)?;
    refuse_versions_not_serving(&canary_aws::LambdaAliases::from_config(&config), checked).await?;
    // The state machine refuses a second rollout of a busy alias too (a console start bypasses this
    // check); checking first says so before an execution is created for nothing.
    let running = executions
        .running(&args.state_machine_arn)
        .await
        .map_err(|e| CliError::from_aws("could not list running rollouts", &e))?;
    canary_core::concurrency::refuse_if_alias_busy(checked, None, chrono::Utc::now(), &running)
        .map_err(|refusal| CliError::refused(refusal.to_string()))?;
    if !args.launch.retry_rejected {
        let finished = finished_rollouts(&executions, &args.state_machine_arn, checked).await?;
        canary_core::concurrency::refuse_if_rejected(checked, &finished)
            .map_err(|refusal| CliError::refused(refusal.to_string()))?;
    }
    let arn = executions
        .start(&args.state_machine_arn, Some(&name), &request.to_string())
        .await
        .map_err(|e| CliError::from_aws("could not start the rollout", &e))?;
    if !args.launch.wait {
        match args.output {
            Output::Json => {
                let started = crate::output::Started { execution_arn: arn.clone() };
                println!("{}", serde_json::to_string(&started).expect("outputs serialise"))
            }
            Output::Text => println!("started {arn}"),
        }
        return Ok(Exit::Success);
    }
    eprintln!("started {arn}");
    let deadline = args.launch.timeout.map(Duration::from_secs);
    // The outcome goes to stdout (print_result), the progress to stderr.
    let mut lines = Lines(|line: EventLine| {
        if !matches!(line.event, events::Event::Ended { .. }) {
            eprintln!("{}", line.event.message())
        }
    });
    let result = follow(&executions, &arn, Duration::from_secs(args.launch.poll_seconds), deadline, &mut lines).await?;
    print_result(&arn, &result, args.output);
    Ok(exit_code(&result))
}

/// Refuses, before an execution is created, a version Lambda cannot invoke now (Pending, Inactive, Failed):
/// `Prepare` would refuse it too, and `undo` and `retry` start through here. A version that does not exist
/// is left to `Prepare`, which names every problem of the request at once.
pub async fn refuse_versions_not_serving(
    aliases: &dyn canary_aws::Aliases,
    request: &RolloutRequest,
) -> Result<(), CliError> {
    for target in request.targets() {
        let config = aliases.version_config(&target.function, &target.version).await.map_err(|e| {
            CliError::from_aws(format!("could not read {} version {}", target.function, target.version), &e)
        })?;
        if let Some((what, fix)) = config.and_then(|c| c.state.not_serving(&target.function, &target.version)) {
            return Err(CliError::refused(format!("{what}: {fix}")));
        }
    }
    Ok(())
}

/// How many of the state machine's latest executions `start` reads for an earlier verdict on the version.
const RECENT_EXECUTIONS: i32 = 100;

/// The state machine's latest finished executions, newest first, with their inputs and outcomes; reading
/// stops at the first that rolled out `request`'s function, alias and version and reached a verdict.
async fn finished_rollouts(
    executions: &dyn Executions,
    state_machine_arn: &str,
    request: &RolloutRequest,
) -> Result<Vec<canary_core::concurrency::FinishedExecution>, CliError> {
    let recent = executions
        .recent(state_machine_arn, RECENT_EXECUTIONS)
        .await
        .map_err(|e| CliError::from_aws("could not list recent rollouts", &e))?;
    let mut finished = Vec::new();
    for execution in recent.iter().filter(|e| e.status != ExecutionStatus::Running) {
        let info =
            executions.describe(&execution.arn).await.map_err(|e| CliError::from_aws("could not read it", &e))?;
        let outcome = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref());
        finished.push(canary_core::concurrency::FinishedExecution {
            name: info.name,
            input: info.input.unwrap_or_default(),
            outcome: outcome.outcome,
        });
        if canary_core::concurrency::latest_verdict(request, &finished).is_some() {
            break;
        }
    }
    Ok(finished)
}

/// Who follows an execution: told each event as it happens, and after every look at the execution.
pub trait Progress {
    fn event(&mut self, line: EventLine);
    /// After a look that found nothing new (a live view redraws its clock).
    fn tick(&mut self) {}
}

/// Progress as lines, each event given to the function.
pub struct Lines<F: FnMut(EventLine)>(pub F);

impl<F: FnMut(EventLine)> Progress for Lines<F> {
    fn event(&mut self, line: EventLine) {
        (self.0)(line)
    }
}

/// Follows an execution until it ends, telling `progress` each event of the states it leaves, and the end
/// (an `ended` event at the execution's stop time). Each look costs
/// two calls (`DescribeExecution`, and the history newer than the last event seen, a page), so at the default
/// poll of 5 s a follower makes 24 calls a minute however long the history grows.
pub async fn follow(
    executions: &dyn ExecutionHistory,
    arn: &str,
    poll: Duration,
    timeout: Option<Duration>,
    progress: &mut dyn Progress,
) -> Result<ExecutionResult, CliError> {
    let mut seen = 0;
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let name = arn.rsplit(':').next().unwrap_or(arn);
    loop {
        let info =
            executions.describe(arn).await.map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
        let exits = executions
            .state_exits_after(arn, seen)
            .await
            .map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
        for exit in exits {
            seen = seen.max(exit.event_id);
            for event in events::of_state(name, &exit.state_name, exit.output.as_deref()) {
                progress.event(EventLine::new(arn, exit.at, event));
            }
        }
        if info.status != ExecutionStatus::Running {
            let result = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref());
            let at = info.stopped_at.unwrap_or_else(chrono::Utc::now);
            progress.event(EventLine::new(arn, at, events::ended(&result)));
            return Ok(result);
        }
        if deadline.is_some_and(|d| std::time::Instant::now() + poll > d) {
            return Err(CliError {
                code: Exit::StillRunning,
                message: format!(
                    "{arn} is still running after {} s; it goes on (canaryctl watch {arn} follows it again)",
                    timeout.unwrap_or_default().as_secs()
                ),
            });
        }
        progress.tick();
        tokio::time::sleep(poll).await;
    }
}

pub fn exit_code(result: &ExecutionResult) -> Exit {
    match result.outcome {
        ExecutionOutcome::Promoted => Exit::Success,
        ExecutionOutcome::Refused => Exit::Refused,
        _ => Exit::NotPromoted,
    }
}

fn print_result(arn: &str, result: &ExecutionResult, output: Output) {
    match output {
        Output::Json => {
            let ended = crate::output::Ended::of(arn, result);
            println!("{}", serde_json::to_string(&ended).expect("outputs serialise"));
        }
        Output::Text => {
            let why = result.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            println!("{}{why}", result.outcome);
            for warning in result.report.iter().flat_map(|r| &r.warnings) {
                println!("warning: {warning}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use canary_aws::{AwsError, ExecutionInfo, StateExit};
    use std::sync::Mutex;

    fn args(extra: &[&str]) -> RequestArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            start: StartArgs,
        }
        let base = ["x", "--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:m"];
        Wrapper::parse_from(base.iter().chain(extra)).start.request
    }

    #[test]
    fn flags_build_the_request_and_override_the_file() {
        let file = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let (request, _) = build_request(&args(&[
            "--input",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/linear.json"),
            "--version",
            "43",
            "--canary",
            "5",
            "--bake",
            "300",
            "--max-error-rate",
            "0.02",
            "--no-data",
            "fail",
            "--check-interval",
            "60",
        ]))
        .unwrap();
        assert_eq!(request["version"], "43");
        assert_eq!(request["strategy"], json!({"canary": {"percent": 5.0, "bake_seconds": 300}}));
        assert_eq!(request["health"]["max_error_rate"], 0.02);
        assert_eq!(request["health"]["check_interval_seconds"], 60);
        assert_eq!(request["health"]["min_invocations"], 20, "fields the flags do not name stay as in the file");

        let (flags_only, checked) = build_request(&args(&[
            "--function",
            "f",
            "--alias",
            "a",
            "--version",
            "2",
            "--linear",
            "25",
            "--no-health-check",
        ]))
        .unwrap();
        assert_eq!(flags_only["strategy"], json!({"linear": {"percent": 25.0, "interval_seconds": 60}}));
        assert_eq!(flags_only["health"], json!({"enabled": false}));
        let (file_off, _) = build_request(&args(&["--input", &file("linear.json"), "--no-health-check"])).unwrap();
        assert_eq!(file_off["health"], json!({"enabled": false}), "the file's policy is left out, not refused");
        assert!(!checked.health.enabled, "the checked request is returned with the JSON");
        let (at_once, _) = build_request(&args(&[
            "--function",
            "f",
            "--alias",
            "a",
            "--version",
            "2",
            "--all-at-once",
            "--bake",
            "60",
        ]))
        .unwrap();
        assert_eq!(at_once["strategy"], json!({"all_at_once": {"bake_seconds": 60}}));
        let error = build_request(&args(&["--function", "f", "--alias", "a"])).unwrap_err();
        assert_eq!(error.code, Exit::Refused);
        assert!(error.message.contains("version: is missing"), "{}", error.message);
    }

    #[tokio::test]
    async fn following_gives_up_at_the_timeout_and_says_the_rollout_goes_on() {
        let scripted = Scripted {
            looks: Mutex::new(0),
            end: ExecutionInfo {
                arn: "arn:exec".into(),
                name: "x".into(),
                status: ExecutionStatus::Succeeded,
                input: None,
                started_at: chrono::DateTime::default(),
                stopped_at: None,
                output: None,
                error: None,
                cause: None,
            },
            exits: Vec::new(),
        };
        let failure = follow(&scripted, "arn:exec", Duration::from_millis(1), Some(Duration::ZERO), &mut Lines(|_| ()))
            .await
            .unwrap_err();
        assert_eq!(failure.code, Exit::StillRunning);
        assert!(failure.message.contains("still running") && failure.message.contains("watch arn:exec"));
    }

    #[test]
    fn flags_that_contradict_each_other_are_refused_not_dropped() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Wrapper {
            #[command(flatten)]
            request: RequestArgs,
        }
        let base = ["x", "--function", "f", "--alias", "a", "--version", "2"];
        for conflict in [
            &["--linear", "10", "--bake", "60"][..],
            &["--linear", "10", "--canary", "5", "--bake", "60"],
            &["--canary", "5", "--bake", "60", "--all-at-once"],
            &["--no-health-check", "--max-error-rate", "0.1"],
            &["--no-data", "maybe"],
        ] {
            let error = Wrapper::try_parse_from(base.iter().chain(conflict)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{conflict:?}");
        }
    }

    #[test]
    fn a_strategy_flag_alone_changes_the_files_strategy_or_is_refused() {
        let file = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let linear = file("linear.json");
        let (request, _) = build_request(&args(&["--input", &linear, "--interval", "300"])).unwrap();
        assert_eq!(request["strategy"]["linear"]["interval_seconds"], 300, "--interval alone changes the file's");
        assert_eq!(request["strategy"]["linear"]["percent"], 10, "and keeps its percent");
        let (request, _) = build_request(&args(&["--input", &linear, "--canary", "5", "--bake", "60"])).unwrap();
        assert_eq!(request["strategy"], json!({"canary": {"percent": 5.0, "bake_seconds": 60}}));
        let base = ["--function", "f", "--alias", "a", "--version", "2"];
        for (extra, named) in [
            (&["--interval", "60"][..], "--interval"),
            (&["--bake", "60"], "--bake"),
            (&["--canary", "5"], "--canary needs --bake"),
            (&["--input", &linear, "--bake", "60"], "--bake"),
        ] {
            let error = build_request(&args(&[&base[..], extra].concat())).unwrap_err();
            assert_eq!(error.code, Exit::Usage, "{extra:?}");
            assert!(error.message.contains(named), "{extra:?}: {}", error.message);
        }
        let (request, _) = build_request(&args(&[&base[..], &["--all-at-once", "--bake", "30"]].concat())).unwrap();
        assert_eq!(request["strategy"], json!({"all_at_once": {"bake_seconds": 30}}));
    }

    #[test]
    fn flags_change_a_legacy_file_through_the_canonical_form_it_means() {
        let legacy = format!("{}/tests/fixtures/legacy.json", env!("CARGO_MANIFEST_DIR"));
        let (untouched, _) = build_request(&args(&["--input", &legacy])).unwrap();
        assert!(untouched.get("function-name").is_some(), "without flags the file is sent as it is: {untouched}");
        let (changed, checked) =
            build_request(&args(&["--input", &legacy, "--version", "9", "--interval", "30"])).unwrap();
        assert_eq!((changed["version"].as_str(), checked.version.as_str()), (Some("9"), "9"));
        assert_eq!(changed["strategy"]["linear"]["interval_seconds"], 30);
        assert!(changed.get("function-name").is_none() && changed["function"] == "MyFunction", "{changed}");
    }

    /// An execution that runs for two looks, then ends as scripted.
    struct Scripted {
        looks: Mutex<usize>,
        end: ExecutionInfo,
        exits: Vec<StateExit>,
    }

    #[async_trait]
    impl ExecutionHistory for Scripted {
        async fn describe(&self, arn: &str) -> Result<ExecutionInfo, AwsError> {
            let mut looks = self.looks.lock().unwrap();
            *looks += 1;
            if *looks < 3 {
                Ok(ExecutionInfo {
                    status: ExecutionStatus::Running,
                    output: None,
                    error: None,
                    cause: None,
                    ..self.end.clone()
                })
            } else {
                Ok(ExecutionInfo { arn: arn.into(), ..self.end.clone() })
            }
        }
        async fn state_exits_after(&self, _: &str, after: i64) -> Result<Vec<StateExit>, AwsError> {
            let looks = *self.looks.lock().unwrap();
            Ok(self.exits.iter().take(looks).filter(|e| e.event_id > after).cloned().collect())
        }
        async fn newest_state_output(
            &self,
            _: &str,
            _: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
        ) -> Result<Option<String>, AwsError> {
            unreachable!("follow reads the history oldest first")
        }
        async fn ended_since(
            &self,
            _: &str,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<Vec<canary_aws::ExecutionSummary>, AwsError> {
            unreachable!("only the safety net sweeps")
        }
    }

    #[tokio::test]
    async fn follow_prints_each_state_once_and_reads_the_outcome() {
        let state = json!({
            "request": {"function": "orders", "alias": "live", "version": "2",
                        "strategy": {"canary": {"percent": 10.0, "bake_seconds": 60}},
                        "health": {"enabled": true, "max_error_rate": 0.01, "min_invocations": 10, "no_data": "wait",
                                   "no_data_max_wait_seconds": 600, "metrics_delay_seconds": 0}},
            "old_version": "1", "original": {"function_version": "1", "additional_version_weights": {}},
            "revision_id": "r1", "step": 0, "step_count": 2, "step_started_at": "2026-11-28T12:00:00Z",
            "waited_for_data_seconds": 0, "wait_seconds": 60, "next": "hold", "started_at": "2026-11-28T12:00:00Z",
            "history": [], "history_omitted": 0
        });
        let exit = |id, name: &str| StateExit {
            event_id: id,
            state_name: name.into(),
            output: Some(state.to_string()),
            at: chrono::DateTime::default(),
        };
        let scripted = Scripted {
            looks: Mutex::new(0),
            end: ExecutionInfo {
                arn: "arn:exec".into(),
                name: "x".into(),
                status: ExecutionStatus::Failed,
                input: None,
                started_at: chrono::DateTime::default(),
                stopped_at: None,
                output: None,
                error: Some("RequestRefused".into()),
                cause: Some(json!({"errorMessage": "alias: nope"}).to_string()),
            },
            exits: vec![exit(2, "Prepare"), exit(5, "Shift"), exit(6, "Route")],
        };
        let mut lines = Vec::new();
        let mut progress = Lines(|l: EventLine| lines.push(l.event.message().to_string()));
        let result = follow(&scripted, "arn:exec", Duration::from_millis(1), None, &mut progress).await.unwrap();
        assert_eq!(
            lines,
            [
                "prepared: orders:live from version 1 to 2 in 2 steps",
                "step 1/2: alias routes 1 (90%) + 2 (10%), checked in 1m00s",
                "refused: alias: nope"
            ]
        );
        assert_eq!((result.outcome.as_str(), exit_code(&result)), ("refused", Exit::Refused));
    }

    #[test]
    fn default_names_are_readable_unique_and_valid() {
        use chrono::TimeZone;
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 5).unwrap();
        let checked = |request: Value| canary_core::parse_request(&request).unwrap();
        let canonical = checked(
            json!({"function": "arn:aws:lambda:us-east-1:123456789012:function:orders", "alias": "live", "version": "42"}),
        );
        assert_eq!(default_name(&canonical, now), "orders-live-v42-20261128T120005Z");
        let legacy = checked(json!({"function-name": "MyFunction", "alias-name": "MyAlias", "new-version": 2,
                                    "steps": 4, "interval": 60}));
        assert_eq!(default_name(&legacy, now), "MyFunction-MyAlias-v2-20261128T120005Z");
        let long = checked(json!({"function": "f".repeat(64), "alias": "a".repeat(40), "version": "7"}));
        let name = default_name(&long, now);
        assert_eq!(name.len(), 80);
        assert!(name.ends_with("-20261128T120005Z"));
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{name}");
    }

    #[test]
    fn exit_codes() {
        let result = |outcome| ExecutionResult { outcome, report: None, message: None };
        use ExecutionOutcome::*;
        let codes = [Promoted, Refused, RolledBack, Aborted, TimedOut, RollbackFailed, Failed, Running]
            .map(|outcome| exit_code(&result(outcome)));
        assert_eq!(
            codes,
            [
                Exit::Success,
                Exit::Refused,
                Exit::NotPromoted,
                Exit::NotPromoted,
                Exit::NotPromoted,
                Exit::NotPromoted,
                Exit::NotPromoted,
                Exit::NotPromoted
            ]
        );
    }
}
