//! What canaryctl prints with `--output json`: one type per command, every routing in one shape (a list of
//! `{version, percent}` shares, the primary version first, as `watch` prints it), and the one schema of
//! them all, `docs/canaryctl-output.schema.json` (`canaryctl schema output`; a test holds the file to these
//! types, and the end-to-end suite validates every JSON the real commands print against the file).
//!
//! The execution's own output (what Step Functions returns, docs/request.md) keeps Lambda's shape
//! (`function_version`, `additional_version_weights`): it is the state machine's wire format, read by
//! other tools. canaryctl translates it.

use crate::events::{EventLine, Share, shares};
use crate::render::ListRow;
use crate::views::StatusView;
use canary_core::execution::{ExecutionOutcome, ExecutionResult, ExecutionStatus};
use canary_core::{Report, Routing};
use schemars::JsonSchema;
use serde::{Serialize, Serializer};

/// A routing as shares, for `#[serde(serialize_with)]`.
pub fn as_shares<S: Serializer>(routing: &Routing, serializer: S) -> Result<S::Ok, S::Error> {
    shares(routing).serialize(serializer)
}

/// An optional routing as shares (null when absent), for `#[serde(serialize_with)]`.
pub fn as_shares_opt<S: Serializer>(routing: &Option<Routing>, serializer: S) -> Result<S::Ok, S::Error> {
    routing.as_ref().map(shares).serialize(serializer)
}

/// An execution's report with its routings as shares, for `#[serde(serialize_with)]`.
pub fn as_report_view<S: Serializer>(report: &Option<Report>, serializer: S) -> Result<S::Ok, S::Error> {
    report.as_ref().map(ReportView::from).serialize(serializer)
}

/// An execution's report (docs/request.md), its routings as shares.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportView {
    pub outcome: canary_core::rollout::Outcome,
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// What the alias was left routing.
    pub routing: Vec<Share>,
    /// The latest steps, with the figures that decided each.
    pub steps: Vec<canary_core::rollout::StepRecord>,
    /// How many earlier steps the report leaves out.
    pub steps_omitted: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<canary_core::rollout::HookRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<canary_core::health::Failure>,
    /// A release's functions, the first included; absent for a rollout of one function.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionRouting>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<&Report> for ReportView {
    fn from(r: &Report) -> Self {
        ReportView {
            outcome: r.outcome,
            function: r.function.clone(),
            alias: r.alias.clone(),
            old_version: r.old_version.clone(),
            new_version: r.new_version.clone(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            routing: shares(&r.routing),
            steps: r.steps.clone(),
            steps_omitted: r.steps_omitted,
            hooks: r.hooks.clone(),
            reason: r.reason.clone(),
            functions: r
                .functions
                .iter()
                .map(|f| FunctionRouting {
                    function: f.function.clone(),
                    alias: f.alias.clone(),
                    old_version: Some(f.old_version.clone()),
                    new_version: Some(f.new_version.clone()),
                    routing: Some(shares(&f.routing)),
                })
                .collect(),
            warnings: r.warnings.clone(),
        }
    }
}

/// One function of a release and what its alias routes.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FunctionRouting {
    pub function: String,
    pub alias: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<String>,
    /// Null when the alias no longer exists.
    pub routing: Option<Vec<Share>>,
}

/// `start`, `undo`, `retry` (without `--wait`): the execution started.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Started {
    pub execution_arn: String,
}

/// `start --wait`, `undo --wait`, `retry --wait`: how the rollout ended.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Ended {
    pub execution_arn: String,
    pub outcome: ExecutionOutcome,
    /// The execution's report, when it produced one (promoted, rolled back, aborted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportView>,
    /// Why it did not promote, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Ended {
    pub fn of(execution_arn: &str, result: &ExecutionResult) -> Self {
        Ended {
            execution_arn: execution_arn.to_string(),
            outcome: result.outcome,
            report: result.report.as_ref().map(ReportView::from),
            message: result.message.clone(),
        }
    }
}

/// `promote`: the answer given to the approval gate.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Answered {
    pub execution_arn: String,
    pub decision: canary_core::rollout::Decision,
    pub message: String,
}

