//! Facts of where the controller runs, which every request is checked against before anything moves: how
//! finely the metrics it judges are resolved, and how late they arrive at the least.
//!
//! On AWS Lambda's metrics are per minute and arrive at least a minute late, so a hold of a second, a look
//! every 10 s or a metrics delay of 0 would judge windows CloudWatch has not filled: such a rollout judges
//! nothing real. The local stack publishes each invocation at once with its own timestamp, so its tests
//! may hold for seconds. The facts are the deployment's, not the request's: the template passes them to
//! `Prepare` in the state machine's definition (`DefinitionSubstitutions`), `canaryctl start` reads them from
//! the same definition, and `canaryctl plan` assumes AWS unless told otherwise.

use crate::refusal::{Problems, Refusal};
use crate::request::{RolloutRequest, Strategy};
use serde::{Deserialize, Deserializer, Serialize};

/// Where the controller runs, as far as judging a window is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The period of the metrics' buckets: a window shorter than this cannot be complete.
    #[serde(deserialize_with = "seconds")]
    pub metrics_resolution_seconds: u64,
    /// The least `health.metrics_delay_seconds` after which a window's metrics are complete.
    #[serde(deserialize_with = "seconds")]
    pub min_metrics_delay_seconds: u64,
}

impl Default for Deployment {
    /// AWS: what a definition that says nothing is taken to mean, the safe side.
    fn default() -> Self {
        Deployment::AWS
    }
}

impl Deployment {
    /// AWS: Lambda's metrics are per minute, and a minute's are complete a minute after it at the earliest
    /// (typically about two).
    pub const AWS: Deployment = Deployment { metrics_resolution_seconds: 60, min_metrics_delay_seconds: 60 };

    /// The local stack: every invocation's metrics are published at once, with its own timestamp.
    pub const LOCAL: Deployment = Deployment { metrics_resolution_seconds: 1, min_metrics_delay_seconds: 0 };

