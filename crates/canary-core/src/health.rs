//! Health verdicts: whether what the rollout has seen so far lets it go on.
//!
//! Every rule on the versions' counts is a sequential test of [`crate::sequential`], over every look of
//! the whole rollout, at the one level `1 - baseline_confidence` (default 0.01): looked at every minute or
//! once per step, a healthy version is rolled back by any one of them at most that often. The rules, in
//! the order they are applied:
//!
//! 1. **Alarms**: a listed CloudWatch alarm that entered ALARM after the rollout started fails the step. One
//!    already in ALARM when the rollout started is reported and does not block (it may be the very
//!    problem the new version fixes).
//! 2. **Error rate** (`max_error_rate`): fails once the new version's error rate is *conclusively* above
//!    the limit, never on a plain ratio of a small window. Intervals in which the old version failed
//!    conclusively above the limit too (a shared outage) are not counted against the new one.
//! 3. **Baseline** (`compare_to_baseline`): fails once the new version is conclusively worse than the old
//!    one over the same intervals. Noise the old version shows too is not evidence, whatever its size.
//! 4. **Latency** (`max_latency_p99_increase`): fails once more than 1% of the new version's calls are
//!    conclusively slower than the old version's p99 before the rollout times 1 + the increase, and (while
//!    the old version serves traffic) conclusively more often than the old version's own calls.
//! 5. **Shared outage**: while both versions fail above the limit, no weight is raised; one that lasts
//!    longer than `max_shared_outage_seconds` fails the step (the new version's traffic may be its cause).
//! 6. **Evidence**: before the promotion, the new version must have served enough invocations over the
//!    rollout for a broken version to have been caught ([`crate::sequential::invocations_to_detect`], and
//!    at least `min_invocations`); otherwise the verdict is inconclusive and `no_data` decides. Conclusive
//!    evidence always decides first, whatever the amount of traffic.

use crate::request::HealthPolicy;
use crate::sequential::{Evidence, SLOW_SHARE};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr};

/// What CloudWatch says about one version over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionFigures {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    /// p99 of `Duration` in milliseconds; absent when the window had no invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_duration_ms: Option<f64>,
    /// Invocations slower than the latency rule's threshold (CloudWatch's `TC(threshold:)` of `Duration`);
    /// absent when latency is not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<u64>,
}

impl VersionFigures {
    /// Errors per invocation; 0 when there were no invocations.
    pub fn error_rate(&self) -> f64 {
        if self.invocations == 0 { 0.0 } else { self.errors as f64 / self.invocations as f64 }
    }
}

/// A CloudWatch alarm's state when it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlarmState {
    pub name: String,
    pub state: AlarmValue,
    pub updated_at: DateTime<Utc>,
}

/// A CloudWatch alarm's state value.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    IntoStaticStr,
    EnumString,
    strum::Display,
    schemars::JsonSchema,
)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthFigures {
    pub new: VersionFigures,
    pub baseline: VersionFigures,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmState>,
}

/// What a check measured, or what failed a rollout. Serialised as its snake_case name (`error_rate`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, IntoStaticStr, strum::Display, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Signal {
    /// A watched CloudWatch alarm.
    Alarm,
    /// The new version's error rate against `max_error_rate`.
    ErrorRate,
    /// The new version's errors against the old version's.
    Baseline,
    /// The new version's calls slower than the old version's p99 before the rollout (with the increase
    /// allowed).
    LatencyP99,
    /// Both versions failing above the limit for longer than `max_shared_outage_seconds`.
    SharedOutage,
    /// Too little traffic to judge.
    Invocations,
    /// A traffic hook failed.
    Hook,
    /// A failure outside health (a task error).
    Error,
    /// Held by an operator's pause for more looks than [`crate::budget::MAX_PAUSED_LOOKS`] allow.
    Paused,
}

impl Signal {
    /// Its name in the report (`error_rate`), as serialised.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One rule applied to one window, with its figures: what was measured, against what, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail(Failure),
    /// Too little traffic to judge before the promotion: `no_data` decides what happens.
    Inconclusive {
        invocations: u64,
        /// The invocations the promotion needs (`min_invocations`, or more for the error bound).
        min_invocations: u64,
    },
    /// Both versions fail above the limit: nothing is raised while it lasts.
    SharedOutage {
        seconds: u64,
        max_seconds: u64,
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

/// When a look happens, which decides what a verdict may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Within a hold: only conclusive evidence decides; otherwise the hold goes on.
    WithinHold,
    /// At the end of a hold that a shift follows.
    EndOfHold,
    /// At the end of the hold the promotion follows (or of the hold at 100%): the evidence must be enough.
    BeforePromotion,
}

/// One look at the evidence.
#[derive(Debug, Clone, Copy)]
pub struct Look<'a> {
    pub policy: &'a HealthPolicy,
    /// The current step's window: its alarms, and its counts for the messages.
    pub figures: &'a HealthFigures,
    /// Everything seen so far, this window included.
    pub evidence: &'a Evidence,
    pub started_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub moment: Moment,
    /// The new version's invocations the promotion needs.
    pub needed: u64,
    /// The latency rule's threshold: the old version's p99 before the rollout times 1 + the increase.
    pub slow_threshold_ms: Option<f64>,
}

