//! The rollout's decisions, and the state machine's loop modelled on an in-memory alias.

use canary_core::health::{HealthFigures, Verdict, VersionFigures};
use canary_core::rollout::{Decision, HISTORY_LIMIT, TaskError, percent_text};
use canary_core::{AliasState, LiveFacts, MovePlan, Next, Outcome, Rollout, RolloutRequest, Routing, parse_request};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn request(extra: Value) -> RolloutRequest {
    let mut input = json!({"function": "orders-api", "alias": "live", "version": "2",
                           "health": {"metrics_delay_seconds": 60, "min_invocations": 10}});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    parse_request(&input).unwrap()
}

/// The execution preparing the rollouts of these tests.
const EXEC: &str = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-2";

fn alias_at(version: &str) -> AliasState {
    AliasState { routing: Routing::to_version(version), revision_id: "r0".into(), description: "orders".into() }
}

/// The alias as a rollout left it at `version`, still held, at the revision it wrote.
fn held_at(rollout: &Rollout, routing: Routing) -> AliasState {
    AliasState { routing, revision_id: rollout.revision_id.clone(), description: rollout.lock.clone() }
}

fn facts() -> LiveFacts {
    LiveFacts {
        function_exists: true,
        version_exists: true,
        alias: Some(alias_at("1")),
        alarms: Vec::new(),
        missing_hooks: Vec::new(),
        lock: None,
    }
}

fn healthy() -> Option<HealthFigures> {
    Some(HealthFigures { new: VersionFigures { invocations: 100, ..Default::default() }, ..Default::default() })
}

fn failing() -> Option<HealthFigures> {
    Some(HealthFigures {
        new: VersionFigures { invocations: 100, errors: 50, ..Default::default() },
        ..Default::default()
    })
}

fn quiet() -> Option<HealthFigures> {
    Some(HealthFigures::default())
}

#[test]
fn prepare_refuses_before_anything_moves() {
    let weighted = AliasState {
        routing: Routing {
            function_version: "1".into(),
            additional_version_weights: BTreeMap::from([("3".into(), 0.2)]),
        },
        revision_id: "r".into(),
        description: String::new(),
    };
    let cases: Vec<(LiveFacts, Vec<&str>)> = vec![
        (LiveFacts { function_exists: false, version_exists: false, alias: None, ..facts() }, vec!["function"]),
        (LiveFacts { version_exists: false, ..facts() }, vec!["version"]),
        (LiveFacts { alias: None, ..facts() }, vec!["alias"]),
        (LiveFacts { version_exists: false, alias: None, ..facts() }, vec!["version", "alias"]),
        (LiveFacts { alias: Some(alias_at("2")), ..facts() }, vec!["version"]),
        (LiveFacts { alias: Some(alias_at("$LATEST")), ..facts() }, vec!["alias"]),
        (LiveFacts { alias: Some(weighted), ..facts() }, vec!["alias"]),
    ];
    for (facts, fields) in cases {
        let refusal = Rollout::prepare(request(json!({})), facts.clone(), EXEC, t0()).unwrap_err();
        assert_eq!(refusal.fields(), fields, "{facts:?}: {refusal}");
    }
    let watched = request(json!({"health": {"alarms": ["known", "unknown"]}}));
    let known = canary_core::AlarmState { name: "known".into(), state: canary_core::AlarmValue::Ok, updated_at: t0() };
    let refusal = Rollout::prepare(watched, LiveFacts { alarms: vec![known], ..facts() }, EXEC, t0()).unwrap_err();
    assert_eq!(refusal.fields(), ["health.alarms[1]"]);
}

#[test]
fn prepare_records_the_original_routing() {
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    assert_eq!(rollout.original, Routing::to_version("1"));
    assert_eq!((rollout.old_version.as_str(), rollout.step, rollout.step_count), ("1", None, 10));
    assert_eq!(rollout.next, Next::Shift);
    let at_once = Rollout::prepare(request(json!({"strategy": {"all_at_once": {}}})), facts(), EXEC, t0()).unwrap();
    assert_eq!(at_once.next, Next::Promote);
}

