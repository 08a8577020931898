//! `canaryctl start`: build the request from a file and flags, check it, start it, and follow it.

use crate::{AwsArgs, Exit, Failure, Output, read_input, render};
use canary_aws::{ExecutionControl, ExecutionHistory, Executions, StepFunctionsExecutions};
use canary_core::execution::{ExecutionOutcome, ExecutionResult, ExecutionStatus, interpret};
use canary_core::{RolloutRequest, parse_request};
use clap::Args;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// The request, from a file and flags (flags override the file's fields): `start` and `plan` take the same.
#[derive(Debug, Clone, Default, Args)]
pub struct RequestArgs {
    /// A request file (docs/request.md), or - for standard input; the flags below override its fields.
    /// Example: --input deploy/prod-rollout.json
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The function whose alias moves: a name or an ARN. Example: --function orders-api
    #[arg(long)]
    pub function: Option<String>,
    /// The alias to move. Example: --alias live
    #[arg(long)]
    pub alias: Option<String>,
    /// The published version to roll out. Example: --version 42
    #[arg(long = "version", value_name = "VERSION")]
    pub new_version: Option<String>,
    /// Linear strategy: this percent more at every step (a percent, 0 < p < 100). Example: --linear 10
    #[arg(long, value_name = "PERCENT", conflicts_with_all = ["canary", "all_at_once", "bake"])]
    pub linear: Option<f64>,
    /// Seconds each linear step is held (default 60). Example: --linear 10 --interval 120
    #[arg(long, value_name = "SECONDS", requires = "linear")]
    pub interval: Option<u64>,
    /// Canary strategy: this percent first, held --bake seconds, then 100%. Example: --canary 5 --bake 600
    #[arg(long, value_name = "PERCENT", requires = "bake", conflicts_with = "all_at_once")]
    pub canary: Option<f64>,
    /// Seconds the canary (or all-at-once) step is watched. Example: --all-at-once --bake 300
    #[arg(long, value_name = "SECONDS")]
    pub bake: Option<u64>,
    /// Straight to 100%, watched for --bake seconds if given.
    #[arg(long)]
    pub all_at_once: bool,
    /// The new version's highest acceptable error rate, a fraction from 0 to 1 (not a percent).
    /// Example: --max-error-rate 0.02 (2% of invocations)
    #[arg(long, value_name = "FRACTION")]
    pub max_error_rate: Option<f64>,
    /// Fewer invocations of the new version than this in a step are not evidence. Example: --min-invocations 50
    #[arg(long, value_name = "COUNT")]
    pub min_invocations: Option<u64>,
    /// What a step with too little traffic does: wait, fail or pass. Example: --no-data fail
    #[arg(long, value_name = "POLICY", value_parser = ["wait", "fail", "pass"])]
    pub no_data: Option<String>,
    /// Seconds CloudWatch data may arrive late (default 120). Example: --metrics-delay 180
    #[arg(long, value_name = "SECONDS")]
    pub metrics_delay: Option<u64>,
    /// Seconds between looks within each hold: a version conclusively worse is rolled back at the next look
    /// instead of at the end of the hold (60 matches CloudWatch's resolution). Example: --check-interval 60
    #[arg(long, value_name = "SECONDS")]
    pub check_interval: Option<u64>,
    /// Turn health checks off: every step passes.
    #[arg(long, conflicts_with_all = ["max_error_rate", "min_invocations", "no_data", "check_interval"])]
    pub no_health_check: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    /// The controller's state machine. Example: --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout-prod
    #[arg(long, env = "CANARY_STATE_MACHINE_ARN", value_name = "ARN")]
    pub state_machine_arn: String,
    /// The execution's name (unique per state machine for 90 days; default: function-alias-vVERSION-time).
    #[arg(long)]
    pub name: Option<String>,
    /// Follow the rollout to its end; the exit code then says whether the new version was promoted.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: stop following after this many seconds (exit 6; the rollout goes on). Example: --timeout 3600
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub timeout: Option<u64>,
    /// Roll out a version even though its last rollout to this alias was rolled back or aborted (without
    /// it, such a version is refused: a pipeline that runs again must not bring a rejected version back).
    #[arg(long)]
    pub retry_rejected: bool,
    /// Seconds between looks at a followed execution.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub poll_seconds: u64,
    #[arg(skip)]
    pub output: Output,
    #[arg(skip)]
    pub aws: AwsArgs,
}

