//! Releases through the handlers, against an in-memory account of several functions: moved in step, judged
//! each on its own figures, rolled back together, locked all or none.

use crate::support;

use async_trait::async_trait;
use canary_aws::{Aliases, AwsError, Metrics, Notifier, StateExit, TrafficBefore, WindowQuery};
use canary_core::asl::ErrorName;
use canary_core::safety_net::Action;
use canary_core::{AlarmState, AliasState, HealthFigures, Next, Outcome, Rollout, Routing, VersionFigures};
use canary_functions::{check, move_alias, prepare, rollback, safety_net};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use support::History;

const FUNCTIONS: [&str; 3] = ["orders-api", "orders-worker", "billing"];
const FIRST: &str = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:first";
const SECOND: &str = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:second";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

/// Functions with versions 1 to 3 and an alias `live` at version 1 each.
struct Account {
    aliases: Mutex<BTreeMap<String, AliasState>>,
    /// Every write, in order: the function and the routing written.
    writes: Mutex<Vec<(String, Routing)>>,
    revision: Mutex<u32>,
    /// Functions whose next write fails with a transient error (throttling), once each.
    throttled: Mutex<Vec<String>>,
}

impl Account {
    fn new() -> Account {
        let alias = |f: &str| AliasState {
            routing: Routing::to_version("1"),
            revision_id: "r0".into(),
            description: format!("{f}, production"),
        };
        Account {
            aliases: Mutex::new(FUNCTIONS.iter().map(|f| (f.to_string(), alias(f))).collect()),
            writes: Mutex::new(Vec::new()),
            revision: Mutex::new(0),
            throttled: Mutex::new(Vec::new()),
        }
    }
    fn throttle_next_write(&self, function: &str) {
        self.throttled.lock().unwrap().push(function.to_string());
    }
    fn alias(&self, function: &str) -> AliasState {
        self.aliases.lock().unwrap()[function].clone()
    }
    fn set_by_hand(&self, function: &str, routing: Routing) {
        let mut aliases = self.aliases.lock().unwrap();
        let alias = aliases.get_mut(function).unwrap();
        alias.routing = routing;
        alias.revision_id = "by-hand".into();
    }
    fn writes_to(&self, function: &str) -> Vec<Routing> {
        self.writes.lock().unwrap().iter().filter(|(f, _)| f == function).map(|(_, r)| r.clone()).collect()
    }
}

#[async_trait]
impl Aliases for Account {
    async fn tag(&self, _: &str, _: &str) -> Result<Option<String>, AwsError> {
        Ok(None)
    }
    async fn function_exists(&self, function: &str) -> Result<bool, AwsError> {
        Ok(FUNCTIONS.contains(&function))
    }
    async fn version_config(&self, _: &str, version: &str) -> Result<Option<canary_core::VersionConfig>, AwsError> {
        Ok(["1", "2", "3"].contains(&version).then(canary_core::VersionConfig::default))
    }
    async fn provisioned_concurrency(&self, _: &str, _: &str) -> Result<Option<u32>, AwsError> {
        Ok(None)
    }
    async fn get_alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>, AwsError> {
        Ok(self.aliases.lock().unwrap().get(function).cloned().filter(|_| alias == "live"))
    }
    async fn update_alias(
        &self,
        function: &str,
        _: &str,
        routing: &Routing,
        description: &str,
        revision_id: &str,
    ) -> Result<AliasState, AwsError> {
        let mut throttled = self.throttled.lock().unwrap();
        if let Some(i) = throttled.iter().position(|f| f == function) {
            throttled.remove(i);
            return Err(AwsError::Transient("TooManyRequestsException".into()));
        }
        let mut aliases = self.aliases.lock().unwrap();
        let current = aliases.get_mut(function).unwrap();
        if current.revision_id != revision_id {
            return Err(AwsError::RevisionChanged("PreconditionFailedException".into()));
        }
        let mut revision = self.revision.lock().unwrap();
        *revision += 1;
        *current = AliasState {
            routing: routing.clone(),
            revision_id: format!("r{revision}"),
            description: description.into(),
        };
        self.writes.lock().unwrap().push((function.to_string(), routing.clone()));
        Ok(current.clone())
    }
}

