//! The rollout request (docs/request.md): its types, and parsing both accepted forms with every field
//! checked before anything moves.
//!
//! Parsing is two passes. Serde reads the JSON into raw structs that reject unknown fields, so a typo is an
//! error naming the field rather than a silent default ([`json`]); then [`validate`] checks ranges and
//! relations and collects every problem, so one refusal names them all. The legacy form ([`legacy`]) is read
//! into the canonical one first.

mod arn;
mod json;
mod legacy;
mod policy;
mod strategy;
mod validate;

pub use arn::{arn_location, function_arn, function_name_of};
pub use json::{read_request_json, request_file_schema, request_schema};

use crate::refusal::{Problems, Refusal};
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest a single step may hold traffic: one week.
pub const MAX_HOLD_SECONDS: u64 = 7 * 24 * 3600;
/// The longest a whole rollout may take, metric delays included: a Step Functions Standard execution lives
/// at most one year, and the safety margin of a day leaves room for retries and the rollback.
pub const MAX_ROLLOUT_SECONDS: u64 = 364 * 24 * 3600;
/// How late CloudWatch data may be declared to arrive, at most: one hour.
pub const MAX_METRICS_DELAY_SECONDS: u64 = 3600;

/// The finest difference between two weights the controller supports, in percentage points: the
/// smallest share of traffic a step may give the new version, the smallest step from one weight to the
/// next, and how close to 100% a step below it may come. Lambda keeps a weight as a double; this keeps
/// every weight a person or a dashboard can tell apart, with room for arithmetic rounding.
pub const MIN_PERCENT_STEP: f64 = 0.001;

/// Parses and checks a request given as JSON text.
pub fn parse_request_str(text: &str) -> Result<RolloutRequest, Refusal> {
    parse_request(&read_request_json(text)?)
}

/// Parses and checks a request in either accepted form: the canonical one, or the legacy input of the
/// AWS Lambda Deployer sample (recognised by its `function-name`, `alias-name` or `new-version` keys).
pub fn parse_request(input: &Value) -> Result<RolloutRequest, Refusal> {
    if !input.is_object() {
        return Err(Refusal::one(
            "(input)",
            "is not a JSON object",
            r#"pass an object such as {"function": "orders-api", "alias": "live", "version": "42"}"#,
        ));
    }
    if is_legacy(input) {
        let mut problems = Problems::default();
        let raw = legacy::legacy_to_raw(json::from_value(input)?, &mut problems);
        validate::validate(raw, problems).map_err(legacy::rename_legacy_fields)
    } else {
        validate::validate(json::from_value(input)?, Problems::default())
    }
}

/// A refusal of a request checked after parsing (against the live account, or the deployment) in the terms
/// its author wrote: the legacy form's field names for a legacy request.
pub fn as_given(input: &Value, refusal: Refusal) -> Refusal {
    if is_legacy(input) { legacy::rename_legacy_fields(refusal) } else { refusal }
}

/// Whether `input` is in the legacy form of the AWS Lambda Deployer sample: an object with its
/// `function-name`, `alias-name` or `new-version` keys.
///
/// ```
/// use canary_core::request::is_legacy;
/// assert!(is_legacy(&serde_json::json!({"function-name": "orders", "steps": 4})));
/// assert!(!is_legacy(&serde_json::json!({"function": "orders"})));
/// ```
pub fn is_legacy(input: &Value) -> bool {
    let legacy_key = |k: &&str| input.as_object().is_some_and(|o| o.contains_key(*k));
    ["function-name", "alias-name", "new-version"].iter().any(legacy_key)
}

/// The most functions one release may move together.
pub const MAX_RELEASE_FUNCTIONS: usize = 10;

/// One function of a release: its alias and the version to roll out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub function: String,
    pub alias: String,
    pub version: String,
}

/// A request that passed every offline check. It serialises in the canonical form of docs/request.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRequest {
    /// The function's name or unqualified ARN, as given; a release's first function.
    pub function: String,
    pub alias: String,
    /// The published version to roll out.
    pub version: String,
    /// A release of several functions: every one, the first being `function`, `alias` and `version`; empty
    /// for a rollout of one function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<Target>,
    pub strategy: Strategy,
    pub health: HealthPolicy,
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// Percentages the rollout pauses before, until someone promotes or aborts it.
    #[serde(default, skip_serializing_if = "Approval::is_empty")]
    pub approval: Approval,
}

/// Manual gates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Pause before shifting to each of these percentages (steps of the schedule; 100 pauses before promotion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_percent: Vec<f64>,
}

impl Approval {
    pub fn is_empty(&self) -> bool {
        self.before_percent.is_empty()
    }
}

/// Lambda functions invoked around the traffic shift; a failure rolls back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Invoked before the first shift, so a failure moves no traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_traffic: Option<String>,
    /// Invoked once the new version carries all traffic; a failure rolls back to the original routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_traffic: Option<String>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.pre_traffic.is_none() && self.post_traffic.is_none()
    }
}

impl RolloutRequest {
    /// The function's plain name, which CloudWatch uses in the `FunctionName` dimension.
    pub fn function_name(&self) -> &str {
        function_name_of(&self.function)
    }

    /// The weights the alias will carry, in order, with the seconds each is held.
    pub fn schedule(&self) -> Schedule {
        Schedule::from_strategy(&self.strategy)
    }