/// The request: the file's fields, then the flags on top; as sent (JSON) and as checked.
pub fn build_request(args: &RequestArgs) -> Result<(Value, RolloutRequest), Failure> {
    let mut request = match &args.input {
        Some(path) => {
            let text = read_input(path)?;
            canary_core::request::read_request_json(&text)
                .map_err(|refusal| Failure::refused(format!("{}: {refusal}", path.display())))?
        }
        None => Value::Object(Map::new()),
    };
    let Some(object) = request.as_object_mut() else {
        // Not an object: the core's refusal names the input and says what a request looks like.
        let refusal = parse_request(&request).err().map(|r| r.to_string());
        return Err(Failure::refused(refusal.unwrap_or_else(|| "the request must be a JSON object".into())));
    };
    for (key, value) in [("function", &args.function), ("alias", &args.alias), ("version", &args.new_version)] {
        if let Some(value) = value {
            object.insert(key.into(), json!(value));
        }
    }
    let strategy = if let Some(percent) = args.linear {
        Some(json!({"linear": {"percent": percent, "interval_seconds": args.interval.unwrap_or(60)}}))
    } else if let Some(percent) = args.canary {
        Some(json!({"canary": {"percent": percent, "bake_seconds": args.bake}}))
    } else if args.all_at_once {
        Some(json!({"all_at_once": args.bake.map_or(json!({}), |b| json!({"bake_seconds": b}))}))
    } else {
        None
    };
    if let Some(strategy) = strategy {
        object.insert("strategy".into(), strategy);
    }
    let health = [
        ("max_error_rate", args.max_error_rate.map(|v| json!(v))),
        ("min_invocations", args.min_invocations.map(|v| json!(v))),
        ("no_data", args.no_data.as_ref().map(|v| json!(v))),
        ("metrics_delay_seconds", args.metrics_delay.map(|v| json!(v))),
        ("check_interval_seconds", args.check_interval.map(|v| json!(v))),
        ("enabled", args.no_health_check.then_some(json!(false))),
    ];
    for (key, value) in health {
        if let Some(value) = value {
            let entry = object.entry("health").or_insert_with(|| json!({}));
            entry
                .as_object_mut()
                .ok_or_else(|| Failure::refused("health: must be an object"))?
                .insert(key.into(), value);
        }
    }
    let checked = parse_request(&request).map_err(|refusal| Failure::refused(refusal.to_string()))?;
    Ok((request, checked))
}

/// A readable, unique execution name: `function-alias-vVERSION-YYYYMMDDTHHMMSSZ`, within Step Functions'
/// 80 characters of letters, digits, '-' and '_'. Made from the checked request, whichever form it came in.
pub fn default_name(request: &RolloutRequest, now: chrono::DateTime<chrono::Utc>) -> String {
    let name = format!("{}-{}-v{}", request.function_name(), request.alias, request.version);
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let stamp = now.format("-%Y%m%dT%H%M%SZ").to_string();
    format!("{}{stamp}", &name[..name.len().min(80 - stamp.len())])
}

pub async fn run(args: StartArgs) -> Result<Exit, Failure> {
    let (request, checked) = build_request(&args.request)?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&checked, chrono::Utc::now()));
    let config = args.aws.config_for(&args.state_machine_arn).await;
    let executions = StepFunctionsExecutions::from_config(&config);
    // The state machine refuses a second rollout of a busy alias too (a console start bypasses this
    // check); checking first says so before an execution is created for nothing.
    let running = executions
        .running(&args.state_machine_arn)
        .await
        .map_err(|e| Failure::from_aws("could not list running rollouts", &e))?;
    canary_core::concurrency::refuse_if_alias_busy(&checked, None, chrono::Utc::now(), &running)
        .map_err(|refusal| Failure::refused(refusal.to_string()))?;
    if !args.retry_rejected {
        let finished = finished_rollouts(&executions, &args.state_machine_arn, &checked).await?;
        canary_core::concurrency::refuse_if_rejected(&checked, &finished)
            .map_err(|refusal| Failure::refused(refusal.to_string()))?;
    }
    let arn = executions
        .start(&args.state_machine_arn, Some(&name), &request.to_string())
        .await
        .map_err(|e| Failure::from_aws("could not start the rollout", &e))?;
    if !args.wait {
        match args.output {
            Output::Json => println!("{}", json!({"execution_arn": arn})),
            Output::Text => println!("started {arn}"),
        }
        return Ok(Exit::Success);
    }
    eprintln!("started {arn}");
    let deadline = args.timeout.map(Duration::from_secs);
    let result =
        follow(&executions, &arn, Duration::from_secs(args.poll_seconds), deadline, |line| eprintln!("{line}")).await?;
    print_result(&arn, &result, args.output);
    Ok(exit_code(&result))
}

/// How many of the state machine's latest executions `start` reads for an earlier verdict on the version.
const RECENT_EXECUTIONS: i32 = 100;

