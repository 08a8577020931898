//! Evidence that may be looked at as often as it arrives: the tests behind the checks within a step
//! (`health.check_interval_seconds`).
//!
//! A fixed-horizon test at level α, looked at k times, rejects a good version with a probability near k·α.
//! These tests are test martingales instead: under the null hypothesis their likelihood ratio has
//! expectation 1 whatever was seen before, so by Ville's inequality the chance that it *ever* reaches 1/α,
//! over every look of the whole rollout, is at most α. Each test mixes a few alternatives with equal weights
//! (a mixture SPRT), so that it is quick against a broken version and still sees one a few times worse.
//! Mixing costs at most a factor of the number of alternatives against the best single one; the set was
//! chosen with `cargo xtask bench detection` (docs/detection.md).
//!
//! - **Worse than the old version** (`compare_to_baseline`): given how many calls each version served in
//!   an interval and how many errors there were in all, were both versions equally good, the new version's
//!   share of the errors is hypergeometric. The alternative with odds ratio r is Fisher's noncentral
//!   hypergeometric; its likelihood ratio is `r^x / E0[r^X]`. This holds whatever the error rate is and
//!   however the weights change between intervals.
//! - **Above `max_error_rate`** p0: the new version's errors are binomial; the alternative p1 = m·p0 has the
//!   likelihood ratio `(p1/p0)^x ((1-p1)/(1-p0))^(n-x)`, which has expectation at most 1 for every
//!   rate up to p0, so the bound holds for the whole null hypothesis "at most p0".
//!
//! The p-value reported is `1 / mixture`, capped at 1: it is valid at whatever look it is read.

use crate::health::VersionFigures;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Discrete, Hypergeometric};

/// The odds ratios (new version's errors against the old version's) the baseline test mixes.
pub const ODDS_RATIOS: [f64; 5] = [2.0, 4.0, 10.0, 30.0, 100.0];

/// The multiples of `max_error_rate` the error-rate test mixes.
pub const RATE_MULTIPLES: [f64; 5] = [1.25, 1.5, 2.0, 4.0, 8.0];

/// A log-likelihood ratio beyond doubt: used where one observation settles the matter (an error when none
/// is allowed), instead of an infinity that JSON could not carry through the state machine.
const CONCLUSIVE: f64 = 1_000.0;

/// Invocations and errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub invocations: u64,
    pub errors: u64,
}

/// What the rollout has seen so far, folded into the tests' likelihood ratios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The schedule index of the step whose cumulative counts `new_seen` and `old_seen` are.
    pub step: usize,
    pub new_seen: Counts,
    pub old_seen: Counts,
    /// ln of each alternative's likelihood ratio in the baseline test, over the whole rollout (one per
    /// [`ODDS_RATIOS`]).
    pub worse: Vec<f64>,
    /// ln of each alternative's likelihood ratio in the error-rate test (one per [`RATE_MULTIPLES`]).
    pub above: Vec<f64>,
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence {
            step: 0,
            new_seen: Counts::default(),
            old_seen: Counts::default(),
            worse: vec![0.0; ODDS_RATIOS.len()],
            above: vec![0.0; RATE_MULTIPLES.len()],
        }
    }
}

impl Evidence {
    /// Folds in a look at the cumulative figures of the step at schedule index `step`: only what is new
    /// since the last look counts. Figures that went down (CloudWatch revising a minute) add nothing, and
    /// errors whose invocations have not arrived yet wait for them.
    pub fn observe(&mut self, step: usize, new: &VersionFigures, old: &VersionFigures, max_error_rate: Option<f64>) {
        if step != self.step {
            self.step = step;
            self.new_seen = Counts::default();
            self.old_seen = Counts::default();
        }
        let new = increment(&mut self.new_seen, new);
        let old = increment(&mut self.old_seen, old);
        for (l, r) in self.worse.iter_mut().zip(ODDS_RATIOS) {
            *l += ln_worse_ratio(r, new, old);
        }
        if let Some(p0) = max_error_rate {
            for (l, m) in self.above.iter_mut().zip(RATE_MULTIPLES) {
                *l += ln_above_ratio(p0, m, new);
            }
        }
    }

    /// The always-valid p-value of "the new version is no worse than the old one".
    pub fn worse_p_value(&self) -> f64 {
        mixture_p_value(&self.worse)
    }

    /// The always-valid p-value of "the new version's error rate is at most `max_error_rate`".
    pub fn above_p_value(&self) -> f64 {
        mixture_p_value(&self.above)
    }
}

/// What is new in `now` (cumulative) since `seen`, which then advances to it.
fn increment(seen: &mut Counts, now: &VersionFigures) -> Counts {
    let invocations = now.invocations.saturating_sub(seen.invocations);
    let errors = now.errors.saturating_sub(seen.errors).min(invocations);
    seen.invocations = seen.invocations.max(now.invocations);
    seen.errors += errors;
    Counts { invocations, errors }
}

