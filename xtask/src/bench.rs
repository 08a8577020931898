//! `cargo xtask bench detection`: how fast each rollout policy rolls a bad version back, how many failed
//! requests the bad version serves first (the blast radius), and how often it rolls a good one back.
//!
//! Synthetic traffic, seeded and reproducible: Poisson arrivals each minute, split by the alias's weights,
//! each request failing with its version's error probability and taking a log-normal duration. CloudWatch
//! is modelled as one-minute buckets that become readable a metrics delay after the minute ends. Every
//! policy sees the same runs (run i of a scenario uses the same seed under every policy).
//!
//! Ours is the core's real decision code, driven as the state machine drives it (`Rollout::after_move`,
//! `after_check`, with the windows `health_window` asks for). The anchors (the seed's
//! rule and CodeDeploy's alarm, docs/detection.md) are modelled from their public docs and code, and generously: they see complete data after the same metrics delay.

use canary_core::health::{HealthFigures, VersionFigures};
use canary_core::{AliasState, LiveFacts, Next, Rollout, Routing, parse_request};
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use serde_json::json;
use std::fmt::Write as _;

/// Runs per policy and scenario.
const RUNS: u64 = 1_000;
/// How long a run is followed after the first traffic moved: a bad version never rolled back serves its
/// failures until then.
const HORIZON_MINUTES: i64 = 30;
/// CloudWatch's delay: a minute's bucket is complete this many minutes after it ends (Lambda metrics
/// typically arrive about 2 minutes late).
const DELAY_MINUTES: i64 = 2;
/// Traffic before the rollout is simulated too, so that an alarm on the whole alias reads real buckets.
const WARMUP_MINUTES: i64 = 5;
/// The error bounds the SPRT floor is computed for: ours rolls a good version back with probability at
/// most 1 - baseline_confidence (0.99), and aims to catch a bad one 99 times in 100.
const ALPHA: f64 = 0.01;
const BETA: f64 = 0.01;

struct Scenario {
    name: &'static str,
    requests_per_minute: f64,
    old_error_rate: f64,
    new_error_rate: f64,
    /// The new version's durations against the old version's (2.0 doubles its p99).
    new_latency_factor: f64,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario {
        name: "healthy",
        requests_per_minute: 100.0,
        old_error_rate: 0.005,
        new_error_rate: 0.005,
        new_latency_factor: 1.0,
    },
    Scenario {
        name: "slightly worse",
        requests_per_minute: 100.0,
        old_error_rate: 0.005,
        new_error_rate: 0.01,
        new_latency_factor: 1.0,
    },
    Scenario {
        name: "bad",
        requests_per_minute: 100.0,
        old_error_rate: 0.005,
        new_error_rate: 0.05,
        new_latency_factor: 1.0,
    },
    Scenario {
        name: "broken",
        requests_per_minute: 100.0,
        old_error_rate: 0.005,
        new_error_rate: 0.3,
        new_latency_factor: 1.0,
    },
    Scenario {
        name: "broken, 5 req/min",
        requests_per_minute: 5.0,
        old_error_rate: 0.005,
        new_error_rate: 0.3,
        new_latency_factor: 1.0,
    },
    Scenario {
        name: "latency p99 x2",
        requests_per_minute: 100.0,
        old_error_rate: 0.005,
        new_error_rate: 0.005,
        new_latency_factor: 2.0,
    },
    Scenario {
        name: "noisy baseline",
        requests_per_minute: 100.0,
        old_error_rate: 0.03,
        new_error_rate: 0.03,
        new_latency_factor: 1.0,
    },
];

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    /// Ours, looked at every minute within each hold.
    OursLooks,
    /// Ours, judged once at the end of each hold.
    OursEnd,
    /// AWS Lambda Deployer: linear 10 steps a minute, any error of the new version in the last minute rolls back.
    Seed,
    /// CodeDeploy `Canary10Percent5Minutes`, rolled back by an alarm on the alias's `Errors` sum over one
    /// minute above the threshold.
    CodeDeploy { threshold: u64 },
}

const POLICIES: [Policy; 5] = [
    Policy::OursLooks,
    Policy::OursEnd,
    Policy::Seed,
    Policy::CodeDeploy { threshold: 0 },
    Policy::CodeDeploy { threshold: 5 },
];

