//! The controller's Lambda handlers: one module per task of the state machine (`prepare`, `moves`, `check`,
//! `hook`, `gate`, `rollback`) and the safety net with its sweep (`safety_net`, `sweep`), over two shared
//! ones: `carry` (a core plan carried out against the live alias, written first and re-read only when
//! refused) and `error` (what the state machine retries or catches).
//!
//! Each handler is a plain async function over the [`canary_aws`] traits: read the state, let
//! [`canary_core`] decide for each function of the rollout (a release has several, each alias written at
//! most once per task, conditionally on its revision), return the new state. [`serve`] builds the clients
//! once and hands events to these functions (the binaries in `src/bin/` only name the task), so tests call
//! them directly. Inputs are typed (the wrapped or bare `Prepare` input, the gate's two events, the safety
//! net's event or sweep), wire formats unchanged.
//!
//! Errors carry stable type names ([`ControllerError::error_type`]) that the state machine's `Retry` and
//! `Catch` match on.

mod announce;
mod carry;
mod check;
mod error;
mod gate;
mod hook;
mod moves;
mod prepare;
mod rollback;
mod safety_net;
pub mod serve;
mod sweep;

pub use announce::{PUBLISH_TIMEOUT, announce};
pub use check::check;
pub use error::ControllerError;
pub use gate::gate;
pub use hook::hook;
pub use moves::move_alias;
pub use prepare::{DIRECT_INVOCATION, prepare};
pub use rollback::rollback;
pub use safety_net::{safety_net, safety_net_managing};
pub use sweep::SWEEP_WINDOW;

use canary_core::Rollout;
use serde_json::Value;

/// Reads the state a handler is given.
pub fn state_from(event: Value) -> Result<Rollout, ControllerError> {
    serde_json::from_value(event).map_err(|e| ControllerError::InvalidState(format!("not a rollout state: {e}")))
}
