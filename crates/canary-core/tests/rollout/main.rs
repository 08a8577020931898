//! The rollout's decisions, and the state machine's loop modelled on an in-memory alias.
//!
//! Grouped by what they decide: [`moves`] (the loop, moves, rollbacks, the lock), [`gates`] (hooks,
//! approval gates, the safety net, notices), [`limits`] (Step Functions' limits, and the rules that hold
//! at every size). The helpers and the model of the loop are here.

mod endings;
mod gates;
mod limits;
mod moves;
mod release;

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
    LiveFacts { alias: Some(alias_at("1")), ..LiveFacts::healthy("1", canary_core::deployment::Deployment::LOCAL) }
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

/// Lambda refuses a weighted alias over versions whose execution role or dead-letter target differ: the
/// rollout is refused before anything moves, naming both, rather than failing at its first shift.
#[test]
fn prepare_refuses_versions_lambda_cannot_weight_together() {
    let config = |role: &str, dlq: Option<&str>| canary_core::VersionConfig {
        role: format!("arn:aws:iam::1:role/{role}"),
        dead_letter_target: dlq.map(str::to_string),
        state: canary_core::VersionState::Active,
    };
    let with = |new: canary_core::VersionConfig, old: canary_core::VersionConfig| LiveFacts {
        versions: BTreeMap::from([("2".to_string(), new), ("1".to_string(), old)]),
        ..facts()
    };
    let same = with(config("orders", Some("arn:q")), config("orders", Some("arn:q")));
    assert!(Rollout::prepare(request(json!({})), same, EXEC, t0()).is_ok());
    let cases = [
        (with(config("orders-v2", None), config("orders", None)), "role/orders-v2", "different execution roles"),
        (with(config("orders", Some("arn:q2")), config("orders", Some("arn:q"))), "arn:q2", "dead-letter"),
        (with(config("orders", None), config("orders", Some("arn:q"))), "target none", "dead-letter"),
    ];
    for (facts, named, why) in cases {
        let refusal = Rollout::prepare(request(json!({})), facts, EXEC, t0()).unwrap_err();
        assert_eq!(refusal.fields(), ["version"], "{refusal}");
        let text = refusal.to_string();
        assert!(text.contains(named) && text.contains(why), "{text}");
    }
    // A version whose configuration was not read (none of the alias's) is not compared.
    let unread = LiveFacts { versions: BTreeMap::from([("2".to_string(), config("x", None))]), ..facts() };
    assert!(Rollout::prepare(request(json!({})), unread, EXEC, t0()).is_ok());
}

/// A version Lambda cannot invoke now (Pending after publishing, Inactive after weeks idle, Failed) is refused
/// before any traffic moves, naming its state and what to do; the version the alias routes to now is not
/// (a rollout is how a broken live version gets replaced).
#[test]
fn prepare_refuses_a_version_that_is_not_active() {
    use canary_core::rollout::VersionState;
    let config = |state: VersionState| canary_core::VersionConfig { role: "r".into(), dead_letter_target: None, state };
    let with = |new: VersionState, old: VersionState| LiveFacts {
        versions: BTreeMap::from([("2".to_string(), config(new)), ("1".to_string(), config(old))]),
        ..facts()
    };
    let cases = [
        (VersionState::Pending, "is Pending", "wait until it is Active"),
        (VersionState::Inactive, "is Inactive", "invoke it once"),
        (VersionState::Failed, "is Failed", "publish a new version"),
        (VersionState::Other("Deleting".into()), "is Deleting", "get-function-configuration"),
    ];
    for (state, what, fix) in cases {
        let refusal = Rollout::prepare(request(json!({})), with(state, VersionState::Active), EXEC, t0()).unwrap_err();
        assert_eq!(refusal.fields(), ["version"], "{refusal}");
        let text = refusal.to_string();
        assert!(text.contains(what) && text.contains(fix) && text.contains("orders-api version 2"), "{text}");
    }
    let live_inactive = with(VersionState::Active, VersionState::Inactive);
    assert!(Rollout::prepare(request(json!({})), live_inactive, EXEC, t0()).is_ok());
    assert_eq!(VersionState::from_lambda(None), VersionState::Active);
    for name in ["Active", "Pending", "Inactive", "Failed", "Deleting"] {
        assert_eq!(VersionState::from_lambda(Some(name)).name(), name);
    }
}

/// An alias with provisioned concurrency: the rollout carries it and says how Lambda shares it at each weight.
#[test]
fn prepare_says_how_provisioned_concurrency_is_shared() {
    let plain = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    assert_eq!(plain.provisioned_note(), None);
    let provisioned = LiveFacts { provisioned_concurrency: Some(20), ..facts() };
    let rollout = Rollout::prepare(request(json!({})), provisioned, EXEC, t0()).unwrap();
    assert_eq!(rollout.provisioned_concurrency, Some(20));
    let note = rollout.provisioned_note().unwrap();
    assert!(note.starts_with("live has 20 provisioned concurrency"), "{note}");
    assert!(note.contains("about 2 at 10%, 4 at 20%") && note.contains("18 at 90%"), "{note}");
    assert!(!note.contains("at 100%"), "the final step is no longer weighted: {note}");
}

#[test]
fn prepare_records_the_original_routing() {
    let rollout = Rollout::prepare(request(json!({})), facts(), EXEC, t0()).unwrap();
    assert_eq!(rollout.original, Routing::to_version("1"));
    assert_eq!((rollout.old_version.as_str(), rollout.step, rollout.step_count), ("1", None, 10));
    assert_eq!(rollout.next, Next::Shift);
    let unjudged = request(json!({"strategy": {"all_at_once": {}}, "health": {"enabled": false}}));
    let at_once = Rollout::prepare(unjudged, facts(), EXEC, t0()).unwrap();
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
