//! Looks within a hold (`health.check_interval_seconds`): when they happen, what they may decide, and the
//! sequential tests' error bound over every look of a rollout.

use canary_core::budget::worst_case_events;
use canary_core::health::{HealthFigures, Verdict, VersionFigures};
use canary_core::{LiveFacts, Next, Rollout, parse_request, parse_request_str};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

const EXEC: &str = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-2";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

/// A canary of 10% held 300 s, then 100%, looked at every 60 s with 60 s of metrics delay.
fn health(extra: Value) -> Value {
    let mut health = json!({"check_interval_seconds": 60, "metrics_delay_seconds": 60, "min_invocations": 10,
                            "compare_to_baseline": true, "max_error_rate": 0.2, "baseline_confidence": 0.99});
    for (k, v) in extra.as_object().unwrap() {
        health[k] = v.clone();
    }
    health
}

/// A rollout of `request` prepared at t0 against an alias at version 1.
fn prepared(request: Value) -> Rollout {
    let request = parse_request(&request).unwrap();
    let facts = LiveFacts::healthy("1", canary_core::deployment::Deployment::LOCAL);
    Rollout::prepare(request, facts, EXEC, t0()).unwrap()
}

fn rollout(health: Value) -> Rollout {
    prepared(json!({"function": "orders-api", "alias": "live", "version": "2",
        "strategy": {"canary": {"percent": 10, "bake_seconds": 300}}, "health": health}))
}

fn figures(new: (u64, u64), old: (u64, u64)) -> HealthFigures {
    HealthFigures {
        new: VersionFigures { invocations: new.0, errors: new.1, ..Default::default() },
        baseline: VersionFigures { invocations: old.0, errors: old.1, ..Default::default() },
        ..Default::default()
    }
}

/// Moves to the first step at t0 and returns the rollout waiting for its first look.
fn at_first_step(health: Value) -> Rollout {
    let rollout = rollout(health);
    assert_eq!(rollout.next, Next::Shift);
    rollout.after_move("r1".into(), t0())
}

#[test]
fn the_first_look_comes_one_interval_and_the_metrics_delay_after_the_move() {
    let held = at_first_step(health(json!({})));
    assert_eq!((held.next, held.wait_seconds), (Next::Hold, 120));
    // Looking only at the end of each hold (0), the hold and the delay pass before the only look.
    let once = at_first_step(health(json!({"check_interval_seconds": 0})));
    assert_eq!(once.wait_seconds, 360);
    // Left to the controller: every minute of a 300 s hold.
    assert_eq!(at_first_step(health(json!({"check_interval_seconds": null}))).wait_seconds, 120);
    // An interval longer than the hold is one look, at its end.
    assert_eq!(at_first_step(health(json!({"check_interval_seconds": 900}))).wait_seconds, 360);
}

#[test]
fn a_healthy_step_is_looked_at_every_interval_and_advances_only_when_its_hold_is_over() {
    let mut rollout = at_first_step(health(json!({})));
    let mut now = t0();
    let mut waits = Vec::new();
    for minute in 1..=5u64 {
        now += Duration::seconds(rollout.wait_seconds as i64);
        waits.push(rollout.wait_seconds);
        rollout = rollout.after_check(Some(figures((10 * minute, 0), (90 * minute, 1))), now);
        if minute < 5 {
            assert_eq!(rollout.next, Next::Hold, "look {minute}: held on");
            let record = rollout.history.last().unwrap();
            assert_eq!((record.looks, record.verdict.as_ref()), (minute as u32, None));
            assert_eq!(record.figures.as_ref().unwrap().new.invocations, 10 * minute);
        }
    }
    assert_eq!(waits, [120, 60, 60, 60, 60]);
    assert_eq!(rollout.next, Next::Promote, "{:?}", rollout.history);
    let record = rollout.history.last().unwrap();
    assert_eq!((record.looks, record.verdict.as_ref()), (4, Some(&Verdict::Pass)));
}

