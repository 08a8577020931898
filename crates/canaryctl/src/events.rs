//! What `canaryctl watch` reports as a rollout goes: typed events, one per state the execution leaves.
//!
//! `-o json` prints each as one JSON object a line (JSON Lines), `{"event_version": 1, "type": ..., ...}`;
//! text output prints each event's `message`. The schema is `docs/watch-events.schema.json`, generated from
//! these types (a test holds the file to them) and described in docs/operators.md. Within one
//! `event_version`, fields and types may be added; a field removed or renamed, a meaning changed or a type
//! removed makes the next version. Readers ignore what they do not know.

use canary_core::asl::State;
use canary_core::budget::duration_text;
use canary_core::execution::ExecutionOutcome;
use canary_core::rollout::percent_text;
use canary_core::{Check, Next, Rollout, Routing, Verdict};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

/// The version of the event schema: the `event_version` of every line.
pub const EVENT_VERSION: u32 = 1;

/// One line of `canaryctl watch -o json`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EventLine {
    /// The schema's version: 1. Readers should check it and ignore fields and types they do not know.
    pub event_version: u32,
    /// The execution (rollout) the event is about.
    pub execution_arn: String,
    /// When it happened: the time of the execution's history event; for `ended`, when the execution
    /// stopped; for `status`, when it was read.
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: Event,
}

impl EventLine {
    pub fn new(execution_arn: &str, at: DateTime<Utc>, event: Event) -> Self {
        EventLine { event_version: EVENT_VERSION, execution_arn: execution_arn.to_string(), at, event }
    }
}

/// What happened. Every type carries `message`, the line text output prints for it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Where the rollout stands when watching begins (the first line).
    Status {
        /// The execution's name.
        name: String,
        outcome: ExecutionOutcome,
        /// Absent when the execution never prepared a rollout (refused at once, for example).
        #[serde(skip_serializing_if = "Option::is_none")]
        rollout: Option<Position>,
        message: String,
    },
    /// The request was checked against the live alias and the alias locked; nothing moved yet.
    Prepared {
        function: String,
        alias: String,
        old_version: String,
        new_version: String,
        step_count: usize,
        message: String,
    },
    /// The alias was moved to the next step's weight (the last step: 100%).
    StepMoved {
        /// In a release, the function whose alias this is (one event per function); absent for a rollout of
        /// one function.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function: Option<String>,
        /// 1-based.
        step: usize,
        step_count: usize,
        /// The new version's share of the alias's traffic, in percent.
        weight_percent: f64,
        routing: Vec<Share>,
        /// Seconds until the step's first health check; absent when the step is not held.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_check_seconds: Option<u64>,
        message: String,
    },
    /// A health check of the current step: a look within its hold, or its verdict.
    StepJudged {
        /// In a release, the function judged (one event per function, each on its own figures); absent for a
        /// rollout of one function.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function: Option<String>,
        step: usize,
        step_count: usize,
        /// Looks within this step so far.
        look: u32,
        verdict: Judgement,
        /// Both versions' figures for the step's window so far; absent when health checks are off.
        #[serde(skip_serializing_if = "Option::is_none")]
        new: Option<Figures>,
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<Figures>,
        /// Seconds until the next look, while the step is still held.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_check_seconds: Option<u64>,
        message: String,
    },
    /// A pre- or post-traffic hook ran.
    HookRan {
        /// `pre_traffic` or `post_traffic`.
        hook: String,
        function: String,
        passed: bool,
        message: String,
    },
    /// The rollout waits at an approval gate: `canaryctl promote` (or `abort`) answers it.
    ApprovalWaiting {
        /// The percentage the rollout is paused before.
        before_percent: f64,
        message: String,
    },
    /// The alias was restored to the routing it had before the rollout.
    RolledBack { routing: Vec<Share>, message: String },
    /// The execution ended (the last line): `outcome` is what the exit code says.
    Ended {
        outcome: ExecutionOutcome,
        /// True only when the new version was promoted.
        promoted: bool,
        /// What the alias was left routing, when the rollout reported it.
        #[serde(skip_serializing_if = "Option::is_none")]
        routing: Option<Vec<Share>>,
        /// The weights the rollout went through, in order, when it reported them.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        steps_percent: Vec<f64>,
        message: String,
    },
}

