//! Properties of the request checks and schedules, on generated requests: an accepted request's schedule
//! strictly increases, ends at exactly 100%, and fits every Step Functions limit in its worst case; an
//! accepted request with health checks on rolls back a version that fails every call; a refused one names a
//! field and a fix; no input makes parsing panic.

use canary_core::budget::{HISTORY_EVENT_LIMIT, RETRY_RESERVE, durations, worst_case_events};
use canary_core::deployment::Deployment;
use canary_core::health::{HealthFigures, VersionFigures};
use canary_core::request::{MAX_ROLLOUT_SECONDS, MIN_PERCENT_STEP, parse_request_str};
use canary_core::rollout::Decision;
use canary_core::schedule::MAX_STEPS;
use canary_core::{LiveFacts, Next, Rollout};
use canary_core::{Refusal, RolloutRequest, parse_request};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Percentages as people write them, and the awkward ones: tiny, negative, huge, near 100.
fn percent() -> impl Strategy<Value = f64> {
    prop_oneof![
        1.0..100.0f64,
        0.0..1.0f64,
        Just(100.0),
        Just(100.0 / 3.0),
        99.99..100.01f64,
        -10.0..0.0f64,
        100.0..1000.0f64,
        (1u32..=1000).prop_map(|n| 100.0 / n as f64),
    ]
}

fn seconds() -> impl Strategy<Value = u64> {
    prop_oneof![0..10u64, 10..3600u64, Just(604_800u64), Just(604_801u64), 0..2_000_000u64]
}

fn strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        (percent(), seconds()).prop_map(|(p, i)| json!({"linear": {"percent": p, "interval_seconds": i}})),
        (percent(), seconds()).prop_map(|(p, b)| json!({"canary": {"percent": p, "bake_seconds": b}})),
        proptest::collection::vec((percent(), seconds()), 0..40).prop_map(|steps| {
            let steps: Vec<Value> = steps.iter().map(|(p, h)| json!({"percent": p, "hold_seconds": h})).collect();
            json!({"steps": steps})
        }),
        proptest::option::of(seconds()).prop_map(|b| match b {
            Some(b) => json!({"all_at_once": {"bake_seconds": b}}),
            None => json!({"all_at_once": {}}),
        }),
    ]
}

fn health() -> impl Strategy<Value = Value> {
    let on = (
        prop_oneof![Just("wait"), Just("fail"), Just("pass")],
        seconds(),
        proptest::option::of(prop_oneof![-0.5..1.5f64, Just(1.0), Just(0.0), 0.9..1.0f64]),
        any::<bool>(),
        prop_oneof![0..3u64, 1..100u64, 100..100_000u64],
        proptest::option::of(prop_oneof![1..120u64, 120..10_000u64]),
    )
        .prop_map(|(no_data, wait, rate, baseline, min_invocations, interval)| {
            let mut health = json!({"no_data": no_data, "compare_to_baseline": baseline,
                                    "min_invocations": min_invocations, "metrics_delay_seconds": 60});
            if no_data == "wait" {
                health["no_data_max_wait_seconds"] = json!(wait);
            }
            if let Some(rate) = rate {
                health["max_error_rate"] = json!(rate);
            }
            if let Some(interval) = interval {
                health["check_interval_seconds"] = json!(interval);
            }
            health
        });
    prop_oneof![on, Just(json!({"enabled": false}))]
}

fn request() -> impl Strategy<Value = Value> {
    (strategy(), health(), proptest::collection::vec(percent(), 0..5)).prop_map(|(strategy, health, gates)| {
        json!({"function": "orders-api", "alias": "live", "version": "42", "strategy": strategy,
               "health": health, "approval": {"before_percent": gates}})
    })
}

fn check_accepted(request: &RolloutRequest) {
    let schedule = request.schedule();
    assert!(!schedule.steps.is_empty() && schedule.len() <= MAX_STEPS);
    assert_eq!(schedule.steps.last().unwrap().percent, 100.0, "ends at exactly 100%");
    for pair in schedule.steps.windows(2) {
        assert!(pair[1].percent - pair[0].percent >= MIN_PERCENT_STEP - 1e-9, "{pair:?}");
    }
    assert!(schedule.steps[..schedule.len() - 1].iter().all(|s| s.percent < 100.0 && s.percent > 0.0));
    assert!(worst_case_events(request).total() + RETRY_RESERVE <= HISTORY_EVENT_LIMIT);
    assert!(durations(request).worst() <= MAX_ROLLOUT_SECONDS);
    if request.health.enabled {
        assert_eq!(with_every_call_failing(request), Next::Rollback, "promoted a version failing every call");
    }
}

/// Drives the rollout as the state machine does, the new version failing every one of its calls, each
/// judged window holding as many of them as the promotion needs (`Rollout::evidence_needed`, at least 20), the
/// old version 200 calls without an error; every gate approved. Returns where it ended.
fn with_every_call_failing(request: &RolloutRequest) -> Next {
    let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
    let facts = LiveFacts::healthy("41", Deployment::LOCAL);
    let execution = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:property";
    let mut rollout = Rollout::prepare(request.clone(), facts, execution, t0).expect("an accepted request prepares");
    // As many calls as the promotion needs (at most 100,000 in a window).
    let calls = rollout.evidence_needed().max(20);
    let failing = HealthFigures {
        new: VersionFigures { invocations: calls, errors: calls, ..VersionFigures::default() },
        baseline: VersionFigures { invocations: 200, errors: 0, ..VersionFigures::default() },
        ..HealthFigures::default()
    };
    let mut now = t0;
    for _ in 0..100_000 {
        rollout = match rollout.next {
            Next::Shift | Next::Promote => rollout.after_move("r".into(), now),
            Next::Hold => {
                now += Duration::seconds(rollout.wait_seconds as i64);
                rollout.after_check(Some(failing.clone()), now)
            }
            Next::AwaitApproval => rollout.after_approval(Decision::Promote).expect("waiting at a gate"),
            next @ (Next::Rollback | Next::Done) => return next,
            next => unreachable!("no hooks are generated: {next:?}"),
        };
    }
    panic!("the rollout did not end")
}

fn check_refused(refusal: &Refusal) {
    assert!(!refusal.errors.is_empty());
    for error in &refusal.errors {
        assert!(!error.field.is_empty() && !error.problem.is_empty() && !error.fix.is_empty(), "{error:?}");
    }
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![Just("linear"), Just("steps"), Just("percent"), Just("function")].prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("function".to_string()),
            Just("alias".to_string()),
            Just("version".to_string()),
            Just("strategy".to_string()),
            Just("health".to_string()),
            Just("linear".to_string()),
            Just("percent".to_string()),
            Just("steps".to_string()),
            Just("function-name".to_string()),
            ".{0,8}".prop_map(|s| s),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn accepted_requests_are_safe_and_refused_ones_say_why(input in request()) {
        match parse_request(&input) {
            Ok(request) => check_accepted(&request),
            Err(refusal) => check_refused(&refusal),
        }
    }

    #[test]
    fn no_json_makes_parsing_panic(input in any_json()) {
        match parse_request(&input) {
            Ok(request) => check_accepted(&request),
            Err(refusal) => check_refused(&refusal),
        }
    }

    #[test]
    fn no_text_makes_parsing_panic(text in ".{0,200}") {
        if let Err(refusal) = parse_request_str(&text) {
            check_refused(&refusal);
        }
    }
}
