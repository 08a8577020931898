//! Health verdicts as tables: each rule on one look at evidence observed from given figures.

use canary_core::health::{
    AlarmState, AlarmValue, HealthFigures, Judgement, Look, Moment, Signal, Verdict, VersionFigures, judge,
};
use canary_core::request::HealthPolicy;
use canary_core::sequential::{Counts, Evidence, Limits};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn started() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn version(invocations: u64, errors: u64) -> VersionFigures {
    VersionFigures { invocations, errors, ..Default::default() }
}

fn both(new: (u64, u64), old: (u64, u64)) -> HealthFigures {
    HealthFigures { new: version(new.0, new.1), baseline: version(old.0, old.1), ..Default::default() }
}

/// An hour before the rollout of the old version: 100 calls a minute, `errors` of them failing each minute.
fn hour_before(errors: u64) -> Evidence {
    Evidence::seeded(&vec![Counts { invocations: 100, errors, slow: 0 }; 60])
}

/// Judges `figures` observed once (a minute in) on top of `evidence`, at `moment`.
fn judged(policy: &HealthPolicy, figures: &HealthFigures, mut evidence: Evidence, moment: Moment) -> Judgement {
    let now = started() + Duration::minutes(1);
    let limits = Limits { max_error_rate: policy.max_error_rate };
    evidence.observe(0, &figures.new, &figures.baseline, limits, now);
    judge(&Look {
        policy,
        figures,
        evidence: &evidence,
        started_at: started(),
        now,
        moment,
        needed: 50,
        slow_threshold_ms: Some(300.0),
    })
}

fn kind(judgement: &Judgement) -> &'static str {
    match judgement.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "fail",
        Verdict::Inconclusive { .. } => "inconclusive",
        Verdict::SharedOutage { .. } => "outage",
    }
}

#[test]
fn the_error_rate_fails_only_when_conclusively_above_the_limit() {
    let policy = |max_error_rate| HealthPolicy { max_error_rate: Some(max_error_rate), ..HealthPolicy::default() };
    // (limit, new (invocations, errors), expected at the end of a hold that a shift follows)
    let cases: &[(f64, (u64, u64), &str)] = &[
        (0.01, (1_000, 0), "pass"),
        (0.01, (1_000, 11), "pass"), // a little above as a ratio: not conclusive
        (0.01, (1_000, 40), "fail"),
        (0.0, (1_000, 1), "fail"), // no error allowed: one decides
        (0.0, (1_000, 0), "pass"),
        (0.05, (3, 1), "pass"), // one error in three calls is not evidence against a 5% limit
        (0.05, (10, 6), "fail"),
        (0.05, (0, 0), "pass"),
    ];
    for &(rate, new, expected) in cases {
        let judgement = judged(&policy(rate), &both(new, (9_000, 9)), hour_before(1), Moment::EndOfHold);
        assert_eq!(kind(&judgement), expected, "limit {rate}, {new:?}: {:?}", judgement.checks);
        let check = &judgement.checks[0];
        assert_eq!((check.signal, check.threshold), (Signal::ErrorRate, rate));
        assert!(check.message.contains(&format!("{} of {}", new.1, new.0)), "{}", check.message);
    }
}

#[test]
fn conclusive_evidence_decides_before_the_evidence_a_promotion_needs() {
    let policy = HealthPolicy { compare_to_baseline: true, max_error_rate: Some(0.5), ..HealthPolicy::default() };
    // 8% against 0.5%, on fewer invocations than the promotion needs: the bug of issue 22 promoted this.
    let worse = judged(&policy, &both((40, 8), (4_000, 20)), hour_before(0), Moment::BeforePromotion);
    let Verdict::Fail(failure) = &worse.verdict else { panic!("{worse:?}") };
    assert_eq!(failure.signal, Signal::Baseline);
    // The same traffic, as good as the old version: not enough to promote yet.
    let fine = judged(&policy, &both((40, 0), (4_000, 20)), hour_before(0), Moment::BeforePromotion);
    assert_eq!(fine.verdict, Verdict::Inconclusive { invocations: 40, min_invocations: 50 });
    // Within a hold, or before a shift, too little evidence is no verdict.
    for moment in [Moment::WithinHold, Moment::EndOfHold] {
        assert_eq!(kind(&judged(&policy, &both((40, 0), (4_000, 20)), hour_before(0), moment)), "pass");
    }
    assert_eq!(kind(&judged(&policy, &both((60, 0), (4_000, 20)), hour_before(0), Moment::BeforePromotion)), "pass");
}

