//! The rollout request (`shared/INPUT.md`): parsing both accepted forms, and checking every field before
//! anything moves.
//!
//! Parsing is two passes. Serde reads the JSON into raw structs that reject unknown fields, so a typo is an
//! error naming the field rather than a silent default; then [`validate`] checks ranges and relations and
//! collects every problem, so one refusal names them all.

use crate::budget;
use crate::refusal::{FieldError, Problems, Refusal};
use crate::schedule::{MAX_STEPS, PERCENT_TOLERANCE, Schedule};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The longest a single step may hold traffic: one week.
pub const MAX_HOLD_SECONDS: u64 = 7 * 24 * 3600;
/// The longest a whole rollout may take, metric delays included: a Step Functions Standard execution lives
/// at most one year, and the safety margin of a day leaves room for retries and the rollback.
pub const MAX_ROLLOUT_SECONDS: u64 = 364 * 24 * 3600;
/// How late CloudWatch data may be declared to arrive, at most: one hour.
pub const MAX_METRICS_DELAY_SECONDS: u64 = 3600;

/// A request that passed every offline check. It serialises in the canonical form of INPUT.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRequest {
    /// The function's name or unqualified ARN, as given.
    pub function: String,
    pub alias: String,
    /// The published version to roll out.
    pub version: String,
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
}

/// The plain function name of a name or an unqualified function ARN.
/// Where an ARN lives: its partition, region and account (`arn:aws:lambda:eu-west-1:123456789012:...`).
///
/// ```
/// use canary_core::request::arn_location;
/// let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:x";
/// assert_eq!(arn_location(arn), Some(("aws", "eu-west-1", "123456789012")));
/// assert_eq!(arn_location("orders-api"), None);
/// ```
pub fn arn_location(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.strip_prefix("arn:")?.split(':');
    let partition = parts.next()?;
    let _service = parts.next()?;
    Some((partition, parts.next()?, parts.next()?))
}

pub fn function_name_of(function: &str) -> &str {
    function.rsplit(':').next().unwrap_or(function)
}

/// How traffic moves to the new version. Exactly one form per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub percent: f64,
    pub hold_seconds: u64,
}

/// What to do when a window has too little traffic to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
    /// How sure the baseline comparison must be that the new version is worse (one-sided Fisher's exact test).
    #[serde(default = "default_baseline_confidence")]
    pub baseline_confidence: f64,
    /// Fail when the new version's p99 `Duration` exceeds the baseline's by more than this fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_p99_increase: Option<f64>,
    /// CloudWatch alarms; one that enters ALARM after the rollout started fails it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    pub no_data: NoData,
    /// With `no_data: wait`, the longest a step is held beyond its schedule waiting for traffic.
    pub no_data_max_wait_seconds: u64,
    pub metrics_delay_seconds: u64,
    /// Look at the evidence every this many seconds within a hold, and roll back as soon as it is conclusive
    /// (sequential tests, [`crate::sequential`]); `None` judges each step once, at the end of its hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval_seconds: Option<u64>,
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
            no_data_max_wait_seconds: 600,
            metrics_delay_seconds: 120,
            check_interval_seconds: None,
        }
    }
}

/// Parses and checks a request given as JSON text.
pub fn parse_request_str(text: &str) -> Result<RolloutRequest, Refusal> {
    parse_request(&read_request_json(text)?)
}

/// Reads a request's JSON text: one JSON value, with no key given twice in any object. A duplicated key is
/// a mistake in a hand-written request (JSON readers keep the last, silently: `"version": "42",
/// "version": "43"` would roll out 43), so it is refused, naming the key.
///
/// ```
/// use canary_core::request::read_request_json;
/// let refusal = read_request_json(r#"{"version": "42", "health": {"no_data": "wait", "no_data": "fail"}}"#);
/// assert_eq!(refusal.unwrap_err().fields(), ["health.no_data"]);
/// ```
pub fn read_request_json(text: &str) -> Result<Value, Refusal> {
    let invalid = |e: serde_json::Error| {
        Refusal::one("(input)", format!("is not valid JSON ({e})"), "pass one JSON object, as docs/request.md shows")
    };
    let mut duplicate = None;
    let mut reader = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(DuplicateKeys { found: &mut duplicate, path: String::new() }, &mut reader)
        .map_err(invalid)?;
    if let Some(path) = duplicate {
        return Err(Refusal::one(path, "is given twice", "give each field once"));
    }
    serde_json::from_str(text).map_err(invalid)
}