impl Policy {
    fn name(self) -> String {
        match self {
            Policy::OursLooks => "ours, looks every minute".into(),
            Policy::OursEnd => "ours, end of hold only".into(),
            Policy::Seed => "seed (Lambda Deployer)".into(),
            Policy::CodeDeploy { threshold } => format!("CodeDeploy, Errors > {threshold}"),
        }
    }
}

/// One minute of one version's traffic.
#[derive(Clone, Default)]
struct Minute {
    invocations: u64,
    errors: u64,
    durations: Vec<f64>,
}

/// The traffic of one run, generated minute by minute as the policy sets the weights.
struct Traffic<'a> {
    scenario: &'a Scenario,
    rng: StdRng,
    /// Indexed by minute + WARMUP_MINUTES: (new, old).
    minutes: Vec<(Minute, Minute)>,
    durations: LogNormal<f64>,
}

impl<'a> Traffic<'a> {
    fn new(scenario: &'a Scenario, seed: u64) -> Traffic<'a> {
        let mut traffic = Traffic {
            scenario,
            rng: StdRng::seed_from_u64(seed),
            minutes: Vec::new(),
            // A p99 near 200 ms: median 100 ms, sigma 0.3.
            durations: LogNormal::new(100f64.ln(), 0.3).expect("valid log-normal"),
        };
        for _ in 0..WARMUP_MINUTES {
            traffic.serve(0.0, false);
        }
        traffic
    }

    /// Serves the next minute with the new version taking `share` of the requests.
    fn serve(&mut self, share: f64, keep_durations: bool) {
        let arrivals =
            Poisson::new(self.scenario.requests_per_minute).expect("positive rate").sample(&mut self.rng) as u64;
        let new = binomial(&mut self.rng, arrivals, share);
        let minute = |n: u64, rate: f64, factor: f64, rng: &mut StdRng| Minute {
            invocations: n,
            errors: binomial(rng, n, rate),
            durations: if keep_durations {
                (0..n).map(|_| self.durations.sample(rng) * factor).collect()
            } else {
                Vec::new()
            },
        };
        let new_minute = minute(new, self.scenario.new_error_rate, self.scenario.new_latency_factor, &mut self.rng);
        let old_minute = minute(arrivals - new, self.scenario.old_error_rate, 1.0, &mut self.rng);
        self.minutes.push((new_minute, old_minute));
    }

    /// The minute about to be served, counted from the first traffic moved (0).
    fn now(&self) -> i64 {
        self.minutes.len() as i64 - WARMUP_MINUTES
    }

    fn minute(&self, minute: i64) -> &(Minute, Minute) {
        &self.minutes[(minute + WARMUP_MINUTES) as usize]
    }

    /// The new version's failures from the first traffic until `end` (exclusive).
    fn failures_until(&self, end: i64) -> u64 {
        (0..end).map(|m| self.minute(m).0.errors).sum()
    }
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).expect("valid binomial").sample(rng)
}

fn p99(mut durations: Vec<f64>) -> Option<f64> {
    if durations.is_empty() {
        return None;
    }
    durations.sort_by(f64::total_cmp);
    let rank = ((durations.len() as f64) * 0.99).ceil() as usize;
    Some(durations[rank.clamp(1, durations.len()) - 1])
}