/// Each function's figures: healthy, except those named as failing half their calls.
struct Figures(Vec<&'static str>);

#[async_trait]
impl Metrics for Figures {
    async fn figures(&self, query: &WindowQuery) -> Result<HealthFigures, AwsError> {
        let errors = if self.0.contains(&query.function_name.as_str()) { 50 } else { 0 };
        Ok(HealthFigures {
            new: VersionFigures { invocations: 100, errors, ..Default::default() },
            ..Default::default()
        })
    }
    async fn traffic_before(&self, _: &WindowQuery) -> Result<TrafficBefore, AwsError> {
        Ok(TrafficBefore { minutes: Vec::new(), p99_duration_ms: None })
    }
    async fn alarm_states(&self, _: &[String]) -> Result<Vec<AlarmState>, AwsError> {
        Ok(Vec::new())
    }
}

fn running() -> History {
    with_release_input(History::new(Vec::new(), "RUNNING"))
}

/// Executions started with the release of the API and the worker.
fn with_release_input(history: History) -> History {
    history.with_input(release(&["orders-api", "orders-worker"]).to_string())
}

struct Quiet;

#[async_trait]
impl Notifier for Quiet {
    async fn publish(&self, _: &[canary_core::notice::Notice]) -> Result<(), AwsError> {
        Ok(())
    }
}

fn release(functions: &[&str]) -> Value {
    let functions: Vec<Value> =
        functions.iter().map(|f| json!({"function": f, "alias": "live", "version": "2"})).collect();
    json!({"functions": functions, "strategy": {"linear": {"percent": 50, "interval_seconds": 60}},
           "health": {"metrics_delay_seconds": 60}})
}

/// Runs the state machine's loop over the handlers until the release is done or has been rolled back.
async fn run(
    account: &Account,
    mut state: Rollout,
    figures: &Figures,
) -> Result<Rollout, canary_functions::ControllerError> {
    let mut now = t0();
    loop {
        state = match state.next {
            Next::Shift | Next::Promote => move_alias(state.clone(), state.next, account, &running(), now).await?,
            Next::Hold => {
                now += Duration::seconds(state.wait_seconds as i64);
                check(state, figures, account, now).await?
            }
            Next::Rollback => return Ok(rollback(state, account, &Quiet, now).await?.0),
            Next::Done => return Ok(state),
            other => panic!("{other:?}"),
        };
    }
}

#[tokio::test]
async fn a_healthy_release_locks_moves_and_promotes_every_function_together() {
    let account = Account::new();
    let input = json!({"request": release(&["orders-api", "orders-worker"]), "execution": FIRST});
    let state = prepare(input, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap();
    assert_eq!(state.width(), 2);
    for function in ["orders-api", "orders-worker"] {
        assert_eq!(
            account.alias(function).description,
            canary_core::lock::marker(FIRST, &format!("{function}, production"))
        );
    }
    let done = run(&account, state, &Figures(Vec::new())).await.unwrap();
    assert_eq!(done.report.as_ref().unwrap().outcome, Outcome::Promoted);
    for function in ["orders-api", "orders-worker"] {
        let alias = account.alias(function);
        assert_eq!((alias.routing, alias.description), (Routing::to_version("2"), format!("{function}, production")));
        let percents: Vec<f64> = account.writes_to(function).iter().map(|r| r.percent_of("2")).collect();
        assert_eq!(percents, [0.0, 50.0, 100.0, 100.0], "the lock, both steps in step, the release");
    }
    assert_eq!(account.alias("billing").description, "billing, production", "not in the release");
}

#[tokio::test]
async fn one_bad_version_rolls_back_every_function_and_is_named() {
    let account = Account::new();
    let input = json!({"request": release(&["orders-api", "orders-worker"]), "execution": FIRST});
    let state = prepare(input, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap();
    let ended = run(&account, state, &Figures(vec!["orders-worker"])).await.unwrap();
    let report = ended.report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert!(report.reason.unwrap().message.starts_with("orders-worker: "));
    for function in ["orders-api", "orders-worker"] {
        let alias = account.alias(function);
        assert_eq!((alias.routing, alias.description), (Routing::to_version("1"), format!("{function}, production")));
    }
    assert_eq!(report.functions.len(), 2);
}

#[tokio::test]
async fn an_alias_changed_by_hand_is_handed_over_and_the_others_restored() {
    let account = Account::new();
    let shifted = api_set_by_hand_after_the_first_shift(&account).await;
    // The next move finds it and fails; the rollback restores the worker and leaves the API as set.
    let at = t0() + Duration::seconds(shifted.wait_seconds as i64);
    let passed = check(shifted, &Figures(Vec::new()), &account, at).await.unwrap();
    assert_eq!(passed.next, Next::Promote);
    let error = move_alias(passed.clone(), Next::Promote, &account, &running(), at).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently);
    let error = rollback(passed, &account, &Quiet, at).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently);
    assert!(error.to_string().starts_with("orders-api: "), "{error}");
    assert_eq!(account.alias("orders-api").routing, Routing::to_version("3"));
    assert_eq!(account.alias("orders-api").description, "orders-api, production", "its lock comes off");
    let worker = account.alias("orders-worker");
    assert_eq!((worker.routing, worker.description), (Routing::to_version("1"), "orders-worker, production".into()));
}

#[tokio::test]
async fn a_stopped_release_is_restored_by_the_safety_net_everywhere() {
    let account = Account::new();
    let input = json!({"request": release(&["orders-api", "orders-worker"]), "execution": FIRST});
    let state = prepare(input, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &account, &running(), t0()).await.unwrap();
    let history = History::new(
        vec![StateExit {
            event_id: 5,
            state_name: "Shift".into(),
            output: Some(serde_json::to_string(&shifted).unwrap()),
            at: t0(),
        }],
        "ABORTED",
    );
    let event = json!({"detail": {"executionArn": FIRST, "status": "ABORTED"}});
    let answer = safety_net(event.clone(), &history, &account, &Quiet, t0()).await.unwrap();
    let handled: canary_core::safety_net::Handled = serde_json::from_value(answer).unwrap();
    assert!(matches!(handled.action, Action::Restored { .. }), "{handled:?}");
    for function in ["orders-api", "orders-worker"] {
        let alias = account.alias(function);
        assert_eq!((alias.routing, alias.description), (Routing::to_version("1"), format!("{function}, production")));
    }
    // Delivered again: nothing more is written.
    let writes = account.writes.lock().unwrap().len();
    safety_net(event, &history, &account, &Quiet, t0()).await.unwrap();
    assert_eq!(account.writes.lock().unwrap().len(), writes);
}

#[tokio::test]
async fn the_safety_net_releases_every_lock_of_a_release_that_never_moved() {
    let account = Account::new();
    let input = json!({"request": release(&["orders-api", "orders-worker"]), "execution": FIRST});
    prepare(input, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap();
    // It stopped before Prepare's output was recorded: no rollout state in its history.
    let event = json!({"detail": {"executionArn": FIRST, "status": "ABORTED"}});
    let answer = safety_net(event, &with_release_input(History::new(Vec::new(), "ABORTED")), &account, &Quiet, t0())
        .await
        .unwrap();
    assert_eq!(answer["action"], "released", "{answer}");
    for function in ["orders-api", "orders-worker"] {
        assert_eq!(account.alias(function).description, format!("{function}, production"));
    }
}

#[tokio::test]
async fn two_releases_sharing_a_function_cannot_both_hold_it() {
    let account = Account::new();
    let first = json!({"request": release(&["orders-worker", "orders-api"]), "execution": FIRST});
    prepare(first, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap();
    let second = json!({"request": release(&["billing", "orders-api"]), "execution": SECOND});
    let error = prepare(second, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::RequestRefused);
    let message = error.to_string();
    assert!(message.contains("functions[1].alias: another rollout of orders-api:live is running"), "{message}");
    assert_eq!(account.alias("billing").description, "billing, production", "nothing locked: all or none");
    assert!(account.writes_to("billing").is_empty());
}

#[tokio::test]
async fn a_lock_lost_part_way_gives_back_those_taken_and_is_retried() {
    let input = json!({"request": release(&["orders-api", "billing"]), "execution": FIRST});
    // Locks go in name order: billing, then orders-api, which someone changes right after each read of it
    // (a racing Prepare): its conditional lock is refused, twice, and billing's is given back.
    let account = Account::new();
    let racing = Racing { account: &account, function: "orders-api" };
    let error = prepare(input, &racing, &Figures(Vec::new()), &running(), t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::TransientAwsError, "{error}");
    assert_eq!(account.alias("billing").description, "billing, production", "the lock taken was given back");
    assert_eq!(account.writes_to("billing").len(), 2, "taken, then given back");
}

/// An account where someone changes one alias right after every read of it, as a racing Prepare would.
struct Racing<'a> {
    account: &'a Account,
    function: &'static str,
}

#[async_trait]
impl Aliases for Racing<'_> {
    async fn tag(&self, function_arn: &str, key: &str) -> Result<Option<String>, AwsError> {
        self.account.tag(function_arn, key).await
    }
    async fn function_exists(&self, function: &str) -> Result<bool, AwsError> {
        self.account.function_exists(function).await
    }
    async fn version_config(&self, f: &str, version: &str) -> Result<Option<canary_core::VersionConfig>, AwsError> {
        self.account.version_config(f, version).await
    }
    async fn provisioned_concurrency(&self, f: &str, a: &str) -> Result<Option<u32>, AwsError> {
        self.account.provisioned_concurrency(f, a).await
    }
    async fn get_alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>, AwsError> {
        let read = self.account.get_alias(function, alias).await;
        if function == self.function {
            let mut aliases = self.account.aliases.lock().unwrap();
            let alias = aliases.get_mut(function).unwrap();
            alias.revision_id = format!("{}-moved", alias.revision_id);
        }
        read
    }
    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &Routing,
        description: &str,
        revision_id: &str,
    ) -> Result<AliasState, AwsError> {
        self.account.update_alias(function, alias, routing, description, revision_id).await
    }
}