/// Walks a JSON value and records the path of the first key an object repeats.
struct DuplicateKeys<'a> {
    found: &'a mut Option<String>,
    path: String,
}

impl<'de> serde::de::DeserializeSeed<'de> for DuplicateKeys<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DuplicateKeys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            if !seen.insert(key) && self.found.is_none() {
                *self.found = Some(path.clone());
            }
            map.next_value_seed(DuplicateKeys { found: &mut *self.found, path })?;
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(DuplicateKeys { found: &mut *self.found, path: format!("{}[{i}]", self.path) })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Parses and checks a request in either accepted form: the canonical one, or the legacy input of the
/// AWS Lambda Deployer sample (recognised by its `function-name`, `alias-name` or `new-version` keys).
pub fn parse_request(input: &Value) -> Result<RolloutRequest, Refusal> {
    let Some(object) = input.as_object() else {
        return Err(Refusal::one(
            "(input)",
            "is not a JSON object",
            r#"pass an object such as {"function": "orders-api", "alias": "live", "version": "42"}"#,
        ));
    };
    let is_legacy = ["function-name", "alias-name", "new-version"].iter().any(|k| object.contains_key(*k));
    if is_legacy {
        let mut problems = Problems::default();
        let raw = legacy_to_raw(from_value(input)?, &mut problems);
        validate(raw, problems).map_err(rename_legacy_fields)
    } else {
        validate(from_value(input)?, Problems::default())
    }
}

/// The most unknown fields one refusal names (a request pasted into the wrong place would list them all).
const MAX_UNKNOWN_FIELDS: usize = 20;

/// Reads the request's shape. Every unknown field is named at once (serde stops at the first, so each is
/// taken out in turn and the rest read again, in key order), up to the first field of a wrong type, which is
/// named too and ends the reading.
fn from_value<T: serde::de::DeserializeOwned>(input: &Value) -> Result<T, Refusal> {
    let mut value = input.clone();
    let mut problems = Problems::default();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) => return problems.into_result(parsed),
            Err(error) => error,
        };
        let path = error.path().to_string();
        // The whole input is ".", and a key that is the empty string shows as nothing: name it `""`.
        let field = match path.as_str() {
            "." => "(input)".to_string(),
            p if p.is_empty() || p.ends_with('.') => format!("{p}\"\""),
            _ => path,
        };
        let message = error.inner().to_string();
        problems.add(field, plain_serde_message(&message), "see docs/request.md for the fields and their types");
        let unknown = message.starts_with("unknown field");
        if !(unknown && problems.len() < MAX_UNKNOWN_FIELDS && remove_at(&mut value, error.path())) {
            return Err(problems.into_refusal());
        }
    }
}

/// Removes the object key `path` ends at; false when there is none to remove.
fn remove_at(value: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key }, parents)) = segments.split_last() else { return false };
    let mut at = value;
    for segment in parents {
        // A map key shows as itself (an enum variant as its name, which no request object holds).
        let next = match segment {
            Segment::Seq { index } => at.get_mut(*index),
            other => at.get_mut(other.to_string().as_str()),
        };
        let Some(next) = next else { return false };
        at = next;
    }
    at.as_object_mut().is_some_and(|object| object.remove(key.as_str()).is_some())
}