/// What one run came to.
struct RunResult {
    /// Minutes from the first traffic to the rollback.
    rolled_back_at: Option<i64>,
    /// Minutes from the first traffic until the new version carried all of it.
    full_at: Option<i64>,
    /// Failed requests the new version served before the rollback, or within the horizon.
    failures: u64,
    /// The signal that rolled it back (ours only).
    reason: Option<String>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

/// Ours: 10% for five minutes as `Canary10Percent5Minutes`, then 50% for five more, so that a version
/// a few times worse than the old one is seen often enough to be told apart from it before all traffic is
/// on it.
fn ours(traffic: &mut Traffic, looks: bool) -> RunResult {
    let request = parse_request(&json!({"function": "orders-api", "alias": "live", "version": "2",
        "strategy": {"steps": [{"percent": 10, "hold_seconds": 300}, {"percent": 50, "hold_seconds": 600}]},
        "health": {"compare_to_baseline": true, "max_error_rate": 0.1, "max_latency_p99_increase": 0.5,
                   "min_invocations": 10, "metrics_delay_seconds": DELAY_MINUTES * 60,
                   "check_interval_seconds": if looks { Some(60) } else { None }}}))
    .expect("the bench's request is valid");
    let facts = LiveFacts {
        function_exists: true,
        version_exists: true,
        alias: Some(AliasState {
            routing: Routing::to_version("1"),
            revision_id: "r0".into(),
            description: String::new(),
        }),
        alarms: Vec::new(),
        missing_hooks: Vec::new(),
        lock: None,
        deployment: canary_core::deployment::Deployment::AWS,
    };
    let execution = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:bench";
    let mut rollout = Rollout::prepare(request, facts, execution, t0()).expect("prepared");
    let at = |minute: i64| t0() + Duration::minutes(minute);
    let mut share = 0.0;
    let mut full_at = None;
    loop {
        let now = traffic.now();
        match rollout.next {
            Next::Shift | Next::Promote => {
                rollout = rollout.after_move("r".into(), at(now));
                let routing = rollout.expected_routing();
                share = if routing.function_version == "2" {
                    full_at = Some(now);
                    1.0
                } else {
                    routing.additional_version_weights.values().sum()
                };
            }
            Next::Hold => {
                let minutes = rollout.wait_seconds.div_ceil(60);
                for _ in 0..minutes {
                    traffic.serve(share, true);
                }
                let now = at(traffic.now());
                let (start, end) = rollout.health_window(now).expect("a step is held");
                let figures = window(traffic, minute_of(start), minute_of(end));
                rollout = rollout.after_check(Some(figures), now);
            }
            Next::Rollback => {
                let reason = rollout.failure.as_ref().map(|f| f.signal.to_string());
                return RunResult { rolled_back_at: Some(now), full_at, failures: traffic.failures_until(now), reason };
            }
            Next::Done => return promoted(traffic, full_at),
            other => unreachable!("the bench's request has no {other:?}"),
        }
    }
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    (at - t0()).num_minutes()
}

/// What CloudWatch returns for minutes `start..end`.
fn window(traffic: &Traffic, start: i64, end: i64) -> HealthFigures {
    let mut new = VersionFigures::default();
    let mut old = VersionFigures::default();
    let (mut new_durations, mut old_durations) = (Vec::new(), Vec::new());
    for m in start..end {
        let (n, o) = traffic.minute(m);
        new.invocations += n.invocations;
        new.errors += n.errors;
        old.invocations += o.invocations;
        old.errors += o.errors;
        new_durations.extend_from_slice(&n.durations);
        old_durations.extend_from_slice(&o.durations);
    }
    new.p99_duration_ms = p99(new_durations);
    old.p99_duration_ms = p99(old_durations);
    HealthFigures { new, baseline: old, ..HealthFigures::default() }
}

/// A run that ended with the new version at full traffic: it serves until the horizon.
fn promoted(traffic: &mut Traffic, full_at: Option<i64>) -> RunResult {
    while traffic.now() < HORIZON_MINUTES {
        traffic.serve(1.0, false);
    }
    RunResult { rolled_back_at: None, full_at, failures: traffic.failures_until(HORIZON_MINUTES), reason: None }
}

/// The seed: weights 10%, 20%, ... 100%, one a minute; at the end of each minute it reads the new
/// version's `Errors` of the newest complete minute, and any error rolls back.
fn seed(traffic: &mut Traffic) -> RunResult {
    for step in 1..=10 {
        traffic.serve(step as f64 / 10.0, false);
        let now = traffic.now();
        if traffic.minute(now - 1 - DELAY_MINUTES).0.errors > 0 && now - 1 - DELAY_MINUTES >= 0 {
            return RunResult {
                rolled_back_at: Some(now),
                full_at: None,
                failures: traffic.failures_until(now),
                reason: None,
            };
        }
    }
    promoted(traffic, Some(9))
}

/// CodeDeploy `Canary10Percent5Minutes`: 10% for five minutes, then all; an alarm on the alias's `Errors`
/// (both versions) evaluated each minute on the newest complete minute rolls back while the deployment runs.
fn codedeploy(traffic: &mut Traffic, threshold: u64) -> RunResult {
    for _ in 0..5 {
        traffic.serve(0.1, false);
        let now = traffic.now();
        let (new, old) = traffic.minute(now - 1 - DELAY_MINUTES);
        if new.errors + old.errors > threshold {
            return RunResult {
                rolled_back_at: Some(now),
                full_at: None,
                failures: traffic.failures_until(now),
                reason: None,
            };
        }
    }
    promoted(traffic, Some(5))
}

fn run(policy: Policy, scenario: &Scenario, seed_value: u64) -> RunResult {
    let mut traffic = Traffic::new(scenario, seed_value);
    match policy {
        Policy::OursLooks => ours(&mut traffic, true),
        Policy::OursEnd => ours(&mut traffic, false),
        Policy::Seed => seed(&mut traffic),
        Policy::CodeDeploy { threshold } => codedeploy(&mut traffic, threshold),
    }
}

/// The `q` quantile (nearest rank) of `values`, or `None` when there are none.
fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * q).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// The summary of one policy over one scenario's runs.
struct Row {
    policy: Policy,
    scenario: &'static str,
    rollback_rate: f64,
    time_to_rollback: (Option<f64>, Option<f64>),
    blast_radius: (f64, f64),
    time_to_full: Option<f64>,
    /// Ours: how many rollbacks each signal caused.
    reasons: Vec<(String, usize)>,
}

