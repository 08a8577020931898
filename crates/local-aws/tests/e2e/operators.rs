//! What operators and other systems see: the safety net after a console Stop, one rollout per alias,
//! canaryctl's verbs, traffic hooks, approval gates and rollout events.

use crate::*;

// ---- The safety net (issue 5). ----

/// Stopped from the console during a hold: no Catch runs; EventBridge's rule (played by the router here)
/// invokes the safety net, which restores the alias.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_console_stop_during_a_hold_is_restored_by_the_safety_net() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let input = json!({"function": function, "alias": "live", "version": "2",
        "strategy": {"linear": {"percent": 25, "interval_seconds": 30}}, "health": {"enabled": false}});
    let arn = stack.start(&input, None).await;
    stack.first_shift(&function).await;
    stack.stop(&arn).await;
    assert_eq!(stack.wait(&arn).await.0, "ABORTED");
    stack.assert_restored(&function, 30).await;
}

/// Stopped from the console while paused at an approval gate.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_console_stop_at_an_approval_gate_is_restored_by_the_safety_net() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let name = paused(&stack, &function, 25, 50).await;
    assert_eq!(stack.alias(&function).await.1.get("2").copied(), Some(0.25));
    let arn = format!("{}:{name}", stack.state_machine_arn.replacen(":stateMachine:", ":execution:", 1));
    stack.stop(&arn).await;
    stack.assert_restored(&function, 30).await;
}

/// Stopped while a shift is in flight (its function starts 6 s late): the safety net restores and gives the
/// lock back, so the shift that lands afterwards finds the alias no longer held and writes nothing.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_console_stop_while_a_shift_is_in_flight_leaves_no_traffic_moved() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    stack.fault_for("canary-ShiftFunction", "delay", 1, 6).await;
    let input = json!({"function": function, "alias": "live", "version": "2",
        "strategy": {"linear": {"percent": 25, "interval_seconds": 30}}, "health": {"enabled": false}});
    let arn = stack.start(&input, None).await;
    // Prepare has held the alias: the shift is in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stack.description(&function).await.starts_with(canary_core::lock::PREFIX) {
        assert!(Instant::now() < deadline, "the rollout never took the alias");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop(&arn).await;
    stack.assert_restored(&function, 30).await;
    // The delayed shift runs now, and must not move anything.
    tokio::time::sleep(Duration::from_secs(8)).await;
    stack.assert_restored(&function, 0).await;
}

/// One rollout per alias: a second start is refused with the running execution's name, by the state
/// machine itself (a console start) and by canaryctl, while the first goes on.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_second_rollout_of_a_busy_alias_is_refused() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[], &[]]).await;
    let first_name = format!("e2e-first-{}", unique());
    let input = |version: &str| {
        json!({"function": function, "alias": "live", "version": version,
               "strategy": {"linear": {"percent": 50, "interval_seconds": 8}}, "health": {"enabled": false}})
    };
    let first = stack.start(&input("2"), Some(&first_name)).await;
    // The first holds the alias once its Prepare has written the lock. (Of two starts at the same moment,
    // whichever locks first proceeds: of_two_simultaneous_starts_for_one_alias_exactly_one_proceeds.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stack.description(&function).await.starts_with(canary_core::lock::PREFIX) {
        assert!(Instant::now() < deadline, "the first rollout never took the alias");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, error, cause) = stack.rollout(input("3")).await;
    assert_eq!((status.as_str(), error.as_deref()), ("FAILED", Some("RequestRefused")), "{cause}");
    let message = cause["errorMessage"].as_str().unwrap();
    assert!(message.contains("alias: another rollout") && message.contains(&first_name), "{message}");
    let (code, result) = tokio::task::spawn_blocking({
        let (stack, function) = (clone_stack(&stack), function.clone());
        move || canaryctl(&stack, &function, "3", &["--no-health-check"])
    })
    .await
    .unwrap();
    assert_eq!(code, 3, "{result}");
    assert!(result["stderr"].as_str().unwrap().contains(&first_name), "{result}");
    let (status, _, report) = stack.wait(&first).await;
    assert_eq!(status, "SUCCEEDED", "the first rollout went on: {report}");
    assert_eq!(stack.alias(&function).await, ("2".into(), HashMap::new()));
}

