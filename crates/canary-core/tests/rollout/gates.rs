//! Traffic hooks, approval gates, the safety net's decision, and the events a rollout announces.

use crate::*;

#[test]
fn the_safety_net_restores_only_rollouts_left_unfinished() {
    use canary_core::execution::ExecutionStatus;
    use canary_core::safety_net::{Ended, SafetyNet, decide};
    let prepared = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    let shifted = prepared.clone().after_move("r1".into(), t0());
    let rolled_back = {
        let mut s = shifted.clone();
        s.report = Some(s.report(Outcome::RolledBack, Routing::to_version("1"), t0()));
        s
    };
    let promoted = {
        let mut s = shifted.clone();
        s.report = Some(s.report(Outcome::Promoted, Routing::to_version("2"), t0()));
        s
    };
    // A restore says why, for the rollback's report: stopped (an abort), or ended otherwise.
    let restores = |decision: SafetyNet, status: &str| match decision {
        SafetyNet::Restore(state) => {
            let error = state.error.unwrap();
            let expected = if status == "ABORTED" { "Aborted" } else { "ExecutionEnded" };
            assert_eq!(error.error, expected, "{status}");
            assert!(error.cause.unwrap().contains("the safety net restored"));
            "restore"
        }
        SafetyNet::Release => "release",
        SafetyNet::Nothing(_) => "nothing",
    };
    let taken_over = r#"{"errorType": "AliasChangedConcurrently", "errorMessage": "someone else changed it"}"#;
    let kept_failing = r#"{"errorType": "TransientAwsError", "errorMessage": "throttled"}"#;
    // (status, error and cause, last state in the history, what the safety net does)
    let cases = [
        ("ABORTED", None, Some(shifted.clone()), "restore"),
        ("TIMED_OUT", None, Some(shifted.clone()), "restore"),
        ("FAILED", Some(kept_failing), Some(shifted.clone()), "restore"), // RollbackFailed, AWS kept failing: again
        ("FAILED", Some(taken_over), Some(shifted.clone()), "nothing"),   // handed over by hand: theirs is kept
        ("ABORTED", None, Some(prepared), "restore"),                     // stopped while the first shift was in flight
        ("ABORTED", None, None, "release"),                               // before its rollout was prepared
        ("FAILED", None, Some(rolled_back), "nothing"),
        ("FAILED", None, Some(promoted), "nothing"),
        ("SUCCEEDED", None, Some(shifted.clone()), "nothing"),
        ("RUNNING", None, Some(shifted), "nothing"),
    ];
    for (status, cause, state, expected) in cases {
        let has_state = state.is_some();
        let error = cause.map(|_| "RollbackFailed");
        let ended = Ended { status: ExecutionStatus::parse(status), error, cause };
        assert_eq!(restores(decide(&ended, state), status), expected, "{status} {cause:?}, state: {has_state}");
    }
}