/// serde's message in the request's terms: no Rust type names (`struct RawStrategy`, `u64`).
fn plain_serde_message(message: &str) -> String {
    let mut out = Vec::new();
    let mut words = message.split(' ').peekable();
    while let Some(word) = words.next() {
        let (core, rest) = word.split_at(word.find([',', ';', ')']).unwrap_or(word.len()));
        let plain = match core {
            "struct" if words.peek().is_some_and(|w| w.starts_with("Raw")) => {
                let next = words.next().unwrap_or_default();
                let tail = next.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
                out.push(format!("an object{tail}"));
                continue;
            }
            "u64" | "u32" | "usize" => "a whole number",
            "f64" => "a number",
            other => other,
        };
        out.push(format!("{plain}{rest}"));
    }
    out.join(" ")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    function: Option<String>,
    alias: Option<String>,
    #[serde(default, deserialize_with = "string_or_integer")]
    version: Option<String>,
    strategy: Option<RawStrategy>,
    health: Option<RawHealth>,
    hooks: Option<RawHooks>,
    approval: Option<RawApproval>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    linear: Option<RawLinear>,
    canary: Option<RawCanary>,
    steps: Option<Vec<StepSpec>>,
    all_at_once: Option<RawAllAtOnce>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinear {
    percent: Option<f64>,
    interval_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanary {
    percent: Option<f64>,
    bake_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllAtOnce {
    bake_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    enabled: Option<bool>,
    max_error_rate: Option<f64>,
    min_invocations: Option<u64>,
    no_data: Option<NoData>,
    no_data_max_wait_seconds: Option<u64>,
    compare_to_baseline: Option<bool>,
    baseline_confidence: Option<f64>,
    max_latency_p99_increase: Option<f64>,
    alarms: Option<Vec<String>>,
    metrics_delay_seconds: Option<u64>,
    check_interval_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    pre_traffic: Option<String>,
    post_traffic: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    before_percent: Option<Vec<f64>>,
}

/// The AWS Lambda Deployer sample's input, accepted unchanged.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLegacy {
    #[serde(rename = "function-name")]
    function_name: Option<String>,
    #[serde(rename = "alias-name")]
    alias_name: Option<String>,
    #[serde(rename = "new-version", default, deserialize_with = "string_or_integer")]
    new_version: Option<String>,
    steps: Option<Value>,
    interval: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "health-check")]
    health_check: Option<bool>,
}

/// Versions are strings in the API, but a person typing `"version": 42` means the same thing.
fn string_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) if n.is_u64() => Ok(Some(n.to_string())),
        Value::Null => Ok(None),
        other => Err(serde::de::Error::custom(format!("expected a version number such as \"42\", found {other}"))),
    }
}

fn legacy_to_raw(legacy: RawLegacy, problems: &mut Problems) -> RawRequest {
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
    }
}

