//! The controller's Lambda handlers, one per state of the state machine.
//!
//! Each handler is a plain async function over the [`canary_aws`] traits: read the state, make one AWS
//! read and at most one write, let [`canary_core`] decide, return the new state. The binaries in
//! `src/bin/` only build clients once and hand events to these functions, so tests call them directly.
//!
//! Errors carry stable type names ([`ControllerError::error_type`]) that the state machine's `Retry` and
//! `Catch` match on.

use canary_aws::{Aliases, AwsError, Executions, Hooks, Metrics, Notifier, WindowQuery};
use canary_core::notice::{Task, notices};
use canary_core::rollout::TaskError;
use canary_core::safety_net::{SafetyNet, decide};
use canary_core::{AliasState, MovePlan, Next, Outcome, Refusal, Rollout, parse_request};
use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

/// Why a handler failed, by what the state machine should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The request is wrong; nothing was changed. Not retried: the execution fails as refused.
    #[error("{0}")]
    Refused(Refusal),
    /// Throttling, a 5xx, a timeout, or an alias revision that moved between read and write. Retried.
    #[error("{0}")]
    Transient(AwsError),
    /// Someone else changed the alias during the rollout. Not retried, and never overwritten.
    #[error("{0}")]
    AliasChangedConcurrently(String),
    /// Any other AWS failure (permissions, validation). Not retried.
    #[error("{0}")]
    Aws(AwsError),
    /// The state handed in is not what this handler serves: a bug or a hand-edited execution.
    #[error("{0}")]
    InvalidState(String),
}

impl ControllerError {
    /// The error type the state machine sees (`Diagnostic.error_type`).
    pub fn error_type(&self) -> &'static str {
        match self {
            ControllerError::Refused(_) => "RequestRefused",
            ControllerError::Transient(_) => "TransientAwsError",
            ControllerError::AliasChangedConcurrently(_) => "AliasChangedConcurrently",
            ControllerError::Aws(_) => "AwsError",
            ControllerError::InvalidState(_) => "InvalidState",
        }
    }
}

impl From<AwsError> for ControllerError {
    fn from(error: AwsError) -> Self {
        if error.is_transient() { ControllerError::Transient(error) } else { ControllerError::Aws(error) }
    }
}

impl From<ControllerError> for Diagnostic {
    fn from(error: ControllerError) -> Diagnostic {
        Diagnostic { error_type: error.error_type().to_string(), error_message: error.to_string() }
    }
}

/// Publishes what a task's resulting state announces. A notification that cannot be published is logged;
/// it never fails the rollout.
pub async fn announce(notifier: &dyn Notifier, task: Task, state: &Rollout) {
    let notices = notices(task, state);
    if notices.is_empty() {
        return;
    }
    match notifier.publish(&notices).await {
        Ok(()) => tracing::info!(events = ?notices.iter().map(|n| n.detail_type).collect::<Vec<_>>(), "published"),
        Err(error) => tracing::warn!(%error, "rollout events not published"),
    }
}

/// Reads the state a handler is given.
pub fn state_from(event: Value) -> Result<Rollout, ControllerError> {
    serde_json::from_value(event).map_err(|e| ControllerError::InvalidState(format!("not a rollout state: {e}")))
}