/// Where a running (or ended) rollout stands, in a `status` event.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Position {
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
    /// 1-based; 0 before the first move.
    pub step: usize,
    pub step_count: usize,
    pub weight_percent: f64,
    pub routing: Vec<Share>,
}

/// One version's share of an alias's traffic.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Share {
    pub version: String,
    /// In percent, 0 to 100.
    pub percent: f64,
}

/// One version's figures over a step's window (CloudWatch's AWS/Lambda metrics of that version).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct Figures {
    pub invocations: u64,
    pub errors: u64,
    /// Errors per invocation, 0 to 1 (0 without invocations).
    pub error_rate: f64,
    /// p99 of Duration in milliseconds; absent without invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// What a health check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// Nothing conclusive yet; the hold goes on.
    Inconclusive,
    /// The step passed.
    Healthy,
    /// The new version failed: the rollout rolls back.
    Failed,
    /// Both versions fail (an outage they share): the weight is held.
    SharedOutage,
    /// The promotion waits for more traffic (`no_data: wait`).
    TooLittleEvidence,
    /// The step passed, and an operator's pause (`canaryctl pause`) holds the weight: judged again at the next
    /// look, until `canaryctl resume`.
    Paused,
}

impl Event {
    /// The line text output prints.
    pub fn message(&self) -> &str {
        match self {
            Event::Status { message, .. }
            | Event::Prepared { message, .. }
            | Event::StepMoved { message, .. }
            | Event::StepJudged { message, .. }
            | Event::HookRan { message, .. }
            | Event::ApprovalWaiting { message, .. }
            | Event::RolledBack { message, .. }
            | Event::Ended { message, .. } => message,
        }
    }
}

/// A release's check of one function that did not fail itself while another did: the release rolls back,
/// and this function's event says so rather than repeating the other's failure as its own.
fn own_judgement(mut event: Event, view: &Rollout) -> Event {
    let own = view.history.last().and_then(|r| r.verdict.as_ref());
    let own_failure = matches!(own, Some(canary_core::health::Verdict::Fail(_)));
    if let Event::StepJudged { step, step_count, verdict, next_check_seconds, message, .. } = &mut event
        && view.next == Next::Rollback
        && !own_failure
    {
        let passed = own == Some(&canary_core::health::Verdict::Pass);
        *verdict = if passed { Judgement::Healthy } else { Judgement::Inconclusive };
        *next_check_seconds = None;
        *message = format!(
            "step {step}/{step_count}: {} of its own; the release rolls back with the function that failed",
            if passed { "healthy" } else { "nothing conclusive" }
        );
    }
    event
}

impl Event {
    /// The event as one function's of a release: named, its line starting with the function.
    pub fn of_function(mut self, name: &str) -> Event {
        // Prepared names its function already.
        if let Event::StepMoved { function, message, .. } | Event::StepJudged { function, message, .. } = &mut self {
            *function = Some(name.to_string());
            *message = format!("{name}: {message}");
        }
        self
    }
}

/// The shares of a routing: the primary version first, then the others by version.
pub fn shares(routing: &Routing) -> Vec<Share> {
    // To a millionth of a percent: 1 - 0.3 is 0.7000000000000001 in floating point.
    let percent = |weight: f64| (weight * 100.0 * 1e6).round() / 1e6;
    let others: f64 = routing.additional_version_weights.values().sum();
    let primary = Share { version: routing.function_version.clone(), percent: percent(1.0 - others) };
    let weights = &routing.additional_version_weights;
    let rest = weights.iter().map(|(version, weight)| Share { version: version.clone(), percent: percent(*weight) });
    std::iter::once(primary).chain(rest).collect()
}

