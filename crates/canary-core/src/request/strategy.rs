//! Checking the strategy: exactly one form, each percentage and hold in range, a schedule that reaches 100%
//! within the steps an execution can carry.

use super::json::{RawAllAtOnce, RawCanary, RawLinear, RawStrategy};
use super::validate::required_number;
use super::{MAX_HOLD_SECONDS, MIN_PERCENT_STEP, StepSpec, Strategy};
use crate::refusal::Problems;
use crate::schedule::{MAX_STEPS, PERCENT_TOLERANCE, Schedule};

/// Checks the strategy: exactly one kind, each checked by its own rules. None when it is wrong (a problem
/// was added).
pub(super) fn check_strategy(problems: &mut Problems, raw: Option<RawStrategy>) -> Option<Strategy> {
    let Some(raw) = raw else { return Some(Strategy::default()) };
    match raw {
        RawStrategy { linear: Some(linear), canary: None, steps: None, all_at_once: None } => {
            check_linear(problems, linear)
        }
        RawStrategy { linear: None, canary: Some(canary), steps: None, all_at_once: None } => {
            check_canary(problems, canary)
        }
        RawStrategy { linear: None, canary: None, steps: Some(steps), all_at_once: None } => {
            check_steps(problems, steps)
        }
        RawStrategy { linear: None, canary: None, steps: None, all_at_once: Some(all_at_once) } => {
            check_all_at_once(problems, all_at_once)
        }
        _ => {
            problems.add(
                "strategy",
                "must hold exactly one of linear, canary, steps, all_at_once",
                r#"e.g. {"linear": {"percent": 10, "interval_seconds": 60}}"#,
            );
            None
        }
    }
}

fn check_linear(problems: &mut Problems, linear: RawLinear) -> Option<Strategy> {
    let (percent, interval) =
        percent_and_hold(problems, "linear", "interval_seconds", linear.percent, linear.interval_seconds, true, "60");
    if let Some(percent) = percent.filter(|p| Schedule::linear_step_count(*p) > MAX_STEPS as f64) {
        problems.add(
            "strategy.linear.percent",
            format!("{percent}% per step takes more than {MAX_STEPS} steps to reach 100%"),
            format!(
                "use at least {}% per step; a Step Functions execution's history holds 25,000 events",
                100.0 / MAX_STEPS as f64
            ),
        );
        return None;
    }
    // The last step before 100% is (n - 1) x percent: 33.33333 would hold traffic at 99.99999%, closer to
    // 100% than the finest weight the controller supports.
    let last_held = percent.map(|p| (Schedule::linear_step_count(p) - 1.0) * p);
    if let Some(last) = last_held.filter(|last| *last > 100.0 - MIN_PERCENT_STEP + PERCENT_TOLERANCE) {
        problems.add(
            "strategy.linear.percent",
            format!(
                "its last step before 100% would hold {last}%, closer to 100% than the finest weight ({MIN_PERCENT_STEP} \
                 percentage points)"
            ),
            "use a percent that divides 100 evenly (10, 20, 25) or whose last step stays 0.001 below 100 (33.333)",
        );
        return None;
    }
    Some(Strategy::Linear { percent: percent?, interval_seconds: interval? })
}

fn check_canary(problems: &mut Problems, canary: RawCanary) -> Option<Strategy> {
    let (percent, bake) =
        percent_and_hold(problems, "canary", "bake_seconds", canary.percent, canary.bake_seconds, false, "600");
    Some(Strategy::Canary { percent: percent?, bake_seconds: bake? })
}

/// A strategy's two numbers, `strategy.KIND.percent` and the seconds it holds (`strategy.KIND.HOLD`), each
/// given and in range: each is `None` when it is not, with its problem added.
fn percent_and_hold(
    problems: &mut Problems,
    kind: &str,
    hold: &str,
    percent: Option<f64>,
    seconds: Option<u64>,
    allow_100: bool,
    seconds_example: &str,
) -> (Option<f64>, Option<u64>) {
    let (percent_field, hold_field) = (format!("strategy.{kind}.percent"), format!("strategy.{kind}.{hold}"));
    let percent = required_number(problems, &percent_field, percent, "10")
        .filter(|p| check_percent(problems, &percent_field, *p, allow_100));
    let seconds = required_number(problems, &hold_field, seconds, seconds_example)
        .filter(|s| check_seconds(problems, &hold_field, *s, 1));
    (percent, seconds)
}

fn check_steps(problems: &mut Problems, steps: Vec<StepSpec>) -> Option<Strategy> {
    if steps.is_empty() {
        problems.add("strategy.steps", "is empty", "list at least one step below 100%, or use all_at_once");
        return None;
    }
    if steps.len() >= MAX_STEPS {
        problems.add(
            "strategy.steps",
            format!("{} steps is more than the {} a rollout may take", steps.len(), MAX_STEPS - 1),
            "list fewer steps; a Step Functions execution's history holds 25,000 events",
        );
        return None;
    }
    let mut ok = true;
    for (i, step) in steps.iter().enumerate() {
        ok &= check_percent(problems, &format!("strategy.steps[{i}].percent"), step.percent, false);
        ok &= check_seconds(problems, &format!("strategy.steps[{i}].hold_seconds"), step.hold_seconds, 1);
        if i > 0 && step.percent - steps[i - 1].percent < MIN_PERCENT_STEP - PERCENT_TOLERANCE {
            problems.add(
                format!("strategy.steps[{i}].percent"),
                format!(
                    "{} does not increase on the step before ({}) by at least {MIN_PERCENT_STEP} percentage points",
                    step.percent,
                    steps[i - 1].percent
                ),
                "list the percentages in increasing order, each at least 0.001 above the one before",
            );
            ok = false;
        }
    }
    ok.then_some(Strategy::Steps(steps))
}

fn check_all_at_once(problems: &mut Problems, all_at_once: RawAllAtOnce) -> Option<Strategy> {
    if let Some(bake) = all_at_once.bake_seconds {
        check_seconds(problems, "strategy.all_at_once.bake_seconds", bake, 0).then_some(())?;
    }
    Some(Strategy::AllAtOnce { bake_seconds: all_at_once.bake_seconds })
}

fn check_percent(problems: &mut Problems, field: &str, percent: f64, allow_100: bool) -> bool {
    let below_100 = percent <= 100.0 - MIN_PERCENT_STEP + PERCENT_TOLERANCE;
    let ok = percent.is_finite()
        && percent >= MIN_PERCENT_STEP - PERCENT_TOLERANCE
        && (below_100 || (allow_100 && percent == 100.0));
    if !ok {
        let top = if allow_100 { "100".to_string() } else { format!("{}", 100.0 - MIN_PERCENT_STEP) };
        problems.add(
            field,
            format!("{percent} is out of range"),
            format!("use a percentage from {MIN_PERCENT_STEP} to {top}, in steps of at least {MIN_PERCENT_STEP}"),
        );
    }
    ok
}

pub(super) fn check_seconds(problems: &mut Problems, field: &str, seconds: u64, min: u64) -> bool {
    let ok = (min..=MAX_HOLD_SECONDS).contains(&seconds);
    if !ok {
        problems.add(
            field,
            format!("{seconds} is out of range"),
            format!("use {min} to {MAX_HOLD_SECONDS} seconds (one week)"),
        );
    }
    ok
}