#[test]
fn the_baseline_test_blames_only_what_the_old_version_does_not_show() {
    let policy = HealthPolicy { compare_to_baseline: true, max_error_rate: Some(0.5), ..HealthPolicy::default() };
    type Pair = (u64, u64);
    let cases: &[(Pair, Pair, &str)] = &[
        ((100, 20), (900, 180), "pass"), // as bad as the old version: not the new version's fault
        ((100, 0), (900, 0), "pass"),
        ((100, 20), (900, 9), "fail"), // 20% against 1%
        ((12, 3), (10, 1), "pass"),    // tiny samples
        ((100, 2), (100, 1), "pass"),  // a little worse, not conclusively
    ];
    for &(new, old, expected) in cases {
        let judgement = judged(&policy, &both(new, old), Evidence::default(), Moment::EndOfHold);
        assert_eq!(kind(&judgement), expected, "{new:?} against {old:?}: {:?}", judgement.checks);
        let check = judgement.checks.iter().find(|c| c.signal == Signal::Baseline).unwrap();
        assert!(check.p_value.is_some() && !check.skipped);
    }
    // The old version idle (the new one at 100%) with nothing seen: nothing to compare with.
    let idle = judged(&policy, &both((100, 5), (0, 0)), Evidence::default(), Moment::EndOfHold);
    let check = idle.checks.iter().find(|c| c.signal == Signal::Baseline).unwrap();
    assert!(check.skipped && check.passed && check.p_value.is_none(), "{check:?}");
}

#[test]
fn an_outage_both_versions_share_holds_and_then_fails_at_its_bound() {
    let policy = HealthPolicy { compare_to_baseline: true, max_error_rate: Some(0.05), ..HealthPolicy::default() };
    // Both fail 20%: the new version is not above the limit by its own doing.
    let shared = both((100, 20), (900, 180));
    let judgement = judged(&policy, &shared, hour_before(1), Moment::EndOfHold);
    assert_eq!(judgement.verdict, Verdict::SharedOutage { seconds: 0, max_seconds: 300 });
    let check = judgement.checks.iter().find(|c| c.signal == Signal::SharedOutage).unwrap();
    assert!(check.passed && check.message.contains("no weight is raised"), "{check:?}");
    // Still failing 300 s later: the new version's traffic may be the cause.
    let mut evidence = hour_before(1);
    let limits = Limits { max_error_rate: Some(0.05) };
    evidence.observe(0, &shared.new, &shared.baseline, limits, started());
    let later = started() + Duration::seconds(300);
    let look = Look {
        policy: &policy,
        figures: &shared,
        evidence: &evidence,
        started_at: started(),
        now: later,
        moment: Moment::WithinHold,
        needed: 0,
        slow_threshold_ms: None,
    };
    let Verdict::Fail(failure) = judge(&look).verdict else { panic!() };
    assert_eq!((failure.signal, failure.value, failure.threshold), (Signal::SharedOutage, 300.0, 300.0));
    assert!(failure.message.contains("may be the cause"), "{failure:?}");
    // The new version conclusively worse than the old one within the outage still fails at once.
    let worse = judged(&policy, &both((100, 60), (900, 180)), hour_before(1), Moment::EndOfHold);
    let Verdict::Fail(failure) = &worse.verdict else { panic!("{worse:?}") };
    assert_eq!(failure.signal, Signal::Baseline);
}

