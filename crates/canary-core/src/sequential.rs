//! Evidence that may be looked at as often as it arrives: the tests behind every health verdict on the
//! versions' counts, within a hold and at its end alike.
//!
//! A fixed-horizon test at level α, looked at k times, rejects a good version with a probability near k·α.
//! These tests are test martingales instead: under the null hypothesis their likelihood ratio has
//! expectation 1 whatever was seen before, so by Ville's inequality the chance that it *ever* reaches 1/α,
//! over every look of the whole rollout, is at most α. Each test mixes a few alternatives with equal weights
//! (a mixture SPRT), so that it is quick against a broken version and still sees one a few times worse.
//! Mixing costs at most a factor of the number of alternatives against the best single one; the sets were
//! chosen with `cargo xtask bench detection` (docs/detection.md).
//!
//! - **Worse than the old version** (`compare_to_baseline`): given how many calls each version served in
//!   an interval and how many errors there were in all, were both versions equally good, the new version's
//!   share of the errors is hypergeometric. The alternative with odds ratio r is Fisher's noncentral
//!   hypergeometric; its likelihood ratio is `r^x / E0[r^X]`. This holds whatever the error rate is, however
//!   the weights change between intervals, and through an outage both versions share (it conditions on the
//!   interval's errors).
//! - **Above `max_error_rate`** p0: the new version's errors are binomial; the alternative p1 = m·p0 has the
//!   likelihood ratio `(p1/p0)^x ((1-p1)/(1-p0))^(n-x)`, which has expectation at most 1 for every
//!   rate up to p0, so the bound holds for the whole null hypothesis "at most p0". An interval in which the
//!   old version too failed conclusively above the limit (and above its own usual rate) is a **shared
//!   outage**: it is not evidence against the new version, and this test skips it.
//! - **Slower** (`max_latency_p99_increase`): "the new version's p99 is at most the old version's p99 before
//!   the rollout times 1 + the increase" is "at most 1% of its calls are slower than that threshold", a
//!   binomial test like the one above, on CloudWatch's count of calls above the threshold. An interval in
//!   which the old version's calls are conclusively slower than it too (more than 1%) is a slowness both
//!   share, and is skipped. The slow calls' split between the versions is also tested like the errors
//!   (hypergeometric) and reported.
//!
//! **Errors in bursts.** Real errors come in clumps (a bad container, a retry storm): per-minute counts
//! that vary several times more than binomial. Each likelihood ratio above is then tempered (raised to
//! 1/φ, as a quasi-likelihood is) by the dispersion φ ≥ 1 estimated from the old version's per-interval
//! counts: its Pearson statistic against its own rate, from the hour before the rollout and every interval
//! since (shared outages aside), over its expected errors, with a prior of [`DISPERSION_PRIOR`] expected
//! errors at φ = 1. The estimate only uses intervals already seen (it is predictable), so the tempered
//! ratios stay (approximately) martingales under overdispersed noise. Where it holds and where it does
//! not is measured by the bench.
//!
//! The p-value reported is `1 / mixture`, capped at 1: it is valid at whatever look it is read.

use crate::health::VersionFigures;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, Discrete, DiscreteCDF, Hypergeometric};

/// The odds ratios (new version's errors against the old version's) the baseline test mixes.
pub const ODDS_RATIOS: [f64; 5] = [2.0, 4.0, 10.0, 30.0, 100.0];

/// The multiples of `max_error_rate` the error-rate test mixes.
pub const RATE_MULTIPLES: [f64; 6] = [1.25, 1.5, 2.0, 4.0, 8.0, 16.0];

/// The share of calls a p99 allows above it.
pub const SLOW_SHARE: f64 = 0.01;

/// The multiples of [`SLOW_SHARE`] the latency test mixes.
pub const SLOW_MULTIPLES: [f64; 4] = [2.0, 4.0, 8.0, 16.0];

/// The dispersion estimate's prior: as many expected errors as this, seen at φ = 1.
pub const DISPERSION_PRIOR: f64 = 5.0;

/// How far (in standard deviations, the dispersion included) the old version's errors in an interval
/// must be above the limit for the interval to be a shared outage: one-sided 95%.
pub const OUTAGE_Z: f64 = 1.645;

