use canary_core::request::{HealthPolicy, StepSpec, Strategy, parse_request};
use canary_core::schedule::{MAX_STEPS, Schedule, Step};
use serde_json::json;

fn percents(strategy: Strategy) -> Vec<(f64, u64)> {
    Schedule::from_strategy(&strategy).steps.iter().map(|s| (s.percent, s.hold_seconds)).collect()
}

#[test]
fn each_strategy_gives_its_schedule() {
    let cases: Vec<(Strategy, Vec<(f64, u64)>)> = vec![
        (Strategy::Linear { percent: 30.0, interval_seconds: 5 }, vec![(30.0, 5), (60.0, 5), (90.0, 5), (100.0, 0)]),
        (Strategy::Linear { percent: 50.0, interval_seconds: 5 }, vec![(50.0, 5), (100.0, 0)]),
        (Strategy::Linear { percent: 100.0, interval_seconds: 5 }, vec![(100.0, 0)]),
        (Strategy::Linear { percent: 99.5, interval_seconds: 5 }, vec![(99.5, 5), (100.0, 0)]),
        (Strategy::Canary { percent: 10.0, bake_seconds: 600 }, vec![(10.0, 600), (100.0, 0)]),
        (
            Strategy::Steps(vec![
                StepSpec { percent: 1.0, hold_seconds: 60 },
                StepSpec { percent: 50.0, hold_seconds: 300 },
            ]),
            vec![(1.0, 60), (50.0, 300), (100.0, 0)],
        ),
        (Strategy::AllAtOnce { bake_seconds: None }, vec![(100.0, 0)]),
        (Strategy::AllAtOnce { bake_seconds: Some(120) }, vec![(100.0, 120)]),
    ];
    for (strategy, expected) in cases {
        assert_eq!(percents(strategy.clone()), expected, "{strategy:?}");
    }
}

#[test]
fn the_default_plan_matches_the_documented_example() {
    let schedule = Schedule::from_strategy(&Strategy::default());
    assert_eq!(schedule.len(), 10);
    assert_eq!(schedule.total_hold_seconds(), 540);
    assert!(!schedule.is_empty());
    let health = HealthPolicy { metrics_delay_seconds: 30, ..HealthPolicy::default() };
    assert_eq!(schedule.estimated_seconds(&health), 540 + 9 * 30);
    assert_eq!(schedule.estimated_seconds(&HealthPolicy { enabled: false, ..health }), 540);
    assert_eq!(schedule.step(usize::MAX), Step { percent: 100.0, hold_seconds: 0 });
    assert_eq!(schedule.step(0).weight(), 0.1);
}

/// The sample we replace rounds weights to two decimals: 101 steps repeat a weight and never reach 100%.
/// Here every legacy step count gives strictly increasing weights ending at exactly 100%.
#[test]
fn legacy_step_counts_never_repeat_a_weight() {
    for steps in [1u64, 2, 3, 7, 10, 99, 100, 101, 333, 999, 1000] {
        // Without health checks, so that a thousand steps fit an execution's history (budget.rs).
        let request = parse_request(&json!({"function-name": "f", "alias-name": "a", "new-version": "2",
                                           "steps": steps, "interval": 1, "health-check": false}))
        .unwrap();
        let schedule = request.schedule();
        assert_eq!(schedule.len() as u64, steps, "steps = {steps}");
        assert!(schedule.len() <= MAX_STEPS);
        assert!(schedule.steps.windows(2).all(|w| w[0].percent < w[1].percent), "steps = {steps}");
        assert_eq!(schedule.steps.last().unwrap().percent, 100.0);
        assert!(schedule.steps[..schedule.len() - 1].iter().all(|s| s.percent < 100.0 && !s.is_final()));
        assert!((schedule.steps[0].percent - 100.0 / steps as f64).abs() < 1e-9);
    }
}

#[test]
fn linear_step_counts() {
    for (percent, count) in [(10.0, 10.0), (30.0, 4.0), (100.0 / 3.0, 3.0), (0.1, 1000.0), (100.0, 1.0), (99.99, 2.0)] {
        assert_eq!(Schedule::linear_step_count(percent), count, "{percent}");
    }
}
