//! The state machine definition agrees with the functions: every state the core can ask for is routed,
//! every task is bounded and guarded, and every failure after the first write ends in the rollback.

use canary_core::Next;
use serde_json::Value;
use std::collections::BTreeSet;

fn definition() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../statemachine/canary.asl.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn targets(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(next) = state[key].as_str() {
            out.push(next.to_string());
        }
    }
    for list in ["Choices", "Catch"] {
        for entry in state[list].as_array().into_iter().flatten() {
            out.push(entry["Next"].as_str().unwrap().to_string());
        }
    }
    out
}

#[test]
fn every_transition_names_a_state_and_every_state_is_reachable() {
    let definition = definition();
    let states = definition["States"].as_object().unwrap();
    let start = definition["StartAt"].as_str().unwrap();
    assert!(states.contains_key(start));
    let mut reached = BTreeSet::from([start.to_string()]);
    let mut frontier = vec![start.to_string()];
    while let Some(name) = frontier.pop() {
        for target in targets(&states[&name]) {
            assert!(states.contains_key(&target), "{name} goes to missing state {target}");
            if reached.insert(target.clone()) {
                frontier.push(target);
            }
        }
    }
    let all: BTreeSet<String> = states.keys().cloned().collect();
    assert_eq!(reached, all, "unreachable states");
}

/// What Lambda's Invoke fails with when the service, not the function, failed (Step Functions' best
/// practice: retry them).
const LAMBDA_SERVICE_ERRORS: [&str; 5] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
];

/// A function that ran out of time or memory: on AWS `Lambda.Unknown`, or the runtime's own
/// `Sandbox.Timedout`. The write it made may have taken effect.
const FUNCTION_DIED: [&str; 2] = ["Lambda.Unknown", "Sandbox.Timedout"];

fn retried(state: &Value) -> Vec<&str> {
    state["Retry"][0]["ErrorEquals"].as_array().unwrap().iter().filter_map(Value::as_str).collect()
}

#[test]
fn every_task_is_bounded_retried_and_caught() {
    let definition = definition();
    for (name, state) in definition["States"].as_object().unwrap() {
        if state["Type"] != "Task" {
            continue;
        }
        // Hooks may run for Lambda's 15 minutes; the controller's own tasks take seconds.
        let bound = match name.as_str() {
            n if n.ends_with("Traffic") => 960,
            // A person has a week to answer an approval gate.
            "AwaitApproval" => 7 * 24 * 3600,
            _ => 300,
        };
        assert!(state["TimeoutSeconds"].as_u64().is_some_and(|t| t <= bound), "{name} has no timeout");
        let retried = retried(state);
        for error in LAMBDA_SERVICE_ERRORS.iter().chain(&["TransientAwsError"]) {
            assert!(retried.contains(error), "{name} does not retry {error}");
        }
        for never in ["RequestRefused", "AliasChangedConcurrently", "States.ALL", "States.TaskFailed"] {
            assert!(!retried.contains(&never), "{name} retries {never}, which cannot succeed on a retry");
        }
        let catch_all = state["Catch"].as_array().unwrap().last().unwrap();
        assert_eq!(catch_all["ErrorEquals"][0], "States.ALL", "{name}");
        let expected = match name.as_str() {
            "Prepare" => "NotStarted",
            "Rollback" => "RollbackFailed",
            _ => "Rollback",
        };
        assert_eq!(catch_all["Next"], expected, "{name}: a failure after traffic may have moved must roll back");
    }
}