/// An operator starts a rollout from CI, reads its status, watches it, aborts it; the safety net (here
/// given the event EventBridge delivers in AWS) restores the alias; status, watch and list then report it.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn operators_start_watch_status_abort_and_list() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let start = [
        "start",
        "--function",
        &function,
        "--alias",
        "live",
        "--version",
        "2",
        "--linear",
        "25",
        "--interval",
        "30",
        "--no-health-check",
        "--output",
        "json",
    ];
    let (code, stdout, stderr) = canaryctl_raw(&stack, &start);
    assert_eq!(code, 0, "{stderr}");
    let arn = serde_json::from_str::<Value>(&stdout).unwrap()["execution_arn"].as_str().unwrap().to_string();
    let name = arn.rsplit(':').next().unwrap().to_string();
    stack.first_shift(&function).await;

    let (code, stdout, stderr) = canaryctl_raw(&stack, &["status", &name, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((status["status"].as_str(), status["outcome"].as_str()), (Some("RUNNING"), Some("running")), "{status}");
    assert_eq!((status["step"].as_u64(), status["step_count"].as_u64()), (Some(1), Some(4)), "{status}");
    let shares = json!([{"version": "1", "percent": 75.0}, {"version": "2", "percent": 25.0}]);
    assert_eq!(status["routing"], shares, "the routing in watch's shape: {status}");

    let watcher = std::thread::spawn({
        let (stack, name) = (clone_stack(&stack), name.clone());
        move || canaryctl_raw(&stack, &["watch", &name, "--output", "json", "--poll-seconds", "1"])
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["abort", &name]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("the alias was restored; alias routes 1 (100%)"), "{stdout}");
    let (code, stdout, stderr) = watcher.join().unwrap();
    assert_eq!(code, 1, "watch exits 1 when the rollout ends without promotion: {stdout}{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Typed events of schema version 1: where it stands first; then one a state; how it ended last.
    assert!(lines.iter().all(|l| l["event_version"] == 1 && l["execution_arn"] == arn.as_str()), "{stdout}");
    assert_eq!(lines[0]["type"], "status", "{stdout}");
    let position = &lines[0]["rollout"];
    assert_eq!((position["step"].as_u64(), position["weight_percent"].as_f64()), (Some(1), Some(25.0)), "{stdout}");
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(kinds[1..3], ["prepared", "step_moved"], "{stdout}");
    assert_eq!(lines[2]["routing"], json!([{"version": "1", "percent": 75.0}, {"version": "2", "percent": 25.0}]));
    let last = lines.last().unwrap();
    assert_eq!((last["type"].as_str(), last["outcome"].as_str()), (Some("ended"), Some("aborted")), "{stdout}");

    let event = json!({"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": arn, "status": "ABORTED"}});
    let out = stack
        .lambda()
        .invoke()
        .function_name(crate::endings::SAFETY_NET)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.function_error(), None);
    stack.assert_restored(&function, 0).await;

    let (code, stdout, _) = canaryctl_raw(&stack, &["status", &arn]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with(&format!("{name}: aborted")), "{stdout}");
    assert!(stdout.contains("alias now routes 1 (100%)"), "what the alias routes now, read afresh: {stdout}");
    let (code, _, _) = canaryctl_raw(&stack, &["watch", &name]);
    assert_eq!(code, 1, "watching a finished rollout reports how it ended");
    let (code, _, stderr) = canaryctl_raw(&stack, &["abort", &name]);
    assert_eq!(code, 1, "{stderr}");
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["list", "--function", &function, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(
        (rows[0]["name"].as_str(), rows[0]["outcome"].as_str()),
        (Some(name.as_str()), Some("aborted")),
        "{rows}"
    );
    // A rollout further down than one page is found: list pages through the executions, filtering as it
    // goes (newer executions of other functions, one a page, come first).
    let other = service(&stack, &[&[], &[]]).await;
    let (status, _, _) = stack
        .rollout(json!({"function": other, "alias": "live", "version": "2",
        "strategy": {"all_at_once": {}}, "health": {"enabled": false}}))
        .await;
    assert_eq!(status, "SUCCEEDED");
    let paged = ["list", "--function", &function, "--max", "1", "--page-size", "1", "--output", "json"];
    let (code, stdout, stderr) = canaryctl_raw(&stack, &paged);
    assert_eq!(code, 0, "{stderr}");
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows[0]["name"].as_str(), Some(name.as_str()), "{rows}");
    let bounded = ["list", "--function", &function, "--scan", "1", "--output", "json"];
    let (code, stdout, stderr) = canaryctl_raw(&stack, &bounded);
    assert_eq!((code, stdout.trim()), (0, "[]"), "{stderr}");
    assert!(stderr.contains("--scan to look further"), "{stderr}");
}

// ---- Traffic hooks (issue 5). ----

async fn smoke_hook(stack: &Stack, variables: &[(&str, &str)]) -> String {
    let name = format!("sample-service-staging-e2e-{}-smoke", unique());
    local_aws::fixtures::deploy_function(&stack.lambda(), &name, "sample-smoke-hook", variables).await.expect("hook");
    name
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_failing_pre_traffic_hook_rolls_back_before_any_traffic_moved() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let hook = smoke_hook(&stack, &[("FAULT_ERROR_RATE", "1")]).await;
    let description = stack.description(&function).await;
    let mut input = linear(&function, "2", json!({"enabled": false}));
    input["hooks"] = json!({"pre_traffic": hook});
    let (status, error, report) = stack.rollout(input).await;
    assert_eq!((status.as_str(), error.as_deref()), ("FAILED", Some("RolledBack")), "{report}");
    assert_eq!(report["reason"]["signal"], "hook");
    assert!(report["reason"]["message"].as_str().unwrap().contains("injected fault"), "{report}");
    assert_eq!(report["steps"], json!([]), "no step was taken");
    // Only the lock was written, and given back: the routing never moved.
    stack.assert_restored(&function, 0).await;
    assert_eq!(stack.description(&function).await, description);
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn passing_hooks_see_both_versions_and_the_rollout_is_promoted() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let hook = smoke_hook(&stack, &[]).await;
    let mut input = linear(&function, "2", json!({"enabled": false}));
    input["hooks"] = json!({"pre_traffic": hook, "post_traffic": hook});
    let (status, _, report) = stack.rollout(input).await;
    assert_eq!(status, "SUCCEEDED", "{report}");
    let hooks = report["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{report}");
    assert_eq!((hooks[0]["hook"].as_str(), hooks[1]["hook"].as_str()), (Some("pre_traffic"), Some("post_traffic")));
    assert!(hooks.iter().all(|h| h["passed"] == true), "{report}");
    // The smoke hook called the new version itself, which is what the payload's new_version is for.
    assert!(hooks[0]["message"].as_str().unwrap().contains(&format!("{function}:2 answered 200")), "{report}");
    assert_eq!(stack.alias(&function).await, ("2".into(), HashMap::new()));
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_failing_post_traffic_hook_rolls_back_from_full_traffic() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let hook = smoke_hook(&stack, &[("FAULT_ERROR_RATE", "1")]).await;
    let mut input = linear(&function, "2", json!({"enabled": false}));
    input["hooks"] = json!({"post_traffic": hook});
    let (status, error, report) = stack.rollout(input).await;
    assert_eq!((status.as_str(), error.as_deref()), ("FAILED", Some("RolledBack")), "{report}");
    assert_eq!(report["steps"].as_array().unwrap().last().unwrap()["percent"], 100.0, "it had reached 100%: {report}");
    stack.assert_restored(&function, 0).await;
}

// ---- Approval gates (issue 5). ----

/// Starts a gated rollout and waits until it pauses at its gate; returns the execution's name.
pub(crate) async fn paused(stack: &Stack, function: &str, percent: u32, before: u32) -> String {
    let input = json!({"function": function, "alias": "live", "version": "2",
        "strategy": {"linear": {"percent": percent, "interval_seconds": 1}}, "health": {"enabled": false},
        "approval": {"before_percent": [before]}});
    let arn = stack.start(&input, None).await;
    let name = arn.rsplit(':').next().unwrap().to_string();
    wait_until_paused(stack, &name).await;
    name
}

/// Waits (up to 60 s) until the execution `name` (or ARN) waits at an approval gate.
async fn wait_until_paused(stack: &Stack, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, stdout, _) = canaryctl_raw(stack, &["status", name, "--output", "json"]);
        if serde_json::from_str::<Value>(&stdout).is_ok_and(|s| s["next"] == "await_approval") {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never paused: {stdout}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_paused_rollout_is_promoted() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let name = paused(&stack, &function, 50, 50).await;
    assert_eq!(stack.alias(&function).await, ("1".into(), HashMap::new()), "paused before any traffic moved");
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["promote", &name]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = canaryctl_raw(&stack, &["watch", &name, "--poll-seconds", "1"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stack.alias(&function).await, ("2".into(), HashMap::new()));
    let (code, _, stderr) = canaryctl_raw(&stack, &["promote", &name]);
    assert_eq!(code, 1, "a finished rollout is not waiting: {stderr}");
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn promote_full_goes_straight_to_100() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let name = paused(&stack, &function, 25, 50).await;
    assert_eq!(stack.alias(&function).await.1.get("2").copied(), Some(0.25), "paused at 25%, before 50%");
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["promote", &name, "--full"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = canaryctl_raw(&stack, &["watch", &name, "--output", "json", "--poll-seconds", "1"]);
    assert_eq!(code, 0, "{stdout}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((result["type"].as_str(), result["promoted"].as_bool()), (Some("ended"), Some(true)), "{result}");
    assert_eq!(result["steps_percent"], json!([25.0, 100.0]), "50% and 75% were skipped");
    assert_eq!(stack.alias(&function).await, ("2".into(), HashMap::new()));
}

#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_paused_rollout_is_aborted_and_the_alias_restored() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let name = paused(&stack, &function, 25, 50).await;
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["abort", &name]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("approval gate"), "{stdout}");
    let (code, stdout, _) = canaryctl_raw(&stack, &["watch", &name, "--output", "json", "--poll-seconds", "1"]);
    assert_eq!(code, 1, "{stdout}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["outcome"], "aborted", "{result}");
    assert!(result["message"].as_str().unwrap().contains("Aborted"), "{result}");
    let waited =
        stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|l| l["type"] == "approval_waiting");
    assert_eq!(waited.map(|l| l["before_percent"].clone()), Some(json!(50.0)), "the gate was announced: {stdout}");
    stack.assert_restored(&function, 0).await;
}

// ---- Notifications (issue 5). ----

/// Rollout events reach whoever subscribes: an EventBridge rule on source lambda-canary delivers them to a
/// queue, in order, each naming the rollout.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn rollout_events_are_published_to_eventbridge() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    let events = aws_sdk_eventbridge::Client::new(&stack.config);
    let queue = format!("e2e-events-{}", unique()).replace(['.', ':'], "-");
    let url = sqs.create_queue().queue_name(&queue).send().await.unwrap().queue_url().unwrap().to_string();
    let pattern = json!({"source": ["lambda-canary"], "detail": {"function": [function]}});
    events.put_rule().name(&queue).event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(format!("arn:aws:sqs:us-east-1:123456789012:{queue}"))
        .build()
        .unwrap();
    events.put_targets().rule(&queue).targets(target).send().await.unwrap();

    let (status, _, report) = stack.rollout(linear(&function, "2", json!({"enabled": false}))).await;
    assert_eq!(status, "SUCCEEDED", "{report}");
    let mut received: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.len() < 3 && Instant::now() < deadline {
        let out =
            sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        received.extend(out.messages().iter().filter_map(|m| serde_json::from_str(m.body()?).ok()));
    }
    let kinds: Vec<&str> = received.iter().filter_map(|e| e["detail-type"].as_str()).collect();
    assert_eq!(kinds, ["Rollout Started", "Rollout Step Passed", "Rollout Promoted"], "{received:?}");
    assert!(
        received.iter().all(|e| e["detail"]["new_version"] == "2" && e["detail"]["alias"] == "live"),
        "{received:?}"
    );
    assert_eq!(received[2]["detail"]["report"]["outcome"], "promoted");
}

/// An alias with provisioned concurrency: the rollout's first line says how Lambda shares it between the
/// versions as the weights move (Prepare reads it with GetProvisionedConcurrencyConfig, which its role
/// allows: the suite's IAM check covers the call).
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn the_first_line_says_how_provisioned_concurrency_is_shared() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let lambda = stack.lambda();
    let put = lambda.put_provisioned_concurrency_config().function_name(&function).qualifier("live");
    put.provisioned_concurrent_executions(4).send().await.expect("provisioned concurrency");
    let start = ["start", "--function", &function, "--alias", "live", "--version", "2", "--linear", "50"];
    // Held long enough for the follower to see Prepare's line before the end.
    let flags = ["--interval", "3", "--no-health-check", "--wait", "--poll-seconds", "1"];
    let (code, stdout, stderr) = canaryctl_raw(&stack, &[&start[..], &flags].concat());
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The progress lines go to stderr; the result to stdout.
    let prepared = stderr.lines().find(|l| l.starts_with("prepared:")).unwrap_or_default();
    assert!(prepared.contains("live has 4 provisioned concurrency") && prepared.contains("about 2 at 50%"), "{stderr}");
}

