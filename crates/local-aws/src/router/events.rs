//! The template's EventBridge rules, played: ended executions delivered to the safety net, and the sweep's
//! schedule.

use crate::*;
use axum::body::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;

/// How often the EventBridge stand-in looks for executions that ended.
pub(crate) const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Plays the template's EventBridge rule: each execution of any state machine that ends ABORTED, TIMED_OUT
/// or FAILED is delivered once to `function`, as an asynchronous invocation with the event EventBridge
/// sends ("Step Functions Execution Status Change"). Runs until the router stops.
pub(crate) async fn watch_executions(app: Arc<AppState>, sfn: aws_sdk_sfn::Client, function: String, account: String) {
    let mut delivered = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Ok(machines) = sfn.list_state_machines().send().await else { continue };
        for machine in machines.state_machines() {
            let mut pages =
                sfn.list_executions().state_machine_arn(machine.state_machine_arn()).into_paginator().send();
            while let Some(Ok(page)) = pages.next().await {
                for execution in page.executions() {
                    let status = execution.status().as_str();
                    let arn = execution.execution_arn();
                    if !["ABORTED", "TIMED_OUT", "FAILED"].contains(&status) || !delivered.insert(arn.to_string()) {
                        continue;
                    }
                    let Ok(described) = sfn.describe_execution().execution_arn(arn).send().await else {
                        delivered.remove(arn);
                        continue;
                    };
                    let millis = |t: Option<&aws_sdk_sfn::primitives::DateTime>| t.and_then(|t| t.to_millis().ok());
                    let event = serde_json::json!({
                        "version": "0",
                        "id": format!("local-{}", fastrand::u64(..)),
                        "detail-type": "Step Functions Execution Status Change",
                        "source": "aws.states",
                        "account": account,
                        "time": chrono_free_now(),
                        "region": app.region,
                        "resources": [arn],
                        "detail": {
                            "executionArn": arn,
                            "stateMachineArn": machine.state_machine_arn(),
                            "name": execution.name(),
                            "status": status,
                            "startDate": millis(Some(described.start_date())),
                            "stopDate": millis(described.stop_date()),
                            "input": described.input(),
                            "output": described.output(),
                            "error": described.error(),
                            "cause": described.cause(),
                        }
                    });
                    if take_fault(&app, &function, &[FaultKind::DropDelivery]).await.is_some() {
                        eprintln!("execution {arn} ended {status}: its delivery to {function} is lost (injected)");
                        continue;
                    }
                    eprintln!("execution {arn} ended {status}: delivering it to {function}");
                    let (app, function) = (app.clone(), function.clone());
                    tokio::spawn(async move {
                        let answer = run_invocation(&app, &function, None, Bytes::from(event.to_string())).await;
                        let failed = answer.headers().contains_key("X-Amz-Function-Error");
                        let body = answer.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        eprintln!("{function} answered (failed: {failed}): {}", String::from_utf8_lossy(&body));
                    });
                }
            }
        }
    }
}

/// Plays the template's scheduled rule of the safety net's sweep: every `every`, the safety net is invoked
/// asynchronously with `{"sweep": STATE_MACHINE_ARN}` for each state machine. Runs until the router stops.
pub(crate) async fn sweep_on_schedule(app: Arc<AppState>, sfn: aws_sdk_sfn::Client, function: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Ok(machines) = sfn.list_state_machines().send().await else { continue };
        // Armed under the name `sweep` (one fault per name: the safety net's own may be a lost delivery).
        if take_fault(&app, "sweep", &[FaultKind::SkipSweep]).await.is_some() {
            continue;
        }
        for machine in machines.state_machines() {
            let event = serde_json::json!({"sweep": machine.state_machine_arn()});
            let answer = run_invocation(&app, &function, None, Bytes::from(event.to_string())).await;
            let failed = answer.headers().contains_key("X-Amz-Function-Error");
            let body = answer.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body = String::from_utf8_lossy(&body);
            // Quiet when there is nothing to report: it runs every few seconds.
            if failed || body.contains("\"action\"") {
                eprintln!("sweep of {}: (failed: {failed}) {body}", machine.state_machine_arn());
            }
        }
    }
}

/// Now, as EventBridge writes an event's time (`2026-11-29T10:00:00Z`).
pub(crate) fn chrono_free_now() -> String {
    aws_sdk_sfn::primitives::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_sdk_sfn::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}