fn summarise(policy: Policy, scenario: &Scenario) -> Row {
    let results: Vec<RunResult> = (0..RUNS).map(|i| run(policy, scenario, 1_000_003 * (i + 1))).collect();
    let mut times: Vec<f64> = results.iter().filter_map(|r| r.rolled_back_at).map(|m| m as f64).collect();
    let mut failures: Vec<f64> = results.iter().map(|r| r.failures as f64).collect();
    let mut full: Vec<f64> =
        results.iter().filter(|r| r.rolled_back_at.is_none()).filter_map(|r| r.full_at).map(|m| m as f64).collect();
    let mut reasons: Vec<(String, usize)> = Vec::new();
    for reason in results.iter().filter_map(|r| r.reason.clone()) {
        match reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => reasons.push((reason, 1)),
        }
    }
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    Row {
        reasons,
        policy,
        scenario: scenario.name,
        rollback_rate: times.len() as f64 / RUNS as f64,
        time_to_rollback: (quantile(&mut times, 0.5), quantile(&mut times, 0.95)),
        blast_radius: (quantile(&mut failures, 0.5).unwrap_or(0.0), quantile(&mut failures, 0.95).unwrap_or(0.0)),
        time_to_full: quantile(&mut full, 0.5),
    }
}

/// Wald's SPRT's expected number of failed requests before it tells `p1` from `p0` with the bench's error
/// bounds, when `p1` is true: the floor no policy can beat on average.
fn sprt_floor(p0: f64, p1: f64) -> Option<f64> {
    if p1 <= p0 {
        return None;
    }
    let a = ((1.0 - BETA) / ALPHA).ln();
    let b = (BETA / (1.0 - ALPHA)).ln();
    let drift = p1 * (p1 / p0).ln() + (1.0 - p1) * ((1.0 - p1) / (1.0 - p0)).ln();
    let samples = ((1.0 - BETA) * a + BETA * b) / drift;
    Some(p1 * samples)
}

fn minutes(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.0}"))
}

