//! `canaryctl history`, `undo` and `retry`: an alias's past rollouts; back to the version before the last
//! promotion; a rollout that did not promote, run again. Each runs through the controller as `start` does.

use crate::cli::{AwsArgs, CliError, Exit, Output};
use crate::ops::{Found, Scan, scan_rollouts};
use crate::render::duration_text;
use crate::start::{StartArgs, launch};
use canary_aws::{Aliases, LambdaAliases, StepFunctionsExecutions};
use canary_core::execution::{ExecutionOutcome, ExecutionStatus, interpret};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;

/// Which alias, and how far back to look.
#[derive(Debug, Clone, Args)]
pub struct AliasArgs {
    /// The function (a name or an ARN), or FUNCTION:ALIAS (such as orders-api:live), as status takes it.
    #[arg(value_name = "FUNCTION[:ALIAS]")]
    pub function: String,
    /// The alias, unless the function was given as FUNCTION:ALIAS.
    #[arg(value_name = "ALIAS")]
    pub alias: Option<String>,
    /// The controller's state machine. Example: --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout-prod
    #[arg(long, env = "CANARY_STATE_MACHINE_ARN", value_name = "ARN", value_parser = crate::cli::state_machine_arn)]
    pub state_machine_arn: String,
    /// How many of the most recent executions to look through at most (one DescribeExecution each); Step
    /// Functions keeps an ended execution for 90 days. Example: --scan 2000
    #[arg(long, default_value_t = 500)]
    pub scan: usize,
    /// Executions per ListExecutions page (at most 100); for tests of the paging. Example: --page-size 1
    #[arg(long, default_value_t = 100, hide = true)]
    pub page_size: usize,
}

impl AliasArgs {
    /// The same, the alias split off `FUNCTION:ALIAS` when it was given so; refused (exit 2) without an alias.
    pub fn normalized(self) -> Result<AliasArgs, CliError> {
        if self.alias.is_some() {
            return Ok(self);
        }
        let Some((function, alias)) = crate::ops::service_address(&self.function) else {
            return Err(CliError {
                code: Exit::Usage,
                message: format!(
                    "which alias of {}? give FUNCTION ALIAS or FUNCTION:ALIAS, e.g. orders-api live or orders-api:live",
                    self.function
                ),
            });
        };
        let (function, alias) = (function.to_string(), alias.to_string());
        Ok(AliasArgs { function, alias: Some(alias), ..self })
    }

    /// The alias (after [`AliasArgs::normalized`]).
    pub fn alias(&self) -> &str {
        self.alias.as_deref().unwrap_or_default()
    }

    fn scan(&self, max: usize, stop_at: fn(&Found) -> bool) -> Scan<'_> {
        Scan {
            state_machine_arn: &self.state_machine_arn,
            function: Some(&self.function),
            alias: self.alias.as_deref(),
            max,
            scan: self.scan,
            page_size: self.page_size,
            stop_at,
            releases: false,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: AliasArgs,
    /// How many rollouts to show, newest first. Example: --max 50
    #[arg(long, default_value_t = 20)]
    pub max: usize,
    #[arg(skip)]
    pub output: Output,
    #[arg(skip)]
    pub aws: AwsArgs,
}

/// One past rollout of an alias.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct HistoryRow {
    pub name: String,
    pub execution_arn: String,
    pub outcome: ExecutionOutcome,
    /// The version the alias routed to before; absent when the rollout never got as far as reading it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_version: Option<String>,
    pub new_version: String,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Seconds from start to end (to now while it runs).
    pub duration_seconds: i64,
    /// Why it ended as it did, in a line.
    pub why: String,
}

impl HistoryRow {
    pub fn header() -> String {
        format!("{:<20}  {:>7}  {:<15}  {:<14}  why", "started", "took", "outcome", "versions")
    }
}

impl std::fmt::Display for HistoryRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let versions = format!("{} -> {}", self.old_version.as_deref().unwrap_or("?"), self.new_version);
        write!(
            f,
            "{:<20}  {:>7}  {:<15}  {:<14}  {} ({})",
            self.started_at.format("%Y-%m-%d %H:%M:%SZ"),
            duration_text(self.duration_seconds.max(0) as u64),
            self.outcome.as_str(),
            versions,
            self.why,
            self.name
        )
    }
}

