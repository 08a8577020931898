//! Operating rollouts that run: `status`, `watch`, `list`, `abort`.

use crate::cli::{AwsArgs, CliError, Exit, Output};
use crate::events::{self, EventLine};
use crate::live::LiveView;
use crate::render::ListRow;
use crate::start::{Lines, Progress, exit_code, follow};
use crate::views::{RolloutView, StatusView};
use canary_aws::{
    Aliases, ExecutionControl, ExecutionHistory, ExecutionInfo, LambdaAliases, LambdaFunctions, StepFunctionsExecutions,
};
use canary_core::Rollout;
use canary_core::asl::ErrorName;
use canary_core::execution::{ExecutionStatus, interpret};
use canary_core::rollout::Decision;
use canary_core::safety_net::{Action, Handled};
use chrono::Utc;
use clap::Args;
use serde_json::json;
use std::time::Duration;

/// Which execution: an ARN, a name under the state machine, or the service it rolls out (`FUNCTION:ALIAS`).
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The execution's ARN, its name, or FUNCTION:ALIAS (such as orders-api:live) for that alias's current
    /// rollout (the one its lock names) or else its latest; names and FUNCTION:ALIAS need --state-machine-arn
    /// or CANARY_STATE_MACHINE_ARN.
    pub execution: String,
    /// Where a name is looked up. Example: --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout-prod
    #[arg(long, env = "CANARY_STATE_MACHINE_ARN", value_name = "ARN", value_parser = crate::cli::state_machine_arn)]
    pub state_machine_arn: Option<String>,
    #[arg(skip)]
    pub output: Output,
    #[arg(skip)]
    pub aws: AwsArgs,
}

/// How many of the state machine's latest executions `FUNCTION:ALIAS` looks through for the alias's latest
/// rollout, when no running one holds it.
const SERVICE_SCAN: usize = 200;

/// `FUNCTION:ALIAS`, when `text` addresses a rollout by its service: no ARN, and one colon between two names
/// (an execution's name may not hold a colon).
///
/// ```text
/// orders-api:live -> Some(("orders-api", "live")); orders-live-v42 -> None; arn:aws:... -> None
/// ```
pub fn service_address(text: &str) -> Option<(&str, &str)> {
    if text.starts_with("arn:") {
        return None;
    }
    let (function, alias) = text.split_once(':')?;
    (!function.is_empty() && !alias.is_empty() && !alias.contains(':')).then_some((function, alias))
}

impl Target {
    /// The execution ARN this target addresses: an ARN or a name as [`execution_arn`] reads them; for
    /// `FUNCTION:ALIAS`, the execution whose lock the alias carries (its running rollout) when it is one of
    /// this state machine's, else the newest execution of this state machine that rolled that alias out.
    pub async fn resolve(&self) -> Result<String, CliError> {
        let Some((function, alias)) = service_address(&self.execution) else {
            return execution_arn(&self.execution, self.state_machine_arn.as_deref());
        };
        let Some(machine) = self.state_machine_arn.as_deref() else {
            return Err(CliError::usage(format!(
                "{function}:{alias} names a service: give --state-machine-arn (or set CANARY_STATE_MACHINE_ARN) to \
                 find its rollouts"
            )));
        };
        let config = self.aws.config_for(machine).await;
        let live = LambdaAliases::from_config(&config)
            .get_alias(function, alias)
            .await
            .map_err(|e| CliError::from_aws(format!("could not read {function}:{alias}"), &e))?
            .ok_or_else(|| CliError {
                code: Exit::NotFound,
                message: format!("{function} has no alias {alias} (in this account and region)"),
            })?;
        let executions_of_machine = machine.replacen(":stateMachine:", ":execution:", 1) + ":";
        if let Some((holder, _)) = canary_core::lock::holder(&live.description)
            && holder.starts_with(&executions_of_machine)
        {
            return Ok(holder.to_string());
        }
        let executions = StepFunctionsExecutions::from_config(&config);
        let scan = Scan {
            state_machine_arn: machine,
            function: Some(function),
            alias: Some(alias),
            max: 1,
            scan: SERVICE_SCAN,
            page_size: 100,
            stop_at: |_| true,
            releases: true,
        };
        let (found, scanned) = scan_rollouts(&executions, &scan).await?;
        found.into_iter().next().map(|f| f.summary.arn).ok_or_else(|| CliError {
            code: Exit::NotFound,
            message: format!(
                "no rollout of {function}:{alias} in the {scanned} most recent executions of {machine}, and none \
                 holds it now"
            ),
        })
    }
}

