//! What the handler tests share: an in-memory execution history.

use async_trait::async_trait;
use canary_aws::{AwsError, ExecutionHistory, ExecutionInfo, StateExit};
use chrono::{DateTime, TimeZone, Utc};

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