/// The version a broken one is taken to be when counting the evidence a promotion needs: failing this
/// share of calls, or four times the limit when that is more.
pub const BROKEN_ERROR_RATE: f64 = 0.2;

/// The chance a broken version may still look healthy when the evidence a promotion needs is counted.
pub const MISSED_BROKEN: f64 = 0.01;

/// A log-likelihood ratio beyond doubt: used where one observation settles the matter (an error when none
/// is allowed), instead of an infinity that JSON could not carry through the state machine.
const CONCLUSIVE: f64 = 1_000.0;

/// Old-version invocations seen before its rate is trusted as a reference.
const TRUSTED_INVOCATIONS: u64 = 20;

/// Invocations, errors, and (when latency is judged) calls slower than the threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub invocations: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slow: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Counts {
    /// Errors per invocation; 0 without invocations.
    pub fn error_rate(&self) -> f64 {
        if self.invocations == 0 { 0.0 } else { self.errors as f64 / self.invocations as f64 }
    }

    fn add(&mut self, other: Counts) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.slow += other.slow;
    }
}

/// How much more the old version's error counts vary than binomial counts would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Dispersion {
    /// Pearson's statistic, summed: (x - n·p)² / (1 - p) per interval.
    pub chi2: f64,
    /// Expected errors, summed: n·p per interval.
    pub expected: f64,
}

impl Dispersion {
    /// The estimate φ̂ ≥ 1.
    ///
    /// ```
    /// use canary_core::sequential::Dispersion;
    /// assert_eq!(Dispersion::default().factor(), 1.0);
    /// assert_eq!(Dispersion { chi2: 45.0, expected: 5.0 }.factor(), 5.0);
    /// assert_eq!(Dispersion { chi2: 1.0, expected: 5.0 }.factor(), 1.0); // never below binomial
    /// ```
    pub fn factor(&self) -> f64 {
        ((DISPERSION_PRIOR + self.chi2) / (DISPERSION_PRIOR + self.expected)).max(1.0)
    }

    /// Adds one interval of `counts` at the rate `rate`.
    fn add(&mut self, counts: Counts, rate: f64) {
        let n = counts.invocations as f64;
        let deviation = counts.errors as f64 - n * rate;
        self.chi2 += deviation * deviation / (1.0 - rate).max(f64::EPSILON);
        self.expected += n * rate;
    }

    /// The dispersion of a series of intervals (the old version's minutes before the rollout).
    ///
    /// ```
    /// use canary_core::sequential::{Counts, Dispersion};
    /// let steady: Vec<Counts> = (0..60).map(|_| Counts { invocations: 100, errors: 1, slow: 0 }).collect();
    /// assert_eq!(Dispersion::of_series(&steady).factor(), 1.0);
    /// let bursts: Vec<Counts> = (0..60).map(|m| Counts { invocations: 100, errors: if m % 10 == 0 { 10 } else { 0 }, slow: 0 }).collect();
    /// assert!(Dispersion::of_series(&bursts).factor() > 5.0);
    /// ```
    pub fn of_series(series: &[Counts]) -> Dispersion {
        let mut total = Counts::default();
        series.iter().for_each(|c| total.add(*c));
        let mut dispersion = Dispersion::default();
        if total.invocations >= TRUSTED_INVOCATIONS {
            series.iter().for_each(|c| dispersion.add(*c, total.error_rate()));
        }
        dispersion
    }
}

/// What the tests compare against, from the request and the hour before the rollout.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// `max_error_rate`; `None` leaves the error-rate test out.
    pub max_error_rate: Option<f64>,
}