fn figures(v: &canary_core::VersionFigures) -> Figures {
    Figures { invocations: v.invocations, errors: v.errors, error_rate: v.error_rate(), p99_ms: v.p99_duration_ms }
}

/// The events a state the execution `name` left announces (none for states that say nothing new, such as
/// `Route`).
pub fn of_state(name: &str, state_name: &str, output: Option<&str>) -> Vec<Event> {
    let Some(rollout) = output.and_then(|o| serde_json::from_str::<Rollout>(o).ok()) else {
        return Vec::new();
    };
    let Ok(state) = state_name.parse::<State>() else {
        return Vec::new();
    };
    // A release: each function's own event of a move or a check (its routing, its figures and verdict).
    let per_function =
        rollout.width() > 1 && matches!(state, State::Prepare | State::Shift | State::Promote | State::CheckHealth);
    let mut events: Vec<Event> = if per_function {
        let views = rollout.function_views();
        let event = |view: &Rollout| state_event(state, view).map(|e| own_judgement(e, view));
        views.iter().filter_map(|view| Some(event(view)?.of_function(&view.request.function))).collect()
    } else {
        state_event(state, &rollout).into_iter().collect()
    };
    // Any state that leads to a gate announces the wait (the gate's own state is left only once answered).
    if rollout.next == Next::AwaitApproval && !matches!(state, State::Route | State::AwaitApproval) {
        let before_percent = rollout.schedule().step(rollout.next_index()).percent;
        events.push(Event::ApprovalWaiting {
            before_percent,
            message: format!(
                "waiting for approval before {}: canaryctl promote {name} [--full], or canaryctl abort {name}",
                percent_text(before_percent)
            ),
        });
    }
    events
}

/// The event of an execution's end.
pub fn ended(result: &canary_core::execution::ExecutionResult) -> Event {
    let report = result.report.as_ref();
    Event::Ended {
        outcome: result.outcome,
        promoted: result.promoted(),
        routing: report.map(|r| shares(&r.routing)),
        steps_percent: report.map(|r| r.steps.iter().map(|s| s.percent).collect()).unwrap_or_default(),
        message: format!(
            "{}{}",
            result.outcome,
            result.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
    }
}

/// The first event: where the rollout stands.
pub fn status(view: &crate::views::StatusView) -> Event {
    Event::Status {
        name: view.name.clone(),
        outcome: view.outcome,
        rollout: view.rollout.as_ref().map(|r| Position {
            function: r.function.clone(),
            alias: r.alias.clone(),
            old_version: r.old_version.clone(),
            new_version: r.new_version.clone(),
            step: r.step,
            step_count: r.step_count,
            weight_percent: r.weight_percent,
            routing: shares(&r.routing),
        }),
        message: view.to_string(),
    }
}

/// The event of a health check's `record` (the rollout's latest step), with what it concluded and its line.
pub fn judged(
    rollout: &Rollout,
    record: &canary_core::rollout::StepRecord,
    step: usize,
    count: usize,
    verdict: Judgement,
    text: String,
) -> Event {
    Event::StepJudged {
        function: None,
        step,
        step_count: count,
        look: record.looks,
        verdict,
        new: record.figures.as_ref().map(|f| figures(&f.new)),
        old: record.figures.as_ref().map(|f| figures(&f.baseline)),
        next_check_seconds: (rollout.next == Next::Hold).then_some(rollout.wait_seconds),
        message: text,
    }
}

/// The JSON Schema of an event line, as docs/watch-events.schema.json holds it.
pub fn schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(EventLine)).expect("schemas serialise");
    schema["$id"] = serde_json::json!("https://lambda-canary.dev/schemas/watch-events-v1.json");
    schema["title"] = serde_json::json!("canaryctl watch -o json: one event a line");
    schema
}

