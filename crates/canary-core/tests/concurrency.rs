use canary_core::concurrency::{RunningExecution, refuse_if_alias_busy};
use canary_core::parse_request;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn running(arn: &str, seconds: i64, input: serde_json::Value) -> RunningExecution {
    RunningExecution {
        arn: arn.into(),
        name: format!("name-{arn}"),
        started_at: t0() + Duration::seconds(seconds),
        input: input.to_string(),
    }
}

#[test]
fn a_second_rollout_of_the_same_alias_is_refused() {
    let request = parse_request(&json!({"function": "orders", "alias": "live", "version": "2"})).unwrap();
    let same =
        json!({"function": "arn:aws:lambda:us-east-1:123456789012:function:orders", "alias": "live", "version": "3"});
    let legacy =
        json!({"function-name": "orders", "alias-name": "live", "new-version": "3", "steps": 2, "interval": 1});
    let other_alias = json!({"function": "orders", "alias": "beta", "version": "3"});
    let other_function = json!({"function": "billing", "alias": "live", "version": "3"});
    // (me, running, refused by)
    let cases: Vec<(Option<&str>, Vec<RunningExecution>, Option<&str>)> = vec![
        (Some("b"), vec![], None),
        (Some("b"), vec![running("b", 0, same.clone())], None), // itself
        (Some("b"), vec![running("a", -5, same.clone())], Some("name-a")), // started earlier
        (Some("b"), vec![running("a", -5, legacy)], Some("name-a")), // the legacy form names the same alias
        (Some("b"), vec![running("c", 5, same.clone())], None), // started later: that one will refuse
        (Some("b"), vec![running("a", 0, same.clone())], Some("name-a")), // same instant: smaller ARN goes on
        (Some("b"), vec![running("c", 0, same.clone())], None),
        (Some("b"), vec![running("a", -5, other_alias), running("a2", -5, other_function)], None),
        (Some("b"), vec![running("a", -5, json!("not a request"))], None),
        (None, vec![running("a", 3600, same)], Some("name-a")), // checked before starting (canaryctl)
    ];
    for (me, others, expected) in cases {
        let result = refuse_if_alias_busy(&request, me, t0(), &others);
        match expected {
            None => assert!(result.is_ok(), "{me:?} {others:?}: {result:?}"),
            Some(name) => {
                let refusal = result.unwrap_err();
                assert_eq!(refusal.fields(), ["alias"]);
                assert!(refusal.errors[0].problem.contains(name) && refusal.errors[0].fix.contains(name), "{refusal}");
            }
        }
    }
}
