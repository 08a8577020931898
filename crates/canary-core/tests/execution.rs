use canary_core::execution::{ExecutionStatus, interpret};
use canary_core::rollout::Report;
use serde_json::json;
use strum::VariantArray;

fn report(outcome: &str, reason: Option<&str>) -> String {
    let mut report = json!({"outcome": outcome, "function": "f", "alias": "live", "old_version": "1", "new_version": "2",
        "started_at": "2026-11-28T12:00:00Z", "finished_at": "2026-11-28T12:05:00Z",
        "routing": {"function_version": "1", "additional_version_weights": {}}, "steps": []});
    if let Some(message) = reason {
        report["reason"] = json!({"signal": "error_rate", "value": 0.5, "threshold": 0.01, "message": message});
    }
    serde_json::from_value::<Report>(report.clone()).unwrap();
    report.to_string()
}

/// (status, output, error, cause, expected outcome, expected message)
type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);

#[test]
fn outcomes() {
    let lambda_error = json!({"errorType": "RequestRefused", "errorMessage": "version: 9 does not exist"}).to_string();
    let promoted = report("promoted", None);
    let rolled_back = report("rolled_back", Some("too many errors"));
    let cases: Vec<Case> = vec![
        ("RUNNING", None, None, None, "running", None),
        ("SUCCEEDED", Some(&promoted), None, None, "promoted", None),
        ("FAILED", None, Some("RolledBack"), Some(&rolled_back), "rolled_back", Some("too many errors")),
        ("FAILED", None, Some("RequestRefused"), Some(&lambda_error), "refused", Some("version: 9 does not exist")),
        (
            "FAILED",
            None,
            Some("RollbackFailed"),
            Some("someone changed it"),
            "rollback_failed",
            Some("someone changed it"),
        ),
        (
            "FAILED",
            None,
            Some("TransientAwsError"),
            Some("Rate exceeded"),
            "failed",
            Some("TransientAwsError: Rate exceeded"),
        ),
        ("FAILED", None, None, None, "failed", Some("the execution ended FAILED")),
        (
            "FAILED",
            None,
            Some("NotStarted"),
            Some(r#"Lambda.Unknown: {"errorType":"Lambda.Unknown","errorMessage":"the function crashed"}"#),
            "failed",
            Some("preparing failed, nothing moved: Lambda.Unknown: the function crashed"),
        ),
        (
            "FAILED",
            None,
            Some("NotStarted"),
            Some("no separator"),
            "failed",
            Some("preparing failed, nothing moved: no separator"),
        ),
        ("ABORTED", None, None, None, "aborted", Some("the execution was stopped")),
        ("TIMED_OUT", None, None, None, "timed_out", Some("the execution timed out")),
    ];
    for (status, output, error, cause, outcome, message) in cases {
        let result = interpret(ExecutionStatus::parse(status), output, error, cause);
        assert_eq!((result.outcome.as_str(), result.message.as_deref()), (outcome, message), "{status} {error:?}");
        assert_eq!(serde_json::to_value(result.outcome).unwrap(), json!(outcome), "the JSON name is as_str's");
        assert_eq!(result.promoted(), outcome == "promoted");
        assert_eq!(result.report.is_some(), output.is_some() || error == Some("RolledBack"));
    }
}

#[test]
fn statuses_keep_the_api_names() {
    for status in ExecutionStatus::VARIANTS {
        assert_eq!(ExecutionStatus::parse(status.as_str()), *status);
        assert_eq!(serde_json::to_value(status).unwrap(), json!(status.to_string()));
    }
}
