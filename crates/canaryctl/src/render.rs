//! What `canaryctl` prints: plans, progress lines and results, as text for people and JSON for machines.

use crate::output::Planned;
use crate::views::StatusView;
use canary_core::execution::{ExecutionOutcome, ExecutionStatus};
use canary_core::rollout::percent_text;
use canary_core::{Next, RolloutRequest};
use std::fmt::Write;

/// The plan as JSON: every weight the alias will carry, in order, ending at 100, with the seconds held at each.
pub fn plan_json(request: &RolloutRequest, runs_on: &str, requests_per_minute: Option<f64>) -> Planned {
    let schedule = request.schedule();
    let durations = canary_core::budget::durations(request);
    Planned {
        evidence_needed: if request.health.enabled { canary_core::budget::evidence_needed(request) } else { 0 },
        evidence: requests_per_minute.map(|rate| canary_core::budget::outlook(request, rate)),
        request: request.clone(),
        runs_on: runs_on.to_string(),
        total_seconds: schedule.total_hold_seconds(),
        steps: schedule.steps,
        judged_steps: judged_steps(request),
        estimated_seconds: durations.typical(),
        worst_case_seconds: durations.worst(),
        durations,
        provisioned_concurrency: None,
    }
}

/// The steps (1-based) whose health is judged: those held, when health checks are on. A step without a hold
/// (the final 100% of a linear, canary or listed rollout) moves on at once, unjudged.
pub fn judged_steps(request: &RolloutRequest) -> Vec<usize> {
    let steps = request.schedule().steps;
    let held = steps.iter().enumerate().filter(|(_, s)| s.hold_seconds > 0).map(|(i, _)| i + 1);
    if request.health.enabled { held.collect() } else { Vec::new() }
}

/// One line saying which steps are judged and which are not.
fn judged_text(request: &RolloutRequest) -> String {
    let count = request.schedule().len();
    let judged = judged_steps(request).len();
    let bake = "all_at_once with bake_seconds would judge the new version at full traffic";
    match judged {
        0 => format!("No step is judged: none is held ({bake})."),
        n if n == count => "Every step is judged after its hold, the final 100% included.".to_string(),
        n => format!("{n} of {count} steps are judged after their hold; the final step (100%) is not ({bake})."),
    }
}

pub use canary_core::budget::duration_text;

/// The typical and the worst-case duration, the worst with what makes it.
fn durations_text(request: &RolloutRequest) -> String {
    let d = canary_core::budget::durations(request);
    let health = &request.health;
    let mut text = format!(
        "Traffic held {} in all; typically about {} with the {} s wait for complete metrics at each step.",
        duration_text(d.holds),
        duration_text(d.typical()),
        health.effective_metrics_delay(),
    );
    let mut worst = Vec::new();
    if d.no_data_waits > 0 {
        worst.push(format!("the last held step waiting {} more for traffic", duration_text(d.no_data_waits)));
    }
    if d.outage_waits > 0 {
        worst.push(format!("steps held {} through outages both versions share", duration_text(d.outage_waits)));
    }
    if d.gates > 0 {
        worst.push(format!(
            "every approval gate unanswered for {}",
            duration_text(canary_core::budget::GATE_TIMEOUT_SECONDS)
        ));
    }
    if d.hooks > 0 {
        worst.push(format!("every hook running {}", duration_text(canary_core::budget::HOOK_TIMEOUT_SECONDS)));
    }
    if !worst.is_empty() {
        text.push_str(&format!("\nAt worst {}: {}.", duration_text(d.worst()), worst.join(", ")));
    }
    text
}