#[test]
fn a_late_look_waits_only_for_the_rest_of_the_hold() {
    let rollout = at_first_step(health(json!({})));
    // The third look lands 330 s after the move (a slow Lambda): 30 s of the hold and delay are left.
    let rollout = rollout.after_check(Some(figures((30, 0), (270, 0))), t0() + Duration::seconds(330));
    assert_eq!((rollout.next, rollout.wait_seconds), (Next::Hold, 30));
    // Within a second of the end, the look is the last one.
    let rollout = rollout.after_check(Some(figures((50, 0), (450, 0))), t0() + Duration::milliseconds(359_500));
    assert_eq!(rollout.next, Next::Promote);
}

#[test]
fn a_broken_version_is_rolled_back_at_the_first_look() {
    // 30% of the new version's calls fail against 0.5% of the old one's: conclusive after one minute.
    let rollout = at_first_step(health(json!({})));
    let rollout = rollout.after_check(Some(figures((10, 3), (90, 0))), t0() + Duration::seconds(120));
    assert_eq!(rollout.next, Next::Rollback);
    let failure = rollout.failure.as_ref().unwrap();
    assert_eq!(failure.signal, canary_core::health::Signal::Baseline, "{failure:?}");
    assert!(failure.p_value.unwrap() < 0.01, "{failure:?}");
    assert_eq!(rollout.history.last().unwrap().looks, 1);
}

#[test]
fn the_error_limit_fails_a_look_only_when_conclusively_exceeded() {
    let only_limit = health(json!({"compare_to_baseline": false, "max_error_rate": 0.05}));
    // 1 of 10 is 10%, above 5%, but far from conclusive: held on.
    let rollout = at_first_step(only_limit.clone());
    let rollout = rollout.after_check(Some(figures((10, 1), (90, 0))), t0() + Duration::seconds(120));
    assert_eq!(rollout.next, Next::Hold);
    let check = &rollout.history.last().unwrap().checks[0];
    assert_eq!((check.signal.as_str(), check.passed), ("error_rate", true), "{check:?}");
    // 40 of 100 is conclusive.
    let rollout = at_first_step(only_limit);
    let rollout = rollout.after_check(Some(figures((100, 40), (900, 0))), t0() + Duration::seconds(120));
    assert_eq!(rollout.failure.as_ref().map(|f| f.signal.as_str()), Some("error_rate"));
}

#[test]
fn the_end_of_a_hold_judges_with_the_same_sequential_test_however_often_it_was_looked_at() {
    // 2 of 50 against 0 of 950: Fisher's test on this window alone says p = 0.0025 and would fail it at
    // 99.5%, and a rollout of nine such judgements would multiply its error. The sequential test, whose
    // bound holds over every look of the rollout, says p = 0.01: it passes, looked at once or five times.
    let window = figures((50, 2), (950, 0));
    for interval in [0, 300] {
        let rollout = at_first_step(health(json!({"check_interval_seconds": interval, "baseline_confidence": 0.995})));
        let judged = rollout.after_check(Some(window.clone()), t0() + Duration::seconds(360));
        assert_eq!(judged.next, Next::Promote, "{:?}", judged.history);
        let record = judged.history.last().unwrap();
        let check = record.checks.iter().find(|c| c.signal == canary_core::health::Signal::Baseline).unwrap();
        assert!(check.passed && check.message.contains("over the rollout"), "{check:?}");
        assert!((0.005..0.02).contains(&check.p_value.unwrap()), "{check:?}");
    }
}

#[test]
fn an_alarm_fails_a_look_at_once() {
    let rollout = at_first_step(health(json!({})));
    let mut firing = figures((10, 0), (90, 0));
    firing.alarms = vec![canary_core::AlarmState {
        name: "orders-5xx".into(),
        state: canary_core::AlarmValue::Alarm,
        updated_at: t0() + Duration::seconds(30),
    }];
    let rollout = rollout.after_check(Some(firing), t0() + Duration::seconds(120));
    assert_eq!(rollout.failure.as_ref().map(|f| f.signal.as_str()), Some("alarm"));
}