#[tokio::test]
async fn a_release_refused_on_its_retry_gives_back_the_locks_its_first_attempt_took() {
    let account = Account::new();
    // Its first attempt locked billing (first in lock order) and timed out; meanwhile another rollout took
    // orders-api. The retried Prepare is refused, and billing is not left held.
    let lock = |function: &str, execution: &str| {
        let mut aliases = account.aliases.lock().unwrap();
        let alias = aliases.get_mut(function).unwrap();
        alias.description = canary_core::lock::marker(execution, &format!("{function}, production"));
        alias.revision_id = format!("locked-by-{}", execution.rsplit(':').next().unwrap());
    };
    lock("billing", FIRST);
    lock("orders-api", SECOND);
    let input = json!({"request": release(&["orders-api", "billing"]), "execution": FIRST});
    let error = prepare(input, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::RequestRefused);
    assert!(error.to_string().contains("functions[0].alias: another rollout of orders-api:live is running"), "{error}");
    assert_eq!(account.alias("billing").description, "billing, production", "its own lock given back");
    assert!(account.alias("orders-api").description.contains(SECOND), "the other's lock stays");
}

/// One alias of a release taken over by hand while another's write meets a transient error: the rollback fails
/// transiently (the state machine retries it), never masked by the hand-over; the retry restores the second
/// exactly and unlocks it, leaves the first as the person set it, and only then reports the hand-over.
#[tokio::test]
async fn a_hand_over_never_masks_a_transient_failure_of_another_alias() {
    let account = Account::new();
    let shifted = api_set_by_hand_after_the_first_shift(&account).await;
    account.throttle_next_write("orders-worker");
    let error = rollback(shifted.clone(), &account, &Quiet, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::TransientAwsError, "{error}");
    assert_ne!(account.alias("orders-worker").routing, Routing::to_version("1"), "not restored yet");
    let error = rollback(shifted, &account, &Quiet, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently, "{error}");
    assert!(error.to_string().starts_with("orders-api: "), "{error}");
    let worker = account.alias("orders-worker");
    assert_eq!((worker.routing, worker.description.as_str()), (Routing::to_version("1"), "orders-worker, production"));
    let api = account.alias("orders-api");
    assert_eq!((api.routing, api.description.as_str()), (Routing::to_version("3"), "orders-api, production"));
}

