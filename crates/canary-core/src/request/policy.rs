//! Checking the health policy: its limits, its alarms and its timings, with the defaults filled in.

use super::json::RawHealth;
use super::strategy::check_seconds;
use super::{HealthPolicy, MAX_ALARMS, MAX_METRICS_DELAY_SECONDS, NoData};
use crate::refusal::Problems;

/// Checks the health policy: its limits, its alarms and its timings, every problem reported. None when any is
/// wrong.
pub(super) fn check_health(problems: &mut Problems, raw: RawHealth) -> Option<HealthPolicy> {
    let limit_given = raw.max_error_rate.is_some();
    let ignored_ok = check_nothing_ignored(problems, &raw);
    let policy = health_policy(raw);
    let limits_ok = check_health_limits(problems, &policy, limit_given);
    let alarms_ok = check_alarm_names(problems, &policy.alarms);
    let timings_ok = check_health_timings(problems, &policy);
    (ignored_ok && limits_ok && alarms_ok && timings_ok).then_some(policy)
}

/// A field given that nothing would read is refused, not dropped: with health checks off, every other health
/// field; with `no_data` other than `wait`, how long to wait.
fn check_nothing_ignored(problems: &mut Problems, raw: &RawHealth) -> bool {
    let mut ok = true;
    if raw.enabled == Some(false) {
        let given = [
            ("max_error_rate", raw.max_error_rate.is_some()),
            ("min_invocations", raw.min_invocations.is_some()),
            ("no_data", raw.no_data.is_some()),
            ("no_data_max_wait_seconds", raw.no_data_max_wait_seconds.is_some()),
            ("compare_to_baseline", raw.compare_to_baseline.is_some()),
            ("baseline_confidence", raw.baseline_confidence.is_some()),
            ("max_latency_p99_increase", raw.max_latency_p99_increase.is_some()),
            ("alarms", raw.alarms.is_some()),
            ("metrics_delay_seconds", raw.metrics_delay_seconds.is_some()),
            ("check_interval_seconds", raw.check_interval_seconds.is_some()),
            ("max_shared_outage_seconds", raw.max_shared_outage_seconds.is_some()),
        ];
        for (field, _) in given.iter().filter(|(_, given)| *given) {
            problems.add(
                format!("health.{field}"),
                "is ignored: health.enabled is false, so no health check runs",
                "remove it, or turn the health checks on (leave health.enabled out)",
            );
            ok = false;
        }
    }
    if raw.no_data_max_wait_seconds.is_some() && raw.no_data.is_some_and(|n| n != NoData::Wait) {
        problems.add(
            "health.no_data_max_wait_seconds",
            "is ignored: only health.no_data \"wait\" waits for traffic",
            "remove it, or set health.no_data to \"wait\"",
        );
        ok = false;
    }
    ok
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
        max_shared_outage_seconds: raw.max_shared_outage_seconds.unwrap_or(defaults.max_shared_outage_seconds),
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
    if let Some(rate) = policy.max_error_rate.filter(|r| !(r.is_finite() && (0.0..1.0).contains(r))) {
        problems.add(
            "health.max_error_rate",
            format!("{rate} is out of range: a version failing every call is not above a limit of 1 or more"),
            "use a fraction from 0 to below 1, e.g. 0.01 for 1% of invocations",
        );
        ok = false;
    }
    if policy.min_invocations == 0 {
        problems.add(
            "health.min_invocations",
            "0 would count a window with no invocations as evidence of health",
            "use at least 1 (the default is 10)",
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

/// At most [`MAX_ALARMS`] alarms, each a name as CloudWatch takes it (1 to 255 characters, no control
/// characters), none twice.
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
        if name.trim().is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
            let shown: String = name.chars().take(60).collect();
            let cut = if shown.len() < name.len() { "..." } else { "" };
            problems.add(
                format!("health.alarms[{i}]"),
                format!("{shown:?}{cut} is not a CloudWatch alarm name"),
                "give the alarm's name: 1 to 255 characters, none of them a control character (a newline, a tab)",
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
    // 0 looks at each step once, at the end of its hold.
    if let Some(interval) = policy.check_interval_seconds {
        ok &= check_seconds(problems, "health.check_interval_seconds", interval, 0);
    }
    ok &= check_seconds(problems, "health.max_shared_outage_seconds", policy.max_shared_outage_seconds, 0);
    ok
}
