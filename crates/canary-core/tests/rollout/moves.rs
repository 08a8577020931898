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
    let first = canary_core::lock::signed(EXEC, 1, "orders");
    assert_eq!(
        rollout.plan_move(&held),
        MovePlan::Write { routing: target.clone(), description: first.clone(), revision_id: "r1".into() }
    );
    // The first attempt wrote the weight but its answer was lost: the retry finds its own signed write done.
    let written = AliasState { routing: target.clone(), revision_id: "r2".into(), description: first };
    assert_eq!(rollout.plan_move(&written), MovePlan::AlreadyDone);
    // A person set the same weight by hand, keeping the description: the marker still signs the routing before
    // the move, so it is theirs, handed over, never taken for this rollout's progress.
    let by_hand = AliasState { routing: target.clone(), revision_id: "r-operator".into(), ..held.clone() };
    match rollout.plan_move(&by_hand) {
        MovePlan::Conflict(message) => assert!(message.contains("under this rollout's lock"), "{message}"),
        other => panic!("{other:?}"),
    }
    // Someone pointed the alias at a hotfix meanwhile: it is reported, never overwritten.
    let hotfix = AliasState { routing: Routing::to_version("7"), revision_id: "r9".into(), ..held.clone() };
    match rollout.plan_move(&hotfix) {
        MovePlan::Conflict(message) => assert!(message.contains("now routes 7 (100%)"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The routing as this rollout left it, the lock gone (released by an ending, or a description rewritten
    // whole): equal routing is no ownership, so nothing is written.
    match rollout.plan_move(&alias_at("1")) {
        MovePlan::Conflict(message) => assert!(message.contains("without this rollout's lock"), "{message}"),
        other => panic!("{other:?}"),
    }
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
    // hand): the lock is released with the original description put back, the routing unchanged.
    let held_original = AliasState { revision_id: "r7".into(), ..held_at(&rollout, Routing::to_version("1")) };
    let release =
        MovePlan::Write { routing: Routing::to_version("1"), description: "orders".into(), revision_id: "r7".into() };
    assert_eq!(rollout.plan_rollback(&held_original), release);
    // Restored by an earlier ending, then promoted again by someone else (a later rollout, a person): an ending
    // handled again finds no lock of its own and writes nothing, whatever the routing.
    let promoted_since =
        AliasState { routing: Routing::to_version("2"), revision_id: "r-later".into(), description: "orders".into() };
    match rollout.plan_rollback(&promoted_since) {
        MovePlan::Conflict(message) => assert!(message.contains("no longer carries this rollout's lock"), "{message}"),
        other => panic!("{other:?}"),
    }
    let promoted_at_step = AliasState { routing: rollout.expected_routing(), ..promoted_since };
    assert!(matches!(rollout.plan_rollback(&promoted_at_step), MovePlan::Conflict(_)), "equal routing is no ownership");
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
    let landed = AliasState {
        routing: target.clone(),
        revision_id: "r2".into(),
        description: canary_core::lock::signed(EXEC, 1, "orders"),
    };
    assert!(matches!(rollout.plan_rollback(&landed), MovePlan::Write { .. }));
    // The same routing set by hand under the lock as Prepare wrote it: the marker signs no move, so it is theirs.
    let by_hand = AliasState { revision_id: "r-operator".into(), ..held_at(&rollout, target.clone()) };
    assert!(matches!(rollout.plan_rollback(&by_hand), MovePlan::Conflict(_)));
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
    // Its execution ended without giving it back (its ending not handled yet): what the alias routes was not
    // judged to the end, so it cannot become this rollout's baseline. Refused, naming the execution and the fix.
    let stale = Rollout::prepare(request(json!({})), locked(other, false), EXEC, t0()).unwrap_err();
    assert_eq!(stale.fields(), ["alias"]);
    assert!(stale.to_string().contains("deploy-3, which has ended") && stale.to_string().contains("canaryctl abort"));
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
    let marker = canary_core::lock::parse(&marker).unwrap();
    assert_eq!((marker.execution, marker.moves), (arn.as_str(), Some(0)));
    // A count that is not one (a hand-edited marker) signs no routing.
    let garbled = format!("{}{arn} #x", canary_core::lock::PREFIX);
    assert_eq!(canary_core::lock::parse(&garbled).unwrap().moves, None);
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

/// The lock is ownership, never the routing alone: someone who edits the alias's description around the
/// marker mid-rollout (a person, a stack update that keeps it) takes nothing from the rollout. It carries on
/// from their revision, the marker over their text, and leaves their description at the end, whether
/// promoted or rolled back. A description rewritten whole takes the lock off: the alias is theirs.
#[test]
fn a_description_edited_mid_rollout_is_carried_over_and_kept() {
    let request = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 30}}}));
    let rollout = Rollout::prepare(request, facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let rollout = rollout.after_move("r2".into(), t0()).after_check(healthy(), t0());
    assert_eq!(rollout.next, Next::Promote);
    let theirs = "orders, managed by CloudFormation";
    let edited = AliasState {
        routing: rollout.expected_routing(),
        revision_id: "r-stack-update".into(),
        description: canary_core::lock::signed(EXEC, 1, theirs),
    };
    assert_eq!(rollout.plan_move(&edited), MovePlan::DescriptionChanged);
    // Carried over: written on their revision, the marker over their text.
    let adopted = rollout.clone().adopt(&edited);
    assert!(adopted.holds(&adopted.lock) && adopted.lock.ends_with(theirs));
    let MovePlan::Write { description, revision_id, .. } = adopted.plan_move(&edited) else { panic!() };
    assert_eq!((description, revision_id.as_str()), (canary_core::lock::signed(EXEC, 2, theirs), "r-stack-update"));
    // Promoted, the release gives back their description, not the one from before the rollout.
    let promoted = adopted.after_move("r5".into(), t0());
    let held =
        AliasState { routing: Routing::to_version("2"), revision_id: "r5".into(), description: promoted.lock.clone() };
    let MovePlan::Write { description, .. } = promoted.plan_release(&held) else { panic!() };
    assert_eq!(description, theirs);
    // Rolled back without having carried it over (the safety net's state is older): the routing comes back,
    // their description stays.
    let MovePlan::Write { routing, description, .. } = rollout.plan_rollback(&edited) else { panic!() };
    assert_eq!((routing, description.as_str()), (Routing::to_version("1"), theirs));
    // Rewritten whole, the marker gone: neither the move nor the rollback writes it.
    let rewritten = AliasState { description: theirs.into(), ..edited.clone() };
    assert!(matches!(rollout.plan_move(&rewritten), MovePlan::Conflict(_)));
    assert!(matches!(rollout.plan_rollback(&rewritten), MovePlan::Conflict(_)));
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
    assert!(prepared.lock.ends_with(&"d".repeat(room)), "the marker and the text, whole");
    let last = canary_core::lock::signed(EXEC, 1000, &"d".repeat(room));
    assert_eq!(last.chars().count(), canary_core::lock::MAX_DESCRIPTION, "whole beside the marker of any move");
}

