//! `cargo xtask bench detection`: how fast each rollout policy rolls a bad version back, how many failed
//! requests the bad version serves first (the blast radius), and how often it rolls a good one back, on
//! steady traffic and on traffic closer to production (shared outages, errors in bursts, a few requests a
//! minute, ramps, long rollouts, latency tails, a version that overloads what both share).
//!
//! Synthetic traffic, seeded and reproducible: Poisson arrivals each minute, split by the alias's weights,
//! each request failing with its version's error probability (times the minute's burst, at least an
//! outage's rate) and taking a log-normal duration. CloudWatch is modelled as one-minute buckets that
//! become readable a metrics delay after the minute ends. Every policy sees the same runs (run i of a
//! scenario uses the same seed under every policy).
//!
//! Ours is the core's real decision code, driven as the state machine drives it (`Rollout::prepare`,
//! `with_traffic_before` over the hour before, `after_move`, `after_check`, with the windows
//! `health_window` asks for). The anchors (the seed's rule and CodeDeploy's alarm, docs/detection.md) are
//! modelled from their public docs and code, and generously: they see complete data after the same
//! metrics delay.

use super::scenarios::{Plan, Rate, SCENARIOS, Scenario, Traffic, p99};
use canary_core::health::{HealthFigures, VersionFigures};
use canary_core::sequential::Counts;
use canary_core::{LiveFacts, Next, Rollout, parse_request};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use std::fmt::Write as _;

/// Runs per policy and scenario; `CANARY_BENCH_RUNS` sets fewer for a quick look.
fn runs() -> u64 {
    std::env::var("CANARY_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(1_000)
}
/// How long a promoted version is followed after it carries all traffic: a bad version never rolled back
/// serves its failures until then.
const FOLLOW_MINUTES: i64 = 30;
/// CloudWatch's delay: a minute's bucket is complete this many minutes after it ends (Lambda metrics
/// typically arrive about 2 minutes late).
const DELAY_MINUTES: i64 = 2;
/// The error bounds the SPRT floor is computed for: ours rolls a good version back with probability at
/// most 1 - baseline_confidence (0.99), and aims to catch a bad one 99 times in 100.
const ALPHA: f64 = 0.01;
const BETA: f64 = 0.01;

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    /// Ours, with the looks the controller chooses (every minute here).
    OursLooks,
    /// Ours, judged once at the end of each hold (`check_interval_seconds: 0`).
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
            Policy::OursLooks => "ours (default looks)".into(),
            Policy::OursEnd => "ours, end of hold only".into(),
            Policy::Seed => "seed (Lambda Deployer)".into(),
            Policy::CodeDeploy { threshold } => format!("CodeDeploy, Errors > {threshold}"),
        }
    }

    fn is_ours(self) -> bool {
        matches!(self, Policy::OursLooks | Policy::OursEnd)
    }
}

