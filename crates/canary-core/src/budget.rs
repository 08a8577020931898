//! What a rollout costs Step Functions in the worst case its request allows, so that a request that could
//! not finish within an execution's limits is refused before anything moves: an execution that reaches
//! 25,000 history events, or runs a year, fails at once, with no Catch and no rollback of its own. Both are
//! counted here: the history events ([`worst_case_events`]) and the time ([`durations`]).
//!
//! Counted as AWS writes the history of this state machine (`statemachine/canary.asl.json`): a task state
//! is 5 events (entered, scheduled, started, succeeded, exited), a choice or a wait 2, and a task-token
//! task 6 (it is also submitted).

use crate::request::{NoData, RolloutRequest};
use crate::schedule::Step;

/// Step Functions' limit on one execution's history.
pub const HISTORY_EVENT_LIMIT: u64 = 25_000;

/// Events kept for what no request foresees: retried tasks (3 events a retry), and the rollback.
pub const RETRY_RESERVE: u64 = 2_000;

/// The most times a step is checked again while it waits for enough traffic (`no_data: wait`).
pub const MAX_RECHECKS: u64 = 10;

const TASK: u64 = 5;
const TOKEN_TASK: u64 = 6;
const CHOICE: u64 = 2;
const WAIT: u64 = 2;

/// Execution started, `Prepare`, and the end: the last `Route`, a `Rollback` task, the final state and the
/// execution's own end (the longer of the two endings).
const FIXED: u64 = 1 + TASK + (CHOICE + TASK + 1 + 1);
/// `Route` then a move (`Shift` or `Promote`).
const MOVE: u64 = CHOICE + TASK;
/// `Route`, `Hold`, `CheckHealth`: one look at a held step (at its end, or each one within it), and each
/// re-check while waiting for traffic.
const LOOK: u64 = CHOICE + WAIT + TASK;
/// `Route`, `AwaitApproval` (a task-token task) and `ApplyApproval`.
const GATE: u64 = CHOICE + TOKEN_TASK + TASK;
/// `Route` then a hook task.
const HOOK: u64 = CHOICE + TASK;

/// How long a step waiting for enough traffic waits before each re-check: its hold (at least 1 s, at most
/// a minute), or longer when that is needed to stay within [`MAX_RECHECKS`] re-checks.
///
/// ```
/// use canary_core::budget::recheck_seconds;
/// assert_eq!(recheck_seconds(300, 600), 60);
/// assert_eq!(recheck_seconds(2, 10), 2);
/// assert_eq!(recheck_seconds(1, 600), 60); // 10 re-checks of a minute, not 600 of a second
/// assert_eq!(recheck_seconds(0, 0), 1);
/// ```
pub fn recheck_seconds(hold_seconds: u64, max_wait_seconds: u64) -> u64 {
    hold_seconds.clamp(1, 60).max(max_wait_seconds.div_ceil(MAX_RECHECKS))
}

/// The history events one step may cost, its re-checks included.
fn step_events(request: &RolloutRequest, step: &Step) -> u64 {
    if step.hold_seconds == 0 {
        return MOVE;
    }
    let health = &request.health;
    let rechecks = match health.no_data {
        NoData::Wait if health.enabled => {
            health.no_data_max_wait_seconds / recheck_seconds(step.hold_seconds, health.no_data_max_wait_seconds)
        }
        _ => 0,
    };
    MOVE + LOOK * (looks_per_hold(request, step.hold_seconds) + rechecks)
}

/// How many times a hold of `hold_seconds` is looked at: once at its end, or every
/// `health.check_interval_seconds` within it (the last look at its end).
///
/// ```
/// use canary_core::budget::looks_per_hold;
/// let mut request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2"}"#).unwrap();
/// assert_eq!(looks_per_hold(&request, 300), 1);
/// request.health.check_interval_seconds = Some(60);
/// assert_eq!((looks_per_hold(&request, 300), looks_per_hold(&request, 301), looks_per_hold(&request, 30)), (5, 6, 1));
/// ```
pub fn looks_per_hold(request: &RolloutRequest, hold_seconds: u64) -> u64 {
    match request.health.check_interval_seconds {
        Some(interval) if request.health.enabled => hold_seconds.div_ceil(interval.max(1)).max(1),
        _ => 1,
    }
}

