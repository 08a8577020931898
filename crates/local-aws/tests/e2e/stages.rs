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

/// Publishes a new version of a function of the template's stack as a deploy would (its configuration
/// changed, `deployed` moved to it), leaving `live` where it is. Returns (live's version, the new one).
async fn deploy_new_version(stack: &Stack, function: &str) -> (String, String) {
    let lambda = stack.lambda();
    let config = lambda.get_function_configuration().function_name(function).send().await.expect("config");
    let mut variables = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    variables.insert("RELEASE".into(), unique());
    let environment = aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables)).build();
    lambda.update_function_configuration().function_name(function).environment(environment).send().await.unwrap();
    let new = lambda.publish_version().function_name(function).send().await.expect("publish");
    let new = new.version().unwrap().to_string();
    lambda.update_alias().function_name(function).name("deployed").function_version(&new).send().await.unwrap();
    (stack.alias(function).await.0, new)
}

/// What the shipped pipeline does after a deploy of the staging stack (scripts/rollout.sh): the API and its
/// worker, deployed by the template itself, rolled out as one release with the shipped request file and
/// the stage's own smoke hook, under orders that go through the API to the worker. Every role of the
/// template's sample service acts here, so the IAM stage checks them (the hook may invoke the worker too).
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn the_shipped_pipeline_rolls_out_the_templates_own_api_and_worker_through_its_hook() {
    let stack = Stack::get().await;
    let (api, worker) = ("sample-service-staging", "sample-service-staging-worker");
    let (api_live, api_new) = deploy_new_version(&stack, api).await;
    let (worker_live, worker_new) = deploy_new_version(&stack, worker).await;
    // Orders through the API: each accepted one is handed to the worker's live alias by the API's own role.
    let mut order = serde_json::to_value(sample_service::api_gateway_event(
        sample_service::Method::POST,
        "/orders",
        "staging",
        local_aws::fixtures::ACCOUNT,
    ))
    .unwrap();
    order["body"] = json!(json!({"item": "tea", "quantity": 2}).to_string());
    order["headers"] = json!({"content-type": "application/json"});
    order["multiValueHeaders"] = json!({"content-type": ["application/json"]});
    let traffic = Traffic::start_with(
        stack.lambda(),
        api,
        "live",
        order,
        Duration::from_millis(50),
        5_000,
        Duration::from_secs(120),
    );
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/staging-rollout.json");
    // Run off the test's thread, so that the traffic goes on meanwhile.
    let (runner, api_arg, worker_arg) =
        (clone_stack(&stack), format!("{api}:{api_new}"), format!("{worker}:{worker_new}"));
    let started = tokio::task::spawn_blocking(move || {
        canaryctl_raw(
            &runner,
            &[
                "start",
                "--input",
                file,
                "--function",
                &api_arg,
                "--function",
                &worker_arg,
                "--alias",
                "live",
                // The local stack's metrics are complete at once: the file's one-minute bake and delay, shortened.
                "--bake",
                "3",
                "--metrics-delay",
                "1",
                "--wait",
                "--output",
                "json",
            ],
        )
    });
    let (code, stdout, stderr) = started.await.expect("canaryctl ran");
    let counts = traffic.stop().await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}"));
    assert_eq!(result["outcome"], "promoted", "{result}");
    let hooks = result["report"]["hooks"][0]["message"].as_str().unwrap_or_default();
    assert!(hooks.contains("GET /health on") && hooks.contains(&format!("a sample order on {worker}:")), "{result}");
    assert_eq!(stack.alias(api).await, (api_new.clone(), HashMap::new()));
    assert_eq!(stack.alias(worker).await, (worker_new.clone(), HashMap::new()));
    assert!(counts.get(&api_new).is_some_and(|(n, failed)| *n > 0 && *failed == 0), "{counts:?}");
    assert!(api_live != api_new && worker_live != worker_new);
}
