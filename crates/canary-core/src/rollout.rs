//! The rollout in flight: the state the state machine carries from one Lambda to the next, and every
//! decision taken on it (what to write to the alias, what comes next, what a rollback restores).
//!
//! Each controller Lambda is `read state -> one AWS read or write -> a method here -> new state`. The
//! state machine only dispatches on [`Rollout::next`], so all of the loop's logic lives here, tested
//! without AWS.

use crate::health::{
    AlarmState, Check, Failure, HealthFigures, Signal, Verdict, VersionFigures, judge, judge_at_end_of_looks,
    look_within_hold,
};
use crate::lock;
use crate::refusal::{Problems, Refusal};
use crate::request::{NoData, RolloutRequest};
use crate::schedule::{Schedule, Step};
use crate::sequential::Evidence;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How long before the rollout the old version's latency is read, for a step judged at full traffic.
pub const BASELINE_BEFORE_SECONDS: i64 = 900;

/// How many step records a rollout's state keeps; older ones are counted, not kept. A Step Functions state
/// holds at most 256 KiB: the largest request accepted, with every record at its largest, stays well
/// inside it (`tests/rollout.rs` builds that state and measures it).
pub const HISTORY_LIMIT: usize = 30;

/// How many of the latest step records the report carries. The report is also the `RolledBack` state's
/// cause, which Step Functions caps at 32,768 characters.
pub const REPORT_STEPS: usize = 5;

/// How many alarm checks a step record keeps one by one (the failing ones first); the others are summed
/// up in one check. Every alarm is still judged, and a failing one is still the rollback's reason.
pub const ALARM_CHECKS_KEPT: usize = 3;

/// The longest text (a hook's answer, a task's error) the state keeps from outside the controller.
pub const MAX_MESSAGE_CHARS: usize = 1_000;

/// `text`, cut to `max` characters with a note that it was.
fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push_str(" [cut]");
    cut
}

/// A step's checks as a record keeps them: every rule's check, and at most [`ALARM_CHECKS_KEPT`] alarm
/// checks, failing ones first, with one more check that counts the rest.
fn kept_checks(checks: Vec<Check>) -> Vec<Check> {
    let (mut alarms, mut kept): (Vec<Check>, Vec<Check>) = checks.into_iter().partition(|c| c.signal == Signal::Alarm);
    if alarms.len() <= ALARM_CHECKS_KEPT {
        alarms.append(&mut kept);
        return alarms;
    }
    alarms.sort_by_key(|c| (c.passed, c.value == 0.0));
    let rest = alarms.split_off(ALARM_CHECKS_KEPT);
    let firing = rest.iter().filter(|c| c.value > 0.0).count();
    alarms.push(Check {
        signal: Signal::Alarm,
        value: firing as f64,
        threshold: 0.0,
        passed: rest.iter().all(|c| c.passed),
        p_value: None,
        message: format!("{} more alarms: {firing} in ALARM, {} not", rest.len(), rest.len() - firing),
    });
    alarms.append(&mut kept);
    alarms
}

/// Weights (fractions, 0 to 1) that differ by less than this are the same weight: Lambda stores them as
/// doubles. Percentages have their own, [`crate::schedule::PERCENT_TOLERANCE`].
const WEIGHT_TOLERANCE: f64 = 1e-9;

/// Where an alias sends traffic: its version, and the extra versions with their weights (0 to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub function_version: String,
    #[serde(default)]
    pub additional_version_weights: BTreeMap<String, f64>,
}

impl Routing {
    pub fn to_version(version: &str) -> Routing {
        Routing { function_version: version.to_string(), additional_version_weights: BTreeMap::new() }
    }

    /// Same versions with the same weights, within rounding.
    pub fn same_as(&self, other: &Routing) -> bool {
        self.function_version == other.function_version
            && self.additional_version_weights.len() == other.additional_version_weights.len()
            && self.additional_version_weights.iter().all(|(version, weight)| {
                other.additional_version_weights.get(version).is_some_and(|w| (w - weight).abs() < WEIGHT_TOLERANCE)
            })
    }
}

impl fmt::Display for Routing {
    /// `1 (100%)`, or `1 (90%) + 2 (10%)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: f64 = self.additional_version_weights.values().sum();
        write!(f, "{} ({})", self.function_version, percent_text((1.0 - extra) * 100.0))?;
        for (version, weight) in &self.additional_version_weights {
            write!(f, " + {version} ({})", percent_text(weight * 100.0))?;
        }
        Ok(())
    }
}

