//! Every controller function on AWS: the task its `CANARY_TASK` environment variable names.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let task = std::env::var(canary_functions::serve::TASK_VARIABLE).ok();
    canary_functions::serve::main(canary_functions::serve::ControllerTask::parse(task.as_deref())).await
}
