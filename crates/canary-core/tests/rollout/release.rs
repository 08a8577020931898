//! Releases: several functions moved, judged and rolled back together, modelled as the handlers run them
//! (each task over every function's view, in order, then one decision for the release).

use super::*;
use canary_core::rollout::REPORT_STEPS;

fn release_request(width: usize, extra: Value) -> RolloutRequest {
    let functions: Vec<Value> =
        (0..width).map(|i| json!({"function": format!("fn-{i}"), "alias": "live", "version": "2"})).collect();
    let mut input = json!({"functions": functions, "health": {"metrics_delay_seconds": 60, "min_invocations": 10}});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    parse_request(&input).unwrap()
}

fn prepared(request: RolloutRequest) -> Rollout {
    let width = request.targets().len();
    Rollout::prepare_all(request, vec![facts(); width], EXEC, t0()).unwrap()
}

/// The state machine over a release: every task takes each function's view in turn and the release's
/// state is their combination, as the handlers do. `health(function, step)` gives each function's figures.
/// Returns the aliases as left and the final state.
fn run_release(
    mut release: Rollout,
    health: impl Fn(usize, usize) -> Option<HealthFigures>,
) -> (Vec<AliasState>, Rollout, Vec<Vec<Routing>>) {
    let width = release.width();
    let mut aliases: Vec<AliasState> = vec![alias_at("1"); width];
    let mut seen: Vec<Vec<Routing>> = vec![vec![Routing::to_version("1")]; width];
    let mut revision = 0;
    let mut write = |alias: &mut AliasState, plan: MovePlan| match plan {
        MovePlan::Write { routing, description, revision_id } => {
            assert_eq!(revision_id, alias.revision_id, "writes are conditional on the revision read");
            revision += 1;
            *alias = AliasState { routing, description, revision_id: format!("r{revision}") };
        }
        MovePlan::AlreadyDone => {}
        other => panic!("unexpected {other:?}"),
    };
    for index in release.lock_order() {
        let view = release.function_view(index);
        let plan = view.plan_lock(&aliases[index]);
        write(&mut aliases[index], plan);
        release = release.with_function_view(index, &view.after_lock(aliases[index].revision_id.clone()));
    }
    let mut now = t0();
    for _ in 0..100_000 {
        let views = release.function_views();
        release = match release.next {
            Next::Shift | Next::Promote => {
                let moved = views
                    .into_iter()
                    .enumerate()
                    .map(|(i, view)| {
                        let plan = view.plan_move(&aliases[i]);
                        write(&mut aliases[i], plan);
                        seen[i].push(aliases[i].routing.clone());
                        view.after_move(aliases[i].revision_id.clone(), now)
                    })
                    .collect();
                release.combine(moved)
            }
            Next::Hold => {
                now += Duration::seconds(release.wait_seconds as i64);
                let step = release.step.unwrap();
                let checked = views.into_iter().enumerate().map(|(i, v)| v.after_check(health(i, step), now)).collect();
                release.combine(checked)
            }
            Next::Done => {
                for (i, view) in views.iter().enumerate() {
                    let plan = view.plan_release(&aliases[i]);
                    write(&mut aliases[i], plan);
                }
                return (aliases, release, seen);
            }
            Next::AwaitApproval => release.after_approval(Decision::Promote).unwrap(),
            Next::PreTraffic | Next::PostTraffic => {
                release.after_hook(canary_core::HookOutcome { passed: true, message: "ok".into() }, now)
            }
            Next::Rollback => {
                let restored = views
                    .into_iter()
                    .enumerate()
                    .map(|(i, view)| {
                        let plan = view.plan_rollback(&aliases[i]);
                        write(&mut aliases[i], plan);
                        seen[i].push(aliases[i].routing.clone());
                        assert_eq!(view.plan_rollback(&aliases[i]), MovePlan::AlreadyDone, "restored once");
                        view.after_rollback(aliases[i].routing.clone(), now)
                    })
                    .collect();
                return (aliases, release.combine(restored), seen);
            }
        }
    }
    panic!("the loop did not terminate");
}

