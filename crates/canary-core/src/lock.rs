//! One rollout per alias, made atomic by Lambda itself: an execution holds an alias while its description
//! carries the execution's lock marker. `Prepare` writes the marker with `UpdateAlias` conditional on the
//! revision it read, so of two executions that read the same revision exactly one can write it (AWS
//! guarantees the compare-and-swap; `ListExecutions`, being eventually consistent, cannot). Every later
//! write of the execution names the revision it last wrote, and every ending writes the original
//! description back, which changes the revision: a write still in flight from a stopped execution then
//! fails instead of moving traffic after the restore.
//!
//! The marker keeps the alias's own description after it, so that a retried `Prepare` (which finds its own
//! marker) still knows what to put back. An alias description holds at most 256 characters, so `Prepare`
//! refuses an alias whose description would not fit beside the marker ([`room_beside`]): it is never cut.
//! Ownership is the routing: someone may edit the description during a rollout, and the controller puts
//! the marker back over their text (`Rollout::adopt`), which the state keeps whole.

/// How every marker begins.
pub const PREFIX: &str = "canary-rollout lock: ";

/// The longest description Lambda stores on an alias.
pub const MAX_DESCRIPTION: usize = 256;

/// How many characters of an alias's own description fit beside `execution`'s marker.
///
/// ```
/// use canary_core::lock::{MAX_DESCRIPTION, marker, room_beside};
/// let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
/// let fits = "d".repeat(room_beside(arn));
/// assert_eq!(marker(arn, &fits).chars().count(), MAX_DESCRIPTION);
/// ```
pub fn room_beside(execution: &str) -> usize {
    MAX_DESCRIPTION.saturating_sub(PREFIX.chars().count() + execution.chars().count() + 1)
}

/// The description an execution writes to hold an alias: the marker, then the original description.
///
/// ```
/// use canary_core::lock::{holder, marker};
/// let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
/// let text = marker(arn, "orders, production traffic");
/// assert_eq!(holder(&text), Some((arn, "orders, production traffic")));
/// assert_eq!(holder("orders, production traffic"), None);
/// ```
pub fn marker(execution: &str, original: &str) -> String {
    let text =
        if original.is_empty() { format!("{PREFIX}{execution}") } else { format!("{PREFIX}{execution}\n{original}") };
    text.chars().take(MAX_DESCRIPTION).collect()
}

/// The execution holding an alias with this description, and the description it will put back; `None`
/// when the alias is not held.
pub fn holder(description: &str) -> Option<(&str, &str)> {
    let rest = description.strip_prefix(PREFIX)?;
    Some(rest.split_once('\n').unwrap_or((rest, "")))
}

/// The lock an alias carries when a rollout is prepared, as the prepare Lambda found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The execution named by the marker.
    pub execution: String,
    /// Whether that execution still runs (`DescribeExecution`); a lock of an ended one is stale.
    pub running: bool,
}
