//! `Prepare`: the request checked against the account, the original routing recorded, the lock taken.

use crate::carry::{carry_out, carry_out_presumed, still_runs};
use crate::check::window_query;
use crate::error::ControllerError;
use canary_aws::{Aliases, AwsError, ExecutionHistory, Metrics};
use canary_core::deployment::Deployment;
use canary_core::{AlarmValue, MovePlan, Rollout, parse_request};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// The execution named in the lock of a `Prepare` invoked directly, outside the state machine.
pub const DIRECT_INVOCATION: &str = "direct-invocation";

/// What `Prepare` is invoked with.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PrepareInput {
    /// From the state machine: the execution's input, its ARN, and the deployment's facts (the definition's
    /// `controller` block, also passed, is for canaryctl). A request never has a `request` key (unknown fields
    /// are refused), so nothing else takes this shape.
    Wrapped { request: Value, execution: String, deployment: Option<Value> },
    /// A direct invocation: the request alone.
    Bare(Value),
}

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
    // Any JSON is at least a bare request (which is then checked as one).
    let given = serde_json::from_value(input).map_err(|e| ControllerError::InvalidState(e.to_string()))?;
    let (input, execution, deployment) = match given {
        PrepareInput::Wrapped { request, execution, deployment } => {
            let deployment = match deployment {
                Some(facts) => serde_json::from_value(facts).map_err(|e| {
                    ControllerError::InvalidState(format!("the state machine's deployment facts are not valid: {e}"))
                })?,
                None => Deployment::default(),
            };
            (request, execution, deployment)
        }
        PrepareInput::Bare(request) => (request, DIRECT_INVOCATION.to_string(), Deployment::default()),
    };
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
    for view in rollout.function_views() {
        views.push(with_traffic_before(view, metrics, now).await?);
    }
    rollout = rollout.combine(views);
    lock_all(&mut rollout, aliases, &read).await?;
    for view in rollout.function_views() {
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
pub(crate) async fn release_own_locks(
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
pub(crate) async fn give_back_unprepared_lock(
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
pub(crate) async fn live_facts(
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
pub(crate) async fn with_traffic_before(
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
pub(crate) async fn lock_all(
    rollout: &mut Rollout,
    aliases: &dyn Aliases,
    read: &[Option<canary_core::AliasState>],
) -> Result<(), ControllerError> {
    let mut taken = Vec::new();
    for index in rollout.lock_order() {
        let view = rollout.function_view(index);
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
                    let view = rollout.function_view(index);
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
        *rollout = rollout.clone().with_function_view(index, &view.after_lock(locked.revision_id));
        taken.push(index);
    }
    Ok(())
}