/// The execution ARN of a name or ARN: `arn:...:stateMachine:M` + `NAME` -> `arn:...:execution:M:NAME`.
pub fn execution_arn(execution: &str, state_machine_arn: Option<&str>) -> Result<String, CliError> {
    if execution.starts_with("arn:") {
        let usage = |what: &str| CliError {
            code: Exit::Usage,
            message: format!(
                "{execution} is {what}: give an execution's ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME) \
                 or its name (canaryctl list shows them)"
            ),
        };
        return match execution.split(':').nth(5) {
            Some("execution" | "express") if execution.split(':').nth(2) == Some("states") => Ok(execution.to_string()),
            Some("stateMachine") => Err(usage("a state machine's ARN, not an execution's")),
            _ => Err(usage("not a Step Functions execution's ARN")),
        };
    }
    match state_machine_arn {
        Some(machine) if machine.contains(":stateMachine:") => {
            Ok(format!("{}:{execution}", machine.replacen(":stateMachine:", ":execution:", 1)))
        }
        _ => Err(CliError {
            code: Exit::Usage,
            message: format!(
                "{execution} is a name: give --state-machine-arn (or set CANARY_STATE_MACHINE_ARN), or the \
                 execution's ARN"
            ),
        }),
    }
}

/// The executions client for calls about `arn` (a state machine or an execution).
pub async fn executions(aws: &AwsArgs, arn: &str) -> StepFunctionsExecutions {
    StepFunctionsExecutions::from_config(&aws.config_for(arn).await)
}

/// The last rollout state an execution's history holds (read newest first).
pub async fn last_state(executions: &dyn ExecutionHistory, arn: &str) -> Result<Option<Rollout>, CliError> {
    canary_aws::last_rollout_state(executions, arn)
        .await
        .map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))
}

/// What `status` reports of an execution: where the rollout stands, or how it ended.
pub async fn status_of(executions: &dyn ExecutionHistory, arn: &str) -> Result<StatusView, CliError> {
    let info = executions.describe(arn).await.map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
    let result = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref());
    let finished_at = result.report.as_ref().map(|r| r.finished_at);
    let state = last_state(executions, arn).await?;
    let rollout = state.as_ref().map(|state| RolloutView::of(state, finished_at, Utc::now()));
    // A release: each function's own view (its alias, versions and figures), the first included.
    let functions = match &state {
        Some(state) if state.width() > 1 => {
            state.function_views().iter().map(|view| RolloutView::of(view, finished_at, Utc::now())).collect()
        }
        _ => Vec::new(),
    };
    Ok(StatusView {
        functions,
        execution_arn: arn.to_string(),
        name: info.name,
        status: info.status,
        outcome: result.outcome,
        started_at: info.started_at,
        message: result.message,
        report: result.report,
        rollout,
        alias_now: None,
    })
}

pub async fn status(target: Target) -> Result<Exit, CliError> {
    let arn = target.resolve().await?;
    let config = target.aws.config_for(&arn).await;
    let mut status = status_of(&StepFunctionsExecutions::from_config(&config), &arn).await?;
    // Once it has ended, what the alias routes now: the state's last routing may have been undone since.
    if status.status != ExecutionStatus::Running
        && let Some(rollout) = &status.rollout
    {
        let aliases = LambdaAliases::from_config(&config);
        let read = aliases.get_alias(&rollout.function, &rollout.alias).await;
        status.alias_now = read.map_err(|e| CliError::from_aws("could not read the alias", &e))?.map(|a| a.routing);
        for view in &mut status.functions {
            let read = aliases.get_alias(&view.function, &view.alias).await;
            view.alias_now = read.map_err(|e| CliError::from_aws("could not read the alias", &e))?.map(|a| a.routing);
        }
    }
    match target.output {
        Output::Json => println!("{}", serde_json::to_string(&status).expect("status views serialise")),
        Output::Text => println!("{status}"),
    }
    Ok(Exit::Success)
}

/// How `watch` shows a rollout: a live screen, lines, or JSON events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// One screen, redrawn (text output to a terminal).
    Live,
    /// One line an event, appended (text output elsewhere, or `--plain`).
    Lines,
    /// One JSON event a line (`-o json`).
    Json,
}

impl WatchMode {
    pub fn choose(output: Output, plain: bool, terminal: bool) -> Self {
        match output {
            Output::Json => WatchMode::Json,
            Output::Text if terminal && !plain => WatchMode::Live,
            Output::Text => WatchMode::Lines,
        }
    }
}

