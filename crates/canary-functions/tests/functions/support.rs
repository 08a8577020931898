//! What the handler tests share: an in-memory Lambda (one function, versions 1 to 3, alias `live`), CloudWatch
//! and execution history, and the request they roll out.

use async_trait::async_trait;
use canary_aws::{Aliases, AwsError, ExecutionHistory, ExecutionInfo, Metrics, StateExit, TrafficBefore, WindowQuery};
use canary_core::sequential::Counts;
use canary_core::{AlarmState, AliasState, HealthFigures, Routing, VersionFigures};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// An execution history (the states it left, with their outputs), the status DescribeExecution reports for
/// every execution, and the input it reports (none unless given).
pub struct History {
    exits: Vec<StateExit>,
    status: &'static str,
    input: Option<String>,
}

impl History {
    /// A history of `exits` whose executions all report `status`.
    pub fn new(exits: Vec<StateExit>, status: &'static str) -> History {
        History { exits, status, input: None }
    }

    /// The same history, its executions started with `input`.
    pub fn with_input(self, input: String) -> History {
        History { input: Some(input), ..self }
    }
}

#[async_trait]
impl ExecutionHistory for History {
    async fn describe(&self, arn: &str) -> Result<ExecutionInfo, AwsError> {
        Ok(ExecutionInfo {
            arn: arn.into(),
            name: arn.rsplit(':').next().unwrap().into(),
            status: canary_core::execution::ExecutionStatus::parse(self.status),
            input: self.input.clone(),
            output: None,
            error: None,
            cause: None,
            started_at: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
            stopped_at: None,
        })
    }
    async fn state_exits_after(&self, _: &str, after: i64) -> Result<Vec<StateExit>, AwsError> {
        Ok(self.exits.iter().filter(|e| e.event_id > after).cloned().collect())
    }
    async fn newest_state_output(
        &self,
        _: &str,
        wanted: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
    ) -> Result<Option<String>, AwsError> {
        Ok(self.exits.iter().rev().filter_map(|e| e.output.clone()).find(|o| wanted(o)))
    }
    async fn ended_since(&self, _: &str, _: DateTime<Utc>) -> Result<Vec<canary_aws::ExecutionSummary>, AwsError> {
        Ok(Vec::new())
    }
}

/// One function with published versions 1 to 3 and an alias `live` at version 1.
pub struct FakeLambda {
    pub(crate) alias: Mutex<Option<AliasState>>,
    pub(crate) writes: Mutex<Vec<Routing>>,
    /// Errors returned by the next calls, in order, before behaving normally.
    pub(crate) failures: Mutex<Vec<Option<AwsError>>>,
    pub(crate) revision: Mutex<u32>,
    pub(crate) reads: Mutex<u32>,
    /// Versions Lambda reports as not Active.
    pub(crate) states: Mutex<BTreeMap<String, canary_core::VersionState>>,
    /// The function's tags; `Err` makes reading them fail.
    pub(crate) tags: Mutex<Result<BTreeMap<String, String>, ()>>,
}

impl FakeLambda {
    pub(crate) fn new() -> Self {
        FakeLambda {
            alias: Mutex::new(Some(AliasState {
                routing: Routing::to_version("1"),
                revision_id: "r0".into(),
                description: "orders, production".into(),
            })),
            writes: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            revision: Mutex::new(0),
            reads: Mutex::new(0),
            states: Mutex::new(BTreeMap::new()),
            tags: Mutex::new(Ok(BTreeMap::new())),
        }
    }
    pub(crate) fn fail_next(&self, error: AwsError) {
        self.failures.lock().unwrap().push(Some(error));
    }
    pub(crate) fn pass_next(&self) {
        self.failures.lock().unwrap().push(None);
    }
    pub(crate) fn injected(&self) -> Result<(), AwsError> {
        let mut failures = self.failures.lock().unwrap();
        match failures.is_empty() {
            true => Ok(()),
            false => failures.remove(0).map_or(Ok(()), Err),
        }
    }
    pub(crate) fn routing(&self) -> Routing {
        self.alias.lock().unwrap().clone().unwrap().routing
    }
    /// A change made by someone else, as the console or another pipeline would make it: the routing changes,
    /// the description stays.
    pub(crate) fn set_by_someone_else(&self, routing: Routing) {
        let mut alias = self.alias.lock().unwrap();
        let description = alias.as_ref().map(|a| a.description.clone()).unwrap_or_default();
        *alias = Some(AliasState { routing, revision_id: "foreign".into(), description });
    }
    pub(crate) fn description(&self) -> String {
        self.alias.lock().unwrap().clone().unwrap().description
    }
    /// A description someone else set (a person, a stack update): the routing stays.
    pub(crate) fn describe_by_someone_else(&self, description: &str) {
        let mut alias = self.alias.lock().unwrap();
        let routing = alias.as_ref().map(|a| a.routing.clone()).unwrap();
        *alias = Some(AliasState { routing, revision_id: "edited".into(), description: description.into() });
    }
    pub(crate) fn writes(&self) -> usize {
        self.writes.lock().unwrap().len()
    }
}