/// The row of a found rollout: versions, outcome and why from its report when it made one, else from its
/// last state (one more history read).
async fn history_row(
    executions: &StepFunctionsExecutions,
    found: &Found,
    now: DateTime<Utc>,
) -> Result<HistoryRow, CliError> {
    let info = &found.info;
    let result = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref());
    let new_version = found.request.as_ref().map(|r| r.version.clone()).unwrap_or_default();
    let old_version = match &result.report {
        Some(report) => Some(report.old_version.clone()),
        None if result.outcome == ExecutionOutcome::Refused => None,
        None => crate::ops::last_state(executions, &info.arn).await?.map(|state| state.old_version),
    };
    let why = match (&result.report, result.outcome) {
        (Some(report), ExecutionOutcome::Promoted) => {
            let steps = report.steps.len();
            format!("promoted in {steps} step{}", if steps == 1 { "" } else { "s" })
        }
        (_, ExecutionOutcome::Running) => "running".to_string(),
        _ => result.message.clone().unwrap_or_else(|| result.outcome.as_str().to_string()),
    };
    let stopped_at = found.summary.stopped_at.or(info.stopped_at);
    Ok(HistoryRow {
        name: info.name.clone(),
        execution_arn: info.arn.clone(),
        outcome: result.outcome,
        old_version,
        new_version,
        started_at: info.started_at,
        stopped_at,
        duration_seconds: (stopped_at.unwrap_or(now) - info.started_at).num_seconds(),
        why: one_line(&why),
    })
}

/// The first line of a message, cut at 160 characters: a table row stays a row.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

pub async fn history(args: HistoryArgs) -> Result<Exit, CliError> {
    let args = HistoryArgs { target: args.target.normalized()?, ..args };
    let executions = crate::ops::executions(&args.aws, &args.target.state_machine_arn).await;
    let (found, scanned) = scan_rollouts(&executions, &args.target.scan(args.max, |_| false)).await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    for found in &found {
        rows.push(history_row(&executions, found, now).await?);
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&rows).expect("rows serialise")),
        Output::Text if rows.is_empty() => println!(
            "no rollout of {}:{} in the {scanned} most recent executions",
            args.target.function,
            args.target.alias()
        ),
        Output::Text => {
            println!("{}", HistoryRow::header());
            for row in &rows {
                println!("{row}");
            }
        }
    }
    if rows.len() < args.max && scanned >= args.target.scan {
        eprintln!("canaryctl: looked through the {scanned} most recent executions; --scan to look further");
    }
    Ok(Exit::Success)
}

#[derive(Debug, Clone, Args)]
pub struct UndoArgs {
    #[command(flatten)]
    pub target: AliasArgs,
    /// Go back with the promoted rollout's own strategy, health checks and approval gates, instead of all at
    /// once. Example: --full-policy
    #[arg(long, conflicts_with = "bake")]
    pub full_policy: bool,
    /// All at once, then watched this many seconds at 100% with the promoted rollout's health checks
    /// (rolled back to the version undone if the old one fails them). Example: --bake 300
    #[arg(long, value_name = "SECONDS")]
    pub bake: Option<u64>,
    /// Go back to this earlier version instead of the one before the last promotion: a version that served
    /// all of the alias's traffic (promoted by a rollout, or replaced by one) within --scan executions. Refused
    /// for a version a later rollout rolled back or a later move set aside, unless --retry-rejected.
    /// Example: --to-version 40
    #[arg(long, value_name = "VERSION")]
    pub to_version: Option<String>,
    #[command(flatten)]
    pub launch: crate::start::LaunchArgs,
    #[arg(skip)]
    pub output: Output,
    #[arg(skip)]
    pub aws: AwsArgs,
}

/// Whether `version` may be gone back to, given the alias's promotions (newest first, each with its
/// execution's name): it must have served all of the alias's traffic (a promotion's new version, or the
/// version a promotion replaced), and the newest promotion touching it must not have moved the alias back
/// from it to a lower version (which set it aside on purpose), unless `retry_rejected`.
pub fn earlier_version(
    promotions: &[(String, canary_core::Report)],
    version: &str,
    scanned: usize,
    retry_rejected: bool,
) -> Result<(), CliError> {
    let number = |v: &str| v.parse::<u64>().ok();
    let Some((name, newest)) = promotions.iter().find(|(_, r)| r.new_version == version || r.old_version == version)
    else {
        let (function, alias) = promotions.first().map_or(("?", "?"), |(_, r)| (&r.function, &r.alias));
        return Err(CliError {
            code: Exit::NotFound,
            message: format!(
                "version {version} did not serve {function}:{alias} in the {scanned} most recent executions (no                  promotion set it or replaced it): undo --to-version goes back only to a version that served the                  alias; canaryctl start --version {version} rolls it out, judged (--scan to look further)"
            ),
        });
    };
    let set_aside = newest.old_version == version
        && matches!((number(&newest.new_version), number(version)), (Some(new), Some(old)) if new < old);
    if set_aside && !retry_rejected {
        return Err(CliError::refused(format!(
            "{name} moved {}:{} back from version {version} to {}: going back to version {version} would bring back              what that move set aside; pass --retry-rejected to do it anyway (with --bake SECONDS or --full-policy              to have it judged)",
            newest.function, newest.alias, newest.new_version
        )));
    }
    Ok(())
}