    /// The request in its canonical form as a person would write it, which reads back as the same request:
    /// with health checks off, `"health": {"enabled": false}` alone (the other fields would be refused as
    /// ignored), and no `no_data_max_wait_seconds` unless `no_data` waits; a release as its `functions` alone.
    pub fn as_written(&self) -> Value {
        let mut written = serde_json::to_value(self).expect("requests serialise");
        if !self.health.enabled {
            written["health"] = serde_json::json!({"enabled": false});
        } else if self.health.no_data != NoData::Wait {
            // Only `wait` waits: its limit beside `fail` or `pass` is refused as ignored.
            written["health"].as_object_mut().map(|health| health.remove("no_data_max_wait_seconds"));
        }
        if let Some(object) = written.as_object_mut().filter(|_| self.is_release()) {
            for key in ["function", "alias", "version"] {
                object.remove(key);
            }
        }
        written
    }

    /// Whether this is a release of several functions.
    pub fn is_release(&self) -> bool {
        !self.functions.is_empty()
    }

    /// Every function the request moves, in the order given: one, or a release's.
    pub fn targets(&self) -> Vec<Target> {
        if self.is_release() {
            return self.functions.clone();
        }
        vec![Target { function: self.function.clone(), alias: self.alias.clone(), version: self.version.clone() }]
    }

    /// The same request for one function of it: its function, alias and version, the rest of the policy
    /// shared.
    pub fn for_target(&self, target: &Target) -> RolloutRequest {
        RolloutRequest {
            function: target.function.clone(),
            alias: target.alias.clone(),
            version: target.version.clone(),
            functions: Vec::new(),
            ..self.clone()
        }
    }
}

/// How traffic moves to the new version. Exactly one form per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// `percent` more at every step, each held `interval_seconds`, until 100%.
    Linear { percent: f64, interval_seconds: u64 },
    /// `percent` first, held `bake_seconds`, then 100%.
    Canary { percent: f64, bake_seconds: u64 },
    /// Explicit steps, strictly increasing, each below 100; 100% follows the last.
    Steps(Vec<StepSpec>),
    /// Straight to 100%, then checked for `bake_seconds` if given.
    AllAtOnce {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bake_seconds: Option<u64>,
    },
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::Linear { percent: 10.0, interval_seconds: 60 }
    }
}

/// One explicit step of `strategy.steps`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub percent: f64,
    pub hold_seconds: u64,
}

/// What to do when a window has too little traffic to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    /// Hold the step, up to `no_data_max_wait_seconds` in all, then fail.
    #[default]
    Wait,
    Fail,
    Pass,
}

/// The most alarms one rollout may watch (DescribeAlarms takes 100 names; this leaves room).
pub const MAX_ALARMS: usize = 50;

/// The health rules every step is judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// `false` skips the health checks (the legacy `health-check: false`).
    pub enabled: bool,
    /// The new version's highest acceptable error rate. Always set for a parsed request (the baseline
    /// comparison needs it given explicitly); `None` is kept for states written before that rule.
    pub max_error_rate: Option<f64>,
    pub min_invocations: u64,
    /// Fail the new version when its error rate is significantly higher than the version it replaces.
    #[serde(default)]
    pub compare_to_baseline: bool,
    /// How sure every health test must be before it fails the new version (the baseline comparison, the
    /// error-rate limit, the latency rule): a healthy version is rolled back by one of them at most
    /// `1 - baseline_confidence` of the time, over every look of the rollout ([`crate::sequential`]).
    #[serde(default = "default_baseline_confidence")]
    pub baseline_confidence: f64,
    /// Fail when more than 1% of the new version's calls take conclusively longer than the old version's
    /// p99 `Duration` before the rollout times 1 + this fraction (its p99 is that much higher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_p99_increase: Option<f64>,
    /// CloudWatch alarms; one that enters ALARM after the rollout started fails it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    pub no_data: NoData,
    /// With `no_data: wait`, the longest the step before the promotion is held beyond its schedule waiting for
    /// enough traffic to judge.
    pub no_data_max_wait_seconds: u64,
    pub metrics_delay_seconds: u64,
    /// Look at the evidence every this many seconds within a hold, and roll back as soon as it is conclusive
    /// (sequential tests, [`crate::sequential`]); `Some(0)` looks once, at the end of each hold; `None` (the
    /// default) chooses: every minute or more, up to 20 looks a hold, within the history budget
    /// ([`crate::budget::look_interval`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval_seconds: Option<u64>,
    /// How long both versions may fail above the limit together (an outage they share) before the step
    /// fails: the new version's traffic may be its cause. No weight is raised meanwhile.
    #[serde(default = "default_max_shared_outage_seconds")]
    pub max_shared_outage_seconds: u64,
}

impl HealthPolicy {
    /// How long each held step waits after its hold for complete metrics: the delay, when there are
    /// checks to wait for.
    pub fn effective_metrics_delay(&self) -> u64 {
        if self.enabled { self.metrics_delay_seconds } else { 0 }
    }
}

fn default_baseline_confidence() -> f64 {
    0.99
}

fn default_max_shared_outage_seconds() -> u64 {
    300
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            enabled: true,
            max_error_rate: Some(0.01),
            min_invocations: 10,
            compare_to_baseline: false,
            baseline_confidence: default_baseline_confidence(),
            max_latency_p99_increase: None,
            alarms: Vec::new(),
            no_data: NoData::Wait,
            no_data_max_wait_seconds: 14_400,
            metrics_delay_seconds: 120,
            check_interval_seconds: None,
            max_shared_outage_seconds: default_max_shared_outage_seconds(),
        }
    }
}
