//! The loop, the moves and their retries, rollbacks, the lock, and what a state says about itself.

use crate::*;

#[test]
fn a_healthy_rollout_is_promoted_through_every_weight() {
    let rollout = Rollout::prepare(
        request(json!({"strategy": {"linear": {"percent": 25, "interval_seconds": 30}}})),
        facts(),
        EXEC,
        t0(),
    )
    .unwrap();
    let (seen, done, alias) = run(rollout, |_| healthy());
    let weights: Vec<String> = seen.iter().map(|r| r.to_string()).collect();
    assert_eq!(weights, ["1 (100%)", "1 (75%) + 2 (25%)", "1 (50%) + 2 (50%)", "1 (25%) + 2 (75%)", "2 (100%)"]);
    assert_eq!(alias.routing, Routing::to_version("2"));
    let report = done.report.clone().expect("a finished rollout carries its report");
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(report.steps.len(), 4);
    assert!(report.steps[..3].iter().all(|s| s.verdict == Some(Verdict::Pass) && s.figures.is_some()));
    // Each held step waits its hold plus the metrics delay before it is judged.
    assert_eq!(report.finished_at - report.started_at, Duration::seconds(3 * (30 + 60)));
    assert!(report.reason.is_none());
}

#[test]
fn an_unhealthy_step_rolls_back_to_exactly_the_original_routing() {
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    let (seen, failed, alias) = run(rollout, |step| if step == 2 { failing() } else { healthy() });
    assert_eq!(alias.routing, failed.original);
    assert_eq!(seen.len(), 5, "three shifts and the rollback: {seen:?}");
    let reason = failed.rollback_reason();
    // The rate over the rollout: 50 errors in the third step's 100 calls, after 200 healthy ones.
    assert_eq!((reason.signal.as_str(), reason.value, reason.threshold), ("error_rate", 50.0 / 300.0, 0.01));
    let report = failed.report(Outcome::RolledBack, alias.routing.clone(), t0());
    assert_eq!(report.reason, Some(reason));
    assert_eq!(report.steps.len(), 3);
}

#[test]
fn all_at_once_with_a_bake_is_checked_after_promotion_and_can_roll_back() {
    let req = request(json!({"strategy": {"all_at_once": {"bake_seconds": 60}}}));
    let (seen, _, alias) = run(Rollout::prepare(req.clone(), facts(), EXEC, t0()).unwrap(), |_| healthy());
    assert_eq!((seen.len(), alias.routing.clone()), (2, Routing::to_version("2")));
    let (seen, failed, alias) = run(Rollout::prepare(req, facts(), EXEC, t0()).unwrap(), |_| failing());
    assert_eq!(seen.last().unwrap(), &Routing::to_version("1"));
    assert_eq!((failed.next, alias.routing), (Next::Rollback, Routing::to_version("1")));
    let unjudged = request(json!({"strategy": {"all_at_once": {}}, "health": {"enabled": false}}));
    let (seen, done, _) = run(Rollout::prepare(unjudged, facts(), EXEC, t0()).unwrap(), |_| failing());
    assert_eq!((seen.len(), done.next), (2, Next::Done), "no bake, health checks off: promoted without a check");
}

/// The sample we replace loops until Step Functions' history limit at 101 steps. Here 1,000 steps
/// terminate, with every weight distinct, and the history stays within a state's size limit.
#[test]
fn a_thousand_step_rollout_terminates_with_bounded_history() {
    let legacy = parse_request(&json!({"function-name": "orders-api", "alias-name": "live", "new-version": "2",
                                      "steps": 1000, "interval": 1, "health-check": false}))
    .unwrap();
    let (seen, done, _) = run(Rollout::prepare(legacy, facts(), EXEC, t0()).unwrap(), |_| None);
    assert_eq!(seen.len(), 1001);
    assert_eq!(done.history.len(), HISTORY_LIMIT);
    assert_eq!(done.history_omitted, 1000 - HISTORY_LIMIT);
    assert_eq!(done.history.last().unwrap().step, 1000);
    let size = serde_json::to_string(&done).unwrap().len();
    assert!(size < 128 * 1024, "state is {size} bytes; Step Functions allows 256 KiB");
}