// ---- History and undo (issue 27). ----

/// An alias's rollouts, newest first, and `undo` back to the version before the last promotion through the
/// controller: refused with nothing to undo, done all at once, refused once the alias was moved by hand.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn history_lists_an_aliases_rollouts_and_undo_goes_back_through_the_controller() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[], &[]]).await;
    let (code, _, stderr) = canaryctl_raw(&stack, &["undo", &function, "live"]);
    assert_eq!(code, 5, "nothing promoted, nothing to undo: {stderr}");
    assert!(stderr.contains("nothing to undo"), "{stderr}");

    let (code, result) = canaryctl(&stack, &function, "2", &["--no-health-check"]);
    assert_eq!(code, 0, "{result}");
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["history", &function, "live", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!((rows[0]["outcome"].as_str(), rows[0]["old_version"].as_str()), (Some("promoted"), Some("1")));
    assert_eq!((rows[0]["new_version"].as_str(), rows[0]["why"].as_str()), (Some("2"), Some("promoted in 2 steps")));
    assert!(rows[0]["duration_seconds"].as_i64().unwrap() >= 2, "{rows}");

    let (code, stdout, stderr) =
        canaryctl_raw(&stack, &["undo", &function, "live", "--wait", "--poll-seconds", "1", "--output", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("back from version 2 to 1, all at once"), "{stderr}");
    assert_eq!(stack.alias(&function).await, ("1".into(), HashMap::new()), "undone through the controller");

    // The undo is a rollout of its own: newest first.
    let (code, stdout, _) = canaryctl_raw(&stack, &["history", &function, "live"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("started") && lines.len() == 3, "a header and two rows, newest first: {stdout}");
    assert!(lines[1].contains("promoted") && lines[1].contains("2 -> 1"), "{stdout}");
    assert!(lines[2].contains("promoted") && lines[2].contains("1 -> 2"), "{stdout}");

    // Moved by hand since the last promotion: refused, nothing moved.
    stack.point_by_hand(&function, "3").await;
    let (code, _, stderr) = canaryctl_raw(&stack, &["undo", &function, "live"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("routes 3 (100%), not 1 alone"), "{stderr}");
    assert_eq!(stack.alias(&function).await, ("3".into(), HashMap::new()));
}

/// `canaryctl pause FUNCTION:ALIAS` holds a running rollout at its weight well past its hold (the check reads
/// the pause tag through the router, so its role's ListTags is checked too), `status` says since when, and
/// `resume` lets it go on to promotion.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn a_paused_rollout_holds_its_weight_until_resumed() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let arn = stack.start(&linear(&function, "2", json!({"enabled": false})), None).await;
    let address = format!("{function}:live");
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["pause", &address, "--output", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((answer["paused"].as_bool(), answer["functions"].clone()), (Some(true), json!([function])));

    stack.first_shift(&function).await;
    // Its hold is 3 s: held at 50% for four times that.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(stack.alias(&function).await, ("1".into(), HashMap::from([("2".to_string(), 0.5)])), "held at 50%");
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["status", &address, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert!(status["paused_since"].is_string() && status["outcome"] == "running", "{status}");
    let (_, text, _) = canaryctl_raw(&stack, &["status", &address]);
    assert!(text.contains("paused since") && text.contains("canaryctl resume"), "{text}");

    let (code, stdout, stderr) = canaryctl_raw(&stack, &["resume", &address]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("resumed "), "{stdout}");
    let (status, error, report) = stack.wait(&arn).await;
    assert_eq!((status.as_str(), error), ("SUCCEEDED", None), "{report}");
    assert_eq!(stack.alias(&function).await, ("2".into(), HashMap::new()));
    let (code, _, stderr) = canaryctl_raw(&stack, &["pause", &arn]);
    assert_eq!(code, 1, "an ended rollout has nothing to pause: {stderr}");
}

/// `undo --to-version` goes back further than one promotion, through the controller: to a version that served
/// the alias (1, replaced two promotions ago), not to one that never did (4), and not, unasked, to one a later
/// move set aside (3, after the undo to 1).
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn undo_to_version_goes_back_to_a_named_earlier_version() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[], &[], &[]]).await;
    for version in ["2", "3"] {
        let (code, result) = canaryctl(&stack, &function, version, &["--no-health-check"]);
        assert_eq!(code, 0, "{result}");
    }
    let (code, _, stderr) = canaryctl_raw(&stack, &["undo", &function, "live", "--to-version", "4"]);
    assert_eq!(code, 5, "version 4 never served live: {stderr}");
    assert!(stderr.contains("version 4 did not serve"), "{stderr}");
    let (code, _, stderr) = canaryctl_raw(&stack, &["undo", &function, "live", "--to-version", "3"]);
    assert_eq!(code, 3, "live already routes 3: {stderr}");

    let back = ["undo", &function, "live", "--to-version", "1", "--wait", "--poll-seconds", "1", "--output", "json"];
    let (code, stdout, stderr) = canaryctl_raw(&stack, &back);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("back from version 3 to 1, all at once"), "{stderr}");
    assert_eq!(
        stack.alias(&function).await,
        ("1".into(), HashMap::new()),
        "two promotions back, through the controller"
    );

    // 3 was set aside by that move: going to it again needs --retry-rejected.
    let (code, _, stderr) = canaryctl_raw(&stack, &["undo", &function, "live", "--to-version", "3"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("back from version 3 to 1") && stderr.contains("--retry-rejected"), "{stderr}");
    assert_eq!(stack.alias(&function).await, ("1".into(), HashMap::new()), "nothing moved");
    let again = ["undo", &function, "live", "--to-version", "3", "--retry-rejected", "--wait", "--poll-seconds", "1"];
    let (code, stdout, stderr) = canaryctl_raw(&stack, &again);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stack.alias(&function).await, ("3".into(), HashMap::new()));
}