pub async fn watch(target: Target, poll_seconds: u64, timeout: Option<u64>, mode: WatchMode) -> Result<Exit, CliError> {
    let arn = target.resolve().await?;
    let executions = executions(&target.aws, &arn).await;
    // Where it stands first (function, versions, step, weight, latest figures, gates), then each event.
    let status = status_of(&executions, &arn).await?;
    let first = EventLine::new(&arn, Utc::now(), events::status(&status));
    let print_json = |line: &EventLine| println!("{}", serde_json::to_string(line).expect("events serialise"));
    let mut progress: Box<dyn Progress> = match mode {
        WatchMode::Json => {
            print_json(&first);
            Box::new(Lines(|line: EventLine| print_json(&line)))
        }
        WatchMode::Lines => {
            println!("{status}\n");
            Box::new(Lines(|line: EventLine| println!("{}", line.event.message())))
        }
        WatchMode::Live => Box::new(LiveView::new(&status.name)),
    };
    if mode == WatchMode::Live {
        progress.event(first.clone());
    }
    let timeout = timeout.map(Duration::from_secs);
    // The last event is the end.
    let result = follow(&executions, &arn, Duration::from_secs(poll_seconds), timeout, progress.as_mut()).await?;
    if mode == WatchMode::Live {
        println!();
    }
    Ok(exit_code(&result))
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only rollouts of this FUNCTION:ALIAS (or FUNCTION), as status takes it; the same as --function and
    /// --alias.
    #[arg(value_name = "FUNCTION[:ALIAS]", conflicts_with_all = ["function", "alias"])]
    pub service: Option<String>,
    /// The controller's state machine. Example: --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout-prod
    #[arg(long, env = "CANARY_STATE_MACHINE_ARN", value_name = "ARN", value_parser = crate::cli::state_machine_arn)]
    pub state_machine_arn: String,
    /// Only rollouts of this function. Example: --function orders-api
    #[arg(long)]
    pub function: Option<String>,
    /// Only rollouts of this alias. Example: --alias live
    #[arg(long)]
    pub alias: Option<String>,
    /// How many rollouts to show, newest first. Example: --max 50
    #[arg(long, default_value_t = 20)]
    pub max: i32,
    /// How many of the most recent executions to look through at most for them (one DescribeExecution
    /// each): on a busy state machine, a function's rollouts may be far down the list. Example: --scan 2000
    #[arg(long, default_value_t = 500)]
    pub scan: usize,
    /// Executions per ListExecutions page (at most 100, AWS's most); for tests of the paging.
    /// Example: --page-size 1
    #[arg(long, default_value_t = 100, hide = true)]
    pub page_size: usize,
    #[arg(skip)]
    pub output: Output,
    #[arg(skip)]
    pub aws: AwsArgs,
}

/// A rollout found among the state machine's executions: its summary, description and request (`None`
/// when its input is not a request).
pub struct Found {
    pub summary: canary_aws::ExecutionSummary,
    pub info: ExecutionInfo,
    pub request: Option<canary_core::RolloutRequest>,
}

/// Which rollouts a scan looks for, and how far.
pub struct Scan<'a> {
    pub state_machine_arn: &'a str,
    pub function: Option<&'a str>,
    pub alias: Option<&'a str>,
    /// Stop at this many found.
    pub max: usize,
    /// Look through at most this many executions.
    pub scan: usize,
    pub page_size: usize,
    /// Stop at the first found for which this holds (after keeping it).
    pub stop_at: fn(&Found) -> bool,
    /// Keep releases that move the function and alias asked for among others (`list`); without it, only
    /// rollouts of that one function (`history` and `undo`, which go back one alias).
    pub releases: bool,
}

/// Pages through the state machine's executions, newest first, describing each and keeping those of the
/// function and alias asked for, until `max` are found or `scan` executions were looked at. Returns what it
/// found and how many it looked at.
pub async fn scan_rollouts(
    executions: &StepFunctionsExecutions,
    scan: &Scan<'_>,
) -> Result<(Vec<Found>, usize), CliError> {
    let (mut found, mut scanned, mut token) = (Vec::new(), 0usize, None);
    'pages: loop {
        let page_size = i32::try_from((scan.scan - scanned).clamp(1, scan.page_size.clamp(1, 100))).unwrap_or(100);
        let (page, next) = executions
            .recent_page(scan.state_machine_arn, page_size, token.take())
            .await
            .map_err(|e| CliError::from_aws("could not list executions", &e))?;
        for summary in page {
            if found.len() >= scan.max || scanned >= scan.scan {
                break 'pages;
            }
            scanned += 1;
            let info = executions
                .describe(&summary.arn)
                .await
                .map_err(|e| CliError::from_aws(format!("could not read {}", summary.arn), &e))?;
            let request = request_of(&info);
            let targets = match &request {
                Some(request) if scan.releases || !request.is_release() => request.targets(),
                _ => Vec::new(),
            };
            let asked = |t: &canary_core::request::Target| {
                let name = canary_core::request::function_name_of;
                scan.function.is_none_or(|f| name(f) == name(&t.function)) && scan.alias.is_none_or(|a| a == t.alias)
            };
            let unfiltered = scan.function.is_none() && scan.alias.is_none();
            if !unfiltered && !targets.iter().any(asked) {
                continue;
            }
            found.push(Found { summary, info, request });
            if found.last().is_some_and(scan.stop_at) {
                break 'pages;
            }
        }
        match next {
            Some(next) if found.len() < scan.max && scanned < scan.scan => token = Some(next),
            _ => break,
        }
    }
    Ok((found, scanned))
}