#[test]
fn no_data_policies() {
    let with_no_data = |no_data: &str, max_wait: u64| {
        let mut health = json!({"no_data": no_data, "metrics_delay_seconds": 0});
        if no_data == "wait" {
            health["no_data_max_wait_seconds"] = json!(max_wait);
        }
        let req = request(json!({"strategy": {"canary": {"percent": 10, "bake_seconds": 30}}, "health": health}));
        run(Rollout::prepare(req, facts(), EXEC, t0()).unwrap(), |_| quiet())
    };
    let (_, passed, _) = with_no_data("pass", 0);
    assert_eq!(passed.next, Next::Done);
    let (_, failed, _) = with_no_data("fail", 600);
    let reason = failed.rollback_reason();
    // The evidence the promotion needs: more than min_invocations, for the error bound at a 1% limit.
    assert_eq!((reason.signal.as_str(), reason.threshold), ("invocations", failed.evidence_needed() as f64));
    assert!(failed.evidence_needed() > 10);
    // wait: re-checked every 30 s (the hold, at most 60), up to 100 s more: three extensions, then it fails.
    let (_, waited, _) = with_no_data("wait", 100);
    assert_eq!((waited.next, waited.waited_for_data_seconds), (Next::Rollback, 90));
    assert!(
        waited.rollback_reason().message.contains("after waiting 90 s more"),
        "{}",
        waited.rollback_reason().message
    );
    assert_eq!(waited.history[0].checked_at, Some(t0() + Duration::seconds(30 + 90)));
    // Traffic that arrives during the extension lets the rollout go on.
    let req = request(json!({"strategy": {"canary": {"percent": 10, "bake_seconds": 30}}}));
    let mut checks = 0;
    let (_, late, _) = run(Rollout::prepare(req, facts(), EXEC, t0()).unwrap(), |_| {
        checks += 1;
        if checks < 3 { quiet() } else { healthy() }
    });
    assert_eq!((late.next, checks), (Next::Done, 3));
}

#[test]
fn health_window_covers_the_step_up_to_complete_metrics() {
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    assert_eq!(rollout.health_window(t0()), None);
    let moved = rollout.after_move("r1".into(), t0());
    assert_eq!(moved.wait_seconds, 60 + 60);
    assert_eq!(moved.health_window(t0() + Duration::seconds(120)), Some((t0(), t0() + Duration::seconds(60))));
    // Checked too early, the window is empty rather than reaching into incomplete data.
    assert_eq!(moved.health_window(t0() + Duration::seconds(10)), Some((t0(), t0())));
    assert!(moved.needs_metrics());
}

#[test]
fn a_retried_move_is_a_no_op_and_a_foreign_change_is_a_conflict() {
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let target = rollout.routing_at(rollout.schedule().steps[0]);
    let held = held_at(&rollout, Routing::to_version("1"));
    assert_eq!(
        rollout.plan_move(&held),
        MovePlan::Write { routing: target.clone(), description: rollout.lock.clone(), revision_id: "r1".into() }
    );
    // The first attempt wrote the weight but its answer was lost: the retry finds it done.
    let written = AliasState { routing: target.clone(), revision_id: "r2".into(), ..held.clone() };
    assert_eq!(rollout.plan_move(&written), MovePlan::AlreadyDone);
    // Someone pointed the alias at a hotfix meanwhile: it is reported, never overwritten.
    let hotfix = AliasState { routing: Routing::to_version("7"), revision_id: "r9".into(), ..held.clone() };
    match rollout.plan_move(&hotfix) {
        MovePlan::Conflict(message) => assert!(message.contains("now routes 7 (100%)"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The routing as this rollout left it, the lock gone: released by an ending (the safety net, an abort),
    // or only its description edited by someone. The move's handler tells them apart by whether its
    // execution still runs, and only then carries on from it (adopt).
    assert_eq!(rollout.plan_move(&alias_at("1")), MovePlan::DescriptionChanged);
    // Another rollout holds it now (this one was stopped, and its lock taken over): never written.
    let other = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-3";
    let taken = AliasState { description: canary_core::lock::marker(other, "orders"), ..alias_at("1") };
    match rollout.plan_move(&taken) {
        MovePlan::Conflict(message) => assert!(message.contains("held by another rollout"), "{message}"),
        other => panic!("{other:?}"),
    }
    // A promotion that wrote 100%, gave the alias back, and then timed out: its retry finds it all done.
    let halves = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 30}}}));
    let halves = Rollout::prepare(halves, facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let promoting = halves.after_move("r2".into(), t0()).after_check(healthy(), t0());
    assert_eq!(promoting.next, Next::Promote);
    let released =
        AliasState { routing: Routing::to_version("2"), revision_id: "r4".into(), description: "orders".into() };
    assert_eq!(promoting.plan_move(&released), MovePlan::AlreadyDone);
    assert_eq!(promoting.plan_release(&released), MovePlan::AlreadyDone);
    let moved = rollout.after_move("r2".into(), t0());
    assert_eq!(moved.expected_routing(), target);
    let reverted = AliasState { revision_id: "r3".into(), ..held };
    assert!(matches!(moved.plan_move(&reverted), MovePlan::Conflict(_)), "the alias went back behind our back");
}

