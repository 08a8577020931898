use crate::error::classify;
use crate::{AwsError, ExecutionInfo, Executions, StateExit};
use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::HistoryEventType;

/// [`Executions`] on the Step Functions API.
#[derive(Debug, Clone)]
pub struct StepFunctionsExecutions {
    client: Client,
}

impl StepFunctionsExecutions {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

#[async_trait]
impl Executions for StepFunctionsExecutions {
    async fn start(&self, state_machine_arn: &str, name: Option<&str>, input: &str) -> Result<String, AwsError> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .set_name(name.map(str::to_string))
            .input(input)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.execution_arn().to_string())
    }

    async fn describe(&self, execution_arn: &str) -> Result<ExecutionInfo, AwsError> {
        let out = self.client.describe_execution().execution_arn(execution_arn).send().await.map_err(classify)?;
        Ok(ExecutionInfo {
            arn: out.execution_arn().to_string(),
            name: out.name().unwrap_or_default().to_string(),
            status: out.status().as_str().to_string(),
            output: out.output().map(str::to_string),
            error: out.error().map(str::to_string),
            cause: out.cause().map(str::to_string),
        })
    }

    async fn state_exits(&self, execution_arn: &str) -> Result<Vec<StateExit>, AwsError> {
        let mut exits = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_execution_history()
                .execution_arn(execution_arn)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(classify)?;
            for event in out.events() {
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
                    });
                }
            }
            next_token = out.next_token().map(str::to_string);
            if next_token.is_none() {
                break;
            }
        }
        Ok(exits)
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
    async fn history_keeps_state_exits_across_pages() {
        let event = |id: i64, kind: HistoryEventType, name: &str| {
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(id))
                .r#type(kind)
                .state_exited_event_details(StateExitedEventDetails::builder().name(name).output("{}").build().unwrap())
                .build()
                .unwrap()
        };
        let rule = mock!(Client::get_execution_history)
            .sequence()
            .output(move || {
                GetExecutionHistoryOutput::builder()
                    .events(event(3, HistoryEventType::TaskStateExited, "Shift"))
                    .events(
                        HistoryEvent::builder()
                            .id(4)
                            .timestamp(DateTime::from_secs(4))
                            .r#type(HistoryEventType::WaitStateEntered)
                            .build()
                            .unwrap(),
                    )
                    .next_token("more")
                    .build()
                    .unwrap()
            })
            .output(move || {
                GetExecutionHistoryOutput::builder()
                    .events(event(7, HistoryEventType::TaskStateExited, "CheckHealth"))
                    .build()
                    .unwrap()
            })
            .build();
        let executions = StepFunctionsExecutions::new(mock_client!(aws_sdk_sfn, [&rule]));
        let exits = executions.state_exits("arn:exec").await.unwrap();
        let names: Vec<(i64, &str)> = exits.iter().map(|e| (e.event_id, e.state_name.as_str())).collect();
        assert_eq!(names, [(3, "Shift"), (7, "CheckHealth")]);
    }
}