/// A description edited before any state of the loop (every state in turn, a hook, a gate, a hold, a move,
/// the release, the rollback) around the marker takes nothing from the rollout: it ends promoted, or exactly
/// rolled back when its health fails, and the alias keeps the edited description. The loop is modelled as the
/// handlers run it: a write planned against a changed description is carried over ([`Rollout::adopt`]) while
/// the execution runs. A description rewritten whole (the marker gone) hands the alias over: from then on
/// nothing is written, and the routing stays as it was at the edit.
#[test]
fn a_description_edited_before_any_state_is_kept_whatever_the_ending() {
    let request = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 30}},
        "hooks": {"pre_traffic": "orders-smoke", "post_traffic": "orders-e2e"},
        "approval": {"before_percent": [50]}}));
    for keeps_marker in [true, false] {
        for fails in [false, true] {
            for edit_before in 0..20 {
                let case = format!("edited before state {edit_before}, marker kept: {keeps_marker}, failing: {fails}");
                let (ended, alias, at_edit, states) = run_with_edit(&request, edit_before, keeps_marker, fails);
                if let Some(at_edit) = at_edit.filter(|_| !keeps_marker) {
                    // Nothing written after the edit, whatever came next: the alias is as the person left it.
                    assert_eq!(alias, at_edit, "{case}");
                    continue;
                }
                let expected = if fails { (Next::Rollback, "1") } else { (Next::Done, "2") };
                assert_eq!(
                    (ended, alias.routing.clone()),
                    (Some(expected.0), Routing::to_version(expected.1)),
                    "{case}"
                );
                // Edited before the loop ended: theirs is kept; edited after it: nothing to keep.
                if edit_before < states {
                    assert_eq!(alias.description, "edited", "{case}");
                }
            }
        }
    }
}