/// The state machine's latest finished executions, newest first, with their inputs and outcomes; reading
/// stops at the first that rolled out `request`'s function, alias and version and reached a verdict.
async fn finished_rollouts(
    executions: &dyn Executions,
    state_machine_arn: &str,
    request: &RolloutRequest,
) -> Result<Vec<canary_core::concurrency::FinishedExecution>, Failure> {
    let recent = executions
        .recent(state_machine_arn, RECENT_EXECUTIONS)
        .await
        .map_err(|e| Failure::from_aws("could not list recent rollouts", &e))?;
    let mut finished = Vec::new();
    for execution in recent.iter().filter(|e| e.status != ExecutionStatus::Running) {
        let info = executions.describe(&execution.arn).await.map_err(|e| Failure::from_aws("could not read it", &e))?;
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

/// Follows an execution until it ends, passing each new progress line to `on_line`.
pub async fn follow(
    executions: &dyn ExecutionHistory,
    arn: &str,
    poll: Duration,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(String),
) -> Result<ExecutionResult, Failure> {
    let mut seen = HashSet::new();
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let info =
            executions.describe(arn).await.map_err(|e| Failure::from_aws(format!("could not read {arn}"), &e))?;
        let exits =
            executions.state_exits(arn).await.map_err(|e| Failure::from_aws(format!("could not read {arn}"), &e))?;
        for exit in exits {
            if seen.insert(exit.event_id)
                && let Some(line) = render::progress_line(&exit.state_name, exit.output.as_deref())
            {
                on_line(line);
            }
        }
        if info.status != ExecutionStatus::Running {
            return Ok(interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref()));
        }
        if deadline.is_some_and(|d| std::time::Instant::now() + poll > d) {
            return Err(Failure {
                code: Exit::StillRunning,
                message: format!(
                    "{arn} is still running after {} s; it goes on (canaryctl watch {arn} follows it again)",
                    timeout.unwrap_or_default().as_secs()
                ),
            });
        }
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
            let mut value = serde_json::to_value(result).expect("results serialise");
            value["execution_arn"] = json!(arn);
            println!("{value}");
        }
        Output::Text => {
            let why = result.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            println!("{}{why}", result.outcome);
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
        let base = ["x", "--state-machine-arn", "arn:sm"];
        Wrapper::parse_from(base.iter().chain(extra)).start.request
    }

    #[test]
    fn flags_build_the_request_and_override_the_file() {
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
            "--metrics-delay",
            "0",
        ]))
        .unwrap();
        assert_eq!(flags_only["strategy"], json!({"linear": {"percent": 25.0, "interval_seconds": 60}}));
        assert_eq!(flags_only["health"], json!({"enabled": false, "metrics_delay_seconds": 0}));
        assert!(!checked.health.enabled, "the checked request is returned with the JSON");
        let (at_once, _) =
            build_request(&args(&["--function", "f", "--alias", "a", "--version", "2", "--all-at-once"])).unwrap();
        assert_eq!(at_once["strategy"], json!({"all_at_once": {}}));
        let failure = build_request(&args(&["--function", "f", "--alias", "a"])).unwrap_err();
        assert_eq!(failure.code, Exit::Refused);
        assert!(failure.message.contains("version: is missing"), "{}", failure.message);
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
                output: None,
                error: None,
                cause: None,
            },
            exits: Vec::new(),
        };
        let failure =
            follow(&scripted, "arn:exec", Duration::from_millis(1), Some(Duration::ZERO), |_| ()).await.unwrap_err();
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
            &["--interval", "60"],
            &["--no-health-check", "--max-error-rate", "0.1"],
            &["--no-data", "maybe"],
        ] {
            let error = Wrapper::try_parse_from(base.iter().chain(conflict)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{conflict:?}");
        }
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
        async fn state_exits(&self, _: &str) -> Result<Vec<StateExit>, AwsError> {
            let looks = *self.looks.lock().unwrap();
            Ok(self.exits.iter().take(looks).cloned().collect())
        }
        async fn newest_state_output(
            &self,
            _: &str,
            _: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
        ) -> Result<Option<String>, AwsError> {
            unreachable!("follow reads the history oldest first")
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
        let exit =
            |id, name: &str| StateExit { event_id: id, state_name: name.into(), output: Some(state.to_string()) };
        let scripted = Scripted {
            looks: Mutex::new(0),
            end: ExecutionInfo {
                arn: "arn:exec".into(),
                name: "x".into(),
                status: ExecutionStatus::Failed,
                input: None,
                started_at: chrono::DateTime::default(),
                output: None,
                error: Some("RequestRefused".into()),
                cause: Some(json!({"errorMessage": "alias: nope"}).to_string()),
            },
            exits: vec![exit(2, "Prepare"), exit(5, "Shift"), exit(6, "Route")],
        };
        let mut lines = Vec::new();
        let result = follow(&scripted, "arn:exec", Duration::from_millis(1), None, |l| lines.push(l)).await.unwrap();
        assert_eq!(
            lines,
            [
                "prepared: orders:live from version 1 to 2 in 2 steps",
                "step 1/2: alias routes 1 (90%) + 2 (10%), checked in 1m00s"
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