#[test]
fn rollback_restores_exactly_and_never_overwrites_someone_else() {
    let prepared = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let rollout = prepared.clone().after_move("r2".into(), t0());
    let mid = held_at(&rollout, rollout.expected_routing());
    let restore =
        MovePlan::Write { routing: Routing::to_version("1"), description: "orders".into(), revision_id: "r2".into() };
    assert_eq!(rollout.plan_rollback(&mid), restore, "the routing and the description come back");
    assert_eq!(rollout.plan_rollback(&alias_at("1")), MovePlan::AlreadyDone, "a retried rollback does nothing");
    // Held at the original routing (a hook failed before any traffic moved, or an operator set it back by
    // hand): the lock is released with the original put back.
    let held_original = AliasState { revision_id: "r7".into(), ..held_at(&rollout, Routing::to_version("1")) };
    assert!(matches!(rollout.plan_rollback(&held_original), MovePlan::Write { .. }));
    // A failure at 100% that this execution wrote (a bake, a post-traffic hook) restores the original too.
    let promoted = rollout.clone().after_move("r3".into(), t0());
    assert!(matches!(promoted.plan_rollback(&held_at(&promoted, Routing::to_version("2"))), MovePlan::Write { .. }));
    // An operator promoted by hand mid-rollout (or pointed the alias at a hotfix): their change is kept.
    for version in ["2", "9"] {
        let theirs = AliasState { revision_id: "r-operator".into(), ..held_at(&rollout, Routing::to_version(version)) };
        match rollout.plan_rollback(&theirs) {
            MovePlan::Conflict(message) => assert!(message.contains("left as it is"), "{message}"),
            other => panic!("{version}: {other:?}"),
        }
    }
}

#[test]
fn a_move_in_flight_when_the_rollout_failed_is_rolled_back() {
    // The shift's function wrote the next weight and then timed out: the state still says `shift`, and the
    // alias is at a revision the state never saw. That routing is the move's own target, held by this
    // execution: restored.
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    assert_eq!(rollout.next, Next::Shift);
    let target = rollout.routing_at(rollout.schedule().steps[0]);
    let landed = AliasState { revision_id: "r2".into(), ..held_at(&rollout, target.clone()) };
    assert!(matches!(rollout.plan_rollback(&landed), MovePlan::Write { .. }));
    // The same routing at a foreign revision while holding (no move in flight) is someone else's.
    let holding = rollout.clone().after_move("r2".into(), t0());
    assert_eq!(holding.next, Next::Hold);
    let next = holding.routing_at(holding.schedule().steps[1]);
    let theirs = AliasState { revision_id: "r-operator".into(), ..held_at(&holding, next) };
    assert!(matches!(holding.plan_rollback(&theirs), MovePlan::Conflict(_)));
}