/// ln of `r^x / E0[r^X]`, X hypergeometric: the new version's share of the interval's errors.
fn ln_worse_ratio(r: f64, new: Counts, old: Counts) -> f64 {
    let errors = new.errors + old.errors;
    if new.invocations == 0 || old.invocations == 0 || errors == 0 {
        return 0.0;
    }
    let population = new.invocations + old.invocations;
    // Consistent counts (errors at most invocations, as `increment` keeps them) always make a distribution.
    let Ok(null) = Hypergeometric::new(population, errors, new.invocations) else { return 0.0 };
    let low = errors.saturating_sub(old.invocations);
    let high = errors.min(new.invocations);
    let ln_r = r.ln();
    let ln_expectation = log_sum_exp((low..=high).map(|y| null.ln_pmf(y) + y as f64 * ln_r));
    new.errors as f64 * ln_r - ln_expectation
}

/// ln of the binomial likelihood ratio of the rate `m·p0` (at most halfway to 1) against `p0`.
fn ln_above_ratio(p0: f64, m: f64, new: Counts) -> f64 {
    let (x, n) = (new.errors as f64, new.invocations as f64);
    if p0 <= 0.0 {
        return if new.errors > 0 { CONCLUSIVE } else { 0.0 };
    }
    if p0 >= 1.0 {
        return 0.0;
    }
    let p1 = (m * p0).min((1.0 + p0) / 2.0);
    x * (p1 / p0).ln() + (n - x) * ((1.0 - p1) / (1.0 - p0)).ln()
}

fn log_sum_exp(terms: impl Iterator<Item = f64>) -> f64 {
    let terms: Vec<f64> = terms.collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

fn mixture_p_value(ln_ratios: &[f64]) -> f64 {
    let ln_mixture = log_sum_exp(ln_ratios.iter().copied()) - (ln_ratios.len() as f64).ln();
    (-ln_mixture).exp().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(invocations: u64, errors: u64) -> VersionFigures {
        VersionFigures { invocations, errors, ..VersionFigures::default() }
    }

    #[test]
    fn nothing_seen_is_no_evidence() {
        let evidence = Evidence::default();
        assert_eq!((evidence.worse_p_value(), evidence.above_p_value()), (1.0, 1.0));
    }

    #[test]
    fn only_what_is_new_counts() {
        let mut once = Evidence::default();
        once.observe(0, &figures(100, 30), &figures(900, 3), Some(0.05));
        let mut twice = once.clone();
        twice.observe(0, &figures(100, 30), &figures(900, 3), Some(0.05));
        assert_eq!(once, twice, "the same cumulative figures seen again add nothing");
        assert!(once.worse_p_value() < 1e-6 && once.above_p_value() < 1e-6, "{once:?}");
    }

    #[test]
    fn a_new_step_starts_its_counts_again_and_keeps_the_evidence() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(100, 10), &figures(100, 1), None);
        let before = evidence.worse_p_value();
        evidence.observe(1, &figures(50, 5), &figures(50, 0), None);
        assert_eq!((evidence.step, evidence.new_seen), (1, Counts { invocations: 50, errors: 5 }));
        assert!(evidence.worse_p_value() < before);
    }

    #[test]
    fn errors_wait_for_their_invocations_and_revisions_down_add_nothing() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(2, 5), &figures(10, 0), Some(0.1));
        assert_eq!(evidence.new_seen, Counts { invocations: 2, errors: 2 });
        evidence.observe(0, &figures(1, 1), &figures(5, 0), Some(0.1));
        assert_eq!(evidence.new_seen, Counts { invocations: 2, errors: 2 });
        evidence.observe(0, &figures(6, 5), &figures(10, 0), Some(0.1));
        assert_eq!(evidence.new_seen, Counts { invocations: 6, errors: 5 });
    }

    #[test]
    fn no_error_allowed_makes_one_error_conclusive() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(10, 0), &figures(10, 0), Some(0.0));
        assert_eq!(evidence.above_p_value(), 1.0);
        evidence.observe(0, &figures(11, 1), &figures(10, 0), Some(0.0));
        assert!(evidence.above_p_value() < 1e-100);
    }

    #[test]
    fn a_limit_of_every_call_is_never_exceeded() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(10, 10), &figures(10, 0), Some(1.0));
        assert_eq!(evidence.above_p_value(), 1.0);
    }

    #[test]
    fn one_side_without_traffic_or_no_errors_at_all_is_no_evidence_of_worse() {
        for (new, old) in [((0, 0), (100, 5)), ((100, 50), (0, 0)), ((100, 0), (100, 0))] {
            let mut evidence = Evidence::default();
            evidence.observe(0, &figures(new.0, new.1), &figures(old.0, old.1), None);
            assert_eq!(evidence.worse_p_value(), 1.0, "{new:?} {old:?}");
        }
    }

    #[test]
    fn as_good_as_the_old_version_is_not_evidence_of_worse() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(1_000, 30), &figures(9_000, 270), Some(0.05));
        assert!(evidence.worse_p_value() > 0.5 && evidence.above_p_value() == 1.0, "{evidence:?}");
    }
}
