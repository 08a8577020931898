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

/// The most times a step is checked again while it waits for enough traffic (`no_data: wait`), or through
/// shared outages.
pub const MAX_RECHECKS: u64 = 120;

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
/// assert_eq!(recheck_seconds(1, 600), 5); // 120 re-checks of 5 s, not 600 of a second
/// assert_eq!(recheck_seconds(60, 4 * 3600), 120); // a 4-hour wait: 120 re-checks of 2 minutes
/// assert_eq!(recheck_seconds(0, 0), 1);
/// ```
pub fn recheck_seconds(hold_seconds: u64, max_wait_seconds: u64) -> u64 {
    hold_seconds.clamp(1, 60).max(max_wait_seconds.div_ceil(MAX_RECHECKS))
}

/// The most looks an operator's pause (`canaryctl pause`) may hold a rollout for; past them, the rollout is
/// rolled back. A pause is bounded because every look costs history events: 288 looks are counted in every
/// request's worst case, so an execution's history still fits with the longest requests.
pub const MAX_PAUSED_LOOKS: u64 = 288;

/// How far apart a paused rollout's looks (judged, and checked for a resume) are at most: 5 minutes, so the
/// longest pause is a day ([`MAX_PAUSE_SECONDS`]).
pub const PAUSED_LOOK_SECONDS: u64 = 300;

/// The longest a pause may last: [`MAX_PAUSED_LOOKS`] looks [`PAUSED_LOOK_SECONDS`] apart, 24 hours.
pub const MAX_PAUSE_SECONDS: u64 = MAX_PAUSED_LOOKS * PAUSED_LOOK_SECONDS;

/// How far apart a paused step's looks are: its hold, between 1 s and [`PAUSED_LOOK_SECONDS`]; and so how
/// long a pause may last, [`MAX_PAUSED_LOOKS`] of them (a day for holds of 5 minutes or more, 4 h 48 min
/// for a minute's).
///
/// ```
/// use canary_core::budget::paused_looks;
/// assert_eq!(paused_looks(600), (300, 86_400));
/// assert_eq!(paused_looks(60), (60, 17_280));
/// assert_eq!(paused_looks(0), (1, 288));
/// ```
pub fn paused_looks(hold_seconds: u64) -> (u64, u64) {
    let look = hold_seconds.clamp(1, PAUSED_LOOK_SECONDS);
    (look, look * MAX_PAUSED_LOOKS)
}

/// The history events the longest pause can cost.
const PAUSE: u64 = MAX_PAUSED_LOOKS * LOOK;

/// The most looks a hold gets when the request leaves their interval to the controller.
pub const AUTO_LOOKS: u64 = 20;

/// Looks the controller chooses come no more often than this: CloudWatch's one-minute resolution.
pub const AUTO_LOOK_SECONDS: u64 = 60;

/// How many times a held step may be checked again beyond its hold: while both versions fail (up to
/// `max_shared_outage_seconds`), and, before the promotion, while it waits for traffic (`no_data: wait`).
fn rechecks(request: &RolloutRequest, hold_seconds: u64) -> (u64, u64) {
    let health = &request.health;
    if !health.enabled {
        return (0, 0);
    }
    let over = |max_wait: u64| max_wait / recheck_seconds(hold_seconds, max_wait);
    let outage = if health.max_error_rate.is_some() { over(health.max_shared_outage_seconds) } else { 0 };
    let no_data = if health.no_data == NoData::Wait { over(health.no_data_max_wait_seconds) } else { 0 };
    (outage, no_data)
}

/// The history events one step may cost with its looks.
fn step_events(step: &Step, looks: impl Fn(u64) -> u64) -> u64 {
    if step.hold_seconds == 0 {
        return MOVE;
    }
    MOVE + LOOK * looks(step.hold_seconds)
}

/// The steps' events with `looks` looks a hold, and the re-checks beyond the holds: through shared
/// outages (at most `max_shared_outage_seconds` in all, re-checked at the shortest hold's pace), and of the
/// step before the promotion while it waits for traffic.
fn steps_events(request: &RolloutRequest, looks: impl Fn(u64) -> u64 + Copy) -> u64 {
    let schedule = request.schedule();
    let held = || schedule.steps.iter().filter(|s| s.hold_seconds > 0);
    let outages = held().map(|s| rechecks(request, s.hold_seconds).0).max().unwrap_or(0);
    let waits = held().next_back().map_or(0, |s| rechecks(request, s.hold_seconds).1);
    schedule.steps.iter().map(|s| step_events(s, looks)).sum::<u64>() + LOOK * (outages + waits)
}

