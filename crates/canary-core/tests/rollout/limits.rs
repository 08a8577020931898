//! Step Functions' limits (history, state size, cause), and the rules that hold whatever the request.

use crate::*;

/// The loop of the state machine again, counting the history events each state writes as AWS does (a task
/// 5, a task-token task 6, a choice or a wait 2), against traffic that stays too thin to judge until the
/// last re-check of every step: the worst case `budget::worst_case_events` must bound.
fn events_of_slowest_run(request: RolloutRequest) -> (u64, Rollout) {
    let mut rollout = Rollout::prepare(request, facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let mut events = 1 + 5; // execution started, Prepare
    let mut revision = 1;
    let mut now = t0();
    let mut rechecks = 0;
    loop {
        events += 2; // Route
        match rollout.next {
            Next::Shift | Next::Promote => {
                events += 5;
                revision += 1;
                rechecks = 0;
                rollout = rollout.after_move(format!("r{revision}"), now);
            }
            Next::Hold => {
                events += 2 + 5;
                now += Duration::seconds(rollout.wait_seconds as i64);
                // Too quiet to judge while the step may still wait; enough traffic at the last chance.
                let waited = rollout.waited_for_data_seconds;
                let hold = rollout.schedule().step(rollout.step.unwrap()).hold_seconds;
                let max = rollout.request.health.no_data_max_wait_seconds;
                let last_chance = waited + canary_core::budget::recheck_seconds(hold, max) > max;
                rechecks += 1;
                rollout = rollout.after_check(if last_chance { healthy() } else { quiet() }, now);
            }
            Next::AwaitApproval => {
                events += 6 + 5;
                rollout = rollout.after_approval(Decision::Promote).unwrap();
            }
            Next::PreTraffic | Next::PostTraffic => {
                events += 5;
                rollout = rollout.after_hook(canary_core::HookOutcome { passed: true, message: "ok".into() }, now);
            }
            Next::Done | Next::Rollback => return (events + 2, rollout), // the final state, and the end
        }
        let hold = rollout.step.map_or(0, |s| rollout.schedule().step(s).hold_seconds);
        let looks = canary_core::budget::looks_per_hold(&rollout.request, hold);
        assert!(rechecks <= looks + canary_core::budget::MAX_RECHECKS, "a step was re-checked {rechecks} times");
    }
}

#[test]
fn no_accepted_request_outgrows_the_execution_history() {
    use canary_core::budget::{HISTORY_EVENT_LIMIT, RETRY_RESERVE, worst_case_events};
    let requests = [
        json!({"strategy": {"linear": {"percent": 10, "interval_seconds": 60}}}),
        json!({"strategy": {"linear": {"percent": 100.0 / 216.0, "interval_seconds": 1}}}),
        json!({"strategy": {"linear": {"percent": 25, "interval_seconds": 2}},
               "health": {"metrics_delay_seconds": 0, "no_data_max_wait_seconds": 10},
               "approval": {"before_percent": [50, 100]}, "hooks": {"pre_traffic": "a", "post_traffic": "b"}}),
        json!({"strategy": {"all_at_once": {"bake_seconds": 600}}}),
    ];
    for extra in requests {
        let request = request(extra.clone());
        let bound = worst_case_events(&request).total();
        let (events, done) = events_of_slowest_run(request);
        assert_eq!(done.next, Next::Done, "{extra}: traffic came at the last chance of every step");
        assert!(events <= bound, "{extra}: {events} events, more than the {bound} foreseen");
        assert!(bound + RETRY_RESERVE <= HISTORY_EVENT_LIMIT, "{extra}");
    }
}

/// The largest request that is accepted: the longest names, 50 alarms of 255 characters, 999 listed steps,
/// as many approval gates as a year admits (each may wait a week), both hooks.
fn largest_request() -> RolloutRequest {
    let arn = |name: &str| format!("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:{name}");
    let alarms: Vec<String> = (0..50).map(|i| format!("{i:02}{}", "a".repeat(253))).collect();
    let steps: Vec<Value> = (1..=999).map(|i| json!({"percent": i as f64 / 10.0, "hold_seconds": 1})).collect();
    // Each gate may wait a week: 51 keep the worst case inside the year an execution may run.
    let gates: Vec<f64> = (1..=51).map(|i| i as f64 / 10.0).collect();
    let input = json!({"function": arn(&"f".repeat(64)), "alias": "a".repeat(128), "version": "4294967295",
        "strategy": {"steps": steps},
        "health": {"alarms": alarms, "no_data": "fail", "compare_to_baseline": true, "max_error_rate": 0.01,
                   "max_latency_p99_increase": 0.5, "metrics_delay_seconds": 0},
        "approval": {"before_percent": gates},
        "hooks": {"pre_traffic": arn(&"p".repeat(64)), "post_traffic": arn(&"q".repeat(64))}});
    parse_request(&input).expect("the largest request is accepted")
}

/// Every figure a check can show, and every alarm: OK until `firing`, then in ALARM since the rollout.
fn busiest_figures(request: &RolloutRequest, firing: bool) -> Option<HealthFigures> {
    let version = |errors| VersionFigures {
        invocations: 1_000_000_000,
        errors,
        throttles: 1_000_000,
        p99_duration_ms: Some(123_456.789_012_345),
        slow: Some(1_000_000_000),
    };
    let alarms = request
        .health
        .alarms
        .iter()
        .map(|name| canary_core::AlarmState {
            name: name.clone(),
            state: if firing { canary_core::AlarmValue::Alarm } else { canary_core::AlarmValue::Ok },
            updated_at: t0() + Duration::days(300),
        })
        .collect();
    Some(HealthFigures { new: version(1_000), baseline: version(999), alarms })
}

#[test]
fn the_largest_accepted_rollout_fits_step_functions_limits() {
    largest_fits(largest_request(), 998);
}

/// A release of 10 functions, each of the longest names, with the largest request's policy: it fits as the
/// largest rollout of one function does, each function keeping its share of the step records.
#[test]
fn the_largest_accepted_release_fits_step_functions_limits() {
    let arn = |name: String| format!("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:{name}");
    let mut input = largest_request().as_written();
    let functions: Vec<Value> = (0..10)
        .map(|i| json!({"function": arn(format!("{i}{}", "f".repeat(63))), "alias": "a".repeat(128), "version": "4294967295"}))
        .collect();
    for key in ["function", "alias", "version"] {
        input.as_object_mut().unwrap().remove(key);
    }
    input["functions"] = json!(functions);
    // Its state is largest once every function's share of the history is full: the alarms fire at step 60.
    largest_fits(parse_request(&input).expect("the largest release is accepted"), 60);
}

/// Runs `request` through the loop with the busiest figures at every step, every alarm firing at the step of
/// index `fire_at`, each task over every function's view as the handlers run it, and measures the state and the
/// `RolledBack` cause against Step Functions' limits.
fn largest_fits(request: RolloutRequest, fire_at: usize) {
    const STATE_LIMIT: usize = 256 * 1024;
    const CAUSE_LIMIT: usize = 32_768;
    let alarms = busiest_figures(&request, false).unwrap().alarms;
    let live = LiveFacts { alarms, ..facts() };
    let execution =
        format!("arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:{}:{}", "m".repeat(80), "n".repeat(80));
    let width = request.targets().len();
    let mut rollout = Rollout::prepare_all(request.clone(), vec![live; width], &execution, t0()).unwrap();
    for index in rollout.lock_order() {
        let view = rollout.function_view(index).after_lock("r1".into());
        rollout = rollout.with_function_view(index, &view);
    }
    let size = |r: &Rollout| serde_json::to_string(r).unwrap().len();
    let long = "x".repeat(100_000);
    let mut largest = 0;
    let (mut revision, mut now) = (1, t0());
    while !matches!(rollout.next, Next::Done | Next::Rollback) {
        rollout = match rollout.next {
            Next::PreTraffic => {
                rollout.after_hook(canary_core::HookOutcome { passed: true, message: long.clone() }, now)
            }
            Next::AwaitApproval => rollout.after_approval(Decision::Promote).unwrap(),
            Next::Shift | Next::Promote => {
                revision += 1;
                let moved = rollout.function_views().into_iter().map(|v| v.after_move(format!("r{revision}"), now));
                rollout.combine(moved.collect())
            }
            Next::Hold => {
                now += Duration::seconds(rollout.wait_seconds as i64);
                let last = rollout.step == Some(fire_at);
                let checked =
                    rollout.function_views().into_iter().map(|v| v.after_check(busiest_figures(&request, last), now));
                rollout.combine(checked.collect())
            }
            other => panic!("{other:?}"),
        };
        // The state grows until its history is full, then stays level: measured now and then.
        if rollout.step.is_some_and(|s| s % 20 == 0) || rollout.next == Next::Rollback {
            largest = largest.max(size(&rollout));
        }
    }
    assert_eq!(rollout.next, Next::Rollback, "every alarm fired at step {}", fire_at + 1);
    assert_eq!(rollout.failure.as_ref().unwrap().signal, canary_core::health::Signal::Alarm);
    // The Rollback task's input also carries the Catch's error, whose cause Step Functions caps at 32 KiB.
    rollout.error = Some(TaskError { error: "States.TaskFailed".into(), cause: Some("c".repeat(CAUSE_LIMIT)) });
    let restored = rollout.function_views().into_iter().map(|v| v.after_rollback(Routing::to_version("1"), now));
    rollout = rollout.clone().combine(restored.collect());
    let report = rollout.report.clone().unwrap();
    largest = largest.max(size(&rollout));
    assert!(largest < STATE_LIMIT * 3 / 4, "the state reached {largest} bytes; Step Functions allows {STATE_LIMIT}");
    let cause = serde_json::to_string(&report).unwrap().chars().count();
    assert!(cause < CAUSE_LIMIT, "the RolledBack cause is {cause} characters; Step Functions allows {CAUSE_LIMIT}");
    assert_eq!(report.steps.len(), canary_core::rollout::REPORT_STEPS.min(HISTORY_LIMIT / width));
    assert_eq!(report.steps_omitted + report.steps.len(), fire_at + 1);
    assert_eq!(report.functions.len(), if width > 1 { width } else { 0 });
    eprintln!("{width} functions: largest state {largest} bytes, cause {cause} characters");
}

#[test]
fn a_version_failing_every_call_is_never_promoted_at_full_traffic() {
    // Legacy `steps: 1` is all the traffic at once, judged after one interval; all_at_once with a bake is
    // judged at 100%. Both roll a version failing every call back.
    let legacy = parse_request(&json!({"function-name": "orders-api", "alias-name": "live", "new-version": "2",
                                      "steps": 1, "interval": 300}))
    .unwrap();
    assert_eq!(legacy.strategy, canary_core::Strategy::AllAtOnce { bake_seconds: Some(300) });
    let baked = request(json!({"strategy": {"all_at_once": {"bake_seconds": 600}}}));
    for request in [legacy, baked] {
        let (seen, done, alias) = run(Rollout::prepare(request, facts(), EXEC, t0()).unwrap(), |_| failing());
        assert_eq!(seen.len(), 3, "1 (100%), then 2 (100%), then restored");
        assert_eq!(done.next, Next::Rollback);
        assert_eq!(done.failure.unwrap().signal, canary_core::health::Signal::ErrorRate);
        assert_eq!(alias.routing, Routing::to_version("1"));
    }
}

#[test]
fn functions_in_another_account_or_region_than_the_controller_are_refused() {
    let arn = |region: &str, account: &str, name: &str| format!("arn:aws:lambda:{region}:{account}:function:{name}");
    let here = arn("eu-west-1", "123456789012", "orders-api");
    let cases = [
        (json!({"function": arn("us-east-1", "123456789012", "orders-api")}), vec!["function"]),
        (json!({"function": arn("eu-west-1", "210987654321", "orders-api")}), vec!["function"]),
        (
            json!({"function": here, "hooks": {"pre_traffic": arn("eu-west-1", "210987654321", "smoke"),
                   "post_traffic": arn("us-west-2", "123456789012", "smoke")}}),
            vec!["hooks.pre_traffic", "hooks.post_traffic"],
        ),
    ];
    for (extra, fields) in cases {
        let refusal = Rollout::prepare(request(extra.clone()), facts(), EXEC, t0()).unwrap_err();
        assert_eq!(refusal.fields(), fields, "{extra}: {refusal}");
        assert!(refusal.to_string().contains("this controller runs in eu-west-1 account 123456789012"), "{refusal}");
    }
    let same = json!({"function": here, "hooks": {"pre_traffic": arn("eu-west-1", "123456789012", "smoke")}});
    Rollout::prepare(request(same.clone()), facts(), EXEC, t0()).unwrap();
    // Invoked directly (no execution ARN), there is nothing to compare with.
    let elsewhere = json!({"function": arn("us-east-1", "210987654321", "x")});
    Rollout::prepare(request(elsewhere), facts(), "direct", t0()).unwrap();
}

#[test]
fn a_check_before_any_move_records_nothing() {
    let prepared = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    let checked = prepared.after_check(healthy(), t0());
    assert!(checked.history.is_empty());
}

#[test]
fn latency_is_judged_against_the_old_versions_p99_in_the_hour_before_the_rollout() {
    let latency = json!({"metrics_delay_seconds": 60, "min_invocations": 10, "max_latency_p99_increase": 0.5});
    let baked = request(json!({"strategy": {"all_at_once": {"bake_seconds": 600}}, "health": latency}));
    let rollout = Rollout::prepare(baked, facts(), EXEC, t0()).unwrap();
    // The hour before the rollout whose metrics are complete.
    assert_eq!(rollout.before_window(t0()), Some((t0() - Duration::seconds(60 + 3600), t0() - Duration::seconds(60))));
    assert_eq!(rollout.slow_threshold_ms(), None, "nothing read yet");
    let hour = vec![canary_core::sequential::Counts { invocations: 100, errors: 0, slow: 0 }; 60];
    let rollout = rollout.with_traffic_before(&hour, Some(100.0));
    assert_eq!(rollout.slow_threshold_ms(), Some(150.0));
    let rollout = rollout.after_lock("r1".into()).after_move("r2".into(), t0());
    let at_full = |slow: u64| {
        Some(HealthFigures {
            new: VersionFigures { invocations: 1_000, slow: Some(slow), ..Default::default() },
            ..Default::default()
        })
    };
    let slow = rollout.clone().after_check(at_full(100), t0() + Duration::seconds(660));
    assert_eq!(slow.next, Next::Rollback);
    let failure = slow.failure.unwrap();
    assert_eq!(failure.signal, canary_core::health::Signal::LatencyP99);
    assert!(failure.message.contains("longer than 150.0 ms"), "{}", failure.message);
    let fine = rollout.after_check(at_full(5), t0() + Duration::seconds(660));
    assert_eq!(fine.next, Next::Done);
    // Health checks off: nothing to read.
    let off = request(json!({"health": {"enabled": false}}));
    assert_eq!(Rollout::prepare(off, facts(), EXEC, t0()).unwrap().before_window(t0()), None);
}

#[test]
fn every_write_of_the_alias_publishes_the_new_versions_share_as_an_embedded_metric() {
    use canary_core::notice::{TRAFFIC_METRIC, TRAFFIC_NAMESPACE, Task, traffic_metrics};
    let one = |task, state: &Rollout| {
        let metrics = traffic_metrics(task, state, t0());
        assert!(metrics.len() <= 1, "one function, one metric: {metrics:?}");
        metrics.into_iter().next()
    };
    let linear = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 10}}}));
    let prepared = Rollout::prepare(linear, facts(), EXEC, t0()).unwrap();
    assert_eq!(one(Task::Move, &prepared), None, "nothing moved yet");
    assert_eq!(one(Task::Prepare, &prepared), None);
    let half = prepared.after_move("r1".into(), t0());
    let metric = one(Task::Move, &half).unwrap();
    assert_eq!(metric[TRAFFIC_METRIC], 50.0);
    assert_eq!((metric["FunctionName"].as_str(), metric["Alias"].as_str()), (Some("orders-api"), Some("live")));
    let directive = &metric["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], TRAFFIC_NAMESPACE);
    assert_eq!(directive["Metrics"][0]["Name"], TRAFFIC_METRIC);
    assert_eq!(metric["_aws"]["Timestamp"], t0().timestamp_millis());
    let full = half.clone().after_check(healthy(), t0()).after_move("r2".into(), t0());
    assert_eq!(one(Task::Move, &full).unwrap()[TRAFFIC_METRIC], 100.0);
    assert_eq!(one(Task::Rollback, &half), None, "no report: the rollback has not run");
    let failed = half.after_check(failing(), t0());
    let original = failed.original.clone();
    let rolled_back = Rollout { report: Some(failed.report(Outcome::RolledBack, original, t0())), ..failed };
    assert_eq!(one(Task::Rollback, &rolled_back).unwrap()[TRAFFIC_METRIC], 0.0);
}

