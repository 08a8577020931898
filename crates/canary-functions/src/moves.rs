//! `Shift` and `Promote`: the alias moved to the schedule's next step.

use crate::carry::{Carried, carry_out, carry_out_presumed, release_if_done, still_runs};
use crate::error::ControllerError;
use canary_aws::{Aliases, ExecutionHistory};
use canary_core::{Next, Rollout};
use chrono::{DateTime, Utc};

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
    for view in state.function_views() {
        moved.push(move_one(view, aliases, executions, now).await?);
    }
    let state = state.combine(moved);
    release_if_done(aliases, state).await
}

/// One function's move, as [`move_alias`] describes it.
pub(crate) async fn move_one(
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