#[test]
fn hooks_run_before_any_traffic_and_after_promotion() {
    use canary_core::HookOutcome;
    let passed = || HookOutcome { passed: true, message: "ok".into() };
    let failed = || HookOutcome { passed: false, message: "smoke test: /health answered 500".into() };
    let hooked =
        |hooks: Value| request(json!({"strategy": {"canary": {"percent": 10, "bake_seconds": 30}}, "hooks": hooks}));
    let both = hooked(json!({"pre_traffic": "orders-smoke", "post_traffic": "orders-e2e"}));

    let refused =
        Rollout::prepare(both.clone(), LiveFacts { missing_hooks: vec!["orders-e2e".into()], ..facts() }, EXEC, t0());
    assert_eq!(refused.unwrap_err().fields(), ["hooks.post_traffic"]);

    let rollout = Rollout::prepare(both.clone(), facts(), EXEC, t0()).unwrap();
    assert_eq!(rollout.next, Next::PreTraffic);
    let (hook, function, payload) = rollout.hook_call().unwrap();
    assert_eq!((hook.as_str(), function.as_str()), ("pre_traffic", "orders-smoke"));
    assert_eq!(
        payload,
        json!({"hook": "pre_traffic", "function": "orders-api", "alias": "live", "old_version": "1", "new_version": "2"})
    );

    // A failing pre-traffic hook rolls back before any traffic moved.
    let stopped = rollout.clone().after_hook(failed(), t0());
    assert_eq!((stopped.next, stopped.step), (Next::Rollback, None));
    assert_eq!(stopped.rollback_reason().signal, canary_core::health::Signal::Hook);
    assert!(stopped.rollback_reason().message.contains("pre_traffic hook orders-smoke failed: smoke test"));

    // Passing, the rollout moves; after the last step, the post-traffic hook runs before promotion.
    let moved = rollout.after_hook(passed(), t0()).after_move("r1".into(), t0());
    let promoted = moved.after_check(healthy(), t0()).after_move("r2".into(), t0());
    assert_eq!((promoted.next, promoted.report.is_none()), (Next::PostTraffic, true));
    assert_eq!(promoted.hook_call().unwrap().0, canary_core::rollout::Hook::PostTraffic);
    let done = promoted.clone().after_hook(passed(), t0());
    assert_eq!(done.next, Next::Done);
    let report = done.report.unwrap();
    assert_eq!(
        report.hooks.iter().map(|h| (h.hook.as_str(), h.passed)).collect::<Vec<_>>(),
        [("pre_traffic", true), ("post_traffic", true)]
    );
    // A failing post-traffic hook rolls back from 100%: that routing is the rollout's own, so it is restored.
    let failed_after = promoted.after_hook(failed(), t0());
    assert_eq!(failed_after.next, Next::Rollback);
    assert!(matches!(
        failed_after.plan_rollback(&held_at(&failed_after, Routing::to_version("2"))),
        MovePlan::Write { .. }
    ));
    assert_eq!(failed_after.hook_call(), None);
    assert_eq!(failed_after.clone().after_hook(passed(), t0()), failed_after, "no hook is due: nothing changes");

    // Only a pre-traffic hook, with an all-at-once strategy: straight to promotion after it.
    let at_once = request(
        json!({"strategy": {"all_at_once": {}}, "health": {"enabled": false}, "hooks": {"pre_traffic": "orders-smoke"}}),
    );
    let after = Rollout::prepare(at_once, facts(), EXEC, t0()).unwrap().after_hook(passed(), t0());
    assert_eq!(after.next, Next::Promote);
    assert_eq!(after.after_move("r1".into(), t0()).next, Next::Done);
}

#[test]
fn approval_gates_pause_before_their_percentages() {
    let gated = |before: Value, hooks: Value| {
        request(json!({"strategy": {"linear": {"percent": 25, "interval_seconds": 10}},
                       "approval": {"before_percent": before}, "hooks": hooks}))
    };
    // Before 50%: shift to 25, check, then pause.
    let rollout = Rollout::prepare(gated(json!([50]), json!({})), facts(), EXEC, t0()).unwrap();
    assert_eq!(rollout.next, Next::Shift);
    let paused = rollout.after_move("r1".into(), t0()).after_check(healthy(), t0());
    assert_eq!((paused.next, paused.next_index()), (Next::AwaitApproval, 1));
    // promote: on to 50%, and no second pause there.
    let promoted = paused.clone().after_approval(Decision::Promote).unwrap();
    assert_eq!((promoted.next, promoted.approved.clone()), (Next::Shift, vec![1]));
    let at_50 = promoted.after_move("r2".into(), t0());
    assert_eq!(at_50.expected_routing().additional_version_weights["2"], 0.5);
    assert_eq!(at_50.after_check(healthy(), t0()).next, Next::Shift, "75% is not gated");
    // promote_full: straight to 100%, skipping 50 and 75.
    let full = paused.clone().after_approval(Decision::PromoteFull).unwrap();
    assert_eq!((full.next, full.next_index()), (Next::Promote, 3));
    let done = full.after_move("r3".into(), t0());
    assert_eq!((done.next, done.expected_routing()), (Next::Done, Routing::to_version("2")));
    // Decisions the gate does not know, or a rollout that is not waiting, are refused.
    let answered = |answer: Value| Rollout { decision: Some(answer), ..paused.clone() }.apply_answer();
    assert!(answered(json!({"decision": "yes"})).unwrap_err().contains("promote_full"));
    assert!(answered(json!(null)).unwrap_err().contains("no decision"));
    let (decision, applied) = answered(Decision::PromoteFull.answer()).unwrap();
    assert_eq!((decision, applied.decision.is_none()), (Decision::PromoteFull, true));
    assert!(done.after_approval(Decision::Promote).unwrap_err().contains("not waiting"));

    // A gate at the first step pauses before any traffic moves; after a pre-traffic hook when there is one.
    let first = Rollout::prepare(gated(json!([25]), json!({})), facts(), EXEC, t0()).unwrap();
    assert_eq!((first.next, first.step), (Next::AwaitApproval, None));
    let hooked = Rollout::prepare(gated(json!([25]), json!({"pre_traffic": "smoke"})), facts(), EXEC, t0()).unwrap();
    assert_eq!(hooked.next, Next::PreTraffic);
    let after_hook = hooked.after_hook(canary_core::HookOutcome { passed: true, message: "ok".into() }, t0());
    assert_eq!(after_hook.next, Next::AwaitApproval);
    // A gate at 100% pauses before promotion.
    let last = Rollout::prepare(gated(json!([100]), json!({})), facts(), EXEC, t0()).unwrap();
    let mut state = last;
    for _ in 0..3 {
        state = state.after_move("r".into(), t0()).after_check(healthy(), t0());
    }
    assert_eq!((state.next, state.next_index()), (Next::AwaitApproval, 3));
}

