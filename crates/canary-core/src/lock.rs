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
//!
//! **The marker signs the routing.** Each write of an execution names how many moves it has written (`#0`
//! for `Prepare`'s lock, `#N` after the N-th move), so the alias says which of the execution's routings it
//! should carry. Ownership is the lock or the revision, never a routing coincidence: an alias is the
//! execution's to write when it sits at the revision the execution last wrote, or carries its marker and
//! the routing that marker names (`Rollout::owns`). A person who changes the routing and keeps the
//! description leaves a marker naming another routing, and is handed over; one who edits the description
//! and keeps the marker is carried on from (`Rollout::adopt`). Markers written before moves were signed
//! (no `#N`) are still read, with the rules of their time.

/// How every marker begins.
pub const PREFIX: &str = "canary-rollout lock: ";

/// The longest description Lambda stores on an alias.
pub const MAX_DESCRIPTION: usize = 256;

/// How many characters of an alias's own description fit beside `execution`'s marker.
///
/// ```
/// use canary_core::lock::{MAX_DESCRIPTION, room_beside, signed};
/// let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
/// let fits = "d".repeat(room_beside(arn));
/// // Whole beside the marker of the last move of the longest schedule.
/// assert_eq!(signed(arn, 1000, &fits).chars().count(), MAX_DESCRIPTION);
/// ```
pub fn room_beside(execution: &str) -> usize {
    MAX_DESCRIPTION.saturating_sub(PREFIX.chars().count() + execution.chars().count() + MOVES_ROOM + 1)
}

/// The characters a marker's count of moves takes, at most: ` #1000` (a schedule has at most 1,000 steps).
const MOVES_ROOM: usize = 6;

/// The description `Prepare` writes to hold an alias: the marker (no move written yet), then the original
/// description.
///
/// ```
/// use canary_core::lock::{holder, marker};
/// let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
/// let text = marker(arn, "orders, production traffic");
/// assert_eq!(text, format!("canary-rollout lock: {arn} #0\norders, production traffic"));
/// assert_eq!(holder(&text), Some((arn, "orders, production traffic")));
/// assert_eq!(holder("orders, production traffic"), None);
/// ```
pub fn marker(execution: &str, original: &str) -> String {
    signed(execution, 0, original)
}

/// The description an execution writes with its `moves`-th move: the marker signed with the count.
///
/// ```
/// use canary_core::lock::{Marker, parse, signed};
/// let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-42";
/// let text = signed(arn, 3, "orders");
/// assert_eq!(parse(&text), Some(Marker { execution: arn, moves: Some(3), original: "orders" }));
/// // A marker of an earlier controller, which did not sign its moves.
/// let unsigned = format!("canary-rollout lock: {arn}\norders");
/// assert_eq!(parse(&unsigned), Some(Marker { execution: arn, moves: None, original: "orders" }));
/// ```
pub fn signed(execution: &str, moves: usize, original: &str) -> String {
    let text = if original.is_empty() {
        format!("{PREFIX}{execution} #{moves}")
    } else {
        format!("{PREFIX}{execution} #{moves}\n{original}")
    };
    text.chars().take(MAX_DESCRIPTION).collect()
}

/// A lock marker, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker<'a> {
    /// The execution holding the alias.
    pub execution: &'a str,
    /// How many moves that execution had written when it wrote this description; `None` for a marker of a
    /// controller from before moves were signed.
    pub moves: Option<usize>,
    /// The description it will put back.
    pub original: &'a str,
}

/// The marker a description carries, if any.
pub fn parse(description: &str) -> Option<Marker<'_>> {
    let rest = description.strip_prefix(PREFIX)?;
    let (first, original) = rest.split_once('\n').unwrap_or((rest, ""));
    let (execution, moves) = match first.split_once(" #") {
        Some((execution, count)) => (execution, count.parse().ok()),
        None => (first, None),
    };
    Some(Marker { execution, moves, original })
}

/// The execution holding an alias with this description, and the description it will put back; `None`
/// when the alias is not held.
pub fn holder(description: &str) -> Option<(&str, &str)> {
    parse(description).map(|m| (m.execution, m.original))
}

/// Whether an alias with this description is held by `execution`.
pub fn held_by(description: &str, execution: &str) -> bool {
    holder(description).is_some_and(|(holder, _)| holder == execution)
}

/// The lock an alias carries when a rollout is prepared, as the prepare Lambda found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The execution named by the marker.
    pub execution: String,
    /// Whether that execution still runs (`DescribeExecution`); a lock of an ended one is stale.
    pub running: bool,
}

/// The tag key an operator's pause of a rollout of `alias` puts on the function (`canaryctl pause`), its value
/// the execution paused: `lambda-canary:pause:<alias>`, one per alias, so rollouts of two aliases of one
/// function pause apart. A tag, not the alias's description, because writing the alias would change its
/// revision, which is this execution's hold on it. `None` when the key would pass Lambda's 128 characters.
///
/// ```
/// assert_eq!(canary_core::lock::pause_tag("live").as_deref(), Some("lambda-canary:pause:live"));
/// assert_eq!(canary_core::lock::pause_tag(&"a".repeat(120)), None);
/// ```
pub fn pause_tag(alias: &str) -> Option<String> {
    let key = format!("{PAUSE_TAG_PREFIX}{alias}");
    (key.len() <= 128).then_some(key)
}

/// The prefix of [`pause_tag`]'s keys.
pub const PAUSE_TAG_PREFIX: &str = "lambda-canary:pause:";
