//! Health verdicts: whether the figures of one step's window let the rollout go on.
//!
//! The rules, in the order they are applied:
//!
//! 1. **Alarms**: a listed CloudWatch alarm that entered ALARM after the rollout started fails the step. One
//!    already in ALARM when the rollout started is reported and does not block (it may be the very
//!    problem the new version fixes).
//! 2. **Error rate** (`max_error_rate`): the new version's errors / invocations over the window. Below
//!    `min_invocations` the rate is noise, except when the errors alone already exceed the threshold at
//!    the minimum: no run of successes could bring the rate back under it.
//! 3. **Evidence** (`min_invocations`): fewer invocations of the new version than this judge nothing;
//!    the verdict is inconclusive and `no_data` decides.
//! 4. **Baseline** (`compare_to_baseline`): a one-sided Fisher's exact test of the new version's error
//!    count against the old version's over the same window. The step fails when the new version's rate
//!    is higher and the test is significant at `baseline_confidence` (default 0.99: a p-value below
//!    0.01). Noise that the old version shows too is not significant, and so does not fail the new one.
//! 5. **Latency** (`max_latency_p99_increase`): the new version's p99 `Duration` against the baseline's.

use crate::request::HealthPolicy;
use crate::sequential::Evidence;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use statrs::distribution::{DiscreteCDF, Hypergeometric};
use strum::{EnumString, IntoStaticStr};

/// What CloudWatch says about one version over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionFigures {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    /// p99 of `Duration` in milliseconds; absent when the window had no invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_duration_ms: Option<f64>,
}

impl VersionFigures {
    /// Errors per invocation; 0 when there were no invocations.
    pub fn error_rate(&self) -> f64 {
        if self.invocations == 0 { 0.0 } else { self.errors as f64 / self.invocations as f64 }
    }
}

/// A CloudWatch alarm's state when it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    pub name: String,
    pub state: AlarmValue,
    pub updated_at: DateTime<Utc>,
}

/// A CloudWatch alarm's state value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, EnumString, strum::Display)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmValue {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmValue {
    /// The value CloudWatch names `name`; one this code does not know yet is not `ALARM`, so it reads as
    /// insufficient data (reported, never a rollback).
    ///
    /// ```
    /// use canary_core::AlarmValue;
    /// assert_eq!(AlarmValue::parse("ALARM"), AlarmValue::Alarm);
    /// assert_eq!(AlarmValue::parse("OK"), AlarmValue::Ok);
    /// assert_eq!(AlarmValue::parse("SOMETHING_NEW"), AlarmValue::InsufficientData);
    /// ```
    pub fn parse(name: &str) -> AlarmValue {
        name.parse().unwrap_or(AlarmValue::InsufficientData)
    }

    /// Its name in the CloudWatch API.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The figures one health check reads: the new version's, the version it replaces over the same window,
/// and the watched alarms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthFigures {
    pub new: VersionFigures,
    pub baseline: VersionFigures,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmState>,
    /// The old version's figures before the rollout, for a window in which it serves nothing (at full
    /// traffic): its p99 is what the new version's latency is compared with there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_before: Option<VersionFigures>,
}

/// What a check measured, or what failed a rollout. Serialised as its snake_case name (`error_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, IntoStaticStr, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Signal {
    /// A watched CloudWatch alarm.
    Alarm,
    /// The new version's error rate against `max_error_rate`.
    ErrorRate,
    /// The new version's errors against the old version's.
    Baseline,
    /// The new version's p99 duration against the old version's.
    LatencyP99,
    /// Too little traffic to judge.
    Invocations,
    /// A traffic hook failed.
    Hook,
    /// A failure outside health (a task error).
    Error,
}

impl Signal {
    /// Its name in the report (`error_rate`), as serialised.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One rule applied to one window, with its figures: what was measured, against what, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `alarm`, `error_rate`, `baseline` or `latency_p99`.
    pub signal: Signal,
    pub value: f64,
    pub threshold: f64,
    pub passed: bool,
    /// The baseline comparison's test statistic: the one-sided p-value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The rule could not be applied (nothing to compare with): it passes, and the message says why.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    pub message: String,
}