#[test]
fn a_healthy_release_moves_every_function_in_step_and_promotes_them_all() {
    let release =
        prepared(release_request(3, json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 60}}})));
    assert_eq!((release.width(), release.members.len()), (3, 2));
    let (aliases, done, seen) = run_release(release, |_, _| healthy());
    assert_eq!(done.next, Next::Done);
    for (alias, seen) in aliases.iter().zip(&seen) {
        assert_eq!(alias.routing, Routing::to_version("2"));
        assert_eq!(alias.description, "orders", "every lock is released");
        let percents: Vec<f64> = seen.iter().map(|r| r.percent_of("2")).collect();
        assert_eq!(percents, [0.0, 50.0, 100.0], "every function at the same weight at every step");
    }
    let report = done.report.unwrap();
    assert_eq!(report.outcome, Outcome::Promoted);
    let functions: Vec<(&str, &str, String)> =
        report.functions.iter().map(|f| (f.function.as_str(), f.old_version.as_str(), f.routing.to_string())).collect();
    assert_eq!(
        functions,
        [("fn-0", "1", "2 (100%)".into()), ("fn-1", "1", "2 (100%)".into()), ("fn-2", "1", "2 (100%)".into())]
    );
    assert!(
        done.members.iter().all(|m| m.part.history.len() == 2 && m.part.evidence.is_some()),
        "each function judged"
    );
}

#[test]
fn one_failing_function_rolls_the_whole_release_back_and_is_named() {
    let release =
        prepared(release_request(3, json!({"strategy": {"linear": {"percent": 25, "interval_seconds": 60}}})));
    let (aliases, ended, seen) =
        run_release(release, |function, step| if function == 2 && step >= 1 { failing() } else { healthy() });
    assert_eq!(ended.next, Next::Rollback);
    for (alias, seen) in aliases.iter().zip(&seen) {
        assert_eq!(
            (&alias.routing, alias.description.as_str()),
            (&Routing::to_version("1"), "orders"),
            "restored exactly"
        );
        assert_eq!(seen.iter().map(|r| r.percent_of("2")).collect::<Vec<_>>(), [0.0, 25.0, 50.0, 0.0]);
    }
    let report = ended.report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    let reason = report.reason.unwrap().message;
    assert!(reason.starts_with("fn-2: "), "{reason}");
    assert!(report.functions.iter().all(|f| f.routing == Routing::to_version("1")), "{:?}", report.functions);
}

#[test]
fn a_function_short_of_traffic_holds_the_release_and_the_shortest_wait_wins() {
    let release = prepared(release_request(2, json!({"strategy": {"canary": {"percent": 10, "bake_seconds": 60}}})));
    let views = release.function_views();
    let moved: Vec<Rollout> = views.into_iter().map(|v| v.after_move("r".into(), t0())).collect();
    let release = release.combine(moved);
    let at = t0() + Duration::seconds(release.wait_seconds as i64);
    let checked: Vec<Rollout> = release
        .function_views()
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.after_check(if i == 1 { quiet() } else { healthy() }, at))
        .collect();
    assert_eq!((checked[0].next, checked[1].next), (Next::Promote, Next::Hold));
    let held = release.clone().combine(checked.clone());
    assert_eq!((held.next, held.wait_seconds), (Next::Hold, checked[1].wait_seconds));
    // The first function passed, but the release holds: no "Rollout Step Passed" yet.
    assert!(canary_core::notice::notices(canary_core::notice::Task::Check, &held).is_empty());
    let passed = canary_core::notice::notices(canary_core::notice::Task::Check, &checked[0]);
    assert_eq!(passed[0].detail_type, "Rollout Step Passed");
    assert_eq!(held.waited_for_data_seconds, checked[1].waited_for_data_seconds);
    assert_eq!(held.members[0].part.history.last().unwrap().verdict, checked[1].history.last().unwrap().verdict);
    // Two holding: the sooner look is taken.
    let mut sooner = checked.clone();
    sooner[0].next = Next::Hold;
    sooner[0].wait_seconds = 7;
    assert_eq!(release.combine(sooner).wait_seconds, 7);
}

#[test]
fn a_rollout_of_one_function_is_its_own_view() {
    let single = Rollout::prepare_all(request(json!({})), vec![facts()], EXEC, t0()).unwrap();
    assert_eq!((single.width(), single.report.is_none()), (1, true));
    assert_eq!(single.function_view(0), single);
    let moved = single.function_view(0).after_move("r9".into(), t0());
    assert_eq!(single.combine(vec![moved.clone()]), moved);
    assert!(moved.report(Outcome::Promoted, Routing::to_version("2"), t0()).functions.is_empty());
}

#[test]
fn a_release_is_refused_with_every_function_named_before_anything_is_locked() {
    let request = release_request(3, json!({"health": {"alarms": ["gone"], "max_error_rate": 0.01}}));
    let missing_version = LiveFacts { version_exists: false, ..facts() };
    let missing_function = LiveFacts { function_exists: false, alias: None, ..facts() };
    let refusal =
        Rollout::prepare_all(request, vec![facts(), missing_version, missing_function], EXEC, t0()).unwrap_err();
    // The shared alarm is named once, each function's problems under its entry.
    assert_eq!(refusal.fields(), ["health.alarms[0]", "functions[1].version", "functions[2].function"], "{refusal}");
}

