//! Schedules: the absolute weights an alias carries during a rollout, in order, each with its hold.

use crate::request::{HealthPolicy, Strategy};
use serde::{Deserialize, Serialize};

/// The most steps a rollout may take, the final 100% included.
///
/// Each step costs 16 Step Functions history events (two task states of five events, a wait and two
/// choices of two); 1,000 steps use 16,000 of an execution's 25,000, leaving room for retries, extensions
/// while waiting for traffic, and the rollback. It also admits the legacy `steps: 1000`.
pub const MAX_STEPS: usize = 1000;

/// The f64 rounding allowed when comparing percentages: weights closer to 100% than this are 100%, two
/// percentages closer than this are the same step, 10.001 - 10 (0.00099999...) is a step of 0.001. Far below
/// the finest step allowed (0.001 percentage points). The one tolerance for percentages.
pub(crate) const PERCENT_TOLERANCE: f64 = 1e-9;

/// Whether two percentages name the same step: equal but for f64 rounding (far below the finest step,
/// 0.001 percentage points).
///
/// ```
/// use canary_core::schedule::same_percent;
/// assert!(same_percent(0.1 + 0.2, 0.3) && !same_percent(30.0, 30.001));
/// ```
pub fn same_percent(a: f64, b: f64) -> bool {
    (a - b).abs() < PERCENT_TOLERANCE
}

/// One step: the new version's share of traffic, in percent, and how long it is held before it is judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Step {
    pub percent: f64,
    pub hold_seconds: u64,
}

impl Step {
    /// The step that leaves the new version with all the traffic.
    pub fn is_final(&self) -> bool {
        self.percent >= 100.0
    }

    /// The weight Lambda's `AdditionalVersionWeights` carries for this step, from 0 to 1.
    pub fn weight(&self) -> f64 {
        self.percent / 100.0
    }
}

/// A whole schedule. It is never empty, strictly increases, and ends with one step at exactly 100%.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub steps: Vec<Step>,
}

impl Schedule {
    /// How many steps `percent` per step takes to reach 100%, the final step included (for example
    /// 30% takes 4: 30, 60, 90, 100). Returned as f64 so that a tiny percent cannot overflow a count.
    ///
    /// ```
    /// use canary_core::schedule::Schedule;
    /// assert_eq!(Schedule::linear_step_count(10.0), 10.0);
    /// assert_eq!(Schedule::linear_step_count(30.0), 4.0);
    /// assert_eq!(Schedule::linear_step_count(100.0 / 3.0), 3.0);
    /// ```
    pub fn linear_step_count(percent: f64) -> f64 {
        (100.0 / percent - PERCENT_TOLERANCE).ceil().max(1.0)
    }

    /// The schedule a (validated) strategy describes.
    ///
    /// ```
    /// use canary_core::{request::Strategy, schedule::Schedule};
    /// let s = Schedule::from_strategy(&Strategy::Linear { percent: 30.0, interval_seconds: 60 });
    /// let percents: Vec<f64> = s.steps.iter().map(|s| s.percent).collect();
    /// assert_eq!(percents, [30.0, 60.0, 90.0, 100.0]);
    /// assert_eq!(s.total_hold_seconds(), 180);
    /// ```
    pub fn from_strategy(strategy: &Strategy) -> Schedule {
        let mut steps = match strategy {
            Strategy::Linear { percent, interval_seconds } => {
                let count = Self::linear_step_count(*percent) as usize;
                // Each weight is k * percent, computed afresh rather than accumulated, so rounding cannot
                // build up and no weight can repeat.
                (1..count).map(|k| Step { percent: k as f64 * percent, hold_seconds: *interval_seconds }).collect()
            }
            Strategy::Canary { percent, bake_seconds } => {
                vec![Step { percent: *percent, hold_seconds: *bake_seconds }]
            }
            Strategy::Steps(list) => {
                list.iter().map(|s| Step { percent: s.percent, hold_seconds: s.hold_seconds }).collect()
            }
            Strategy::AllAtOnce { .. } => Vec::new(),
        };
        let final_hold = match strategy {
            Strategy::AllAtOnce { bake_seconds } => bake_seconds.unwrap_or(0),
            _ => 0,
        };
        steps.push(Step { percent: 100.0, hold_seconds: final_hold });
        Schedule { steps }
    }

    /// Seconds of traffic held at the steps, not counting waits for late metrics.
    pub fn total_hold_seconds(&self) -> u64 {
        self.steps.iter().map(|s| s.hold_seconds).sum()
    }

    /// How long the rollout takes when all goes well: each held step also waits for its metrics to be
    /// complete before it is judged.
    pub fn estimated_seconds(&self, health: &HealthPolicy) -> u64 {
        self.steps
            .iter()
            .filter(|s| s.hold_seconds > 0)
            .map(|s| s.hold_seconds + health.effective_metrics_delay())
            .sum()
    }

    /// The step at `index`; the final step for any index past the end.
    pub fn step(&self, index: usize) -> Step {
        self.steps.get(index).copied().unwrap_or(self.steps[self.steps.len() - 1])
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Always false: a schedule holds at least its final step. Present because clippy expects it beside `len`.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}