/// How many looks a hold may get when the controller chooses: at most [`AUTO_LOOKS`], fewer when the
/// request's held steps would not fit the history otherwise.
fn auto_looks(request: &RolloutRequest) -> u64 {
    let held = request.schedule().steps.iter().filter(|s| s.hold_seconds > 0).count() as u64;
    let once = Costs { steps: steps_events(request, |_| 1), ..fixed_costs(request) };
    let room = (HISTORY_EVENT_LIMIT - RETRY_RESERVE).saturating_sub(once.total());
    (1 + room / (LOOK * held.max(1))).min(AUTO_LOOKS)
}

/// How long the looks within a hold of `hold_seconds` are apart: `health.check_interval_seconds`; with
/// `0`, the whole hold (one look, at its end); unset, the controller's choice: every
/// [`AUTO_LOOK_SECONDS`] or more, at most [`AUTO_LOOKS`] looks a hold (fewer when the history budget
/// needs it).
///
/// ```
/// use canary_core::budget::{look_interval, looks_per_hold};
/// let mut request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2"}"#).unwrap();
/// assert_eq!((look_interval(&request, 300), look_interval(&request, 90), look_interval(&request, 3600)), (60, 90, 180));
/// request.health.check_interval_seconds = Some(0);
/// assert_eq!((look_interval(&request, 300), looks_per_hold(&request, 300)), (300, 1));
/// request.health.check_interval_seconds = Some(60);
/// assert_eq!((looks_per_hold(&request, 300), looks_per_hold(&request, 301), looks_per_hold(&request, 30)), (5, 6, 1));
/// ```
pub fn look_interval(request: &RolloutRequest, hold_seconds: u64) -> u64 {
    let health = &request.health;
    match health.check_interval_seconds {
        _ if !health.enabled => hold_seconds,
        Some(0) => hold_seconds,
        Some(interval) => interval.min(hold_seconds),
        None => hold_seconds.div_ceil((hold_seconds / AUTO_LOOK_SECONDS).clamp(1, auto_looks(request))),
    }
}

/// How many times a hold of `hold_seconds` is looked at, the last look at its end.
pub fn looks_per_hold(request: &RolloutRequest, hold_seconds: u64) -> u64 {
    hold_seconds.div_ceil(look_interval(request, hold_seconds).max(1)).max(1)
}

/// The events that do not depend on the looks: the fixed ones, the gates, the hooks.
fn fixed_costs(request: &RolloutRequest) -> Costs {
    let gates = GATE * request.approval.before_percent.len() as u64;
    let hooks =
        HOOK * [&request.hooks.pre_traffic, &request.hooks.post_traffic].iter().filter(|h| h.is_some()).count() as u64;
    Costs { fixed: FIXED + PAUSE, steps: 0, gates, hooks }
}

/// The most history events an execution of `request` can write, retries aside: every held step looked at
/// as often as it may be and held as long as a shared outage may hold it, the step before the promotion
/// waiting for traffic as long as it may, every gate and hook run.
pub fn worst_case_events(request: &RolloutRequest) -> Costs {
    Costs { steps: steps_events(request, |hold| looks_per_hold(request, hold)), ..fixed_costs(request) }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Durations {
    /// Every held step's hold.
    pub holds: u64,
    /// The wait after each held step for its metrics to be complete.
    pub metrics_delays: u64,
    /// At worst, the step before the promotion waiting for traffic as long as `no_data: wait` allows.
    pub no_data_waits: u64,
    /// At worst, steps held through shared outages as long as `max_shared_outage_seconds` allows in all.
    pub outage_waits: u64,
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
        self.typical() + self.no_data_waits + self.outage_waits + self.gates + self.hooks
    }
}