/// `pause` and `resume`: the pause set or lifted on every function of the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PauseAnswer {
    pub execution_arn: String,
    /// True after `pause`, false after `resume`.
    pub paused: bool,
    /// The functions whose pause tag was set or removed.
    pub functions: Vec<String>,
    pub message: String,
}

/// `abort`: what the execution and every alias it moved are left as, read afresh.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Aborted {
    pub execution_arn: String,
    /// Always `aborted`.
    pub outcome: ExecutionOutcome,
    /// Step Functions' status afterwards.
    pub status: ExecutionStatus,
    /// Whether the alias (every alias of a release) was restored; false when someone else changed it.
    pub restored: bool,
    /// What the (first) alias routes now; null when its request could not be read or the alias is gone.
    pub routing: Option<Vec<Share>>,
    /// A release's functions, each with what its alias routes now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionRouting>,
    pub message: String,
}

/// `plan`: the weights the alias will carry, in order, and how long it all takes.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Planned {
    /// Invocations of the new version the promotion needs (0 without health checks).
    pub evidence_needed: u64,
    /// With `--requests-per-minute`: what each held step can gather at that traffic.
    pub evidence: Option<canary_core::budget::Outlook>,
    /// The request, defaults filled in.
    #[schemars(with = "serde_json::Value")]
    pub request: canary_core::RolloutRequest,
    /// `aws` or `local`.
    pub runs_on: String,
    /// Every weight in order, ending at 100, with its hold.
    pub steps: Vec<canary_core::schedule::Step>,
    /// The steps (1-based) whose health is judged.
    pub judged_steps: Vec<usize>,
    /// Every hold, in seconds.
    pub total_seconds: u64,
    pub estimated_seconds: u64,
    pub worst_case_seconds: u64,
    pub durations: canary_core::budget::Durations,
    /// With `--provisioned-concurrency`: how Lambda shares it between the versions at each weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned_concurrency: Option<String>,
}

/// Which `$defs` entry each command's JSON is: (command, definition).
pub const COMMANDS: [(&str, &str); 15] = [
    ("plan", "Planned"),
    ("start", "Started"),
    ("undo", "Started"),
    ("retry", "Started"),
    ("start --wait", "Ended"),
    ("undo --wait", "Ended"),
    ("retry --wait", "Ended"),
    ("status", "StatusView"),
    ("watch", "EventLine"),
    ("list", "ListOutput"),
    ("history", "HistoryOutput"),
    ("promote", "Answered"),
    ("pause", "PauseAnswer"),
    ("resume", "PauseAnswer"),
    ("abort", "Aborted"),
];

