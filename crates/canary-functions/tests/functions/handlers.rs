//! The handlers against an in-memory Lambda and CloudWatch.

use crate::safety_net::{Described, ended, exit};
use crate::support::{self, FakeLambda, metrics, request, t0};

use async_trait::async_trait;
use canary_aws::{AwsError, HookRunner, Notifier};
use canary_core::asl::ErrorName;
use canary_core::safety_net::Action;
use canary_core::{Next, Outcome, Routing};
use canary_functions::{ControllerError, check, hook, move_alias, prepare, rollback, safety_net, state_from};
use chrono::Duration;
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use support::History;

#[tokio::test]
async fn bad_requests_are_refused_with_nothing_written() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"alias": "live", "version": "2"}), "function"),
        (json!({"function": "nope", "alias": "live", "version": "2"}), "function"),
        (json!({"function": "orders", "alias": "live", "version": "9"}), "version"),
        (json!({"function": "orders", "alias": "gone", "version": "2"}), "alias"),
        (json!({"function": "orders", "alias": "live", "version": "1"}), "version"),
        (json!({"function": "orders", "alias": "live", "version": "2", "stratgy": {}}), "stratgy"),
        (
            json!({"function": "orders", "alias": "live", "version": "2", "health": {"alarms": ["nope"]}}),
            "health.alarms[0]",
        ),
    ];
    let lambda = FakeLambda::new();
    for (input, field) in cases {
        let error = prepare(input.clone(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap_err();
        assert_eq!(error.error_type(), ErrorName::RequestRefused, "{input}");
        let ControllerError::Refused(refusal) = &error else { panic!("{error:?}") };
        assert_eq!(refusal.fields(), [field], "{input}");
        let diagnostic = Diagnostic::from(error);
        assert!(diagnostic.error_message.contains(field), "{}", diagnostic.error_message);
    }
    assert_eq!(lambda.writes(), 0);
    assert_eq!(lambda.routing(), Routing::to_version("1"));
}

#[tokio::test]
async fn an_alias_already_shared_is_refused() {
    let lambda = FakeLambda::new();
    lambda.set_by_someone_else(Routing {
        function_version: "1".into(),
        additional_version_weights: BTreeMap::from([("3".into(), 0.1)]),
    });
    let error = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap_err();
    assert!(error.to_string().contains("another rollout"), "{error}");
    assert_eq!(lambda.writes(), 0);
}

#[tokio::test]
async fn a_full_rollout_through_the_handlers() {
    let lambda = FakeLambda::new();
    let healthy = metrics(100, 0);
    let mut state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let mut now = t0();
    while state.next != Next::Done {
        state = match state.next {
            Next::Shift | Next::Promote => {
                move_alias(state.clone(), state.next, &lambda, &running(), now).await.unwrap()
            }
            Next::Hold => {
                now += Duration::seconds(state.wait_seconds as i64);
                check(state, &healthy, &lambda, now).await.unwrap()
            }
            other => panic!("{other:?}"),
        };
    }
    assert_eq!(lambda.routing(), Routing::to_version("2"));
    assert_eq!(lambda.writes(), 4, "the lock, two moves, and the release");
    assert_eq!(lambda.description(), "orders, production", "the alias's own description is back");
    assert_eq!(state.report.unwrap().outcome, Outcome::Promoted);
    let queries = healthy.0.lock().unwrap();
    assert_eq!(queries.len(), 1);
    assert_eq!(
        (queries[0].function_name.as_str(), queries[0].new_version.as_str(), queries[0].baseline_version.as_str()),
        ("orders", "2", "1")
    );
    assert_eq!(queries[0].end - queries[0].start, Duration::seconds(60), "the whole step window");
}

#[tokio::test]
async fn a_retried_shift_writes_nothing_more() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let first = move_alias(state.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap();
    // Step Functions retries with the same input when the first answer was lost.
    let retried = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    assert_eq!(lambda.writes(), 2, "the lock and one move");
    assert_eq!(first.revision_id, retried.revision_id);
    assert_eq!(first.expected_routing(), retried.expected_routing());
}

#[tokio::test]
async fn a_concurrent_change_is_reported_and_kept() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let hotfix = Routing::to_version("3");
    lambda.set_by_someone_else(hotfix.clone());
    let mut after = shifted.after_check(None, t0());
    assert_eq!(after.next, Next::Promote);
    let error = move_alias(after.clone(), Next::Promote, &lambda, &running(), t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently);
    after.error = Some(canary_core::rollout::TaskError {
        error: ErrorName::AliasChangedConcurrently.as_str().into(),
        cause: None,
    });
    let error = rollback(after, &lambda, &quiet_notifier(), t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently);
    assert_eq!(lambda.routing(), hotfix, "someone else's change is never overwritten");
}

