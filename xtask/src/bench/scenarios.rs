//! The traffic of `cargo xtask bench detection`: the scenarios (rates, bursts, shared outages, ramps, tails)
//! and one run's minutes of requests, seeded and reproducible.

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use rand_distr::{Binomial, Distribution, Gamma, LogNormal, Poisson};

/// Traffic before the rollout is simulated too: the hour `Prepare` reads, and its metrics delay.
pub(crate) const WARMUP_MINUTES: i64 = 64;

/// How many requests a minute a run serves.
#[derive(Clone, Copy)]
pub(crate) enum Rate {
    Fixed(f64),
    /// Drawn uniformly for each run.
    PerRun(f64, f64),
    /// From the first to the second over the given minutes after the first traffic moved, then steady.
    Ramp(f64, f64, i64),
}

/// Errors in bursts: each minute's error probability multiplied by a Gamma(k, 1/k) draw (mean 1), k chosen
/// so that the old version's per-minute error counts at full traffic vary this many times more than
/// binomial ones.
#[derive(Clone, Copy)]
pub(crate) enum Bursts {
    None,
    /// Each version draws its own bursts.
    PerVersion(f64),
    /// Both versions share each minute's draw (a retry storm, a shared dependency).
    Shared(f64),
}

/// A downstream outage both versions see: from `start` (minutes after the first traffic moved) for
/// `minutes`, every call fails at least at `rate`.
#[derive(Clone, Copy)]
pub(crate) struct Outage {
    pub(crate) start: i64,
    pub(crate) minutes: i64,
    pub(crate) rate: f64,
}

/// Which request ours runs.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Plan {
    /// 10% for 5 minutes, 50% for 10, then all.
    Standard,
    /// Linear, 10% every 10 minutes.
    LongLinear,
}

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) rate: Rate,
    pub(crate) old_error_rate: f64,
    pub(crate) new_error_rate: f64,
    /// The new version's durations against the old version's (2.0 doubles its p99).
    pub(crate) new_latency_factor: f64,
    /// The new version's log-normal sigma (the old version's is 0.3): a heavier tail.
    pub(crate) new_latency_sigma: f64,
    pub(crate) bursts: Bursts,
    pub(crate) outage: Option<Outage>,
    /// While the new version serves any traffic (from its second minute), every call of both versions
    /// fails at least at this rate: its traffic overloads something both share.
    pub(crate) overload: Option<f64>,
    pub(crate) plan: Plan,
    /// The request's `max_error_rate`.
    pub(crate) limit: f64,
    /// Whether the new version deserves promotion: its rollbacks are false ones.
    pub(crate) healthy: bool,
    /// Whether the anchors (seed, CodeDeploy) run it too.
    pub(crate) anchors: bool,
}

pub(crate) const BASE: Scenario = Scenario {
    name: "",
    rate: Rate::Fixed(100.0),
    old_error_rate: 0.005,
    new_error_rate: 0.005,
    new_latency_factor: 1.0,
    new_latency_sigma: SIGMA,
    bursts: Bursts::None,
    outage: None,
    overload: None,
    plan: Plan::Standard,
    limit: 0.05,
    healthy: true,
    anchors: false,
};

/// The old version's log-normal sigma: a p99 near twice the median.
pub(crate) const SIGMA: f64 = 0.3;

