use canary_core::health::{
    AlarmState, AlarmValue, HealthFigures, Judgement, Verdict, VersionFigures, fisher_worse_p_value, judge,
};
use canary_core::request::HealthPolicy;
use chrono::{DateTime, Duration, TimeZone, Utc};

fn started() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn version(invocations: u64, errors: u64) -> VersionFigures {
    VersionFigures { invocations, errors, ..Default::default() }
}

fn figures(invocations: u64, errors: u64) -> HealthFigures {
    HealthFigures { new: version(invocations, errors), ..Default::default() }
}

fn kind(judgement: &Judgement) -> &'static str {
    match judgement.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "fail",
        Verdict::Inconclusive { .. } => "inconclusive",
    }
}

#[test]
fn error_rate_and_evidence() {
    let policy = |max_error_rate, min_invocations| HealthPolicy {
        max_error_rate: Some(max_error_rate),
        min_invocations,
        ..HealthPolicy::default()
    };
    // (max rate, min invocations, invocations, errors, expected verdict)
    let cases: &[(f64, u64, u64, u64, &str)] = &[
        (0.01, 10, 1000, 0, "pass"),
        (0.01, 10, 1000, 10, "pass"), // exactly at the threshold passes
        (0.01, 10, 1000, 11, "fail"),
        (0.0, 10, 1000, 1, "fail"), // the legacy rule: any error fails
        (0.0, 10, 1000, 0, "pass"),
        (0.01, 10, 0, 0, "inconclusive"), // no traffic is not evidence of health
        (0.01, 10, 9, 0, "inconclusive"),
        (0.5, 10, 4, 4, "inconclusive"), // 4 errors could still be 40% of 10
        (0.5, 10, 6, 6, "fail"),         // 6 errors are over 50% of any 10
        (0.01, 0, 0, 0, "inconclusive"), // even with no minimum, zero invocations judge nothing
        (0.01, 0, 1, 0, "pass"),
        (1.0, 10, 100, 100, "pass"), // a rate of 1 allowed allows everything
    ];
    for &(rate, min, invocations, errors, expected) in cases {
        let judgement = judge(&policy(rate, min), &figures(invocations, errors), started());
        assert_eq!(kind(&judgement), expected, "rate {rate}, min {min}, {errors}/{invocations}");
        let check = &judgement.checks[0];
        assert_eq!((check.signal.as_str(), check.threshold), ("error_rate", rate));
        assert!(check.message.contains(&format!("{errors} of {invocations}")), "{}", check.message);
        if let Verdict::Fail(failure) = &judgement.verdict {
            assert_eq!(
                (failure.signal.as_str(), failure.value),
                ("error_rate", figures(invocations, errors).new.error_rate())
            );
        }
        if let Verdict::Inconclusive { invocations: i, min_invocations } = judgement.verdict {
            assert_eq!((i, min_invocations), (invocations, min));
        }
    }
}

#[test]
fn fisher_p_values() {
    // Reference values from the hypergeometric distribution (scipy.stats.fisher_exact, alternative="greater").
    let cases: &[(u64, u64, u64, u64, f64, f64)] = &[
        (0, 100, 0, 100, 1.0, 1.0),        // no errors anywhere
        (0, 100, 5, 100, 1.0, 1.0),        // the new version has none
        (3, 10, 1, 10, 0.2910, 0.2912),    // tiny samples: not evidence
        (10, 100, 10, 100, 0.5, 0.62),     // identical rates: noise
        (20, 100, 5, 100, 0.0005, 0.0015), // 20% against 5%: significant
        (10, 100, 1, 900, 0.0, 1e-6),      // 10% against 0.1%
        (1, 1, 0, 0, 1.0, 1.0),            // a single invocation, no baseline
        (5, 3, 0, 10, 1.0, 1.0),           // inconsistent figures prove nothing
        (2, 10, 11, 10, 1.0, 1.0),
    ];
    for &(a, n, c, m, low, high) in cases {
        let p = fisher_worse_p_value(a, n, c, m);
        assert!((low..=high).contains(&p), "{a}/{n} against {c}/{m}: p = {p}, expected {low}..={high}");
    }
}

#[test]
fn baseline_comparison() {
    let policy = HealthPolicy {
        compare_to_baseline: true,
        max_error_rate: None,
        min_invocations: 10,
        ..HealthPolicy::default()
    };
    let with_baseline = |new: (u64, u64), base: (u64, u64)| HealthFigures {
        new: version(new.0, new.1),
        baseline: version(base.0, base.1),
        ..Default::default()
    };
    // (new (invocations, errors), baseline (invocations, errors), expected verdict)
    type Counts = (u64, u64);
    let cases: &[(Counts, Counts, &str)] = &[
        ((100, 20), (900, 180), "pass"), // as bad as the old version: not the new version's fault
        ((100, 0), (900, 0), "pass"),    // zero errors in both
        ((100, 20), (900, 9), "fail"),   // 20% against 1%
        ((12, 3), (10, 1), "pass"),      // tiny samples
        ((100, 2), (100, 1), "pass"),    // a little worse, not significantly
        ((100, 5), (0, 0), "pass"),      // no baseline traffic (after promotion): nothing to compare
        ((5, 0), (900, 0), "inconclusive"),
    ];
    for &(new, base, expected) in cases {
        let judgement = judge(&policy, &with_baseline(new, base), started());
        assert_eq!(kind(&judgement), expected, "{new:?} against {base:?}: {:?}", judgement.checks);
        if expected != "inconclusive" {
            let check = judgement.checks.iter().find(|c| c.signal == canary_core::health::Signal::Baseline).unwrap();
            assert_eq!(check.p_value.is_some(), base.0 > 0, "{check:?}");
        }
        if let Verdict::Fail(failure) = &judgement.verdict {
            assert_eq!(failure.signal, canary_core::health::Signal::Baseline);
            assert!(failure.p_value.unwrap() < 0.01 && failure.message.contains("significantly worse"), "{failure:?}");
        }
    }
    // With an explicit limit as well, both rules apply.
    let both = HealthPolicy { max_error_rate: Some(0.1), ..policy };
    assert_eq!(kind(&judge(&both, &with_baseline((100, 20), (900, 180)), started())), "fail");
}