pub async fn list(args: ListArgs) -> Result<Exit, CliError> {
    // FUNCTION:ALIAS, or a function alone, is --function and --alias given in one.
    let args = match args.service.as_deref().map(|s| service_address(s).unwrap_or((s, ""))) {
        Some((function, alias)) => ListArgs {
            function: Some(function.to_string()),
            alias: (!alias.is_empty()).then(|| alias.to_string()),
            ..args.clone()
        },
        None => args,
    };
    let executions = executions(&args.aws, &args.state_machine_arn).await;
    let wanted = usize::try_from(args.max).unwrap_or(0);
    let scan = Scan {
        state_machine_arn: &args.state_machine_arn,
        function: args.function.as_deref(),
        alias: args.alias.as_deref(),
        max: wanted,
        scan: args.scan,
        page_size: args.page_size,
        stop_at: |_| false,
        releases: true,
    };
    let (found, scanned) = scan_rollouts(&executions, &scan).await?;
    let rows: Vec<ListRow> = found.into_iter().flat_map(list_rows).collect();
    print_rows(&rows, args.output);
    if rows.len() < wanted && scanned >= args.scan && (args.function.is_some() || args.alias.is_some()) {
        eprintln!("canaryctl: looked through the {scanned} most recent executions; --scan to look further");
    }
    Ok(Exit::Success)
}

/// The row of one execution.
/// An execution's rows: one per function it moves (a release's each), or one without a readable request.
fn list_rows(found: Found) -> Vec<ListRow> {
    let Found { summary, info, request } = found;
    let targets = request.as_ref().map(|r| r.targets()).unwrap_or_else(|| vec![Default::default()]);
    let outcome = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref()).outcome;
    targets
        .into_iter()
        .map(|target| ListRow {
            name: summary.name.clone(),
            execution_arn: summary.arn.clone(),
            status: summary.status,
            outcome,
            function: canary_core::request::function_name_of(&target.function).to_string(),
            alias: target.alias,
            version: target.version,
            started_at: summary.started_at,
        })
        .collect()
}

fn print_rows(rows: &[ListRow], output: Output) {
    match output {
        Output::Json => println!("{}", serde_json::to_string(rows).expect("rows serialise")),
        Output::Text => {
            println!("{}", ListRow::header());
            for row in rows {
                println!("{row}");
            }
        }
    }
}

pub async fn promote(target: Target, full: bool) -> Result<Exit, CliError> {
    let arn = target.resolve().await?;
    let executions = executions(&target.aws, &arn).await;
    let token =
        executions.approval_token(&arn).await.map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
    let Some(token) = token else {
        return Err(CliError { code: Exit::NotPromoted, message: format!("{arn} is not waiting for approval") });
    };
    let decision = if full { Decision::PromoteFull } else { Decision::Promote };
    executions
        .answer(&token, Ok(decision.answer().to_string()))
        .await
        .map_err(|e| CliError::from_aws("could not answer the approval gate", &e))?;
    let message = if full { "promoted: straight to 100%" } else { "promoted: on to the next step" };
    match target.output {
        Output::Json => {
            let answered = crate::output::Answered { execution_arn: arn, decision, message: message.to_string() };
            println!("{}", serde_json::to_string(&answered).expect("outputs serialise"))
        }
        Output::Text => println!("{message}"),
    }
    Ok(Exit::Success)
}