/// An aborted rollout, whose version `start` now refuses as rejected, is run again as it was asked with
/// `retry`: it pauses at the same gate, and goes on to promotion.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn retry_runs_an_aborted_rollout_again_as_it_was_asked() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let name = paused(&stack, &function, 50, 50).await;
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["abort", &name]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let start = ["start", "--function", &function, "--alias", "live", "--version", "2", "--no-health-check"];
    let (code, _, stderr) = canaryctl_raw(&stack, &start);
    assert_eq!(code, 3, "the aborted version is refused by start: {stderr}");

    let (code, stdout, stderr) = canaryctl_raw(&stack, &["retry", &name, "--output", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains(&format!("retry: {name} (aborted) again")), "{stderr}");
    let arn = serde_json::from_str::<Value>(&stdout).unwrap()["execution_arn"].as_str().unwrap().to_string();
    assert!(!arn.ends_with(&name), "a new execution: {arn}");
    wait_until_paused(&stack, &arn).await; // at the same gate
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["promote", &arn, "--full"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = canaryctl_raw(&stack, &["watch", &arn, "--poll-seconds", "1"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stack.alias(&function).await, ("2".into(), HashMap::new()));
    let (code, _, stderr) = canaryctl_raw(&stack, &["retry", &arn]);
    assert_eq!(code, 1, "a promoted rollout has nothing to retry: {stderr}");
}

/// In an incident one knows the service, not the execution's name: `status`, `promote` and `abort` take
/// `FUNCTION:ALIAS`, which finds the rollout that holds the alias now, or else its latest.
#[tokio::test]
#[ignore = "needs the local AWS stack: run through cargo xtask test"]
async fn canaryctl_finds_a_rollout_by_its_function_and_alias() {
    let stack = Stack::get().await;
    let function = service(&stack, &[&[], &[]]).await;
    let name = paused(&stack, &function, 50, 100).await;
    let address = format!("{function}:live");
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["status", &address, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["name"], name, "the rollout that holds the alias: {status}");
    let (code, _, stderr) = canaryctl_raw(&stack, &["promote", &address]);
    assert_eq!(code, 0, "{stderr}");
    let arn = format!("{}:{name}", stack.state_machine_arn.replacen(":stateMachine:", ":execution:", 1));
    let (state, _, report) = stack.wait(&arn).await;
    assert_eq!(state, "SUCCEEDED", "{report}");
    // Ended, it holds nothing: the latest rollout of the alias is found instead.
    let (code, stdout, stderr) = canaryctl_raw(&stack, &["status", &address, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((status["name"].as_str(), status["outcome"].as_str()), (Some(name.as_str()), Some("promoted")));
    let (code, _, stderr) = canaryctl_raw(&stack, &["status", &format!("{function}:nope")]);
    assert_eq!(code, 5, "no such alias: {stderr}");
}
