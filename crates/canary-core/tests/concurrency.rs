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

#[test]
fn a_version_rejected_by_its_last_rollout_is_not_rolled_out_again() {
    use canary_core::concurrency::{FinishedExecution, refuse_if_rejected};
    let request = parse_request(&json!({"function": "orders", "alias": "live", "version": "2"})).unwrap();
    let ended = |name: &str, version: &str, outcome: &str| FinishedExecution {
        name: name.into(),
        input: json!({"function": "orders", "alias": "live", "version": version}).to_string(),
        outcome: serde_json::from_value(serde_json::json!(outcome)).unwrap(),
    };
    let other_alias = FinishedExecution {
        input: json!({"function": "orders", "alias": "beta", "version": "2"}).to_string(),
        ..ended("beta", "2", "rolled_back")
    };
    let garbage = FinishedExecution { input: "not json".into(), ..ended("garbage", "2", "failed") };
    // (finished, newest first; refused by)
    let cases: Vec<(Vec<FinishedExecution>, Option<&str>)> = vec![
        (vec![], None),
        (vec![ended("a", "2", "rolled_back")], Some("a")),
        (vec![ended("a", "2", "aborted")], Some("a")),
        (vec![garbage.clone(), other_alias.clone(), ended("a", "2", "rolled_back")], Some("a")),
        // The latest verdict on the version decides; a refused start or one that never started is none.
        (vec![ended("b", "2", "refused"), ended("c", "2", "failed"), ended("a", "2", "rolled_back")], Some("a")),
        (vec![ended("b", "2", "promoted"), ended("a", "2", "rolled_back")], None),
        (vec![ended("a", "3", "rolled_back"), ended("b", "2", "promoted")], None),
        (vec![other_alias, garbage], None),
    ];
    for (finished, refused_by) in cases {
        let result = refuse_if_rejected(&request, &finished);
        match refused_by {
            None => assert!(result.is_ok(), "{finished:?}"),
            Some(name) => {
                let refusal = result.unwrap_err();
                assert_eq!(refusal.fields(), ["version"]);
                assert!(refusal.to_string().contains(name) && refusal.to_string().contains("--retry-rejected"));
            }
        }
    }
}
