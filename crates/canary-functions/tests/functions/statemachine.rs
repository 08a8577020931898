//! The state machine definition agrees with the functions: every state the core can ask for is routed,
//! every task is bounded and guarded, and every failure after the first write ends in the rollback.

use canary_core::Next;
use canary_core::asl::{ErrorName, FUNCTION_DIED, SERVICE_FAILURES, State};
use canary_core::deployment::Deployment;
use canary_functions::serve::ControllerTask;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use strum::VariantArray;

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

fn retried(state: &Value) -> BTreeSet<ErrorName> {
    let names = state["Retry"][0]["ErrorEquals"].as_array().unwrap().iter();
    names.map(|n| n.as_str().unwrap().parse().unwrap_or_else(|_| panic!("{n} is not in asl::ErrorName"))).collect()
}

#[test]
fn the_definition_speaks_exactly_the_vocabulary_of_the_code() {
    let definition = definition();
    let states: BTreeSet<&str> = definition["States"].as_object().unwrap().keys().map(String::as_str).collect();
    let known: BTreeSet<&str> = State::VARIANTS.iter().map(|s| s.as_str()).collect();
    assert_eq!(states, known, "the definition's states against canary_core::asl::State");
    let mut named = BTreeSet::new();
    for state in definition["States"].as_object().unwrap().values() {
        for list in ["Retry", "Catch"] {
            for entry in state[list].as_array().into_iter().flatten() {
                named.extend(entry["ErrorEquals"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()));
            }
        }
        if let Some(error) = state["Error"].as_str() {
            named.insert(error.to_string());
        }
    }
    let expected: BTreeSet<String> =
        ErrorName::VARIANTS.iter().filter(|e| e.in_definition()).map(|e| e.as_str().to_string()).collect();
    assert_eq!(named, expected, "the definition's error names against canary_core::asl::ErrorName");
}

#[test]
fn every_task_is_bounded_retried_and_caught() {
    let definition = definition();
    for (name, state) in definition["States"].as_object().unwrap() {
        if state["Type"] != "Task" {
            continue;
        }
        let name: State = name.parse().unwrap();
        // Hooks may run for Lambda's 15 minutes; the controller's own tasks take seconds.
        let bound = match name {
            State::PreTraffic | State::PostTraffic => 960,
            // A person has a week to answer an approval gate.
            State::AwaitApproval => 7 * 24 * 3600,
            _ => 300,
        };
        assert!(state["TimeoutSeconds"].as_u64().is_some_and(|t| t <= bound), "{name} has no timeout");
        // Every task retries the service's own failures; what else it retries depends on whether its work may
        // run twice.
        let expected: BTreeSet<ErrorName> = match name {
            // The user's code: one that died or ran out of time is a failed hook, never run twice. Only
            // failures before it ran (the service's) are retried.
            State::PreTraffic | State::PostTraffic => SERVICE_FAILURES.into(),
            // A task-token wait: a retry would issue a new token and wait another week.
            State::AwaitApproval => SERVICE_FAILURES.into(),
            // The controller's own: a move, check or rollback that already happened is detected and not
            // repeated, so one that died after its write is retried and finishes the job.
            _ => SERVICE_FAILURES.into_iter().chain(FUNCTION_DIED).collect(),
        };
        assert_eq!(retried(state), expected, "{name}'s Retry");
        let catch_all = state["Catch"].as_array().unwrap().last().unwrap();
        assert_eq!(catch_all["ErrorEquals"][0], ErrorName::StatesAll.as_str(), "{name}");
        let expected = match name {
            State::Prepare => State::NotStarted,
            State::Rollback => State::RollbackFailed,
            _ => State::Rollback,
        };
        assert_eq!(
            catch_all["Next"],
            expected.as_str(),
            "{name}: a failure after traffic may have moved must roll back"
        );
    }
    let refused = &definition["States"][State::Prepare.as_str()]["Catch"][0];
    assert_eq!((&refused["ErrorEquals"][0], &refused["Next"]), (&json!("RequestRefused"), &json!("Refused")));
}

