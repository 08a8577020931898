//! Judging a step: the window its metrics are read over, a look within its hold, the verdict at its end, and
//! what too little traffic leads to.

use super::{Next, Rollout};
use crate::health::{
    Check, Failure, HealthFigures, Signal, Verdict, VersionFigures, judge, judge_at_end_of_looks, look_within_hold,
};
use crate::request::NoData;
use crate::sequential::Evidence;
use chrono::{DateTime, Duration, Utc};

/// How long before the rollout the old version's latency is read, for a step judged at full traffic.
pub const BASELINE_BEFORE_SECONDS: i64 = 900;

/// How many alarm checks a step record keeps one by one (the failing ones first); the others are summed
/// up in one check. Every alarm is still judged, and a failing one is still the rollback's reason.
pub const ALARM_CHECKS_KEPT: usize = 3;

impl Rollout {
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
            Verdict::Pass => self.pass_step(now),
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
            NoData::Pass => self.pass_step(now),
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
        skipped: false,
        message: format!("{} more alarms: {firing} in ALARM, {} not", rest.len(), rest.len() - firing),
    });
    alarms.append(&mut kept);
    alarms
}
