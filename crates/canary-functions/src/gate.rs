//! `AwaitApproval` and `ApplyApproval`: the pause announced, the operator's answer applied.

use crate::announce::announce;
use crate::error::ControllerError;
use crate::state_from;
use canary_aws::Notifier;
use canary_core::notice::Task;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the gate is invoked with.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GateEvent {
    /// `AwaitApproval`: the state and the task token the state machine now waits for. The token is a bearer
    /// credential (whoever holds it can skip every check): it is never logged nor returned. canaryctl reads it
    /// from the execution's history, which takes states:GetExecutionHistory.
    Paused {
        state: Value,
        // Required to tell the shape apart; deliberately never read.
        #[serde(rename = "token")]
        _token: String,
    },
    /// `ApplyApproval`: the state with the operator's answer at `approval` (a state has no `token` key).
    Answered(Value),
}

/// `AwaitApproval` and `ApplyApproval`. Invoked with `{"state", "token"}` (the state machine waits for the
/// token), it announces the pause and how to continue; invoked with the state and the operator's answer
/// (`approval.decision`), it applies it. A decision other than `promote` or `promote_full` fails, and the
/// rollout rolls back: it never goes on without a clear approval.
pub async fn gate(event: Value, notifier: &dyn Notifier, now: DateTime<Utc>) -> Result<Value, ControllerError> {
    let event =
        serde_json::from_value(event).map_err(|e| ControllerError::InvalidState(format!("not a gate event: {e}")))?;
    match event {
        GateEvent::Paused { state, .. } => {
            let state = state_from(state)?;
            let percent = state.schedule().step(state.next_index()).percent;
            let how = "canaryctl promote EXECUTION [--full] | canaryctl abort EXECUTION; or SendTaskSuccess with \
                       output {\"decision\": \"promote\"} (or \"promote_full\"), or SendTaskFailure to abort, with \
                       the task token of the AwaitApproval state in the execution's history";
            tracing::warn!(
                function = state.request.function,
                alias = state.request.alias,
                percent,
                how,
                "paused for approval"
            );
            announce(notifier, Task::Paused, &state).await;
            Ok(json!({"paused_before_percent": percent, "how_to_continue": how, "at": now}))
        }
        GateEvent::Answered(state) => {
            let (decision, state) = state_from(state)?.apply_answer().map_err(ControllerError::InvalidState)?;
            tracing::info!(function = state.request.function, %decision, next = ?state.next, "approval applied");
            Ok(serde_json::to_value(state).expect("states serialise"))
        }
    }
}