#[test]
fn notices_follow_the_rollout() {
    use canary_core::notice::{Task, notices};
    let kinds = |task, state: &Rollout| notices(task, state).iter().map(|n| n.detail_type.as_str()).collect::<Vec<_>>();
    let gated = request(
        json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 10}}, "approval": {"before_percent": [100]}}),
    );
    let prepared = Rollout::prepare(gated, facts(), EXEC, t0()).unwrap();
    assert_eq!(kinds(Task::Prepare, &prepared), ["Rollout Started"]);
    let started = &notices(Task::Prepare, &prepared)[0].detail;
    assert_eq!((started["function"].as_str(), started["new_version"].as_str()), (Some("orders-api"), Some("2")));
    assert_eq!(started["steps"].as_array().unwrap().len(), 2);
    assert_eq!(started["execution"], EXEC, "notifications say which execution to look at");
    let moved = prepared.after_move("r1".into(), t0());
    assert_eq!(kinds(Task::Move, &moved), Vec::<&str>::new());
    let passed = moved.clone().after_check(healthy(), t0());
    assert_eq!(kinds(Task::Check, &passed), ["Rollout Step Passed"]);
    assert_eq!(notices(Task::Check, &passed)[0].detail["step"]["percent"], 50.0);
    assert_eq!(kinds(Task::Paused, &passed), ["Rollout Paused For Approval"]);
    assert_eq!(notices(Task::Paused, &passed)[0].detail["before_percent"], 100.0);
    let failed = moved.after_check(failing(), t0());
    assert_eq!(kinds(Task::Check, &failed), Vec::<&str>::new(), "the rollback announces the outcome");
    let mut rolled_back = failed.clone();
    rolled_back.report = Some(rolled_back.report(Outcome::RolledBack, Routing::to_version("1"), t0()));
    assert_eq!(kinds(Task::Rollback, &rolled_back), ["Rollout Rolled Back"]);
    let mut aborted = failed;
    aborted.report = Some(aborted.report(Outcome::Aborted, Routing::to_version("1"), t0()));
    assert_eq!(kinds(Task::Rollback, &aborted), ["Rollout Aborted"]);
    let done = passed.after_approval(Decision::Promote).unwrap().after_move("r2".into(), t0());
    assert_eq!(kinds(Task::Move, &done), ["Rollout Promoted"]);
    assert_eq!(notices(Task::Move, &done)[0].detail["report"]["outcome"], "promoted");
    assert_eq!(kinds(Task::Hook, &done), ["Rollout Promoted"]);
}