/// What the rollout has seen so far, folded into the tests' likelihood ratios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The schedule index of the step whose cumulative counts `new_seen` and `old_seen` are.
    pub step: usize,
    pub new_seen: Counts,
    pub old_seen: Counts,
    /// The new version's counts over the whole rollout.
    #[serde(default)]
    pub new_total: Counts,
    /// The old version's counts over the hour before the rollout and the whole rollout, shared outages
    /// aside: its usual rate.
    #[serde(default)]
    pub old_total: Counts,
    /// ln of each alternative's likelihood ratio in the baseline test, over the whole rollout (one per
    /// [`ODDS_RATIOS`]).
    pub worse: Vec<f64>,
    /// ln of each alternative's likelihood ratio in the error-rate test (one per [`RATE_MULTIPLES`]).
    pub above: Vec<f64>,
    /// ln of each alternative's likelihood ratio in the latency test (one per [`SLOW_MULTIPLES`]).
    #[serde(default = "slow_alternatives")]
    pub slower: Vec<f64>,
    /// ln of each alternative's likelihood ratio of the slow calls' split between the versions (one per
    /// [`ODDS_RATIOS`]).
    #[serde(default = "odds_alternatives")]
    pub slower_than_old: Vec<f64>,
    #[serde(default)]
    pub dispersion: Dispersion,
    /// Since when both versions fail above the limit (the interval that began it), when they still do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_since: Option<DateTime<Utc>>,
    /// Invocations of the new version in intervals skipped as shared outages.
    #[serde(default)]
    pub skipped_invocations: u64,
}

fn slow_alternatives() -> Vec<f64> {
    vec![0.0; SLOW_MULTIPLES.len()]
}

fn odds_alternatives() -> Vec<f64> {
    vec![0.0; ODDS_RATIOS.len()]
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence {
            step: 0,
            new_seen: Counts::default(),
            old_seen: Counts::default(),
            new_total: Counts::default(),
            old_total: Counts::default(),
            worse: odds_alternatives(),
            above: vec![0.0; RATE_MULTIPLES.len()],
            slower: slow_alternatives(),
            slower_than_old: odds_alternatives(),
            dispersion: Dispersion::default(),
            outage_since: None,
            skipped_invocations: 0,
        }
    }
}

impl Evidence {
    /// Evidence that starts from the old version's minutes before the rollout: its usual rate and how
    /// much its counts vary.
    pub fn seeded(before: &[Counts]) -> Evidence {
        let mut old_total = Counts::default();
        before.iter().for_each(|c| old_total.add(Counts { slow: 0, ..*c }));
        Evidence { old_total, dispersion: Dispersion::of_series(before), ..Evidence::default() }
    }

    /// Folds in a look, at `now`, at the cumulative figures of the step at schedule index `step`: only
    /// what is new since the last look counts. Figures that went down (CloudWatch revising a minute) add
    /// nothing, and errors whose invocations have not arrived yet wait for them.
    pub fn observe(
        &mut self,
        step: usize,
        new: &VersionFigures,
        old: &VersionFigures,
        limits: Limits,
        now: DateTime<Utc>,
    ) {
        if step != self.step {
            self.step = step;
            self.new_seen = Counts::default();
            self.old_seen = Counts::default();
        }
        let new = increment(&mut self.new_seen, new);
        let old = increment(&mut self.old_seen, old);
        let phi = self.dispersion.factor();
        let outage = self.is_outage(old, limits, phi);
        // Both versions slow beyond the threshold at once: the latency test skips it, as an outage.
        let slow_together = old.slow >= 2 && above_share(old.slow, old.invocations, SLOW_SHARE, 1.0);
        for (l, r) in self.worse.iter_mut().zip(ODDS_RATIOS) {
            *l += ln_worse_ratio(r, new.errors, new, old.errors, old) / phi;
        }
        for (l, r) in self.slower_than_old.iter_mut().zip(ODDS_RATIOS) {
            *l += ln_worse_ratio(r, new.slow, new, old.slow, old);
        }
        if outage {
            self.skipped_invocations += new.invocations;
        } else {
            if let Some(p0) = limits.max_error_rate {
                for (l, m) in self.above.iter_mut().zip(RATE_MULTIPLES) {
                    *l += ln_above_ratio(p0, m, new.errors, new.invocations) / phi;
                }
            }
            if !slow_together {
                for (l, m) in self.slower.iter_mut().zip(SLOW_MULTIPLES) {
                    *l += ln_above_ratio(SLOW_SHARE, m, new.slow, new.invocations);
                }
            }
            if let Some(rate) = self.old_rate() {
                self.dispersion.add(old, rate);
            }
            self.old_total.add(old);
        }
        self.new_total.add(new);
        self.outage_since = match (outage, old.invocations + new.invocations) {
            (true, _) => self.outage_since.or(Some(now)),
            // Nothing new: an outage seen lasts until an interval shows it over.
            (false, 0) => self.outage_since,
            (false, _) => None,
        };
    }