/// Pauses a running rollout (`pause`), or lifts its pause (`resume`): a tag on each of its functions naming
/// the execution ([`canary_core::lock::pause_tag`]), which the check reads at every look. The alias is not
/// written (its revision is the execution's hold on it), and the execution is not signalled: the next check
/// of a step that passed holds it at its weight, judged a hold apart (5 minutes at most), for at most 288
/// such looks (a day); a move already decided still happens. `resume` lets the next passed check move on.
pub async fn pause(target: Target, pause: bool) -> Result<Exit, CliError> {
    let arn = target.resolve().await?;
    let config = target.aws.config_for(&arn).await;
    let executions = StepFunctionsExecutions::from_config(&config);
    let info = executions.describe(&arn).await.map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
    if info.status != ExecutionStatus::Running {
        return Err(CliError {
            code: Exit::NotPromoted,
            message: format!("{} is not running: it ended {}; nothing to {}", info.name, info.status, verb(pause)),
        });
    }
    let request = request_of(&info).ok_or_else(|| {
        CliError::refused(format!("{} was not started with a rollout request: nothing to {}", info.name, verb(pause)))
    })?;
    let aliases = LambdaAliases::from_config(&config);
    let mut functions = Vec::new();
    for t in request.targets() {
        let (Some(function), Some(key)) =
            (canary_core::request::function_arn(&t.function, &arn), canary_core::lock::pause_tag(&t.alias))
        else {
            return Err(CliError::refused(format!(
                "{}:{} cannot be paused: its alias's name is too long for the pause tag's key (128 characters)",
                t.function, t.alias
            )));
        };
        let written = if pause {
            aliases.set_tag(&function, &key, &arn).await
        } else {
            aliases.remove_tag(&function, &key).await
        };
        written.map_err(|e| CliError::from_aws(format!("could not {} {}", verb(pause), t.function), &e))?;
        functions.push(canary_core::request::function_name_of(&t.function).to_string());
    }
    let name = &info.name;
    let message = if pause {
        format!(
            "paused {name}: the next check of a step that passed holds it at its weight (a move already decided still \
             happens), still judged a hold apart (5 minutes at most) for up to 288 looks (a day at most), then \
             rolled back; canaryctl resume {name} carries on, canaryctl abort {name} restores"
        )
    } else {
        format!("resumed {name}: its next check of a step that passed moves on")
    };
    match target.output {
        Output::Json => {
            let answer = crate::output::PauseAnswer { execution_arn: arn, paused: pause, functions, message };
            println!("{}", serde_json::to_string(&answer).expect("outputs serialise"))
        }
        Output::Text => println!("{message}"),
    }
    Ok(Exit::Success)
}

fn verb(pause: bool) -> &'static str {
    if pause { "pause" } else { "resume" }
}

/// How long `abort` waits for the state machine's own rollback after failing an approval gate.
const ABORT_WAIT: Duration = Duration::from_secs(300);

/// Aborts a running rollout and returns only once the alias is restored (or says why it could not be). The
/// deployed controller does the restoring, with the stack's own role, code and event bus; the command only
/// signals it. At an approval gate it fails the gate's task with `Aborted`, and the state machine rolls back
/// by itself. Anywhere else (a hold, a shift, a check, a hook) it stops the execution and invokes the
/// stack's safety net for it, synchronously, as the execution's status change event would: the same
/// conditional rollback, after which a write of the stopped execution still in flight fails. What it prints
/// it reads afterwards: the execution's status and what the alias routes.
pub async fn abort(target: Target) -> Result<Exit, CliError> {
    let arn = target.resolve().await?;
    let config = target.aws.config_for(&arn).await;
    let executions = StepFunctionsExecutions::from_config(&config);
    let info = executions.describe(&arn).await.map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
    if info.status != ExecutionStatus::Running {
        // Ended, but its lock still on an alias (its ending not handled yet: the event lost, the sweep not yet
        // run): the safety net does for it now what it would have done.
        if holds_an_alias(&config, &info).await? {
            let (message, restored) = restore(&executions, &config, &arn, false).await?;
            return report_abort(&target, &config, &arn, &info, info.status, message, restored).await;
        }
        return Err(CliError {
            code: Exit::NotPromoted,
            message: format!("{} is not running: it ended {}", info.name, info.status),
        });
    }
    let token =
        executions.approval_token(&arn).await.map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
    let (message, restored) = match token {
        Some(token) => {
            // Waiting at a gate: failing its task lets the state machine roll back by itself.
            let answer = Err((ErrorName::Aborted.as_str().to_string(), "aborted with canaryctl abort".to_string()));
            executions.answer(&token, answer).await.map_err(|e| CliError::from_aws("could not answer the gate", &e))?;
            let ended = wait_until_ended(&executions, &arn).await?;
            let result =
                interpret(ended.status, ended.output.as_deref(), ended.error.as_deref(), ended.cause.as_deref());
            let restored = ended.error.as_deref() == Some(ErrorName::RolledBack.as_str());
            (format!("aborted at the approval gate; the rollout ended {}", result.outcome), restored)
        }
        None => restore(&executions, &config, &arn, true).await?,
    };
    // Say what is so now, read afresh: the execution's status, and what the alias routes.
    let status = executions.describe(&arn).await.map(|i| i.status).unwrap_or(info.status);
    report_abort(&target, &config, &arn, &info, status, message, restored).await
}