/// A legacy user wrote the legacy names, so errors must name those, and name each field once.
fn rename_legacy_fields(refusal: Refusal) -> Refusal {
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

fn validate(raw: RawRequest, mut problems: Problems) -> Result<RolloutRequest, Refusal> {
    let function = required(&mut problems, "function", raw.function, "the function's name or ARN, e.g. \"orders-api\"");
    let alias = required(&mut problems, "alias", raw.alias, "the alias that carries production traffic, e.g. \"live\"");
    let version = required(&mut problems, "version", raw.version, "a published version number, e.g. \"42\"");
    if let Some(function) = &function {
        check_function(&mut problems, "function", function);
    }
    if let Some(alias) = &alias {
        check_alias(&mut problems, alias);
    }
    if let Some(version) = &version {
        check_version(&mut problems, version);
    }
    let strategy = check_strategy(&mut problems, raw.strategy);
    let health = check_health(&mut problems, raw.health.unwrap_or_default());
    let hooks =
        raw.hooks.map_or_else(Hooks::default, |h| Hooks { pre_traffic: h.pre_traffic, post_traffic: h.post_traffic });
    check_hooks(&mut problems, &hooks, function.as_deref());
    let approval = Approval { before_percent: raw.approval.and_then(|a| a.before_percent).unwrap_or_default() };
    check_approval(&mut problems, &approval, strategy.as_ref());
    if let (Some(strategy), Some(health)) = (&strategy, &health) {
        check_duration(&mut problems, strategy, health);
    }
    problems.into_result(())?;
    // Every part that is None added a problem above, so past this point all are present.
    let request = RolloutRequest {
        function: function.unwrap_or_default(),
        alias: alias.unwrap_or_default(),
        version: version.unwrap_or_default(),
        strategy: strategy.unwrap_or_default(),
        health: health.unwrap_or_default(),
        hooks,
        approval,
    };
    check_history_budget(&request)?;
    Ok(request)
}

/// Each hook is a function, and not the one being rolled out.
fn check_hooks(problems: &mut Problems, hooks: &Hooks, function: Option<&str>) {
    for (name, value) in [("hooks.pre_traffic", &hooks.pre_traffic), ("hooks.post_traffic", &hooks.post_traffic)] {
        let Some(value) = value else { continue };
        check_function(problems, name, value);
        // A hook tests the rollout from outside; the function being rolled out cannot vouch for itself.
        if function.is_some_and(|f| function_name_of(f) == function_name_of(value)) {
            problems.add(
                name,
                format!("\"{value}\" is the function being rolled out"),
                "give a separate hook function (for example one that calls the new version's health route)",
            );
        }
    }
}

/// Each gate stands before a step of the schedule, once. Without a valid strategy only the count is checked.
fn check_approval(problems: &mut Problems, approval: &Approval, strategy: Option<&Strategy>) {
    if approval.before_percent.len() > MAX_STEPS {
        problems.add(
            "approval.before_percent",
            format!("{} gates, more than a rollout has steps ({MAX_STEPS} at most)", approval.before_percent.len()),
            "gate each step at most once",
        );
        return;
    }
    let Some(strategy) = strategy else { return };
    let steps = Schedule::from_strategy(strategy).steps;
    let mut seen = std::collections::HashSet::new();
    for (i, percent) in approval.before_percent.iter().enumerate() {
        if !seen.insert(percent.to_bits()) {
            problems.add(
                format!("approval.before_percent[{i}]"),
                format!("{percent} is listed twice"),
                "list each gated step once",
            );
        } else if !steps.iter().any(|s| crate::schedule::same_percent(s.percent, *percent)) {
            let shown: Vec<String> = steps.iter().take(10).map(|s| format!("{}", s.percent)).collect();
            problems.add(
                format!("approval.before_percent[{i}]"),
                format!("{percent} is not a step of this rollout's schedule"),
                format!("use one of its steps: {}{}", shown.join(", "), if steps.len() > 10 { ", ..." } else { "" }),
            );
        }
    }
}

/// The whole rollout, holds and metric delays included, fits in one Step Functions execution.
fn check_duration(problems: &mut Problems, strategy: &Strategy, health: &HealthPolicy) {
    let total = Schedule::from_strategy(strategy).estimated_seconds(health);
    if total > MAX_ROLLOUT_SECONDS {
        problems.add(
            "strategy",
            format!("the rollout would take {total} s, more than the {MAX_ROLLOUT_SECONDS} s a Step Functions execution may run"),
            "use fewer steps or shorter holds",
        );
    }
}

/// Refuses a request whose execution could, in the worst case it allows, outgrow Step Functions' history
/// limit, naming each field that adds to it.
fn check_history_budget(request: &RolloutRequest) -> Result<(), Refusal> {
    let costs = budget::worst_case_events(request);
    if costs.fits() {
        return Ok(());
    }
    let mut problems = Problems::default();
    let usable = budget::HISTORY_EVENT_LIMIT - budget::RETRY_RESERVE;
    let what = format!(
        "in the worst case this rollout writes {} Step Functions history events, more than the {usable} it may \
         use (an execution stops at {}; {} are kept for retries)",
        costs.total(),
        budget::HISTORY_EVENT_LIMIT,
        budget::RETRY_RESERVE
    );
    let steps = request.schedule().len();
    problems.add(
        "strategy",
        format!("{what}; its {steps} steps cost up to {}", costs.steps),
        "use fewer steps (a larger percent per step, or fewer listed steps)",
    );
    let health = &request.health;
    if let Some(interval) = health.check_interval_seconds.filter(|_| health.enabled) {
        problems.add(
            "health.check_interval_seconds",
            format!("each held step is looked at every {interval} s (9 events a look)"),
            "look less often, e.g. every 60 s (CloudWatch's resolution)",
        );
    }
    if health.enabled && health.no_data == NoData::Wait {
        problems.add(
            "health.no_data_max_wait_seconds",
            format!(
                "while it waits for traffic, each held step may be checked again up to {} times (9 events each)",
                budget::MAX_RECHECKS
            ),
            "lower it to 0, or set health.no_data to \"fail\"",
        );
    }
    if costs.gates > 0 {
        problems.add(
            "approval.before_percent",
            format!("its {} approval gates cost {} events", request.approval.before_percent.len(), costs.gates),
            "gate fewer steps",
        );
    }
    problems.into_result(())
}

fn required(problems: &mut Problems, field: &str, value: Option<String>, example: &str) -> Option<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(v),
        Some(_) => {
            problems.add(field, "is empty", format!("give {example}"));
            None
        }
        None => {
            problems.add(field, "is missing", format!("give {example}"));
            None
        }
    }
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_function(problems: &mut Problems, field: &str, function: &str) {
    if let Some(rest) = function.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [partition, "lambda", region, account, "function", name]
                if is_partition(partition) && is_region(region) && is_account(account) && is_name(name, 64) => {}
            [_partition, "lambda", _region, _account, "function", _name, qualifier] => problems.add(
                field,
                format!("the ARN carries the qualifier \"{qualifier}\""),
                "give the unqualified function ARN (a rollout's alias goes in \"alias\")",
            ),
            _ => problems.add(
                field,
                format!("\"{function}\" is not a Lambda function ARN"),
                "use arn:aws:lambda:REGION:ACCOUNT:function:NAME, or the plain function name",
            ),
        }
    } else if !is_name(function, 64) {
        problems.add(
            field,
            format!("\"{function}\" is not a valid function name"),
            "use 1 to 64 letters, digits, '-' or '_', or the function's ARN",
        );
    }
}