#[test]
fn the_alias_is_locked_by_one_execution_at_a_time() {
    let other = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-3";
    let locked = |execution: &str, running: bool| LiveFacts {
        alias: Some(AliasState { description: canary_core::lock::marker(execution, "orders"), ..alias_at("1") }),
        lock: Some(canary_core::lock::Held { execution: execution.into(), running }),
        ..facts()
    };
    // Another execution holds it and runs: refused, naming it.
    let refusal = Rollout::prepare(request(json!({})), locked(other, true), EXEC, t0()).unwrap_err();
    assert_eq!(refusal.fields(), ["alias"]);
    assert!(refusal.to_string().contains("deploy-3"), "{refusal}");
    // Its execution ended without releasing it: the stale lock is broken, and its original description kept.
    let stale = Rollout::prepare(request(json!({})), locked(other, false), EXEC, t0()).unwrap();
    assert_eq!(stale.original_description, "orders");
    assert_eq!(stale.lock, canary_core::lock::marker(EXEC, "orders"));
    // Our own, written by an earlier attempt of this Prepare: taken as ours, nothing more written.
    let retried = Rollout::prepare(request(json!({})), locked(EXEC, true), EXEC, t0()).unwrap();
    let live = locked(EXEC, true).alias.unwrap();
    assert_eq!(retried.plan_lock(&live), MovePlan::AlreadyDone);
    assert_eq!(retried.original_description, "orders");
    // The alias changed between Prepare's read and its write: the write is not made (a retry re-reads).
    let fresh = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    assert!(matches!(
        fresh.plan_lock(&AliasState { revision_id: "r5".into(), ..alias_at("1") }),
        MovePlan::Conflict(_)
    ));
    // Released once, then never again.
    let done = fresh.after_lock("r1".into());
    assert_eq!(done.plan_release(&alias_at("2")), MovePlan::AlreadyDone);
}

#[test]
fn lock_markers_fit_an_alias_description() {
    let arn = format!("arn:aws:states:eu-west-1:123456789012:execution:{}:{}", "m".repeat(80), "n".repeat(80));
    let long = "d".repeat(256);
    let marker = canary_core::lock::marker(&arn, &long);
    assert_eq!(marker.chars().count(), canary_core::lock::MAX_DESCRIPTION);
    assert_eq!(canary_core::lock::holder(&marker).unwrap().0, arn);
    assert_eq!(canary_core::lock::holder(&canary_core::lock::marker(&arn, "")), Some((arn.as_str(), "")));
}

#[test]
fn rollback_reasons_from_task_errors() {
    let mut rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    assert_eq!(rollout.rollback_reason().signal, canary_core::health::Signal::Error);
    let lambda_cause = json!({"errorType": "AliasChangedConcurrently", "errorMessage": "someone moved it"}).to_string();
    rollout.error = Some(TaskError { error: "AliasChangedConcurrently".into(), cause: Some(lambda_cause) });
    assert_eq!(rollout.rollback_reason().message, "AliasChangedConcurrently: someone moved it");
    rollout.error = Some(TaskError { error: "States.Timeout".into(), cause: Some("task timed out".into()) });
    assert_eq!(rollout.rollback_reason().message, "States.Timeout: task timed out");
    rollout.error = Some(TaskError { error: "States.TaskFailed".into(), cause: None });
    assert_eq!(rollout.rollback_reason().message, "States.TaskFailed: ");
}

#[test]
fn the_state_survives_the_state_machine() {
    // Step Functions adds `error` beside the state on a Catch; the state must read back with it.
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap().after_move("r1".into(), t0());
    let mut value = serde_json::to_value(&rollout).unwrap();
    value["error"] = json!({"Error": "States.Timeout", "Cause": "late"});
    let back: Rollout = serde_json::from_value(value).unwrap();
    assert_eq!(back.error.unwrap().error, "States.Timeout");
    assert_eq!(serde_json::to_value(Next::Promote).unwrap(), json!("promote"));
}

#[test]
fn routing_and_percent_display() {
    assert_eq!(percent_text(10.0), "10%");
    assert_eq!(percent_text(100.0 / 3.0), "33.333%");
    assert_eq!(percent_text(0.1), "0.1%");
    let a = Routing { function_version: "1".into(), additional_version_weights: BTreeMap::from([("2".into(), 0.1)]) };
    let b = Routing {
        function_version: "1".into(),
        additional_version_weights: BTreeMap::from([("2".into(), 0.1 + 1e-12)]),
    };
    assert!(a.same_as(&b));
    assert!(!a.same_as(&Routing::to_version("1")));
    assert!(!a.same_as(&Routing { additional_version_weights: BTreeMap::from([("3".into(), 0.1)]), ..a.clone() }));
    assert_eq!(a.to_string(), "1 (90%) + 2 (10%)");
}

