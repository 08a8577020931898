//! The rollout in flight: the state the state machine carries from one Lambda to the next, and every
//! decision taken on it (what to write to the alias, what comes next, what a rollback restores).
//!
//! Each controller Lambda is `read state -> one AWS read or write -> a method here -> new state`. The
//! state machine only dispatches on [`Rollout::next`], so all of the loop's logic lives here, tested
//! without AWS.

mod approval;
mod check;
mod hook;
mod prepare;
mod release;
mod report;
mod routing;
mod step;

pub use approval::Decision;
pub use check::{ALARM_CHECKS_KEPT, BEFORE_SECONDS, Before};
pub use hook::{Hook, HookOutcome, HookRecord};
pub use prepare::{LiveFacts, VersionConfig, VersionState};
pub use release::{Member, Part};
pub use report::{FunctionReport, MAX_MESSAGE_CHARS, Outcome, REPORT_STEPS, Report, TaskError};
pub use routing::{AliasState, MovePlan, Routing, percent_text};
pub use step::{HISTORY_LIMIT, StepRecord};

use crate::asl::State;
use crate::health::Failure;
use crate::request::RolloutRequest;
use crate::schedule::Schedule;
use crate::sequential::Evidence;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};

/// A rollout in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub request: RolloutRequest,
    /// The version the alias pointed to before the rollout.
    pub old_version: String,
    /// The alias's routing before the rollout, restored exactly by a rollback.
    pub original: Routing,
    /// The alias revision after the controller's last write (the lock, then each move): only an alias still
    /// at this revision is overwritten.
    pub revision_id: String,
    /// The alias's description before the rollout, put back when it ends.
    #[serde(default)]
    pub original_description: String,
    /// The description that holds the alias while this execution rolls it out ([`lock::marker`]).
    #[serde(default)]
    pub lock: String,
    /// Index in the schedule of the step the alias carries now; `None` before the first move.
    pub step: Option<usize>,
    pub step_count: usize,
    pub step_started_at: Option<DateTime<Utc>>,
    /// Seconds this step has been held beyond its schedule waiting for enough traffic.
    pub waited_for_data_seconds: u64,
    /// Seconds the rollout's steps have been held beyond their schedule through shared outages, in all.
    #[serde(default)]
    pub outage_held_seconds: u64,
    /// How long the next `Hold` waits.
    pub wait_seconds: u64,
    pub next: Next,
    pub started_at: DateTime<Utc>,
    pub history: Vec<StepRecord>,
    pub history_omitted: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks_run: Vec<HookRecord>,
    /// Schedule indices whose approval gate was passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved: Vec<usize>,
    /// Set by `promote --full`: the next move goes straight to 100%.
    #[serde(default)]
    pub skip_to_final: bool,
    /// Since when an operator's pause (`canaryctl pause`) has held the rollout at its weight, as the check
    /// that first saw it recorded; absent when not paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The execution's result, set once the rollout is over; the state machine's last state outputs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// An operator's answer at an approval gate (`{"decision": "promote" | "promote_full"}`), placed here by
    /// the state machine (`ResultPath: $.approval`) until it is applied.
    #[serde(default, rename = "approval", skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
    /// Set by the state machine's `Catch` when a task failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
    /// The old version's traffic over the hour before the rollout ([`Rollout::before_window`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Before>,
    /// The sequential tests' evidence so far: every health verdict's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// The provisioned concurrency configured on the alias when the rollout started, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_concurrency: Option<u32>,
    /// A release's functions after the first, each with its own part of the state ([`Member`]); empty for a
    /// rollout of one function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// The state the state machine goes to next; its Choice state dispatches on this.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, VariantArray, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Next {
    /// Run the pre-traffic hook, before any traffic moves.
    PreTraffic,
    /// Move the alias to the next intermediate weight.
    Shift,
    /// Move all traffic to the new version.
    Promote,
    /// Wait `wait_seconds`, then check health.
    Hold,
    /// Pause until someone promotes or aborts (`approval.before_percent`).
    AwaitApproval,
    /// Run the post-traffic hook, with all traffic on the new version.
    PostTraffic,
    /// Restore the original routing.
    Rollback,
    /// The new version carries all traffic and passed every check.
    Done,
}

impl Next {
    /// Its value in the state (`$.next`), which the `Route` choice compares.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The state of `statemachine/canary.asl.json` its `Route` choice goes to.
    pub fn state(self) -> State {
        match self {
            Next::PreTraffic => State::PreTraffic,
            Next::Shift => State::Shift,
            Next::Promote => State::Promote,
            Next::Hold => State::Hold,
            Next::AwaitApproval => State::AwaitApproval,
            Next::PostTraffic => State::PostTraffic,
            Next::Rollback => State::Rollback,
            Next::Done => State::Promoted,
        }
    }
}

impl Rollout {
    pub fn schedule(&self) -> Schedule {
        self.request.schedule()
    }

    /// The schedule index the next move goes to: the last after `promote --full`.
    pub fn next_index(&self) -> usize {
        if self.skip_to_final { self.step_count - 1 } else { self.step.map_or(0, |s| s + 1) }
    }

    /// Where an operator's pause of this rollout is read: its first function's ARN and the pause tag of its
    /// alias ([`crate::lock::pause_tag`]), with the execution a pause must name to hold this rollout. `None`
    /// when the alias's name is too long for a tag key (such a rollout cannot be paused).
    pub fn pause_target(&self) -> Option<(String, String, String)> {
        let execution = crate::lock::holder(&self.lock).map(|(execution, _)| execution.to_string())?;
        let function = crate::request::function_arn(&self.request.function, &execution)?;
        Some((function, crate::lock::pause_tag(&self.request.alias)?, execution))
    }

    pub(super) fn metrics_delay(&self) -> u64 {
        self.request.health.effective_metrics_delay()
    }
}