/// A percentage for people: at most three decimals, no trailing zeros (`10%`, `33.333%`).
pub fn percent_text(percent: f64) -> String {
    let text = format!("{percent:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// An alias as read from Lambda: its routing, its description (which carries a rollout's lock, see
/// [`lock`]) and the revision that a conditional write must name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasState {
    pub routing: Routing,
    pub revision_id: String,
    #[serde(default)]
    pub description: String,
}

/// What the live account says about the request's names, read by the prepare Lambda.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFacts {
    pub function_exists: bool,
    pub version_exists: bool,
    pub alias: Option<AliasState>,
    /// The request's alarms that exist, with their states.
    pub alarms: Vec<AlarmState>,
    /// The request's hook functions that do not exist.
    pub missing_hooks: Vec<String>,
    /// The rollout lock the alias carries, if any, and whether its execution still runs.
    pub lock: Option<lock::Held>,
}

/// The state the state machine goes to next; its Choice state dispatches on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Every decision, for the tests that hold the state machine to them.
    pub const ALL: [Next; 8] = [
        Next::PreTraffic,
        Next::Shift,
        Next::Promote,
        Next::Hold,
        Next::AwaitApproval,
        Next::PostTraffic,
        Next::Rollback,
        Next::Done,
    ];

    /// The state of `statemachine/canary.asl.json` its `Route` choice goes to.
    pub fn state(self) -> &'static str {
        match self {
            Next::PreTraffic => "PreTraffic",
            Next::Shift => "Shift",
            Next::Promote => "Promote",
            Next::Hold => "Hold",
            Next::AwaitApproval => "AwaitApproval",
            Next::PostTraffic => "PostTraffic",
            Next::Rollback => "Rollback",
            Next::Done => "Promoted",
        }
    }
}

/// The error an operator's abort at an approval gate fails the gate's task with (`canaryctl abort`, or
/// `aws stepfunctions send-task-failure --error Aborted`).
pub const ABORTED_ERROR: &str = "Aborted";

/// What happened at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One run of a traffic hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRecord {
    pub hook: Hook,
    pub function: String,
    pub passed: bool,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// An operator's decision at an approval gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// On to the gated step.
    Promote,
    /// Straight to 100%.
    PromoteFull,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Promote => "promote",
            Decision::PromoteFull => "promote_full",
        }
    }

    /// The answer to send with the gate's task token (SendTaskSuccess's output).
    pub fn answer(self) -> serde_json::Value {
        serde_json::json!({ "decision": self })
    }

    /// The decision in an answer, `{"decision": "promote" | "promote_full"}`; anything else is refused.
    ///
    /// ```
    /// use canary_core::rollout::Decision;
    /// assert_eq!(Decision::from_answer(Some(&Decision::PromoteFull.answer())), Ok(Decision::PromoteFull));
    /// assert!(Decision::from_answer(Some(&serde_json::json!({"decision": "yes"}))).unwrap_err().contains("\"yes\""));
    /// assert!(Decision::from_answer(None).unwrap_err().contains("no decision"));
    /// ```
    pub fn from_answer(answer: Option<&serde_json::Value>) -> Result<Decision, String> {
        let fix = "answer {\"decision\": \"promote\"} or {\"decision\": \"promote_full\"}";
        match answer.and_then(|a| a.get("decision")) {
            None => Err(format!("no decision in the answer: {fix}")),
            Some(value) => {
                serde_json::from_value(value.clone()).map_err(|_| format!("unknown decision {value}: {fix}"))
            }
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A traffic hook: before any traffic moves, or once the new version carries all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    PreTraffic,
    PostTraffic,
}

impl Hook {
    /// Its name in the request (`hooks.pre_traffic`), the payload and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::PreTraffic => "pre_traffic",
            Hook::PostTraffic => "post_traffic",
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a hook function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub passed: bool,
    pub message: String,
}

/// A failed task as Step Functions' `Catch` records it (`ResultPath: $.error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl TaskError {
    /// The human part of the cause: a Lambda error's `errorMessage` when the cause is one, else the cause.
    pub fn message(&self) -> String {
        let cause = self.cause.clone().unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&cause)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or(cause)
    }
}