/// Whether a found rollout promoted its version.
fn promoted(found: &Found) -> bool {
    let info = &found.info;
    interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref()).promoted()
}

/// How an undo moves the alias back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoPolicy {
    /// All at once, unjudged: the version was live before the promotion. Hooks still run; no gates.
    Fast,
    /// All at once, then judged at 100% for this many seconds with the promoted rollout's health checks.
    Baked(u64),
    /// The promoted rollout's own strategy, health checks and gates.
    Full,
}

/// The request that undoes a promotion: the promoted rollout's own request with the old version, moved as
/// `policy` says.
pub fn undo_request(
    promoted: &canary_core::RolloutRequest,
    old_version: &str,
    policy: UndoPolicy,
) -> Result<(serde_json::Value, canary_core::RolloutRequest), CliError> {
    let mut request = promoted.as_written();
    request["version"] = json!(old_version);
    let strategy = match policy {
        UndoPolicy::Fast => {
            // Nothing is held, so nothing could be judged: the checks are off on purpose (Prepare refuses
            // health checks that could never run).
            request["health"] = json!({"enabled": false});
            Some(json!({"all_at_once": {}}))
        }
        UndoPolicy::Baked(seconds) => Some(json!({"all_at_once": {"bake_seconds": seconds}})),
        UndoPolicy::Full => None,
    };
    if let (Some(strategy), Some(object)) = (strategy, request.as_object_mut()) {
        object.insert("strategy".into(), strategy);
        object.remove("approval");
    }
    let checked = canary_core::parse_request(&request).map_err(|refusal| CliError::refused(refusal.to_string()))?;
    Ok((request, checked))
}

/// Why the alias cannot be undone from the promotion `report` tells of as it routes now, or `None` when it
/// routes all of its traffic to the version that rollout promoted.
pub fn moved_since(routing: &canary_core::Routing, report: &canary_core::Report, name: &str) -> Option<String> {
    let untouched = routing.function_version == report.new_version && routing.additional_version_weights.is_empty();
    (!untouched).then(|| {
        format!(
            "{}:{} routes {routing}, not {} alone as {name} promoted it: it was moved since, so undo would not go back \
             to what you expect; to route it to version {}, use canaryctl start --version {}",
            report.function, report.alias, report.new_version, report.old_version, report.old_version
        )
    })
}

/// Why undoing the promotion `report` tells of would bring back a version someone set aside, or `None`. A
/// promotion to a lower version than the one it replaced moved the alias back (an undo, or a downgrade through
/// a rollout): its old version was rejected on purpose, and undoing it would restore that version all at once,
/// unjudged. Lambda numbers published versions in order, so the numbers tell.
pub fn brings_back_a_set_aside_version(report: &canary_core::Report, name: &str) -> Option<String> {
    let number = |v: &str| v.parse::<u64>().ok();
    match (number(&report.new_version), number(&report.old_version)) {
        (Some(new), Some(old)) if new < old => Some(format!(
            "{name} moved {}:{} back from version {old} to {new}: undoing it would bring back version {old}, which \
             that move set aside; to roll it out again anyway, pass --retry-rejected (with --bake SECONDS or \
             --full-policy to have it judged)",
            report.function, report.alias
        )),
        _ => None,
    }
}

