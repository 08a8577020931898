//! The safety net: an ended execution's aliases restored as the controller would have.

use crate::announce::announce;
use crate::error::ControllerError;
use crate::prepare::give_back_unprepared_lock;
use crate::rollback::rollback;
use crate::sweep::sweep;
use canary_aws::{Aliases, ExecutionHistory, Notifier};
use canary_core::execution::ExecutionStatus;
use canary_core::notice::Task;
use canary_core::safety_net::{Action, Ended, Handled, SafetyNet, decide};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// What the safety net is invoked with.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SafetyNetEvent {
    /// The sweep's schedule: `{"sweep": STATE_MACHINE_ARN}`.
    Sweep { sweep: String },
    /// An execution's status change as EventBridge delivers it ("Step Functions Execution Status Change"), or
    /// `canaryctl abort`'s request in the same shape: only its ARN is read (its status is read again).
    Ended { detail: EndedDetail },
}

#[derive(Debug, Deserialize)]
struct EndedDetail {
    #[serde(rename = "executionArn")]
    execution_arn: String,
}

/// `canary-safety-net`. Given an execution (an EventBridge "Step Functions Execution Status Change" event
/// for one that ended ABORTED, TIMED_OUT or FAILED, or `canaryctl abort`'s request in the same shape), it
/// puts the alias back as the controller would have: `restore_ended`. Given `{"sweep": <state machine
/// ARN>}` (its schedule), it looks for the aliases ended executions still hold: `sweep`.
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
    let event: SafetyNetEvent = serde_json::from_value(event).map_err(|_| {
        ControllerError::InvalidState(
            "neither an execution's status change ({\"detail\": {\"executionArn\": ...}}) nor a sweep \
             ({\"sweep\": STATE_MACHINE_ARN})"
                .into(),
        )
    })?;
    let reach = Reach { managed };
    let answer = match event {
        SafetyNetEvent::Sweep { sweep: state_machine } => {
            serde_json::to_value(sweep(&state_machine, reach, executions, aliases, notifier, now).await?)
        }
        SafetyNetEvent::Ended { detail } => {
            serde_json::to_value(restore_ended(&detail.execution_arn, reach, executions, aliases, notifier, now).await?)
        }
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
pub(crate) async fn restore_ended(
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

/// The functions a deployment's roles may touch; `None`: not said, every function is looked at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach<'a> {
    pub(crate) managed: Option<&'a str>,
}

impl Reach<'_> {
    pub(crate) fn covers(&self, function: &str) -> bool {
        self.managed.is_none_or(|pattern| {
            canary_core::deployment::name_matches(pattern, canary_core::request::function_name_of(function))
        })
    }
}