/// The loop of [`a_description_edited_before_any_state_is_kept_whatever_the_ending`] on an in-memory alias,
/// the description edited before state `edit_before` (around the marker, or rewritten whole). Returns how
/// it ended (`None`: a write was refused as someone else's), the alias, the alias as the edit left it when
/// the edit took this execution's marker off, and how many states ran.
fn run_with_edit(
    request: &RolloutRequest,
    edit_before: usize,
    keeps_marker: bool,
    fails: bool,
) -> (Option<Next>, AliasState, Option<AliasState>, usize) {
    let mut alias = alias_at("1");
    let mut rollout = Rollout::prepare(request.clone(), facts(), EXEC, t0()).unwrap();
    let mut revision = 0;
    let mut write = |alias: &mut AliasState, plan: MovePlan| match plan {
        MovePlan::Write { routing, description, revision_id } => {
            assert_eq!(revision_id, alias.revision_id, "writes are conditional on the revision read");
            revision += 1;
            *alias = AliasState { routing, description, revision_id: format!("r{revision}") };
            true
        }
        MovePlan::Conflict(_) => false,
        _ => true,
    };
    let plan = rollout.plan_lock(&alias);
    write(&mut alias, plan);
    rollout = rollout.after_lock(alias.revision_id.clone());
    let (mut state, mut at_edit) = (0, None);
    let ended = loop {
        if state == edit_before {
            let description = match canary_core::lock::holder(&alias.description) {
                Some(_) if keeps_marker => {
                    let marker = alias.description.split('\n').next().unwrap().to_string();
                    format!("{marker}\nedited")
                }
                _ => "edited".to_string(),
            };
            let removed = canary_core::lock::holder(&alias.description).is_some() && !keeps_marker;
            alias = AliasState { description, revision_id: "edited".into(), ..alias };
            at_edit = removed.then(|| alias.clone());
        }
        state += 1;
        rollout = match rollout.next {
            Next::Shift | Next::Promote => {
                if rollout.plan_move(&alias) == MovePlan::DescriptionChanged {
                    rollout = rollout.adopt(&alias);
                }
                let plan = rollout.plan_move(&alias);
                if !write(&mut alias, plan) {
                    break None;
                }
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
                break Some(Next::Done);
            }
            Next::Rollback => {
                let plan = rollout.plan_rollback(&alias);
                let wrote = write(&mut alias, plan);
                break wrote.then_some(Next::Rollback);
            }
        };
    };
    (ended, alias, at_edit, state)
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

/// The rollout state and the lock are a wire format: a rollout that began under a controller whose markers
/// did not sign their moves (`canary-rollout lock: ARN`, no `#N`) carries on under today's, by the rules of
/// its time for its unsigned marker (its routing as left, its move in flight, its original), and signs from
/// its next write on.
#[test]
fn a_rollout_locked_by_an_earlier_controller_carries_on() {
    let unsigned = format!("{}{EXEC}\norders", canary_core::lock::PREFIX);
    let parsed = canary_core::lock::parse(&unsigned).unwrap();
    assert_eq!((parsed.execution, parsed.moves, parsed.original), (EXEC, None, "orders"));
    let prepared = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let mut stored = serde_json::to_value(prepared.after_move("r2".into(), t0()).after_check(healthy(), t0())).unwrap();
    stored["lock"] = json!(unsigned);
    let rollout: Rollout = serde_json::from_value(stored).unwrap();
    assert_eq!(rollout.next, Next::Shift);
    let left =
        AliasState { routing: rollout.expected_routing(), revision_id: "r2".into(), description: unsigned.clone() };
    let MovePlan::Write { description, .. } = rollout.plan_move(&left) else { panic!() };
    assert_eq!(description, canary_core::lock::signed(EXEC, 2, "orders"), "signed from its next write on");
    let edited = AliasState { revision_id: "edited".into(), ..left.clone() };
    assert_eq!(rollout.plan_move(&edited), MovePlan::DescriptionChanged);
    // Its move in flight, written unsigned by the earlier controller, and its original: its own to roll back.
    let next = rollout.routing_at(rollout.schedule().steps[1]);
    for routing in [next, Routing::to_version("1")] {
        let live = AliasState { routing: routing.clone(), ..edited.clone() };
        let MovePlan::Write { description, .. } = rollout.plan_rollback(&live) else { panic!("{routing}") };
        assert_eq!(description, "orders");
    }
    let theirs = AliasState { routing: Routing::to_version("7"), ..edited };
    assert!(matches!(rollout.plan_rollback(&theirs), MovePlan::Conflict(_)));
}

/// What a rollback leaves, by whose the alias is: at this execution's revision without any marker (nothing to
/// take off), the description stays; already at the original there, nothing is written; another rollout's
/// lock on a routing this one did not set is named.
#[test]
fn a_rollback_leaves_descriptions_and_other_rollouts_alone() {
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap().after_lock("r1".into());
    let moved = rollout.clone().after_move("r2".into(), t0());
    let plain = AliasState { routing: moved.expected_routing(), revision_id: "r2".into(), description: "plain".into() };
    let MovePlan::Write { routing, description, .. } = moved.plan_rollback(&plain) else { panic!() };
    assert_eq!((routing, description.as_str()), (Routing::to_version("1"), "plain"));
    let restored =
        AliasState { routing: Routing::to_version("1"), revision_id: "r1".into(), description: "orders".into() };
    assert_eq!(rollout.plan_rollback(&restored), MovePlan::AlreadyDone);
    let other = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-3";
    let held = AliasState {
        routing: Routing::to_version("3"),
        revision_id: "r9".into(),
        description: canary_core::lock::marker(other, "orders"),
    };
    match moved.plan_rollback(&held) {
        MovePlan::Conflict(message) => assert!(message.contains("another rollout holds it"), "{message}"),
        other => panic!("{other:?}"),
    }
}