/// `Prepare`: checks the request offline and against the live alias and alarms, refuses it while another
/// rollout of the same alias runs, and records the original routing. Makes no write.
///
/// The state machine passes `{"request": <the execution input>, "execution": <its ARN>}`; a bare request
/// (a direct invocation) is checked without the running-rollout check.
pub async fn prepare(
    input: Value,
    aliases: &dyn Aliases,
    metrics: &dyn Metrics,
    executions: &dyn Executions,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    let wrapped = input.as_object().is_some_and(|o| o.len() == 2 && o.contains_key("request"));
    let (input, execution) = match input.get("execution").and_then(Value::as_str) {
        Some(execution) if wrapped => (input["request"].clone(), Some(execution.to_string())),
        _ => (input, None),
    };
    let request = parse_request(&input).map_err(ControllerError::Refused)?;
    if let Some(state_machine) = execution.as_deref().and_then(canary_aws::state_machine_of) {
        let running = executions.running(&state_machine).await?;
        let started_at = running.iter().find(|r| Some(&r.arn) == execution.as_ref()).map_or(now, |r| r.started_at);
        canary_core::concurrency::refuse_if_alias_busy(&request, execution.as_deref(), started_at, &running)
            .map_err(ControllerError::Refused)?;
    }
    let function = request.function.clone();
    let function_exists = aliases.function_exists(&function).await?;
    let (version_exists, alias) = if function_exists {
        (
            aliases.version_exists(&function, &request.version).await?,
            aliases.get_alias(&function, &request.alias).await?,
        )
    } else {
        (false, None)
    };
    let mut missing_hooks = Vec::new();
    for hook in [&request.hooks.pre_traffic, &request.hooks.post_traffic].into_iter().flatten() {
        if function_exists && !aliases.function_exists(hook).await? {
            missing_hooks.push(hook.clone());
        }
    }
    let alarms = metrics.alarm_states(&request.health.alarms).await?;
    for alarm in alarms.iter().filter(|a| a.state == "ALARM") {
        tracing::warn!(alarm = alarm.name, since = %alarm.updated_at, "alarm already in ALARM: reported, not blocking");
    }
    let facts = canary_core::LiveFacts { function_exists, version_exists, alias, alarms, missing_hooks };
    let rollout = Rollout::prepare(request, facts, now).map_err(ControllerError::Refused)?;
    tracing::info!(
        function,
        alias = rollout.request.alias,
        from = rollout.old_version,
        to = rollout.request.version,
        steps = rollout.step_count,
        "rollout prepared"
    );
    Ok(rollout)
}

/// Reads the rollout's alias, lets `plan` decide, and carries the plan out: nothing when it is done already,
/// a write conditional on the revision just read, or an error when someone else changed the alias.
/// Returns the alias as it is afterwards.
async fn carry_out(
    aliases: &dyn Aliases,
    state: &Rollout,
    plan: impl FnOnce(&AliasState) -> MovePlan,
) -> Result<AliasState, ControllerError> {
    let (function, alias) = (&state.request.function, &state.request.alias);
    let live = aliases.get_alias(function, alias).await?.ok_or_else(|| {
        ControllerError::AliasChangedConcurrently(format!("the alias \"{alias}\" was deleted during the rollout"))
    })?;
    match plan(&live) {
        MovePlan::AlreadyDone => Ok(live),
        MovePlan::Write { routing, revision_id } => {
            Ok(aliases.update_alias(function, alias, &routing, &revision_id).await?)
        }
        MovePlan::Conflict(message) => Err(ControllerError::AliasChangedConcurrently(message)),
    }
}

/// `Shift` and `Promote`: moves the alias to the next step of the schedule. A retry after a move that
/// happened is a no-op; a change by someone else fails with `AliasChangedConcurrently`.
pub async fn advance(
    state: Rollout,
    expected: Next,
    aliases: &dyn Aliases,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    if state.next != expected {
        return Err(ControllerError::InvalidState(format!(
            "this task moves on {expected:?}, the state says {:?}",
            state.next
        )));
    }
    let written = carry_out(aliases, &state, |live| state.plan_move(live)).await?;
    let state = state.after_move(written.revision_id, now);
    let (function, alias) = (&state.request.function, &state.request.alias);
    tracing::info!(function, alias, routing = %state.expected_routing(), next = ?state.next, "alias moved");
    Ok(state)
}

/// `CheckHealth`: judges the current step's window and decides what comes next.
pub async fn check(state: Rollout, metrics: &dyn Metrics, now: DateTime<Utc>) -> Result<Rollout, ControllerError> {
    let Some((start, end)) = state.health_window(now) else {
        return Err(ControllerError::InvalidState("health checked before the first move".into()));
    };
    let figures = if state.needs_metrics() {
        let query = WindowQuery {
            function_name: state.request.function_name().to_string(),
            alias: state.request.alias.clone(),
            new_version: state.request.version.clone(),
            baseline_version: state.old_version.clone(),
            start,
            end,
        };
        let mut figures = metrics.figures(&query).await?;
        figures.alarms = metrics.alarm_states(&state.request.health.alarms).await?;
        Some(figures)
    } else {
        None
    };
    let state = state.after_check(figures, now);
    let record = state.history.last();
    tracing::info!(function = state.request.function, step = record.map(|r| r.step), verdict = ?record.and_then(|r| r.verdict.clone()),
        next = ?state.next, "health checked");
    Ok(state)
}