#[test]
fn latency_against_the_baseline() {
    let policy = HealthPolicy { max_latency_p99_increase: Some(0.25), ..HealthPolicy::default() };
    let latency = |new: Option<f64>, base: Option<f64>| HealthFigures {
        new: VersionFigures { p99_duration_ms: new, ..version(100, 0) },
        baseline: VersionFigures { p99_duration_ms: base, ..version(100, 0) },
        ..Default::default()
    };
    let cases: &[(Option<f64>, Option<f64>, &str)] = &[
        (Some(120.0), Some(100.0), "pass"),
        (Some(125.0), Some(100.0), "pass"),
        (Some(126.0), Some(100.0), "fail"),
        (Some(50.0), Some(100.0), "pass"),
        (Some(300.0), None, "pass"), // nothing to compare with: not a failure
        (None, Some(100.0), "pass"),
        (Some(10.0), Some(0.0), "pass"),
    ];
    for &(new, base, expected) in cases {
        let judgement = judge(&policy, &latency(new, base), started());
        assert_eq!(kind(&judgement), expected, "{new:?} against {base:?}");
        let check = judgement.checks.iter().find(|c| c.signal == canary_core::health::Signal::LatencyP99).unwrap();
        assert_eq!(check.threshold, 0.25);
    }
    let Verdict::Fail(failure) = judge(&policy, &latency(Some(200.0), Some(100.0)), started()).verdict else {
        panic!()
    };
    assert!((failure.value - 1.0).abs() < 1e-9 && failure.message.contains("+100.0%"), "{failure:?}");
}

#[test]
fn alarms_that_fire_during_the_rollout_fail_it() {
    let alarm = |name: &str, state: &str, minutes: i64| AlarmState {
        name: name.into(),
        state: AlarmValue::parse(state),
        updated_at: started() + Duration::minutes(minutes),
    };
    let with_alarms = |alarms: Vec<AlarmState>| HealthFigures { new: version(100, 0), alarms, ..Default::default() };
    let policy = HealthPolicy::default();
    // Already firing before the rollout: reported, not blocking (it may be what this version fixes).
    let judgement = judge(&policy, &with_alarms(vec![alarm("5xx", "ALARM", -10), alarm("p99", "OK", 5)]), started());
    assert_eq!(kind(&judgement), "pass");
    assert!(judgement.checks[0].message.contains("already in ALARM") && judgement.checks[0].passed);
    assert!(judgement.checks[1].message.contains("is OK"));
    // Fired after the rollout started: fails, whatever the traffic says.
    let fired = judge(&policy, &with_alarms(vec![alarm("5xx", "ALARM", -10), alarm("p99", "ALARM", 3)]), started());
    let Verdict::Fail(failure) = &fired.verdict else { panic!("{fired:?}") };
    assert_eq!((failure.signal.as_str(), failure.value), ("alarm", 1.0));
    assert!(failure.message.contains("alarm p99 entered ALARM"), "{failure:?}");
    let quiet = HealthFigures { new: version(0, 0), alarms: vec![alarm("p99", "ALARM", 1)], ..Default::default() };
    assert_eq!(kind(&judge(&policy, &quiet, started())), "fail", "an alarm needs no traffic to count");
}

#[test]
fn error_rate_of_no_traffic_is_zero() {
    assert_eq!(VersionFigures::default().error_rate(), 0.0);
    assert_eq!(figures(4, 1).new.error_rate(), 0.25);
}

#[test]
fn signals_keep_their_json_names() {
    use canary_core::health::Signal;
    let all = [
        (Signal::Alarm, "alarm"),
        (Signal::ErrorRate, "error_rate"),
        (Signal::Baseline, "baseline"),
        (Signal::LatencyP99, "latency_p99"),
        (Signal::Invocations, "invocations"),
        (Signal::Hook, "hook"),
        (Signal::Error, "error"),
    ];
    for (signal, name) in all {
        assert_eq!(serde_json::to_value(signal).unwrap(), name);
        assert_eq!((signal.as_str(), signal.to_string()), (name, name.to_string()));
        assert_eq!(serde_json::from_value::<Signal>(name.into()).unwrap(), signal);
    }
}