/// Only routing is ownership: someone who edits the alias's description mid-rollout (a person, a stack
/// update) takes nothing from the rollout. It carries on from their revision, the lock marker over their
/// text, and leaves their description at the end, whether promoted or rolled back.
#[test]
fn a_description_edited_mid_rollout_is_carried_over_and_kept() {
    let request = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 30}}}));
    let rollout = Rollout::prepare(request, facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let rollout = rollout.after_move("r2".into(), t0()).after_check(healthy(), t0());
    assert_eq!(rollout.next, Next::Promote);
    let edited = AliasState {
        routing: rollout.expected_routing(),
        revision_id: "r-stack-update".into(),
        description: "orders, managed by CloudFormation".into(),
    };
    assert_eq!(rollout.plan_move(&edited), MovePlan::DescriptionChanged);
    // Carried over: written on their revision, the marker over their text.
    let adopted = rollout.clone().adopt(&edited);
    assert!(adopted.holds(&adopted.lock) && adopted.lock.ends_with("orders, managed by CloudFormation"));
    let MovePlan::Write { description, revision_id, .. } = adopted.plan_move(&edited) else { panic!() };
    assert_eq!((description.as_str(), revision_id.as_str()), (adopted.lock.as_str(), "r-stack-update"));
    // Promoted, the release gives back their description, not the one from before the rollout.
    let promoted = adopted.after_move("r5".into(), t0());
    let held =
        AliasState { routing: Routing::to_version("2"), revision_id: "r5".into(), description: promoted.lock.clone() };
    let MovePlan::Write { description, .. } = promoted.plan_release(&held) else { panic!() };
    assert_eq!(description, "orders, managed by CloudFormation");
    // Rolled back without having carried it over (the safety net's state is older): the routing comes back,
    // their description stays.
    let MovePlan::Write { routing, description, .. } = rollout.plan_rollback(&edited) else { panic!() };
    assert_eq!((routing, description.as_str()), (Routing::to_version("1"), "orders, managed by CloudFormation"));
    // Someone who kept the marker but changed the text after it: still this rollout's, and their text is kept.
    let kept_marker = AliasState { description: canary_core::lock::marker(EXEC, "orders, edited"), ..edited.clone() };
    assert_eq!(rollout.clone().adopt(&kept_marker).original_description, "orders, edited");
}

#[test]
fn an_alias_description_that_would_not_fit_beside_the_lock_is_refused() {
    let room = canary_core::lock::room_beside(EXEC);
    let long = AliasState { description: "d".repeat(room + 1), ..alias_at("1") };
    let refusal =
        Rollout::prepare(request(json!({})), LiveFacts { alias: Some(long), ..facts() }, EXEC, t0()).unwrap_err();
    assert_eq!(refusal.fields(), ["alias"]);
    assert!(refusal.to_string().contains(&format!("at most {room} characters")), "{refusal}");
    let fits = AliasState { description: "d".repeat(room), ..alias_at("1") };
    let prepared =
        Rollout::prepare(request(json!({})), LiveFacts { alias: Some(fits), ..facts() }, EXEC, t0()).unwrap();
    assert_eq!(prepared.lock.chars().count(), canary_core::lock::MAX_DESCRIPTION, "the marker and the text, whole");
}