/// `PreTraffic` and `PostTraffic`: invokes the hook that is due with the function, alias and both versions,
/// and decides what comes next; a failed hook rolls back.
pub async fn hook(state: Rollout, hooks: &dyn Hooks, now: DateTime<Utc>) -> Result<Rollout, ControllerError> {
    let Some((hook, function, payload)) = state.hook_call() else {
        return Err(ControllerError::InvalidState(format!("no hook is due: the state says {:?}", state.next)));
    };
    let outcome = hooks.run(&function, &payload).await?;
    tracing::info!(hook, function, passed = outcome.passed, message = outcome.message, "hook ran");
    Ok(state.after_hook(outcome, now))
}

/// `AwaitApproval` and `ApplyApproval`. Invoked with `{"state", "token"}` (the state machine waits for the
/// token), it announces the pause and how to continue; invoked with the state and the operator's answer
/// (`approval.decision`), it applies it. A decision other than `promote` or `promote_full` fails, and the
/// rollout rolls back: it never goes on without a clear approval.
pub async fn gate(event: Value, now: DateTime<Utc>) -> Result<Value, ControllerError> {
    if let (Some(state), Some(token)) = (event.get("state"), event.get("token").and_then(Value::as_str)) {
        let state = state_from(state.clone())?;
        let percent = state.schedule().step(state.next_index()).percent;
        let how = format!(
            "canaryctl promote EXECUTION [--full] | canaryctl abort EXECUTION; or SendTaskSuccess with output \
             {{\"decision\": \"promote\"}} (or \"promote_full\"), or SendTaskFailure to abort, with the task token {token}"
        );
        tracing::warn!(
            function = state.request.function,
            alias = state.request.alias,
            percent,
            how,
            "paused for approval"
        );
        return Ok(json!({"paused_before_percent": percent, "how_to_continue": how, "at": now}));
    }
    let mut state = state_from(event)?;
    let decision = state.decision.take();
    let decision = decision.as_ref().and_then(|d| d.get("decision")).and_then(Value::as_str).unwrap_or("(none)");
    let state = state.after_approval(decision).map_err(ControllerError::InvalidState)?;
    tracing::info!(function = state.request.function, decision, next = ?state.next, "approval applied");
    Ok(serde_json::to_value(state).expect("states serialise"))
}

/// `Rollback`: restores the routing recorded by `Prepare`, exactly, unless someone else changed the alias.
/// Returns the state with its report.
pub async fn rollback(
    mut state: Rollout,
    aliases: &dyn Aliases,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    let routing = carry_out(aliases, &state, |live| state.plan_rollback(live)).await?.routing;
    let (function, alias) = (&state.request.function, &state.request.alias);
    // An operator's abort at an approval gate arrives as a task failure named "Aborted".
    let aborted = state.error.as_ref().is_some_and(|e| e.error == "Aborted");
    let report = state.report(if aborted { Outcome::Aborted } else { Outcome::RolledBack }, routing, now);
    tracing::warn!(function, alias, reason = ?report.reason, "rolled back");
    state.report = Some(report);
    state.next = Next::Rollback;
    Ok(state)
}

/// `canary-safety-net`: for an execution that ended ABORTED, TIMED_OUT or FAILED (an EventBridge "Step
/// Functions Execution Status Change" event), restores the alias's original routing unless the
/// controller already finished the job. Reads the last rollout state from the execution's history.
pub async fn safety_net(
    event: Value,
    executions: &dyn Executions,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Value, ControllerError> {
    let detail = &event["detail"];
    let (Some(arn), Some(status)) = (detail["executionArn"].as_str(), detail["status"].as_str()) else {
        return Err(ControllerError::InvalidState("not a Step Functions execution status change event".into()));
    };
    let exits = executions.state_exits(arn).await?;
    let last_state = exits
        .iter()
        .rev()
        .filter_map(|exit| exit.output.as_deref())
        .find_map(|output| serde_json::from_str::<Rollout>(output).ok());
    match decide(status, last_state) {
        SafetyNet::Nothing(reason) => {
            tracing::info!(execution = arn, status, reason, "safety net: nothing to restore");
            Ok(json!({"execution": arn, "status": status, "action": "none", "reason": reason}))
        }
        SafetyNet::Restore(mut state) => {
            state.error = Some(TaskError {
                error: "ExecutionEnded".into(),
                cause: Some(format!(
                    "the execution ended {status} before the rollout finished; the safety net restored the alias"
                )),
            });
            let restored = rollback(*state, aliases, now).await?;
            announce(notifier, Task::Rollback, &restored).await;
            let routing = restored.report.map(|r| r.routing);
            tracing::warn!(execution = arn, status, ?routing, "safety net restored the alias");
            Ok(json!({"execution": arn, "status": status, "action": "restored", "routing": routing}))
        }
    }
}
