//! `CheckHealth`: one step's window judged for every function of the rollout.

use crate::carry::release_if_done;
use crate::error::ControllerError;
use canary_aws::{Aliases, Metrics, WindowQuery};
use canary_core::Rollout;
use chrono::{DateTime, Utc};

/// The metrics query for both versions of a rollout over one window.
pub(crate) fn window_query(rollout: &Rollout, start: DateTime<Utc>, end: DateTime<Utc>) -> WindowQuery {
    WindowQuery {
        function_name: rollout.request.function_name().to_string(),
        alias: rollout.request.alias.clone(),
        new_version: rollout.request.version.clone(),
        baseline_version: rollout.old_version.clone(),
        start,
        end,
        slow_above_ms: rollout.slow_threshold_ms(),
    }
}

/// Whether an operator's pause holds the rollout (`canaryctl pause`): its first function's pause tag names
/// this execution. A read that fails keeps the rollout as the last check left it, paused or not: a transient
/// error neither pauses a rollout nor lets a paused one move on.
async fn paused(state: &Rollout, aliases: &dyn Aliases) -> bool {
    let Some((function, key, execution)) = state.pause_target() else {
        return false;
    };
    match aliases.tag(&function, &key).await {
        Ok(value) => value.as_deref() == Some(execution.as_str()),
        Err(error) => {
            tracing::warn!(%error, function, "could not read the pause tag; the rollout stays as it was");
            state.paused_since.is_some()
        }
    }
}

/// `CheckHealth`: judges the current step's window and decides what comes next (a passed bake at 100%
/// ends the rollout, and releases the alias).
pub async fn check(
    state: Rollout,
    metrics: &dyn Metrics,
    aliases: &dyn Aliases,
    now: DateTime<Utc>,
) -> Result<Rollout, ControllerError> {
    let Some((start, end)) = state.health_window(now) else {
        return Err(ControllerError::InvalidState("health checked before the first move".into()));
    };
    let state = {
        let paused = paused(&state, aliases).await;
        state.with_pause(paused, now)
    };
    // The alarms are the release's: read once, judged with each function's figures.
    let alarms =
        if state.needs_metrics() { metrics.alarm_states(&state.request.health.alarms).await? } else { Vec::new() };
    let mut checked = Vec::new();
    for view in state.function_views() {
        let figures = if view.needs_metrics() {
            let figures = metrics.figures(&window_query(&view, start, end)).await?;
            Some(canary_core::health::HealthFigures { alarms: alarms.clone(), ..figures })
        } else {
            None
        };
        let view = view.after_check(figures, now);
        let record = view.history.last();
        tracing::info!(function = view.request.function, step = record.map(|r| r.step), verdict = ?record.and_then(|r| r.verdict.clone()),
            next = ?view.next, "health checked");
        checked.push(view);
    }
    release_if_done(aliases, state.combine(checked)).await
}