#[test]
fn the_router_covers_every_decision_of_the_core() {
    let definition = definition();
    let route = &definition["States"][State::Route.as_str()];
    assert_eq!(route["Default"], State::Rollback.as_str(), "an unknown decision must roll back");
    let routed: BTreeSet<&str> =
        route["Choices"].as_array().unwrap().iter().map(|c| c["StringEquals"].as_str().unwrap()).collect();
    for next in Next::VARIANTS {
        let name = next.as_str();
        assert_eq!(serde_json::to_value(next).unwrap(), json!(name), "the state's `next` is its name");
        let choice = route["Choices"].as_array().unwrap().iter().find(|c| c["StringEquals"] == name);
        match choice {
            Some(choice) => assert_eq!(choice["Next"], next.state().as_str(), "{name} goes to the wrong state"),
            // Rollback is the default: any decision the router does not know rolls back.
            None => assert_eq!(
                (*next, route["Default"].as_str()),
                (Next::Rollback, Some(next.state().as_str())),
                "{name} is not routed"
            ),
        }
    }
    assert_eq!(routed.len(), Next::VARIANTS.len() - 1, "every choice is a decision of the core");
    assert_eq!(definition["States"][State::Hold.as_str()]["SecondsPath"], "$.wait_seconds");
}

#[test]
fn the_definition_is_parameterised_by_the_controller_function_arns_and_the_deployment() {
    let text = serde_json::to_string(&definition()).unwrap();
    let mut found = BTreeSet::new();
    for piece in text.split("${").skip(1) {
        found.insert(piece.split('}').next().unwrap().to_string());
    }
    let functions = ControllerTask::ALL.into_iter().map(ControllerTask::substitution);
    let facts =
        Deployment::AWS.substitutions().map(|(name, _)| name).into_iter().chain(Deployment::REACH_SUBSTITUTIONS);
    let expected: BTreeSet<String> = functions.chain(facts).map(String::from).collect();
    assert_eq!(found, expected);
    // Filled with AWS's facts and a stage's patterns, Prepare reads them back as such.
    let mut filled = text.clone();
    for (name, value) in Deployment::AWS.substitutions() {
        filled = filled.replace(&format!("${{{name}}}"), &value);
    }
    let patterns = ["sample-service-prod*", "sample-service-prod*-smoke"];
    for (name, value) in Deployment::REACH_SUBSTITUTIONS.into_iter().zip(patterns) {
        filled = filled.replace(&format!("${{{name}}}"), value);
    }
    let prod = Deployment {
        managed_functions: Some(patterns[0].into()),
        hook_functions: Some(patterns[1].into()),
        ..Deployment::AWS
    };
    assert_eq!(Deployment::from_definition(&filled), Some(prod));
}

/// The waits the core counts in a rollout's worst case are the definition's own.
#[test]
fn the_worst_case_counts_the_definitions_timeouts() {
    let definition = definition();
    let timeout = |state: State| definition["States"][state.as_str()]["TimeoutSeconds"].as_u64().unwrap();
    assert_eq!(timeout(State::AwaitApproval), canary_core::budget::GATE_TIMEOUT_SECONDS);
    assert_eq!(timeout(State::PreTraffic), canary_core::budget::HOOK_TIMEOUT_SECONDS);
    assert_eq!(timeout(State::PostTraffic), canary_core::budget::HOOK_TIMEOUT_SECONDS);
}

#[test]
fn an_unanswered_approval_gate_rolls_back_after_one_timeout() {
    // Retrying States.Timeout at a task-token gate re-invokes it with a new token: 7 days become 49.
    let definition = definition();
    let gate = &definition["States"][State::AwaitApproval.as_str()];
    assert!(!retried(gate).contains(&ErrorName::StatesTimeout), "AwaitApproval retries States.Timeout");
    assert_eq!(gate["TimeoutSeconds"], 7 * 24 * 3600);
    assert_eq!(gate["Catch"][0]["ErrorEquals"][0], ErrorName::StatesAll.as_str());
    assert_eq!(gate["Catch"][0]["Next"], State::Rollback.as_str());
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