/// The schema of everything canaryctl prints with `--output json`, as docs/canaryctl-output.schema.json
/// holds it: each command's output is one of `$defs` ([`COMMANDS`]); `watch` prints one `EventLine` a line.
pub fn schema() -> serde_json::Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator();
    let _ = generator.subschema_for::<Planned>();
    let _ = generator.subschema_for::<Started>();
    let _ = generator.subschema_for::<Ended>();
    let _ = generator.subschema_for::<StatusView>();
    let _ = generator.subschema_for::<EventLine>();
    let list = generator.subschema_for::<Vec<ListRow>>();
    let history = generator.subschema_for::<Vec<crate::history::HistoryRow>>();
    let _ = generator.subschema_for::<Answered>();
    let _ = generator.subschema_for::<PauseAnswer>();
    let _ = generator.subschema_for::<Aborted>();
    let mut defs = generator.take_definitions(true);
    defs.insert("ListOutput".into(), list.to_value());
    defs.insert("HistoryOutput".into(), history.to_value());
    let commands: serde_json::Map<String, serde_json::Value> =
        COMMANDS.iter().map(|(command, def)| (command.to_string(), format!("#/$defs/{def}").into())).collect();
    let mut any_of: Vec<serde_json::Value> = Vec::new();
    for (_, def) in COMMANDS {
        let reference = serde_json::json!({"$ref": format!("#/$defs/{def}")});
        if !any_of.contains(&reference) {
            any_of.push(reference);
        }
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lambda-canary.dev/schemas/canaryctl-output-v1.json",
        "title": "canaryctl --output json",
        "description": "What each command prints with --output json: x-commands names the definition of each \
            (watch prints one EventLine a line). Every routing is a list of {version, percent}, the primary version \
            first.",
        "x-commands": commands,
        "anyOf": any_of,
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// docs/canaryctl-output.schema.json is the schema of these types (CANARY_WRITE_SCHEMA=1 rewrites it).
    #[test]
    fn the_published_output_schema_is_the_generated_one() {
        let generated = schema();
        crate::testing::holds_published_schema("canaryctl-output.schema.json", &generated);
        for (_, def) in COMMANDS {
            assert!(generated["$defs"].get(def).is_some(), "{def} is not in the schema");
        }
    }

    /// No command's schema describes a routing in Lambda's shape: one shape per field.
    #[test]
    fn no_output_has_lambdas_routing_shape() {
        let text = schema()["$defs"].to_string();
        for lambda_shape in ["additional_version_weights", "function_version"] {
            assert!(!text.contains(lambda_shape), "an output schema still names {lambda_shape}");
        }
    }

    /// Whether `value` is valid under the published schema's definition of `command`'s output: the errors.
    fn errors(command: &str, value: &Value) -> Vec<String> {
        let mut narrowed = schema();
        let definition = narrowed["x-commands"][command].clone();
        assert!(definition.is_string(), "no output of {command}");
        narrowed.as_object_mut().unwrap().remove("anyOf");
        narrowed["$ref"] = definition;
        let validator = jsonschema::validator_for(&narrowed).expect("the schema compiles");
        validator.iter_errors(value).map(|e| format!("{e} at {}", e.instance_path())).collect()
    }

    /// `plan` runs offline, so its output is held to the schema here (the end-to-end suite holds the rest):
    /// each shipped request, with and without the traffic and provisioned concurrency options.
    #[test]
    fn plans_of_the_shipped_requests_hold_to_the_schema() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        for file in ["deploy/prod-rollout.json", "deploy/staging-rollout.json", "docs/examples/orders-api-rollout.json"]
        {
            let mut raw: Value =
                serde_json::from_str(&std::fs::read_to_string(format!("{root}/{file}")).unwrap()).unwrap();
            raw["version"] = json!("42");
            let request = canary_core::parse_request(&raw).unwrap();
            for rate in [None, Some(3.0)] {
                let mut plan = crate::render::plan_json(&request, "aws", rate);
                plan.provisioned_concurrency = rate.map(|_| canary_core::budget::provisioned_split(&request, 10));
                let value = serde_json::to_value(&plan).unwrap();
                assert_eq!(errors("plan", &value), Vec::<String>::new(), "{file}");
            }
        }
        assert!(!errors("plan", &json!({"steps": "none"})).is_empty(), "the schema refuses what is not a plan");
    }

    #[test]
    fn a_report_is_shown_with_shares() {
        let report: Report = serde_json::from_value(json!({"outcome": "rolled_back", "function": "orders",
            "alias": "live", "old_version": "41", "new_version": "42", "started_at": "2026-11-28T12:00:00Z",
            "finished_at": "2026-11-28T12:10:00Z", "steps": [],
            "routing": {"function_version": "41", "additional_version_weights": {"42": 0.25}},
            "functions": [{"function": "orders", "alias": "live", "old_version": "41", "new_version": "42",
                           "routing": {"function_version": "41"}}]}))
        .unwrap();
        let view = serde_json::to_value(ReportView::from(&report)).unwrap();
        assert_eq!(view["routing"], json!([{"version": "41", "percent": 75.0}, {"version": "42", "percent": 25.0}]));
        assert_eq!(view["functions"][0]["routing"], json!([{"version": "41", "percent": 100.0}]));
        let result = ExecutionResult { outcome: ExecutionOutcome::RolledBack, report: Some(report), message: None };
        let ended = serde_json::to_value(Ended::of("arn:aws:states:us-east-1:1:execution:m:x", &result)).unwrap();
        assert_eq!(errors("start --wait", &ended), Vec::<String>::new());
    }
}