/// What one run came to.
struct RunResult {
    /// Minutes from the first traffic to the rollback.
    rolled_back_at: Option<i64>,
    /// Minutes from the first traffic until the new version carried all of it.
    full_at: Option<i64>,
    /// Failed requests the new version served before the rollback, or until [`FOLLOW_MINUTES`] after
    /// its promotion.
    failures: u64,
    /// The signal that rolled it back (ours only).
    reason: Option<String>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

/// Ours, as a user would ask for it: `compare_to_baseline`, a 5% limit (1% in two scenarios), a p99 at most 50% higher, and
/// everything else as the defaults have it (looks every minute, metrics 120 s late, `no_data: wait` up to
/// an hour before the promotion, shared outages up to 300 s).
fn our_request(plan: Plan, limit: f64, looks: bool) -> canary_core::RolloutRequest {
    let strategy = match plan {
        Plan::Standard => {
            json!({"steps": [{"percent": 10, "hold_seconds": 300}, {"percent": 50, "hold_seconds": 600}]})
        }
        Plan::LongLinear => json!({"linear": {"percent": 10, "interval_seconds": 600}}),
    };
    let mut health = json!({"compare_to_baseline": true, "max_error_rate": limit, "max_latency_p99_increase": 0.5,
                            "metrics_delay_seconds": DELAY_MINUTES * 60});
    if !looks {
        health["check_interval_seconds"] = json!(0);
    }
    parse_request(&json!({"function": "orders-api", "alias": "live", "version": "2", "strategy": strategy,
                          "health": health}))
    .expect("the bench's request is valid")
}

fn ours(traffic: &mut Traffic, looks: bool) -> RunResult {
    let request = our_request(traffic.scenario.plan, traffic.scenario.limit, looks);
    let facts = LiveFacts::healthy("1", canary_core::deployment::Deployment::AWS);
    let execution = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:bench";
    let mut rollout = Rollout::prepare(request, facts, execution, t0()).expect("prepared");
    // Prepare reads the old version's hour before, minute by minute.
    let (start, end) = rollout.before_window(t0()).expect("health is judged");
    let before: Vec<Counts> = (minute_of(start)..minute_of(end))
        .map(|m| {
            let old = &traffic.minute(m).1;
            Counts { invocations: old.invocations, errors: old.errors, slow: 0 }
        })
        .filter(|c| c.invocations > 0)
        .collect();
    let durations = (minute_of(start)..minute_of(end)).flat_map(|m| traffic.minute(m).1.durations.clone()).collect();
    rollout = rollout.with_traffic_before(&before, p99(durations));
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
                    traffic.serve(share);
                }
                let now = at(traffic.now());
                let (start, end) = rollout.health_window(now).expect("a step is held");
                let figures = window(traffic, minute_of(start), minute_of(end), rollout.slow_threshold_ms());
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

/// What CloudWatch returns for minutes `start..end`, with the calls slower than `slow_above` ms counted.
fn window(traffic: &Traffic, start: i64, end: i64, slow_above: Option<f64>) -> HealthFigures {
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
    let slow = |durations: &[f64]| slow_above.map(|t| durations.iter().filter(|d| **d > t).count() as u64);
    new.slow = slow(&new_durations);
    old.slow = slow(&old_durations);
    new.p99_duration_ms = p99(new_durations);
    old.p99_duration_ms = p99(old_durations);
    HealthFigures { new, baseline: old, ..HealthFigures::default() }
}

/// A run that ended with the new version at full traffic: it serves [`FOLLOW_MINUTES`] more.
fn promoted(traffic: &mut Traffic, full_at: Option<i64>) -> RunResult {
    let until = full_at.unwrap_or(traffic.now()) + FOLLOW_MINUTES;
    while traffic.now() < until {
        traffic.serve(1.0);
    }
    RunResult { rolled_back_at: None, full_at, failures: traffic.failures_until(until), reason: None }
}

/// The seed: weights 10%, 20%, ... 100%, one a minute; at the end of each minute it reads the new
/// version's `Errors` of the newest complete minute, and any error rolls back.
fn seed(traffic: &mut Traffic) -> RunResult {
    for step in 1..=10 {
        traffic.serve(step as f64 / 10.0);
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
        traffic.serve(0.1);
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
    scenario: usize,
    rollback_rate: f64,
    time_to_rollback: (Option<f64>, Option<f64>),
    blast_radius: (f64, f64),
    time_to_full: Option<f64>,
    /// Ours: how many rollbacks each signal caused.
    reasons: Vec<(String, usize)>,
}

impl Row {
    fn scenario(&self) -> &'static Scenario {
        &SCENARIOS[self.scenario]
    }
}

fn summarise(policy: Policy, index: usize) -> Row {
    let scenario = &SCENARIOS[index];
    let results: Vec<RunResult> = (0..runs()).map(|i| run(policy, scenario, 1_000_003 * (i + 1))).collect();
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
        scenario: index,
        rollback_rate: times.len() as f64 / results.len() as f64,
        time_to_rollback: (quantile(&mut times, 0.5), quantile(&mut times, 0.95)),
        blast_radius: (quantile(&mut failures, 0.5).unwrap_or(0.0), quantile(&mut failures, 0.95).unwrap_or(0.0)),
        time_to_full: quantile(&mut full, 0.5),
    }
}