/// What a move (shift or promote) must do to the live alias.
#[derive(Debug, Clone, PartialEq)]
pub enum MovePlan {
    /// The alias already routes as the step wants: an earlier attempt of this same move succeeded.
    AlreadyDone,
    /// Write `routing` and `description`, on condition that the alias is still at `revision_id`.
    Write { routing: Routing, description: String, revision_id: String },
    /// Someone else changed the alias: never overwrite it.
    Conflict(String),
}

/// How the rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Promoted,
    RolledBack,
    Refused,
    Aborted,
}

/// What an execution returns: the outcome, every step with the figures that decided it, and the reason
/// for a rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub outcome: Outcome,
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The routing the alias was left with.
    pub routing: Routing,
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub steps_omitted: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Failure>,
}

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
    /// The old version's figures over the window before the rollout ([`Rollout::baseline_before_window`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_before: Option<VersionFigures>,
    /// The sequential tests' evidence so far, when steps are looked at within their holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl Rollout {
    /// Checks the request against the live account and starts the rollout, or refuses it with the
    /// alias untouched.
    /// `execution` is the ARN of the execution preparing it, whose marker will hold the alias.
    pub fn prepare(
        request: RolloutRequest,
        facts: LiveFacts,
        execution: &str,
        now: DateTime<Utc>,
    ) -> Result<Rollout, Refusal> {
        check_location(&request, execution)?;
        let (alias, original_description) = check_facts(&request, facts, execution)?;
        let schedule = request.schedule();
        let rollout = Rollout {
            old_version: alias.routing.function_version.clone(),
            original: alias.routing,
            revision_id: alias.revision_id,
            lock: lock::marker(execution, &original_description),
            original_description,
            step: None,
            step_count: schedule.len(),
            step_started_at: None,
            waited_for_data_seconds: 0,
            wait_seconds: 0,
            started_at: now,
            history: Vec::new(),
            history_omitted: 0,
            hooks_run: Vec::new(),
            approved: Vec::new(),
            skip_to_final: false,
            failure: None,
            report: None,
            decision: None,
            error: None,
            baseline_before: None,
            evidence: None,
            next: Next::Shift,
            request,
        };
        Ok(if rollout.request.hooks.pre_traffic.is_some() {
            Rollout { next: Next::PreTraffic, ..rollout }
        } else {
            rollout.go_to_next_move()
        })
    }

    /// Goes on to the next move: a shift, or the promotion, unless an approval gate stands before it.
    fn go_to_next_move(mut self) -> Rollout {
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

    /// Applies an operator's decision at an approval gate: `promote` goes on to the gated step,
    /// `promote_full` straight to 100%.
    pub fn after_approval(mut self, decision: Decision) -> Result<Rollout, String> {
        if self.next != Next::AwaitApproval {
            return Err(format!("the rollout is not waiting for approval (next: {:?})", self.next));
        }
        match decision {
            Decision::Promote => self.approved.push(self.next_index()),
            Decision::PromoteFull => self.skip_to_final = true,
        }
        Ok(self.go_to_next_move())
    }

    /// Applies the answer the state machine placed in the state (`approval`), and removes it: a decision
    /// that is not `promote` or `promote_full` is refused with what would be right.
    pub fn apply_answer(mut self) -> Result<(Decision, Rollout), String> {
        let decision = Decision::from_answer(self.decision.take().as_ref())?;
        Ok((decision, self.after_approval(decision)?))
    }

    pub fn schedule(&self) -> Schedule {
        self.request.schedule()
    }

    /// The schedule index the next move goes to: the last after `promote --full`.
    pub fn next_index(&self) -> usize {
        if self.skip_to_final { self.step_count - 1 } else { self.step.map_or(0, |s| s + 1) }
    }

    /// The routing the alias carries at a step of the schedule.
    pub fn routing_at(&self, step: Step) -> Routing {
        if step.is_final() {
            Routing::to_version(&self.request.version)
        } else {
            Routing {
                function_version: self.old_version.clone(),
                additional_version_weights: BTreeMap::from([(self.request.version.clone(), step.weight())]),
            }
        }
    }

    /// The routing the controller last put on the alias (the original before the first move).
    pub fn expected_routing(&self) -> Routing {
        match self.step {
            None => self.original.clone(),
            Some(i) => self.routing_at(self.schedule().steps[i]),
        }
    }

    /// What `Prepare` writes to hold the alias: its lock marker, the routing unchanged, on condition that
    /// the alias is still at the revision it read. A retried `Prepare` finds its own marker and writes nothing.
    pub fn plan_lock(&self, live: &AliasState) -> MovePlan {
        if live.description == self.lock {
            MovePlan::AlreadyDone
        } else if live.revision_id == self.revision_id {
            MovePlan::Write {
                routing: live.routing.clone(),
                description: self.lock.clone(),
                revision_id: live.revision_id.clone(),
            }
        } else {
            MovePlan::Conflict(format!(
                "the alias \"{}\" changed while the rollout was being prepared (it now routes {})",
                self.request.alias, live.routing
            ))
        }
    }

    /// The alias as this execution last left it: the routing and lock it wrote, at the revision that write
    /// returned. A task plans against it to write first, with no read; only a refused write (the revision
    /// moved) makes it read the alias and plan again.
    pub fn alias_as_left(&self) -> AliasState {
        AliasState {
            routing: self.expected_routing(),
            revision_id: self.revision_id.clone(),
            description: self.lock.clone(),
        }
    }

    /// What the next move (shift or promote) must do, given the alias as it is now. Only an alias this
    /// execution still holds, at the revision it last wrote, is written. A retried move that already
    /// happened does nothing; a change made by someone else is reported, never overwritten.
    pub fn plan_move(&self, live: &AliasState) -> MovePlan {
        let step = self.schedule().steps[self.next_index()];
        let target = self.routing_at(step);
        // A promotion whose function died after it had also given the alias back: done, and released.
        let released_by_us = step.is_final() && live.description == self.original_description;
        if live.routing.same_as(&target) && released_by_us {
            MovePlan::AlreadyDone
        } else if live.description != self.lock {
            MovePlan::Conflict(format!(
                "the alias \"{}\" is no longer held by this rollout (its description is now {:?}): someone \
                 else changed it or ended the rollout",
                self.request.alias, live.description
            ))
        } else if live.routing.same_as(&target) {
            MovePlan::AlreadyDone
        } else if live.revision_id == self.revision_id {
            MovePlan::Write { routing: target, description: self.lock.clone(), revision_id: live.revision_id.clone() }
        } else {
            MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {} at a revision this rollout did not write (it left {}): someone \
                 else changed it",
                self.request.alias,
                live.routing,
                self.expected_routing()
            ))
        }
    }

    /// What ending a promoted rollout writes: the original description back, the routing as it is. Nothing
    /// when the alias is not held by this execution any more.
    pub fn plan_release(&self, live: &AliasState) -> MovePlan {
        if live.description != self.lock {
            return MovePlan::AlreadyDone;
        }
        MovePlan::Write {
            routing: live.routing.clone(),
            description: self.original_description.clone(),
            revision_id: live.revision_id.clone(),
        }
    }

    /// Records the lock `Prepare` wrote (or found already written by its earlier attempt): the alias is held
    /// as of `revision_id`.
    pub fn after_lock(mut self, revision_id: String) -> Rollout {
        self.revision_id = revision_id;
        self
    }

    /// Records a completed move: the alias now carries the next step, as of `revision_id`.
    pub fn after_move(mut self, revision_id: String, now: DateTime<Utc>) -> Rollout {
        let index = self.next_index();
        let step = self.schedule().steps[index];
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
            let health = &self.request.health;
            let first = match health.check_interval_seconds.filter(|_| health.enabled) {
                Some(interval) => interval.min(step.hold_seconds),
                None => step.hold_seconds,
            };
            self.wait_seconds = first + self.metrics_delay();
            self
        }
    }

    /// The new version carries all traffic and passed every check: the post-traffic hook runs, if there is
    /// one that has not run, and then the rollout is promoted.
    fn finish(mut self, now: DateTime<Utc>) -> Rollout {
        let post_traffic_ran = self.hooks_run.iter().any(|h| h.hook == Hook::PostTraffic);
        if self.request.hooks.post_traffic.is_some() && !post_traffic_ran {
            self.next = Next::PostTraffic;
            return self;
        }
        self.next = Next::Done;
        self.report = Some(self.report(Outcome::Promoted, self.routing_at(self.schedule().step(usize::MAX)), now));
        self
    }

    fn metrics_delay(&self) -> u64 {
        self.request.health.effective_metrics_delay()
    }

    fn push_record(&mut self, record: StepRecord) {
        if self.history.len() == HISTORY_LIMIT {
            self.history.remove(0);
            self.history_omitted += 1;
        }
        self.history.push(record);
    }

    /// The window whose metrics judge the current step: from the move to the latest moment whose
    /// CloudWatch data is complete. `None` before the first move.
    pub fn health_window(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = self.step_started_at?;
        let end = now - Duration::seconds(self.metrics_delay() as i64);
        Some((start, end.max(start)))
    }

    /// The window before the rollout whose figures `Prepare` reads for the old version, when a step will be
    /// judged at full traffic against the old version's latency (the old version then serves nothing):
    /// the [`BASELINE_BEFORE_SECONDS`] before `now` whose metrics are complete. `None` when nothing needs it.
    pub fn baseline_before_window(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let health = &self.request.health;
        let judged_at_full = self.schedule().step(usize::MAX).hold_seconds > 0;
        if !(health.enabled && health.max_latency_p99_increase.is_some() && judged_at_full) {
            return None;
        }
        let end = now - Duration::seconds(self.metrics_delay() as i64);
        Some((end - Duration::seconds(BASELINE_BEFORE_SECONDS), end))
    }

    /// Keeps the old version's figures from before the rollout.
    pub fn with_baseline_before(self, figures: VersionFigures) -> Rollout {
        Rollout { baseline_before: Some(figures), ..self }
    }

    /// Whether the check must read metrics at all.
    pub fn needs_metrics(&self) -> bool {
        self.request.health.enabled
    }

    /// Judges the current step from its window's figures (`None` when health checks are off) and
    /// decides what comes next.
    pub fn after_check(mut self, figures: Option<HealthFigures>, now: DateTime<Utc>) -> Rollout {
        let policy = self.request.health.clone();
        // A window in which the old version served nothing is judged against what it showed before.
        let figures = figures.map(|f| match &self.baseline_before {
            Some(before) if f.baseline.invocations == 0 => HealthFigures { baseline_before: Some(*before), ..f },
            _ => f,
        });
        let looked_within = policy.enabled && policy.check_interval_seconds.is_some();
        if let Some(figures) = figures.as_ref().filter(|_| looked_within) {
            let rest_of_hold = self.rest_of_hold(now);
            let evidence = self.evidence.get_or_insert_with(Evidence::default);
            evidence.observe(self.step.unwrap_or(0), &figures.new, &figures.baseline, policy.max_error_rate);
            if let Some(rest) = rest_of_hold {
                return self.after_look_within_hold(figures, rest, now);
            }
        }
        let (verdict, checks) = match &figures {
            Some(figures) if policy.enabled => {
                let judgement = match self.evidence.as_ref().filter(|_| looked_within) {
                    Some(evidence) => judge_at_end_of_looks(&policy, figures, self.started_at, evidence),
                    None => judge(&policy, figures, self.started_at),
                };
                (judgement.verdict, judgement.checks)
            }
            _ => (Verdict::Pass, Vec::new()),
        };
        if let Some(record) = self.history.last_mut() {
            record.checked_at = Some(now);
            // The alarms' states are in their checks; the figures keep the versions' counts.
            record.figures = figures.map(|f| HealthFigures { alarms: Vec::new(), ..f });
            record.verdict = Some(verdict.clone());
            record.checks = kept_checks(checks);
        }
        match verdict {
            Verdict::Pass => self.advance(now),
            Verdict::Fail(failure) => self.fail(failure),
            Verdict::Inconclusive { invocations, min_invocations } => {
                self.after_too_few_invocations(invocations, min_invocations, now)
            }
        }
    }

    /// A look within the hold, `rest` seconds before its end: fails the step as soon as the evidence is
    /// conclusive, or holds until the next look (or the end of the hold).
    fn after_look_within_hold(mut self, figures: &HealthFigures, rest: u64, now: DateTime<Utc>) -> Rollout {
        let policy = &self.request.health;
        let evidence = self.evidence.as_ref().expect("a look within the hold has just observed its evidence");
        let (failure, checks) = look_within_hold(policy, figures, self.started_at, evidence);
        let wait = rest.min(policy.check_interval_seconds.unwrap_or(rest));
        if let Some(record) = self.history.last_mut() {
            record.checked_at = Some(now);
            record.figures = Some(HealthFigures { alarms: Vec::new(), ..figures.clone() });
            record.checks = kept_checks(checks);
            record.looks += 1;
        }
        if let Some(failure) = failure {
            return self.fail(failure);
        }
        self.wait_seconds = wait;
        self.next = Next::Hold;
        self
    }

    /// The end of a hold in which the new version served too few invocations to judge: what
    /// `health.no_data` says (promote the step, fail it, or wait a little longer for traffic).
    fn after_too_few_invocations(mut self, invocations: u64, min_invocations: u64, now: DateTime<Utc>) -> Rollout {
        let too_quiet = |waited: u64| Failure {
            signal: Signal::Invocations,
            value: invocations as f64,
            threshold: min_invocations as f64,
            p_value: None,
            message: format!(
                "the new version had {invocations} invocations, fewer than the {min_invocations} needed to judge it{}",
                if waited > 0 { format!(", after waiting {waited} s more") } else { String::new() }
            ),
        };
        let policy = &self.request.health;
        match policy.no_data {
            NoData::Pass => self.advance(now),
            NoData::Fail => self.fail(too_quiet(0)),
            NoData::Wait => {
                let hold = self.schedule().step(self.step.unwrap_or(0)).hold_seconds;
                let max_wait = policy.no_data_max_wait_seconds;
                let recheck = crate::budget::recheck_seconds(hold, max_wait);
                if self.waited_for_data_seconds + recheck <= max_wait {
                    self.waited_for_data_seconds += recheck;
                    self.wait_seconds = recheck;
                    self.next = Next::Hold;
                    self
                } else {
                    let waited = self.waited_for_data_seconds;
                    self.fail(too_quiet(waited))
                }
            }
        }
    }

    /// The whole seconds left of the current step's hold (its metrics delay included), when more than a
    /// second is left; `None` once the hold is over. A look that lands within a second of the end is the
    /// last one.
    fn rest_of_hold(&self, now: DateTime<Utc>) -> Option<u64> {
        let start = self.step_started_at?;
        let hold = self.schedule().step(self.step.unwrap_or(0)).hold_seconds;
        let ends_at = start + Duration::seconds((hold + self.metrics_delay()) as i64);
        let left_ms = (ends_at - now).num_milliseconds();
        (left_ms > 1_000).then(|| (left_ms as u64).div_ceil(1_000))
    }

    /// The hook to run now, with its function and the payload it is invoked with: the function, the alias,
    /// and both versions (what CodeDeploy's hook payload leaves out). `None` unless `next` is a hook.
    pub fn hook_call(&self) -> Option<(Hook, String, serde_json::Value)> {
        let (hook, function) = match self.next {
            Next::PreTraffic => (Hook::PreTraffic, self.request.hooks.pre_traffic.clone()?),
            Next::PostTraffic => (Hook::PostTraffic, self.request.hooks.post_traffic.clone()?),
            _ => return None,
        };
        let payload = serde_json::json!({
            "hook": hook,
            "function": self.request.function,
            "alias": self.request.alias,
            "old_version": self.old_version,
            "new_version": self.request.version,
        });
        Some((hook, function, payload))
    }

    /// Records a hook's outcome and decides what comes next: a failure rolls back.
    pub fn after_hook(mut self, outcome: HookOutcome, now: DateTime<Utc>) -> Rollout {
        let Some((hook, function, _)) = self.hook_call() else { return self };
        self.hooks_run.push(HookRecord {
            hook,
            function: function.clone(),
            passed: outcome.passed,
            message: bounded(&outcome.message, MAX_MESSAGE_CHARS),
            at: now,
        });
        if !outcome.passed {
            return self.fail(Failure {
                signal: Signal::Hook,
                value: 0.0,
                threshold: 0.0,
                p_value: None,
                message: format!("the {hook} hook {function} failed: {}", bounded(&outcome.message, MAX_MESSAGE_CHARS)),
            });
        }
        if hook == Hook::PostTraffic {
            return self.finish(now);
        }
        self.go_to_next_move()
    }

    fn advance(self, now: DateTime<Utc>) -> Rollout {
        let schedule = self.schedule();
        if schedule.step(self.step.unwrap_or(0)).is_final() {
            return self.finish(now);
        }
        self.go_to_next_move()
    }

    fn fail(mut self, failure: Failure) -> Rollout {
        self.failure = Some(failure);
        self.next = Next::Rollback;
        self
    }

    /// Records a rollback that left the alias routing `routing`: the report, aborted when an operator's abort
    /// at an approval gate brought it here (a task failure named [`ABORTED_ERROR`]), rolled back otherwise.
    pub fn after_rollback(mut self, routing: Routing, now: DateTime<Utc>) -> Rollout {
        let aborted = self.error.as_ref().is_some_and(|e| e.error == ABORTED_ERROR);
        self.report = Some(self.report(if aborted { Outcome::Aborted } else { Outcome::RolledBack }, routing, now));
        self.next = Next::Rollback;
        self
    }

    /// What a rollback must do, given the alias as it is now. It restores the original routing and
    /// description exactly when the alias is as this execution last wrote it (its revision), or as the move
    /// that was in flight when the rollout failed would have left it, or at the original routing while still
    /// held; anything else is someone else's change, reported and never overwritten.
    pub fn plan_rollback(&self, live: &AliasState) -> MovePlan {
        if live.routing.same_as(&self.original) && live.description != self.lock {
            return MovePlan::AlreadyDone;
        }
        let in_flight = matches!(self.next, Next::Shift | Next::Promote)
            && live.description == self.lock
            && live.routing.same_as(&self.routing_at(self.schedule().step(self.next_index())));
        let held_at_original = live.description == self.lock && live.routing.same_as(&self.original);
        if live.revision_id == self.revision_id || in_flight || held_at_original {
            MovePlan::Write {
                routing: self.original.clone(),
                description: self.original_description.clone(),
                revision_id: live.revision_id.clone(),
            }
        } else {
            MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {} at a revision this rollout did not write: someone else changed it, \
                 so it was left as it is (the original routing was {})",
                self.request.alias, live.routing, self.original
            ))
        }
    }

    /// Why the rollout is rolled back: the failed health signal, or the task error that got it here.
    pub fn rollback_reason(&self) -> Failure {
        if let Some(failure) = &self.failure {
            return failure.clone();
        }
        let (error, message) = match &self.error {
            Some(e) => (e.error.clone(), e.message()),
            None => ("Unknown".to_string(), "rolled back without a recorded reason".to_string()),
        };
        Failure {
            signal: Signal::Error,
            value: 0.0,
            threshold: 0.0,
            p_value: None,
            message: bounded(&format!("{error}: {message}"), MAX_MESSAGE_CHARS),
        }
    }

    /// The execution's result.
    pub fn report(&self, outcome: Outcome, routing: Routing, now: DateTime<Utc>) -> Report {
        Report {
            outcome,
            function: self.request.function.clone(),
            alias: self.request.alias.clone(),
            old_version: self.old_version.clone(),
            new_version: self.request.version.clone(),
            started_at: self.started_at,
            finished_at: now,
            routing,
            steps: self.history[self.history.len().saturating_sub(REPORT_STEPS)..].to_vec(),
            steps_omitted: self.history_omitted + self.history.len().saturating_sub(REPORT_STEPS),
            hooks: self.hooks_run.clone(),
            reason: matches!(outcome, Outcome::RolledBack | Outcome::Aborted).then(|| self.rollback_reason()),
        }
    }
}
/// A function in another account or region than the controller's cannot be rolled out by it: its alias is out
/// of reach and its metrics would be read where it does not run. The same holds for its hooks.
fn check_location(request: &RolloutRequest, execution: &str) -> Result<(), Refusal> {
    let Some(here) = crate::request::arn_location(execution) else { return Ok(()) };
    let mut elsewhere = Problems::default();
    let fields = [
        ("function", Some(&request.function)),
        ("hooks.pre_traffic", request.hooks.pre_traffic.as_ref()),
        ("hooks.post_traffic", request.hooks.post_traffic.as_ref()),
    ];
    for (field, arn) in fields {
        if let Some(there) = arn.and_then(|a| crate::request::arn_location(a)).filter(|there| *there != here) {
            elsewhere.add(
                field,
                format!(
                    "is in {} account {} (partition {}), but this controller runs in {} account {}",
                    there.1, there.2, there.0, here.1, here.2
                ),
                "deploy the controller where the function runs, or give a function of this account and region",
            );
        }
    }
    elsewhere.into_result(())
}

