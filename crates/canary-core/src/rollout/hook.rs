//! Traffic hooks: which one runs now, with what payload, and what its answer decides.

use super::Next;
use super::Rollout;
use super::report::{MAX_MESSAGE_CHARS, bounded};
use crate::health::{Failure, Signal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::IntoStaticStr;

/// A traffic hook: before any traffic moves, or once the new version carries all of it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, strum::Display, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Hook {
    PreTraffic,
    PostTraffic,
}

impl Hook {
    /// Its name in the request (`hooks.pre_traffic`), the payload and the report.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a hook function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub passed: bool,
    pub message: String,
}

/// One run of a traffic hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HookRecord {
    pub hook: Hook,
    pub function: String,
    pub passed: bool,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl Rollout {
    /// The hook to run now, with its function and the payload it is invoked with: the function, the alias,
    /// and both versions (what CodeDeploy's hook payload leaves out), and a release's `functions`, each
    /// with the same fields. `None` unless `next` is a hook.
    pub fn hook_call(&self) -> Option<(Hook, String, serde_json::Value)> {
        let (hook, function) = match self.next {
            Next::PreTraffic => (Hook::PreTraffic, self.request.hooks.pre_traffic.clone()?),
            Next::PostTraffic => (Hook::PostTraffic, self.request.hooks.post_traffic.clone()?),
            _ => return None,
        };
        let mut payload = serde_json::json!({
            "hook": hook,
            "function": self.request.function,
            "alias": self.request.alias,
            "old_version": self.old_version,
            "new_version": self.request.version,
        });
        if !self.members.is_empty() {
            // A release's hook tests the release: every function, the first as above.
            payload["functions"] = serde_json::to_value(self.functions_named()).expect("names serialise");
        }
        Some((hook, function, payload))
    }

    /// Records a hook's outcome and decides what comes next: a failure rolls back.
    pub fn after_hook(mut self, outcome: HookOutcome, now: DateTime<Utc>) -> Rollout {
        let Some((hook, function, _)) = self.hook_call() else { return self };
        self.hooks_run.push(HookRecord {
            hook,
            function: function.clone(),
            passed: outcome.passed,
            message: bounded(&outcome.message, MAX_MESSAGE_CHARS),
            at: now,
        });
        if !outcome.passed {
            return self.fail(Failure {
                signal: Signal::Hook,
                value: 0.0,
                threshold: 0.0,
                p_value: None,
                message: format!("the {hook} hook {function} failed: {}", bounded(&outcome.message, MAX_MESSAGE_CHARS)),
            });
        }
        if hook == Hook::PostTraffic {
            return self.finish(now);
        }
        self.go_to_next_move()
    }
}