/// `aws`, `aws-cn`, `aws-us-gov`, ...: lowercase words joined by '-', starting with `aws`.
fn is_partition(text: &str) -> bool {
    text.len() <= 32
        && text
            .split('-')
            .enumerate()
            .all(|(i, w)| (i > 0 || w == "aws") && !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
}

/// `eu-west-1`, `us-gov-east-1`, ...: lowercase words joined by '-', ending in a number.
fn is_region(text: &str) -> bool {
    let words: Vec<&str> = text.split('-').collect();
    text.len() <= 32
        && words.len() >= 3
        && words[..words.len() - 1].iter().all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
        && words.last().is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
}

/// Twelve digits.
fn is_account(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

fn check_alias(problems: &mut Problems, alias: &str) {
    if !is_name(alias, 128) || alias.chars().all(|c| c.is_ascii_digit()) {
        problems.add(
            "alias",
            format!("\"{alias}\" is not a valid alias name"),
            "use 1 to 128 letters, digits, '-' or '_', not only digits (e.g. \"live\")",
        );
    }
}

fn check_version(problems: &mut Problems, version: &str) {
    if version == "$LATEST" {
        problems.add(
            "version",
            "$LATEST is mutable, so a rollout of it cannot be verified or rolled back",
            "publish a version (aws lambda publish-version) and give its number",
        );
    } else if version.starts_with('0') || !version.chars().all(|c| c.is_ascii_digit()) || version.len() > 10 {
        problems.add(
            "version",
            format!("\"{version}\" is not a published version number"),
            "give the number PublishVersion returned, e.g. \"42\"",
        );
    }
}

/// The finest difference between two weights the controller supports, in percentage points: the
/// smallest share of traffic a step may give the new version, the smallest step from one weight to the
/// next, and how close to 100% a step below it may come. Lambda keeps a weight as a double; this keeps
/// every weight a person or a dashboard can tell apart, with room for arithmetic rounding.
pub const MIN_PERCENT_STEP: f64 = 0.001;

fn check_percent(problems: &mut Problems, field: &str, percent: f64, allow_100: bool) -> bool {
    let below_100 = percent <= 100.0 - MIN_PERCENT_STEP + PERCENT_TOLERANCE;
    let ok = percent.is_finite()
        && percent >= MIN_PERCENT_STEP - PERCENT_TOLERANCE
        && (below_100 || (allow_100 && percent == 100.0));
    if !ok {
        let top = if allow_100 { "100".to_string() } else { format!("{}", 100.0 - MIN_PERCENT_STEP) };
        problems.add(
            field,
            format!("{percent} is out of range"),
            format!("use a percentage from {MIN_PERCENT_STEP} to {top}, in steps of at least {MIN_PERCENT_STEP}"),
        );
    }
    ok
}

fn check_seconds(problems: &mut Problems, field: &str, seconds: u64, min: u64) -> bool {
    let ok = (min..=MAX_HOLD_SECONDS).contains(&seconds);
    if !ok {
        problems.add(
            field,
            format!("{seconds} is out of range"),
            format!("use {min} to {MAX_HOLD_SECONDS} seconds (one week)"),
        );
    }
    ok
}

/// Checks the strategy: exactly one kind, each checked by its own rules. None when it is wrong (a problem
/// was added).
fn check_strategy(problems: &mut Problems, raw: Option<RawStrategy>) -> Option<Strategy> {
    let Some(raw) = raw else { return Some(Strategy::default()) };
    match raw {
        RawStrategy { linear: Some(linear), canary: None, steps: None, all_at_once: None } => {
            check_linear(problems, linear)
        }
        RawStrategy { linear: None, canary: Some(canary), steps: None, all_at_once: None } => {
            check_canary(problems, canary)
        }
        RawStrategy { linear: None, canary: None, steps: Some(steps), all_at_once: None } => {
            check_steps(problems, steps)
        }
        RawStrategy { linear: None, canary: None, steps: None, all_at_once: Some(all_at_once) } => {
            check_all_at_once(problems, all_at_once)
        }
        _ => {
            problems.add(
                "strategy",
                "must hold exactly one of linear, canary, steps, all_at_once",
                r#"e.g. {"linear": {"percent": 10, "interval_seconds": 60}}"#,
            );
            None
        }
    }
}

fn check_linear(problems: &mut Problems, linear: RawLinear) -> Option<Strategy> {
    let percent = required_number(problems, "strategy.linear.percent", linear.percent, "10");
    let interval = required_number(problems, "strategy.linear.interval_seconds", linear.interval_seconds, "60");
    let (percent, interval) = (percent?, interval?);
    let percent_ok = check_percent(problems, "strategy.linear.percent", percent, true);
    let interval_ok = check_seconds(problems, "strategy.linear.interval_seconds", interval, 1);
    if percent_ok && Schedule::linear_step_count(percent) > MAX_STEPS as f64 {
        problems.add(
            "strategy.linear.percent",
            format!("{percent}% per step takes more than {MAX_STEPS} steps to reach 100%"),
            format!(
                "use at least {}% per step; a Step Functions execution's history holds 25,000 events",
                100.0 / MAX_STEPS as f64
            ),
        );
        return None;
    }
    (percent_ok && interval_ok).then_some(Strategy::Linear { percent, interval_seconds: interval })
}

fn check_canary(problems: &mut Problems, canary: RawCanary) -> Option<Strategy> {
    let percent = required_number(problems, "strategy.canary.percent", canary.percent, "10");
    let bake = required_number(problems, "strategy.canary.bake_seconds", canary.bake_seconds, "600");
    let (percent, bake) = (percent?, bake?);
    let percent_ok = check_percent(problems, "strategy.canary.percent", percent, false);
    let bake_ok = check_seconds(problems, "strategy.canary.bake_seconds", bake, 1);
    (percent_ok && bake_ok).then_some(Strategy::Canary { percent, bake_seconds: bake })
}

fn check_steps(problems: &mut Problems, steps: Vec<StepSpec>) -> Option<Strategy> {
    if steps.is_empty() {
        problems.add("strategy.steps", "is empty", "list at least one step below 100%, or use all_at_once");
        return None;
    }
    if steps.len() >= MAX_STEPS {
        problems.add(
            "strategy.steps",
            format!("{} steps is more than the {} a rollout may take", steps.len(), MAX_STEPS - 1),
            "list fewer steps; a Step Functions execution's history holds 25,000 events",
        );
        return None;
    }
    let mut ok = true;
    for (i, step) in steps.iter().enumerate() {
        ok &= check_percent(problems, &format!("strategy.steps[{i}].percent"), step.percent, false);
        ok &= check_seconds(problems, &format!("strategy.steps[{i}].hold_seconds"), step.hold_seconds, 1);
        if i > 0 && step.percent - steps[i - 1].percent < MIN_PERCENT_STEP - PERCENT_TOLERANCE {
            problems.add(
                format!("strategy.steps[{i}].percent"),
                format!(
                    "{} does not increase on the step before ({}) by at least {MIN_PERCENT_STEP} percentage points",
                    step.percent,
                    steps[i - 1].percent
                ),
                "list the percentages in increasing order, each at least 0.001 above the one before",
            );
            ok = false;
        }
    }
    ok.then_some(Strategy::Steps(steps))
}

fn check_all_at_once(problems: &mut Problems, all_at_once: RawAllAtOnce) -> Option<Strategy> {
    if let Some(bake) = all_at_once.bake_seconds {
        check_seconds(problems, "strategy.all_at_once.bake_seconds", bake, 0).then_some(())?;
    }
    Some(Strategy::AllAtOnce { bake_seconds: all_at_once.bake_seconds })
}

fn required_number<T>(problems: &mut Problems, field: &str, value: Option<T>, example: &str) -> Option<T> {
    if value.is_none() {
        problems.add(field, "is missing", format!("give a number, e.g. {example}"));
    }
    value
}

/// Checks the health policy: its limits, its alarms and its timings, every problem reported. None when any is
/// wrong.
fn check_health(problems: &mut Problems, raw: RawHealth) -> Option<HealthPolicy> {
    let limit_given = raw.max_error_rate.is_some();
    let policy = health_policy(raw);
    let limits_ok = check_health_limits(problems, &policy, limit_given);
    let alarms_ok = check_alarm_names(problems, &policy.alarms);
    let timings_ok = check_health_timings(problems, &policy);
    (limits_ok && alarms_ok && timings_ok).then_some(policy)
}

/// The policy the request asks for, its defaults filled in.
fn health_policy(raw: RawHealth) -> HealthPolicy {
    let defaults = HealthPolicy::default();
    HealthPolicy {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        max_error_rate: raw.max_error_rate.or(defaults.max_error_rate),
        min_invocations: raw.min_invocations.unwrap_or(defaults.min_invocations),
        compare_to_baseline: raw.compare_to_baseline.unwrap_or(false),
        baseline_confidence: raw.baseline_confidence.unwrap_or(defaults.baseline_confidence),
        max_latency_p99_increase: raw.max_latency_p99_increase,
        alarms: raw.alarms.unwrap_or_default(),
        no_data: raw.no_data.unwrap_or(defaults.no_data),
        no_data_max_wait_seconds: raw.no_data_max_wait_seconds.unwrap_or(defaults.no_data_max_wait_seconds),
        metrics_delay_seconds: raw.metrics_delay_seconds.unwrap_or(defaults.metrics_delay_seconds),
        check_interval_seconds: raw.check_interval_seconds,
    }
}

/// The error-rate limit, the baseline test's confidence and the p99 limit.
fn check_health_limits(problems: &mut Problems, policy: &HealthPolicy, limit_given: bool) -> bool {
    let mut ok = true;
    // The baseline test compares the two versions over the same window; at 100% the old version serves
    // nothing, so the test cannot fail the new one there. Alone, it would promote a version failing every
    // call under all_at_once with a bake: an absolute limit must be given with it, chosen for the service.
    if policy.enabled && policy.compare_to_baseline && !limit_given {
        problems.add(
            "health.max_error_rate",
            "is required with health.compare_to_baseline: once the new version carries all traffic the old one \
             serves nothing to compare with, and the baseline test alone could not fail a version failing every call",
            "give the absolute limit too, above the old version's usual error rate, e.g. 0.05 for 5%",
        );
        ok = false;
    }
    if let Some(rate) = policy.max_error_rate.filter(|r| !(r.is_finite() && (0.0..=1.0).contains(r))) {
        problems.add(
            "health.max_error_rate",
            format!("{rate} is out of range"),
            "use a fraction from 0 to 1, e.g. 0.01 for 1% of invocations",
        );
        ok = false;
    }
    let confidence = policy.baseline_confidence;
    if !(confidence.is_finite() && (0.5..=0.9999).contains(&confidence)) {
        problems.add(
            "health.baseline_confidence",
            format!("{confidence} is out of range"),
            "use a confidence from 0.5 to 0.9999, e.g. 0.99",
        );
        ok = false;
    }
    if let Some(increase) = policy.max_latency_p99_increase.filter(|i| !(i.is_finite() && *i > 0.0 && *i <= 100.0)) {
        problems.add(
            "health.max_latency_p99_increase",
            format!("{increase} is out of range"),
            "use a fraction above 0, e.g. 0.25 to fail a p99 more than 25% above the baseline's",
        );
        ok = false;
    }
    ok
}

/// At most [`MAX_ALARMS`] alarms, each a name, none twice.
fn check_alarm_names(problems: &mut Problems, alarms: &[String]) -> bool {
    let mut ok = true;
    if alarms.len() > MAX_ALARMS {
        problems.add(
            "health.alarms",
            format!("{} alarms is more than the {MAX_ALARMS} a rollout may watch", alarms.len()),
            "watch fewer alarms, or a composite alarm over them",
        );
        ok = false;
    }
    for (i, name) in alarms.iter().enumerate() {
        if name.trim().is_empty() || name.len() > 255 {
            problems.add(
                format!("health.alarms[{i}]"),
                "is not an alarm name",
                "give the alarm's name, 1 to 255 characters",
            );
            ok = false;
        } else if alarms[..i].contains(name) {
            problems.add(format!("health.alarms[{i}]"), format!("\"{name}\" is listed twice"), "list each alarm once");
            ok = false;
        }
    }
    ok
}

/// How long the metrics may lag, how long to wait for data, how often to look within a hold.
fn check_health_timings(problems: &mut Problems, policy: &HealthPolicy) -> bool {
    let mut ok = true;
    if policy.metrics_delay_seconds > MAX_METRICS_DELAY_SECONDS {
        problems.add(
            "health.metrics_delay_seconds",
            format!("{} is out of range", policy.metrics_delay_seconds),
            format!("use 0 to {MAX_METRICS_DELAY_SECONDS} seconds; Lambda metrics usually arrive within 120"),
        );
        ok = false;
    }
    ok &= check_seconds(problems, "health.no_data_max_wait_seconds", policy.no_data_max_wait_seconds, 0);
    if let Some(interval) = policy.check_interval_seconds {
        ok &= check_seconds(problems, "health.check_interval_seconds", interval, 1);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::DuplicateKeys;

    #[test]
    fn the_duplicate_key_walk_reads_json_only() {
        let mut found = None;
        let walk = DuplicateKeys { found: &mut found, path: String::new() };
        let bytes = serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(b"raw");
        let error = serde::de::DeserializeSeed::deserialize(walk, bytes).unwrap_err();
        assert!(error.to_string().contains("expected JSON"), "{error}");
    }
}