/// How long an execution of `request` takes, typically and at worst.
///
/// ```
/// use canary_core::budget::durations;
/// let request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2",
///     "strategy": {"canary": {"percent": 10, "bake_seconds": 600}}, "approval": {"before_percent": [100]}}"#).unwrap();
/// let d = durations(&request);
/// assert_eq!((d.typical(), d.no_data_waits, d.outage_waits, d.gates), (600 + 120, 14_400, 300, 7 * 24 * 3600));
/// ```
pub fn durations(request: &RolloutRequest) -> Durations {
    let health = &request.health;
    let held = request.schedule().steps.iter().filter(|s| s.hold_seconds > 0).count() as u64;
    let waits =
        if health.enabled && health.no_data == NoData::Wait && held > 0 { health.no_data_max_wait_seconds } else { 0 };
    let outages = if health.enabled && health.max_error_rate.is_some() { health.max_shared_outage_seconds } else { 0 };
    Durations {
        holds: request.schedule().total_hold_seconds(),
        metrics_delays: held * health.effective_metrics_delay(),
        no_data_waits: waits,
        outage_waits: if held > 0 { outages } else { 0 },
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

/// The new version's invocations a promotion waits for: `min_invocations`, or more when a broken version
/// (failing 20% of its calls, or 4 times the limit) could still pass the error-rate test in more than 1
/// rollout in 100 on fewer ([`crate::sequential::invocations_to_detect`]). The baseline test may catch it
/// sooner; it is not counted on.
///
/// ```
/// use canary_core::budget::evidence_needed;
/// let request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2"}"#).unwrap();
/// assert_eq!(evidence_needed(&request), 55); // a 1% limit
/// ```
pub fn evidence_needed(request: &RolloutRequest) -> u64 {
    let health = &request.health;
    let alpha = 1.0 - health.baseline_confidence;
    let detect = health.max_error_rate.map_or(0, |p0| crate::sequential::invocations_to_detect(p0, alpha));
    health.min_invocations.max(detect)
}

/// How an alias's provisioned concurrency is shared while a rollout weights it, in one sentence for the plan
/// and `Prepare`'s first line: Lambda allocates it to both versions as the weights move (AWS's API reference:
/// the allocation "fluctuates depending on the amount of concurrency that is provisioned for the function
/// versions" during linear and canary deployments), so the new version has about its weight's share; calls
/// beyond a version's share run on demand, with cold starts, counted as
/// `ProvisionedConcurrencySpilloverInvocations`.
///
/// ```
/// use canary_core::budget::provisioned_split;
/// let request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2",
///     "strategy": {"linear": {"percent": 25, "interval_seconds": 300}}}"#).unwrap();
/// let said = provisioned_split(&request, 8);
/// assert!(said.starts_with("live has 8 provisioned concurrency"), "{said}");
/// assert!(said.contains("about 2 at 25%, 4 at 50%, 6 at 75%"), "{said}");
/// ```
pub fn provisioned_split(request: &RolloutRequest, provisioned: u32) -> String {
    let shares: Vec<String> = request
        .schedule()
        .steps
        .iter()
        .filter(|s| !s.is_final())
        .map(|s| format!("{} at {}%", (f64::from(provisioned) * s.percent / 100.0).round(), s.percent))
        .collect();
    format!(
        "{} has {provisioned} provisioned concurrency: while it is weighted, Lambda shares it between the versions \
         as the weights move, the new version's share about {}; calls beyond a version's share run on demand, \
         with cold starts (ProvisionedConcurrencySpilloverInvocations, on the dashboard)",
        request.alias,
        shares.join(", ")
    )
}

/// What a held step can gather at a given traffic.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct StepOutlook {
    pub percent: f64,
    pub hold_seconds: u64,
    /// The new version's invocations expected in the hold.
    pub expected_invocations: f64,
}

/// The evidence a rollout of a request can gather at `requests_per_minute`, and what the promotion then
/// waits for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Outlook {
    pub requests_per_minute: f64,
    pub steps: Vec<StepOutlook>,
    /// Invocations of the new version expected by the end of the last held step.
    pub expected_by_promotion: f64,
    /// What the promotion needs ([`evidence_needed`]).
    pub needed: u64,
    /// How long the last held step is expected to wait for the rest, when it must.
    pub expected_wait_seconds: u64,
    /// Whether that wait fits `health.no_data_max_wait_seconds` (with `no_data: wait`); otherwise
    /// `health.no_data` decides without the evidence.
    pub decided_in_time: bool,
}