#[tokio::test]
async fn a_revision_that_moves_between_read_and_write_is_retryable() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    lambda.fail_next(AwsError::Transient("Rate exceeded".into()));
    let error = move_alias(state.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::TransientAwsError);
    lambda.fail_next(AwsError::Other("AccessDeniedException".into()));
    assert_eq!(
        move_alias(state.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap_err().error_type(),
        ErrorName::AwsError
    );
    // The write is refused (the revision moved), the alias read shows it as this rollout left it, and the
    // write planned on that read finds yet another revision (a description edit, say).
    lambda.fail_next(AwsError::RevisionChanged("PreconditionFailedException".into()));
    lambda.pass_next();
    lambda.fail_next(AwsError::RevisionChanged("PreconditionFailedException".into()));
    let error = move_alias(state.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap_err();
    assert_eq!(
        error.error_type(),
        ErrorName::TransientAwsError,
        "Step Functions retries it, and the retry reads afresh"
    );
    assert!(lambda.failures.lock().unwrap().is_empty(), "the write was the call that failed");
    assert_eq!(lambda.writes(), 1, "only Prepare's lock");
}

#[tokio::test]
async fn a_move_writes_first_and_reads_the_alias_only_when_the_write_is_refused() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let reads = *lambda.reads.lock().unwrap();
    let shifted = move_alias(state.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap();
    assert_eq!((*lambda.reads.lock().unwrap() - reads, lambda.writes()), (0, 2), "one call: the conditional write");
    // Retried after that write landed (its answer lost): the write is refused, the read shows the move done.
    let retried = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    assert_eq!((*lambda.reads.lock().unwrap() - reads, lambda.writes()), (1, 2), "read once, nothing written");
    assert_eq!(retried.revision_id, shifted.revision_id);
    // Someone else moved the alias: refused, read, reported, never overwritten.
    let checked = check(shifted, &metrics(100, 0), &lambda, t0() + Duration::seconds(600)).await.unwrap();
    assert!(matches!(checked.next, Next::Shift | Next::Promote), "{:?}", checked.next);
    lambda.set_by_someone_else(Routing::to_version("1"));
    let error = move_alias(checked.clone(), checked.next, &lambda, &running(), t0() + Duration::seconds(601))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently);
    assert_eq!(*lambda.reads.lock().unwrap() - reads, 2, "the refused write made it read");
    assert_eq!(lambda.routing(), Routing::to_version("1"), "the foreign change stands");
}

#[tokio::test]
async fn rollback_restores_the_original_and_explains_why() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let failed = check(shifted, &metrics(100, 40), &lambda, t0() + Duration::seconds(5)).await.unwrap();
    assert_eq!(failed.next, Next::Rollback);
    let done = rollback(failed.clone(), &lambda, &quiet_notifier(), t0()).await.unwrap().0;
    assert_eq!(lambda.routing(), Routing::to_version("1"));
    assert_eq!(lambda.description(), "orders, production");
    let report = done.report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(report.routing, Routing::to_version("1"));
    assert_eq!(report.reason.unwrap().signal, canary_core::health::Signal::ErrorRate);
    assert_eq!(report.warnings, Vec::<String>::new(), "version 1 is Active");
    // Retrying the rollback finds the alias restored and writes nothing.
    let writes = lambda.writes();
    rollback(failed, &lambda, &quiet_notifier(), t0()).await.unwrap();
    assert_eq!(lambda.writes(), writes);
}

