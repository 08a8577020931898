//! Publishing a task's rollout events: bounded and best effort, never failing the task.

use canary_aws::Notifier;
use canary_core::Rollout;
use canary_core::notice::{Task, notices};

/// How long a task waits for its rollout events to be published. Publishing is best effort and runs after
/// the task's write: it must never hold the function until its own timeout, which would turn a move that
/// happened into a failed task.
pub const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Publishes what a task's resulting state announces. A notification that cannot be published within
/// [`PUBLISH_TIMEOUT`] is logged; it never fails the rollout.
pub async fn announce(notifier: &dyn Notifier, task: Task, state: &Rollout) {
    let notices = notices(task, state);
    if notices.is_empty() {
        return;
    }
    match tokio::time::timeout(PUBLISH_TIMEOUT, notifier.publish(&notices)).await {
        Ok(Ok(())) => {
            tracing::info!(events = ?notices.iter().map(|n| n.detail_type.as_str()).collect::<Vec<_>>(), "published")
        }
        Ok(Err(error)) => tracing::warn!(%error, "rollout events not published"),
        Err(_) => tracing::warn!(seconds = PUBLISH_TIMEOUT.as_secs(), "rollout events not published in time"),
    }
}

/// Publishes one notice, as [`announce`] does: bounded, best effort.
pub(crate) async fn announce_notice(notifier: &dyn Notifier, notice: canary_core::notice::Notice) {
    match tokio::time::timeout(PUBLISH_TIMEOUT, notifier.publish(std::slice::from_ref(&notice))).await {
        Ok(Ok(())) => tracing::info!(event = notice.detail_type.as_str(), "published"),
        Ok(Err(error)) => tracing::warn!(%error, "rollout event not published"),
        Err(_) => tracing::warn!(seconds = PUBLISH_TIMEOUT.as_secs(), "rollout event not published in time"),
    }
}