/// The signal that failed a step, with its value and the threshold it crossed, so a rollback explains itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// A [`Check`]'s signal, `invocations` (too little traffic), `hook`, or `error` (a failure outside health).
    pub signal: Signal,
    pub value: f64,
    pub threshold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    pub message: String,
}

impl From<&Check> for Failure {
    fn from(check: &Check) -> Failure {
        Failure {
            signal: check.signal,
            value: check.value,
            threshold: check.threshold,
            p_value: check.p_value,
            message: check.message.clone(),
        }
    }
}

/// The judgement of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail(Failure),
    /// Too little traffic to judge: `no_data` decides what happens.
    Inconclusive {
        invocations: u64,
        min_invocations: u64,
    },
}

/// A verdict with every check that led to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub checks: Vec<Check>,
}

fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// The one-sided p-value of Fisher's exact test that the new version's error probability is higher than
/// the baseline's: the chance of the new version having at least `new_errors` of all the errors, were
/// both versions equally good.
///
/// ```
/// use canary_core::health::fisher_worse_p_value;
/// assert_eq!(fisher_worse_p_value(0, 100, 0, 100), 1.0); // no errors: nothing to see
/// assert!(fisher_worse_p_value(10, 100, 1, 900) < 1e-6); // 10% against 0.1%: clearly worse
/// assert!(fisher_worse_p_value(5, 100, 50, 1000) > 0.4); // 5% against 5%: noise
/// ```
pub fn fisher_worse_p_value(new_errors: u64, new_invocations: u64, base_errors: u64, base_invocations: u64) -> f64 {
    // No errors, or inconsistent figures (more errors than invocations, as late or partial data can show):
    // neither is evidence that the new version is worse.
    if new_errors == 0 || new_errors > new_invocations || base_errors > base_invocations {
        return 1.0;
    }
    let population = new_invocations + base_invocations;
    let errors = new_errors + base_errors;
    // Consistent figures always make a valid distribution; were one refused, it would prove nothing.
    Hypergeometric::new(population, errors, new_invocations)
        // P(X >= new_errors) = P(X > new_errors - 1).
        .map_or(1.0, |distribution| distribution.sf(new_errors - 1).clamp(0.0, 1.0))
}

/// Which test the baseline rule applies.
#[derive(Debug, Clone, Copy)]
enum BaselineTest<'a> {
    /// Fisher's exact test on this window alone: one look per step.
    Fisher,
    /// The sequential test over every look of the rollout ([`crate::sequential`]).
    Sequential(&'a Evidence),
}

/// Judges one window's figures by the policy's rules. `started_at` is when the rollout began, which
/// tells an alarm that fired because of it from one that was already firing.
pub fn judge(policy: &HealthPolicy, figures: &HealthFigures, started_at: DateTime<Utc>) -> Judgement {
    judge_by(policy, figures, started_at, BaselineTest::Fisher)
}

/// Judges the window at the end of a hold whose evidence was also looked at within it: as [`judge`], but
/// the baseline rule is the sequential test of `evidence` (which already holds this window), whose error
/// bound covers every look.
pub fn judge_at_end_of_looks(
    policy: &HealthPolicy,
    figures: &HealthFigures,
    started_at: DateTime<Utc>,
    evidence: &Evidence,
) -> Judgement {
    judge_by(policy, figures, started_at, BaselineTest::Sequential(evidence))
}

