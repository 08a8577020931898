//! One rollout per alias: a second execution for the same function and alias is refused, whoever starts
//! it (canaryctl, the console, another pipeline).

use crate::execution::ExecutionOutcome;
use crate::refusal::Refusal;
use crate::request::{RolloutRequest, function_name_of, parse_request};
use chrono::{DateTime, Utc};

/// A running execution of the controller's state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningExecution {
    pub arn: String,
    pub name: String,
    pub started_at: DateTime<Utc>,
    /// The execution's input: a rollout request.
    pub input: String,
}

/// Refuses `request` (execution `me`, started at `started_at`) when another running execution rolls out
/// to the same function and alias and started first. Of two started at the same instant, the one with
/// the smaller ARN goes on, so exactly one of any set of simultaneous starts proceeds. With `me` absent
/// (checked before starting), any running rollout of the alias refuses it.
pub fn refuse_if_alias_busy(
    request: &RolloutRequest,
    me: Option<&str>,
    started_at: DateTime<Utc>,
    running: &[RunningExecution],
) -> Result<(), Refusal> {
    let mine = aliases_of(request);
    let first = running.iter().filter(|other| Some(other.arn.as_str()) != me).find_map(|other| {
        let earlier = me.is_none_or(|me| (other.started_at, other.arn.as_str()) < (started_at, me));
        let value = serde_json::from_str(&other.input).unwrap_or(serde_json::Value::Null);
        let theirs = parse_request(&value).map(|r| aliases_of(&r)).unwrap_or_default();
        let shared = mine.iter().position(|alias| theirs.contains(alias));
        shared.filter(|_| earlier).map(|index| (other, index))
    });
    match first {
        None => Ok(()),
        Some((other, index)) => {
            let (function, alias) = &mine[index];
            let field = if request.is_release() { format!("functions[{index}].alias") } else { "alias".into() };
            Err(Refusal::one(
                field,
                format!(
                    "another rollout of {function}:{alias} is running: {} (started {})",
                    other.name, other.started_at
                ),
                format!("wait for it to end, or stop it (canaryctl abort {}) and start again", other.name),
            ))
        }
    }
}

/// Every (function name, alias) a request moves, in its order.
fn aliases_of(request: &RolloutRequest) -> Vec<(String, String)> {
    request.targets().into_iter().map(|t| (function_name_of(&t.function).to_string(), t.alias)).collect()
}

/// A finished execution of the controller's state machine: its input and how it ended
/// ([`crate::execution::interpret`]'s outcome).
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedExecution {
    pub name: String,
    pub input: String,
    pub outcome: ExecutionOutcome,
}

/// Whether an outcome is a verdict on the version (a refusal or a failure to start is not), and whether
/// the controller or an operator rejected it.
fn verdict(outcome: ExecutionOutcome) -> Option<bool> {
    match outcome {
        ExecutionOutcome::Promoted => Some(false),
        ExecutionOutcome::RolledBack | ExecutionOutcome::Aborted => Some(true),
        _ => None,
    }
}

/// Every (function name, alias, version) a request rolls out, in its order.
fn versions_of(request: &RolloutRequest) -> Vec<(String, String, String)> {
    let targets = request.targets().into_iter();
    targets.map(|t| (function_name_of(&t.function).to_string(), t.alias, t.version)).collect()
}

/// Refuses to roll out again a version whose latest rollout to this function and alias was rolled back or
/// aborted: a pipeline that runs again (a docs-only merge) must not bring a rejected version back. Someone
/// who means it says so (`canaryctl start --retry-rejected`). `finished` is newest first.
pub fn refuse_if_rejected(request: &RolloutRequest, finished: &[FinishedExecution]) -> Result<(), Refusal> {
    match latest_verdict(request, finished) {
        Some(execution) if verdict(execution.outcome) == Some(true) => {
            let what = if request.is_release() {
                let each: Vec<String> =
                    versions_of(request).into_iter().map(|(f, a, v)| format!("{f}:{a} {v}")).collect();
                ("functions", format!("the release of {}", each.join(", ")))
            } else {
                ("version", format!("version {} of {}:{}", request.version, request.function_name(), request.alias))
            };
            Err(Refusal::one(
                what.0,
                format!(
                    "{} was {} by its last rollout, {}",
                    what.1,
                    execution.outcome.as_str().replace('_', " "),
                    execution.name
                ),
                "publish a fixed version; to roll this one out again anyway, pass --retry-rejected",
            ))
        }
        _ => Ok(()),
    }
}

/// The newest of `finished` (newest first) that rolled out `request`'s function, alias and version (a
/// release: the same functions, aliases and versions) and reached a verdict on it: promoted, rolled back or
/// aborted.
pub fn latest_verdict<'a>(
    request: &RolloutRequest,
    finished: &'a [FinishedExecution],
) -> Option<&'a FinishedExecution> {
    finished.iter().filter(|execution| verdict(execution.outcome).is_some()).find(|execution| {
        let value = serde_json::from_str(&execution.input).unwrap_or(serde_json::Value::Null);
        parse_request(&value).is_ok_and(|r| versions_of(&r) == versions_of(request))
    })
}
