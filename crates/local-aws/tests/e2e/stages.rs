//! A stage's controller touches only its stage's functions, and Lambda's rules about versions that cannot
//! serve are checked before traffic moves: what the emulator does not enforce, the project does.

use crate::*;

/// Marks `function`'s `version` with Lambda's `state` (Pending, Inactive, Failed, Active), which moto never
/// changes: the router then reports it and fails invocations of it as Lambda does.
async fn mark(stack: &Stack, function: &str, version: &str, state: &str) {
    let body = json!({"function": function, "version": version, "state": state}).to_string();
    assert_eq!(http(&stack.endpoint_url, "POST", "/_local/version-state", &body).await.0, 204, "marking {state}");
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn the_staging_controller_refuses_a_production_function_by_name_before_anything_moves() {
    let stack = Stack::get().await;
    // Production's naming, in the one account both stages share; the local stack is the staging stage.
    let function = format!("sample-service-prod-e2e-{}", unique());
    deploy_versions(&stack.lambda(), &function, "sample-service", "live", &[&[], &[]]).await.expect("deploy");
    let input = json!({"function": function, "alias": "live", "version": "2", "strategy": {"all_at_once": {}},
        "health": {"enabled": false}});
    let (status, error, cause) = stack.rollout(input).await;
    assert_eq!((status.as_str(), error.as_deref()), ("FAILED", Some("RequestRefused")), "{cause}");
    let message = cause["errorMessage"].as_str().unwrap();
    assert!(message.contains("function: ") && message.contains("(sample-service-staging*)"), "{message}");
    // canaryctl says the same before creating an execution.
    let (code, _, stderr) = canaryctl_raw(
        &stack,
        &["start", "--function", &function, "--alias", "live", "--version", "2", "--all-at-once", "--no-health-check"],
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("sample-service-staging*") && stderr.contains("ManagedFunctionPattern"), "{stderr}");
    stack.assert_restored(&function, 0).await;
    assert!(stack.description(&function).await.is_empty(), "not even locked");
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_version_that_cannot_serve_is_refused_and_a_rollback_to_one_says_so() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[("FAULT_ERROR_RATE", "1")]]).await;
    // Just published: Pending. Neither the state machine nor canaryctl routes traffic to it.
    mark(&stack, &function, "2", "Pending").await;
    let (status, error, cause) = stack.rollout(request(&function, "2", quick_health())).await;
    assert_eq!((status.as_str(), error.as_deref()), ("FAILED", Some("RequestRefused")), "{cause}");
    let message = cause["errorMessage"].as_str().unwrap();
    assert!(message.contains(&format!("{function} version 2 is Pending")), "{message}");
    let (code, _, stderr) = canaryctl_raw(
        &stack,
        &["start", "--function", &function, "--alias", "live", "--version", "2", "--all-at-once", "--no-health-check"],
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("is Pending") && stderr.contains("function-active-v2"), "{stderr}");
    stack.assert_restored(&function, 0).await;
    // Version 2 is Active now, and fails; version 1, the one a rollback goes back to, went Inactive.
    mark(&stack, &function, "2", "Active").await;
    mark(&stack, &function, "1", "Inactive").await;
    let traffic = traffic(&stack, &function);
    let (status, error, report) = stack.rollout(request(&function, "2", quick_health())).await;
    traffic.stop().await;
    mark(&stack, &function, "1", "Active").await;
    assert_eq!((status.as_str(), error.as_deref()), ("FAILED", Some("RolledBack")), "{report}");
    stack.assert_restored(&function, 0).await;
    let warnings = report["warnings"].as_array().unwrap_or_else(|| panic!("the report says so: {report}"));
    assert!(warnings[0].as_str().unwrap().contains("version 1, which is Inactive"), "{report}");
}
