//! The corpus of refused requests (`refused-requests.json`): every malformed or unsafe request this
//! project knows of, one row each with the field its refusal must name. canaryctl's and the handlers'
//! tests read the same file. A row marked `live` is refused only against the account (`Prepare`); one
//! marked `deployment: aws` only where the controller runs on AWS (`Prepare` there, `canaryctl plan` by
//! default): offline, both are valid requests.

use canary_core::parse_request_str;
use serde_json::Value;

fn corpus() -> Vec<Value> {
    let text = include_str!("refused-requests.json");
    serde_json::from_str(text).unwrap()
}

/// The row's request as the text a person or CI would send.
fn request_text(row: &Value) -> String {
    row.get("text").and_then(Value::as_str).map_or_else(|| row["request"].to_string(), str::to_string)
}

#[test]
fn the_corpus_is_large_and_every_row_names_its_field() {
    let rows = corpus();
    assert!(rows.len() >= 100, "{} rows", rows.len());
    for row in &rows {
        assert!(row["why"].is_string() && row["field"].is_string(), "{row}");
        assert!(row.get("request").is_some() || row.get("text").is_some(), "{row}");
    }
}

#[test]
fn every_offline_refusal_names_the_field_and_the_fix() {
    let rows = corpus();
    for row in rows.iter().filter(|r| r.get("live").is_none() && r.get("deployment").is_none()) {
        let why = row["why"].as_str().unwrap();
        let field = row["field"].as_str().unwrap();
        let refusal = parse_request_str(&request_text(row)).expect_err(why);
        assert!(refusal.fields().contains(&field), "{why}: named {:?}, not {field}", refusal.fields());
        for error in &refusal.errors {
            assert!(!error.problem.is_empty() && !error.fix.is_empty(), "{why}: {error:?}");
            assert!(!error.problem.contains("Raw") && !error.fix.contains("INPUT.md"), "{why}: {error:?}");
        }
    }
}

#[test]
fn live_refusals_pass_the_offline_checks() {
    // These need the account (Prepare), or where the controller runs; offline, they are valid requests.
    for row in corpus().iter().filter(|r| r.get("live").is_some() || r.get("deployment").is_some()) {
        parse_request_str(&request_text(row)).unwrap_or_else(|e| panic!("{}: {e}", row["why"]));
    }
}

#[test]
fn deployment_refusals_name_their_field_where_the_controller_runs_on_aws_and_not_locally() {
    use canary_core::deployment::Deployment;
    for row in corpus().iter().filter(|r| r.get("deployment").is_some()) {
        let (why, field) = (row["why"].as_str().unwrap(), row["field"].as_str().unwrap());
        let request = parse_request_str(&request_text(row)).unwrap();
        let refusal = Deployment::AWS.check(&request).expect_err(why);
        assert!(refusal.fields().contains(&field), "{why}: named {:?}, not {field}", refusal.fields());
        Deployment::LOCAL.check(&request).unwrap_or_else(|e| panic!("{why}: refused locally too: {e}"));
    }
}
