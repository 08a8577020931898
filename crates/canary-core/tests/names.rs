//! The enums that stand for other systems' names keep those names exactly: their text (`Display`, padded
//! in tables), their JSON, and what parsing the API's spelling gives back.

use canary_core::AlarmValue;
use canary_core::execution::{ExecutionOutcome, ExecutionStatus};
use canary_core::rollout::{Decision, Hook};
use serde_json::json;
use strum::VariantArray;

fn same_name<T: serde::Serialize + std::fmt::Display>(value: T, name: &str) {
    assert_eq!(value.to_string(), name);
    assert_eq!(serde_json::to_value(&value).unwrap(), json!(name));
    assert_eq!(format!("{value:<20}|").len(), 21, "{name} pads to a table's width");
}

#[test]
fn execution_outcomes() {
    use ExecutionOutcome::*;
    let names = [
        (Running, "running"),
        (Promoted, "promoted"),
        (RolledBack, "rolled_back"),
        (Refused, "refused"),
        (Aborted, "aborted"),
        (TimedOut, "timed_out"),
        (RollbackFailed, "rollback_failed"),
        (Failed, "failed"),
    ];
    for (outcome, name) in names {
        same_name(outcome, name);
    }
}

#[test]
fn execution_statuses() {
    for status in ExecutionStatus::VARIANTS {
        same_name(status, status.as_str());
        assert_eq!(ExecutionStatus::parse(status.as_str()), *status);
    }
    assert_eq!(ExecutionStatus::parse("A_STATUS_FROM_LATER"), ExecutionStatus::Failed, "ended, not promoted");
}

#[test]
fn alarm_values() {
    for (value, name) in
        [(AlarmValue::Ok, "OK"), (AlarmValue::Alarm, "ALARM"), (AlarmValue::InsufficientData, "INSUFFICIENT_DATA")]
    {
        same_name(value, name);
        assert_eq!(AlarmValue::parse(name), value);
    }
    assert_eq!(AlarmValue::parse("A_STATE_FROM_LATER"), AlarmValue::InsufficientData, "never a rollback");
}

#[test]
fn hooks_and_decisions() {
    same_name(Hook::PreTraffic, "pre_traffic");
    same_name(Hook::PostTraffic, "post_traffic");
    for (decision, name) in [(Decision::Promote, "promote"), (Decision::PromoteFull, "promote_full")] {
        same_name(decision, name);
        assert_eq!(Decision::from_answer(Some(&json!({ "decision": name }))), Ok(decision));
        assert_eq!(decision.answer(), json!({ "decision": name }));
    }
    assert!(Decision::from_answer(Some(&json!({"decision": "yes"}))).unwrap_err().contains("unknown decision \"yes\""));
    assert!(Decision::from_answer(Some(&json!({"approve": true}))).unwrap_err().contains("no decision"));
    assert!(Decision::from_answer(None).unwrap_err().contains("no decision"));
}
