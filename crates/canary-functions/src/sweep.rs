//! The sweep: ended executions whose aliases still carry their lock, found and handled.

use crate::error::ControllerError;
use crate::safety_net::{Reach, restore_ended};
use canary_aws::{Aliases, ExecutionHistory, Notifier};
use canary_core::asl::ErrorName;
use canary_core::safety_net::{Handled, Swept};
use chrono::{DateTime, Utc};

/// How far back the sweep looks for ended executions. It runs every few minutes (the template's schedule),
/// so each ending is looked at many times; an alias an ended execution still holds is restored at the first.
pub const SWEEP_WINDOW: chrono::Duration = chrono::Duration::hours(2);

/// The sweep: every execution of `state_machine` that ended ABORTED, TIMED_OUT or FAILED within
/// [`SWEEP_WINDOW`] and whose alias still carries its lock is handled as its status change event would have
/// been ([`restore_ended`]): AWS delivers those events at best effort, and one lost would leave the alias
/// part-shifted and locked. One that cannot be handled now is logged and retried at the next sweep; the
/// first such error is returned once every other is done. Each alias it restores is counted in the metric
/// `LambdaCanary/SweepRestored`, which the template alarms on. Only aliases `reach` covers are read.
pub(crate) async fn sweep(
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
pub(crate) async fn sweep_one(
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
    Ok(Some(restore_ended(arn, reach, executions, aliases, notifier, now).await?))
}
