//! Reading a request's JSON: every key once, every field of the right type, every unknown field named.
//!
//! The raw structs mirror the contract with every field optional and unknown fields refused; the checks of
//! [`super::validate`] then fill the defaults and judge the values.

use super::NoData;
use super::StepSpec;
use crate::refusal::{Problems, Refusal};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

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

/// A canary rollout request (docs/request.md states the whole contract; the controller's checks are stricter
/// than this schema: ranges, combinations, the account's facts).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Canary rollout request")]
pub(super) struct RawRequest {
    /// The function: its name, or its ARN (its region and account must be the controller's).
    pub(super) function: Option<String>,
    /// The alias whose traffic moves, for example "live".
    pub(super) alias: Option<String>,
    /// The published version to roll out, for example "42" (a number is taken too).
    #[serde(default, deserialize_with = "string_or_integer")]
    #[schemars(schema_with = "version_schema")]
    pub(super) version: Option<String>,
    /// A release of several functions moved, judged and rolled back together, instead of function, alias
    /// and version: 2 to 10 entries, each a distinct function and alias.
    pub(super) functions: Option<Vec<RawTarget>>,
    /// How traffic moves: exactly one of linear, canary, steps, all_at_once.
    pub(super) strategy: Option<RawStrategy>,
    pub(super) health: Option<RawHealth>,
    pub(super) hooks: Option<RawHooks>,
    pub(super) approval: Option<RawApproval>,
}

/// One function of a release.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    /// The function: its name, or its ARN (its region and account must be the controller's).
    #[schemars(required)]
    pub(super) function: Option<String>,
    /// The alias whose traffic moves, for example "live".
    #[schemars(required)]
    pub(super) alias: Option<String>,
    /// The published version to roll out, for example "42" (a number is taken too).
    #[serde(default, deserialize_with = "string_or_integer")]
    #[schemars(required, schema_with = "version_schema")]
    pub(super) version: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStrategy {
    pub(super) linear: Option<RawLinear>,
    pub(super) canary: Option<RawCanary>,
    pub(super) steps: Option<Vec<StepSpec>>,
    pub(super) all_at_once: Option<RawAllAtOnce>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLinear {
    pub(super) percent: Option<f64>,
    pub(super) interval_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    pub(super) percent: Option<f64>,
    pub(super) bake_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllAtOnce {
    pub(super) bake_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub(super) enabled: Option<bool>,
    pub(super) max_error_rate: Option<f64>,
    pub(super) min_invocations: Option<u64>,
    pub(super) no_data: Option<NoData>,
    pub(super) no_data_max_wait_seconds: Option<u64>,
    pub(super) compare_to_baseline: Option<bool>,
    pub(super) baseline_confidence: Option<f64>,
    pub(super) max_latency_p99_increase: Option<f64>,
    pub(super) alarms: Option<Vec<String>>,
    pub(super) metrics_delay_seconds: Option<u64>,
    pub(super) check_interval_seconds: Option<u64>,
    pub(super) max_shared_outage_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHooks {
    pub(super) pre_traffic: Option<String>,
    pub(super) post_traffic: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApproval {
    pub(super) before_percent: Option<Vec<f64>>,
}

/// The schema of a version: a string of digits, or a whole number.
pub(super) fn version_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "The published version to roll out, for example \"42\" (a number is taken too).",
        "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 1}]
    })
}

/// Both forms of a request a person may write: the canonical one, or the Lambda Deployer sample's.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum AnyRequest {
    Canonical(Box<RawRequest>),
    Legacy(Box<super::legacy::RawLegacy>),
}

/// The JSON Schema of a request (draft 2020-12): field names and types, for editors and for whoever writes a
/// request by hand in the Step Functions console. The controller's own checks go further; `canaryctl plan`
/// runs them offline.
pub fn request_schema() -> Value {
    let mut schema = schemars::schema_for!(AnyRequest).to_value();
    // The version is read leniently (a missing one is named by the checks), so the derive leaves it optional.
    for (form, version) in [("RawRequest", "version"), ("RawTarget", "version"), ("RawLegacy", "new-version")] {
        let definition = &mut schema["$defs"][form];
        if let Some(required) = definition.get_mut("required").and_then(Value::as_array_mut) {
            required.push(version.into());
        }
        definition["properties"][version].as_object_mut().into_iter().for_each(|field| drop(field.remove("default")));
    }
    // The canonical form names one function, or a release's list: exactly one of the two.
    let one_or_release = serde_json::json!([
        {"required": ["function", "alias", "version"], "not": {"required": ["functions"]}},
        {"required": ["functions"], "not": {"anyOf": [{"required": ["function"]}, {"required": ["alias"]}, {"required": ["version"]}]}}
    ]);
    schema["$defs"]["RawRequest"]["oneOf"] = one_or_release;
    schema["$defs"]["RawRequest"]["properties"]["functions"]["minItems"] = 2.into();
    schema["$defs"]["RawRequest"]["properties"]["functions"]["maxItems"] = super::MAX_RELEASE_FUNCTIONS.into();
    schema["title"] = "Canary rollout request".into();
    schema["description"] = "A canary rollout of a Lambda alias: the canonical form, or the AWS Lambda Deployer \
        sample's. The whole contract, with defaults and limits: docs/request.md."
        .into();
    schema
}

/// The JSON Schema of a request *file*, as `canaryctl plan` and `start` read one (`--input`): the request's
/// schema, except that the function, alias and version may come from the command line (`--function`,
/// `--alias`, `--version`, or `--function NAME:VERSION` repeated for a release), so none is required. One
/// function or a release's list, never both, still holds. docs/request.md maps it onto `deploy/*-rollout.json`.
pub fn request_file_schema() -> Value {
    let mut schema = request_schema();
    let canonical = &mut schema["$defs"]["RawRequest"];
    if let Some(object) = canonical.as_object_mut() {
        object.remove("oneOf");
    }
    canonical["allOf"] = serde_json::json!([
        {"not": {"required": ["functions", "function"]}},
        {"not": {"required": ["functions", "version"]}}
    ]);
    schema["title"] = "Canary rollout request file".into();
    schema["description"] = "A canary rollout request as canaryctl reads it from a file: function, alias and \
        version may be left to --function, --alias and --version. Started from the console or by another client, \
        a request must name them (request.schema.json). The whole contract: docs/request.md."
        .into();
    schema
}

/// Versions are strings in the API, but a person typing `"version": 42` means the same thing.
pub(super) fn string_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) if n.is_u64() => Ok(Some(n.to_string())),
        Value::Null => Ok(None),
        other => Err(serde::de::Error::custom(format!("expected a version number such as \"42\", found {other}"))),
    }
}

/// The most unknown fields one refusal names (a request pasted into the wrong place would list them all).
const MAX_UNKNOWN_FIELDS: usize = 20;

/// Reads the request's shape. Every unknown field is named at once (serde stops at the first, so each is
/// taken out in turn and the rest read again, in key order), up to the first field of a wrong type, which is
/// named too and ends the reading.
pub(super) fn from_value<T: serde::de::DeserializeOwned>(input: &Value) -> Result<T, Refusal> {
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
