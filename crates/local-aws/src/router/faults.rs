//! Faults the tests arm (`POST /_local/faults`): what the next invocations or writes of a function meet.

use crate::*;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Fault {
    pub(crate) function: String,
    pub(crate) kind: FaultKind,
    pub(crate) count: u32,
    #[serde(default)]
    pub(crate) seconds: u64,
}

/// What an armed fault does to an invocation (`"kind"` in `POST /_local/faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    /// The function fails without running.
    Error,
    /// Invoke answers 429, as Lambda's throttling does.
    Throttle,
    /// The function runs, then the caller sees `Sandbox.Timedout`, as for a function that ran out of time
    /// after its writes.
    TimeoutAfter,
    /// The function runs, then Invoke fails with Lambda's HTTP 500 `ServiceException`: its answer is lost.
    LostAfter,
    /// The function runs `seconds` late: a task in flight for that long.
    Delay,
    /// The function's next `UpdateAlias` calls answer HTTP 409 `ResourceConflictException`, as Lambda does
    /// while an update of the function is in progress.
    ConflictOnWrite,
    /// The next deliveries of an ended execution to the safety net (the function named) are lost, as an
    /// EventBridge event may be: only the sweep can then restore its alias.
    DropDelivery,
    /// The next scheduled sweeps do not run (armed for the function name `sweep`), as when the schedule's
    /// invocations fail: with a lost delivery, an ended execution's lock then stays on its alias (a stale
    /// lock).
    SkipSweep,
}

impl FaultKind {
    /// The faults an invocation of the function meets.
    pub(crate) const ON_INVOKE: [FaultKind; 5] =
        [FaultKind::Error, FaultKind::Throttle, FaultKind::TimeoutAfter, FaultKind::LostAfter, FaultKind::Delay];
}

pub(crate) async fn set_fault(State(app): State<Arc<AppState>>, axum::Json(fault): axum::Json<Fault>) -> StatusCode {
    if fault.count == 0 {
        return StatusCode::BAD_REQUEST;
    }
    eprintln!("fault armed: {fault:?}");
    app.faults.lock().await.insert(fault.function.clone(), fault);
    StatusCode::NO_CONTENT
}

/// The faults still armed, by function: how many invocations each will still fail.
pub(crate) async fn list_faults(State(app): State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    let faults = app.faults.lock().await;
    axum::Json(faults.iter().map(|(function, fault)| (function.clone(), serde_json::json!(fault.count))).collect())
}

pub(crate) async fn clear_faults(State(app): State<Arc<AppState>>) -> StatusCode {
    app.faults.lock().await.clear();
    StatusCode::NO_CONTENT
}

/// Takes one use of the fault armed for `function`, when it is one of `kinds`.
pub(crate) async fn take_fault(app: &AppState, function: &str, kinds: &[FaultKind]) -> Option<Fault> {
    let mut faults = app.faults.lock().await;
    let fault = faults.get_mut(function).filter(|f| kinds.contains(&f.kind))?;
    fault.count -= 1;
    let taken = fault.clone();
    if fault.count == 0 {
        faults.remove(function);
    }
    Some(taken)
}
