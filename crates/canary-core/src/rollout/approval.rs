//! Approval gates (`approval.before_percent`): the operator's decision, and what it does to the rollout.

use super::{Next, Rollout};
use serde::{Deserialize, Serialize};

/// An operator's decision at an approval gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Decision {
    /// On to the gated step.
    Promote,
    /// Straight to 100%.
    PromoteFull,
}

impl Decision {
    /// The answer to send with the gate's task token (SendTaskSuccess's output).
    pub fn answer(self) -> serde_json::Value {
        serde_json::json!({ "decision": self })
    }

    /// The decision in an answer, `{"decision": "promote" | "promote_full"}`; anything else is refused.
    ///
    /// ```
    /// use canary_core::rollout::Decision;
    /// assert_eq!(Decision::from_answer(Some(&Decision::PromoteFull.answer())), Ok(Decision::PromoteFull));
    /// assert!(Decision::from_answer(Some(&serde_json::json!({"decision": "yes"}))).unwrap_err().contains("\"yes\""));
    /// assert!(Decision::from_answer(None).unwrap_err().contains("no decision"));
    /// ```
    pub fn from_answer(answer: Option<&serde_json::Value>) -> Result<Decision, String> {
        let fix = "answer {\"decision\": \"promote\"} or {\"decision\": \"promote_full\"}";
        match answer.and_then(|a| a.get("decision")) {
            None => Err(format!("no decision in the answer: {fix}")),
            Some(value) => {
                serde_json::from_value(value.clone()).map_err(|_| format!("unknown decision {value}: {fix}"))
            }
        }
    }
}

impl Rollout {
    /// Applies an operator's decision at an approval gate: `promote` goes on to the gated step,
    /// `promote_full` straight to 100%.
    pub fn after_approval(mut self, decision: Decision) -> Result<Rollout, String> {
        if self.next != Next::AwaitApproval {
            return Err(format!("the rollout is not waiting for approval (next: {:?})", self.next));
        }
        match decision {
            Decision::Promote => self.approved.push(self.next_index()),
            Decision::PromoteFull => self.skip_to_final = true,
        }
        Ok(self.go_to_next_move())
    }

    /// Applies the answer the state machine placed in the state (`approval`), and removes it: a decision
    /// that is not `promote` or `promote_full` is refused with what would be right.
    pub fn apply_answer(mut self) -> Result<(Decision, Rollout), String> {
        let decision = Decision::from_answer(self.decision.take().as_ref())?;
        Ok((decision, self.after_approval(decision)?))
    }
}