/// Checks the request against what the account holds. A missing function is the only problem reported (nothing
/// else can be looked at), a missing alias ends the checks (nothing about routing can be said); every other
/// problem is reported together. Returns the alias and the description to put back when the rollout ends.
fn check_facts(request: &RolloutRequest, facts: LiveFacts, execution: &str) -> Result<(AliasState, String), Refusal> {
    let function = &request.function;
    if !facts.function_exists {
        return Err(Refusal::one(
            "function",
            format!("no function \"{function}\" exists in this account and region"),
            "check the name, the account and the region (AWS_REGION)",
        ));
    }
    let mut problems = Problems::default();
    if !facts.version_exists {
        problems.add(
            "version",
            format!("\"{function}\" has no published version {}", request.version),
            "publish it first (aws lambda publish-version) or give an existing version",
        );
    }
    let Some(alias) = facts.alias else {
        problems.add(
            "alias",
            format!("\"{function}\" has no alias \"{}\"", request.alias),
            format!("create it first: aws lambda create-alias --function-name {function} --name {} ...", request.alias),
        );
        return Err(problems.into_refusal());
    };
    check_alias_target(&mut problems, request, &alias);
    check_dependencies(&mut problems, request, &facts.alarms, &facts.missing_hooks);
    if let Some(held) = facts.lock.as_ref().filter(|held| held.running && held.execution != execution) {
        problems.add(
            "alias",
            format!("another rollout of {function}:{} is running: {}", request.alias, held.execution),
            format!("wait for it to end, or stop it (canaryctl abort {}) and start again", held.execution),
        );
    }
    check_alias_free(&mut problems, request, &alias);
    problems.into_result(())?;
    // The description to put back: the alias's own, or the one a lock kept (ours from an earlier attempt of this
    // Prepare, or a stale one of an execution that ended without releasing it).
    let original_description =
        lock::holder(&alias.description).map_or(alias.description.as_str(), |(_, original)| original).to_string();
    Ok((alias, original_description))
}