/// A description edited before any state of the loop (every state in turn, a hook, a gate, a hold, a move,
/// the release, the rollback) takes nothing from the rollout: it ends promoted, or exactly rolled back when
/// its health fails, and the alias keeps the edited description. The loop is modelled as the handlers run it:
/// a write planned against a changed description is carried over ([`Rollout::adopt`]) while the execution
/// runs.
#[test]
fn a_description_edited_before_any_state_is_kept_whatever_the_ending() {
    let request = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 30}},
        "hooks": {"pre_traffic": "orders-smoke", "post_traffic": "orders-e2e"},
        "approval": {"before_percent": [50]}}));
    for fails in [false, true] {
        for edit_before in 0..20 {
            let mut alias = alias_at("1");
            let mut rollout = Rollout::prepare(request.clone(), facts(), EXEC, t0()).unwrap();
            let mut revision = 0;
            let mut write = |alias: &mut AliasState, plan: MovePlan| {
                if let MovePlan::Write { routing, description, revision_id } = plan {
                    assert_eq!(revision_id, alias.revision_id, "writes are conditional on the revision read");
                    revision += 1;
                    *alias = AliasState { routing, description, revision_id: format!("r{revision}") };
                }
            };
            let plan = rollout.plan_lock(&alias);
            write(&mut alias, plan);
            rollout = rollout.after_lock(alias.revision_id.clone());
            let mut state = 0;
            let ended = loop {
                if state == edit_before {
                    alias = AliasState { description: "edited".into(), revision_id: "edited".into(), ..alias };
                }
                state += 1;
                rollout = match rollout.next {
                    Next::Shift | Next::Promote => {
                        if rollout.plan_move(&alias) == MovePlan::DescriptionChanged {
                            rollout = rollout.adopt(&alias);
                        }
                        let plan = rollout.plan_move(&alias);
                        write(&mut alias, plan);
                        rollout.after_move(alias.revision_id.clone(), t0())
                    }
                    Next::Hold => rollout.after_check(if fails { failing() } else { healthy() }, t0()),
                    Next::AwaitApproval => rollout.after_approval(Decision::Promote).unwrap(),
                    Next::PreTraffic | Next::PostTraffic => {
                        rollout.after_hook(canary_core::HookOutcome { passed: true, message: "ok".into() }, t0())
                    }
                    Next::Done => {
                        let plan = rollout.plan_release(&alias);
                        write(&mut alias, plan);
                        break Next::Done;
                    }
                    Next::Rollback => {
                        let plan = rollout.plan_rollback(&alias);
                        write(&mut alias, plan);
                        break Next::Rollback;
                    }
                };
            };
            let case = format!("edited before state {edit_before}, health failing: {fails}");
            let expected = if fails { (Next::Rollback, "1") } else { (Next::Done, "2") };
            assert_eq!((ended, alias.routing.clone()), (expected.0, Routing::to_version(expected.1)), "{case}");
            // Edited before the loop ended: theirs is kept; edited after it: nothing to keep.
            if edit_before < state {
                assert_eq!(alias.description, "edited", "{case}");
            }
        }
    }
}

/// Errors in bursts tell less per call: an old version whose minutes before the rollout vary far more than
/// independent errors would makes the promotion wait for that many times the evidence, and a new version
/// with just the evidence independent errors need is not promoted on it.
#[test]
fn bursty_errors_raise_the_evidence_the_promotion_waits_for() {
    use canary_core::sequential::Counts;
    let req = || {
        request(json!({"strategy": {"canary": {"percent": 10, "bake_seconds": 30}},
        "health": {"no_data": "fail", "metrics_delay_seconds": 0}}))
    };
    let calm: Vec<Counts> = (0..60).map(|_| Counts { invocations: 100, errors: 1, slow: 0 }).collect();
    let bursty: Vec<Counts> =
        (0..60).map(|m| Counts { invocations: 100, errors: if m % 10 == 0 { 10 } else { 0 }, slow: 0 }).collect();
    let independent = Rollout::prepare(req(), facts(), EXEC, t0()).unwrap().evidence_needed();
    let calm_needed = Rollout::prepare(req(), facts(), EXEC, t0()).unwrap().with_traffic_before(&calm, None);
    assert_eq!(calm_needed.evidence_needed(), independent, "steady errors: the count independent errors need");
    let bursty_rollout = Rollout::prepare(req(), facts(), EXEC, t0()).unwrap().with_traffic_before(&bursty, None);
    let phi = bursty_rollout.evidence.as_ref().unwrap().dispersion.factor();
    assert!(phi > 5.0, "{phi}");
    assert_eq!(bursty_rollout.evidence_needed(), (independent as f64 * phi).ceil() as u64);
    // Just the independent count, healthy: enough on calm traffic, too little on bursty traffic.
    let just_enough = |_| {
        Some(HealthFigures {
            new: VersionFigures { invocations: independent, ..Default::default() },
            baseline: VersionFigures { invocations: 9 * independent, ..Default::default() },
            ..Default::default()
        })
    };
    assert_eq!(run(calm_needed, just_enough).1.next, Next::Done);
    let (_, bursty_done, _) = run(bursty_rollout, just_enough);
    assert_eq!(bursty_done.rollback_reason().signal.as_str(), "invocations", "too little evidence under bursts");
}