/// The rollout request an execution was started with, when its input is one.
fn request_of(info: &ExecutionInfo) -> Option<canary_core::RolloutRequest> {
    info.input.as_deref().and_then(|i| canary_core::parse_request_str(i).ok())
}

/// Whether any alias an ended execution's input names still carries its lock.
async fn holds_an_alias(config: &aws_config::SdkConfig, info: &ExecutionInfo) -> Result<bool, CliError> {
    let Some(request) = request_of(info) else {
        return Ok(false);
    };
    let aliases = LambdaAliases::from_config(config);
    for t in request.targets() {
        let alias = aliases.get_alias(&t.function, &t.alias).await;
        let alias = alias.map_err(|e| CliError::from_aws("could not read the alias", &e))?;
        if alias.is_some_and(|a| canary_core::lock::held_by(&a.description, &info.arn)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What an abort prints: the execution's status and what every alias routes now.
async fn report_abort(
    target: &Target,
    config: &aws_config::SdkConfig,
    arn: &str,
    info: &ExecutionInfo,
    status: ExecutionStatus,
    message: String,
    restored: bool,
) -> Result<Exit, CliError> {
    let request = request_of(info);
    let routing = match &request {
        Some(request) => LambdaAliases::from_config(config)
            .get_alias(&request.function, &request.alias)
            .await
            .map_err(|e| CliError::from_aws("could not read the alias", &e))?
            .map(|a| a.routing),
        None => None,
    };
    let mut routes = routing.as_ref().map(|r| format!("; alias routes {r}")).unwrap_or_default();
    // A release: what every alias routes now.
    let mut functions = Vec::new();
    if let Some(request) = request.as_ref().filter(|r| r.is_release()) {
        let aliases = LambdaAliases::from_config(config);
        for t in request.targets() {
            let read = aliases.get_alias(&t.function, &t.alias).await;
            let routing = read.map_err(|e| CliError::from_aws("could not read the alias", &e))?.map(|a| a.routing);
            functions.push((t.function, t.alias, routing));
        }
        let each: Vec<String> = functions
            .iter()
            .map(|(f, a, r)| {
                format!("{f}:{a} routes {}", r.as_ref().map_or("nothing (deleted)".into(), |r| r.to_string()))
            })
            .collect();
        routes = format!("; {}", each.join(", "));
    }
    match target.output {
        Output::Json => {
            let aborted = crate::output::Aborted {
                execution_arn: arn.to_string(),
                outcome: canary_core::execution::ExecutionOutcome::Aborted,
                status,
                restored,
                routing: routing.as_ref().map(crate::events::shares),
                functions: functions
                    .iter()
                    .map(|(function, alias, routing)| crate::output::FunctionRouting {
                        function: function.clone(),
                        alias: alias.clone(),
                        old_version: None,
                        new_version: None,
                        routing: routing.as_ref().map(crate::events::shares),
                    })
                    .collect(),
                message,
            };
            println!("{}", serde_json::to_string(&aborted).expect("outputs serialise"))
        }
        Output::Text => println!("{}: {message}{routes}", info.name),
    }
    Ok(if restored { Exit::Success } else { Exit::NotPromoted })
}

/// Stops the execution (when `stop`; an ended one is not) and has the stack's safety net restore its alias:
/// (what happened, restored).
async fn restore(
    executions: &StepFunctionsExecutions,
    config: &aws_config::SdkConfig,
    arn: &str,
    stop: bool,
) -> Result<(String, bool), CliError> {
    let stopped = if stop { "stopped" } else { "ended earlier" };
    let machine = canary_aws::state_machine_of(arn).unwrap_or_default();
    let definition =
        executions.definition(&machine).await.map_err(|e| crate::cli::state_machine_unread(&machine, &e))?;
    let Some(safety_net) = canary_core::deployment::Deployment::safety_net_of(&definition) else {
        return Err(CliError::aws(format!(
            "{machine} names no safety net (deploy the current template): nothing was stopped"
        )));
    };
    if stop {
        executions
            .stop(arn, "aborted with canaryctl abort")
            .await
            .map_err(|e| CliError::from_aws(format!("could not stop {arn}"), &e))?;
    }
    let event = json!({"source": "canaryctl.abort", "detail": {"executionArn": arn}});
    let answer = LambdaFunctions::from_config(config).invoke(&safety_net, &event).await.map_err(|e| {
        CliError::from_aws(format!("{stopped}, but the safety net ({safety_net}) could not be invoked; it runs on the execution's status change and at its next sweep"), &e)
    })?;
    match answer.map(serde_json::from_value::<Handled>) {
        Ok(Ok(Handled { action: Action::Restored { .. }, .. })) => {
            Ok((format!("{stopped}; the alias was restored"), true))
        }
        Ok(Ok(Handled { action: Action::Released, .. })) => {
            Ok((format!("{stopped} before anything moved; its lock on the alias was released"), true))
        }
        Ok(Ok(Handled { action: Action::None { reason }, .. })) => Ok((format!("{stopped}; {reason}"), true)),
        Ok(Ok(Handled { action: Action::HandedOver { reason }, .. })) => {
            Ok((format!("{stopped}, but not restored: {reason}"), false))
        }
        Ok(Err(error)) => {
            Err(CliError::aws(format!("{stopped}, but the safety net answered what canaryctl cannot read: {error}")))
        }
        // A stack from before the safety net answered hand-overs.
        Err((kind, why)) if kind == ErrorName::AliasChangedConcurrently.as_str() => {
            Ok((format!("{stopped}, but not restored: {why}"), false))
        }
        Err((kind, why)) => Err(CliError::aws(format!(
            "{stopped}, but the alias could not be restored yet ({kind}: {why}); the safety net retries it on the \
             execution's status change and at its next sweep"
        ))),
    }
}

/// Polls an execution until it is no longer running, for at most [`ABORT_WAIT`].
async fn wait_until_ended(executions: &dyn ExecutionHistory, arn: &str) -> Result<ExecutionInfo, CliError> {
    let deadline = std::time::Instant::now() + ABORT_WAIT;
    loop {
        let info =
            executions.describe(arn).await.map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
        if info.status != ExecutionStatus::Running {
            return Ok(info);
        }
        if std::time::Instant::now() > deadline {
            return Err(CliError {
                code: Exit::NotPromoted,
                message: format!("{arn} still runs {} s after the abort", ABORT_WAIT.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_addressed_as_function_colon_alias() {
        assert_eq!(service_address("orders-api:live"), Some(("orders-api", "live")));
        assert_eq!(service_address("orders-live-v42-20261128T120000Z"), None, "an execution's name has no colon");
        assert_eq!(service_address("arn:aws:states:us-east-1:1:execution:m:n"), None);
        assert_eq!(service_address(":live"), None);
        assert_eq!(service_address("orders:"), None);
        assert_eq!(service_address("a:b:c"), None);
    }
    use canary_core::execution::ExecutionOutcome;

    #[test]
    fn names_resolve_under_the_state_machine() {
        let machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout-prod";
        assert_eq!(
            execution_arn("orders-live-v42-20261128T120000Z", Some(machine)).unwrap(),
            "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout-prod:orders-live-v42-20261128T120000Z"
        );
        let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout-prod:x";
        assert_eq!(execution_arn(arn, None).unwrap(), arn);
        assert_eq!(execution_arn("x", None).unwrap_err().code, Exit::Usage);
        assert_eq!(execution_arn("x", Some("arn:aws:lambda:nope")).unwrap_err().code, Exit::Usage);
        let machine_given = execution_arn(machine, None).unwrap_err();
        assert!(
            machine_given.message.contains("a state machine's ARN, not an execution's"),
            "{}",
            machine_given.message
        );
        let function = execution_arn("arn:aws:lambda:eu-west-1:123456789012:function:orders", None).unwrap_err();
        assert!(function.message.contains("not a Step Functions execution's ARN"), "{}", function.message);
    }

    #[test]
    fn status_says_where_the_rollout_stands_with_its_latest_figures_and_gates() {
        use canary_core::health::{HealthFigures, VersionFigures};
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let request = json!({"function": "orders", "alias": "live", "version": "42",
            "strategy": {"linear": {"percent": 30, "interval_seconds": 120}},
            "approval": {"before_percent": [30, 60]},
            "health": {"metrics_delay_seconds": 60, "min_invocations": 10}});
        let figures = HealthFigures {
            new: VersionFigures { invocations: 120, errors: 1, p99_duration_ms: Some(210.0), ..Default::default() },
            baseline: VersionFigures {
                invocations: 280,
                errors: 2,
                p99_duration_ms: Some(200.0),
                ..Default::default()
            },
            ..Default::default()
        };
        let state = crate::testing::prepared(request, "41", t0);
        let state = state.after_approval(canary_core::rollout::Decision::Promote).unwrap().after_move("r1".into(), t0);
        // A look at 3m00s that passed: the second step is gated.
        let state = state.after_check(Some(figures), t0 + chrono::Duration::seconds(180));
        let view = StatusView {
            execution_arn: "arn:exec".into(),
            name: "deploy-42".into(),
            status: ExecutionStatus::Running,
            outcome: ExecutionOutcome::Running,
            started_at: t0,
            message: None,
            report: None,
            rollout: Some(RolloutView::of(&state, None, t0 + chrono::Duration::seconds(250))),
            alias_now: None,
            functions: Vec::new(),
        };
        assert_eq!(
            view.to_string(),
            "deploy-42: running\n  orders:live from version 41 to 42, step 1 of 4\n  alias routes 41 (70%) + 42 (30%); \
             elapsed 4m10s\n  new version: 120 invocations, 1 error (0.833%), p99 210.0 ms\n  old version: 280 invocations, 2 \
             errors (0.714%), p99 200.0 ms\n  approval gates: before 30% (passed), before 60% (ahead)\n  next: await_approval before \
             60%: canaryctl promote deploy-42 [--full], or canaryctl abort deploy-42"
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(
            (json["step"].as_u64(), json["step_count"].as_u64(), json["weight_percent"].as_f64()),
            (Some(1), Some(4), Some(30.0))
        );
        assert_eq!(json["routing"], json!([{"version": "41", "percent": 70.0}, {"version": "42", "percent": 30.0}]));
        assert_eq!(
            (json["next"].as_str(), json["paused_before_percent"].as_f64()),
            (Some("await_approval"), Some(60.0))
        );
        assert_eq!((json["elapsed_seconds"].as_i64(), json["figures"]["new"]["errors"].as_u64()), (Some(250), Some(1)));
        assert_eq!(
            json["gates"],
            json!([{"before_percent": 30.0, "passed": true}, {"before_percent": 60.0, "passed": false}])
        );
        let refused = StatusView {
            name: "deploy-43".into(),
            status: ExecutionStatus::Failed,
            outcome: ExecutionOutcome::Refused,
            message: Some("version: ...".into()),
            rollout: None,
            ..view.clone()
        };
        assert_eq!(refused.to_string(), "deploy-43: refused\n  version: ...");
        let rolled_back = StatusView {
            status: ExecutionStatus::Failed,
            outcome: ExecutionOutcome::RolledBack,
            alias_now: Some(canary_core::Routing::to_version("41")),
            ..view.clone()
        };
        let text = rolled_back.to_string();
        assert!(
            text.contains("alias was last set to 41 (70%) + 42 (30%)") && text.contains("alias now routes 41 (100%)"),
            "{text}"
        );
        assert_eq!(
            serde_json::to_value(&rolled_back).unwrap()["alias_now"],
            json!([{"version": "41", "percent": 100.0}])
        );
    }

    #[test]
    fn a_releases_status_shows_every_function_with_its_routing() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let request = json!({"functions": [{"function": "orders-api", "alias": "live", "version": "42"},
                                           {"function": "orders-worker", "alias": "live", "version": "7"}],
            "strategy": {"linear": {"percent": 50, "interval_seconds": 120}}, "health": {"enabled": false}});
        let state = crate::testing::prepared(request, "41", t0);
        let moved: Vec<Rollout> = state.function_views().into_iter().map(|v| v.after_move("r1".into(), t0)).collect();
        let state = state.combine(moved);
        let functions: Vec<RolloutView> = state.function_views().iter().map(|v| RolloutView::of(v, None, t0)).collect();
        let mut worker = functions[1].clone();
        worker.alias_now = Some(canary_core::Routing::to_version("41"));
        let view = StatusView {
            execution_arn: "arn:exec".into(),
            name: "release".into(),
            status: ExecutionStatus::Running,
            outcome: ExecutionOutcome::Running,
            started_at: t0,
            message: None,
            report: None,
            rollout: Some(RolloutView::of(&state, None, t0)),
            alias_now: None,
            functions: vec![functions[0].clone(), worker],
        };
        let text = view.to_string();
        assert!(text.contains("\n  orders-api:live from version 41 to 42: routes 41 (50%) + 42 (50%)"), "{text}");
        assert!(
            text.contains("\n  orders-worker:live from version 41 to 7: routes 41 (50%) + 7 (50%); now 41 (100%)"),
            "{text}"
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["functions"][1]["function"], "orders-worker");
    }
}
