//! `canary-safety-net`: restores the alias of a rollout whose execution was stopped, timed out, or failed
//! outside the state machine's own rollback.
//!
//! The local stack's binary for this task; on AWS `canary-controller` serves it (see `serve`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_functions::serve::main(Ok(canary_functions::serve::ControllerTask::SafetyNet)).await
}
