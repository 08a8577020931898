//! Judging a step: the window its metrics are read over, the hour before the rollout that the tests start
//! from, a look within its hold, the verdict at its end, and what too little traffic leads to.

use super::{Next, Rollout};
use crate::budget::{look_interval, looks_per_hold, paused_looks, recheck_seconds};
use crate::health::{Check, Failure, HealthFigures, Judgement, Look, Moment, Signal, Verdict, judge};
use crate::request::NoData;
use crate::sequential::{Counts, Evidence, Limits};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long before the rollout the old version's traffic is read: its usual rate, how its errors vary
/// from minute to minute, its p99.
pub const BEFORE_SECONDS: i64 = 3600;

/// How many alarm checks a step record keeps one by one (the failing ones first); the others are summed
/// up in one check. Every alarm is still judged, and a failing one is still the rollback's reason.
pub const ALARM_CHECKS_KEPT: usize = 3;

/// The old version's traffic over the hour before the rollout, as `Prepare` read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Before {
    /// Minutes of CloudWatch data read.
    pub minutes: u64,
    pub invocations: u64,
    pub errors: u64,
    /// p99 of `Duration` in milliseconds over the hour; absent without invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_duration_ms: Option<f64>,
}

impl Before {
    /// Invocations a minute.
    pub fn per_minute(&self) -> f64 {
        if self.minutes == 0 { 0.0 } else { self.invocations as f64 / self.minutes as f64 }
    }
}

impl Rollout {
    /// The window whose metrics judge the current step: from the move to the latest moment whose
    /// CloudWatch data is complete. `None` before the first move.
    pub fn health_window(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = self.step_started_at?;
        let end = now - Duration::seconds(self.metrics_delay() as i64);
        Some((start, end.max(start)))
    }

    /// The window before the rollout whose old-version figures `Prepare` reads, minute by minute: the
    /// [`BEFORE_SECONDS`] before `now` whose metrics are complete. `None` when health is not judged.
    pub fn before_window(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.request.health.enabled {
            return None;
        }
        let end = now - Duration::seconds(self.metrics_delay() as i64);
        Some((end - Duration::seconds(BEFORE_SECONDS), end))
    }

    /// Starts the evidence from the old version's minutes before the rollout (its usual rate and how much its
    /// errors vary), and keeps its p99 for the latency rule.
    pub fn with_traffic_before(self, minutes: &[Counts], p99_duration_ms: Option<f64>) -> Rollout {
        let (invocations, errors) = minutes.iter().fold((0, 0), |(i, e), c| (i + c.invocations, e + c.errors));
        let before = Before { minutes: (BEFORE_SECONDS / 60) as u64, invocations, errors, p99_duration_ms };
        Rollout { before: Some(before), evidence: Some(Evidence::seeded(minutes)), ..self }
    }

    /// The latency rule's threshold: the old version's p99 before the rollout times 1 + the increase allowed.
    pub fn slow_threshold_ms(&self) -> Option<f64> {
        let increase = self.request.health.max_latency_p99_increase?;
        let p99 = self.before.as_ref()?.p99_duration_ms?;
        Some(p99 * (1.0 + increase))
    }

    /// The new version's invocations the promotion waits for: [`crate::budget::evidence_needed`], which is
    /// computed for independent errors, times the dispersion φ the old version's counts show so far. Errors
    /// that come in bursts tell less per call (n calls weigh as n / φ independent ones), and the tests are
    /// widened by φ; without this, a version failing in bursts could reach the promotion before its tests
    /// could be conclusive.
    pub fn evidence_needed(&self) -> u64 {
        let independent = crate::budget::evidence_needed(&self.request);
        let phi = self.evidence.as_ref().map_or(1.0, |e| e.dispersion.factor());
        (independent as f64 * phi).ceil() as u64
    }

    /// The evidence this rollout can gather at the old version's rate in the hour before it, when known.
    pub fn outlook(&self) -> Option<crate::budget::Outlook> {
        let before = self.before.filter(|b| b.minutes > 0)?;
        Some(crate::budget::outlook(&self.request, before.per_minute()))
    }

    /// Whether the check must read metrics at all.
    pub fn needs_metrics(&self) -> bool {
        self.request.health.enabled
    }

    /// Whether passing the current step promotes the new version (or it already carries all traffic).
    fn promotes_next(&self) -> bool {
        let schedule = self.schedule();
        let index = self.step.unwrap_or(0);
        schedule.step(index).is_final() || schedule.step(index + 1).is_final()
    }