/// The most history events an execution of `request` can write, retries aside: every step held, every
/// held step waiting for traffic as long as it may, every gate and hook run.
pub fn worst_case_events(request: &RolloutRequest) -> Costs {
    let steps = request.schedule().steps.iter().map(|s| step_events(request, s)).sum();
    let gates = GATE * request.approval.before_percent.len() as u64;
    let hooks =
        HOOK * [&request.hooks.pre_traffic, &request.hooks.post_traffic].iter().filter(|h| h.is_some()).count() as u64;
    Costs { fixed: FIXED, steps, gates, hooks }
}

/// A request's worst-case history, by what it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Costs {
    pub fixed: u64,
    /// The steps, with their looks and re-checks.
    pub steps: u64,
    pub gates: u64,
    pub hooks: u64,
}

impl Costs {
    pub fn total(&self) -> u64 {
        self.fixed + self.steps + self.gates + self.hooks
    }

    /// Whether it fits an execution with [`RETRY_RESERVE`] events to spare.
    pub fn fits(&self) -> bool {
        self.total() + RETRY_RESERVE <= HISTORY_EVENT_LIMIT
    }
}

/// How long an approval gate waits for an answer, at most: the definition's `AwaitApproval` timeout.
pub const GATE_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;

/// How long one run of a traffic hook may take, at most: the definition's hook tasks' timeout.
pub const HOOK_TIMEOUT_SECONDS: u64 = 960;

/// How long an execution of a request takes, by what the time comes from: typically its holds and the
/// waits for complete metrics; at worst also every wait for traffic, every gate and every hook as long as
/// each may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Durations {
    /// Every held step's hold.
    pub holds: u64,
    /// The wait after each held step for its metrics to be complete.
    pub metrics_delays: u64,
    /// At worst, every held step waiting for traffic as long as `no_data: wait` allows.
    pub no_data_waits: u64,
    /// At worst, every approval gate unanswered until it times out.
    pub gates: u64,
    /// At worst, every hook running until its timeout.
    pub hooks: u64,
}

impl Durations {
    /// When all goes well.
    pub fn typical(&self) -> u64 {
        self.holds + self.metrics_delays
    }

    /// The longest the request allows, retries of failed tasks aside (seconds each).
    pub fn worst(&self) -> u64 {
        self.typical() + self.no_data_waits + self.gates + self.hooks
    }
}

/// How long an execution of `request` takes, typically and at worst.
///
/// ```
/// use canary_core::budget::durations;
/// let request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2",
///     "strategy": {"canary": {"percent": 10, "bake_seconds": 600}}, "approval": {"before_percent": [100]}}"#).unwrap();
/// let d = durations(&request);
/// assert_eq!((d.typical(), d.no_data_waits, d.gates), (600 + 120, 600, 7 * 24 * 3600));
/// ```
pub fn durations(request: &RolloutRequest) -> Durations {
    let health = &request.health;
    let held = request.schedule().steps.iter().filter(|s| s.hold_seconds > 0).count() as u64;
    let waits = if health.enabled && health.no_data == NoData::Wait { health.no_data_max_wait_seconds } else { 0 };
    Durations {
        holds: request.schedule().total_hold_seconds(),
        metrics_delays: held * health.effective_metrics_delay(),
        no_data_waits: held * waits,
        gates: request.approval.before_percent.len() as u64 * GATE_TIMEOUT_SECONDS,
        hooks: [&request.hooks.pre_traffic, &request.hooks.post_traffic].iter().filter(|h| h.is_some()).count() as u64
            * HOOK_TIMEOUT_SECONDS,
    }
}

/// A duration for people: `45s`, `12m05s`, `3h20m`, `9d04h`.
///
/// ```
/// use canary_core::budget::duration_text;
/// assert_eq!([45, 725, 12_000, 788_400].map(duration_text), ["45s", "12m05s", "3h20m", "9d03h"]);
/// ```
pub fn duration_text(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}
