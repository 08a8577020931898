//! The controller's Lambda handlers, one per state of the state machine.
//!
//! Each handler is a plain async function over the [`canary_aws`] traits: read the state, make one AWS
//! read and at most one write, let [`canary_core`] decide, return the new state. [`serve`] builds the
//! clients once and hands events to these functions (the binaries in `src/bin/` only name the task), so
//! tests call them directly.
//!
//! Errors carry stable type names ([`ControllerError::error_type`]) that the state machine's `Retry` and
//! `Catch` match on.

pub mod serve;

use canary_aws::{Aliases, AwsError, ExecutionHistory, HookRunner, Metrics, Notifier, WindowQuery};
use canary_core::AlarmValue;
use canary_core::asl::ErrorName;
use canary_core::deployment::Deployment;
use canary_core::execution::ExecutionStatus;
use canary_core::notice::{Task, notices};
use canary_core::safety_net::{Action, Handled, SafetyNet, decide};
use canary_core::{AliasState, MovePlan, Next, Refusal, Rollout, parse_request};
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
    pub fn error_type(&self) -> ErrorName {
        match self {
            ControllerError::Refused(_) => ErrorName::RequestRefused,
            ControllerError::Transient(_) => ErrorName::TransientAwsError,
            ControllerError::AliasChangedConcurrently(_) => ErrorName::AliasChangedConcurrently,
            ControllerError::Aws(_) => ErrorName::AwsError,
            ControllerError::InvalidState(_) => ErrorName::InvalidState,
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
        Diagnostic { error_type: error.error_type().as_str().to_string(), error_message: error.to_string() }
    }
}

/// How long a task waits for its rollout events to be published. Publishing is best effort and runs after
/// the task's write: it must never hold the function until its own timeout, which would turn a move that
/// happened into a failed task.
pub const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Publishes what a task's resulting state announces. A notification that cannot be published within
/// [`PUBLISH_TIMEOUT`] is logged; it never fails the rollout.
pub async fn announce(notifier: &dyn Notifier, task: Task, state: &Rollout) {
    let notices = notices(task, state);
    if notices.is_empty() {
        return;
    }
    match tokio::time::timeout(PUBLISH_TIMEOUT, notifier.publish(&notices)).await {
        Ok(Ok(())) => tracing::info!(events = ?notices.iter().map(|n| n.detail_type).collect::<Vec<_>>(), "published"),
        Ok(Err(error)) => tracing::warn!(%error, "rollout events not published"),
        Err(_) => tracing::warn!(seconds = PUBLISH_TIMEOUT.as_secs(), "rollout events not published in time"),
    }
}

/// Reads the state a handler is given.
pub fn state_from(event: Value) -> Result<Rollout, ControllerError> {
    serde_json::from_value(event).map_err(|e| ControllerError::InvalidState(format!("not a rollout state: {e}")))
}

/// The execution named in the lock of a `Prepare` invoked directly, outside the state machine.
pub const DIRECT_INVOCATION: &str = "direct-invocation";

