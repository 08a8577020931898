//! `CheckHealth`: judges the current step from CloudWatch and decides what comes next; a passed bake at
//! full traffic ends the rollout.
//!
//! The local stack's binary for this task; on AWS `canary-controller` serves it (see `serve`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_functions::serve::main(Ok(canary_functions::serve::ControllerTask::Check)).await
}