/// A release of the API and the worker, moved one step; then the API's alias pointed at version 3 by hand.
async fn api_set_by_hand_after_the_first_shift(account: &Account) -> Rollout {
    let input = json!({"request": release(&["orders-api", "orders-worker"]), "execution": FIRST});
    let state = prepare(input, account, &Figures(Vec::new()), &running(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, account, &running(), t0()).await.unwrap();
    account.set_by_hand("orders-api", Routing::to_version("3"));
    shifted
}

// ---- The rollout state is a wire format ----------------------------------------------------------------
//
// Step Functions keeps a rollout's state between tasks, so a controller deployed mid-rollout reads a state
// an earlier one wrote. `tests/states/` keeps states written by earlier controllers, each with the aliases
// as they were then; today's handlers must carry every one of them on to the end. Add a file when the state
// changes shape (`CANARY_WRITE_STATES=DIR cargo test -p canary-functions --test functions -- --ignored
// write_states`); never rewrite a stored one: it is the contract with rollouts running now.

/// The states today's controller writes at the points a deploy may meet a rollout: prepared, holding after
/// a shift, waiting at an approval gate; one function and a release. Written to `CANARY_WRITE_STATES`.
#[tokio::test]
#[ignore = "writes the wire-format fixtures: run by hand with CANARY_WRITE_STATES=DIR"]
async fn write_states() {
    let dir = std::path::PathBuf::from(std::env::var("CANARY_WRITE_STATES").expect("CANARY_WRITE_STATES=DIR"));
    let gated = |mut request: Value| {
        request["approval"] = json!({"before_percent": [100]});
        request
    };
    let single = || {
        json!({"function": "orders-api", "alias": "live", "version": "2",
            "strategy": {"linear": {"percent": 50, "interval_seconds": 60}}, "health": {"metrics_delay_seconds": 60}})
    };
    let cases = [
        ("single-prepared", single(), 0),
        ("single-holding", single(), 1),
        ("single-at-gate", gated(single()), 2),
        ("release-holding", release(&["orders-api", "orders-worker"]), 1),
        ("release-at-gate", gated(release(&["orders-api", "orders-worker"])), 2),
    ];
    for (name, request, tasks) in cases {
        let account = Account::new();
        let input = json!({"request": request, "execution": FIRST});
        let mut state = prepare(input, &account, &Figures(Vec::new()), &running(), t0()).await.unwrap();
        for _ in 0..tasks {
            state = match state.next {
                Next::Shift | Next::Promote => {
                    move_alias(state.clone(), state.next, &account, &running(), t0()).await.unwrap()
                }
                Next::Hold => {
                    let at = t0() + Duration::seconds(state.wait_seconds as i64);
                    check(state, &Figures(Vec::new()), &account, at).await.unwrap()
                }
                other => panic!("{other:?}"),
            };
        }
        let aliases: BTreeMap<String, AliasState> =
            FUNCTIONS.iter().map(|f| (f.to_string(), account.alias(f))).collect();
        let stored = json!({"written_by": format!("canary-functions {}", env!("CARGO_PKG_VERSION")),
            "next": state.next, "aliases": aliases, "state": state});
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&stored).unwrap() + "\n").unwrap();
    }
}