#[test]
fn latency_fails_on_more_than_one_percent_of_calls_conclusively_slower() {
    let policy = HealthPolicy { max_latency_p99_increase: Some(0.5), ..HealthPolicy::default() };
    let slow = |new: (u64, u64), old: (u64, u64)| HealthFigures {
        new: VersionFigures { slow: Some(new.1), ..version(new.0, 0) },
        baseline: VersionFigures { slow: Some(old.1), ..version(old.0, 0) },
        ..Default::default()
    };
    type Pair = (u64, u64);
    let cases: &[(Pair, Pair, &str)] = &[
        ((200, 1), (1_800, 5), "pass"),    // within 1%
        ((200, 30), (1_800, 4), "fail"),   // 15% slow, the old version 0.2%
        ((200, 30), (1_800, 270), "pass"), // both as slow: the threshold, not the version
        ((200, 30), (0, 0), "fail"),       // at 100%: against 1% alone
        ((20, 2), (180, 0), "pass"),       // two slow calls of twenty: not conclusive
    ];
    for &(new, old, expected) in cases {
        let judgement = judged(&policy, &slow(new, old), Evidence::default(), Moment::EndOfHold);
        assert_eq!(kind(&judgement), expected, "{new:?} against {old:?}: {:?}", judgement.checks);
        let check = judgement.checks.iter().find(|c| c.signal == Signal::LatencyP99).unwrap();
        assert!(check.message.contains("300.0 ms") && check.threshold == 0.01, "{check:?}");
    }
    // No p99 before the rollout: latency is not judged, and says so.
    let look = Look {
        policy: &policy,
        figures: &slow((200, 30), (0, 0)),
        evidence: &Evidence::default(),
        started_at: started(),
        now: started(),
        moment: Moment::EndOfHold,
        needed: 0,
        slow_threshold_ms: None,
    };
    let judgement = judge(&look);
    let check = judgement.checks.iter().find(|c| c.signal == Signal::LatencyP99).unwrap();
    assert!(check.skipped && check.passed && check.message.contains("not judged"), "{check:?}");
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
    let end = Moment::EndOfHold;
    // Already firing before the rollout: reported, not blocking (it may be what this version fixes).
    let old = with_alarms(vec![alarm("5xx", "ALARM", -10), alarm("p99", "OK", 5)]);
    let judgement = judged(&policy, &old, Evidence::default(), end);
    assert_eq!(kind(&judgement), "pass");
    assert!(judgement.checks[0].message.contains("already in ALARM") && judgement.checks[0].passed);
    assert!(judgement.checks[1].message.contains("is OK"));
    // Fired after the rollout started: fails, whatever the traffic says.
    let fired = with_alarms(vec![alarm("5xx", "ALARM", -10), alarm("p99", "ALARM", 3)]);
    let judgement = judged(&policy, &fired, Evidence::default(), end);
    let Verdict::Fail(failure) = &judgement.verdict else { panic!("{judgement:?}") };
    assert_eq!((failure.signal.as_str(), failure.value), ("alarm", 1.0));
    assert!(failure.message.contains("alarm p99 entered ALARM"), "{failure:?}");
    let quiet = HealthFigures { new: version(0, 0), alarms: vec![alarm("p99", "ALARM", 1)], ..Default::default() };
    assert_eq!(kind(&judged(&policy, &quiet, Evidence::default(), end)), "fail", "an alarm needs no traffic");
}

#[test]
fn error_rate_of_no_traffic_is_zero() {
    assert_eq!(VersionFigures::default().error_rate(), 0.0);
    assert_eq!(version(4, 1).error_rate(), 0.25);
    assert_eq!(Counts::default().error_rate(), 0.0);
}

#[test]
fn signals_keep_their_json_names() {
    let all = [
        (Signal::Alarm, "alarm"),
        (Signal::ErrorRate, "error_rate"),
        (Signal::Baseline, "baseline"),
        (Signal::LatencyP99, "latency_p99"),
        (Signal::SharedOutage, "shared_outage"),
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

#[test]
fn evidence_without_a_limit_or_with_a_limit_of_every_call_judges_nothing_against_it() {
    use canary_core::sequential::Dispersion;
    let now = started();
    // States written before the limit was required carry none: no error-rate test, no outage to tell.
    let mut unlimited = hour_before(1);
    unlimited.observe(0, &version(100, 60), &version(900, 500), Limits { max_error_rate: None }, now);
    assert_eq!((unlimited.above_p_value(), unlimited.outage_since), (1.0, None));
    let mut every_call = hour_before(1);
    every_call.observe(0, &version(100, 100), &version(900, 1), Limits { max_error_rate: Some(1.0) }, now);
    assert_eq!(every_call.above_p_value(), 1.0);
    // Too few calls before the rollout to tell how their errors vary.
    assert_eq!(Dispersion::of_series(&[Counts { invocations: 3, errors: 3, slow: 0 }]), Dispersion::default());
}
