//! The input of the AWS Lambda Deployer sample, accepted unchanged: read into the canonical form, and every
//! refusal named in the legacy terms its user wrote.

use super::json::{RawAllAtOnce, RawHealth, RawLinear, RawRequest, RawStrategy, string_or_integer};
use crate::refusal::{FieldError, Problems, Refusal};
use serde::Deserialize;
use serde_json::Value;

/// The AWS Lambda Deployer sample's input, accepted unchanged.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Legacy request (the AWS Lambda Deployer sample's)")]
pub(super) struct RawLegacy {
    #[serde(rename = "function-name")]
    #[schemars(required)]
    pub(super) function_name: Option<String>,
    #[serde(rename = "alias-name")]
    #[schemars(required)]
    pub(super) alias_name: Option<String>,
    #[serde(rename = "new-version", default, deserialize_with = "string_or_integer")]
    #[schemars(required, schema_with = "super::json::version_schema")]
    pub(super) new_version: Option<String>,
    pub(super) steps: Option<Value>,
    pub(super) interval: Option<Value>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    #[serde(rename = "health-check")]
    pub(super) health_check: Option<bool>,
}

pub(super) fn legacy_to_raw(legacy: RawLegacy, problems: &mut Problems) -> RawRequest {
    let steps = legacy_whole_number(problems, "steps", legacy.steps.as_ref(), "10 for 10% per step");
    let interval = legacy_whole_number(problems, "interval", legacy.interval.as_ref(), "120 for two minutes");
    if let Some(kind) = legacy.kind.as_deref().filter(|k| *k != "linear") {
        problems.add(
            "type",
            format!("\"{kind}\" is not a legacy deployment type"),
            "use \"linear\", or the canonical form's strategy for canary and explicit steps",
        );
    }
    // One step is all of the traffic at once; the sample judged it after one interval, and so does this: a
    // linear 100% step would never be judged (the final step of a linear rollout is not held).
    let strategy = if steps == Some(1) {
        RawStrategy { all_at_once: Some(RawAllAtOnce { bake_seconds: interval }), ..RawStrategy::default() }
    } else {
        RawStrategy {
            linear: Some(RawLinear {
                // 100 / steps computed once; each weight is then k * (100 / steps), exact to f64 precision
                // and strictly increasing, so no weight repeats however many steps there are. A bad `steps`
                // was named above; 100% per step stands in so the other fields are still checked.
                percent: Some(steps.map_or(100.0, |n| 100.0 / n as f64)),
                interval_seconds: Some(interval.unwrap_or(1)),
            }),
            ..RawStrategy::default()
        }
    };
    RawRequest {
        function: legacy.function_name,
        alias: legacy.alias_name,
        version: legacy.new_version,
        strategy: Some(strategy),
        health: Some(RawHealth { enabled: legacy.health_check, ..RawHealth::default() }),
        hooks: None,
        approval: None,
        functions: None,
    }
}

/// A legacy user wrote the legacy names, so errors must name those, and name each field once.
pub(super) fn rename_legacy_fields(refusal: Refusal) -> Refusal {
    let mut errors: Vec<FieldError> = Vec::new();
    for mut error in refusal.errors {
        error.field = match error.field.as_str() {
            "function" => "function-name".into(),
            "alias" => "alias-name".into(),
            "version" => "new-version".into(),
            "strategy.linear.percent" | "strategy" | "health.no_data_max_wait_seconds" => "steps".into(),
            "strategy.linear.interval_seconds" | "strategy.all_at_once.bake_seconds" => "interval".into(),
            _ => error.field,
        };
        if !errors.iter().any(|e| e.field == error.field) {
            errors.push(error);
        }
    }
    Refusal { errors }
}

fn legacy_whole_number(problems: &mut Problems, field: &str, value: Option<&Value>, example: &str) -> Option<u64> {
    match value {
        None => {
            problems.add(field, "is missing", format!("give a whole number of at least 1, e.g. {example}"));
            None
        }
        Some(v) => match v.as_u64().filter(|n| *n >= 1) {
            Some(n) => Some(n),
            None => {
                problems.add(field, format!("{v} is not a whole number of at least 1"), format!("use e.g. {example}"));
                None
            }
        },
    }
}