/// Every key an earlier controller wrote is still in the state today's writes back (none renamed or dropped
/// silently), recursively; the path of the first one missing.
fn dropped_key(before: &Value, after: &Value, path: &str) -> Option<String> {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => old.iter().find_map(|(key, value)| match new.get(key) {
            None => Some(format!("{path}.{key}")),
            Some(now) => dropped_key(value, now, &format!("{path}.{key}")),
        }),
        (Value::Array(old), Value::Array(new)) => {
            old.iter().zip(new).enumerate().find_map(|(i, (o, n))| dropped_key(o, n, &format!("{path}[{i}]")))
        }
        _ => None,
    }
}

#[tokio::test]
async fn states_stored_by_earlier_controllers_are_carried_on_to_the_end() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/states");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "the stored states are there: {files:?}");
    for path in files {
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let account = Account::new();
        let aliases: BTreeMap<String, AliasState> = serde_json::from_value(stored["aliases"].clone()).unwrap();
        *account.aliases.lock().unwrap() = aliases;
        // Read exactly as the next task reads its input.
        let mut state = canary_functions::state_from(stored["state"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let written_back = serde_json::to_value(&state).unwrap();
        assert_eq!(dropped_key(&stored["state"], &written_back, "state"), None, "{name}: a field was lost");
        let functions: Vec<String> = state.function_views().iter().map(|v| v.request.function.clone()).collect();
        let mut now = t0() + Duration::minutes(5);
        for _ in 0..100 {
            state = match state.next {
                Next::Shift | Next::Promote => {
                    move_alias(state.clone(), state.next, &account, &running(), now).await.unwrap()
                }
                Next::Hold => {
                    now += Duration::seconds(state.wait_seconds as i64);
                    check(state, &Figures(Vec::new()), &account, now).await.unwrap()
                }
                Next::AwaitApproval => {
                    // What the state machine hands the gate once an operator answers "promote" (ResultPath $.approval).
                    let mut answered = serde_json::to_value(&state).unwrap();
                    answered["approval"] = canary_core::rollout::Decision::Promote.answer();
                    let applied = canary_functions::gate(answered, &Quiet, now).await.unwrap();
                    canary_functions::state_from(applied).unwrap()
                }
                Next::Done => break,
                other => panic!("{name}: {other:?}"),
            };
        }
        assert_eq!(state.next, Next::Done, "{name}");
        assert_eq!(state.report.as_ref().map(|r| r.outcome), Some(Outcome::Promoted), "{name}");
        for function in functions {
            let alias = account.alias(&function);
            assert_eq!(alias.routing, Routing::to_version("2"), "{name}: {function}");
            assert_eq!(alias.description, format!("{function}, production"), "{name}: {function}'s own description");
        }
    }
}