pub async fn undo(args: UndoArgs) -> Result<Exit, CliError> {
    let args = UndoArgs { target: args.target.normalized()?, ..args };
    let target = &args.target;
    let executions = crate::ops::executions(&args.aws, &target.state_machine_arn).await;
    // Newest first, down to the newest promotion of the alias (rollouts that ended otherwise since left it as
    // that one did).
    // Going back further than one promotion looks through all of --scan.
    let stop_at: fn(&Found) -> bool = if args.to_version.is_some() { |_| false } else { promoted };
    let (found, scanned) = scan_rollouts(&executions, &target.scan(usize::MAX, stop_at)).await?;
    if let Some(running) = found.iter().find(|f| f.info.status == ExecutionStatus::Running) {
        return Err(CliError::refused(format!(
            "a rollout of {}:{} is running ({name}): undo once it has ended, or canaryctl abort {name}",
            target.function,
            target.alias(),
            name = running.info.name
        )));
    }
    let promotions: Vec<(String, canary_core::Report)> = found
        .iter()
        .filter(|f| promoted(f))
        .filter_map(|f| {
            let info = &f.info;
            let result = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref());
            result.report.map(|report| (info.name.clone(), report))
        })
        .collect();
    let Some(found) = found.into_iter().find(promoted) else {
        return Err(CliError {
            code: Exit::NotFound,
            message: format!(
                "no promoted rollout of {}:{} in the {scanned} most recent executions: nothing to undo (--scan to \
                 look further)",
                target.function,
                target.alias()
            ),
        });
    };
    let info = &found.info;
    let result = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref());
    let (Some(report), Some(promoted)) = (result.report, found.request.as_ref()) else {
        return Err(CliError::refused(format!("{} was promoted but reports no versions: nothing to undo", info.name)));
    };
    let config = args.aws.config_for(&target.state_machine_arn).await;
    let alias = LambdaAliases::from_config(&config)
        .get_alias(&promoted.function, &promoted.alias)
        .await
        .map_err(|e| CliError::from_aws("could not read the alias", &e))?
        // As start's Prepare refuses a request whose alias does not exist.
        .ok_or_else(|| {
            CliError::refused(format!("{}:{} does not exist (any more)", target.function, target.alias()))
        })?;
    if let Some(why) = moved_since(&alias.routing, &report, &info.name) {
        return Err(CliError::refused(why));
    }
    let back_to = match &args.to_version {
        Some(version) if *version == report.new_version => {
            return Err(CliError::refused(format!(
                "{}:{} already routes version {version} (promoted by {}): nothing to go back to",
                report.function, report.alias, info.name
            )));
        }
        Some(version) => {
            earlier_version(&promotions, version, scanned, args.launch.retry_rejected)?;
            version.clone()
        }
        None => {
            let set_aside = brings_back_a_set_aside_version(&report, &info.name);
            if let Some(why) = set_aside.filter(|_| !args.launch.retry_rejected) {
                return Err(CliError::refused(why));
            }
            report.old_version.clone()
        }
    };
    let (policy, said) = match (args.full_policy, args.bake) {
        (true, _) => (UndoPolicy::Full, "with the promoted rollout's own policy".to_string()),
        (false, Some(seconds)) => (UndoPolicy::Baked(seconds), format!("all at once, then judged {seconds} s")),
        (false, None) => (UndoPolicy::Fast, "all at once".to_string()),
    };
    let (request, checked) = undo_request(promoted, &back_to, policy)?;
    eprintln!(
        "undo: {}:{} back from version {} to {}, {said} (undoing {}, promoted {})",
        report.function,
        report.alias,
        report.new_version,
        back_to,
        info.name,
        report.finished_at.format("%Y-%m-%d %H:%M:%SZ")
    );
    let start = StartArgs {
        request: Default::default(),
        state_machine_arn: target.state_machine_arn.clone(),
        launch: args.launch.clone(),
        output: args.output,
        aws: args.aws.clone(),
    };
    launch(&start, &request, &checked).await
}

#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub target: crate::ops::Target,
    #[command(flatten)]
    pub launch: crate::start::LaunchArgs,
}