#[test]
fn locks_are_taken_in_one_order_whatever_the_order_given() {
    let input = |names: [&str; 3]| {
        let functions: Vec<Value> =
            names.iter().map(|n| json!({"function": n, "alias": "live", "version": "2"})).collect();
        prepared(parse_request(&json!({"functions": functions})).unwrap())
    };
    let a = input(["orders-worker", "arn:aws:lambda:eu-west-1:123456789012:function:orders-api", "billing"]);
    let names = |r: &Rollout| {
        r.lock_order().into_iter().map(|i| r.function_view(i).request.function_name().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(&a), ["billing", "orders-api", "orders-worker"]);
    let b = input(["billing", "orders-worker", "orders-api"]);
    assert_eq!(names(&b), names(&a));
}

#[test]
fn each_view_is_its_function_and_comes_back_whole() {
    let release = prepared(release_request(2, json!({})));
    let view = release.function_view(1);
    assert_eq!((view.request.function.as_str(), view.width(), view.request.is_release()), ("fn-1", 1, false));
    assert_eq!(view.lock, release.members[0].part.lock);
    assert_eq!(release.clone().with_function_view(1, &view), release);
    let back = release.clone().with_function_view(0, &release.function_view(0));
    assert_eq!(back, release);
}

#[test]
fn ten_functions_share_the_history_the_state_keeps() {
    let request = release_request(10, json!({"strategy": {"linear": {"percent": 2, "interval_seconds": 60}}}));
    let (_, done, _) = run_release(prepared(request), |_, _| healthy());
    assert_eq!(done.next, Next::Done);
    let share = HISTORY_LIMIT / 10;
    assert_eq!((done.history.len(), done.history_omitted), (share, 50 - share));
    assert!(done.members.iter().all(|m| m.part.history.len() == share && m.part.history_omitted == 50 - share));
    assert!(done.report.unwrap().steps.len() <= REPORT_STEPS);
}

#[test]
fn a_release_hook_and_its_events_name_every_function() {
    let release = prepared(release_request(2, json!({"hooks": {"pre_traffic": "smoke"}})));
    assert_eq!(release.next, Next::PreTraffic);
    let (_, function, payload) = release.hook_call().unwrap();
    assert_eq!(function, "smoke");
    assert_eq!(payload["function"], "fn-0");
    assert_eq!(
        payload["functions"][1],
        json!({"function": "fn-1", "alias": "live", "old_version": "1", "new_version": "2"})
    );
    let started = canary_core::notice::notices(canary_core::notice::Task::Prepare, &release);
    assert_eq!(started[0].detail["functions"], payload["functions"]);
    let single = Rollout::prepare(request(json!({"hooks": {"pre_traffic": "smoke"}})), facts(), EXEC, t0()).unwrap();
    assert!(single.hook_call().unwrap().2.get("functions").is_none());
    assert!(
        canary_core::notice::notices(canary_core::notice::Task::Prepare, &single)[0].detail.get("functions").is_none()
    );
}

#[test]
fn each_function_of_a_release_publishes_its_own_traffic_share() {
    use canary_core::notice::{TRAFFIC_METRIC, Task, traffic_metrics};
    let release =
        prepared(release_request(2, json!({"strategy": {"linear": {"percent": 50, "interval_seconds": 60}}})));
    let moved: Vec<Rollout> = release.function_views().into_iter().map(|v| v.after_move("r1".into(), t0())).collect();
    let release = release.combine(moved);
    let metrics = traffic_metrics(Task::Move, &release, t0());
    let shares: Vec<(&str, f64)> =
        metrics.iter().map(|m| (m["FunctionName"].as_str().unwrap(), m[TRAFFIC_METRIC].as_f64().unwrap())).collect();
    assert_eq!(shares, [("fn-0", 50.0), ("fn-1", 50.0)]);
    let restored: Vec<Rollout> = release
        .function_views()
        .into_iter()
        .map(|v| {
            let original = v.original.clone();
            v.after_rollback(original, t0())
        })
        .collect();
    let rolled_back = release.combine(restored);
    let metrics = traffic_metrics(Task::Rollback, &rolled_back, t0());
    let shares: Vec<(&str, f64)> =
        metrics.iter().map(|m| (m["FunctionName"].as_str().unwrap(), m[TRAFFIC_METRIC].as_f64().unwrap())).collect();
    assert_eq!(shares, [("fn-0", 0.0), ("fn-1", 0.0)]);
}