pub fn detection(chart: Option<&str>) -> Result<(), String> {
    let rows: Vec<Row> = SCENARIOS.iter().flat_map(|s| POLICIES.iter().map(move |p| summarise(*p, s))).collect();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{RUNS} seeded runs per row; metrics {DELAY_MINUTES} min late; blast radius = failed requests the new \
         version served before the rollback (or in the {HORIZON_MINUTES} min after its first traffic)\n"
    );
    let _ = writeln!(
        table,
        "| scenario | policy | rolled back | by | time to rollback, median / p95 (min) | blast radius, median / p95 | time to 100%, median (min) |"
    );
    let _ = writeln!(table, "|---|---|---:|---|---:|---:|---:|");
    for row in &rows {
        let _ = writeln!(
            table,
            "| {} | {} | {:.1}% | {} | {} / {} | {:.0} / {:.0} | {} |",
            row.scenario,
            row.policy.name(),
            row.rollback_rate * 100.0,
            row.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", "),
            minutes(row.time_to_rollback.0),
            minutes(row.time_to_rollback.1),
            row.blast_radius.0,
            row.blast_radius.1,
            minutes(row.time_to_full),
        );
    }
    let _ = writeln!(
        table,
        "\nSPRT floor (Wald, alpha = {ALPHA}, beta = {BETA}): expected failed requests to tell the rates apart\n"
    );
    let _ = writeln!(
        table,
        "| scenario | old rate | new rate | expected failed requests | with those served while the first minute's metrics are in flight |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|");
    for scenario in &SCENARIOS {
        if let Some(floor) = sprt_floor(scenario.old_error_rate, scenario.new_error_rate) {
            // No policy reading CloudWatch can act before a minute's bucket is complete: at the first step's
            // 10%, the new version serves the metrics delay and one interval of failures meanwhile.
            let in_flight = scenario.new_error_rate * 0.1 * scenario.requests_per_minute * (DELAY_MINUTES + 1) as f64;
            let _ = writeln!(
                table,
                "| {} | {:.1}% | {:.1}% | {floor:.1} | {:.1} |",
                scenario.name,
                scenario.old_error_rate * 100.0,
                scenario.new_error_rate * 100.0,
                floor + in_flight
            );
        }
    }
    print!("{table}");
    if let Some(path) = chart {
        draw(&rows, path)?;
        println!("\nchart written to {path}");
    }
    Ok(())
}

/// Blast radius against the false-rollback rate (the healthy scenario's rollback rate), one point per policy
/// and bad scenario.
fn draw(rows: &[Row], path: &str) -> Result<(), String> {
    use plotters::prelude::*;
    let false_rate = |policy: Policy| {
        rows.iter().find(|r| r.policy == policy && r.scenario == "healthy").map_or(0.0, |r| r.rollback_rate * 100.0)
    };
    let bad = ["slightly worse", "bad", "broken", "broken, 5 req/min"];
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Blast radius against false rollbacks (healthy version)", ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((0.05f64..400.0).log_scale(), (0.5f64..2_000.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("healthy versions rolled back (%, log; none is drawn at 0.1)")
        .y_desc("median failed requests served (log)")
        .draw()
        .map_err(|e| e.to_string())?;
    let colours = [BLUE, CYAN, RED, MAGENTA, GREEN];
    for (policy, colour) in POLICIES.iter().zip(colours) {
        let x = false_rate(*policy).max(0.1);
        let points: Vec<(f64, f64, &str)> = rows
            .iter()
            .filter(|r| r.policy == *policy && bad.contains(&r.scenario))
            .map(|r| (x, r.blast_radius.0.max(0.6), r.scenario))
            .collect();
        chart
            .draw_series(points.iter().map(|(x, y, _)| Circle::new((*x, *y), 5, colour.filled())))
            .map_err(|e| e.to_string())?
            .label(policy.name())
            .legend(move |(x, y)| Circle::new((x, y), 5, colour.filled()));
        chart
            .draw_series(points.iter().map(|(x, y, name)| {
                Text::new(name.to_string(), (*x * 1.15, *y), ("sans-serif", 11).into_font().color(&colour))
            }))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperMiddle)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sprt_floor_matches_walds_formula_and_needs_a_worse_version() {
        assert_eq!(sprt_floor(0.05, 0.05), None);
        // 30% against 0.5%: a handful of failures tell them apart.
        let broken = sprt_floor(0.005, 0.3).unwrap();
        assert!((1.0..3.0).contains(&broken), "{broken}");
        assert!(sprt_floor(0.005, 0.01).unwrap() > sprt_floor(0.005, 0.05).unwrap());
    }

    #[test]
    fn runs_are_reproducible_and_policies_see_the_same_traffic_before_they_differ() {
        let broken = &SCENARIOS[3];
        let a = run(Policy::OursLooks, broken, 42);
        let b = run(Policy::OursLooks, broken, 42);
        assert_eq!((a.rolled_back_at, a.failures), (b.rolled_back_at, b.failures));
        let warmup = |seed| Traffic::new(broken, seed).minutes.iter().map(|m| m.1.invocations).collect::<Vec<_>>();
        assert_eq!(warmup(7), warmup(7));
    }

    #[test]
    fn quantiles_and_p99_use_the_nearest_rank() {
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(p99((1..=100).map(f64::from).collect()), Some(99.0));
    }
}