#[async_trait]
impl Aliases for FakeLambda {
    async fn function_exists(&self, function: &str) -> Result<bool, AwsError> {
        self.injected()?;
        // The function rolled out, and two hook functions.
        Ok(["orders", "smoke", "broken"].contains(&function))
    }
    async fn version_config(&self, _: &str, version: &str) -> Result<Option<canary_core::VersionConfig>, AwsError> {
        self.injected()?;
        let role = if version == "3" { "arn:aws:iam::1:role/other" } else { "arn:aws:iam::1:role/orders" };
        let state = self.states.lock().unwrap().get(version).cloned().unwrap_or_default();
        Ok(["1", "2", "3"].contains(&version).then(|| canary_core::VersionConfig {
            role: role.into(),
            dead_letter_target: None,
            state,
        }))
    }
    async fn provisioned_concurrency(&self, _: &str, _: &str) -> Result<Option<u32>, AwsError> {
        Ok(None)
    }
    async fn tag(&self, _: &str, key: &str) -> Result<Option<String>, AwsError> {
        match &*self.tags.lock().unwrap() {
            Ok(tags) => Ok(tags.get(key).cloned()),
            Err(()) => Err(AwsError::Transient("ThrottlingException: Rate exceeded".into())),
        }
    }
    async fn get_alias(&self, _: &str, alias: &str) -> Result<Option<AliasState>, AwsError> {
        self.injected()?;
        *self.reads.lock().unwrap() += 1;
        Ok(self.alias.lock().unwrap().clone().filter(|_| alias == "live"))
    }
    async fn update_alias(
        &self,
        _: &str,
        _: &str,
        routing: &Routing,
        description: &str,
        revision_id: &str,
    ) -> Result<AliasState, AwsError> {
        self.injected()?;
        let mut alias = self.alias.lock().unwrap();
        let Some(current) = alias.as_mut() else {
            return Err(AwsError::NotFound("ResourceNotFoundException: alias not found".into()));
        };
        if current.revision_id != revision_id {
            return Err(AwsError::RevisionChanged("PreconditionFailedException".into()));
        }
        let mut revision = self.revision.lock().unwrap();
        *revision += 1;
        *current = AliasState {
            routing: routing.clone(),
            revision_id: format!("r{revision}"),
            description: description.to_string(),
        };
        self.writes.lock().unwrap().push(routing.clone());
        Ok(current.clone())
    }
}

pub struct FakeMetrics(pub Mutex<Vec<WindowQuery>>, pub HealthFigures);

#[async_trait]
impl Metrics for FakeMetrics {
    async fn figures(&self, query: &WindowQuery) -> Result<HealthFigures, AwsError> {
        self.0.lock().unwrap().push(query.clone());
        Ok(self.1.clone())
    }
    async fn traffic_before(&self, query: &WindowQuery) -> Result<TrafficBefore, AwsError> {
        self.0.lock().unwrap().push(query.clone());
        // An hour of 100 calls a minute with one error each, and a p99 of 200 ms.
        let minute = Counts { invocations: 100, errors: 1, slow: 0 };
        Ok(TrafficBefore { minutes: vec![minute; 60], p99_duration_ms: Some(200.0) })
    }
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, AwsError> {
        // One alarm exists, and it fired an hour after t0.
        Ok(names
            .iter()
            .filter(|n| *n == "orders-5xx")
            .map(|n| AlarmState {
                name: n.clone(),
                state: canary_core::AlarmValue::Alarm,
                updated_at: t0() + Duration::hours(1),
            })
            .collect())
    }
}

pub fn metrics(invocations: u64, errors: u64) -> FakeMetrics {
    FakeMetrics(
        Mutex::new(Vec::new()),
        HealthFigures { new: VersionFigures { invocations, errors, ..Default::default() }, ..Default::default() },
    )
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

pub fn request() -> Value {
    json!({"function": "orders", "alias": "live", "version": "2",
           "strategy": {"linear": {"percent": 50, "interval_seconds": 60}}, "health": {"metrics_delay_seconds": 60}})
}