/// Every (policy, scenario) row, computed on all cores.
fn rows() -> Vec<Row> {
    let jobs: Vec<(Policy, usize)> = (0..SCENARIOS.len())
        .flat_map(|s| POLICIES.iter().filter(move |p| p.is_ours() || SCENARIOS[s].anchors).map(move |p| (*p, s)))
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut rows: Vec<(usize, Row)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((policy, scenario)) = jobs.get(i) else { return done };
                        done.push((i, summarise(*policy, *scenario)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a bench worker")).collect()
    });
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, row)| row).collect()
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

/// The columns both results tables end with: why it rolled back, time to rollback, failed requests served,
/// time to 100%.
fn row_outcome(row: &Row) -> String {
    format!(
        "{} | {} / {} | {:.0} / {:.0} | {} |",
        reasons(row),
        minutes(row.time_to_rollback.0),
        minutes(row.time_to_rollback.1),
        row.blast_radius.0,
        row.blast_radius.1,
        minutes(row.time_to_full),
    )
}

fn reasons(row: &Row) -> String {
    row.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
}

pub fn detection(chart: Option<&str>) -> Result<(), String> {
    let rows = rows();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{} seeded runs per row; metrics {DELAY_MINUTES} min late; failed requests = those the new version \
         served before the rollback (or until {FOLLOW_MINUTES} min after it carried all traffic)\n",
        runs()
    );
    let _ = writeln!(table, "Steady, independent traffic (100 requests a minute unless said), every policy:\n");
    let _ = writeln!(
        table,
        "| scenario | policy | rolled back | by | time to rollback, median / p95 (min) | failed requests, median / p95 | time to 100%, median (min) |"
    );
    let _ = writeln!(table, "|---|---|---:|---|---:|---:|---:|");
    for row in rows.iter().filter(|r| r.scenario().anchors) {
        let _ = writeln!(
            table,
            "| {} | {} | {:.1}% | {}",
            row.scenario().name,
            row.policy.name(),
            row.rollback_rate * 100.0,
            row_outcome(row)
        );
    }
    let _ = writeln!(table, "\nTraffic closer to production, ours (a healthy version's rollbacks are false ones):\n");
    let _ = writeln!(
        table,
        "| scenario | policy | healthy rolled back | broken caught | by | time to rollback, median / p95 (min) | failed requests, median / p95 | time to 100%, median (min) |"
    );
    let _ = writeln!(table, "|---|---|---:|---:|---|---:|---:|---:|");
    for row in rows.iter().filter(|r| !r.scenario().anchors || r.policy.is_ours()) {
        let rate = format!("{:.1}%", row.rollback_rate * 100.0);
        let (false_rate, caught) = if row.scenario().healthy { (rate, "".into()) } else { ("".into(), rate) };
        let _ = writeln!(
            table,
            "| {} | {} | {false_rate} | {caught} | {}",
            row.scenario().name,
            row.policy.name(),
            row_outcome(row)
        );
    }
    let _ = writeln!(table, "\nAgainst the targets (ours, default looks):\n");
    let ours: Vec<&Row> = rows.iter().filter(|r| r.policy == Policy::OursLooks).collect();
    let worst_false =
        ours.iter().filter(|r| r.scenario().healthy).max_by(|a, b| a.rollback_rate.total_cmp(&b.rollback_rate));
    if let Some(row) = worst_false {
        let _ = writeln!(
            table,
            "- healthy rolled back at most 1% in every scenario: {} (worst {:.1}%, {})",
            if row.rollback_rate <= 0.01 { "met" } else { "MISSED" },
            row.rollback_rate * 100.0,
            row.scenario().name
        );
    }
    for row in
        ours.iter().filter(|r| r.scenario().name.starts_with("broken") || r.scenario().name.starts_with("overload"))
    {
        let _ = writeln!(
            table,
            "- {} caught {:.1}%, median failed requests {:.0}",
            row.scenario().name,
            row.rollback_rate * 100.0,
            row.blast_radius.0
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
    for scenario in SCENARIOS.iter().filter(|s| s.anchors) {
        if let (Some(floor), Rate::Fixed(rate)) =
            (sprt_floor(scenario.old_error_rate, scenario.new_error_rate), scenario.rate)
        {
            // No policy reading CloudWatch can act before a minute's bucket is complete: at the first step's
            // 10%, the new version serves the metrics delay and one interval of failures meanwhile.
            let in_flight = scenario.new_error_rate * 0.1 * rate * (DELAY_MINUTES + 1) as f64;
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

/// Failed requests against the false-rollback rate (the healthy scenario's rollback rate), one point per
/// policy and bad scenario of the steady traffic; ours also on the production-like broken scenarios
/// (marked +), at its worst false-rollback rate over the production-like healthy ones.
fn draw(rows: &[Row], path: &str) -> Result<(), String> {
    use plotters::prelude::*;
    let false_rate = |policy: Policy, production: bool| {
        rows.iter()
            .filter(|r| r.policy == policy && r.scenario().healthy && (r.scenario().anchors != production))
            .map(|r| r.rollback_rate * 100.0)
            .fold(0.0, f64::max)
    };
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Failed requests against false rollbacks (healthy versions)", ("sans-serif", 20))
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
        let mut points: Vec<(f64, f64, String)> = Vec::new();
        for production in [false, true] {
            let x = false_rate(*policy, production).max(0.1);
            points.extend(
                rows.iter()
                    .filter(|r| r.policy == *policy && !r.scenario().healthy && r.scenario().anchors != production)
                    .map(|r| {
                        let mark = if production { "+ " } else { "" };
                        (x, r.blast_radius.0.max(0.6), format!("{mark}{}", r.scenario().name))
                    }),
            );
        }
        chart
            .draw_series(points.iter().map(|(x, y, _)| Circle::new((*x, *y), 5, colour.filled())))
            .map_err(|e| e.to_string())?
            .label(policy.name())
            .legend(move |(x, y)| Circle::new((x, y), 5, colour.filled()));
        chart
            .draw_series(points.iter().map(|(x, y, name)| {
                Text::new(name.clone(), (*x * 1.15, *y), ("sans-serif", 10).into_font().color(&colour))
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
    use crate::bench::scenarios::{BASE, Bursts, Outage};

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
    fn bursts_outages_and_overload_shape_the_traffic_as_described() {
        // Bursts: per-minute error counts of the old version at full traffic vary about as many times more
        // than binomial ones as asked.
        let bursty = Scenario { bursts: Bursts::PerVersion(5.0), old_error_rate: 0.02, ..BASE };
        let mut traffic = Traffic::new(&bursty, 3);
        for _ in 0..2_000 {
            traffic.serve(0.0);
        }
        let errors: Vec<f64> = traffic.minutes.iter().map(|m| m.1.errors as f64).collect();
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        let variance = errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / errors.len() as f64;
        let ratio = variance / (mean * (1.0 - 0.02));
        assert!((3.5..7.0).contains(&ratio), "variance {ratio:.2} times binomial");
        // An outage fails both versions in its minutes only.
        let outage = Scenario { outage: Some(Outage { start: 1, minutes: 1, rate: 1.0 }), ..BASE };
        let mut traffic = Traffic::new(&outage, 3);
        (0..3).for_each(|_| traffic.serve(0.5));
        let failed = |m: i64| {
            let (new, old) = traffic.minute(m);
            new.errors + old.errors == new.invocations + old.invocations
        };
        assert_eq!((failed(0), failed(1), failed(2)), (false, true, false));
        // Overload: from the new version's second minute of traffic on.
        let overload = Scenario { overload: Some(1.0), ..BASE };
        let mut traffic = Traffic::new(&overload, 3);
        (0..3).for_each(|_| traffic.serve(0.1));
        let old_failed = |m: i64| traffic.minute(m).1.errors == traffic.minute(m).1.invocations;
        assert_eq!((old_failed(0), old_failed(1), old_failed(2)), (false, true, true));
        // A ramp, and a rate drawn per run.
        let ramp = Traffic::new(&SCENARIOS[20], 1);
        assert_eq!(
            (ramp.requests_per_minute(0), ramp.requests_per_minute(10), ramp.requests_per_minute(99)),
            (20.0, 110.0, 200.0)
        );
        let low = Traffic::new(&SCENARIOS[15], 1);
        assert!((1.0..5.0).contains(&low.per_run));
    }

    #[test]
    fn quantiles_and_p99_use_the_nearest_rank() {
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(p99((1..=100).map(f64::from).collect()), Some(99.0));
    }
}
