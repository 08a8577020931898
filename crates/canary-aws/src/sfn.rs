//! Step Functions: [`StepFunctionsExecutions`] describes executions and reads their histories (newest first
//! where only the last state is wanted), and starts, lists, stops and answers them for `canaryctl`.

use crate::error::classify;
use crate::lazy::OnFirstUse;
use crate::{AwsError, ExecutionControl, ExecutionHistory, ExecutionInfo, ExecutionSummary, StateExit, time_of};
use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use canary_core::asl::State;
use canary_core::concurrency::RunningExecution;

/// [`ExecutionHistory`] and [`ExecutionControl`] on the Step Functions API.
#[derive(Debug, Clone)]
pub struct StepFunctionsExecutions {
    client: OnFirstUse<Client>,
}

impl StepFunctionsExecutions {
    pub fn new(client: Client) -> Self {
        Self { client: OnFirstUse::built(client) }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self { client: OnFirstUse::from_config(config, Client::new) }
    }
}

#[async_trait]
impl ExecutionHistory for StepFunctionsExecutions {
    async fn describe(&self, execution_arn: &str) -> Result<ExecutionInfo, AwsError> {
        let out = self.client.get().describe_execution().execution_arn(execution_arn).send().await.map_err(classify)?;
        Ok(ExecutionInfo {
            arn: out.execution_arn().to_string(),
            name: out.name().unwrap_or_default().to_string(),
            status: canary_core::execution::ExecutionStatus::parse(out.status().as_str()),
            input: out.input().map(str::to_string),
            output: out.output().map(str::to_string),
            error: out.error().map(str::to_string),
            cause: out.cause().map(str::to_string),
            started_at: time_of(out.start_date()),
            stopped_at: out.stop_date().map(time_of),
        })
    }
    async fn state_exits_after(&self, execution_arn: &str, after: i64) -> Result<Vec<StateExit>, AwsError> {
        let mut exits = Vec::new();
        // Newest first, down to the last event already seen: a follower polling every few seconds reads a
        // page, not the whole history again.
        let request = self.client.get().get_execution_history().execution_arn(execution_arn).reverse_order(true);
        let mut pages = request.into_paginator().send();
        'pages: while let Some(page) = pages.next().await {
            for event in page.map_err(classify)?.events() {
                if event.id() <= after {
                    break 'pages;
                }
                let exited = matches!(
                    event.r#type(),
                    HistoryEventType::TaskStateExited
                        | HistoryEventType::PassStateExited
                        | HistoryEventType::ChoiceStateExited
                        | HistoryEventType::WaitStateExited
                );
                if let Some(details) = event.state_exited_event_details().filter(|_| exited) {
                    exits.push(StateExit {
                        event_id: event.id(),
                        state_name: details.name().to_string(),
                        output: details.output().map(str::to_string),
                        at: time_of(event.timestamp()),
                    });
                }
            }
        }
        exits.reverse();
        Ok(exits)
    }
    async fn newest_state_output(
        &self,
        execution_arn: &str,
        wanted: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
    ) -> Result<Option<String>, AwsError> {
        let mut pages = self
            .client
            .get()
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .include_execution_data(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(classify)?;
            for event in page.events() {
                if let Some(output) = event.state_exited_event_details().and_then(|d| d.output())
                    && wanted(output)
                {
                    return Ok(Some(output.to_string()));
                }
            }
        }
        Ok(None)
    }
    async fn ended_since(
        &self,
        state_machine_arn: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ExecutionSummary>, AwsError> {
        let mut ended = Vec::new();
        // One listing per status (the API filters by one at a time). It is sorted by start, not by end, so a
        // long rollout stopped now sits deep in it: every page is read, a thousand executions at a time (Step
        // Functions keeps ended executions 90 days).
        for status in [ExecutionStatus::Aborted, ExecutionStatus::TimedOut, ExecutionStatus::Failed] {
            let request = self.client.get().list_executions().state_machine_arn(state_machine_arn);
            let mut pages = request.status_filter(status).max_results(1000).into_paginator().send();
            while let Some(page) = pages.next().await {
                for execution in page.map_err(classify)?.executions() {
                    let stopped_at = execution.stop_date().map(time_of);
                    if stopped_at.is_some_and(|at| at >= since) {
                        ended.push(summary(execution));
                    }
                }
            }
        }
        Ok(ended)
    }
}