/// `Prepare`: checks the request offline and against the live alias and alarms, records the original
/// routing, and takes the alias's lock ([`canary_core::lock`]): one write, of the alias's description,
/// conditional on the revision it read. Of two executions preparing the same alias at once, exactly one
/// takes it; the other is refused (after a retry that re-reads the alias). Traffic does not move.
///
/// The state machine passes `{"request": <the execution input>, "execution": <its ARN>, "deployment": <where
/// it runs>}` ([`canary_core::deployment`]); a bare request (a direct invocation) locks the alias as
/// [`DIRECT_INVOCATION`], which no running execution is, and is judged as on AWS.
pub async fn prepare(
    input: Value,
    aliases: &dyn Aliases,
    metrics: &dyn Metrics,
    executions: &dyn ExecutionHistory,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    // A request never has a `request` key (unknown fields are refused), so this is the state machine's wrapper.
    let wrapped = input.get("request").is_some() && input.get("execution").is_some();
    let (input, execution, deployment) = match input.get("execution").and_then(Value::as_str) {
        Some(execution) if wrapped => {
            let deployment = match input.get("deployment") {
                Some(facts) => serde_json::from_value(facts.clone()).map_err(|e| {
                    ControllerError::InvalidState(format!("the state machine's deployment facts are not valid: {e}"))
                })?,
                None => Deployment::default(),
            };
            (input["request"].clone(), Some(execution.to_string()), deployment)
        }
        _ => (input, None, Deployment::default()),
    };
    let execution = execution.unwrap_or_else(|| DIRECT_INVOCATION.to_string());
    let request = parse_request(&input).map_err(ControllerError::Refused)?;
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
    for alarm in alarms.iter().filter(|a| a.state == AlarmValue::Alarm) {
        tracing::warn!(alarm = alarm.name, since = %alarm.updated_at, "alarm already in ALARM: reported, not blocking");
    }
    let lock = match alias.as_ref().and_then(|a| canary_core::lock::holder(&a.description)) {
        Some((holder, _)) => Some(canary_core::lock::Held {
            execution: holder.to_string(),
            running: holder == execution || still_runs(executions, holder).await?,
        }),
        None => None,
    };
    let read = alias.clone();
    let facts =
        canary_core::LiveFacts { function_exists, version_exists, alias, alarms, missing_hooks, lock, deployment };
    let mut rollout = Rollout::prepare(request, facts, &execution, now)
        .map_err(|refusal| ControllerError::Refused(canary_core::request::as_given(&input, refusal)))?;
    if let Some((start, end)) = rollout.baseline_before_window(now) {
        let before = metrics.figures(&window_query(&rollout, start, end)).await?.baseline;
        rollout = rollout.with_baseline_before(before);
    }
    // Prepared, so the alias exists: the lock is written on the revision just read.
    let read = read.expect("a prepared rollout's alias exists");
    let locked = match carry_out_presumed(aliases, &rollout, &read, |live| rollout.plan_lock(live)).await {
        // The alias moved between the read and the lock: a retry reads it again, and decides again.
        Err(ControllerError::AliasChangedConcurrently(message)) => {
            return Err(ControllerError::Transient(AwsError::RevisionChanged(message)));
        }
        other => other?,
    };
    let rollout = rollout.after_lock(locked.revision_id);
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

/// The metrics query for both versions of a rollout over one window.
fn window_query(rollout: &Rollout, start: DateTime<Utc>, end: DateTime<Utc>) -> WindowQuery {
    WindowQuery {
        function_name: rollout.request.function_name().to_string(),
        alias: rollout.request.alias.clone(),
        new_version: rollout.request.version.clone(),
        baseline_version: rollout.old_version.clone(),
        start,
        end,
    }
}

/// Whether the execution holding a lock still runs. A holder that is not an execution of a state machine,
/// or that Step Functions does not know, holds nothing.
async fn still_runs(executions: &dyn ExecutionHistory, holder: &str) -> Result<bool, ControllerError> {
    if canary_aws::state_machine_of(holder).is_none() {
        return Ok(false);
    }
    match executions.describe(holder).await {
        Ok(info) => Ok(info.status == ExecutionStatus::Running),
        Err(AwsError::NotFound(_)) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// Carries out `plan` writing first: planned against the alias as this execution last saw it (`presumed`: as
/// it left it, or as `Prepare` just read it), the write is conditional on that revision, so it lands only on
/// an alias nobody touched since. Only when
/// it is refused (the revision moved: someone else, or this task's own earlier attempt whose answer was
/// lost) or the alias is gone is the alias read and the plan made again on what is there ([`carry_out`]).
/// A move costs one call instead of two.
async fn carry_out_presumed(
    aliases: &dyn Aliases,
    state: &Rollout,
    presumed: &AliasState,
    plan: impl Fn(&AliasState) -> MovePlan,
) -> Result<AliasState, ControllerError> {
    let (function, alias) = (&state.request.function, &state.request.alias);
    if let MovePlan::Write { routing, description, revision_id } = plan(presumed) {
        match aliases.update_alias(function, alias, &routing, &description, &revision_id).await {
            Ok(written) => return Ok(written),
            Err(AwsError::RevisionChanged(_) | AwsError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    carry_out(aliases, state, plan).await
}

/// Reads the rollout, lets `plan` decide, and carries the plan out: nothing when it is done already,
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
        MovePlan::Write { routing, description, revision_id } => {
            Ok(aliases.update_alias(function, alias, &routing, &description, &revision_id).await?)
        }
        MovePlan::Conflict(message) => Err(ControllerError::AliasChangedConcurrently(message)),
    }
}

/// `Shift` and `Promote`: moves the alias to the next step of the schedule. A retry after a move that
/// happened is a no-op; a change by someone else fails with `AliasChangedConcurrently`.
pub async fn move_alias(
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
    let written = carry_out_presumed(aliases, &state, &state.alias_as_left(), |live| state.plan_move(live)).await?;
    let state = state.after_move(written.revision_id, now);
    let (function, alias) = (&state.request.function, &state.request.alias);
    tracing::info!(function, alias, routing = %state.expected_routing(), next = ?state.next, "alias moved");
    release_if_done(aliases, state).await
}

/// A rollout that is done gives the alias back: its original description, the routing as promoted.
async fn release_if_done(aliases: &dyn Aliases, state: Rollout) -> Result<Rollout, ControllerError> {
    if state.next != Next::Done {
        return Ok(state);
    }
    match carry_out_presumed(aliases, &state, &state.alias_as_left(), |live| state.plan_release(live)).await {
        Ok(_) => Ok(state),
        // Promoted, then changed by someone else: theirs is kept, and the rollout is still promoted.
        Err(ControllerError::AliasChangedConcurrently(message)) => {
            tracing::warn!(message, "promoted, but the alias was changed before its lock was released");
            Ok(state)
        }
        Err(other) => Err(other),
    }
}

/// `CheckHealth`: judges the current step's window and decides what comes next (a passed bake at 100%
/// ends the rollout, and releases the alias).
pub async fn check(
    state: Rollout,
    metrics: &dyn Metrics,
    aliases: &dyn Aliases,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    let Some((start, end)) = state.health_window(now) else {
        return Err(ControllerError::InvalidState("health checked before the first move".into()));
    };
    let figures = if state.needs_metrics() {
        let mut figures = metrics.figures(&window_query(&state, start, end)).await?;
        figures.alarms = metrics.alarm_states(&state.request.health.alarms).await?;
        Some(figures)
    } else {
        None
    };
    let state = state.after_check(figures, now);
    let record = state.history.last();
    tracing::info!(function = state.request.function, step = record.map(|r| r.step), verdict = ?record.and_then(|r| r.verdict.clone()),
        next = ?state.next, "health checked");
    release_if_done(aliases, state).await
}

/// `PreTraffic` and `PostTraffic`: invokes the hook that is due with the function, alias and both versions,
/// and decides what comes next; a failed hook rolls back, a passed post-traffic hook ends the rollout.
pub async fn hook(
    state: Rollout,
    hooks: &dyn HookRunner,
    aliases: &dyn Aliases,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    let Some((hook, function, payload)) = state.hook_call() else {
        return Err(ControllerError::InvalidState(format!("no hook is due: the state says {:?}", state.next)));
    };
    let outcome = hooks.run(&function, &payload).await?;
    tracing::info!(%hook, function, passed = outcome.passed, message = outcome.message, "hook ran");
    release_if_done(aliases, state.after_hook(outcome, now)).await
}

/// `AwaitApproval` and `ApplyApproval`. Invoked with `{"state", "token"}` (the state machine waits for the
/// token), it announces the pause and how to continue; invoked with the state and the operator's answer
/// (`approval.decision`), it applies it. A decision other than `promote` or `promote_full` fails, and the
/// rollout rolls back: it never goes on without a clear approval.
pub async fn gate(event: Value, notifier: &dyn Notifier, now: DateTime<Utc>) -> Result<Value, ControllerError> {
    // Invoked with the task token, the rollout has just paused. The token is a bearer credential (whoever
    // holds it can skip every check): it is never logged nor returned. canaryctl reads it from the
    // execution's history, which takes states:GetExecutionHistory.
    if let (Some(state), Some(_token)) = (event.get("state"), event.get("token").and_then(Value::as_str)) {
        let state = state_from(state.clone())?;
        let percent = state.schedule().step(state.next_index()).percent;
        let how = "canaryctl promote EXECUTION [--full] | canaryctl abort EXECUTION; or SendTaskSuccess with \
                   output {\"decision\": \"promote\"} (or \"promote_full\"), or SendTaskFailure to abort, with the \
                   task token of the AwaitApproval state in the execution's history";
        tracing::warn!(
            function = state.request.function,
            alias = state.request.alias,
            percent,
            how,
            "paused for approval"
        );
        announce(notifier, Task::Paused, &state).await;
        return Ok(json!({"paused_before_percent": percent, "how_to_continue": how, "at": now}));
    }
    let (decision, state) = state_from(event)?.apply_answer().map_err(ControllerError::InvalidState)?;
    tracing::info!(function = state.request.function, %decision, next = ?state.next, "approval applied");
    Ok(serde_json::to_value(state).expect("states serialise"))
}

/// `Rollback`: restores the routing recorded by `Prepare`, exactly, unless someone else changed the alias.
/// Returns the state with its report.
pub async fn rollback(state: Rollout, aliases: &dyn Aliases, now: DateTime<Utc>) -> Result<Rollout, ControllerError> {
    let routing = carry_out(aliases, &state, |live| state.plan_rollback(live)).await?.routing;
    let state = state.after_rollback(routing, now);
    let (function, alias) = (&state.request.function, &state.request.alias);
    tracing::warn!(function, alias, reason = ?state.report.as_ref().and_then(|r| r.reason.clone()), "rolled back");
    Ok(state)
}

/// `canary-safety-net`: for an execution that ended ABORTED, TIMED_OUT or FAILED (an EventBridge "Step
/// Functions Execution Status Change" event), restores the alias's original routing unless the
/// controller already finished the job. The execution's status is read again (`DescribeExecution`), never
/// taken from the event: a running execution is never touched. The last rollout state is read from the
/// history newest first, so a history of 25,000 events costs a page or two.
pub async fn safety_net(
    event: Value,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Handled, ControllerError> {
    let Some(arn) = event["detail"]["executionArn"].as_str() else {
        return Err(ControllerError::InvalidState("not a Step Functions execution status change event".into()));
    };
    let status = executions.describe(arn).await?.status;
    let last_state = match status {
        ExecutionStatus::Running => None,
        _ => canary_aws::last_rollout_state(executions, arn).await?,
    };
    restore_ended(arn, status, last_state, aliases, notifier, now).await
}

/// Restores the alias of an ended execution from its last rollout state, as the safety net and `canaryctl
/// abort` do: nothing when the controller finished the job or nothing moved, else the conditional rollback.
pub async fn restore_ended(
    arn: &str,
    status: ExecutionStatus,
    last_state: Option<Rollout>,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Handled, ControllerError> {
    let handled = |action| Handled { execution: arn.to_string(), status, action };
    match decide(status, last_state) {
        SafetyNet::Nothing(reason) => {
            tracing::info!(execution = arn, %status, reason, "safety net: nothing to restore");
            Ok(handled(Action::None { reason }))
        }
        SafetyNet::Restore(state) => {
            let restored = rollback(*state, aliases, now).await?;
            announce(notifier, Task::Rollback, &restored).await;
            let routing = restored.report.map(|r| r.routing);
            tracing::warn!(execution = arn, %status, ?routing, "safety net restored the alias");
            Ok(handled(Action::Restored { routing }))
        }
    }
}
