//! The request's JSON Schema (docs/request.schema.json, `canaryctl schema`) is generated from the types the
//! controller reads a request with, and the rollout events' (docs/rollout-events.schema.json) from the types
//! it publishes them with, so neither can drift; this holds the files to the generated ones.

use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_published_schemas_are_the_generated_ones() {
    published_is_generated("docs/request.schema.json", canary_core::request::request_schema());
    published_is_generated("docs/request-file.schema.json", canary_core::request::request_file_schema());
    published_is_generated("docs/rollout-events.schema.json", canary_core::notice::events_schema());
}

/// The EventBridge events' schema names every detail type and every field a detail carries.
#[test]
fn the_rollout_events_schema_names_every_detail_type_and_field() {
    let schema = canary_core::notice::events_schema();
    let types: Vec<&str> = schema["x-detail-types"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(types.len(), 7, "{types:?}");
    assert!(types.contains(&"Rollout Paused For Approval") && types.contains(&"Rollout Taken Over"));
    let text = schema.to_string();
    for field in [
        "function",
        "old_version",
        "started_at",
        "functions",
        "execution",
        "steps",
        "strategy",
        "step",
        "step_count",
        "before_percent",
        "report",
        "routing",
        "routes",
        "message",
        "outcome",
        "figures",
        "checks",
    ] {
        assert!(text.contains(&format!("\"{field}\"")), "{field} is not in the events' schema");
    }
}

fn published_is_generated(file: &str, generated: Value) {
    let path = root().join(file);
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default()).unwrap_or_default();
    if published != generated {
        if std::env::var_os("CANARY_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&generated).unwrap() + "\n").unwrap();
        } else {
            panic!("{file} is stale: CANARY_WRITE_SCHEMA=1 cargo test -p canary-core --test schema");
        }
    }
}

#[test]
fn the_schema_names_every_field_of_both_forms_and_refuses_others() {
    let schema = canary_core::request::request_schema().to_string();
    for field in [
        "function",
        "alias",
        "version",
        "strategy",
        "health",
        "hooks",
        "approval",
        "linear",
        "canary",
        "steps",
        "all_at_once",
        "max_error_rate",
        "compare_to_baseline",
        "max_shared_outage_seconds",
        "pre_traffic",
        "before_percent",
        "function-name",
        "alias-name",
        "new-version",
        "health-check",
    ] {
        assert!(schema.contains(&format!("\"{field}\"")), "{field} is not in the schema");
    }
    assert!(schema.contains("\"additionalProperties\":false"), "unknown fields are refused, as the controller does");
    let schema: Value = serde_json::from_str(&schema).unwrap();
    // One function, or a release's list of 2 to 10, never both (and no `required` of its own beside them).
    assert!(schema["$defs"]["RawRequest"].get("required").is_none());
    let forms = &schema["$defs"]["RawRequest"]["oneOf"];
    assert_eq!(forms[0]["required"], serde_json::json!(["function", "alias", "version"]));
    assert_eq!(forms[1]["required"], serde_json::json!(["functions"]));
    let functions = &schema["$defs"]["RawRequest"]["properties"]["functions"];
    assert_eq!((functions["minItems"].as_u64(), functions["maxItems"].as_u64()), (Some(2), Some(10)));
    assert_eq!(schema["$defs"]["RawTarget"]["required"], serde_json::json!(["function", "alias", "version"]));
    assert_eq!(
        schema["$defs"]["RawLegacy"]["required"],
        serde_json::json!(["function-name", "alias-name", "new-version"])
    );
    assert!(schema["$defs"]["RawRequest"]["properties"]["version"].get("default").is_none());
}

/// A request file may leave the function, alias and version to the command line, and still may not name one
/// function and a release's list at once; everything else is the request's schema.
#[test]
fn the_file_schema_requires_no_target_and_still_refuses_both_forms() {
    let schema = canary_core::request::request_file_schema();
    let canonical = &schema["$defs"]["RawRequest"];
    assert!(canonical.get("oneOf").is_none() && canonical.get("required").is_none());
    assert_eq!(canonical["allOf"][0]["not"]["required"], serde_json::json!(["functions", "function"]));
    assert_eq!(canonical["allOf"][1]["not"]["required"], serde_json::json!(["functions", "version"]));
    let request = canary_core::request::request_schema();
    assert_eq!(schema["$defs"]["RawHealth"], request["$defs"]["RawHealth"], "the rest is the request's");
    assert_eq!(schema["$defs"]["RawLegacy"], request["$defs"]["RawLegacy"]);
}