/// The evidence a rollout of `request` can gather when the function serves `requests_per_minute`.
///
/// ```
/// use canary_core::budget::outlook;
/// let request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2",
///     "strategy": {"canary": {"percent": 10, "bake_seconds": 300}}}"#).unwrap();
/// let at_three = outlook(&request, 3.0);
/// assert_eq!(at_three.steps[0].expected_invocations, 1.5);
/// assert_eq!((at_three.needed, at_three.decided_in_time), (55, true));
/// assert_eq!(at_three.expected_wait_seconds, 10_700); // 53.5 more at 0.3 a minute
/// assert!(!outlook(&request, 1.0).decided_in_time);
/// ```
pub fn outlook(request: &RolloutRequest, requests_per_minute: f64) -> Outlook {
    let held: Vec<Step> = request.schedule().steps.into_iter().filter(|s| s.hold_seconds > 0).collect();
    let steps: Vec<StepOutlook> = held
        .iter()
        .map(|s| StepOutlook {
            percent: s.percent,
            hold_seconds: s.hold_seconds,
            expected_invocations: requests_per_minute * s.percent / 100.0 * s.hold_seconds as f64 / 60.0,
        })
        .collect();
    let expected_by_promotion: f64 = steps.iter().map(|s| s.expected_invocations).sum();
    let needed = if request.health.enabled { evidence_needed(request) } else { 0 };
    let per_minute_at_last = held.last().map_or(0.0, |s| requests_per_minute * s.percent / 100.0);
    let missing = (needed as f64 - expected_by_promotion).max(0.0);
    let expected_wait_seconds = if missing <= 0.0 {
        0
    } else if per_minute_at_last > 0.0 {
        (missing / per_minute_at_last * 60.0).ceil() as u64
    } else {
        u64::MAX
    };
    let health = &request.health;
    let decided_in_time = expected_wait_seconds == 0
        || (health.no_data == NoData::Wait && expected_wait_seconds <= health.no_data_max_wait_seconds);
    Outlook { requests_per_minute, steps, expected_by_promotion, needed, expected_wait_seconds, decided_in_time }
}

impl Outlook {
    /// The outlook for people: what each held step sees, and what the promotion waits for.
    ///
    /// ```
    /// use canary_core::budget::outlook;
    /// let request = canary_core::parse_request_str(r#"{"function": "f", "alias": "live", "version": "2",
    ///     "strategy": {"canary": {"percent": 10, "bake_seconds": 300}}}"#).unwrap();
    /// let text = outlook(&request, 3.0).describe(&request);
    /// assert!(text.starts_with("At 3 requests a minute, the 10% step sees about 1.5 invocations of the new version in its 5m00s hold."), "{text}");
    /// ```
    pub fn describe(&self, request: &RolloutRequest) -> String {
        let rate = format!("{}", (self.requests_per_minute * 100.0).round() / 100.0);
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                format!(
                    "the {} step sees about {} invocations of the new version in its {} hold",
                    crate::rollout::percent_text(s.percent),
                    (s.expected_invocations * 10.0).round() / 10.0,
                    duration_text(s.hold_seconds)
                )
            })
            .collect();
        let mut text = format!("At {rate} requests a minute, {}.", steps.join("; "));
        if self.needed == 0 {
            return text;
        }
        let health = &request.health;
        text.push_str(&format!(
            " The promotion needs {} invocations of the new version (health.min_invocations, or enough to catch a \
             version failing 20% of its calls); about {:.0} by the end of the last hold",
            self.needed, self.expected_by_promotion
        ));
        text.push_str(&match (self.expected_wait_seconds, self.decided_in_time) {
            (0, _) => ".".to_string(),
            (wait, true) => format!(
                ", so the last step waits about {} more for the rest (health.no_data_max_wait_seconds allows {}).",
                duration_text(wait),
                duration_text(health.no_data_max_wait_seconds)
            ),
            (wait, false) => format!(
                ", and the rest would take about {}: beyond what health.no_data_max_wait_seconds allows ({}), so \
                 health.no_data ({:?}) would decide without it. Hold the steps longer, raise \
                 health.no_data_max_wait_seconds, or accept a higher rate of missed broken versions with a lower \
                 health.baseline_confidence.",
                if wait == u64::MAX { "for ever".to_string() } else { duration_text(wait) },
                duration_text(health.no_data_max_wait_seconds),
                health.no_data
            ),
        });
        text
    }
}