    /// Judges the current step from its window's figures (`None` when health checks are off) and
    /// decides what comes next: a look within the hold fails the step only on conclusive evidence; the end
    /// of the hold also waits out a shared outage, and before the promotion, waits for enough evidence.
    pub fn after_check(mut self, figures: Option<HealthFigures>, now: DateTime<Utc>) -> Rollout {
        let policy = self.request.health.clone();
        let Some(figures) = figures.filter(|_| policy.enabled) else {
            if let Some(record) = self.history.last_mut() {
                record.checked_at = Some(now);
                record.verdict = Some(Verdict::Pass);
            }
            return self.pass_or_pause(now);
        };
        let index = self.step.unwrap_or(0);
        let limits = Limits { max_error_rate: policy.max_error_rate };
        let evidence = self.evidence.get_or_insert_with(Evidence::default);
        evidence.observe(index, &figures.new, &figures.baseline, limits, now);
        let hold = self.schedule().step(index).hold_seconds;
        // A hold looked at once is looked at when it ends.
        let rest = if looks_per_hold(&self.request, hold) > 1 { self.rest_of_hold(now) } else { None };
        let moment = match rest {
            Some(_) => Moment::WithinHold,
            None if self.promotes_next() => Moment::BeforePromotion,
            None => Moment::EndOfHold,
        };
        let Judgement { verdict, checks } = judge(&Look {
            policy: &policy,
            figures: &figures,
            evidence: self.evidence.as_ref().expect("observed just above"),
            started_at: self.started_at,
            now,
            moment,
            needed: self.evidence_needed(),
            slow_threshold_ms: self.slow_threshold_ms(),
        });
        if let Some(record) = self.history.last_mut() {
            record.checked_at = Some(now);
            // The alarms' states are in their checks; the figures keep the versions' counts.
            record.figures = Some(HealthFigures { alarms: Vec::new(), ..figures });
            record.checks = kept_checks(checks);
            match rest {
                Some(_) => record.looks += 1,
                None => record.verdict = Some(verdict.clone()),
            }
        }
        let interval = look_interval(&self.request, hold);
        match (verdict, rest) {
            (Verdict::Fail(failure), _) => self.fail(failure),
            (_, Some(rest)) => self.hold_for(rest.min(interval)),
            (Verdict::Pass, None) => self.pass_or_pause(now),
            (Verdict::SharedOutage { seconds, max_seconds }, None) => {
                let recheck = recheck_seconds(hold, max_seconds);
                let held = self.outage_held_seconds;
                if held + recheck > max_seconds {
                    return self.fail(Failure {
                        signal: Signal::SharedOutage,
                        value: seconds as f64,
                        threshold: max_seconds as f64,
                        p_value: None,
                        message: format!(
                            "both versions fail above the limit, and the rollout has already been held {held} s through \
                             such outages, the {max_seconds} s health.max_shared_outage_seconds allows"
                        ),
                    });
                }
                self.outage_held_seconds += recheck;
                self.hold_for(recheck)
            }
            (Verdict::Inconclusive { invocations, min_invocations }, None) => {
                self.after_too_few_invocations(invocations, min_invocations, now)
            }
        }
    }

    /// Records whether an operator's pause holds the rollout, as the check reads it: paused since the first
    /// check that saw it, or no longer.
    pub fn with_pause(mut self, paused: bool, now: DateTime<Utc>) -> Rollout {
        self.paused_since = if paused { self.paused_since.or(Some(now)) } else { None };
        self
    }

    /// A step that passed: on to the next move, unless an operator's pause holds it here, judged again at
    /// every look ([`paused_looks`]: the step's hold, at most 5 minutes apart; a failure still rolls back),
    /// and rolled back once paused for longer than [`crate::budget::MAX_PAUSED_LOOKS`] of them.
    fn pass_or_pause(self, now: DateTime<Utc>) -> Rollout {
        let Some(since) = self.paused_since else {
            return self.pass_step(now);
        };
        let (look, longest) = paused_looks(self.schedule().step(self.step.unwrap_or(0)).hold_seconds);
        let paused = (now - since).num_seconds().max(0) as u64;
        if paused >= longest {
            return self.fail(Failure {
                signal: Signal::Paused,
                value: paused as f64,
                threshold: longest as f64,
                p_value: None,
                message: format!(
                    "paused for {}, the longest canaryctl pause may hold a step looked at every {} ({} looks): \
                     rolled back (resume sooner to carry on, or start it again)",
                    crate::budget::duration_text(paused),
                    crate::budget::duration_text(look),
                    crate::budget::MAX_PAUSED_LOOKS
                ),
            });
        }
        self.hold_for(look.min(longest - paused))
    }

    fn hold_for(mut self, seconds: u64) -> Rollout {
        self.wait_seconds = seconds;
        self.next = Next::Hold;
        self
    }

    /// The end of the hold before the promotion, when the new version has served too few invocations over
    /// the rollout to judge it: what `health.no_data` says (promote, roll back, or wait a little longer for
    /// traffic).
    fn after_too_few_invocations(mut self, invocations: u64, min_invocations: u64, now: DateTime<Utc>) -> Rollout {
        let too_quiet = |waited: u64| Failure {
            signal: Signal::Invocations,
            value: invocations as f64,
            threshold: min_invocations as f64,
            p_value: None,
            message: format!(
                "the new version served {invocations} invocations over the rollout, fewer than the {min_invocations} \
                 needed to judge it before the promotion{}",
                if waited > 0 { format!(", after waiting {waited} s more") } else { String::new() }
            ),
        };
        let policy = &self.request.health;
        match policy.no_data {
            NoData::Pass => self.pass_or_pause(now),
            NoData::Fail => self.fail(too_quiet(0)),
            NoData::Wait => {
                let hold = self.schedule().step(self.step.unwrap_or(0)).hold_seconds;
                let max_wait = policy.no_data_max_wait_seconds;
                let recheck = recheck_seconds(hold, max_wait);
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
