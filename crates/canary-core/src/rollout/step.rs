//! Moving through the schedule: the record of each step, what a completed move leads to, and the end of a
//! rollout that passed every step.

use super::hook::Hook;
use super::report::Outcome;
use super::{Next, Rollout};
use crate::health::{Check, HealthFigures, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many step records a rollout's state keeps; older ones are counted, not kept. A Step Functions state
/// holds at most 256 KiB: the largest request accepted, with every record at its largest, stays well
/// inside it (`tests/rollout.rs` builds that state and measures it).
pub const HISTORY_LIMIT: usize = 30;

/// What happened at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepRecord {
    /// 1-based, as people count.
    pub step: usize,
    pub percent: f64,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<HealthFigures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Every rule applied to this step's window, with its figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Looks within the hold so far (`health.check_interval_seconds`); `figures` and `checks` are the
    /// latest look's until the verdict is in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub looks: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Rollout {
    /// Records a completed move: the alias now carries the next step, as of `revision_id`.
    pub fn after_move(mut self, revision_id: String, now: DateTime<Utc>) -> Rollout {
        let index = self.next_index();
        let step = self.schedule().steps[index];
        self.lock = self.marker_after(Some(index));
        self.step = Some(index);
        self.revision_id = revision_id;
        self.step_started_at = Some(now);
        self.waited_for_data_seconds = 0;
        self.push_record(StepRecord {
            step: index + 1,
            percent: step.percent,
            started_at: now,
            checked_at: None,
            figures: None,
            verdict: None,
            checks: Vec::new(),
            looks: 0,
        });
        if step.hold_seconds == 0 {
            self.wait_seconds = 0;
            self.finish(now)
        } else {
            self.next = Next::Hold;
            // The first look, at the hold's end or at the first check interval within it.
            let first = crate::budget::look_interval(&self.request, step.hold_seconds);
            self.wait_seconds = first + self.metrics_delay();
            self
        }
    }

    /// Goes on to the next move: a shift, or the promotion, unless an approval gate stands before it.
    pub(super) fn go_to_next_move(mut self) -> Rollout {
        let index = self.next_index();
        let step = self.schedule().step(index);
        let gated =
            self.request.approval.before_percent.iter().any(|p| crate::schedule::same_percent(*p, step.percent));
        self.next = if gated && !self.approved.contains(&index) && !self.skip_to_final {
            Next::AwaitApproval
        } else if step.is_final() {
            Next::Promote
        } else {
            Next::Shift
        };
        self
    }

    pub(super) fn pass_step(self, now: DateTime<Utc>) -> Rollout {
        let schedule = self.schedule();
        if schedule.step(self.step.unwrap_or(0)).is_final() {
            return self.finish(now);
        }
        self.go_to_next_move()
    }

    /// The new version carries all traffic and passed every check: the post-traffic hook runs, if there is
    /// one that has not run, and then the rollout is promoted.
    pub(super) fn finish(mut self, now: DateTime<Utc>) -> Rollout {
        if self.post_traffic_due() {
            self.next = Next::PostTraffic;
            return self;
        }
        self.next = Next::Done;
        self.report = Some(self.report(Outcome::Promoted, self.routing_at(self.schedule().step(usize::MAX)), now));
        self
    }

    /// Whether the request's post-traffic hook is still to run once the new version carries all traffic.
    pub(super) fn post_traffic_due(&self) -> bool {
        self.request.hooks.post_traffic.is_some() && !self.hooks_run.iter().any(|h| h.hook == Hook::PostTraffic)
    }

    fn push_record(&mut self, record: StepRecord) {
        if self.history.len() == HISTORY_LIMIT {
            self.history.remove(0);
            self.history_omitted += 1;
        }
        self.history.push(record);
    }
}