pub fn plan_text(request: &RolloutRequest, requests_per_minute: Option<f64>) -> String {
    let schedule = request.schedule();
    let health = &request.health;
    let mut out = String::new();
    if request.is_release() {
        let _ =
            writeln!(out, "Release of {} functions, moved, judged and rolled back together:", request.functions.len());
        for target in &request.functions {
            let _ = writeln!(out, "  {}:{} to version {}", target.function, target.alias, target.version);
        }
    } else {
        let _ = writeln!(out, "Rollout of {}:{} to version {}", request.function, request.alias, request.version);
    }
    let _ = writeln!(out, "{:>6}  {:>10}  {:>8}", "step", "new version", "hold");
    let gated = |percent: f64| {
        request.approval.before_percent.iter().any(|gate| canary_core::schedule::same_percent(*gate, percent))
    };
    for (i, step) in schedule.steps.iter().enumerate() {
        let gate = if gated(step.percent) { "  (waits for approval first)" } else { "" };
        let _ = writeln!(
            out,
            "{:>6}  {:>10}  {:>8}{gate}",
            i + 1,
            percent_text(step.percent),
            duration_text(step.hold_seconds)
        );
    }
    let _ = writeln!(out, "{}", durations_text(request));
    if !health.enabled {
        let _ = writeln!(out, "Health checks are off: every step passes.");
        return out;
    }
    let _ = writeln!(out, "{}", judged_text(request));
    let mut rules = Vec::new();
    if let Some(rate) = health.max_error_rate {
        rules.push(format!("conclusively above {} errors", percent_text(rate * 100.0)));
    }
    if health.compare_to_baseline {
        rules.push("conclusively worse than the old version".to_string());
    }
    if let Some(increase) = health.max_latency_p99_increase {
        rules.push(format!(
            "more than 1% of its calls conclusively slower than the old version's p99 before the rollout +{}",
            percent_text(increase * 100.0)
        ));
    }
    if !health.alarms.is_empty() {
        rules.push(format!("when any of {} enters ALARM", health.alarms.join(", ")));
    }
    let interval = match health.check_interval_seconds {
        Some(0) => "once, at the end of each hold".to_string(),
        Some(seconds) => format!("every {} within each hold", duration_text(seconds)),
        None => "every minute or more within each hold (at most 20 looks a hold)".to_string(),
    };
    let _ = writeln!(
        out,
        "The new version fails {}; looked at {interval}, at {}% confidence over the whole rollout.",
        rules.join(", or "),
        health.baseline_confidence * 100.0
    );
    if health.max_error_rate.is_some() {
        let _ = writeln!(
            out,
            "While both versions fail above the limit (an outage they share), no weight is raised; for longer than \
             {} in all, it rolls back.",
            duration_text(health.max_shared_outage_seconds)
        );
    }
    let _ = writeln!(
        out,
        "The promotion needs {} invocations of the new version over the rollout ({}).",
        canary_core::budget::evidence_needed(request),
        match health.no_data {
            canary_core::NoData::Wait => format!(
                "with fewer, the last step waits for more traffic, up to {} more, then fails",
                duration_text(health.no_data_max_wait_seconds)
            ),
            canary_core::NoData::Fail => "with fewer, it fails".to_string(),
            canary_core::NoData::Pass => "with fewer, it is promoted anyway: no_data is pass".to_string(),
        },
    );
    if let Some(rate) = requests_per_minute {
        let _ = writeln!(out, "{}", canary_core::budget::outlook(request, rate).describe(request));
    }
    out
}

/// The progress line of a state the execution left (its events' messages), or `None`.
#[cfg(test)]
pub fn progress_line(state_name: &str, output: Option<&str>) -> Option<String> {
    let events = crate::events::of_state("x", state_name, output);
    (!events.is_empty()).then(|| events.iter().map(|e| e.message().to_string()).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::progress_line;
    use canary_core::execution::{ExecutionOutcome, ExecutionStatus};
    use canary_core::health::{HealthFigures, VersionFigures};
    use chrono::{Duration, TimeZone, Utc};
    use serde_json::json;

    /// The plan marks the steps a gate holds, and says in words what happens without enough traffic.
    #[test]
    fn the_plan_marks_gates_and_says_what_too_little_traffic_does() {
        let plan = |no_data: &str| {
            let request = canary_core::parse_request(&json!({"function": "f", "alias": "live", "version": "2",
                "strategy": {"linear": {"percent": 25, "interval_seconds": 60}},
                "approval": {"before_percent": [50]}, "health": {"no_data": no_data}}))
            .unwrap();
            super::plan_text(&request, None)
        };
        let text = plan("wait");
        let gated: Vec<&str> = text.lines().filter(|l| l.contains("(waits for approval first)")).collect();
        assert_eq!(gated.len(), 1, "{text}");
        assert!(gated[0].contains("50%"), "{text}");
        assert!(
            text.contains("with fewer, the last step waits for more traffic, up to 4h00m more, then fails"),
            "{text}"
        );
        assert!(!text.contains("Wait"), "no Rust names in the text: {text}");
        assert!(plan("fail").contains("(with fewer, it fails)"));
        assert!(plan("pass").contains("promoted anyway"));
    }

    /// A canary of 10% held 300 s with looks every 60 s, checked once at `after` seconds with `figures`.
    fn checked(no_data: &str, after: i64, invocations: u64) -> String {
        let request = json!({"function": "orders", "alias": "live", "version": "2",
            "strategy": {"canary": {"percent": 10, "bake_seconds": 300}},
            "health": {"check_interval_seconds": 60, "metrics_delay_seconds": 0, "min_invocations": 10,
                       "no_data": no_data}});
        let t0 = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let rollout = crate::testing::prepared(request, "1", t0);
        let figures = HealthFigures {
            new: VersionFigures { invocations, errors: invocations / 20, ..Default::default() },
            ..Default::default()
        };
        let rollout = rollout.after_move("r1".into(), t0).after_check(Some(figures), t0 + Duration::seconds(after));
        progress_line("CheckHealth", Some(&serde_json::to_string(&rollout).unwrap())).unwrap()
    }

    #[test]
    fn a_look_within_a_hold_says_so_and_when_the_next_is() {
        assert_eq!(
            checked("wait", 60, 20),
            "step 1/2, look 1: 20 invocations, 1 error (5%); nothing conclusive, next look in 1m00s"
        );
    }

    #[test]
    fn a_list_row_is_a_json_object_or_a_line_under_its_header() {
        let row = super::ListRow {
            name: "orders-live-v42-20261130T120000Z".into(),
            execution_arn: "arn:exec".into(),
            status: ExecutionStatus::Succeeded,
            outcome: ExecutionOutcome::Promoted,
            function: "orders".into(),
            alias: "live".into(),
            version: "42".into(),
            started_at: Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
        };
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(
            (json["outcome"].as_str(), json["started_at"].as_str()),
            (Some("promoted"), Some("2026-11-30T12:00:00Z"))
        );
        let line = row.to_string();
        assert!(
            line.starts_with("orders-live-v42-20261130T120000Z") && line.ends_with("42 2026-11-30T12:00:00Z"),
            "{line}"
        );
        let header = super::ListRow::header();
        assert_eq!(header.find("outcome"), line.find("promoted"), "{header}\n{line}");
    }

    #[test]
    fn a_step_waiting_for_traffic_after_its_hold_says_so() {
        let line = checked("wait", 300, 2);
        assert!(line.starts_with("step 1/2: too little evidence to promote (2 invocations"), "{line}");
    }
}

/// One execution in `canaryctl list`: a JSON object, or a line of the table.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ListRow {
    pub name: String,
    pub execution_arn: String,
    pub status: ExecutionStatus,
    pub outcome: ExecutionOutcome,
    pub function: String,
    pub alias: String,
    pub version: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

impl ListRow {
    /// The table's header, aligned as the rows are.
    pub fn header() -> String {
        format!("{:<44} {:<16} {:<28} {:>7} started", "execution", "outcome", "function:alias", "version")
    }
}

impl std::fmt::Display for ListRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = format!("{}:{}", self.function, self.alias);
        write!(
            f,
            "{:<44} {:<16} {:<28} {:>7} {}",
            self.name,
            self.outcome,
            target,
            self.version,
            self.started_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )
    }
}