#[test]
fn looks_are_counted_in_the_history_budget_and_their_interval_is_checked() {
    let base = json!({"function": "f", "alias": "live", "version": "2",
                      "strategy": {"linear": {"percent": 10, "interval_seconds": 600}}});
    let events = |interval: Option<u64>| {
        let mut request = base.clone();
        request["health"] = json!({"check_interval_seconds": interval, "no_data": "fail"});
        worst_case_events(&parse_request(&request).unwrap()).steps
    };
    // 9 held steps of 600 s (one look each, or ten a step at 60 s, as the controller chooses by default),
    // then the unheld move to 100%, and up to 5 more looks through shared outages.
    assert_eq!(events(Some(0)), 9 * (7 + 9) + 7 + 9 * 5);
    assert_eq!(events(Some(60)), 9 * (7 + 9 * 10) + 7 + 9 * 5);
    assert_eq!(events(None), events(Some(60)));
    let mut every_second = base.clone();
    every_second["health"] = json!({"check_interval_seconds": 1});
    let refusal = parse_request(&every_second).unwrap_err();
    assert!(refusal.fields().contains(&"health.check_interval_seconds"), "{refusal}");
    let zero = parse_request_str(
        r#"{"function": "f", "alias": "live", "version": "2",
                                     "health": {"check_interval_seconds": 0}}"#,
    );
    assert_eq!(zero.unwrap().health.check_interval_seconds, Some(0), "0 is once, at the end of each hold");
}

/// A small deterministic generator (SplitMix64), so the simulated runs are the same on every machine.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| self.next_f64() < p).count() as u64
    }
}

