//! Lambda's version states, which moto never changes: a version marked Pending, Inactive or Failed.

use crate::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use local_aws::{function_ref, is_version};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub(crate) struct VersionMark {
    pub(crate) function: String,
    pub(crate) version: String,
    pub(crate) state: String,
}

/// Marks a version `Pending`, `Inactive` or `Failed` (or `Active` again, which forgets the mark).
pub(crate) async fn set_version_state(
    State(app): State<Arc<AppState>>,
    axum::Json(mark): axum::Json<VersionMark>,
) -> StatusCode {
    if !["Active", "Pending", "Inactive", "Failed"].contains(&mark.state.as_str()) || !is_version(&mark.version) {
        return StatusCode::BAD_REQUEST;
    }
    eprintln!("version state: {}:{} is {}", mark.function, mark.version, mark.state);
    let key = (function_ref(&mark.function, None).0, mark.version);
    let mut states = app.version_states.lock().await;
    if mark.state == "Active" {
        states.remove(&key);
    } else {
        states.insert(key, mark.state);
    }
    StatusCode::NO_CONTENT
}

pub(crate) async fn clear_version_states(State(app): State<Arc<AppState>>) -> StatusCode {
    app.version_states.lock().await.clear();
    StatusCode::NO_CONTENT
}

/// The state a version read with `query` (`Qualifier=N`) was marked with, if any.
pub(crate) async fn marked_state(app: &AppState, function: &str, query: Option<&str>) -> Option<String> {
    let qualifier = query?.split('&').find_map(|pair| pair.strip_prefix("Qualifier="))?;
    let key = (function_ref(function, None).0, qualifier.to_string());
    app.version_states.lock().await.get(&key).cloned()
}

/// A configuration as moto answered it, with Lambda's `State` of a marked version.
pub(crate) fn with_state(body: &Bytes, state: &str) -> Bytes {
    let Ok(mut configuration) = serde_json::from_slice::<serde_json::Value>(body) else { return body.clone() };
    configuration["State"] = serde_json::json!(state);
    configuration["StateReason"] = serde_json::json!(format!("marked {state} by the local stack"));
    Bytes::from(configuration.to_string())
}