#[test]
fn the_router_covers_every_decision_of_the_core() {
    let definition = definition();
    let route = &definition["States"]["Route"];
    assert_eq!(route["Default"], "Rollback", "an unknown decision must roll back");
    let routed: BTreeSet<String> =
        route["Choices"].as_array().unwrap().iter().map(|c| c["StringEquals"].as_str().unwrap().to_string()).collect();
    for next in Next::ALL {
        let name = serde_json::to_value(next).unwrap().as_str().unwrap().to_string();
        let choice = route["Choices"].as_array().unwrap().iter().find(|c| c["StringEquals"] == name.as_str());
        match choice {
            Some(choice) => assert_eq!(choice["Next"], next.state(), "{name} goes to the wrong state"),
            // Rollback is the default: any decision the router does not know rolls back.
            None => assert_eq!(
                (next, route["Default"].as_str()),
                (Next::Rollback, Some(next.state())),
                "{name} is not routed"
            ),
        }
        assert!(definition["States"].get(next.state()).is_some(), "no state {}", next.state());
    }
    assert_eq!(routed.len(), Next::ALL.len() - 1, "every choice is a decision of the core");
    assert_eq!(definition["States"]["Hold"]["SecondsPath"], "$.wait_seconds");
}

#[test]
fn the_definition_is_parameterised_by_the_controller_function_arns() {
    let text = serde_json::to_string(&definition()).unwrap();
    let mut found = BTreeSet::new();
    for piece in text.split("${").skip(1) {
        found.insert(piece.split('}').next().unwrap().to_string());
    }
    let expected: BTreeSet<String> = [
        "PrepareFunctionArn",
        "ShiftFunctionArn",
        "CheckFunctionArn",
        "PromoteFunctionArn",
        "RollbackFunctionArn",
        "HookFunctionArn",
        "GateFunctionArn",
    ]
    .map(String::from)
    .into();
    assert_eq!(found, expected);
}

#[test]
fn idempotent_tasks_retry_a_function_that_died_after_its_write() {
    // Shift, promote and rollback detect a write that already happened, so a retry after a function timeout
    // finishes the job instead of rolling back a healthy rollout (or failing a rollback that succeeded).
    let definition = definition();
    for name in ["Prepare", "Shift", "Promote", "CheckHealth", "ApplyApproval", "Rollback"] {
        let retried = retried(&definition["States"][name]);
        for error in FUNCTION_DIED.iter().chain(&["States.Timeout"]) {
            assert!(retried.contains(error), "{name} does not retry {error}");
        }
    }
    // A hook is the user's code: one that died is a failed hook, and rolls back.
    for name in ["PreTraffic", "PostTraffic"] {
        let retried = retried(&definition["States"][name]);
        for error in FUNCTION_DIED {
            assert!(!retried.contains(&error), "{name} retries {error}: a hook that died must fail the rollout");
        }
    }
}

#[test]
fn an_unanswered_approval_gate_rolls_back_after_one_timeout() {
    // Retrying States.Timeout at a task-token gate re-invokes it with a new token: 7 days become 49.
    let definition = definition();
    let gate = &definition["States"]["AwaitApproval"];
    for error in ["States.Timeout", "States.HeartbeatTimeout", "States.ALL", "States.TaskFailed"] {
        assert!(!retried(gate).contains(&error), "AwaitApproval retries {error}");
    }
    assert_eq!(gate["TimeoutSeconds"], 7 * 24 * 3600);
    assert_eq!(gate["Catch"][0]["ErrorEquals"][0], "States.ALL");
    assert_eq!(gate["Catch"][0]["Next"], "Rollback");
}

#[test]
fn every_task_waits_longer_than_its_function_may_run() {
    // A task that gives up before its function ends turns a write in flight into States.Timeout while the
    // function still runs; the function's own timeout must end it first, as an error the task can retry.
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
    let global: u64 = template
        .lines()
        .skip_while(|l| l.trim() != "Globals:")
        .find_map(|l| l.trim().strip_prefix("Timeout: "))
        .unwrap()
        .parse()
        .unwrap();
    let hook: u64 = template
        .lines()
        .skip_while(|l| l.trim() != "HookFunction:")
        .find_map(|l| l.trim().strip_prefix("Timeout: "))
        .unwrap()
        .parse()
        .unwrap();
    let definition = definition();
    for (name, state) in definition["States"].as_object().unwrap() {
        if state["Type"] != "Task" {
            continue;
        }
        let function = if name.ends_with("Traffic") { hook } else { global };
        let task = state["TimeoutSeconds"].as_u64().unwrap();
        assert!(task > function, "{name}: the task gives up after {task} s, its function may run {function} s");
    }
}
