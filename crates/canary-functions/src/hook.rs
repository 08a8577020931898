//! `PreTraffic` and `PostTraffic`: the user's hook invoked with the rollout's versions.

use crate::carry::release_if_done;
use crate::error::ControllerError;
use canary_aws::{Aliases, HookRunner};
use canary_core::Rollout;
use chrono::{DateTime, Utc};

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
