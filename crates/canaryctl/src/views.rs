//! What canaryctl shows of an execution, as values: the JSON of `status` (and `watch`'s first event), and
//! what `render` writes for people.

use canary_core::execution::{ExecutionOutcome, ExecutionStatus};
use canary_core::{Next, Rollout};

/// Where an execution's rollout stands, or how it ended: `canaryctl status` (and `watch` at the end), as
/// JSON fields for machines and as a header with the latest figures for people.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct StatusView {
    pub execution_arn: String,
    pub name: String,
    /// Step Functions' status.
    pub status: ExecutionStatus,
    /// What it means for the rollout.
    pub outcome: ExecutionOutcome,
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The execution's report once it has one, its routings as shares.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::output::as_report_view")]
    #[schemars(with = "Option<crate::output::ReportView>")]
    pub report: Option<canary_core::Report>,
    /// A release's functions, each as [`RolloutView`] (its alias, versions, routing and figures), the first
    /// included; empty for a rollout of one function.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<RolloutView>,
    /// The rollout as its last state holds it; absent when the execution never prepared one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutView>,
    /// What the alias routes now, read afresh once the rollout has ended (what it was last set to may have
    /// been undone since, by the rollback, the safety net or a person).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::output::as_shares_opt")]
    #[schemars(with = "Option<Vec<crate::events::Share>>")]
    pub alias_now: Option<canary_core::Routing>,
}

/// The rollout part of a [`StatusView`].
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct RolloutView {
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
    /// 1-based; 0 before the first move.
    pub step: usize,
    pub step_count: usize,
    /// What the alias routes, as the rollout last set it.
    #[serde(serialize_with = "crate::output::as_shares")]
    #[schemars(with = "Vec<crate::events::Share>")]
    pub routing: canary_core::Routing,
    /// The new version's share of the alias's traffic, in percent.
    pub weight_percent: f64,
    pub next: Next,
    /// Seconds since the rollout started, until now or its end.
    pub elapsed_seconds: i64,
    /// When the next health check is due, while a step is held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The latest figures of both versions (the current step's window so far).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<canary_core::HealthFigures>,
    /// Every approval gate, and whether it was passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateView>,
    /// Since when an operator's pause (`canaryctl pause`) has held the rollout at its weight, as the last check
    /// saw it; absent when not paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<chrono::DateTime<chrono::Utc>>,
    /// The percentage the rollout is paused before, while it waits at an approval gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_before_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_step: Option<canary_core::rollout::StepRecord>,
    /// In a release's `functions`, once it has ended: what this function's alias routes now.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::output::as_shares_opt")]
    #[schemars(with = "Option<Vec<crate::events::Share>>")]
    pub alias_now: Option<canary_core::Routing>,
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct GateView {
    pub before_percent: f64,
    pub passed: bool,
}

impl RolloutView {
    pub fn of(
        state: &Rollout,
        finished_at: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let routing = state.expected_routing();
        let weight = routing.percent_of(&state.request.version);
        let record = state.history.last();
        let next_check_at = (state.next == Next::Hold && finished_at.is_none())
            .then(|| record.and_then(|r| r.checked_at.or(Some(r.started_at))))
            .flatten()
            .map(|from| from + chrono::Duration::seconds(state.wait_seconds as i64));
        let schedule = state.schedule();
        let gates = state
            .request
            .approval
            .before_percent
            .iter()
            .map(|percent| GateView {
                before_percent: *percent,
                passed: schedule
                    .steps
                    .iter()
                    .position(|s| canary_core::schedule::same_percent(s.percent, *percent))
                    .is_some_and(|i| state.approved.contains(&i)),
            })
            .collect();
        RolloutView {
            function: state.request.function.clone(),
            alias: state.request.alias.clone(),
            old_version: state.old_version.clone(),
            new_version: state.request.version.clone(),
            step: state.step.map_or(0, |s| s + 1),
            step_count: state.step_count,
            routing,
            weight_percent: weight,
            next: state.next,
            elapsed_seconds: (finished_at.unwrap_or(now) - state.started_at).num_seconds().max(0),
            next_check_at,
            figures: record.and_then(|r| r.figures.clone()),
            gates,
            paused_since: state.paused_since.filter(|_| finished_at.is_none()),
            paused_before_percent: (state.next == Next::AwaitApproval && finished_at.is_none())
                .then(|| schedule.step(state.next_index()).percent),
            last_step: record.cloned(),
            alias_now: None,
        }
    }
}