/// A short form of the checks beyond the error rate, for progress lines.
fn check_text(check: &Check) -> Option<String> {
    use canary_core::health::Signal;
    match check.signal {
        Signal::Baseline if check.skipped => Some("old version idle".to_string()),
        Signal::Baseline => Some(match check.p_value {
            Some(p) => format!("old version {} (p = {p:.3})", percent_text(check.threshold * 100.0)),
            None => format!("old version {}", percent_text(check.threshold * 100.0)),
        }),
        Signal::LatencyP99 if check.skipped => Some("latency not judged".into()),
        Signal::LatencyP99 => Some(format!("{} slow", percent_text(check.value * 100.0))),
        Signal::SharedOutage if check.passed => Some(check.message.clone()),
        Signal::Alarm if check.value > 0.0 && check.passed => Some(check.message.clone()),
        Signal::Alarm
        | Signal::SharedOutage
        | Signal::ErrorRate
        | Signal::Invocations
        | Signal::Hook
        | Signal::Error
        | Signal::Paused => None,
    }
}

/// The event of a state the execution left, with its progress line, or `None` for states that say nothing
/// new. An approval gate ahead is announced by [`of_state`].
pub fn state_event(state: State, rollout: &Rollout) -> Option<Event> {
    let count = rollout.step_count;
    let number = rollout.step.map_or(0, |s| s + 1);
    match state {
        State::Prepare => Some(Event::Prepared {
            function: rollout.request.function.clone(),
            alias: rollout.request.alias.clone(),
            old_version: rollout.old_version.clone(),
            new_version: rollout.request.version.clone(),
            step_count: count,
            message: format!(
                "prepared: {}:{} from version {} to {} in {count} step{}{}",
                rollout.request.function,
                rollout.request.alias,
                rollout.old_version,
                rollout.request.version,
                if count == 1 { "" } else { "s" },
                match rollout.outlook() {
                    Some(outlook) => format!(". In the hour before: {}", outlook.describe(&rollout.request)),
                    None => String::new(),
                }
            ) + &rollout.provisioned_note().map(|note| format!(". {note}")).unwrap_or_default(),
        }),
        State::Shift | State::Promote => {
            let routing = rollout.expected_routing();
            let held = rollout.next == Next::Hold;
            Some(Event::StepMoved {
                function: None,
                step: number,
                step_count: count,
                weight_percent: routing.percent_of(&rollout.request.version),
                routing: shares(&routing),
                next_check_seconds: held.then_some(rollout.wait_seconds),
                message: format!(
                    "step {number}/{count}: alias routes {routing}{}",
                    if held { format!(", checked in {}", duration_text(rollout.wait_seconds)) } else { String::new() }
                ),
            })
        }
        State::CheckHealth => {
            let record = rollout.history.last()?;
            let figures = record.figures.as_ref().map(|f| {
                let errors = f.new.errors;
                format!(
                    "{} invocations, {errors} error{} ({})",
                    f.new.invocations,
                    if errors == 1 { "" } else { "s" },
                    percent_text(f.new.error_rate() * 100.0)
                )
            });
            let mut figures = figures.unwrap_or_else(|| "health checks off".into());
            for extra in record.checks.iter().filter_map(check_text) {
                figures.push_str("; ");
                figures.push_str(&extra);
            }
            // What the check concluded, and its line: one match, so the event's verdict and its text agree.
            let (verdict, text) = match (&record.verdict, rollout.next) {
                (Some(Verdict::Fail(failure)), _) => {
                    (Judgement::Failed, format!("step {number}/{count} failed: {}", failure.message))
                }
                (None, Next::Hold) => (
                    Judgement::Inconclusive,
                    format!(
                        "step {number}/{count}, look {}: {figures}; nothing conclusive, next look in {}",
                        record.looks,
                        duration_text(rollout.wait_seconds)
                    ),
                ),
                (Some(Verdict::SharedOutage { seconds, max_seconds }), Next::Hold) => (
                    Judgement::SharedOutage,
                    format!(
                        "step {number}/{count}: both versions failing for {} (rolled back after {}): {figures}; \
                         holding, next look in {}",
                        duration_text(*seconds),
                        duration_text(*max_seconds),
                        duration_text(rollout.wait_seconds)
                    ),
                ),
                (Some(Verdict::Pass), Next::Hold) if rollout.paused_since.is_some() => (
                    Judgement::Paused,
                    format!(
                        "step {number}/{count} paused at {}: healthy so far ({figures}); held until canaryctl resume, \
                         next look in {}",
                        percent_text(rollout.expected_routing().percent_of(&rollout.request.version)),
                        duration_text(rollout.wait_seconds)
                    ),
                ),
                (_, Next::Hold) => (
                    Judgement::TooLittleEvidence,
                    format!(
                        "step {number}/{count}: too little evidence to promote ({figures} in this step, {} needed over \
                         the rollout), waiting {} more",
                        rollout.evidence_needed(),
                        duration_text(rollout.wait_seconds)
                    ),
                ),
                (_, Next::Rollback) => (
                    Judgement::Failed,
                    format!(
                        "step {number}/{count} failed: {}",
                        rollout.failure.as_ref().map(|f| f.message.clone()).unwrap_or(figures)
                    ),
                ),
                _ => (Judgement::Healthy, format!("step {number}/{count} healthy: {figures}")),
            };
            Some(judged(rollout, record, number, count, verdict, text))
        }
        State::PreTraffic | State::PostTraffic => rollout.hooks_run.last().map(|h| {
            let verdict = if h.passed { "passed" } else { "failed" };
            Event::HookRan {
                hook: h.hook.as_str().to_string(),
                function: h.function.clone(),
                passed: h.passed,
                message: format!("{} hook {} {verdict}: {}", h.hook.as_str().replace('_', "-"), h.function, h.message),
            }
        }),
        State::Rollback => rollout.report.as_ref().map(|r| Event::RolledBack {
            routing: shares(&r.routing),
            message: if r.functions.is_empty() {
                format!("rolled back: alias routes {}", r.routing)
            } else {
                let each: Vec<String> =
                    r.functions.iter().map(|f| format!("{} routes {}", f.function, f.routing)).collect();
                format!("rolled back: {}", each.join(", "))
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::health::{HealthFigures, VersionFigures};
    use chrono::TimeZone;
    use serde_json::{Value, json};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    /// A linear rollout of 50% steps with a gate before 100%, prepared against version 1.
    fn prepared() -> Rollout {
        let request = json!({"function": "orders", "alias": "live", "version": "2",
            "strategy": {"linear": {"percent": 50, "interval_seconds": 120}},
            "approval": {"before_percent": [100]},
            "health": {"check_interval_seconds": 60, "metrics_delay_seconds": 0, "min_invocations": 10}});
        crate::testing::prepared(request, "1", t0())
    }

    fn events(state: &str, rollout: &Rollout) -> Vec<Value> {
        of_state("x", state, Some(&serde_json::to_string(rollout).unwrap()))
            .into_iter()
            .map(|e| serde_json::to_value(EventLine::new("arn:exec", t0(), e)).unwrap())
            .collect()
    }

    #[test]
    fn each_state_announces_a_typed_event_with_its_line() {
        let rollout = prepared();
        let prepared_events = events("Prepare", &rollout);
        assert_eq!(prepared_events.len(), 1);
        let event = &prepared_events[0];
        assert_eq!((event["event_version"].as_u64(), event["type"].as_str()), (Some(1), Some("prepared")));
        assert_eq!((event["old_version"].as_str(), event["step_count"].as_u64()), (Some("1"), Some(2)));
        assert_eq!(event["at"], "2026-12-03T12:00:00Z");
        assert!(event["message"].as_str().unwrap().starts_with("prepared: orders:live from version 1 to 2"));

        let moved = rollout.after_move("r1".into(), t0());
        let event = &events("Shift", &moved)[0];
        assert_eq!((event["type"].as_str(), event["weight_percent"].as_f64()), (Some("step_moved"), Some(50.0)));
        assert_eq!(event["routing"], json!([{"version": "1", "percent": 50.0}, {"version": "2", "percent": 50.0}]));
        assert_eq!(event["next_check_seconds"], 60);

        let figures = HealthFigures {
            new: VersionFigures { invocations: 40, errors: 1, p99_duration_ms: Some(120.0), ..Default::default() },
            baseline: VersionFigures { invocations: 40, errors: 0, ..Default::default() },
            ..Default::default()
        };
        let looked = moved.clone().after_check(Some(figures.clone()), t0() + chrono::Duration::seconds(60));
        let event = &events("CheckHealth", &looked)[0];
        assert_eq!((event["type"].as_str(), event["verdict"].as_str()), (Some("step_judged"), Some("inconclusive")));
        assert_eq!((event["look"].as_u64(), event["new"]["errors"].as_u64()), (Some(1), Some(1)));
        assert_eq!((event["new"]["error_rate"].as_f64(), event["new"]["p99_ms"].as_f64()), (Some(0.025), Some(120.0)));
        assert!(event["old"].get("p99_ms").is_none(), "no p99 without it: {event}");

        // The end of the hold passes, and the gate before 100% is announced after the verdict.
        let plenty = HealthFigures {
            new: VersionFigures { invocations: 400, ..Default::default() },
            baseline: VersionFigures { invocations: 400, ..Default::default() },
            ..Default::default()
        };
        let healthy = moved.after_check(Some(plenty), t0() + chrono::Duration::seconds(120));
        let judged = events("CheckHealth", &healthy);
        let kinds: Vec<&str> = judged.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["step_judged", "approval_waiting"], "{judged:?}");
        assert_eq!(
            (judged[0]["verdict"].as_str(), judged[1]["before_percent"].as_f64()),
            (Some("healthy"), Some(100.0))
        );
        assert!(events("Route", &healthy).is_empty(), "a Choice says nothing new");
        assert_eq!(
            judged[1]["message"],
            "waiting for approval before 100%: canaryctl promote x [--full], or canaryctl abort x"
        );
        assert!(of_state("x", "Shift", Some("not a rollout")).is_empty());
        assert!(of_state("x", "NoSuchState", Some(&serde_json::to_string(&healthy).unwrap())).is_empty());
    }

    #[test]
    fn the_end_says_the_outcome_the_routing_and_the_steps() {
        use canary_core::execution::{ExecutionOutcome, ExecutionResult};
        let result =
            ExecutionResult { outcome: ExecutionOutcome::Aborted, report: None, message: Some("Stopped".into()) };
        let event = serde_json::to_value(ended(&result)).unwrap();
        assert_eq!(
            event,
            json!({"type": "ended", "outcome": "aborted", "promoted": false, "message": "aborted: Stopped"})
        );
    }

    #[test]
    fn shares_are_whole_percentages_of_the_routing() {
        let mut routing = Routing::to_version("41");
        routing.additional_version_weights.insert("42".into(), 0.3);
        let shares = shares(&routing);
        assert_eq!(
            (shares[0].percent, shares[1].percent, shares[1].version.as_str()),
            (70.0, 30.0, "42"),
            "not 70.00000000000001"
        );
    }

    /// docs/watch-events.schema.json is the schema of these types (CANARY_WRITE_SCHEMA=1 rewrites it), and it
    /// names every type.
    #[test]
    fn the_published_event_schema_is_the_generated_one() {
        let generated = schema();
        crate::testing::holds_published_schema("watch-events.schema.json", &generated);
        let text = generated.to_string();
        for kind in
            ["status", "prepared", "step_moved", "step_judged", "hook_ran", "approval_waiting", "rolled_back", "ended"]
        {
            assert!(text.contains(&format!("\"const\":\"{kind}\"")), "{kind} is not in the schema");
        }
        let operators = include_str!("../../../docs/operators.md");
        for kind in ["step_moved", "step_judged", "approval_waiting", "event_version"] {
            assert!(operators.contains(kind), "docs/operators.md does not describe {kind}");
        }
    }
}