/// Judges a look by the policy's rules: the first failed rule fails the step; otherwise a shared outage
/// holds it, too little evidence before the promotion is inconclusive, and anything else passes.
pub fn judge(look: &Look) -> Judgement {
    let policy = look.policy;
    let mut checks = alarm_checks(look.figures, look.started_at);
    checks.extend(policy.max_error_rate.map(|limit| error_rate_check(look, limit)));
    if policy.compare_to_baseline {
        checks.push(baseline_check(look));
    }
    checks.extend(policy.max_latency_p99_increase.map(|increase| latency_check(look, increase)));
    let outage = look.evidence.outage_seconds(look.now);
    checks.extend(outage.map(|seconds| outage_check(policy, seconds)));
    let verdict = if let Some(failure) = checks.iter().find(|c| !c.passed).map(Failure::from) {
        Verdict::Fail(failure)
    } else if let Some(seconds) = outage {
        Verdict::SharedOutage { seconds, max_seconds: policy.max_shared_outage_seconds }
    } else if look.moment == Moment::BeforePromotion && look.evidence.new_total.invocations < look.needed {
        Verdict::Inconclusive { invocations: look.evidence.new_total.invocations, min_invocations: look.needed }
    } else {
        Verdict::Pass
    };
    Judgement { verdict, checks }
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

/// The level every test is held to.
fn alpha(policy: &HealthPolicy) -> f64 {
    1.0 - policy.baseline_confidence
}

fn conclusively(yes: bool) -> &'static str {
    if yes { "conclusively" } else { "not conclusively" }
}

/// Rule 2: conclusively above the limit, shared outages aside.
fn error_rate_check(look: &Look, max_error_rate: f64) -> Check {
    let evidence = look.evidence;
    let total = evidence.new_total;
    let p_value = evidence.above_p_value();
    let above = p_value <= alpha(look.policy);
    let skipped = match evidence.skipped_invocations {
        0 => String::new(),
        n => format!(", {n} of them in shared outages and not counted"),
    };
    Check {
        signal: Signal::ErrorRate,
        value: total.error_rate(),
        threshold: max_error_rate,
        passed: !above,
        p_value: Some(p_value),
        skipped: false,
        message: format!(
            "the new version failed {} of {} invocations so far ({}{skipped}): {} above the {} allowed (p = {:.4})",
            total.errors,
            total.invocations,
            percent(total.error_rate()),
            conclusively(above),
            percent(max_error_rate),
            p_value
        ),
    }
}

/// Rule 3: the new version's errors against the old version's, over the same intervals.
fn baseline_check(look: &Look) -> Check {
    let (new, old) = (&look.figures.new, &look.figures.baseline);
    let p_value = look.evidence.worse_p_value();
    if old.invocations == 0 && p_value >= 1.0 {
        return Check {
            signal: Signal::Baseline,
            value: new.error_rate(),
            threshold: 0.0,
            passed: true,
            p_value: None,
            skipped: true,
            message: "the old version served no traffic in this step: nothing to compare with".into(),
        };
    }
    let worse = p_value <= alpha(look.policy);
    Check {
        signal: Signal::Baseline,
        value: new.error_rate(),
        threshold: old.error_rate(),
        passed: !worse,
        p_value: Some(p_value),
        skipped: false,
        message: format!(
            "the new version's error rate {} against the old version's {} ({} of {}) in this step: {} worse over the \
             rollout (p = {:.4}, {}% confidence)",
            percent(new.error_rate()),
            percent(old.error_rate()),
            old.errors,
            old.invocations,
            conclusively(worse),
            p_value,
            look.policy.baseline_confidence * 100.0
        ),
    }
}

/// Rule 4: the new version's calls slower than the threshold, against 1% and against the old version's.
fn latency_check(look: &Look, max_increase: f64) -> Check {
    let Some(threshold) = look.slow_threshold_ms else {
        return Check {
            signal: Signal::LatencyP99,
            value: 0.0,
            threshold: max_increase,
            passed: true,
            p_value: None,
            skipped: true,
            message: "the old version had no p99 duration in the hour before the rollout: latency not judged".into(),
        };
    };
    let evidence = look.evidence;
    let total = evidence.new_total;
    let share = if total.invocations == 0 { 0.0 } else { total.slow as f64 / total.invocations as f64 };
    let (p_share, p_old) = (evidence.slower_p_value(), evidence.slower_than_old_p_value());
    let slower = p_share <= alpha(look.policy);
    let against_old = if look.figures.baseline.invocations > 0 {
        format!("; more often than the old version's calls: p = {p_old:.4}")
    } else {
        String::new()
    };
    Check {
        signal: Signal::LatencyP99,
        value: share,
        threshold: SLOW_SHARE,
        passed: !slower,
        p_value: Some(p_share),
        skipped: false,
        message: format!(
            "{} of the new version's {} invocations ({}) took longer than {threshold:.1} ms (the old version's p99 \
             before the rollout {:+.0}%): {} more than 1% (p = {p_share:.4}){against_old}",
            total.slow,
            total.invocations,
            percent(share),
            max_increase * 100.0,
            conclusively(slower)
        ),
    }
}

/// Rule 5: an outage both versions share, timed against its bound.
fn outage_check(policy: &HealthPolicy, seconds: u64) -> Check {
    let bound = policy.max_shared_outage_seconds;
    let over = seconds >= bound;
    Check {
        signal: Signal::SharedOutage,
        value: seconds as f64,
        threshold: bound as f64,
        passed: !over,
        p_value: None,
        skipped: false,
        message: if over {
            format!(
                "both versions have failed above the limit for {seconds} s, the {bound} s \
                 health.max_shared_outage_seconds allows: the new version's traffic may be the cause"
            )
        } else {
            format!(
                "both versions fail above the limit (for {seconds} s): not the new version's alone; no weight is \
                 raised while it lasts, up to {bound} s"
            )
        },
    }
}
