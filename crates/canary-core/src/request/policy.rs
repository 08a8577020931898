//! Checking the health policy: its limits, its alarms and its timings, with the defaults filled in.

use super::json::RawHealth;
use super::strategy::check_seconds;
use super::{HealthPolicy, MAX_ALARMS, MAX_METRICS_DELAY_SECONDS};
use crate::refusal::Problems;

/// Checks the health policy: its limits, its alarms and its timings, every problem reported. None when any is
/// wrong.
pub(super) fn check_health(problems: &mut Problems, raw: RawHealth) -> Option<HealthPolicy> {
    let limit_given = raw.max_error_rate.is_some();
    let policy = health_policy(raw);
    let limits_ok = check_health_limits(problems, &policy, limit_given);
    let alarms_ok = check_alarm_names(problems, &policy.alarms);
    let timings_ok = check_health_timings(problems, &policy);
    (limits_ok && alarms_ok && timings_ok).then_some(policy)
}

/// The policy the request asks for, its defaults filled in.
fn health_policy(raw: RawHealth) -> HealthPolicy {
    let defaults = HealthPolicy::default();
    HealthPolicy {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        max_error_rate: raw.max_error_rate.or(defaults.max_error_rate),
        min_invocations: raw.min_invocations.unwrap_or(defaults.min_invocations),
        compare_to_baseline: raw.compare_to_baseline.unwrap_or(false),
        baseline_confidence: raw.baseline_confidence.unwrap_or(defaults.baseline_confidence),
        max_latency_p99_increase: raw.max_latency_p99_increase,
        alarms: raw.alarms.unwrap_or_default(),
        no_data: raw.no_data.unwrap_or(defaults.no_data),
        no_data_max_wait_seconds: raw.no_data_max_wait_seconds.unwrap_or(defaults.no_data_max_wait_seconds),
        metrics_delay_seconds: raw.metrics_delay_seconds.unwrap_or(defaults.metrics_delay_seconds),
        check_interval_seconds: raw.check_interval_seconds,
    }
}

/// The error-rate limit, the baseline test's confidence and the p99 limit.
fn check_health_limits(problems: &mut Problems, policy: &HealthPolicy, limit_given: bool) -> bool {
    let mut ok = true;
    // The baseline test compares the two versions over the same window; at 100% the old version serves
    // nothing, so the test cannot fail the new one there. Alone, it would promote a version failing every
    // call under all_at_once with a bake: an absolute limit must be given with it, chosen for the service.
    if policy.enabled && policy.compare_to_baseline && !limit_given {
        problems.add(
            "health.max_error_rate",
            "is required with health.compare_to_baseline: once the new version carries all traffic the old one \
             serves nothing to compare with, and the baseline test alone could not fail a version failing every call",
            "give the absolute limit too, above the old version's usual error rate, e.g. 0.05 for 5%",
        );
        ok = false;
    }
    if let Some(rate) = policy.max_error_rate.filter(|r| !(r.is_finite() && (0.0..=1.0).contains(r))) {
        problems.add(
            "health.max_error_rate",
            format!("{rate} is out of range"),
            "use a fraction from 0 to 1, e.g. 0.01 for 1% of invocations",
        );
        ok = false;
    }
    let confidence = policy.baseline_confidence;
    if !(confidence.is_finite() && (0.5..=0.9999).contains(&confidence)) {
        problems.add(
            "health.baseline_confidence",
            format!("{confidence} is out of range"),
            "use a confidence from 0.5 to 0.9999, e.g. 0.99",
        );
        ok = false;
    }
    if let Some(increase) = policy.max_latency_p99_increase.filter(|i| !(i.is_finite() && *i > 0.0 && *i <= 100.0)) {
        problems.add(
            "health.max_latency_p99_increase",
            format!("{increase} is out of range"),
            "use a fraction above 0, e.g. 0.25 to fail a p99 more than 25% above the baseline's",
        );
        ok = false;
    }
    ok
}

/// At most [`MAX_ALARMS`] alarms, each a name, none twice.
fn check_alarm_names(problems: &mut Problems, alarms: &[String]) -> bool {
    let mut ok = true;
    if alarms.len() > MAX_ALARMS {
        problems.add(
            "health.alarms",
            format!("{} alarms is more than the {MAX_ALARMS} a rollout may watch", alarms.len()),
            "watch fewer alarms, or a composite alarm over them",
        );
        ok = false;
    }
    for (i, name) in alarms.iter().enumerate() {
        if name.trim().is_empty() || name.len() > 255 {
            problems.add(
                format!("health.alarms[{i}]"),
                "is not an alarm name",
                "give the alarm's name, 1 to 255 characters",
            );
            ok = false;
        } else if alarms[..i].contains(name) {
            problems.add(format!("health.alarms[{i}]"), format!("\"{name}\" is listed twice"), "list each alarm once");
            ok = false;
        }
    }
    ok
}

/// How long the metrics may lag, how long to wait for data, how often to look within a hold.
fn check_health_timings(problems: &mut Problems, policy: &HealthPolicy) -> bool {
    let mut ok = true;
    if policy.metrics_delay_seconds > MAX_METRICS_DELAY_SECONDS {
        problems.add(
            "health.metrics_delay_seconds",
            format!("{} is out of range", policy.metrics_delay_seconds),
            format!("use 0 to {MAX_METRICS_DELAY_SECONDS} seconds; Lambda metrics usually arrive within 120"),
        );
        ok = false;
    }
    ok &= check_seconds(problems, "health.no_data_max_wait_seconds", policy.no_data_max_wait_seconds, 0);
    if let Some(interval) = policy.check_interval_seconds {
        ok &= check_seconds(problems, "health.check_interval_seconds", interval, 1);
    }
    ok
}
