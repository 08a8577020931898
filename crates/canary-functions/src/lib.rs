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
use canary_core::safety_net::{Action, Ended, Handled, SafetyNet, Swept, decide};
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

/// Publishes one notice, as [`announce`] does: bounded, best effort.
async fn announce_notice(notifier: &dyn Notifier, notice: canary_core::notice::Notice) {
    match tokio::time::timeout(PUBLISH_TIMEOUT, notifier.publish(std::slice::from_ref(&notice))).await {
        Ok(Ok(())) => tracing::info!(event = notice.detail_type, "published"),
        Ok(Err(error)) => tracing::warn!(%error, "rollout event not published"),
        Err(_) => tracing::warn!(seconds = PUBLISH_TIMEOUT.as_secs(), "rollout event not published in time"),
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
    // Before anything is read: a function outside what this deployment's roles may touch would otherwise be
    // an AccessDenied on the first read, not a refusal naming the pattern.
    deployment
        .check(&request)
        .map_err(|refusal| ControllerError::Refused(canary_core::request::as_given(&input, refusal)))?;
    let alarms = metrics.alarm_states(&request.health.alarms).await?;
    for alarm in alarms.iter().filter(|a| a.state == AlarmValue::Alarm) {
        tracing::warn!(alarm = alarm.name, since = %alarm.updated_at, "alarm already in ALARM: reported, not blocking");
    }
    // Each function's facts, in the request's order; a release's are judged together, so that one refusal
    // names every problem of every function before any alias is locked.
    let targets = request.targets();
    let mut facts = Vec::new();
    let mut read = Vec::new();
    for target in &targets {
        let live = live_facts(&request.for_target(target), aliases, executions, &execution, &alarms).await?;
        read.push(live.alias.clone());
        facts.push(canary_core::LiveFacts { deployment: deployment.clone(), ..live });
    }
    let mut rollout = match Rollout::prepare_all(request, facts, &execution, now) {
        Ok(rollout) => rollout,
        Err(refusal) => {
            // A release refused now may hold locks an earlier attempt of this Prepare took (it timed out part-way,
            // and since then another rollout took one of its aliases): give them back, or they would stay held.
            release_own_locks(aliases, &targets, &read, &execution).await;
            return Err(ControllerError::Refused(canary_core::request::as_given(&input, refusal)));
        }
    };
    let mut views = Vec::new();
    for view in rollout.members_views() {
        views.push(with_traffic_before(view, metrics, now).await?);
    }
    rollout = rollout.combine(views);
    lock_all(&mut rollout, aliases, &read).await?;
    for view in rollout.members_views() {
        tracing::info!(
            function = view.request.function,
            alias = view.request.alias,
            from = view.old_version,
            to = view.request.version,
            steps = view.step_count,
            "rollout prepared"
        );
    }
    Ok(rollout)
}

/// Gives back the locks `execution` holds among `targets` (their aliases as `read`), best effort: a write
/// refused now means the alias changed again, and the next rollout breaks the stale lock.
async fn release_own_locks(
    aliases: &dyn Aliases,
    targets: &[canary_core::request::Target],
    read: &[Option<canary_core::AliasState>],
    execution: &str,
) {
    for (target, live) in targets.iter().zip(read) {
        let Some(live) = live else { continue };
        match give_back_unprepared_lock(aliases, target, live, execution).await {
            Ok(true) => {
                tracing::warn!(function = target.function, "refused: the lock an earlier attempt took is given back")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(function = target.function, %error, "refused: a lock taken was not given back")
            }
        }
    }
}

/// Gives back the lock of `execution`, which never prepared its rollout, if `live` (the alias of `target`)
/// carries it: its own description back, the routing as it is, conditional on the revision read. Whether it
/// wrote.
async fn give_back_unprepared_lock(
    aliases: &dyn Aliases,
    target: &canary_core::request::Target,
    live: &canary_core::AliasState,
    execution: &str,
) -> Result<bool, AwsError> {
    match canary_core::safety_net::plan_release_unprepared(execution, live) {
        MovePlan::Write { routing, description, revision_id } => {
            aliases.update_alias(&target.function, &target.alias, &routing, &description, &revision_id).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// What the live account holds for one function of a request: the function, the versions, the alias and its
/// lock, the hooks, the provisioned concurrency; `alarms` read once for all.
async fn live_facts(
    request: &canary_core::RolloutRequest,
    aliases: &dyn Aliases,
    executions: &dyn ExecutionHistory,
    execution: &str,
    alarms: &[canary_core::AlarmState],
) -> Result<canary_core::LiveFacts, ControllerError> {
    let function = request.function.clone();
    let function_exists = aliases.function_exists(&function).await?;
    let (version, alias) = if function_exists {
        (
            aliases.version_config(&function, &request.version).await?,
            aliases.get_alias(&function, &request.alias).await?,
        )
    } else {
        (None, None)
    };
    let version_exists = version.is_some();
    // Lambda's rules for a weighted alias compare the new version with every version the alias routes to.
    let mut versions = std::collections::BTreeMap::new();
    if let Some(config) = version {
        versions.insert(request.version.clone(), config);
    }
    if let Some(routing) = alias.as_ref().map(|a| &a.routing) {
        for routed in std::iter::once(&routing.function_version).chain(routing.additional_version_weights.keys()) {
            if !versions.contains_key(routed)
                && let Some(config) = aliases.version_config(&function, routed).await?
            {
                versions.insert(routed.clone(), config);
            }
        }
    }
    let mut missing_hooks = Vec::new();
    for hook in [&request.hooks.pre_traffic, &request.hooks.post_traffic].into_iter().flatten() {
        if function_exists && !aliases.function_exists(hook).await? {
            missing_hooks.push(hook.clone());
        }
    }
    let lock = match alias.as_ref().and_then(|a| canary_core::lock::holder(&a.description)) {
        Some((holder, _)) => Some(canary_core::lock::Held {
            execution: holder.to_string(),
            running: holder == execution || still_runs(executions, holder).await?,
        }),
        None => None,
    };
    // Said in the rollout's first line: how Lambda shares it between the versions while they are weighted.
    let provisioned_concurrency = match &alias {
        Some(_) => aliases.provisioned_concurrency(&function, &request.alias).await?,
        None => None,
    };
    Ok(canary_core::LiveFacts {
        function_exists,
        version_exists,
        versions,
        provisioned_concurrency,
        alias,
        alarms: alarms.to_vec(),
        missing_hooks,
        lock,
        deployment: Deployment::default(),
    })
}

/// One function's view with the old version's traffic over the hour before the rollout, and what it says
/// of the evidence the rollout can gather (logged).
async fn with_traffic_before(
    view: Rollout,
    metrics: &dyn Metrics,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    let Some((start, end)) = view.before_window(now) else { return Ok(view) };
    let before = metrics.traffic_before(&window_query(&view, start, end)).await?;
    let view = view.with_traffic_before(&before.minutes, before.p99_duration_ms);
    if let Some(outlook) = view.outlook() {
        tracing::info!(
            function = view.request.function,
            per_minute = outlook.requests_per_minute,
            needed = outlook.needed,
            expected_by_promotion = outlook.expected_by_promotion,
            expected_wait_seconds = outlook.expected_wait_seconds,
            decided_in_time = outlook.decided_in_time,
            "{}",
            outlook.describe(&view.request)
        );
    }
    if let Some(note) = view.provisioned_note() {
        tracing::info!(function = view.request.function, provisioned = view.provisioned_concurrency, "{note}");
    }
    Ok(view)
}

/// Takes every function's lock ([`canary_core::lock`]), each one write of the alias's description conditional
/// on the revision `Prepare` read (`read`, in the request's order), in [`Rollout::lock_order`]: all or none.
/// When one cannot be taken (the alias moved since it was read, or the call failed), the locks already taken
/// are given back before the error is returned: a retry reads every alias again and decides again, and two
/// releases sharing functions, taking them in the same order, cannot each hold one the other needs.
async fn lock_all(
    rollout: &mut Rollout,
    aliases: &dyn Aliases,
    read: &[Option<canary_core::AliasState>],
) -> Result<(), ControllerError> {
    let mut taken = Vec::new();
    for index in rollout.lock_order() {
        let view = rollout.member(index);
        // Prepared, so the alias exists: the lock is written on the revision just read.
        let presumed = read[index].clone().expect("a prepared rollout's alias exists");
        let locked = match carry_out_presumed(aliases, &view, &presumed, |live| view.plan_lock(live)).await {
            Ok(carried) => carried.written(),
            Err(error) => Err(error),
        };
        let locked = match locked {
            Ok(locked) => locked,
            Err(error) => {
                for index in taken {
                    let view = rollout.member(index);
                    if let Err(error) = carry_out(aliases, &view, |live| view.plan_release(live)).await {
                        tracing::warn!(function = view.request.function, %error, "a lock taken was not given back");
                    }
                }
                // The alias moved between the read and the lock: a retry reads it again, and decides again.
                return Err(match error {
                    ControllerError::AliasChangedConcurrently(message) => {
                        ControllerError::Transient(AwsError::RevisionChanged(message))
                    }
                    other => other,
                });
            }
        };
        *rollout = rollout.clone().with_member(index, &view.after_lock(locked.revision_id));
        taken.push(index);
    }
    Ok(())
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
        slow_above_ms: rollout.slow_threshold_ms(),
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

/// What carrying out a plan came to.
enum Carried {
    /// Written: the alias as it is now.
    Written(AliasState),
    /// Nothing to write: the alias as it is now.
    AlreadyDone(AliasState),
    /// Only the alias's description changed since this execution wrote it ([`MovePlan::DescriptionChanged`]):
    /// the alias as it is now.
    DescriptionChanged(AliasState),
    /// Someone else set the alias's routing, or another rollout holds it: the alias as it is now, and why.
    Conflict(AliasState, String),
}

impl Carried {
    /// The alias as written, for a plan that can neither meet a changed description nor give the alias up.
    fn written(self) -> Result<AliasState, ControllerError> {
        match self {
            Carried::Written(alias) | Carried::AlreadyDone(alias) => Ok(alias),
            Carried::DescriptionChanged(live) => Err(ControllerError::AliasChangedConcurrently(format!(
                "the alias's description changed to {:?} under this rollout",
                live.description
            ))),
            Carried::Conflict(_, message) => Err(ControllerError::AliasChangedConcurrently(message)),
        }
    }
}

/// Carries out `plan` writing first: planned against the alias as this execution last saw it (`presumed`: as
/// it left it, or as `Prepare` just read it), the write is conditional on that revision, so it lands only on
/// an alias nobody touched since. Only when it is refused (the revision moved: someone else, or this task's
/// own earlier attempt whose answer was lost) or the alias is gone is the alias read and the plan made again
/// on what is there ([`carry_out`]). A move costs one call instead of two.
async fn carry_out_presumed(
    aliases: &dyn Aliases,
    state: &Rollout,
    presumed: &AliasState,
    plan: impl Fn(&AliasState) -> MovePlan,
) -> Result<Carried, ControllerError> {
    let (function, alias) = (&state.request.function, &state.request.alias);
    if let MovePlan::Write { routing, description, revision_id } = plan(presumed) {
        match aliases.update_alias(function, alias, &routing, &description, &revision_id).await {
            Ok(written) => return Ok(Carried::Written(written)),
            Err(AwsError::RevisionChanged(_) | AwsError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    carry_out(aliases, state, plan).await
}

/// Reads the alias, lets `plan` decide, and carries the plan out: nothing when it is done already, a write
/// conditional on the revision just read, or what stands in its way.
async fn carry_out(
    aliases: &dyn Aliases,
    state: &Rollout,
    plan: impl FnOnce(&AliasState) -> MovePlan,
) -> Result<Carried, ControllerError> {
    let (function, alias) = (&state.request.function, &state.request.alias);
    let live = aliases.get_alias(function, alias).await?.ok_or_else(|| {
        ControllerError::AliasChangedConcurrently(format!("the alias \"{alias}\" was deleted during the rollout"))
    })?;
    Ok(match plan(&live) {
        MovePlan::AlreadyDone => Carried::AlreadyDone(live),
        MovePlan::Write { routing, description, revision_id } => {
            Carried::Written(aliases.update_alias(function, alias, &routing, &description, &revision_id).await?)
        }
        MovePlan::DescriptionChanged => Carried::DescriptionChanged(live),
        MovePlan::Conflict(message) => Carried::Conflict(live, message),
    })
}

/// `Shift` and `Promote`: moves the alias to the next step of the schedule. A retry after a move that
/// happened is a no-op; a change by someone else fails with `AliasChangedConcurrently`.
pub async fn move_alias(
    state: Rollout,
    expected: Next,
    aliases: &dyn Aliases,
    executions: &dyn ExecutionHistory,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    if state.next != expected {
        return Err(ControllerError::InvalidState(format!(
            "this task moves on {expected:?}, the state says {:?}",
            state.next
        )));
    }
    // A release moves each function in the request's order; one that cannot move fails the task, and the
    // rollback restores those that moved (a move in flight is the rollback's to undo).
    let mut moved = Vec::new();
    for view in state.members_views() {
        moved.push(move_one(view, aliases, executions, now).await?);
    }
    let state = state.combine(moved);
    release_if_done(aliases, state).await
}

/// One function's move, as [`move_alias`] describes it.
async fn move_one(
    state: Rollout,
    aliases: &dyn Aliases,
    executions: &dyn ExecutionHistory,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    let carried = carry_out_presumed(aliases, &state, &state.alias_as_left(), |live| state.plan_move(live)).await?;
    let (state, written) = match carried {
        // Only the description changed (a person, a stack update): the alias is still this rollout's, unless
        // its execution has ended, whose ending released it (a late write of a stopped execution must not
        // move traffic after the safety net restored the alias).
        Carried::DescriptionChanged(live) => {
            let execution = canary_core::lock::holder(&state.lock).map(|(e, _)| e.to_string()).unwrap_or_default();
            if !still_runs(executions, &execution).await? {
                return Err(ControllerError::AliasChangedConcurrently(format!(
                    "this rollout's execution has ended and released the alias \"{}\": nothing moves",
                    state.request.alias
                )));
            }
            tracing::warn!(description = live.description, "the alias's description was changed: carrying on");
            let state = state.adopt(&live);
            let written = carry_out(aliases, &state, |live| state.plan_move(live)).await?.written()?;
            (state, written)
        }
        other => (state, other.written()?),
    };
    let state = state.after_move(written.revision_id, now);
    let (function, alias) = (&state.request.function, &state.request.alias);
    tracing::info!(function, alias, routing = %state.expected_routing(), next = ?state.next, "alias moved");
    Ok(state)
}

/// A rollout that is done gives the alias back (every alias of a release): its original description, the
/// routing as promoted.
async fn release_if_done(aliases: &dyn Aliases, state: Rollout) -> Result<Rollout, ControllerError> {
    if state.next != Next::Done {
        return Ok(state);
    }
    for view in state.members_views() {
        match carry_out_presumed(aliases, &view, &view.alias_as_left(), |live| view.plan_release(live)).await? {
            Carried::Written(_) | Carried::AlreadyDone(_) => {}
            // Promoted, then its description set by someone else (theirs stays) or its routing changed (theirs
            // is kept): the rollout is still promoted.
            Carried::DescriptionChanged(live) | Carried::Conflict(live, _) => {
                tracing::warn!(function = view.request.function, routing = %live.routing, description = live.description,
                    "promoted; the alias was changed since");
            }
        }
    }
    Ok(state)
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
    // The alarms are the release's: read once, judged with each function's figures.
    let alarms =
        if state.needs_metrics() { metrics.alarm_states(&state.request.health.alarms).await? } else { Vec::new() };
    let mut checked = Vec::new();
    for view in state.members_views() {
        let figures = if view.needs_metrics() {
            let figures = metrics.figures(&window_query(&view, start, end)).await?;
            Some(canary_core::health::HealthFigures { alarms: alarms.clone(), ..figures })
        } else {
            None
        };
        let view = view.after_check(figures, now);
        let record = view.history.last();
        tracing::info!(function = view.request.function, step = record.map(|r| r.step), verdict = ?record.and_then(|r| r.verdict.clone()),
            next = ?view.next, "health checked");
        checked.push(view);
    }
    release_if_done(aliases, state.combine(checked)).await
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

/// `Rollback`: restores the routing recorded by `Prepare`, exactly, unless someone else changed the alias's
/// routing: then theirs is kept, the hand-over announced ("Rollout Taken Over", with what the alias routes),
/// and the task fails (`RollbackFailed`). Returns the state with its report, and whether this call wrote
/// the alias (a retry, or a second safety net delivery, finds it restored and writes nothing).
pub async fn rollback(
    state: Rollout,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<(Rollout, bool), ControllerError> {
    // Every alias of a release is decided on its own, each under its own check: one taken over by hand is
    // handed over, and the others are still put back. An alias that could not be written for another reason
    // fails the task with that reason (a transient one first, so that it is retried), never masked by another
    // alias's hand-over: a retry finds the restored ones done and the handed-over ones left alone.
    let (mut restored, mut wrote, mut handed_over, mut failed) = (Vec::new(), false, Vec::new(), None);
    for view in state.members_views() {
        match rollback_one(view.clone(), aliases, notifier, now).await {
            Ok((view, written)) => {
                wrote |= written;
                restored.push(view);
            }
            Err(ControllerError::AliasChangedConcurrently(message)) => {
                // In a release, the hand-over names the function it is about.
                let function = &view.request.function;
                handed_over.push(if state.width() > 1 { format!("{function}: {message}") } else { message });
                restored.push(view);
            }
            Err(error) => {
                let (function, alias) = (&view.request.function, &view.request.alias);
                tracing::error!(function, alias, %error, "not restored yet");
                let transient = matches!(error, ControllerError::Transient(_));
                if failed.as_ref().is_none_or(|f| transient && !matches!(f, ControllerError::Transient(_))) {
                    failed = Some(error);
                }
                restored.push(view);
            }
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    if !handed_over.is_empty() {
        return Err(ControllerError::AliasChangedConcurrently(handed_over.join("; ")));
    }
    let mut state = state.combine(restored);
    let warnings = restored_not_serving(&state, aliases).await;
    if let Some(report) = state.report.as_mut() {
        report.warnings = warnings;
    }
    let (function, alias) = (&state.request.function, &state.request.alias);
    tracing::warn!(function, alias, functions = state.width(), reason = ?state.report.as_ref().and_then(|r| r.reason.clone()), "rolled back");
    Ok((state, wrote))
}

/// The versions a rollback put back that Lambda cannot invoke now (not `Active`): the alias is restored
/// exactly all the same, and the report says so. Best effort: a version that cannot be read is not reported.
async fn restored_not_serving(state: &Rollout, aliases: &dyn Aliases) -> Vec<String> {
    let mut warnings = Vec::new();
    for view in state.members_views() {
        let (function, version) = (&view.request.function, &view.old_version);
        match aliases.version_config(function, version).await {
            Ok(Some(config)) => {
                if let Some(warning) = config.state.restored_warning(function, version) {
                    tracing::error!(function, version, state = config.state.name(), "{warning}");
                    warnings.push(warning);
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(function, version, %error, "the restored version's state was not read"),
        }
    }
    warnings
}

/// One function's rollback, as [`rollback`] describes it.
async fn rollback_one(
    state: Rollout,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<(Rollout, bool), ControllerError> {
    let (live, wrote) = match carry_out(aliases, &state, |live| state.plan_rollback(live)).await? {
        Carried::Written(live) => (live, true),
        Carried::AlreadyDone(live) => (live, false),
        Carried::Conflict(live, message) => {
            tracing::warn!(routing = %live.routing, message, "the alias is not this rollout's: left as it is");
            // Their routing stays; this rollout's lock comes off it, the description put back, and the hand-over
            // is announced, once: a later delivery of the same ending finds no lock of this execution, and says
            // so only in its answer. (A write refused now means they changed it again; the lock then stays
            // until the safety net's sweep, which finds it, hands it over the same way.)
            if let MovePlan::Write { routing, description, revision_id } = state.plan_release(&live) {
                let (function, alias) = (&state.request.function, &state.request.alias);
                match aliases.update_alias(function, alias, &routing, &description, &revision_id).await {
                    Ok(_) => {
                        announce_notice(notifier, canary_core::notice::taken_over(&state, &live.routing, &message))
                            .await
                    }
                    Err(error) => tracing::warn!(%error, "the lock was not released from the alias taken over"),
                }
            }
            return Err(ControllerError::AliasChangedConcurrently(message));
        }
        changed @ Carried::DescriptionChanged(_) => {
            return Err(changed.written().expect_err("a changed description is not written"));
        }
    };
    Ok((state.after_rollback(live.routing, now), wrote))
}

/// `canary-safety-net`. Given an execution (an EventBridge "Step Functions Execution Status Change" event
/// for one that ended ABORTED, TIMED_OUT or FAILED, or `canaryctl abort`'s request in the same shape), it
/// puts the alias back as the controller would have: [`restore_ended`]. Given `{"sweep": <state machine
/// ARN>}` (its schedule), it looks for the aliases ended executions still hold: [`sweep`].
pub async fn safety_net(
    event: Value,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Value, ControllerError> {
    safety_net_managing(event, None, executions, aliases, notifier, now).await
}

/// [`safety_net`] of a deployment whose roles may touch only the functions `managed` names (the template's
/// `ManagedFunctionPattern`, in the function's `CANARY_MANAGED_FUNCTIONS`): the sweep never reads the alias
/// of a function outside it, which a refused request may name and which no execution of this stage can hold.
pub async fn safety_net_managing(
    event: Value,
    managed: Option<&str>,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Value, ControllerError> {
    let answer = if let Some(state_machine) = event["sweep"].as_str() {
        serde_json::to_value(sweep_within(state_machine, Reach { managed }, executions, aliases, notifier, now).await?)
    } else if let Some(arn) = event["detail"]["executionArn"].as_str() {
        serde_json::to_value(restore_ended_within(arn, Reach { managed }, executions, aliases, notifier, now).await?)
    } else {
        return Err(ControllerError::InvalidState(
            "neither an execution's status change ({\"detail\": {\"executionArn\": ...}}) nor a sweep \
             ({\"sweep\": STATE_MACHINE_ARN})"
                .into(),
        ));
    };
    Ok(answer.expect("safety net answers serialise"))
}

/// For one ended execution, what the controller would have done: nothing when it finished the job; the
/// conditional rollback of its alias to the routing it recorded; or, when it ended before its rollout was
/// prepared, the release of the lock its `Prepare` may have left. The execution's status is read again
/// (`DescribeExecution`), never taken from an event: a running execution is never touched. The last rollout
/// state is read from the history newest first, so a history of 25,000 events costs a page or two. What
/// it restores, and only that, is announced: a second delivery of the same ending writes nothing and says
/// nothing.
pub async fn restore_ended(
    arn: &str,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Handled, ControllerError> {
    restore_ended_within(arn, Reach { managed: None }, executions, aliases, notifier, now).await
}

/// [`restore_ended`] by a deployment that may touch only what `reach` covers: an execution that never
/// prepared its rollout may name a function outside it (Prepare refused it first), which it never locked.
async fn restore_ended_within(
    arn: &str,
    reach: Reach<'_>,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Handled, ControllerError> {
    let info = executions.describe(arn).await?;
    let status = info.status;
    let last_state = match status {
        ExecutionStatus::Running => None,
        _ => canary_aws::last_rollout_state(executions, arn).await?,
    };
    let handled = |action| Handled { execution: arn.to_string(), status, action };
    let ended = Ended { status, error: info.error.as_deref(), cause: info.cause.as_deref() };
    match decide(&ended, last_state) {
        SafetyNet::Nothing(reason) => {
            tracing::info!(execution = arn, %status, reason, "safety net: nothing to restore");
            Ok(handled(Action::None { reason }))
        }
        SafetyNet::Restore(state) => match rollback(*state, aliases, notifier, now).await {
            Ok((restored, true)) => {
                announce(notifier, Task::Rollback, &restored).await;
                let routing = restored.report.map(|r| r.routing);
                tracing::warn!(execution = arn, %status, ?routing, "safety net restored the alias");
                Ok(handled(Action::Restored { routing }))
            }
            Ok((_, false)) => Ok(handled(Action::None { reason: "the alias was already restored".into() })),
            // Theirs is kept (and announced when this execution's lock came off it): an answer, not a failure to
            // retry. Any alias that failed for another reason failed the rollback above, and is retried.
            Err(ControllerError::AliasChangedConcurrently(reason)) => {
                tracing::warn!(execution = arn, %status, reason, "safety net: handed over, not restored");
                Ok(handled(Action::HandedOver { reason }))
            }
            Err(error) => Err(error),
        },
        SafetyNet::Release => {
            let Some(request) = info.input.as_deref().and_then(|i| canary_core::parse_request_str(i).ok()) else {
                return Ok(handled(Action::None { reason: "nothing moved, and its input names no alias".into() }));
            };
            // Every alias its Prepare may have locked (a release's, all or some).
            let mut released = false;
            for target in request.targets().into_iter().filter(|t| reach.covers(&t.function)) {
                let Some(live) = aliases.get_alias(&target.function, &target.alias).await? else { continue };
                if give_back_unprepared_lock(aliases, &target, &live, arn).await? {
                    tracing::warn!(execution = arn, %status, function = target.function,
                        "nothing moved; the lock its Prepare left was released");
                    released = true;
                }
            }
            Ok(handled(if released {
                Action::Released
            } else {
                Action::None { reason: "the execution ended before its rollout was prepared: nothing moved".into() }
            }))
        }
    }
}

/// How far back the sweep looks for ended executions. It runs every few minutes (the template's schedule),
/// so each ending is looked at many times; an alias an ended execution still holds is restored at the first.
pub const SWEEP_WINDOW: chrono::Duration = chrono::Duration::hours(2);

/// The sweep: every execution of `state_machine` that ended ABORTED, TIMED_OUT or FAILED within
/// [`SWEEP_WINDOW`] and whose alias still carries its lock is handled as its status change event would have
/// been ([`restore_ended`]): AWS delivers those events at best effort, and one lost would leave the alias
/// part-shifted and locked. One that cannot be handled now is logged and retried at the next sweep; the
/// first such error is returned once every other is done. Each alias it restores is counted in the metric
/// `LambdaCanary/SweepRestored`, which the template alarms on.
pub async fn sweep(
    state_machine: &str,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Swept, ControllerError> {
    sweep_within(state_machine, Reach { managed: None }, executions, aliases, notifier, now).await
}

/// The functions a deployment's roles may touch; `None`: not said, every function is looked at.
#[derive(Debug, Clone, Copy)]
struct Reach<'a> {
    managed: Option<&'a str>,
}

impl Reach<'_> {
    fn covers(&self, function: &str) -> bool {
        self.managed.is_none_or(|pattern| {
            canary_core::deployment::name_matches(pattern, canary_core::request::function_name_of(function))
        })
    }
}

async fn sweep_within(
    state_machine: &str,
    reach: Reach<'_>,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Swept, ControllerError> {
    let ended = executions.ended_since(state_machine, now - SWEEP_WINDOW).await?;
    let mut swept = Swept { looked_at: ended.len(), handled: Vec::new() };
    let mut first_error = None;
    for execution in ended {
        match sweep_one(&execution.arn, reach, executions, aliases, notifier, now).await {
            Ok(Some(handled)) => swept.handled.push(handled),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(execution = execution.arn, %error, "sweep: not handled, retried at the next sweep");
                first_error.get_or_insert(error);
            }
        }
    }
    let restored = swept.handled.iter().filter(|h| h.action.put_back()).count();
    println!("{}", canary_core::notice::sweep_metric(state_machine, restored, now));
    if restored > 0 {
        tracing::warn!(restored, "sweep: aliases held by ended executions were put back");
    }
    first_error.map_or(Ok(swept), Err)
}

/// One ended execution of the sweep: handled when the alias its input names still carries its lock.
async fn sweep_one(
    arn: &str,
    reach: Reach<'_>,
    executions: &dyn ExecutionHistory,
    aliases: &dyn Aliases,
    notifier: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<Option<Handled>, ControllerError> {
    let info = executions.describe(arn).await?;
    // Ended by the controller's own rollback: it holds nothing. (A refused one may still: a retried Prepare
    // refused after its earlier attempt locked some aliases gives them back at best effort.)
    if info.error.as_deref() == Some(ErrorName::RolledBack.as_str()) {
        return Ok(None);
    }
    let Some(request) = info.input.as_deref().and_then(|i| canary_core::parse_request_str(i).ok()) else {
        return Ok(None);
    };
    // Held when any alias it names (each of a release's) still carries its lock. A refused request may name
    // an alias the controller cannot read at all (another region's ARN, say): it holds nothing there, and must
    // not fail every sweep of the next two hours.
    let refused = info.error.as_deref() == Some(ErrorName::RequestRefused.as_str());
    let mut held = false;
    // A function outside what this deployment may touch was never locked by it (Prepare refuses it first).
    for target in request.targets().into_iter().filter(|t| reach.covers(&t.function)) {
        let live = match aliases.get_alias(&target.function, &target.alias).await {
            Ok(live) => live,
            Err(error) if refused => {
                tracing::info!(execution = arn, function = target.function, %error, "sweep: a refused request's alias cannot be read");
                None
            }
            Err(error) => return Err(error.into()),
        };
        let Some(live) = live else { continue };
        if canary_core::lock::held_by(&live.description, arn) {
            held = true;
            break;
        }
    }
    if !held {
        return Ok(None);
    }
    tracing::warn!(execution = arn, status = %info.status, "sweep: an ended execution still holds its alias");
    Ok(Some(restore_ended_within(arn, reach, executions, aliases, notifier, now).await?))
}