#[test]
fn a_move_is_planned_against_the_alias_as_the_rollout_left_it() {
    let linear = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 10}}}));
    let prepared = Rollout::prepare(linear, facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let left = prepared.alias_as_left();
    assert_eq!((left.routing, left.revision_id.as_str()), (Routing::to_version("1"), "r1"));
    assert_eq!(left.description, prepared.lock);
    match prepared.plan_move(&prepared.alias_as_left()) {
        MovePlan::Write { revision_id, description, .. } => {
            // Signed with the move it makes: the first.
            assert_eq!((revision_id.as_str(), description), ("r1", canary_core::lock::signed(EXEC, 1, "orders")))
        }
        other => panic!("{other:?}"),
    }
    let moved = prepared.after_move("r2".into(), t0());
    assert_eq!(moved.alias_as_left().routing, moved.expected_routing());
}

#[test]
fn every_decision_names_its_state_once() {
    use strum::VariantArray;
    let states: std::collections::BTreeSet<&str> = Next::VARIANTS.iter().map(|n| n.state().as_str()).collect();
    assert_eq!(states.len(), Next::VARIANTS.len());
    assert_eq!(Next::Done.state(), canary_core::asl::State::Promoted);
}

#[test]
fn a_rollback_is_reported_aborted_only_after_an_operators_abort_at_a_gate() {
    let linear = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 10}}}));
    let failed = Rollout::prepare(linear, facts(), EXEC, t0())
        .unwrap()
        .after_move("r1".into(), t0())
        .after_check(failing(), t0());
    let rolled_back = failed.clone().after_rollback(Routing::to_version("1"), t0());
    assert_eq!((rolled_back.report.as_ref().unwrap().outcome, rolled_back.next), (Outcome::RolledBack, Next::Rollback));
    let operator = TaskError {
        error: canary_core::asl::ErrorName::Aborted.as_str().into(),
        cause: Some("canaryctl abort".into()),
    };
    let aborted = Rollout { error: Some(operator), ..failed }.after_rollback(Routing::to_version("1"), t0());
    assert_eq!(aborted.report.unwrap().outcome, Outcome::Aborted);
}