pub(crate) const SCENARIOS: [Scenario; 27] = [
    // The steady, independent traffic every policy runs on (the chart).
    Scenario { name: "healthy", anchors: true, ..BASE },
    Scenario { name: "slightly worse (1%)", new_error_rate: 0.01, healthy: false, anchors: true, ..BASE },
    Scenario { name: "bad (5%)", new_error_rate: 0.05, healthy: false, anchors: true, ..BASE },
    Scenario { name: "broken (20%)", new_error_rate: 0.2, healthy: false, anchors: true, ..BASE },
    Scenario {
        name: "broken, 5 req/min",
        rate: Rate::Fixed(5.0),
        new_error_rate: 0.2,
        healthy: false,
        anchors: true,
        ..BASE
    },
    Scenario { name: "latency p99 x2", new_latency_factor: 2.0, healthy: false, anchors: true, ..BASE },
    Scenario { name: "noisy baseline (3% both)", old_error_rate: 0.03, new_error_rate: 0.03, anchors: true, ..BASE },
    // Traffic closer to production (issue 22).
    Scenario {
        name: "shared outage: both fail 20% for 3 min",
        outage: Some(Outage { start: 7, minutes: 3, rate: 0.2 }),
        ..BASE
    },
    Scenario { name: "bursts 2x, per version", bursts: Bursts::PerVersion(2.0), ..BASE },
    Scenario { name: "bursts 5x, per version", bursts: Bursts::PerVersion(5.0), ..BASE },
    Scenario { name: "bursts 10x, per version", bursts: Bursts::PerVersion(10.0), ..BASE },
    Scenario { name: "bursts 2x, shared", bursts: Bursts::Shared(2.0), ..BASE },
    Scenario { name: "bursts 5x, shared", bursts: Bursts::Shared(5.0), ..BASE },
    Scenario { name: "bursts 10x, shared", bursts: Bursts::Shared(10.0), ..BASE },
    Scenario {
        name: "broken (20%), bursts 10x per version",
        new_error_rate: 0.2,
        bursts: Bursts::PerVersion(10.0),
        healthy: false,
        ..BASE
    },
    Scenario { name: "healthy, 1-5 req/min", rate: Rate::PerRun(1.0, 5.0), ..BASE },
    Scenario {
        name: "broken (20%), 1-5 req/min",
        rate: Rate::PerRun(1.0, 5.0),
        new_error_rate: 0.2,
        healthy: false,
        ..BASE
    },
    Scenario { name: "healthy, 1-5 req/min, 1% limit", rate: Rate::PerRun(1.0, 5.0), limit: 0.01, ..BASE },
    Scenario {
        name: "broken (20%), 1-5 req/min, 1% limit",
        rate: Rate::PerRun(1.0, 5.0),
        new_error_rate: 0.2,
        limit: 0.01,
        healthy: false,
        ..BASE
    },
    Scenario { name: "broken (20%), 20 req/min", rate: Rate::Fixed(20.0), new_error_rate: 0.2, healthy: false, ..BASE },
    Scenario { name: "healthy, ramp 20 to 200 req/min", rate: Rate::Ramp(20.0, 200.0, 20), ..BASE },
    Scenario { name: "healthy, linear 10% every 10 min", plan: Plan::LongLinear, ..BASE },
    Scenario { name: "1.5x worse (0.75%)", new_error_rate: 0.0075, healthy: false, ..BASE },
    Scenario { name: "latency, same versions, 10 req/min", rate: Rate::Fixed(10.0), ..BASE },
    Scenario {
        name: "latency, same p99 heavier tail, 10 req/min",
        rate: Rate::Fixed(10.0),
        // Sigma 0.4 with the median lowered to keep the p99: exp(2.326 * 0.3) = m * exp(2.326 * 0.4).
        new_latency_factor: 0.792,
        new_latency_sigma: 0.4,
        ..BASE
    },
    Scenario {
        name: "latency p99 x2, 10 req/min",
        rate: Rate::Fixed(10.0),
        new_latency_factor: 2.0,
        healthy: false,
        ..BASE
    },
    Scenario { name: "overload: its traffic fails both (20%)", overload: Some(0.2), healthy: false, ..BASE },
];

/// One minute of one version's traffic.
#[derive(Clone, Default)]
pub(crate) struct Minute {
    pub(crate) invocations: u64,
    pub(crate) errors: u64,
    pub(crate) durations: Vec<f64>,
}

/// The traffic of one run, generated minute by minute as the policy sets the weights.
pub(crate) struct Traffic<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) rng: StdRng,
    /// Indexed by minute + WARMUP_MINUTES: (new, old).
    pub(crate) minutes: Vec<(Minute, Minute)>,
    /// This run's requests a minute, for [`Rate::PerRun`].
    pub(crate) per_run: f64,
    /// The minute the new version first served traffic.
    pub(crate) first_traffic: Option<i64>,
}