/// A look within a hold (`check_interval_seconds`): fails the step only on what is already conclusive (an
/// alarm, or a sequential test of `evidence`, which already holds this window); otherwise the step is held
/// on. Returns the failure, if any, and the checks made.
pub fn look_within_hold(
    policy: &HealthPolicy,
    figures: &HealthFigures,
    started_at: DateTime<Utc>,
    evidence: &Evidence,
) -> (Option<Failure>, Vec<Check>) {
    let mut checks = alarm_checks(figures, started_at);
    checks
        .extend(policy.max_error_rate.map(|limit| error_rate_sequential_check(policy, limit, &figures.new, evidence)));
    if policy.compare_to_baseline {
        checks.push(baseline_check(policy, figures, BaselineTest::Sequential(evidence)));
    }
    (first_failure(&checks), checks)
}

/// The first failed check decides: rules are listed in the order they apply.
fn first_failure(checks: &[Check]) -> Option<Failure> {
    checks.iter().find(|c| !c.passed).map(Failure::from)
}

fn judge_by(
    policy: &HealthPolicy,
    figures: &HealthFigures,
    started_at: DateTime<Utc>,
    test: BaselineTest,
) -> Judgement {
    let failed = |checks: &[Check]| {
        first_failure(checks).map(|f| Judgement { verdict: Verdict::Fail(f), checks: checks.to_vec() })
    };
    // Rules 1 and 2 can fail a step on any amount of traffic.
    let mut checks = alarm_checks(figures, started_at);
    if let Some(judgement) = failed(&checks) {
        return judgement;
    }
    checks.extend(policy.max_error_rate.map(|limit| error_rate_check(policy, limit, &figures.new)));
    if let Some(judgement) = failed(&checks) {
        return judgement;
    }
    // Rule 3: the others need evidence.
    let new = &figures.new;
    if new.invocations < policy.min_invocations || new.invocations == 0 {
        let verdict = Verdict::Inconclusive { invocations: new.invocations, min_invocations: policy.min_invocations };
        return Judgement { verdict, checks };
    }
    if policy.compare_to_baseline {
        checks.push(baseline_check(policy, figures, test));
    }
    checks.extend(policy.max_latency_p99_increase.map(|limit| latency_check(limit, figures)));
    failed(&checks).unwrap_or(Judgement { verdict: Verdict::Pass, checks })
}

/// Rule 1: one check per watched alarm.
fn alarm_checks(figures: &HealthFigures, started_at: DateTime<Utc>) -> Vec<Check> {
    let check = |alarm: &AlarmState| {
        let firing = alarm.state == AlarmValue::Alarm;
        let since_rollout = alarm.updated_at > started_at;
        let message = match (firing, since_rollout) {
            (true, true) => {
                format!("alarm {} entered ALARM at {} after the rollout started", alarm.name, alarm.updated_at)
            }
            (true, false) => format!(
                "alarm {} was already in ALARM when the rollout started (since {}); reported, not blocking",
                alarm.name, alarm.updated_at
            ),
            (false, _) => format!("alarm {} is {}", alarm.name, alarm.state),
        };
        Check {
            signal: Signal::Alarm,
            value: f64::from(u8::from(firing)),
            threshold: 0.0,
            passed: !(firing && since_rollout),
            p_value: None,
            skipped: false,
            message,
        }
    };
    figures.alarms.iter().map(check).collect()
}

fn failed_of(new: &VersionFigures) -> String {
    format!("the new version failed {} of {} invocations ({})", new.errors, new.invocations, percent(new.error_rate()))
}

/// Rule 2 at the end of a hold: the window's rate against the limit, counting at least `min_invocations`.
fn error_rate_check(policy: &HealthPolicy, max_error_rate: f64, new: &VersionFigures) -> Check {
    let denominator = new.invocations.max(policy.min_invocations);
    let rate = if denominator == 0 { 0.0 } else { new.errors as f64 / denominator as f64 };
    let passed = rate <= max_error_rate;
    let relation = if passed { "within" } else { "more than" };
    Check {
        signal: Signal::ErrorRate,
        value: new.error_rate(),
        threshold: max_error_rate,
        passed,
        p_value: None,
        skipped: false,
        message: format!("{}, {relation} the {} allowed", failed_of(new), percent(max_error_rate)),
    }
}