    /// The old version's usual error rate, once it has served enough calls to tell.
    fn old_rate(&self) -> Option<f64> {
        (self.old_total.invocations >= TRUSTED_INVOCATIONS).then(|| self.old_total.error_rate())
    }

    /// Whether the old version's `old` interval failed conclusively above both the limit and its own
    /// usual rate: an outage both versions may share.
    fn is_outage(&self, old: Counts, limits: Limits, phi: f64) -> bool {
        let Some(p0) = limits.max_error_rate else { return false };
        if old.errors < 2 {
            return false;
        }
        let reference = p0.max(self.old_rate().unwrap_or(0.0));
        above_share(old.errors, old.invocations, reference, phi)
    }

    /// How long both versions have been failing above the limit, at `now`; `None` when they are not.
    pub fn outage_seconds(&self, now: DateTime<Utc>) -> Option<u64> {
        self.outage_since.map(|since| (now - since).num_seconds().max(0) as u64)
    }

    /// The always-valid p-value of "the new version is no worse than the old one".
    pub fn worse_p_value(&self) -> f64 {
        mixture_p_value(&self.worse)
    }

    /// The always-valid p-value of "the new version's error rate is at most `max_error_rate`".
    pub fn above_p_value(&self) -> f64 {
        mixture_p_value(&self.above)
    }

    /// The always-valid p-value of "at most 1% of the new version's calls are slower than the threshold".
    pub fn slower_p_value(&self) -> f64 {
        mixture_p_value(&self.slower)
    }

    /// The always-valid p-value of "the new version's calls are no more often slow than the old one's".
    pub fn slower_than_old_p_value(&self) -> f64 {
        mixture_p_value(&self.slower_than_old)
    }
}

/// Whether `x` of `n` calls is above the share `p` by more than [`OUTAGE_Z`] standard deviations (the
/// variance inflated by the dispersion `phi`).
fn above_share(x: u64, n: u64, p: f64, phi: f64) -> bool {
    let n = n as f64;
    x as f64 > n * p + OUTAGE_Z * (phi * n * p * (1.0 - p)).sqrt()
}

/// What is new in `now` (cumulative) since `seen`, which then advances to it.
fn increment(seen: &mut Counts, now: &VersionFigures) -> Counts {
    let invocations = now.invocations.saturating_sub(seen.invocations);
    let errors = now.errors.saturating_sub(seen.errors).min(invocations);
    let slow = now.slow.unwrap_or(0).saturating_sub(seen.slow).min(invocations);
    seen.invocations = seen.invocations.max(now.invocations);
    seen.errors += errors;
    seen.slow += slow;
    Counts { invocations, errors, slow }
}

/// ln of `r^x / E0[r^X]`, X hypergeometric: the new version's share (`new_x` of its `new` calls) of the
/// interval's events (`new_x + old_x`).
fn ln_worse_ratio(r: f64, new_x: u64, new: Counts, old_x: u64, old: Counts) -> f64 {
    let events = new_x + old_x;
    if new.invocations == 0 || old.invocations == 0 || events == 0 {
        return 0.0;
    }
    let population = new.invocations + old.invocations;
    // Consistent counts (events at most invocations, as `increment` keeps them) always make a distribution.
    Hypergeometric::new(population, events, new.invocations).map_or(0.0, |null| {
        let low = events.saturating_sub(old.invocations);
        let high = events.min(new.invocations);
        let ln_r = r.ln();
        let ln_expectation = log_sum_exp((low..=high).map(|y| null.ln_pmf(y) + y as f64 * ln_r));
        new_x as f64 * ln_r - ln_expectation
    })
}

