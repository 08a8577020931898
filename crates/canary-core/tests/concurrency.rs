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

#[test]
fn a_release_is_busy_when_any_of_its_aliases_is() {
    let release = |entries: &[(&str, &str)]| {
        let functions: Vec<serde_json::Value> =
            entries.iter().map(|(f, v)| json!({"function": f, "alias": "live", "version": v})).collect();
        json!({"functions": functions})
    };
    let mine = parse_request(&release(&[("orders-api", "2"), ("orders-worker", "3")])).unwrap();
    let single_worker = json!({"function": "orders-worker", "alias": "live", "version": "9"});
    let sharing = release(&[("billing", "2"), ("orders-worker", "4")]);
    let apart = release(&[("billing", "2"), ("search", "4")]);
    for (others, refused) in [
        (vec![running("a", -5, single_worker.clone())], true),
        (vec![running("a", -5, sharing)], true),
        (vec![running("a", -5, apart)], false),
    ] {
        let result = refuse_if_alias_busy(&mine, Some("b"), t0(), &others);
        match refused {
            false => assert!(result.is_ok(), "{others:?}"),
            true => {
                let refusal = result.unwrap_err();
                assert_eq!(refusal.fields(), ["functions[1].alias"], "{refusal}");
                assert!(refusal.errors[0].problem.contains("orders-worker:live"), "{refusal}");
            }
        }
    }
    // A single rollout is busy when a running release moves its alias.
    let single = parse_request(&single_worker).unwrap();
    let refusal =
        refuse_if_alias_busy(&single, None, t0(), &[running("a", 0, release(&[("orders-worker", "2"), ("x", "2")]))]);
    assert_eq!(refusal.unwrap_err().fields(), ["alias"]);
}

#[test]
fn a_release_rejected_by_its_last_rollout_is_not_rolled_out_again() {
    use canary_core::concurrency::{FinishedExecution, refuse_if_rejected};
    let release = |api: &str, worker: &str| {
        json!({"functions": [{"function": "orders-api", "alias": "live", "version": api},
                             {"function": "orders-worker", "alias": "live", "version": worker}]})
    };
    let ended = |input: serde_json::Value, outcome: &str| FinishedExecution {
        name: "last".into(),
        input: input.to_string(),
        outcome: serde_json::from_value(json!(outcome)).unwrap(),
    };
    let mine = parse_request(&release("2", "3")).unwrap();
    let refusal = refuse_if_rejected(&mine, &[ended(release("2", "3"), "rolled_back")]).unwrap_err();
    assert_eq!(refusal.fields(), ["functions"]);
    assert!(refusal.to_string().contains("orders-api:live 2, orders-worker:live 3"), "{refusal}");
    // Another worker version is another release.
    assert!(refuse_if_rejected(&mine, &[ended(release("2", "4"), "rolled_back")]).is_ok());
}
