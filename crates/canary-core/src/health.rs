//! Health verdicts: whether the figures of one step's window let the rollout go on.

use crate::request::HealthPolicy;
use serde::{Deserialize, Serialize};

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

/// The figures one health check reads: the new version's, and the version it replaces over the same window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthFigures {
    pub new: VersionFigures,
    pub baseline: VersionFigures,
}

/// The signal that failed a step, with its value and the threshold it crossed, so a rollback explains itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// `error_rate`, `invocations`, or (for failures outside health) `error`.
    pub signal: String,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
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

/// Judges one window's figures by the policy's rules.
///
/// ```
/// use canary_core::health::{judge, HealthFigures, Verdict, VersionFigures};
/// use canary_core::request::HealthPolicy;
/// let policy = HealthPolicy { max_error_rate: 0.05, min_invocations: 20, ..HealthPolicy::default() };
/// let figures = |invocations, errors| HealthFigures {
///     new: VersionFigures { invocations, errors, ..Default::default() },
///     ..Default::default()
/// };
/// assert_eq!(judge(&policy, &figures(100, 5)), Verdict::Pass); // 5% is not above 5%
/// assert!(matches!(judge(&policy, &figures(100, 6)), Verdict::Fail(_)));
/// assert!(matches!(judge(&policy, &figures(3, 0)), Verdict::Inconclusive { .. }));
/// assert!(matches!(judge(&policy, &figures(3, 3)), Verdict::Fail(_))); // too many errors to ever recover
/// ```
pub fn judge(policy: &HealthPolicy, figures: &HealthFigures) -> Verdict {
    let new = &figures.new;
    // Below the minimum, the rate is noise, except when the errors alone already exceed the threshold
    // at the minimum traffic: no run of successes up to the minimum could bring the rate back under it.
    let denominator = new.invocations.max(policy.min_invocations);
    let rate = if denominator == 0 { 0.0 } else { new.errors as f64 / denominator as f64 };
    if rate > policy.max_error_rate {
        return Verdict::Fail(Failure {
            signal: "error_rate".into(),
            value: new.error_rate(),
            threshold: policy.max_error_rate,
            message: format!(
                "the new version failed {} of {} invocations ({:.2}%), more than the {:.2}% allowed",
                new.errors,
                new.invocations,
                new.error_rate() * 100.0,
                policy.max_error_rate * 100.0
            ),
        });
    }
    if new.invocations < policy.min_invocations || new.invocations == 0 {
        return Verdict::Inconclusive { invocations: new.invocations, min_invocations: policy.min_invocations };
    }
    Verdict::Pass
}