fn figures_line(who: &str, figures: &canary_core::VersionFigures) -> String {
    let errors = figures.errors;
    format!(
        "{who}: {} invocations, {errors} error{} ({}){}",
        figures.invocations,
        if errors == 1 { "" } else { "s" },
        percent_text(figures.error_rate() * 100.0),
        figures.p99_duration_ms.map(|p| format!(", p99 {p:.1} ms")).unwrap_or_default()
    )
}

impl std::fmt::Display for StatusView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.outcome)?;
        if let Some(r) = &self.rollout {
            write!(
                f,
                "\n  {}:{} from version {} to {}, step {} of {}",
                r.function, r.alias, r.old_version, r.new_version, r.step, r.step_count
            )?;
            let left = if self.status == ExecutionStatus::Running { "routes" } else { "was last set to" };
            write!(f, "\n  alias {left} {}; elapsed {}", r.routing, duration_text(r.elapsed_seconds as u64))?;
            if let Some(now) = &self.alias_now {
                write!(f, "\n  alias now routes {now}")?;
            }
            if let Some(at) = r.next_check_at {
                write!(f, ", next check at {}", at.format("%H:%M:%S UTC"))?;
            }
            if let Some(figures) = &r.figures {
                write!(f, "\n  {}", figures_line("new version", &figures.new))?;
                write!(f, "\n  {}", figures_line("old version", &figures.baseline))?;
            }
            if !r.gates.is_empty() {
                let gates: Vec<String> = r
                    .gates
                    .iter()
                    .map(|g| {
                        format!(
                            "before {} ({})",
                            percent_text(g.before_percent),
                            if g.passed { "passed" } else { "ahead" }
                        )
                    })
                    .collect();
                write!(f, "\n  approval gates: {}", gates.join(", "))?;
            }
            let running = self.status == ExecutionStatus::Running;
            match r.paused_before_percent {
                Some(percent) if running => write!(
                    f,
                    "\n  next: {} before {}: canaryctl promote {name} [--full], or canaryctl abort {name}",
                    r.next.as_str(),
                    percent_text(percent),
                    name = self.name
                )?,
                _ if running && r.paused_since.is_some() => write!(
                    f,
                    "\n  paused since {} (canaryctl pause): held at this weight and still judged; canaryctl resume \
                     {name} carries on, canaryctl abort {name} restores",
                    r.paused_since.map(|at| at.format("%H:%M:%S UTC").to_string()).unwrap_or_default(),
                    name = self.name
                )?,
                // A held step says when it is checked next, above.
                _ if running && r.next != Next::Hold => write!(f, "\n  next: {}", r.next.as_str())?,
                _ => {}
            }
        }
        // A release: one block per function, each with its own routing and figures.
        for r in &self.functions {
            write!(
                f,
                "\n  {}:{} from version {} to {}: routes {}",
                r.function, r.alias, r.old_version, r.new_version, r.routing
            )?;
            if let Some(now) = &r.alias_now {
                write!(f, "; now {now}")?;
            }
            if let Some(figures) = &r.figures {
                write!(f, "\n    {}", figures_line("new version", &figures.new))?;
                write!(f, "\n    {}", figures_line("old version", &figures.baseline))?;
            }
        }
        if let Some(message) = &self.message {
            write!(f, "\n  {message}")?;
        }
        Ok(())
    }
}