/// Runs one rollout with looks every minute over a linear 25% a step, 5 minutes each, with 100 calls a
/// minute split by the weights and each version failing at its rate; returns whether it was rolled back and
/// at which look.
fn simulate(rng: &mut Rng, new_rate: f64, old_rate: f64, confidence: f64) -> Option<u32> {
    let mut rollout = prepared(json!({"function": "orders-api", "alias": "live", "version": "2",
        "strategy": {"linear": {"percent": 25, "interval_seconds": 300}},
        "health": {"check_interval_seconds": 60, "metrics_delay_seconds": 0, "min_invocations": 1,
                   "compare_to_baseline": true, "max_error_rate": 0.5, "baseline_confidence": confidence}}));
    let mut now = t0();
    let mut step_totals = ((0, 0), (0, 0));
    let mut looks = 0;
    loop {
        match rollout.next {
            Next::Shift | Next::Promote => {
                rollout = rollout.after_move("r".into(), now);
                step_totals = ((0, 0), (0, 0));
            }
            Next::Hold => {
                let share = rollout.expected_routing().additional_version_weights.values().sum::<f64>();
                let share = if rollout.expected_routing().function_version == "2" { 1.0 } else { share };
                for _ in 0..rollout.wait_seconds / 60 {
                    let new = rng.binomial(100, share);
                    step_totals.0.0 += new;
                    step_totals.0.1 += rng.binomial(new, new_rate);
                    step_totals.1.0 += 100 - new;
                    step_totals.1.1 += rng.binomial(100 - new, old_rate);
                }
                now += Duration::seconds(rollout.wait_seconds as i64);
                looks += 1;
                rollout = rollout.after_check(Some(figures(step_totals.0, step_totals.1)), now);
            }
            Next::Rollback => return Some(looks),
            Next::Done => return None,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn over_every_look_a_version_as_good_as_the_old_one_is_rarely_rolled_back() {
    // 20 looks a rollout, at 90% confidence: a fixed-horizon test looked at this often would roll back far
    // more than 10% of these runs; the sequential tests keep under the bound.
    let mut rng = Rng(7);
    let runs = 400;
    let rolled_back = (0..runs).filter(|_| simulate(&mut rng, 0.05, 0.05, 0.9).is_some()).count();
    assert!(rolled_back * 10 <= runs, "{rolled_back} of {runs} rolled back");
}

#[test]
fn a_clearly_broken_version_is_caught_at_the_first_look_the_evidence_allows() {
    // 25 calls a minute reach the new version; 30% of them fail, against none of the old version's. A
    // minute of that is about 7 failures of 25 against none of 75: conclusive at 99%, unless chance gave
    // the new version unusually few failures in that minute.
    let mut rng = Rng(11);
    let looks: Vec<u32> = (0..200).map(|_| simulate(&mut rng, 0.3, 0.0, 0.99).unwrap()).collect();
    let at_first = looks.iter().filter(|l| **l == 1).count();
    assert!(at_first >= 180 && looks.iter().all(|l| *l <= 3), "{looks:?}");
}

/// The hour before the rollout: 100 calls a minute, one error each.
fn hour() -> Vec<canary_core::sequential::Counts> {
    vec![canary_core::sequential::Counts { invocations: 100, errors: 1, slow: 0 }; 60]
}

#[test]
fn an_outage_both_versions_share_holds_the_step_and_rolls_back_past_its_bound() {
    // 10% for 300 s looked at every minute, a 5% limit; both versions fail 20% from the fourth minute on.
    let rollout = rollout(health(json!({"max_error_rate": 0.05})))
        .with_traffic_before(&hour(), None)
        .after_move("r1".into(), t0());
    let mut now = t0();
    let mut rollout = rollout;
    let (mut new, mut old) = ((0, 0), (0, 0));
    let mut verdicts = Vec::new();
    for minute in 1..30 {
        if rollout.next != Next::Hold {
            break;
        }
        now += Duration::seconds(rollout.wait_seconds as i64);
        let failing = if minute >= 4 { 2 } else { 0 };
        new = (new.0 + 10, new.1 + failing);
        old = (old.0 + 90, old.1 + failing * 9);
        rollout = rollout.after_check(Some(figures(new, old)), now);
        verdicts.push(rollout.history.last().unwrap().verdict.clone());
    }
    assert_eq!(rollout.next, Next::Rollback, "{:?}", rollout.history);
    let failure = rollout.failure.as_ref().unwrap();
    assert_eq!(failure.signal, canary_core::health::Signal::SharedOutage, "{failure:?}");
    assert!(failure.message.contains("may be the cause"), "{failure:?}");
    // Held at the end of the hold (not raised), then failed once the outage outlasted 300 s.
    assert!(verdicts.iter().any(|v| matches!(v, Some(Verdict::SharedOutage { .. }))), "{verdicts:?}");
    assert_eq!(rollout.history.len(), 1, "no weight was raised during the outage");
}

#[test]
fn held_through_outages_longer_than_the_bound_in_all_rolls_back() {
    // Three held steps looked at once each; every hold ends in a short outage that is over a minute later.
    let request = json!({"function": "orders-api", "alias": "live", "version": "2",
        "strategy": {"linear": {"percent": 25, "interval_seconds": 300}},
        "health": health(json!({"max_error_rate": 0.05, "max_shared_outage_seconds": 120, "check_interval_seconds": 0}))});
    let mut rollout = prepared(request).with_traffic_before(&hour(), None);
    let mut now = t0();
    let mut look = 0;
    let (mut new, mut old) = ((0, 0), (0, 0));
    for _ in 0..20 {
        match rollout.next {
            Next::Shift | Next::Promote => {
                rollout = rollout.after_move("r".into(), now);
                (new, old) = ((0, 0), (0, 0));
                look = 0;
            }
            Next::Hold => {
                now += Duration::seconds(rollout.wait_seconds as i64);
                look += 1;
                // The end of each hold: an outage; the look after it: over.
                let failing = if look == 1 { 20 } else { 0 };
                new = (new.0 + 100, new.1 + failing);
                old = (old.0 + 900, old.1 + failing * 9);
                rollout = rollout.after_check(Some(figures(new, old)), now);
            }
            _ => break,
        }
    }
    assert_eq!(rollout.next, Next::Rollback, "{:?}", rollout.history);
    let failure = rollout.failure.as_ref().unwrap();
    assert!(failure.message.contains("already been held 120 s"), "{failure:?}");
    assert_eq!((rollout.outage_held_seconds, rollout.history.len()), (120, 3));
}

#[test]
fn prepare_knows_what_the_rollout_can_gather_from_the_hour_before() {
    let prepared = rollout(health(json!({})));
    assert_eq!(prepared.outlook(), None, "nothing read yet");
    let three_a_minute = vec![canary_core::sequential::Counts { invocations: 3, errors: 0, slow: 0 }; 60];
    let outlook = prepared.with_traffic_before(&three_a_minute, None).outlook().unwrap();
    assert_eq!((outlook.requests_per_minute, outlook.steps[0].expected_invocations), (3.0, 1.5));
}