impl<'a> Traffic<'a> {
    pub(crate) fn new(scenario: &'a Scenario, seed: u64) -> Traffic<'a> {
        let mut rng = StdRng::seed_from_u64(seed);
        let per_run = match scenario.rate {
            Rate::PerRun(low, high) => low + (high - low) * rng.random::<f64>(),
            Rate::Fixed(rate) | Rate::Ramp(rate, _, _) => rate,
        };
        let mut traffic = Traffic { scenario, rng, minutes: Vec::new(), per_run, first_traffic: None };
        for _ in 0..WARMUP_MINUTES {
            traffic.serve(0.0);
        }
        traffic
    }

    pub(crate) fn requests_per_minute(&self, minute: i64) -> f64 {
        match self.scenario.rate {
            Rate::Ramp(from, to, over) => from + (to - from) * (minute.max(0) as f64 / over as f64).min(1.0),
            _ => self.per_run,
        }
    }

    /// The burst multiplier of one minute for a version failing at `rate` (1 without bursts).
    pub(crate) fn burst(&mut self, factor: f64, rate: f64) -> f64 {
        if factor <= 1.0 || rate <= 0.0 {
            return 1.0;
        }
        // Var = n p + (n p)^2 / k for the full traffic's n: k = n p / (factor - 1).
        let k = (self.per_run * rate / (factor - 1.0)).max(1e-3);
        Gamma::new(k, 1.0 / k).expect("valid gamma").sample(&mut self.rng)
    }

    /// Serves the next minute with the new version taking `share` of the requests.
    pub(crate) fn serve(&mut self, share: f64) {
        let now = self.now();
        let scenario = self.scenario;
        if share > 0.0 && self.first_traffic.is_none() {
            self.first_traffic = Some(now);
        }
        let arrivals =
            Poisson::new(self.requests_per_minute(now).max(1e-9)).expect("rate").sample(&mut self.rng) as u64;
        let new = binomial(&mut self.rng, arrivals, share);
        let (mut new_rate, mut old_rate) = (scenario.new_error_rate, scenario.old_error_rate);
        match scenario.bursts {
            Bursts::None => {}
            Bursts::PerVersion(factor) => {
                new_rate *= self.burst(factor, scenario.new_error_rate);
                old_rate *= self.burst(factor, scenario.old_error_rate);
            }
            Bursts::Shared(factor) => {
                let burst = self.burst(factor, scenario.old_error_rate);
                new_rate *= burst;
                old_rate *= burst;
            }
        }
        let mut floor = 0.0;
        if let Some(outage) = scenario.outage.filter(|o| (o.start..o.start + o.minutes).contains(&now)) {
            floor = outage.rate;
        }
        if let (Some(rate), Some(first)) = (scenario.overload, self.first_traffic)
            && share > 0.0
            && now > first
        {
            floor = f64::max(floor, rate);
        }
        let (new_rate, old_rate) = (new_rate.max(floor).min(1.0), old_rate.max(floor).min(1.0));
        let new_durations = LogNormal::new((100.0 * scenario.new_latency_factor).ln(), scenario.new_latency_sigma);
        let old_durations = LogNormal::new(100f64.ln(), SIGMA);
        let minute = |n: u64, rate: f64, durations: LogNormal<f64>, rng: &mut StdRng| Minute {
            invocations: n,
            errors: binomial(rng, n, rate),
            durations: (0..n).map(|_| durations.sample(rng)).collect(),
        };
        let new_minute = minute(new, new_rate, new_durations.expect("log-normal"), &mut self.rng);
        let old_minute = minute(arrivals - new, old_rate, old_durations.expect("log-normal"), &mut self.rng);
        self.minutes.push((new_minute, old_minute));
    }

    /// The minute about to be served, counted from the first traffic moved (0).
    pub(crate) fn now(&self) -> i64 {
        self.minutes.len() as i64 - WARMUP_MINUTES
    }

    pub(crate) fn minute(&self, minute: i64) -> &(Minute, Minute) {
        &self.minutes[(minute + WARMUP_MINUTES) as usize]
    }

    /// The new version's failures from the first traffic until `end` (exclusive).
    pub(crate) fn failures_until(&self, end: i64) -> u64 {
        (0..end).map(|m| self.minute(m).0.errors).sum()
    }
}

pub(crate) fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).expect("valid binomial").sample(rng)
}

pub(crate) fn p99(mut durations: Vec<f64>) -> Option<f64> {
    if durations.is_empty() {
        return None;
    }
    durations.sort_by(f64::total_cmp);
    let rank = ((durations.len() as f64) * 0.99).ceil() as usize;
    Some(durations[rank.clamp(1, durations.len()) - 1])
}