/// An execution of a listing, in the controller's terms.
fn summary(execution: &aws_sdk_sfn::types::ExecutionListItem) -> ExecutionSummary {
    ExecutionSummary {
        arn: execution.execution_arn().to_string(),
        name: execution.name().to_string(),
        status: canary_core::execution::ExecutionStatus::parse(execution.status().as_str()),
        started_at: time_of(execution.start_date()),
        stopped_at: execution.stop_date().map(time_of),
    }
}

#[async_trait]
impl ExecutionControl for StepFunctionsExecutions {
    async fn start(&self, state_machine_arn: &str, name: Option<&str>, input: &str) -> Result<String, AwsError> {
        let out = self
            .client
            .get()
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .set_name(name.map(str::to_string))
            .input(input)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.execution_arn().to_string())
    }
    async fn running(&self, state_machine_arn: &str) -> Result<Vec<RunningExecution>, AwsError> {
        let mut running = Vec::new();
        let mut pages = self
            .client
            .get()
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .status_filter(ExecutionStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for execution in page.map_err(classify)?.executions() {
                let arn = execution.execution_arn();
                let described =
                    self.client.get().describe_execution().execution_arn(arn).send().await.map_err(classify)?;
                running.push(RunningExecution {
                    arn: arn.to_string(),
                    name: execution.name().to_string(),
                    started_at: time_of(execution.start_date()),
                    input: described.input().unwrap_or("null").to_string(),
                });
            }
        }
        Ok(running)
    }
    async fn recent(&self, state_machine_arn: &str, max: i32) -> Result<Vec<ExecutionSummary>, AwsError> {
        let out = self
            .client
            .get()
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .max_results(max)
            .send()
            .await
            .map_err(classify)?;
        let mut executions: Vec<ExecutionSummary> = out.executions().iter().map(summary).collect();
        executions.sort_by_key(|e| std::cmp::Reverse(e.started_at));
        executions.truncate(max.max(0) as usize);
        Ok(executions)
    }
    async fn recent_page(
        &self,
        state_machine_arn: &str,
        page_size: i32,
        token: Option<String>,
    ) -> Result<(Vec<ExecutionSummary>, Option<String>), AwsError> {
        let request = self.client.get().list_executions().state_machine_arn(state_machine_arn).max_results(page_size);
        let out = request.set_next_token(token).send().await.map_err(classify)?;
        Ok((out.executions().iter().map(summary).collect(), out.next_token().map(str::to_string)))
    }
    async fn approval_token(&self, execution_arn: &str) -> Result<Option<String>, AwsError> {
        // The gate's token is in the parameters of the task it scheduled; it is pending while the gate state
        // has been entered and not left.
        let (mut waiting, mut token) = (false, None);
        let gate = State::AwaitApproval.as_str();
        let mut pages = self.client.get().get_execution_history().execution_arn(execution_arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            for event in page.map_err(classify)?.events() {
                match event.r#type() {
                    HistoryEventType::TaskStateEntered => {
                        waiting = event.state_entered_event_details().is_some_and(|d| d.name() == gate);
                        token = None;
                    }
                    HistoryEventType::TaskScheduled if waiting => {
                        let parameters = event.task_scheduled_event_details().map(|d| d.parameters()).unwrap_or("{}");
                        let parameters: serde_json::Value = serde_json::from_str(parameters).unwrap_or_default();
                        token = parameters["Payload"]["token"].as_str().map(str::to_string);
                    }
                    HistoryEventType::TaskStateExited
                        if event.state_exited_event_details().is_some_and(|d| d.name() == gate) =>
                    {
                        waiting = false;
                    }
                    _ => {}
                }
            }
        }
        Ok(if waiting { token } else { None })
    }
    async fn answer(&self, token: &str, answer: Result<String, (String, String)>) -> Result<(), AwsError> {
        match answer {
            Ok(output) => {
                self.client
                    .get()
                    .send_task_success()
                    .task_token(token)
                    .output(output)
                    .send()
                    .await
                    .map_err(classify)?;
            }
            Err((error, cause)) => {
                let request = self.client.get().send_task_failure().task_token(token).error(error).cause(cause);
                request.send().await.map_err(classify)?;
            }
        }
        Ok(())
    }
    async fn stop(&self, execution_arn: &str, cause: &str) -> Result<(), AwsError> {
        self.client.get().stop_execution().execution_arn(execution_arn).cause(cause).send().await.map_err(classify)?;
        Ok(())
    }
    async fn definition(&self, state_machine_arn: &str) -> Result<String, AwsError> {
        let request = self.client.get().describe_state_machine().state_machine_arn(state_machine_arn);
        Ok(request.send().await.map_err(classify)?.definition().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
    use aws_sdk_sfn::operation::start_execution::{StartExecutionError, StartExecutionOutput};
    use aws_sdk_sfn::types::error::ExecutionAlreadyExists;
    use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, StateExitedEventDetails};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::DateTime;

    #[tokio::test]
    async fn start_passes_name_and_input() {
        let rule = mock!(Client::start_execution)
            .match_requests(|r| r.name() == Some("deploy-42") && r.input() == Some("{}"))
            .then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn:exec")
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            });
        let taken = mock!(Client::start_execution).match_requests(|r| r.name() == Some("taken")).then_error(|| {
            StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().message("exists").build())
        });
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&rule, &taken]));
        assert_eq!(executions.start("arn:sm", Some("deploy-42"), "{}").await.unwrap(), "arn:exec");
        assert!(
            matches!(executions.start("arn:sm", Some("taken"), "{}").await, Err(AwsError::Other(m)) if m.contains("exists"))
        );
    }

    #[tokio::test]
    async fn describe_reports_status_output_and_cause() {
        let rule = mock!(Client::describe_execution).then_output(|| {
            DescribeExecutionOutput::builder()
                .execution_arn("arn:exec")
                .name("deploy-42")
                .state_machine_arn("arn:sm")
                .status(ExecutionStatus::Failed)
                .error("RolledBack")
                .cause("{\"outcome\":\"rolled_back\"}")
                .start_date(DateTime::from_secs(0))
                .build()
                .unwrap()
        });
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, [&rule]));
        let info = executions.describe("arn:exec").await.unwrap();
        assert_eq!((info.status.as_str(), info.error.as_deref(), info.output), ("FAILED", Some("RolledBack"), None));
        assert_eq!(info.name, "deploy-42");
    }

    #[tokio::test]
    async fn the_definition_is_read_from_the_state_machine() {
        use aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineOutput;
        let rule = mock!(Client::describe_state_machine)
            .match_requests(|r| r.state_machine_arn() == Some("arn:sm"))
            .then_output(|| {
                DescribeStateMachineOutput::builder()
                    .state_machine_arn("arn:sm")
                    .name("canary-rollout")
                    .definition(r#"{"StartAt": "Prepare"}"#)
                    .role_arn("arn:role")
                    .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
                    .creation_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
                    .build()
                    .unwrap()
            });
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, [&rule]));
        assert_eq!(executions.definition("arn:sm").await.unwrap(), r#"{"StartAt": "Prepare"}"#);
    }

    #[tokio::test]
    async fn recent_lists_newest_first_and_stop_passes_the_cause() {
        use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
        use aws_sdk_sfn::operation::stop_execution::StopExecutionOutput;
        use aws_sdk_sfn::types::ExecutionListItem;
        let item = |name: &str, secs: i64, status: ExecutionStatus| {
            ExecutionListItem::builder()
                .execution_arn(format!("arn:exec:{name}"))
                .state_machine_arn("arn:sm")
                .name(name)
                .status(status)
                .start_date(DateTime::from_secs(secs))
                .build()
                .unwrap()
        };
        let list =
            mock!(Client::list_executions).match_requests(|r| r.max_results() == Some(2)).then_output(move || {
                ListExecutionsOutput::builder()
                    .executions(item("old", 10, ExecutionStatus::Succeeded))
                    .executions(item("new", 20, ExecutionStatus::Running))
                    .build()
                    .unwrap()
            });
        let stop = mock!(Client::stop_execution)
            .match_requests(|r| r.execution_arn() == Some("arn:exec:new") && r.cause() == Some("aborted"))
            .then_output(|| StopExecutionOutput::builder().stop_date(DateTime::from_secs(30)).build().unwrap());
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&list, &stop]));
        let recent = executions.recent("arn:sm", 2).await.unwrap();
        let names: Vec<(&str, &str)> = recent.iter().map(|e| (e.name.as_str(), e.status.as_str())).collect();
        assert_eq!(names, [("new", "RUNNING"), ("old", "SUCCEEDED")]);
        executions.stop("arn:exec:new", "aborted").await.unwrap();
        assert_eq!(stop.num_calls(), 1);
    }

    #[tokio::test]
    async fn recent_pages_follow_the_next_token() {
        use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
        use aws_sdk_sfn::types::ExecutionListItem;
        let item = |name: &str| {
            ExecutionListItem::builder()
                .execution_arn(format!("arn:exec:{name}"))
                .state_machine_arn("arn:sm")
                .name(name)
                .status(ExecutionStatus::Succeeded)
                .start_date(DateTime::from_secs(1))
                .build()
                .unwrap()
        };
        let first = mock!(Client::list_executions)
            .match_requests(|r| r.next_token().is_none() && r.max_results() == Some(1))
            .then_output(move || {
                ListExecutionsOutput::builder().executions(item("a")).next_token("t1").build().unwrap()
            });
        let second = mock!(Client::list_executions)
            .match_requests(|r| r.next_token() == Some("t1"))
            .then_output(move || ListExecutionsOutput::builder().executions(item("b")).build().unwrap());
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&first, &second]));
        let (page, token) = executions.recent_page("arn:sm", 1, None).await.unwrap();
        assert_eq!((page[0].name.as_str(), token.as_deref()), ("a", Some("t1")));
        let (page, token) = executions.recent_page("arn:sm", 1, token).await.unwrap();
        assert_eq!((page[0].name.as_str(), token), ("b", None));
    }

    #[tokio::test]
    async fn running_executions_come_with_their_inputs() {
        use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
        use aws_sdk_sfn::types::ExecutionListItem;
        let list = mock!(Client::list_executions)
            .match_requests(|r| {
                r.status_filter() == Some(&ExecutionStatus::Running) && r.state_machine_arn() == Some("arn:sm")
            })
            .then_output(|| {
                ListExecutionsOutput::builder()
                    .executions(
                        ExecutionListItem::builder()
                            .execution_arn("arn:exec:a")
                            .state_machine_arn("arn:sm")
                            .name("a")
                            .status(ExecutionStatus::Running)
                            .start_date(DateTime::from_secs_and_nanos(1_800_000_000, 250_000_000))
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap()
            });
        let describe = mock!(Client::describe_execution)
            .match_requests(|r| r.execution_arn() == Some("arn:exec:a"))
            .then_output(|| {
                DescribeExecutionOutput::builder()
                    .execution_arn("arn:exec:a")
                    .state_machine_arn("arn:sm")
                    .status(ExecutionStatus::Running)
                    .input(r#"{"function":"f","alias":"live","version":"2"}"#)
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            });
        let executions =
            StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&list, &describe]));
        let running = executions.running("arn:sm").await.unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!((running[0].name.as_str(), running[0].started_at.timestamp_millis()), ("a", 1_800_000_000_250));
        assert!(running[0].input.contains("live"));
        assert_eq!(
            crate::state_machine_of("arn:aws:states:us-east-1:123456789012:execution:canary-rollout:deploy-42")
                .as_deref(),
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:canary-rollout")
        );
        assert_eq!(crate::state_machine_of("arn:aws:lambda:x"), None);
    }

    #[tokio::test]
    async fn the_newest_rollout_state_is_read_newest_first_and_reading_stops_there() {
        let exit = |id: i64, output: &str| {
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(id))
                .r#type(HistoryEventType::TaskStateExited)
                .state_exited_event_details(
                    StateExitedEventDetails::builder().name("S").output(output).build().unwrap(),
                )
                .build()
                .unwrap()
        };
        // The first page, newest first: a wait's output, then the newest state; a second page exists.
        let newest = mock!(Client::get_execution_history)
            .match_requests(|r| r.reverse_order() == Some(true) && r.next_token().is_none())
            .then_output(move || {
                GetExecutionHistoryOutput::builder()
                    .events(exit(9, "not a state"))
                    .events(exit(8, r#"{"state": 2}"#))
                    .next_token("page-2")
                    .build()
                    .unwrap()
            });
        let older =
            mock!(Client::get_execution_history).match_requests(|r| r.next_token() == Some("page-2")).then_output(
                move || GetExecutionHistoryOutput::builder().events(exit(2, r#"{"state": 1}"#)).build().unwrap(),
            );
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&newest, &older]));
        let is_state = |o: &str| o.starts_with('{');
        let found = executions.newest_state_output("arn:exec", &is_state).await.unwrap();
        assert_eq!(found.as_deref(), Some(r#"{"state": 2}"#));
        assert_eq!((newest.num_calls(), older.num_calls()), (1, 0), "the older page is never read");
        let nothing = |_: &str| false;
        assert_eq!(executions.newest_state_output("arn:exec", &nothing).await.unwrap(), None);
        assert_eq!(older.num_calls(), 1, "without a match, every page is read");
    }

    #[tokio::test]
    async fn the_approval_token_is_found_while_the_gate_waits_and_answers_go_through() {
        use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
        use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
        use aws_sdk_sfn::types::{StateEnteredEventDetails, TaskScheduledEventDetails};
        let entered = |id: i64, name: &str| {
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(id))
                .r#type(HistoryEventType::TaskStateEntered)
                .state_entered_event_details(StateEnteredEventDetails::builder().name(name).build().unwrap())
                .build()
                .unwrap()
        };
        let scheduled = |id: i64, token: &str| {
            let parameters = format!(r#"{{"FunctionName": "gate", "Payload": {{"token": "{token}"}}}}"#);
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(id))
                .r#type(HistoryEventType::TaskScheduled)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("lambda")
                        .resource("invoke")
                        .region("r")
                        .parameters(parameters)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let exited = |id: i64, name: &str| {
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(id))
                .r#type(HistoryEventType::TaskStateExited)
                .state_exited_event_details(StateExitedEventDetails::builder().name(name).build().unwrap())
                .build()
                .unwrap()
        };
        let waiting = mock!(Client::get_execution_history)
            .match_requests(|r| r.execution_arn() == Some("arn:waiting"))
            .then_output(move || {
                GetExecutionHistoryOutput::builder()
                    .events(entered(1, "Shift"))
                    .events(scheduled(2, "not-this"))
                    .events(exited(3, "Shift"))
                    .events(entered(4, "AwaitApproval"))
                    .events(scheduled(5, "tok-1"))
                    .build()
                    .unwrap()
            });
        let answered = mock!(Client::get_execution_history)
            .match_requests(|r| r.execution_arn() == Some("arn:answered"))
            .then_output(move || {
                GetExecutionHistoryOutput::builder()
                    .events(entered(4, "AwaitApproval"))
                    .events(scheduled(5, "tok-1"))
                    .events(exited(6, "AwaitApproval"))
                    .build()
                    .unwrap()
            });
        let success = mock!(Client::send_task_success)
            .match_requests(|r| r.task_token() == Some("tok-1") && r.output() == Some(r#"{"decision":"promote"}"#))
            .then_output(|| SendTaskSuccessOutput::builder().build());
        let failure = mock!(Client::send_task_failure)
            .match_requests(|r| r.task_token() == Some("tok-1") && r.error() == Some("Aborted"))
            .then_output(|| SendTaskFailureOutput::builder().build());
        let executions = StepFunctionsExecutions::new(mock_client!(
            aws_sdk_sfn,
            RuleMode::MatchAny,
            [&waiting, &answered, &success, &failure]
        ));
        assert_eq!(executions.approval_token("arn:waiting").await.unwrap().as_deref(), Some("tok-1"));
        assert_eq!(executions.approval_token("arn:answered").await.unwrap(), None);
        executions.answer("tok-1", Ok(r#"{"decision":"promote"}"#.into())).await.unwrap();
        executions.answer("tok-1", Err(("Aborted".into(), "by an operator".into()))).await.unwrap();
        assert_eq!((success.num_calls(), failure.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn new_state_exits_are_read_newest_first_down_to_the_last_seen() {
        let event = |id: i64, kind: HistoryEventType, name: &str| {
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(id))
                .r#type(kind)
                .state_exited_event_details(StateExitedEventDetails::builder().name(name).output("{}").build().unwrap())
                .build()
                .unwrap()
        };
        let entered = |id: i64| {
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(id))
                .r#type(HistoryEventType::WaitStateEntered)
                .build()
                .unwrap()
        };
        // The history newest first, in pages: 9, 8 | 7, 4 | 3.
        let pages = || {
            mock!(Client::get_execution_history)
                .match_requests(|r| r.reverse_order() == Some(true))
                .sequence()
                .output(move || {
                    GetExecutionHistoryOutput::builder()
                        .events(event(9, HistoryEventType::TaskStateExited, "CheckHealth"))
                        .events(entered(8))
                        .next_token("page-2")
                        .build()
                        .unwrap()
                })
                .output(move || {
                    GetExecutionHistoryOutput::builder()
                        .events(event(7, HistoryEventType::TaskStateExited, "Shift"))
                        .events(entered(4))
                        .next_token("page-3")
                        .build()
                        .unwrap()
                })
                .output(move || {
                    GetExecutionHistoryOutput::builder()
                        .events(event(3, HistoryEventType::TaskStateExited, "Prepare"))
                        .build()
                        .unwrap()
                })
                .build()
        };
        let names = |exits: Vec<StateExit>| exits.into_iter().map(|e| (e.event_id, e.state_name)).collect::<Vec<_>>();
        let rule = pages();
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, [&rule]));
        let all = executions.state_exits_after("arn:exec", 0).await.unwrap();
        assert_eq!(names(all), [(3, "Prepare".into()), (7, "Shift".into()), (9, "CheckHealth".into())]);
        assert_eq!(rule.num_calls(), 3);
        // Seen up to event 7: the first two pages are read, and only what is newer is returned.
        let rule = pages();
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, [&rule]));
        assert_eq!(names(executions.state_exits_after("arn:exec", 7).await.unwrap()), [(9, "CheckHealth".into())]);
        assert_eq!(rule.num_calls(), 2, "reading stopped at the last event seen");
    }
}