/// An operator's pause holds a step that passed at its weight, judged again at every look (its hold apart, 5
/// minutes at most; a failure still rolls back), whatever decided the pass (health checks off, `no_data:
/// pass`); lifted, the next pass moves on; held for longer than 288 looks, the rollout is rolled back, the
/// pause named.
#[test]
fn a_pause_holds_a_passed_step_until_lifted_and_at_most_a_day() {
    use canary_core::budget::paused_looks;
    let (look, longest) = paused_looks(10);
    assert_eq!((look, longest), (10, 2880));
    let linear = |health: Value| {
        request(json!({"strategy": {"linear": {"percent": 25, "interval_seconds": 10}},
                                                 "health": health}))
    };
    let moved =
        Rollout::prepare(linear(json!({"metrics_delay_seconds": 60, "min_invocations": 10})), facts(), EXEC, t0())
            .unwrap()
            .after_move("r1".into(), t0());
    let (function, key, execution) = moved.pause_target().unwrap();
    assert_eq!(function, "arn:aws:lambda:eu-west-1:123456789012:function:orders-api");
    assert_eq!((key.as_str(), execution.as_str()), ("lambda-canary:pause:live", EXEC));

    let at = t0() + Duration::seconds(120);
    let paused = moved.clone().with_pause(true, at).after_check(healthy(), at);
    assert_eq!((paused.next, paused.wait_seconds, paused.paused_since), (Next::Hold, look, Some(at)));
    let later = at + Duration::seconds(300);
    let still = paused.clone().with_pause(true, later).after_check(healthy(), later);
    assert_eq!((still.next, still.paused_since), (Next::Hold, Some(at)), "paused since the first look that saw it");
    let worse = HealthFigures {
        new: canary_core::VersionFigures { invocations: 200, errors: 100, ..Default::default() },
        ..Default::default()
    };
    assert_eq!(paused.clone().with_pause(true, later).after_check(Some(worse), later).next, Next::Rollback);
    let lifted = paused.clone().with_pause(false, later).after_check(healthy(), later);
    assert_eq!((lifted.next, lifted.paused_since), (Next::Shift, None));

    // The last look before the pause is up waits only what is left of it; the look after rolls back.
    let near_end = at + Duration::seconds(longest as i64 - 4);
    assert_eq!(paused.clone().with_pause(true, near_end).after_check(healthy(), near_end).wait_seconds, 4);
    let end = at + Duration::seconds(longest as i64);
    let expired = paused.with_pause(true, end).after_check(healthy(), end);
    let failure = expired.failure.clone().unwrap();
    assert_eq!((expired.next, failure.signal), (Next::Rollback, canary_core::health::Signal::Paused));
    assert!(
        failure.message.starts_with(
            "paused for 48m00s, the longest canaryctl pause may hold a step looked at every 10s (288 looks)"
        ),
        "{}",
        failure.message
    );

    // Passed without health checks, or with `no_data: pass`: held the same.
    for health in
        [json!({"enabled": false}), json!({"metrics_delay_seconds": 60, "min_invocations": 1000, "no_data": "pass"})]
    {
        let rollout = Rollout::prepare(linear(health.clone()), facts(), EXEC, t0()).unwrap();
        let mut state = rollout;
        for _ in 0..3 {
            state = state.after_move("r".into(), t0()).after_check(quiet(), at);
        }
        let last = state.after_move("r".into(), t0()).with_pause(true, at).after_check(quiet(), at);
        assert_eq!((last.next, last.paused_since), (Next::Hold, Some(at)), "{health}");
    }
    // A rollout prepared outside an execution, or of an alias too long for a tag key, cannot be paused.
    let direct = Rollout::prepare(linear(json!({})), facts(), "direct", t0()).unwrap();
    assert_eq!(direct.pause_target(), None);
    let long = request(json!({"alias": "a".repeat(120)}));
    let long_facts = facts();
    let long = Rollout::prepare(long, long_facts, EXEC, t0()).unwrap();
    assert_eq!(long.pause_target(), None);
}
