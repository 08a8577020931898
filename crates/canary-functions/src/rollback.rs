//! `Rollback`: every alias put back exactly, unless someone else changed it.

use crate::announce::announce_notice;
use crate::carry::{Carried, carry_out};
use crate::error::ControllerError;
use canary_aws::{Aliases, Notifier};
use canary_core::{MovePlan, Rollout};
use chrono::{DateTime, Utc};

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
    for view in state.function_views() {
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
pub(crate) async fn restored_not_serving(state: &Rollout, aliases: &dyn Aliases) -> Vec<String> {
    let mut warnings = Vec::new();
    for view in state.function_views() {
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
pub(crate) async fn rollback_one(
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
