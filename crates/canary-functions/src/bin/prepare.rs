//! `Prepare`: validates the rollout request (alias, versions, alarms), records the alias's original routing,
//! and takes the alias's lock. Traffic does not move.
//!
//! The local stack's binary for this task; on AWS `canary-controller` serves it (see `serve`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_functions::serve::main(Ok(canary_functions::serve::ControllerTask::Prepare)).await
}