/// Runs a rollout that ended without promoting again, as it was asked (its execution's own input), under a
/// new name: a rollout of a version its last rollout rejected, on purpose (`start --retry-rejected`).
pub async fn retry(args: RetryArgs) -> Result<Exit, CliError> {
    let (output, aws) = (args.target.output, args.target.aws.clone());
    let arn = args.target.resolve().await?;
    let executions = crate::ops::executions(&aws, &arn).await;
    let info = canary_aws::ExecutionHistory::describe(&executions, &arn)
        .await
        .map_err(|e| CliError::from_aws(format!("could not read {arn}"), &e))?;
    let result = interpret(info.status, info.output.as_deref(), info.error.as_deref(), info.cause.as_deref());
    let not_applicable = |why: String| CliError { code: Exit::NotPromoted, message: why };
    match result.outcome {
        ExecutionOutcome::Running => {
            return Err(not_applicable(format!("{} is still running: nothing to retry", info.name)));
        }
        ExecutionOutcome::Promoted => {
            return Err(not_applicable(format!(
                "{} was promoted: nothing to retry (canaryctl undo goes back to the version before it)",
                info.name
            )));
        }
        _ => {}
    }
    let text = info.input.as_deref().unwrap_or_default();
    let refused = |refusal: canary_core::Refusal| CliError::refused(format!("{}'s input: {refusal}", info.name));
    let request = canary_core::request::read_request_json(text).map_err(refused)?;
    let checked = canary_core::parse_request(&request).map_err(refused)?;
    let machine =
        canary_aws::state_machine_of(&arn).ok_or_else(|| CliError::refused(format!("{arn} names no state machine")))?;
    eprintln!(
        "retry: {} ({}) again: {}:{} to version {}, as it was asked",
        info.name, result.outcome, checked.function, checked.alias, checked.version
    );
    let start = StartArgs {
        request: Default::default(),
        state_machine_arn: machine,
        launch: crate::start::LaunchArgs { retry_rejected: true, ..args.launch },
        output,
        aws,
    };
    launch(&start, &request, &checked).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::{Routing, parse_request};

    fn report(routing: Routing) -> canary_core::Report {
        let json = json!({"outcome": "promoted", "function": "orders", "alias": "live", "old_version": "41",
            "new_version": "42", "started_at": "2026-12-03T12:00:00Z", "finished_at": "2026-12-03T12:10:00Z",
            "routing": routing, "steps": []});
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn undo_goes_back_to_the_old_version_all_at_once_unless_asked_for_the_full_policy() {
        let promoted = parse_request(&json!({"function": "orders", "alias": "live", "version": "42",
            "strategy": {"linear": {"percent": 10, "interval_seconds": 120}},
            "approval": {"before_percent": [50]},
            "hooks": {"pre_traffic": "orders-smoke"},
            "health": {"max_error_rate": 0.02}}))
        .unwrap();
        let (fast, checked) = undo_request(&promoted, "41", UndoPolicy::Fast).unwrap();
        assert_eq!((fast["version"].as_str(), checked.version.as_str()), (Some("41"), "41"));
        assert_eq!(fast["strategy"], json!({"all_at_once": {}}));
        assert_eq!(fast["health"], json!({"enabled": false}), "nothing held, nothing judged: {fast}");
        assert!(fast.get("approval").is_none(), "the undo is the decision: {fast}");
        assert_eq!(fast["hooks"]["pre_traffic"], "orders-smoke", "the hooks still guard the version: {fast}");
        assert_eq!(checked.schedule().len(), 1);
        let (baked, checked) = undo_request(&promoted, "41", UndoPolicy::Baked(300)).unwrap();
        assert_eq!(baked["strategy"], json!({"all_at_once": {"bake_seconds": 300}}));
        assert_eq!((checked.health.enabled, checked.health.max_error_rate), (true, Some(0.02)), "{baked}");
        let (full, checked) = undo_request(&promoted, "41", UndoPolicy::Full).unwrap();
        assert_eq!(full["strategy"]["linear"]["percent"], 10.0);
        assert_eq!((checked.schedule().len(), checked.approval.before_percent.len()), (10, 1));
        let legacy = parse_request(&json!({"function-name": "orders", "alias-name": "live", "new-version": "42",
            "steps": 4, "interval": 60}))
        .unwrap();
        let (from_legacy, _) = undo_request(&legacy, "41", UndoPolicy::Fast).unwrap();
        assert_eq!((from_legacy["function"].as_str(), from_legacy["version"].as_str()), (Some("orders"), Some("41")));
    }

    #[test]
    fn undo_refuses_an_alias_moved_since_the_promotion() {
        assert_eq!(moved_since(&Routing::to_version("42"), &report(Routing::to_version("42")), "x"), None);
        let moved = moved_since(&Routing::to_version("43"), &report(Routing::to_version("42")), "deploy-42").unwrap();
        assert!(moved.starts_with("orders:live routes 43 (100%), not 42 alone as deploy-42 promoted it"), "{moved}");
        assert!(moved.ends_with("canaryctl start --version 41"), "{moved}");
        let mut split = Routing::to_version("42");
        split.additional_version_weights.insert("43".into(), 0.1);
        assert!(moved_since(&split, &report(Routing::to_version("42")), "x").is_some(), "a split is moved too");
    }

    /// An undo (a promotion back to a lower version) is itself not undone without --retry-rejected: that would
    /// bring back, all at once and unjudged, the version the undo set aside.
    #[test]
    fn undo_of_an_undo_is_refused_as_bringing_back_a_set_aside_version() {
        assert_eq!(brings_back_a_set_aside_version(&report(Routing::to_version("42")), "deploy-42"), None);
        let mut back = report(Routing::to_version("41"));
        (back.old_version, back.new_version) = ("42".into(), "41".into());
        let why = brings_back_a_set_aside_version(&back, "undo-42").unwrap();
        assert!(why.starts_with("undo-42 moved orders:live back from version 42 to 41"), "{why}");
        assert!(why.contains("--retry-rejected"), "{why}");
        let mut unnumbered = back.clone();
        unnumbered.old_version = "$LATEST".into();
        assert_eq!(brings_back_a_set_aside_version(&unnumbered, "x"), None);
    }

    /// `undo --to-version` goes back only to a version that served the alias, and not, unasked, to one a later
    /// move set aside; a version rolled back by its last rollout is refused by `start`'s own check.
    #[test]
    fn undo_to_a_version_takes_one_that_served_the_alias_and_was_not_set_aside() {
        let promotion = |name: &str, old: &str, new: &str| {
            let mut r = report(Routing::to_version(new));
            (r.old_version, r.new_version) = (old.into(), new.into());
            (name.to_string(), r)
        };
        // Newest first: 40 -> 41 -> 42 -> 43.
        let forward = [promotion("p43", "42", "43"), promotion("p42", "41", "42"), promotion("p41", "40", "41")];
        for served in ["42", "41", "40"] {
            assert!(earlier_version(&forward, served, 10, false).is_ok(), "{served}");
        }
        let never = earlier_version(&forward, "39", 10, false).unwrap_err();
        assert_eq!(never.code, Exit::NotFound);
        assert!(
            never.message.starts_with("version 39 did not serve orders:live in the 10 most recent"),
            "{}",
            never.message
        );
        assert!(never.message.contains("canaryctl start --version 39"), "{}", never.message);
        // 43 was moved back to 41 (an undo): 43 was set aside.
        let back = [promotion("undo-43", "43", "41"), promotion("p43", "42", "43"), promotion("p42", "41", "42")];
        let refused = earlier_version(&back, "43", 10, false).unwrap_err();
        assert_eq!(refused.code, Exit::Refused);
        assert!(
            refused.message.starts_with("undo-43 moved orders:live back from version 43 to 41"),
            "{}",
            refused.message
        );
        assert!(earlier_version(&back, "43", 10, true).is_ok(), "--retry-rejected says it is meant");
        assert!(earlier_version(&back, "42", 10, false).is_ok(), "42 was replaced going forward, not set aside");
    }

    #[test]
    fn a_history_row_is_a_line_under_its_header_or_json() {
        use chrono::TimeZone;
        let row = HistoryRow {
            name: "orders-live-v42-20261203T120000Z".into(),
            execution_arn: "arn:exec".into(),
            outcome: ExecutionOutcome::RolledBack,
            old_version: Some("41".into()),
            new_version: "42".into(),
            started_at: Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
            stopped_at: Some(Utc.with_ymd_and_hms(2026, 12, 3, 12, 12, 30).unwrap()),
            duration_seconds: 750,
            why: one_line(&format!("step 2/10 failed: error rate\nmore\n{}", "x".repeat(300))),
        };
        let line = row.to_string();
        assert_eq!(
            line,
            "2026-12-03 12:00:00Z   12m30s  rolled_back      41 -> 42        step 2/10 failed: error rate \
             (orders-live-v42-20261203T120000Z)"
        );
        let header = HistoryRow::header();
        assert_eq!(header.find("outcome"), line.find("rolled_back"), "{header}\n{line}");
        assert_eq!(header.find("versions"), line.find("41 -> 42"), "{header}\n{line}");
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!((json["outcome"].as_str(), json["duration_seconds"].as_i64()), (Some("rolled_back"), Some(750)));
        assert_eq!(one_line(&"y".repeat(200)).len(), 163);
    }
}
