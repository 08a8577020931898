//! Carrying out a plan of the core against the live alias: written first, re-read only when refused.

use crate::error::ControllerError;
use canary_aws::{Aliases, AwsError, ExecutionHistory};
use canary_core::execution::ExecutionStatus;
use canary_core::{AliasState, MovePlan, Next, Rollout};

/// Whether the execution holding a lock still runs. A holder that is not an execution of a state machine,
/// or that Step Functions does not know, holds nothing.
pub(crate) async fn still_runs(executions: &dyn ExecutionHistory, holder: &str) -> Result<bool, ControllerError> {
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
pub(crate) enum Carried {
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
    pub(crate) fn written(self) -> Result<AliasState, ControllerError> {
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
pub(crate) async fn carry_out_presumed(
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
pub(crate) async fn carry_out(
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

/// A rollout that is done gives the alias back (every alias of a release): its original description, the
/// routing as promoted.
pub(crate) async fn release_if_done(aliases: &dyn Aliases, state: Rollout) -> Result<Rollout, ControllerError> {
    if state.next != Next::Done {
        return Ok(state);
    }
    for view in state.function_views() {
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