/// The alias points at a published version, and not already at the one to roll out.
fn check_alias_target(problems: &mut Problems, request: &RolloutRequest, alias: &AliasState) {
    let current = &alias.routing.function_version;
    if current == "$LATEST" {
        problems.add(
            "alias",
            format!("\"{}\" points to $LATEST, which cannot share traffic by weight", request.alias),
            "point the alias at a published version first",
        );
    } else if current == &request.version {
        problems.add(
            "version",
            format!("the alias \"{}\" already routes to version {current}", request.alias),
            "give the new version to roll out; there is nothing to do",
        );
    }
}

/// Every alarm the request watches and every hook it calls exists.
fn check_dependencies(
    problems: &mut Problems,
    request: &RolloutRequest,
    alarms: &[AlarmState],
    missing_hooks: &[String],
) {
    for (i, name) in request.health.alarms.iter().enumerate() {
        if !alarms.iter().any(|a| &a.name == name) {
            problems.add(
                format!("health.alarms[{i}]"),
                format!("no CloudWatch alarm named \"{name}\" exists in this account and region"),
                "check the name, or create the alarm first",
            );
        }
    }
    for (field, hook) in
        [("hooks.pre_traffic", &request.hooks.pre_traffic), ("hooks.post_traffic", &request.hooks.post_traffic)]
    {
        if let Some(hook) = hook.as_ref().filter(|h| missing_hooks.contains(h)) {
            problems.add(
                field,
                format!("no function \"{hook}\" exists in this account and region"),
                "deploy the hook function first",
            );
        }
    }
}

/// The alias shares no traffic yet: weights left by another rollout, running or unfinished, are not ours to move.
fn check_alias_free(problems: &mut Problems, request: &RolloutRequest, alias: &AliasState) {
    if !alias.routing.additional_version_weights.is_empty() {
        problems.add(
            "alias",
            format!(
                "\"{}\" already shares traffic ({}): another rollout is running or was left unfinished",
                request.alias, alias.routing
            ),
            "wait for it, or finish it by hand (update-alias with an empty AdditionalVersionWeights)",
        );
    }
}