/// The state machine, modelled: dispatch on `next`, each task doing what its Lambda does against an
/// in-memory alias. Returns the routings the alias carried, in order, and the final state.
fn run(
    mut rollout: Rollout,
    mut health: impl FnMut(usize) -> Option<HealthFigures>,
) -> (Vec<Routing>, Rollout, AliasState) {
    let mut alias = alias_at("1");
    let mut seen = vec![alias.routing.clone()];
    let mut now = t0();
    let mut revision = 0;
    let mut write = |alias: &mut AliasState, plan: MovePlan| match plan {
        MovePlan::Write { routing, description, revision_id } => {
            assert_eq!(revision_id, alias.revision_id, "writes are conditional on the revision read");
            revision += 1;
            *alias = AliasState { routing, description, revision_id: format!("r{revision}") };
        }
        other => panic!("unexpected {other:?}"),
    };
    let plan = rollout.plan_lock(&alias);
    write(&mut alias, plan);
    assert_eq!(rollout.plan_lock(&alias), MovePlan::AlreadyDone, "a retried Prepare finds its own lock");
    rollout = rollout.after_lock(alias.revision_id.clone());
    for _ in 0..100_000 {
        match rollout.next {
            Next::Shift | Next::Promote => {
                let plan = rollout.plan_move(&alias);
                write(&mut alias, plan);
                seen.push(alias.routing.clone());
                rollout = rollout.after_move(alias.revision_id.clone(), now);
            }
            Next::Hold => {
                now += Duration::seconds(rollout.wait_seconds as i64);
                let step = rollout.step.unwrap();
                rollout = rollout.after_check(health(step), now);
            }
            Next::Done => {
                let plan = rollout.plan_release(&alias);
                write(&mut alias, plan);
                assert_eq!(rollout.plan_release(&alias), MovePlan::AlreadyDone, "released once");
                return (seen, rollout, alias);
            }
            Next::AwaitApproval => rollout = rollout.after_approval(Decision::Promote).unwrap(),
            Next::PreTraffic | Next::PostTraffic => {
                rollout = rollout.after_hook(canary_core::HookOutcome { passed: true, message: "ok".into() }, now)
            }
            Next::Rollback => {
                let plan = rollout.plan_rollback(&alias);
                if let MovePlan::Write { routing, .. } = &plan {
                    seen.push(routing.clone());
                }
                write(&mut alias, plan);
                assert_eq!(rollout.plan_rollback(&alias), MovePlan::AlreadyDone, "a retried rollback does nothing");
                return (seen, rollout, alias);
            }
        }
    }
    panic!("the loop did not terminate");
}

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
    assert_eq!((reason.signal.as_str(), reason.value, reason.threshold), ("error_rate", 0.5, 0.01));
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
    let (seen, done, _) =
        run(Rollout::prepare(request(json!({"strategy": {"all_at_once": {}}})), facts(), EXEC, t0()).unwrap(), |_| {
            failing()
        });
    assert_eq!((seen.len(), done.next), (2, Next::Done), "no bake: promoted without a check");
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
        let req = request(json!({"strategy": {"canary": {"percent": 10, "bake_seconds": 30}},
            "health": {"no_data": no_data, "no_data_max_wait_seconds": max_wait, "metrics_delay_seconds": 0}}));
        run(Rollout::prepare(req, facts(), EXEC, t0()).unwrap(), |_| quiet())
    };
    let (_, passed, _) = with_no_data("pass", 0);
    assert_eq!(passed.next, Next::Done);
    let (_, failed, _) = with_no_data("fail", 600);
    let reason = failed.rollback_reason();
    assert_eq!((reason.signal.as_str(), reason.threshold), ("invocations", 10.0));
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
    // The lock was released (by an abort, or broken by hand): nothing more is written.
    match rollout.plan_move(&alias_at("1")) {
        MovePlan::Conflict(message) => assert!(message.contains("no longer held by this rollout"), "{message}"),
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

#[test]
fn the_safety_net_restores_only_rollouts_left_unfinished() {
    use canary_core::execution::ExecutionStatus;
    use canary_core::safety_net::{SafetyNet, decide};
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
    // A restore says why, for the rollback's report: the execution ended before the rollout did.
    let restores = |decision: SafetyNet| match decision {
        SafetyNet::Restore(state) => {
            let error = state.error.unwrap();
            assert!(error.error == "ExecutionEnded" && error.cause.unwrap().contains("the safety net restored"));
            true
        }
        SafetyNet::Nothing(_) => false,
    };
    // (status, last state in the history, restores?)
    let cases = [
        ("ABORTED", Some(shifted.clone()), true),
        ("TIMED_OUT", Some(shifted.clone()), true),
        ("FAILED", Some(shifted.clone()), true), // e.g. RollbackFailed after AWS kept failing: try again
        ("ABORTED", Some(prepared), true),       // stopped while the first shift was in flight
        ("ABORTED", None, false),
        ("FAILED", Some(rolled_back), false),
        ("FAILED", Some(promoted), false),
        ("SUCCEEDED", Some(shifted.clone()), false),
        ("RUNNING", Some(shifted), false),
    ];
    for (status, state, expected) in cases {
        let has_state = state.is_some();
        assert_eq!(restores(decide(ExecutionStatus::parse(status), state)), expected, "{status}, state: {has_state}");
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
    let at_once = request(json!({"strategy": {"all_at_once": {}}, "hooks": {"pre_traffic": "orders-smoke"}}));
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
    let kinds = |task, state: &Rollout| {
        let kinds = notices(task, state).iter().map(|n| n.detail_type).collect::<Vec<_>>();
        assert!(kinds.iter().all(|k| canary_core::notice::DETAIL_TYPES.contains(k)), "{kinds:?} are listed");
        kinds
    };
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
        assert!(rechecks <= 1 + canary_core::budget::MAX_RECHECKS, "a step was re-checked {rechecks} times");
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
/// as many approval gates as the history budget admits, both hooks.
fn largest_request() -> RolloutRequest {
    let arn = |name: &str| format!("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:{name}");
    let alarms: Vec<String> = (0..50).map(|i| format!("{i:02}{}", "a".repeat(253))).collect();
    let steps: Vec<Value> = (1..=999).map(|i| json!({"percent": i as f64 / 10.0, "hold_seconds": 1})).collect();
    let gates: Vec<f64> = (1..=530).map(|i| i as f64 / 10.0).collect();
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
    Some(HealthFigures { new: version(1_000), baseline: version(999), alarms, baseline_before: Some(version(998)) })
}

#[test]
fn the_largest_accepted_rollout_fits_step_functions_limits() {
    const STATE_LIMIT: usize = 256 * 1024;
    const CAUSE_LIMIT: usize = 32_768;
    let request = largest_request();
    let alarms = busiest_figures(&request, false).unwrap().alarms;
    let live = LiveFacts { alarms, ..facts() };
    let execution =
        format!("arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:{}:{}", "m".repeat(80), "n".repeat(80));
    let mut rollout = Rollout::prepare(request.clone(), live, &execution, t0()).unwrap().after_lock("r1".into());
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
                rollout.after_move(format!("r{revision}"), now)
            }
            Next::Hold => {
                now += Duration::seconds(rollout.wait_seconds as i64);
                let last = rollout.step == Some(rollout.step_count - 2);
                rollout.after_check(busiest_figures(&request, last), now)
            }
            other => panic!("{other:?}"),
        };
        // The state grows until its history is full, then stays level: measured now and then.
        if rollout.step.is_some_and(|s| s % 20 == 0) || rollout.next == Next::Rollback {
            largest = largest.max(size(&rollout));
        }
    }
    assert_eq!(rollout.next, Next::Rollback, "every alarm fired at the last held step");
    assert_eq!(rollout.failure.as_ref().unwrap().signal, canary_core::health::Signal::Alarm);
    // The Rollback task's input also carries the Catch's error, whose cause Step Functions caps at 32 KiB.
    rollout.error = Some(TaskError { error: "States.TaskFailed".into(), cause: Some("c".repeat(CAUSE_LIMIT)) });
    let report = rollout.report(Outcome::RolledBack, Routing::to_version("1"), now);
    rollout.report = Some(report.clone());
    largest = largest.max(size(&rollout));
    assert!(largest < STATE_LIMIT * 3 / 4, "the state reached {largest} bytes; Step Functions allows {STATE_LIMIT}");
    let cause = serde_json::to_string(&report).unwrap().chars().count();
    assert!(cause < CAUSE_LIMIT, "the RolledBack cause is {cause} characters; Step Functions allows {CAUSE_LIMIT}");
    assert_eq!(report.steps.len(), canary_core::rollout::REPORT_STEPS);
    assert_eq!(report.steps_omitted + report.steps.len(), 999);
    eprintln!("largest state {largest} bytes, cause {cause} characters");
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
fn latency_at_full_traffic_is_judged_against_the_old_version_before_the_rollout() {
    let latency = json!({"metrics_delay_seconds": 60, "min_invocations": 10, "max_latency_p99_increase": 0.5});
    let baked = request(json!({"strategy": {"all_at_once": {"bake_seconds": 600}}, "health": latency}));
    let rollout = Rollout::prepare(baked, facts(), EXEC, t0()).unwrap();
    // The 15 minutes before the rollout whose metrics are complete.
    assert_eq!(
        rollout.baseline_before_window(t0()),
        Some((t0() - Duration::seconds(60 + 900), t0() - Duration::seconds(60)))
    );
    let before = VersionFigures { invocations: 5_000, p99_duration_ms: Some(100.0), ..Default::default() };
    let rollout = rollout.with_baseline_before(before).after_lock("r1".into()).after_move("r2".into(), t0());
    let at_full = |p99: f64| {
        Some(HealthFigures {
            new: VersionFigures { invocations: 100, p99_duration_ms: Some(p99), ..Default::default() },
            ..Default::default()
        })
    };
    let slow = rollout.clone().after_check(at_full(200.0), t0() + Duration::seconds(660));
    assert_eq!(slow.next, Next::Rollback);
    let failure = slow.failure.unwrap();
    assert_eq!(failure.signal, canary_core::health::Signal::LatencyP99);
    assert!(failure.message.contains("the old version's before the rollout, 100.0 ms"), "{}", failure.message);
    let fine = rollout.after_check(at_full(120.0), t0() + Duration::seconds(660));
    assert_eq!(fine.next, Next::Done);
    // Nothing judged at full traffic, or no latency rule: nothing to read.
    for extra in [json!({"health": latency}), json!({"strategy": {"all_at_once": {"bake_seconds": 600}}})] {
        assert_eq!(Rollout::prepare(request(extra), facts(), EXEC, t0()).unwrap().baseline_before_window(t0()), None);
    }
}

#[test]
fn every_write_of_the_alias_publishes_the_new_versions_share_as_an_embedded_metric() {
    use canary_core::notice::{TRAFFIC_METRIC, TRAFFIC_NAMESPACE, Task, traffic_metric};
    let linear = request(json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 10}}}));
    let prepared = Rollout::prepare(linear, facts(), EXEC, t0()).unwrap();
    assert_eq!(traffic_metric(Task::Move, &prepared, t0()), None, "nothing moved yet");
    assert_eq!(traffic_metric(Task::Prepare, &prepared, t0()), None);
    let half = prepared.after_move("r1".into(), t0());
    let metric = traffic_metric(Task::Move, &half, t0()).unwrap();
    assert_eq!(metric[TRAFFIC_METRIC], 50.0);
    assert_eq!((metric["FunctionName"].as_str(), metric["Alias"].as_str()), (Some("orders-api"), Some("live")));
    let directive = &metric["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], TRAFFIC_NAMESPACE);
    assert_eq!(directive["Metrics"][0]["Name"], TRAFFIC_METRIC);
    assert_eq!(metric["_aws"]["Timestamp"], t0().timestamp_millis());
    let full = half.clone().after_check(healthy(), t0()).after_move("r2".into(), t0());
    assert_eq!(traffic_metric(Task::Move, &full, t0()).unwrap()[TRAFFIC_METRIC], 100.0);
    assert_eq!(traffic_metric(Task::Rollback, &half, t0()), None, "no report: the rollback has not run");
    let failed = half.after_check(failing(), t0());
    let original = failed.original.clone();
    let rolled_back = Rollout { report: Some(failed.report(Outcome::RolledBack, original, t0())), ..failed };
    assert_eq!(traffic_metric(Task::Rollback, &rolled_back, t0()).unwrap()[TRAFFIC_METRIC], 0.0);
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
            assert_eq!((revision_id.as_str(), description), ("r1", prepared.lock.clone()))
        }
        other => panic!("{other:?}"),
    }
    let moved = prepared.after_move("r2".into(), t0());
    assert_eq!(moved.alias_as_left().routing, moved.expected_routing());
}

#[test]
fn every_decision_names_its_state_once() {
    let states: std::collections::BTreeSet<&str> = Next::ALL.iter().map(|n| n.state()).collect();
    assert_eq!(states.len(), Next::ALL.len());
    assert_eq!(Next::Done.state(), "Promoted");
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
    let operator =
        TaskError { error: canary_core::rollout::ABORTED_ERROR.into(), cause: Some("canaryctl abort".into()) };
    let aborted = Rollout { error: Some(operator), ..failed }.after_rollback(Routing::to_version("1"), t0());
    assert_eq!(aborted.report.unwrap().outcome, Outcome::Aborted);
}