/// A new version Lambda cannot invoke yet is refused before anything moves; an old version that stopped
/// serving is still restored exactly, and the report says so.
#[tokio::test]
async fn versions_that_cannot_serve_are_refused_and_a_rollback_to_one_says_so() {
    let lambda = FakeLambda::new();
    lambda.states.lock().unwrap().insert("2".into(), canary_core::VersionState::Pending);
    let refused = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap_err();
    let ControllerError::Refused(refusal) = refused else { panic!("{refused:?}") };
    assert_eq!(refusal.fields(), ["version"]);
    assert!(refusal.to_string().contains("orders version 2 is Pending"), "{refusal}");
    assert_eq!(lambda.writes(), 0, "nothing written");
    lambda.states.lock().unwrap().clear();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let failed = check(shifted, &metrics(100, 40), &lambda, t0() + Duration::seconds(5)).await.unwrap();
    lambda.states.lock().unwrap().insert("1".into(), canary_core::VersionState::Inactive);
    let done = rollback(failed, &lambda, &quiet_notifier(), t0()).await.unwrap().0;
    assert_eq!(lambda.routing(), Routing::to_version("1"), "restored exactly all the same");
    let warnings = done.report.unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("restored to orders version 1, which is Inactive"), "{warnings:?}");
}

#[tokio::test]
async fn an_alarm_that_fires_during_the_rollout_fails_the_check_whatever_the_traffic() {
    let lambda = FakeLambda::new();
    let mut input = request();
    input["health"]["alarms"] = json!(["orders-5xx"]);
    let state = prepare(input, &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let checked = check(shifted, &metrics(100, 0), &lambda, t0() + Duration::hours(2)).await.unwrap();
    assert_eq!(checked.next, Next::Rollback);
    let record = checked.history.last().unwrap();
    // The alarm's state is kept in its check (the figures keep the versions' counts).
    let alarm = record.checks.iter().find(|c| c.signal == canary_core::health::Signal::Alarm).unwrap();
    assert!(!alarm.passed && alarm.message.contains("orders-5xx"), "{alarm:?}");
    assert_eq!(checked.failure.unwrap().signal, canary_core::health::Signal::Alarm);
}

#[tokio::test]
async fn states_that_do_not_fit_the_handler_are_rejected() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    assert_eq!(
        move_alias(state.clone(), Next::Promote, &lambda, &running(), t0()).await.unwrap_err().error_type(),
        ErrorName::InvalidState
    );
    assert_eq!(check(state, &metrics(1, 0), &lambda, t0()).await.unwrap_err().error_type(), ErrorName::InvalidState);
    assert_eq!(state_from(json!({"x": 1})).unwrap_err().error_type(), ErrorName::InvalidState);
    lambda.set_by_someone_else(Routing::to_version("1"));
    *lambda.alias.lock().unwrap() = None;
    let state = prepare(request(), &FakeLambda::new(), &metrics(0, 0), &idle(), t0()).await.unwrap();
    assert_eq!(
        move_alias(state.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap_err().error_type(),
        ErrorName::AliasChangedConcurrently
    );
    assert_eq!(
        rollback(state, &lambda, &quiet_notifier(), t0()).await.unwrap_err().error_type(),
        ErrorName::AliasChangedConcurrently
    );
}

pub(crate) fn idle() -> History {
    History::new(Vec::new(), "SUCCEEDED")
}

/// The safety net's answer to an execution's ending.
pub(crate) fn handled(answer: Value) -> canary_core::safety_net::Handled {
    serde_json::from_value(answer).expect("the safety net answers what it did for the execution")
}

/// The execution of the rollout in hand, still running.
pub(crate) fn running() -> History {
    History::new(Vec::new(), "RUNNING")
}

pub(crate) const FIRST: &str = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:first";
pub(crate) const SECOND: &str = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:second";

#[tokio::test]
async fn a_second_rollout_of_a_locked_alias_is_refused_by_the_state_machine() {
    let lambda = FakeLambda::new();
    let running = History::new(Vec::new(), "RUNNING");
    let first = prepare(json!({"request": request(), "execution": FIRST}), &lambda, &metrics(0, 0), &running, t0())
        .await
        .unwrap();
    assert_eq!(lambda.description(), canary_core::lock::marker(FIRST, "orders, production"));
    let second = json!({"request": request(), "execution": SECOND});
    let error = prepare(second.clone(), &lambda, &metrics(0, 0), &running, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::RequestRefused);
    assert!(error.to_string().contains("alias: another rollout of orders:live is running: "), "{error}");
    assert!(error.to_string().contains(FIRST), "{error}");
    assert_eq!(lambda.writes(), 1, "only the first one's lock");
    // The first one's retried Prepare finds its own lock, and goes on.
    let again = json!({"request": request(), "execution": FIRST});
    let again = prepare(again, &lambda, &metrics(0, 0), &running, t0()).await.unwrap();
    assert_eq!(again.revision_id, first.revision_id);
    assert_eq!(lambda.writes(), 1);
    // The first one ended without releasing it (its event lost, the sweep not yet run): the stale lock is not
    // taken over, since what the alias routes was never judged to the end; the refusal names the ended
    // execution and how to have its ending handled. Once it is (here: its lock released), the second goes on.
    let ended = History::new(Vec::new(), "ABORTED");
    let error = prepare(second.clone(), &lambda, &metrics(0, 0), &ended, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::RequestRefused);
    assert!(error.to_string().contains(&format!("{FIRST}, which has ended")), "{error}");
    assert_eq!(lambda.writes(), 1, "nothing written");
    let stopped = Described { status: "ABORTED", input: request(), ended: Vec::new() };
    let event = json!({"detail": {"executionArn": FIRST, "status": "ABORTED"}});
    let result = handled(safety_net(event, &stopped, &lambda, &quiet_notifier(), t0()).await.unwrap());
    assert_eq!(result.action, Action::Released);
    let taken = prepare(second, &lambda, &metrics(0, 0), &ended, t0()).await.unwrap();
    assert_eq!(lambda.description(), canary_core::lock::marker(SECOND, "orders, production"));
    assert_eq!(taken.original_description, "orders, production");
}

#[tokio::test]
async fn a_lock_lost_to_a_simultaneous_prepare_is_retried_then_refused() {
    // Two executions read revision r0 at once; the other one's lock lands first, so this one's conditional
    // write fails. Step Functions retries it (TransientAwsError), and the retry reads the other's lock.
    let lambda = FakeLambda::new();
    let running = History::new(Vec::new(), "RUNNING");
    for _ in 0..4 {
        lambda.pass_next(); // function, version, alias, the alias's version (Lambda's rules for weighting both)
    }
    // The lock written on the revision just read is refused; the alias read again; the write planned on it
    // refused again (the other's lock kept moving it): a transient failure, for Step Functions to retry.
    lambda.fail_next(AwsError::RevisionChanged("PreconditionFailedException".into()));
    lambda.pass_next();
    lambda.fail_next(AwsError::RevisionChanged("PreconditionFailedException".into()));
    let mine = json!({"request": request(), "execution": SECOND});
    let error = prepare(mine.clone(), &lambda, &metrics(0, 0), &running, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::TransientAwsError);
    prepare(json!({"request": request(), "execution": FIRST}), &lambda, &metrics(0, 0), &running, t0()).await.unwrap();
    let error = prepare(mine, &lambda, &metrics(0, 0), &running, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::RequestRefused);
    assert_eq!(lambda.writes(), 1, "exactly one lock was written");
}

/// Hook functions: `smoke` passes, `broken` fails; every payload is kept.
pub(crate) struct FakeHooks(Mutex<Vec<(String, Value)>>);

#[async_trait]
impl HookRunner for FakeHooks {
    async fn run(&self, function: &str, payload: &Value) -> Result<canary_core::HookOutcome, AwsError> {
        self.0.lock().unwrap().push((function.to_string(), payload.clone()));
        Ok(canary_core::HookOutcome { passed: function == "smoke", message: format!("{function} answered") })
    }
}

#[tokio::test]
async fn a_failing_pre_traffic_hook_rolls_back_before_any_traffic_moves() {
    let lambda = FakeLambda::new();
    let hooks = FakeHooks(Mutex::new(Vec::new()));
    let mut input = request();
    input["hooks"] = json!({"pre_traffic": "smoke"});
    let state = prepare(input.clone(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    assert_eq!(state.next, Next::PreTraffic);
    let mut broken = state.clone();
    broken.request.hooks.pre_traffic = Some("broken".into());
    let failed = hook(broken, &hooks, &lambda, t0()).await.unwrap();
    assert_eq!(failed.next, Next::Rollback);
    let (function, payload) = hooks.0.lock().unwrap()[0].clone();
    assert_eq!(function, "broken");
    assert_eq!(
        payload,
        json!({"hook": "pre_traffic", "function": "orders", "alias": "live", "old_version": "1", "new_version": "2"})
    );
    let rolled_back = rollback(failed, &lambda, &quiet_notifier(), t0()).await.unwrap().0;
    assert_eq!(lambda.writes(), 2, "traffic never moved: the lock was taken and given back");
    assert_eq!((lambda.routing(), lambda.description()), (Routing::to_version("1"), "orders, production".into()));
    assert_eq!(rolled_back.report.unwrap().reason.unwrap().signal, canary_core::health::Signal::Hook);
    // The rollback gave the lock back: a rollout that goes on is prepared again.
    let mut passing = prepare(input.clone(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    passing.request.hooks.pre_traffic = Some("smoke".into());
    assert_eq!(hook(passing.clone(), &hooks, &lambda, t0()).await.unwrap().next, Next::Shift);
    let moved = move_alias(hook(passing, &hooks, &lambda, t0()).await.unwrap(), Next::Shift, &lambda, &running(), t0())
        .await
        .unwrap();
    assert_eq!(
        hook(moved, &hooks, &lambda, t0()).await.unwrap_err().error_type(),
        ErrorName::InvalidState,
        "no hook is due"
    );
    input["hooks"] = json!({"post_traffic": "nowhere"});
    let error = prepare(input, &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap_err();
    assert!(error.to_string().contains("hooks.post_traffic"), "{error}");
}

/// Keeps what would be published; publishing fails when told to, which must not fail the task.
pub(crate) struct FakeNotifier(pub(crate) Mutex<Vec<&'static str>>, pub(crate) bool);

pub(crate) fn quiet_notifier() -> FakeNotifier {
    FakeNotifier(Mutex::new(Vec::new()), false)
}

#[async_trait]
impl Notifier for FakeNotifier {
    async fn publish(&self, notices: &[canary_core::notice::Notice]) -> Result<(), AwsError> {
        // Every attempt is recorded, the failed ones too.
        self.0.lock().unwrap().extend(notices.iter().map(|n| n.detail_type.as_str()));
        if self.1 {
            return Err(AwsError::Transient("EventBridge is down".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn announcing_publishes_and_never_fails_the_task() {
    use canary_core::notice::Task;
    use canary_functions::announce;
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let notifier = quiet_notifier();
    announce(&notifier, Task::Prepare, &state).await;
    announce(&notifier, Task::Move, &state).await;
    assert_eq!(*notifier.0.lock().unwrap(), ["Rollout Started"]);
    // EventBridge failing: the events were attempted, and announce returned; it has no error to give the
    // task (its type says so), so the rollout goes on.
    let failing = FakeNotifier(Mutex::new(Vec::new()), true);
    let () = announce(&failing, Task::Prepare, &state).await;
    assert_eq!(*failing.0.lock().unwrap(), ["Rollout Started"]);
    // The safety net announces the restore it made, once: a stopped execution was aborted by someone.
    let shifted = move_alias(state.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let history = History::new(vec![exit(5, "Shift", &serde_json::to_string(&shifted).unwrap())], "ABORTED");
    let notifier = quiet_notifier();
    safety_net(ended("ABORTED"), &history, &lambda, &notifier, t0()).await.unwrap();
    assert_eq!(*notifier.0.lock().unwrap(), ["Rollout Aborted"]);
    // Delivered again (EventBridge, or canaryctl abort's own call racing the event): nothing to write, and
    // nothing more is announced.
    let again = handled(safety_net(ended("ABORTED"), &history, &lambda, &notifier, t0()).await.unwrap());
    assert!(matches!(again.action, Action::None { .. }), "{again:?}");
    assert_eq!(*notifier.0.lock().unwrap(), ["Rollout Aborted"], "one announcement per ending");
    // One that timed out was rolled back.
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let history = History::new(vec![exit(5, "Shift", &serde_json::to_string(&shifted).unwrap())], "TIMED_OUT");
    let notifier = quiet_notifier();
    safety_net(ended("TIMED_OUT"), &history, &lambda, &notifier, t0()).await.unwrap();
    assert_eq!(*notifier.0.lock().unwrap(), ["Rollout Rolled Back"]);
}

#[tokio::test]
async fn the_approval_gates_task_token_is_never_logged_or_returned() {
    let lambda = FakeLambda::new();
    let mut input = request();
    input["approval"] = json!({"before_percent": [50]});
    let state = prepare(input, &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    assert_eq!(state.next, Next::AwaitApproval);
    let token = "AQCEAAAAKgAAAAMAAAAAAAAAAbearer-credential";
    let notifier = quiet_notifier();
    let paused = canary_functions::gate(json!({"state": state, "token": token}), &notifier, t0()).await.unwrap();
    assert!(!paused.to_string().contains(token), "{paused}");
    assert_eq!(*notifier.0.lock().unwrap(), ["Rollout Paused For Approval"], "the pause is announced");
    assert!(paused["how_to_continue"].as_str().unwrap().contains("canaryctl promote"), "{paused}");
}

/// A notifier whose endpoint never answers.
pub(crate) struct HangingNotifier;

#[async_trait]
impl Notifier for HangingNotifier {
    async fn publish(&self, _: &[canary_core::notice::Notice]) -> Result<(), AwsError> {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn publishing_is_bounded_so_a_task_never_times_out_after_its_write() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let started = tokio::time::Instant::now();
    canary_functions::announce(&HangingNotifier, canary_core::notice::Task::Prepare, &state).await;
    assert_eq!(started.elapsed(), canary_functions::PUBLISH_TIMEOUT);
}

#[tokio::test]
async fn prepare_refuses_every_request_of_the_corpus_naming_its_field() {
    let rows: Vec<Value> =
        serde_json::from_str(include_str!("../../../canary-core/tests/refused-requests.json")).unwrap();
    let execution = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:corpus";
    let mut refused = 0;
    // Rows given as text hold what only a text shows (a key given twice): Step Functions parses an
    // execution's input before Prepare sees it, so only canaryctl can refuse them.
    for row in rows.iter().filter(|r| r.get("request").is_some()) {
        let (why, field) = (row["why"].as_str().unwrap(), row["field"].as_str().unwrap());
        let lambda = FakeLambda::new();
        let mut history = idle();
        match row.get("setup").and_then(Value::as_str) {
            None => {}
            Some("alias_at_latest") => lambda.set_by_someone_else(Routing::to_version("$LATEST")),
            Some("alias_shared") => lambda.set_by_someone_else(Routing {
                function_version: "1".into(),
                additional_version_weights: BTreeMap::from([("3".into(), 0.1)]),
            }),
            Some("alias_locked") => {
                lambda.alias.lock().unwrap().as_mut().unwrap().description =
                    canary_core::lock::marker(FIRST, "orders, production");
                history = History::new(Vec::new(), "RUNNING");
            }
            Some(other) => panic!("{why}: unknown setup {other}"),
        }
        let input = json!({"request": row["request"], "execution": execution});
        let error = prepare(input, &lambda, &metrics(0, 0), &history, t0()).await.expect_err(why);
        let ControllerError::Refused(refusal) = &error else { panic!("{why}: {error:?}") };
        assert!(refusal.fields().contains(&field), "{why}: named {:?}, not {field}", refusal.fields());
        assert!(refusal.errors.iter().all(|e| !e.fix.is_empty()), "{why}: {refusal}");
        assert_eq!(lambda.writes(), 0, "{why}: nothing is written before a request is accepted");
        refused += 1;
    }
    assert!(refused >= 100, "{refused}");
}

#[tokio::test]
async fn prepare_reads_the_old_versions_hour_before_and_checks_ask_for_its_slow_calls() {
    let lambda = FakeLambda::new();
    let metrics = metrics(0, 0);
    let mut input = request();
    input["health"] = json!({"metrics_delay_seconds": 60, "max_latency_p99_increase": 0.5});
    let state = prepare(input, &lambda, &metrics, &idle(), t0()).await.unwrap();
    let before = state.before.unwrap();
    assert_eq!((before.invocations, before.errors, before.p99_duration_ms), (6_000, 60, Some(200.0)));
    assert_eq!(state.evidence.as_ref().unwrap().old_total.invocations, 6_000, "the tests start from it");
    let queries = metrics.0.lock().unwrap().clone();
    assert_eq!(queries.len(), 1);
    assert_eq!(
        (queries[0].baseline_version.as_str(), queries[0].start, queries[0].end),
        ("1", t0() - Duration::seconds(3660), t0() - Duration::seconds(60))
    );
    assert_eq!(state.slow_threshold_ms(), Some(300.0), "the latency threshold: p99 before + 50%");
    // Health checks off: nothing is read.
    let metrics = self::metrics(0, 0);
    let mut off = request();
    off["health"] = json!({"enabled": false});
    assert!(prepare(off, &FakeLambda::new(), &metrics, &idle(), t0()).await.unwrap().before.is_none());
    assert!(metrics.0.lock().unwrap().is_empty());
}

/// Only routing is ownership: a description edited mid-rollout (here between the first and the second shift)
/// is carried over while the rollout's execution runs, and kept at the end; the same edit met by the late
/// write of an execution that has ended (stopped, then restored) moves nothing.
#[tokio::test]
async fn a_description_edit_is_carried_over_only_while_the_execution_runs() {
    let request = json!({"function": "orders", "alias": "live", "version": "2",
        "strategy": {"linear": {"percent": 25, "interval_seconds": 60}}, "health": {"metrics_delay_seconds": 60}});
    let lambda = FakeLambda::new();
    let prepared = prepare(json!({"request": request, "execution": FIRST}), &lambda, &metrics(0, 0), &running(), t0())
        .await
        .unwrap();
    let shifted = move_alias(prepared.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let checked = check(shifted, &metrics(100, 0), &lambda, t0() + Duration::seconds(120)).await.unwrap();
    // Edited around the marker (a description rewritten whole takes the lock off: the alias is theirs).
    let marker = lambda.description().split('\n').next().unwrap().to_string();
    lambda.describe_by_someone_else(&format!("{marker}\norders, managed by CloudFormation"));
    let moved = move_alias(checked.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap();
    assert_eq!(lambda.routing().additional_version_weights["2"], 0.5, "the step went on");
    assert!(lambda.description().ends_with("orders, managed by CloudFormation"), "{}", lambda.description());
    assert_eq!(moved.original_description, "orders, managed by CloudFormation", "theirs is put back at the end");
    // The same edit, met by an execution that has ended: nothing moves.
    let lambda = FakeLambda::new();
    let prepared = prepare(json!({"request": request, "execution": FIRST}), &lambda, &metrics(0, 0), &running(), t0())
        .await
        .unwrap();
    lambda.describe_by_someone_else(&canary_core::lock::marker(FIRST, "orders, edited"));
    let writes = lambda.writes();
    let stopped = History::new(Vec::new(), "ABORTED");
    let error = move_alias(prepared, Next::Shift, &lambda, &stopped, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently);
    assert!(error.to_string().contains("has ended"), "{error}");
    assert_eq!((lambda.writes(), lambda.routing()), (writes, Routing::to_version("1")), "nothing moved");
}

/// Someone set the routing by hand during the rollout: the rollback keeps it and announces the hand-over,
/// with what the alias routes.
#[tokio::test]
async fn a_routing_taken_over_by_hand_is_kept_and_announced() {
    let lambda = FakeLambda::new();
    let state = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    lambda.set_by_someone_else(Routing::to_version("3"));
    let notifier = quiet_notifier();
    let error = rollback(shifted, &lambda, &notifier, t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::AliasChangedConcurrently);
    assert_eq!(*notifier.0.lock().unwrap(), ["Rollout Taken Over"]);
    assert_eq!(lambda.routing(), Routing::to_version("3"), "theirs stands");
    assert_eq!(lambda.description(), "orders, production", "the lock comes off, the description put back");
}

/// An operator's pause (`canaryctl pause`, a tag on the function naming this execution) holds a healthy step
/// at its weight and looks again; a tag naming another execution does not; a failed read keeps the rollout as
/// it was; once the tag is gone, the next check moves on.
#[tokio::test]
async fn a_pause_tag_naming_this_execution_holds_the_weight_until_removed() {
    let lambda = FakeLambda::new();
    let input = json!({"request": request(), "execution": "arn:aws:states:us-east-1:1:execution:canary:x"});
    let state = prepare(input, &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(state, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let (function, key, execution) = shifted.pause_target().expect("a pausable rollout");
    assert_eq!(
        (function.as_str(), key.as_str()),
        ("arn:aws:lambda:us-east-1:1:function:orders", "lambda-canary:pause:live")
    );
    let set = |value: &str| lambda.tags.lock().unwrap().as_mut().unwrap().insert(key.clone(), value.to_string());

    set("arn:aws:states:us-east-1:1:execution:m:someone-else");
    let other = check(shifted.clone(), &metrics(100, 0), &lambda, t0() + Duration::seconds(600)).await.unwrap();
    assert!(matches!(other.next, Next::Shift | Next::Promote), "another execution's pause: {:?}", other.next);

    set(&execution);
    let at = t0() + Duration::seconds(600);
    let paused = check(shifted, &metrics(100, 0), &lambda, at).await.unwrap();
    assert_eq!((paused.next, paused.wait_seconds, paused.paused_since), (Next::Hold, 60, Some(at)), "a hold apart");
    *lambda.tags.lock().unwrap() = Err(());
    let unread = check(paused.clone(), &metrics(100, 0), &lambda, at + Duration::seconds(300)).await.unwrap();
    assert_eq!((unread.next, unread.paused_since), (Next::Hold, Some(at)), "a failed read is not a resume");
    let failing = check(paused.clone(), &metrics(200, 100), &lambda, at + Duration::seconds(300)).await.unwrap();
    assert_eq!(failing.next, Next::Rollback, "judging goes on while paused: {:?}", failing.history.last());

    *lambda.tags.lock().unwrap() = Ok(Default::default());
    let resumed = check(unread, &metrics(100, 0), &lambda, at + Duration::seconds(600)).await.unwrap();
    assert!(matches!(resumed.next, Next::Shift | Next::Promote), "{:?}", resumed.next);
    assert_eq!(resumed.paused_since, None);
}