    /// The definition's substitutions that carry these facts (`${MetricsResolutionSeconds}`, ...), with their
    /// values: what the template sets for AWS, and `cargo xtask local up` for the local stack.
    pub fn substitutions(&self) -> [(&'static str, String); 2] {
        [
            ("MetricsResolutionSeconds", self.metrics_resolution_seconds.to_string()),
            ("MinMetricsDelaySeconds", self.min_metrics_delay_seconds.to_string()),
        ]
    }

    /// The facts a state machine's definition carries: `Prepare`'s `deployment` parameter, which the
    /// template's substitutions fill. `None` when the definition has none (an older one).
    ///
    /// ```
    /// use canary_core::deployment::Deployment;
    /// let definition = r#"{"States": {"Prepare": {"Parameters": {"Payload": {"deployment":
    ///     {"metrics_resolution_seconds": "60", "min_metrics_delay_seconds": "60"}}}}}}"#;
    /// assert_eq!(Deployment::from_definition(definition), Some(Deployment::AWS));
    /// assert_eq!(Deployment::from_definition("{}"), None);
    /// ```
    pub fn from_definition(definition: &str) -> Option<Deployment> {
        let definition: serde_json::Value = serde_json::from_str(definition).ok()?;
        let facts = definition.pointer("/States/Prepare/Parameters/Payload/deployment")?;
        serde_json::from_value(facts.clone()).ok()
    }

    /// The stack's safety net function, which a definition names (`controller.safety_net_function` among
    /// `Prepare`'s parameters) so that `canaryctl abort` has the deployed controller restore an alias.
    ///
    /// ```
    /// use canary_core::deployment::Deployment;
    /// let definition = r#"{"States": {"Prepare": {"Parameters": {"Payload": {"controller":
    ///     {"safety_net_function": "arn:aws:lambda:eu-west-1:123456789012:function:net"}}}}}}"#;
    /// assert_eq!(Deployment::safety_net_of(definition).as_deref(), Some("arn:aws:lambda:eu-west-1:123456789012:function:net"));
    /// assert_eq!(Deployment::safety_net_of("{}"), None);
    /// ```
    pub fn safety_net_of(definition: &str) -> Option<String> {
        let definition: serde_json::Value = serde_json::from_str(definition).ok()?;
        let function = definition.pointer("/States/Prepare/Parameters/Payload/controller/safety_net_function")?;
        function.as_str().map(str::to_string)
    }

    /// Refuses what would be judged on incomplete windows here: holds and looks shorter than the metrics'
    /// resolution, and a metrics delay shorter than the least after which they are complete. Every field is
    /// named; nothing is checked when health checks are off (nothing is judged).
    pub fn check(&self, request: &RolloutRequest) -> Result<(), Refusal> {
        let health = &request.health;
        let mut problems = Problems::default();
        if !health.enabled {
            return Ok(());
        }
        let resolution = self.metrics_resolution_seconds;
        let too_short = |what: &str, seconds: u64| {
            format!(
                "{what} {seconds} s is shorter than the {resolution} s to which metrics are resolved here, so it \
                 would be judged on an incomplete window"
            )
        };
        let hold_fix = format!("hold each step at least {resolution} s");
        for (field, hold) in held_fields(&request.strategy) {
            if hold < resolution {
                problems.add(field, too_short("a hold of", hold), hold_fix.as_str());
            }
        }
        if let Some(interval) = health.check_interval_seconds.filter(|i| (1..resolution).contains(i)) {
            problems.add(
                "health.check_interval_seconds",
                too_short("a look every", interval),
                format!("look at most every {resolution} s"),
            );
        }
        if health.metrics_delay_seconds < self.min_metrics_delay_seconds {
            problems.add(
                "health.metrics_delay_seconds",
                format!(
                    "{} s is less than the {} s after which metrics are complete here, so every window would be \
                     judged before its data arrived",
                    health.metrics_delay_seconds, self.min_metrics_delay_seconds
                ),
                format!(
                    "use at least {} (Lambda's metrics typically arrive about 120 s late)",
                    self.min_metrics_delay_seconds
                ),
            );
        }
        problems.into_result(())
    }
}

/// The strategy's held steps as the fields that set their holds.
fn held_fields(strategy: &Strategy) -> Vec<(String, u64)> {
    match strategy {
        Strategy::Linear { interval_seconds, .. } => {
            vec![("strategy.linear.interval_seconds".into(), *interval_seconds)]
        }
        Strategy::Canary { bake_seconds, .. } => vec![("strategy.canary.bake_seconds".into(), *bake_seconds)],
        Strategy::Steps(steps) => steps
            .iter()
            .enumerate()
            .map(|(i, step)| (format!("strategy.steps[{i}].hold_seconds"), step.hold_seconds))
            .collect(),
        Strategy::AllAtOnce { bake_seconds } => bake_seconds
            .filter(|b| *b > 0)
            .map(|bake| ("strategy.all_at_once.bake_seconds".to_string(), bake))
            .into_iter()
            .collect(),
    }
}

/// A number of seconds given as a number or as its text: a definition's substitutions are text.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Number(u64),
        Text(String),
    }
    match Given::deserialize(deserializer)? {
        Given::Number(n) => Ok(n),
        Given::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_read_as_numbers_or_as_the_text_a_substitution_leaves() {
        let facts = |value: serde_json::Value| serde_json::from_value::<Deployment>(value);
        let numbers = serde_json::json!({"metrics_resolution_seconds": 1, "min_metrics_delay_seconds": 0});
        assert_eq!(facts(numbers).unwrap(), Deployment::LOCAL);
        let text = serde_json::json!({"metrics_resolution_seconds": "60", "min_metrics_delay_seconds": "60"});
        assert_eq!(facts(text).unwrap(), Deployment::AWS);
        let unfilled = serde_json::json!({"metrics_resolution_seconds": "${MetricsResolutionSeconds}", "min_metrics_delay_seconds": "60"});
        assert!(facts(unfilled).is_err(), "a placeholder left unfilled is not a fact");
        assert_eq!(Deployment::default(), Deployment::AWS, "a definition that says nothing is judged as AWS");
    }

    #[test]
    fn the_safety_net_is_read_from_the_definition() {
        let named =
            r#"{"States": {"Prepare": {"Parameters": {"Payload": {"controller": {"safety_net_function": "net"}}}}}}"#;
        assert_eq!(Deployment::safety_net_of(named).as_deref(), Some("net"));
        assert_eq!(Deployment::safety_net_of(r#"{"States": {}}"#), None, "an older definition names none");
        assert_eq!(Deployment::safety_net_of("not json"), None);
    }
}
