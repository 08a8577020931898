//! The safety net and its sweep through the handlers: an ended execution's alias restored exactly, once,
//! and only what this execution and this stage hold.

use crate::handlers::*;
use crate::support;
use crate::support::{FakeLambda, metrics, request, t0};

use async_trait::async_trait;
use canary_aws::{AwsError, ExecutionHistory, ExecutionInfo, StateExit};
use canary_core::asl::ErrorName;
use canary_core::safety_net::Action;
use canary_core::{Next, Routing};
use canary_functions::{check, move_alias, prepare, rollback, safety_net};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use support::History;

pub(crate) fn exit(id: i64, name: &str, output: &str) -> StateExit {
    StateExit { event_id: id, state_name: name.into(), output: Some(output.into()), at: t0() }
}

pub(crate) fn ended(status: &str) -> Value {
    json!({"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
           "detail": {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:x", "status": status}})
}

#[tokio::test]
async fn the_safety_net_restores_a_stopped_rollout_exactly() {
    let lambda = FakeLambda::new();
    let prepared = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(prepared.clone(), Next::Shift, &lambda, &running(), t0()).await.unwrap();
    assert_ne!(lambda.routing(), Routing::to_version("1"));
    let history = History::new(
        vec![
            exit(2, "Prepare", &serde_json::to_string(&prepared).unwrap()),
            exit(5, "Shift", &serde_json::to_string(&shifted).unwrap()),
            exit(6, "Route", &serde_json::to_string(&shifted).unwrap()),
            exit(8, "Hold", "not a rollout state"),
        ],
        "ABORTED",
    );
    let result = handled(safety_net(ended("ABORTED"), &history, &lambda, &quiet_notifier(), t0()).await.unwrap());
    assert!(matches!(result.action, Action::Restored { .. }), "{result:?}");
    assert_eq!(lambda.routing(), Routing::to_version("1"));
    // Delivered twice (EventBridge delivers at least once): the second finds nothing to write.
    let writes = lambda.writes();
    safety_net(ended("ABORTED"), &history, &lambda, &quiet_notifier(), t0()).await.unwrap();
    assert_eq!(lambda.writes(), writes);
}

#[tokio::test]
async fn the_safety_net_leaves_finished_rollouts_and_foreign_changes_alone() {
    let lambda = FakeLambda::new();
    let prepared = prepare(request(), &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let shifted = move_alias(prepared, Next::Shift, &lambda, &running(), t0()).await.unwrap();
    let failed = check(shifted.clone(), &metrics(100, 50), &lambda, t0() + Duration::seconds(5)).await.unwrap();
    let rolled_back = rollback(failed, &lambda, &quiet_notifier(), t0()).await.unwrap().0;
    let finished = History::new(vec![exit(9, "Rollback", &serde_json::to_string(&rolled_back).unwrap())], "FAILED");
    let result = handled(safety_net(ended("FAILED"), &finished, &lambda, &quiet_notifier(), t0()).await.unwrap());
    assert_eq!(result.action, Action::None { reason: "the controller already rolled back".into() });
    let empty = History::new(Vec::new(), "TIMED_OUT");
    let result = handled(safety_net(ended("TIMED_OUT"), &empty, &lambda, &quiet_notifier(), t0()).await.unwrap());
    assert!(matches!(result.action, Action::None { .. }), "{result:?}");
    // Someone pointed the alias elsewhere after the rollout ended: their change stands, and the answer says so
    // (not an error: there is nothing to retry).
    lambda.set_by_someone_else(Routing::to_version("3"));
    let stopped = History::new(vec![exit(5, "Shift", &serde_json::to_string(&shifted).unwrap())], "ABORTED");
    let result = handled(safety_net(ended("ABORTED"), &stopped, &lambda, &quiet_notifier(), t0()).await.unwrap());
    assert!(
        matches!(&result.action, Action::HandedOver { reason } if reason.contains("now routes 3 (100%)")),
        "{result:?}"
    );
    assert_eq!(lambda.routing(), Routing::to_version("3"));
    let error = safety_net(json!({"detail": {}}), &stopped, &lambda, &quiet_notifier(), t0()).await.unwrap_err();
    assert_eq!(error.error_type(), ErrorName::InvalidState);
}

/// An execution whose Prepare wrote its lock and then failed (or was stopped) moved nothing, but its marker
/// would stay on the alias: the safety net gives the alias its description back.
#[tokio::test]
async fn the_safety_net_releases_the_lock_of_an_execution_that_never_moved() {
    let lambda = FakeLambda::new();
    let arn = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:x";
    prepare(json!({"request": request(), "execution": arn}), &lambda, &metrics(0, 0), &running(), t0()).await.unwrap();
    assert!(lambda.description().starts_with(canary_core::lock::PREFIX));
    let history = Described { status: "FAILED", input: request(), ended: Vec::new() };
    let result = handled(safety_net(ended("FAILED"), &history, &lambda, &quiet_notifier(), t0()).await.unwrap());
    assert_eq!(result.action, Action::Released);
    assert_eq!((lambda.description(), lambda.routing()), ("orders, production".into(), Routing::to_version("1")));
}

/// An execution as Step Functions describes it, with its input, and the ended executions a sweep lists.
pub(crate) struct Described {
    pub(crate) status: &'static str,
    pub(crate) input: Value,
    pub(crate) ended: Vec<canary_aws::ExecutionSummary>,
}

#[async_trait]
impl ExecutionHistory for Described {
    async fn describe(&self, arn: &str) -> Result<ExecutionInfo, AwsError> {
        let info = History::new(Vec::new(), self.status).describe(arn).await?;
        Ok(ExecutionInfo { input: Some(self.input.to_string()), ..info })
    }
    async fn state_exits_after(&self, _: &str, _: i64) -> Result<Vec<StateExit>, AwsError> {
        Ok(Vec::new())
    }
    async fn newest_state_output(
        &self,
        _: &str,
        _: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
    ) -> Result<Option<String>, AwsError> {
        Ok(None)
    }
    async fn ended_since(&self, _: &str, _: DateTime<Utc>) -> Result<Vec<canary_aws::ExecutionSummary>, AwsError> {
        Ok(self.ended.clone())
    }
}

/// The sweep puts back what an ended execution still holds (its status change event was lost), and leaves
/// aliases no ended execution holds.
#[tokio::test]
async fn the_sweep_restores_what_an_ended_execution_still_holds() {
    let lambda = FakeLambda::new();
    let arn = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:lost";
    prepare(json!({"request": request(), "execution": arn}), &lambda, &metrics(0, 0), &running(), t0()).await.unwrap();
    let summary = |arn: &str| canary_aws::ExecutionSummary {
        arn: arn.into(),
        name: "lost".into(),
        status: canary_core::execution::ExecutionStatus::Aborted,
        started_at: t0(),
        stopped_at: Some(t0()),
    };
    let other = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:other";
    let history = Described { status: "ABORTED", input: request(), ended: vec![summary(other), summary(arn)] };
    let notifier = quiet_notifier();
    let sweep = json!({"sweep": "arn:aws:states:us-east-1:123456789012:stateMachine:canary-rollout"});
    let swept: canary_core::safety_net::Swept =
        serde_json::from_value(safety_net(sweep.clone(), &history, &lambda, &notifier, t0()).await.unwrap()).unwrap();
    assert_eq!(swept.looked_at, 2);
    assert_eq!(swept.handled.len(), 1, "only the execution that holds the alias: {swept:?}");
    assert_eq!(swept.handled[0].action, Action::Released, "it never moved: its lock is released");
    assert_eq!(lambda.description(), "orders, production");
    let again: canary_core::safety_net::Swept =
        serde_json::from_value(safety_net(sweep, &history, &lambda, &notifier, t0()).await.unwrap()).unwrap();
    assert!(again.handled.is_empty(), "nothing held any more: {again:?}");
}

/// A rollout stopped while the new version carried all its traffic (a bake) is restored by the safety net;
/// then the same version is promoted again (by a later rollout, or a person). Its ending handled again (Lambda's
/// asynchronous retry, a redrive of the failures queue, the sweep) finds no lock of its own: it writes nothing,
/// announces nothing, and says why; the later promotion stands, though its routing is the one the stopped
/// rollout had left.
#[tokio::test]
async fn an_ending_handled_again_never_undoes_a_later_promotion() {
    let lambda = FakeLambda::new();
    let baked = json!({"function": "orders", "alias": "live", "version": "2",
        "strategy": {"all_at_once": {"bake_seconds": 600}}, "health": {"metrics_delay_seconds": 60}});
    let prepared = prepare(baked, &lambda, &metrics(0, 0), &idle(), t0()).await.unwrap();
    let promoted = move_alias(prepared, Next::Promote, &lambda, &running(), t0()).await.unwrap();
    assert_eq!((promoted.next, lambda.routing()), (Next::Hold, Routing::to_version("2")));
    let stopped = History::new(vec![exit(5, "Promote", &serde_json::to_string(&promoted).unwrap())], "ABORTED");
    let notifier = quiet_notifier();
    let first = handled(safety_net(ended("ABORTED"), &stopped, &lambda, &notifier, t0()).await.unwrap());
    assert!(matches!(first.action, Action::Restored { .. }), "{first:?}");
    assert_eq!((lambda.routing(), lambda.description()), (Routing::to_version("1"), "orders, production".into()));
    // Promoted again by someone else, to exactly what the stopped rollout had left.
    lambda.set_by_someone_else(Routing::to_version("2"));
    let (writes, announced) = (lambda.writes(), notifier.0.lock().unwrap().len());
    for _ in 0..3 {
        let again = handled(safety_net(ended("ABORTED"), &stopped, &lambda, &notifier, t0()).await.unwrap());
        assert!(
            matches!(&again.action, Action::HandedOver { reason } if reason.contains("no longer carries this rollout's lock")),
            "{again:?}"
        );
    }
    assert_eq!(lambda.routing(), Routing::to_version("2"), "the later promotion stands");
    assert_eq!(
        (lambda.writes(), notifier.0.lock().unwrap().len()),
        (writes, announced),
        "nothing written or announced"
    );
}

/// A refused execution may hold locks (a retried Prepare refused after its earlier attempt locked an alias, its
/// give-back lost): the sweep looks at refused executions too, and releases them.
#[tokio::test]
async fn the_sweep_releases_the_locks_of_a_refused_execution() {
    let lambda = FakeLambda::new();
    let arn = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:refused";
    prepare(json!({"request": request(), "execution": arn}), &lambda, &metrics(0, 0), &running(), t0()).await.unwrap();
    let history = refused(arn);
    let sweep = json!({"sweep": "arn:aws:states:us-east-1:123456789012:stateMachine:canary-rollout"});
    let swept: canary_core::safety_net::Swept =
        serde_json::from_value(safety_net(sweep, &history, &lambda, &quiet_notifier(), t0()).await.unwrap()).unwrap();
    assert_eq!(swept.handled.len(), 1, "{swept:?}");
    assert_eq!(swept.handled[0].action, Action::Released);
    assert_eq!((lambda.description(), lambda.routing()), ("orders, production".into(), Routing::to_version("1")));
    // A refused request whose alias cannot be read (another region's, say) holds nothing, and fails no sweep.
    lambda.fail_next(AwsError::AccessDenied("another region".into()));
    let sweep = json!({"sweep": "arn:aws:states:us-east-1:123456789012:stateMachine:canary-rollout"});
    let swept: canary_core::safety_net::Swept =
        serde_json::from_value(safety_net(sweep, &history, &lambda, &quiet_notifier(), t0()).await.unwrap()).unwrap();
    assert!(swept.handled.is_empty(), "{swept:?}");
}

/// The safety net of a stage never reads an alias its roles may not touch (on AWS, an AccessDenied for every refused
/// request naming another stage's function): a function outside the managed pattern is not looked at.
#[tokio::test]
async fn the_sweep_never_reads_a_function_outside_the_deployments_pattern() {
    let lambda = FakeLambda::new();
    let arn = "arn:aws:states:us-east-1:123456789012:execution:canary-rollout:refused";
    prepare(json!({"request": request(), "execution": arn}), &lambda, &metrics(0, 0), &running(), t0()).await.unwrap();
    let history = refused(arn);
    let sweep = json!({"sweep": "arn:aws:states:us-east-1:123456789012:stateMachine:canary-rollout"});
    let reads = *lambda.reads.lock().unwrap();
    let notifier = quiet_notifier();
    let answer =
        canary_functions::safety_net_managing(sweep.clone(), Some("payments-*"), &history, &lambda, &notifier, t0());
    let swept: canary_core::safety_net::Swept = serde_json::from_value(answer.await.unwrap()).unwrap();
    assert!(swept.handled.is_empty(), "{swept:?}");
    // Nor does the ending's own event, which EventBridge delivers for a refused execution too.
    let event = json!({"detail": {"executionArn": arn, "status": "FAILED"}});
    let answer = canary_functions::safety_net_managing(event, Some("payments-*"), &history, &lambda, &notifier, t0());
    let handled: canary_core::safety_net::Handled = serde_json::from_value(answer.await.unwrap()).unwrap();
    assert!(matches!(handled.action, Action::None { .. }), "{handled:?}");
    assert_eq!(*lambda.reads.lock().unwrap(), reads, "orders is not read");
    // Within the pattern, the same sweep releases the lock.
    let answer = canary_functions::safety_net_managing(sweep, Some("ord*"), &history, &lambda, &notifier, t0());
    let swept: canary_core::safety_net::Swept = serde_json::from_value(answer.await.unwrap()).unwrap();
    assert_eq!(swept.handled[0].action, Action::Released);
}

/// An execution that ended refused (`RequestRefused`).
struct Refused(Described);

/// The history of one execution, `arn`, that ended refused with [`request`] as its input.
fn refused(arn: &str) -> Refused {
    let summary = canary_aws::ExecutionSummary {
        arn: arn.into(),
        name: "refused".into(),
        status: canary_core::execution::ExecutionStatus::Failed,
        started_at: t0(),
        stopped_at: Some(t0()),
    };
    Refused(Described { status: "FAILED", input: request(), ended: vec![summary] })
}

#[async_trait]
impl ExecutionHistory for Refused {
    async fn describe(&self, arn: &str) -> Result<ExecutionInfo, AwsError> {
        let info = self.0.describe(arn).await?;
        Ok(ExecutionInfo { error: Some(ErrorName::RequestRefused.as_str().into()), ..info })
    }
    async fn state_exits_after(&self, arn: &str, after: i64) -> Result<Vec<StateExit>, AwsError> {
        self.0.state_exits_after(arn, after).await
    }
    async fn newest_state_output(
        &self,
        arn: &str,
        wanted: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
    ) -> Result<Option<String>, AwsError> {
        self.0.newest_state_output(arn, wanted).await
    }
    async fn ended_since(
        &self,
        machine: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<canary_aws::ExecutionSummary>, AwsError> {
        self.0.ended_since(machine, since).await
    }
}