/// Rule 2 within a hold: fails only when the sequential test is conclusive that the rate is above the limit.
fn error_rate_sequential_check(
    policy: &HealthPolicy,
    max_error_rate: f64,
    new: &VersionFigures,
    evidence: &Evidence,
) -> Check {
    let p_value = evidence.above_p_value();
    let above = p_value <= 1.0 - policy.baseline_confidence;
    Check {
        signal: Signal::ErrorRate,
        value: new.error_rate(),
        threshold: max_error_rate,
        passed: !above,
        p_value: Some(p_value),
        skipped: false,
        message: format!(
            "{} so far in this step: {} above the {} allowed (sequential p = {:.4})",
            failed_of(new),
            if above { "conclusively" } else { "not conclusively" },
            percent(max_error_rate),
            p_value
        ),
    }
}

/// Rule 4: the new version's errors against the old version's.
fn baseline_check(policy: &HealthPolicy, figures: &HealthFigures, test: BaselineTest) -> Check {
    let (new, baseline) = (&figures.new, &figures.baseline);
    if baseline.invocations == 0 {
        return Check {
            signal: Signal::Baseline,
            value: new.error_rate(),
            threshold: 0.0,
            passed: true,
            p_value: None,
            skipped: true,
            message: "the old version served no traffic in this window: nothing to compare with".into(),
        };
    }
    let (p_value, over) = match test {
        BaselineTest::Fisher => {
            (fisher_worse_p_value(new.errors, new.invocations, baseline.errors, baseline.invocations), "")
        }
        BaselineTest::Sequential(evidence) => (evidence.worse_p_value(), " over every look of the rollout"),
    };
    let alpha = 1.0 - policy.baseline_confidence;
    let worse = new.error_rate() > baseline.error_rate() && p_value < alpha;
    Check {
        signal: Signal::Baseline,
        value: new.error_rate(),
        threshold: baseline.error_rate(),
        passed: !worse,
        p_value: Some(p_value),
        skipped: false,
        message: format!(
            "the new version's error rate {} against the old version's {} ({} of {}): p = {:.4}{over}, {} at {}% confidence",
            percent(new.error_rate()),
            percent(baseline.error_rate()),
            baseline.errors,
            baseline.invocations,
            p_value,
            if worse { "significantly worse" } else { "not significantly worse" },
            policy.baseline_confidence * 100.0
        ),
    }
}

/// Rule 5: the new version's p99 against the old version's, or against the old version's before the
/// rollout when it serves nothing (at full traffic).
fn latency_check(max_increase: f64, figures: &HealthFigures) -> Check {
    let before = figures.baseline_before.as_ref().and_then(|b| b.p99_duration_ms);
    let (base_p99, whose) = match (figures.baseline.p99_duration_ms, before) {
        (Some(p99), _) => (Some(p99), "the old version's"),
        (None, Some(p99)) => (Some(p99), "the old version's before the rollout,"),
        (None, None) => (None, ""),
    };
    match (figures.new.p99_duration_ms, base_p99) {
        (Some(new_p99), Some(base_p99)) if base_p99 > 0.0 => {
            let increase = new_p99 / base_p99 - 1.0;
            let passed = increase <= max_increase;
            Check {
                signal: Signal::LatencyP99,
                value: increase,
                threshold: max_increase,
                passed,
                p_value: None,
                skipped: false,
                message: format!(
                    "the new version's p99 duration {new_p99:.1} ms is {:+.1}% against {whose} {base_p99:.1} ms, {} the {:+.1}% allowed",
                    increase * 100.0,
                    if passed { "within" } else { "more than" },
                    max_increase * 100.0
                ),
            }
        }
        _ => Check {
            signal: Signal::LatencyP99,
            value: 0.0,
            threshold: max_increase,
            passed: true,
            p_value: None,
            skipped: true,
            message: "no p99 duration for both versions in this window: latency not compared".into(),
        },
    }
}