/// ln of the binomial likelihood ratio of the rate `m·p0` (at most halfway to 1) against `p0`, for `x`
/// events in `n` calls.
fn ln_above_ratio(p0: f64, m: f64, x: u64, n: u64) -> f64 {
    if p0 <= 0.0 {
        return if x > 0 { CONCLUSIVE } else { 0.0 };
    }
    if p0 >= 1.0 {
        return 0.0;
    }
    let (x, n) = (x as f64, n as f64);
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

/// The most invocations [`invocations_to_detect`] counts to.
pub const MAX_INVOCATIONS_TO_DETECT: u64 = 100_000;

/// How many invocations of a broken version (failing [`BROKEN_ERROR_RATE`] of its calls, or four times
/// `reference` when that is more) the test of "at most `reference`" needs to be conclusive at level `alpha`
/// in all but [`MISSED_BROKEN`] of rollouts (errors binomial): the evidence a promotion waits for.
///
/// ```
/// use canary_core::sequential::invocations_to_detect;
/// assert_eq!(invocations_to_detect(0.0, 0.01), 21); // no error allowed: one error decides
/// let one_percent = invocations_to_detect(0.01, 0.01);
/// assert!((20..60).contains(&one_percent), "{one_percent}");
/// assert!(invocations_to_detect(0.05, 0.01) > one_percent);
/// ```
pub fn invocations_to_detect(reference: f64, alpha: f64) -> u64 {
    let broken = BROKEN_ERROR_RATE.max(4.0 * reference).min((1.0 + reference) / 2.0);
    let threshold = (1.0 / alpha).ln();
    let enough = |n: u64| {
        // Valid parameters: 0 < broken < 1 for every reference from 0 to below 1.
        let errors = Binomial::new(broken, n).map_or(0, |b| b.inverse_cdf(MISSED_BROKEN));
        let ln_ratios: Vec<f64> = RATE_MULTIPLES.iter().map(|m| ln_above_ratio(reference, *m, errors, n)).collect();
        log_sum_exp(ln_ratios.iter().copied()) - (ln_ratios.len() as f64).ln() >= threshold
    };
    // Doubling, then halving: the evidence grows with n (up to the quantile's steps of one error).
    let mut high = 1;
    while !enough(high) {
        if high >= MAX_INVOCATIONS_TO_DETECT {
            return MAX_INVOCATIONS_TO_DETECT;
        }
        high = (high * 2).min(MAX_INVOCATIONS_TO_DETECT);
    }
    let mut low = high / 2;
    while high - low > 1 {
        let middle = (low + high) / 2;
        if enough(middle) { high = middle } else { low = middle }
    }
    high
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn figures(invocations: u64, errors: u64) -> VersionFigures {
        VersionFigures { invocations, errors, ..VersionFigures::default() }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn limit(p0: f64) -> Limits {
        Limits { max_error_rate: Some(p0) }
    }

    #[test]
    fn nothing_seen_is_no_evidence() {
        let evidence = Evidence::default();
        assert_eq!((evidence.worse_p_value(), evidence.above_p_value()), (1.0, 1.0));
        assert_eq!((evidence.slower_p_value(), evidence.slower_than_old_p_value()), (1.0, 1.0));
    }

    #[test]
    fn only_what_is_new_counts() {
        let mut once = Evidence::default();
        once.observe(0, &figures(100, 30), &figures(900, 3), limit(0.05), now());
        let mut twice = once.clone();
        twice.observe(0, &figures(100, 30), &figures(900, 3), limit(0.05), now());
        assert_eq!(once, twice, "the same cumulative figures seen again add nothing");
        assert!(once.worse_p_value() < 1e-6 && once.above_p_value() < 1e-6, "{once:?}");
    }

    #[test]
    fn a_new_step_starts_its_counts_again_and_keeps_the_evidence() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(100, 10), &figures(100, 1), Limits::default(), now());
        let before = evidence.worse_p_value();
        evidence.observe(1, &figures(50, 5), &figures(50, 0), Limits::default(), now());
        assert_eq!((evidence.step, evidence.new_seen), (1, Counts { invocations: 50, errors: 5, slow: 0 }));
        assert_eq!(evidence.new_total, Counts { invocations: 150, errors: 15, slow: 0 });
        assert!(evidence.worse_p_value() < before);
    }

    #[test]
    fn errors_wait_for_their_invocations_and_revisions_down_add_nothing() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(2, 5), &figures(10, 0), limit(0.1), now());
        assert_eq!(evidence.new_seen, Counts { invocations: 2, errors: 2, slow: 0 });
        evidence.observe(0, &figures(1, 1), &figures(5, 0), limit(0.1), now());
        assert_eq!(evidence.new_seen, Counts { invocations: 2, errors: 2, slow: 0 });
        evidence.observe(0, &figures(6, 5), &figures(10, 0), limit(0.1), now());
        assert_eq!(evidence.new_seen, Counts { invocations: 6, errors: 5, slow: 0 });
    }

    #[test]
    fn no_error_allowed_makes_one_error_conclusive() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(10, 0), &figures(10, 0), limit(0.0), now());
        assert_eq!(evidence.above_p_value(), 1.0);
        evidence.observe(0, &figures(11, 1), &figures(10, 0), limit(0.0), now());
        assert!(evidence.above_p_value() < 1e-100);
    }

    #[test]
    fn a_limit_of_every_call_is_never_exceeded() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(10, 10), &figures(10, 0), limit(1.0), now());
        assert_eq!(evidence.above_p_value(), 1.0);
    }

    #[test]
    fn one_side_without_traffic_or_no_errors_at_all_is_no_evidence_of_worse() {
        for (new, old) in [((0, 0), (100, 5)), ((100, 50), (0, 0)), ((100, 0), (100, 0))] {
            let mut evidence = Evidence::default();
            evidence.observe(0, &figures(new.0, new.1), &figures(old.0, old.1), Limits::default(), now());
            assert_eq!(evidence.worse_p_value(), 1.0, "{new:?} {old:?}");
        }
    }

    #[test]
    fn as_good_as_the_old_version_is_not_evidence_of_worse() {
        let mut evidence = Evidence::default();
        evidence.observe(0, &figures(1_000, 30), &figures(9_000, 270), limit(0.05), now());
        assert!(evidence.worse_p_value() > 0.5 && evidence.above_p_value() == 1.0, "{evidence:?}");
    }

    #[test]
    fn an_outage_both_versions_show_is_not_evidence_above_the_limit_and_is_timed() {
        let before: Vec<Counts> = (0..60).map(|_| Counts { invocations: 100, errors: 1, slow: 0 }).collect();
        let mut evidence = Evidence::seeded(&before);
        evidence.observe(0, &figures(10, 3), &figures(90, 20), limit(0.05), now());
        assert_eq!(evidence.above_p_value(), 1.0, "{evidence:?}");
        assert_eq!(evidence.outage_seconds(now() + Duration::seconds(59)), Some(59));
        assert_eq!(evidence.skipped_invocations, 10);
        // The usual rate is not moved by the outage, and a quiet interval keeps the outage on.
        assert_eq!(evidence.old_total, Counts { invocations: 6_000, errors: 60, slow: 0 });
        evidence.observe(0, &figures(10, 3), &figures(90, 20), limit(0.05), now() + Duration::seconds(60));
        assert!(evidence.outage_since.is_some());
        // Over: the old version is back to normal.
        evidence.observe(0, &figures(20, 3), &figures(180, 21), limit(0.05), now() + Duration::seconds(120));
        assert_eq!(evidence.outage_seconds(now()), None);
        // Without a limit there is no outage to tell.
        let mut no_limit = Evidence::seeded(&before);
        no_limit.observe(0, &figures(10, 3), &figures(90, 20), Limits::default(), now());
        assert_eq!(no_limit.outage_since, None);
    }

    #[test]
    fn the_old_version_failing_more_than_usual_but_within_the_limit_is_no_outage() {
        let mut evidence = Evidence::seeded(&[Counts { invocations: 6_000, errors: 0, slow: 0 }]);
        evidence.observe(0, &figures(10, 0), &figures(90, 3), limit(0.05), now());
        assert_eq!(evidence.outage_since, None);
        // Two errors out of a few calls, when none is allowed and none is usual: an outage.
        let mut strict = Evidence::seeded(&[Counts { invocations: 6_000, errors: 0, slow: 0 }]);
        strict.observe(0, &figures(10, 0), &figures(5, 2), limit(0.0), now());
        assert!(strict.outage_since.is_some());
    }

    #[test]
    fn evidence_written_before_the_latency_and_outage_fields_reads_and_goes_on() {
        // The state of an execution that started on the previous release: its evidence has none of them.
        let written = serde_json::json!({"step": 1, "new_seen": {"invocations": 10, "errors": 1},
            "old_seen": {"invocations": 90, "errors": 0}, "worse": [0.5, 0.4, 0.3, 0.2, 0.1],
            "above": [0.1, 0.1, 0.1, 0.1, 0.1]});
        let mut evidence: Evidence = serde_json::from_value(written).unwrap();
        // Slow calls are written only when latency is judged.
        let counts = |slow| serde_json::to_value(Counts { invocations: 3, errors: 1, slow }).unwrap();
        assert_eq!(counts(0), serde_json::json!({"invocations": 3, "errors": 1}));
        assert_eq!(counts(2)["slow"], 2);
        assert_eq!((evidence.slower.len(), evidence.slower_than_old.len()), (SLOW_MULTIPLES.len(), ODDS_RATIOS.len()));
        assert_eq!(
            (evidence.new_total, evidence.dispersion, evidence.outage_since),
            (Counts::default(), Dispersion::default(), None)
        );
        evidence.observe(1, &figures(20, 1), &figures(180, 0), limit(0.05), now());
        assert_eq!(evidence.new_total.invocations, 10, "only what is new since the last look");
    }

    #[test]
    fn too_few_calls_before_the_rollout_say_nothing_of_dispersion() {
        let few = [Counts { invocations: 5, errors: 5, slow: 0 }, Counts { invocations: 5, errors: 0, slow: 0 }];
        assert_eq!(Dispersion::of_series(&few), Dispersion::default());
        assert_eq!(Evidence::seeded(&few).old_total.invocations, 10);
    }

    #[test]
    fn bursts_of_the_old_version_widen_every_test() {
        let steady: Vec<Counts> = (0..60).map(|_| Counts { invocations: 100, errors: 1, slow: 0 }).collect();
        let bursts: Vec<Counts> =
            (0..60).map(|m| Counts { invocations: 100, errors: if m % 10 == 0 { 10 } else { 0 }, slow: 0 }).collect();
        let (mut calm, mut bursty) = (Evidence::seeded(&steady), Evidence::seeded(&bursts));
        for evidence in [&mut calm, &mut bursty] {
            evidence.observe(0, &figures(100, 8), &figures(900, 9), limit(0.02), now());
        }
        assert!(bursty.dispersion.factor() > 5.0 && calm.dispersion.factor() == 1.0);
        assert!(bursty.worse_p_value() > calm.worse_p_value() && bursty.above_p_value() > calm.above_p_value());
    }

    #[test]
    fn slow_calls_count_against_one_percent_and_against_the_old_versions_share() {
        let slow = |invocations, slow| VersionFigures { invocations, slow: Some(slow), ..VersionFigures::default() };
        let mut evidence = Evidence::default();
        evidence.observe(0, &slow(200, 20), &slow(1_800, 2), limit(0.05), now());
        assert!(evidence.slower_p_value() < 1e-3 && evidence.slower_than_old_p_value() < 1e-3, "{evidence:?}");
        let mut same = Evidence::default();
        same.observe(0, &slow(200, 1), &slow(1_800, 9), limit(0.05), now());
        assert_eq!((same.slower_p_value(), same.new_total.slow), (1.0, 1));
    }

    #[test]
    fn the_evidence_a_promotion_needs_grows_with_the_limit_and_is_bounded() {
        assert!(invocations_to_detect(0.001, 0.01) <= invocations_to_detect(0.05, 0.01));
        assert!(invocations_to_detect(0.05, 0.001) > invocations_to_detect(0.05, 0.01));
        assert_eq!(invocations_to_detect(0.999, 1e-300), MAX_INVOCATIONS_TO_DETECT);
    }
}
