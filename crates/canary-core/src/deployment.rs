//! Facts of where the controller runs, which every request is checked against before anything moves: how
//! finely the metrics it judges are resolved, how late they arrive at the least, and which functions (and
//! hooks) its roles may touch at all.
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

/// Where the controller runs, as far as judging a window and reaching a function are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The period of the metrics' buckets: a window shorter than this cannot be complete.
    #[serde(deserialize_with = "seconds")]
    pub metrics_resolution_seconds: u64,
    /// The least `health.metrics_delay_seconds` after which a window's metrics are complete.
    #[serde(deserialize_with = "seconds")]
    pub min_metrics_delay_seconds: u64,
    /// The functions whose aliases this deployment's roles may change (the template's
    /// `ManagedFunctionPattern`, `*` matching any characters): a request for another is refused before
    /// anything moves, rather than failing AccessDenied part-way. `None`: not said (an older definition, a
    /// direct invocation), not checked here; IAM still denies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_functions: Option<String>,
    /// The hook functions its roles may invoke (`HookFunctionPattern`), checked the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_functions: Option<String>,
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
    pub const AWS: Deployment = Deployment {
        metrics_resolution_seconds: 60,
        min_metrics_delay_seconds: 60,
        managed_functions: None,
        hook_functions: None,
    };

    /// The local stack: every invocation's metrics are published at once, with its own timestamp.
    pub const LOCAL: Deployment = Deployment {
        metrics_resolution_seconds: 1,
        min_metrics_delay_seconds: 0,
        managed_functions: None,
        hook_functions: None,
    };

    /// The definition's substitutions that carry these facts (`${MetricsResolutionSeconds}`, ...), with their
    /// values: what the template sets for AWS, and `cargo xtask local up` for the local stack.
    pub fn substitutions(&self) -> [(&'static str, String); 2] {
        [
            ("MetricsResolutionSeconds", self.metrics_resolution_seconds.to_string()),
            ("MinMetricsDelaySeconds", self.min_metrics_delay_seconds.to_string()),
        ]
    }

    /// The definition's substitutions that say what the deployment's roles may touch; the template fills them
    /// from its `ManagedFunctionPattern` and `HookFunctionPattern` (or the stage's own functions).
    pub const REACH_SUBSTITUTIONS: [&'static str; 2] = ["ManagedFunctionPattern", "HookFunctionPattern"];

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

    /// Refuses what this deployment cannot do: a function or hook outside what its roles may touch
    /// (`check_reach`), and what would be judged on incomplete windows here: holds and looks
    /// shorter than the metrics' resolution, and a metrics delay shorter than the least after which they are
    /// complete. Every field is named; windows are not checked when health checks are off (nothing is judged).
    pub fn check(&self, request: &RolloutRequest) -> Result<(), Refusal> {
        let health = &request.health;
        let mut problems = Problems::default();
        self.check_reach(&mut problems, request);
        if !health.enabled {
            return problems.into_result(());
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

impl Deployment {
    /// Every function of the request within `managed_functions`, every hook within `hook_functions`: a stage's
    /// controller may touch only its stage's functions, so a request for another stage's (or anyone's) is a
    /// clear refusal naming the pattern, before any alias is read or locked.
    fn check_reach(&self, problems: &mut Problems, request: &RolloutRequest) {
        if let Some(pattern) = &self.managed_functions {
            let release = request.is_release();
            for (i, target) in request.targets().iter().enumerate() {
                let name = crate::request::function_name_of(&target.function);
                if !name_matches(pattern, name) {
                    let field = if release { format!("functions[{i}].function") } else { "function".to_string() };
                    problems.add(
                        field,
                        format!(
                            "\"{name}\" is not among the functions this controller manages ({pattern}): its roles may \
                             not change that function's aliases"
                        ),
                        "start the rollout on the controller of the function's own stage, or redeploy this one with \
                         a ManagedFunctionPattern that covers it (docs/deploy.md)",
                    );
                }
            }
        }
        if let Some(pattern) = &self.hook_functions {
            let hooks = [
                ("hooks.pre_traffic", &request.hooks.pre_traffic),
                ("hooks.post_traffic", &request.hooks.post_traffic),
            ];
            for (field, hook) in hooks {
                let Some(name) = hook.as_deref().map(crate::request::function_name_of) else { continue };
                if !name_matches(pattern, name) {
                    problems.add(
                        field,
                        format!("\"{name}\" is not among the hooks this controller may invoke ({pattern})"),
                        "name a hook of this stage, or redeploy with a HookFunctionPattern that covers it \
                         (docs/deploy.md)",
                    );
                }
            }
        }
    }
}

/// Whether a Lambda function name matches a pattern of the template's parameters, as IAM matches the ARNs they
/// build: `*` any characters (none included), `?` any one, everything else itself, case-sensitive.
///
/// ```
/// use canary_core::deployment::name_matches;
/// assert!(name_matches("sample-service-staging*", "sample-service-staging-worker"));
/// assert!(name_matches("sample-service-staging*", "sample-service-staging"));
/// assert!(!name_matches("sample-service-staging*", "sample-service-prod"));
/// assert!(name_matches("orders-*-api", "orders-eu-api") && !name_matches("orders-*-api", "orders-eu-apis"));
/// assert!(name_matches("a?c", "abc") && !name_matches("a?c", "ac"));
/// ```
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // The classic glob walk: on a mismatch, go back to the last `*` and let it take one more character.
    let (mut p, mut n, mut star, mut taken) = (0, 0, None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            taken = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            taken += 1;
            n = taken;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
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

    /// A stage's controller refuses, by name and before anything is read, a function or hook outside what its
    /// roles may touch: staging's cannot be asked to move production.
    #[test]
    fn functions_and_hooks_outside_the_deployments_patterns_are_refused() {
        let staging = Deployment {
            managed_functions: Some("sample-service-staging*".into()),
            hook_functions: Some("sample-service-staging*-smoke".into()),
            ..Deployment::AWS
        };
        let request = |extra: serde_json::Value| {
            let mut input = serde_json::json!({"function": "sample-service-staging", "alias": "live", "version": "2",
                "strategy": {"all_at_once": {}}, "health": {"enabled": false}});
            input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            crate::parse_request(&input).unwrap()
        };
        assert_eq!(staging.check(&request(serde_json::json!({}))), Ok(()));
        let own_hook = serde_json::json!({"hooks": {"pre_traffic": "sample-service-staging-smoke"}});
        assert_eq!(staging.check(&request(own_hook)), Ok(()));
        let prod = staging.check(&request(serde_json::json!({"function": "sample-service-prod"}))).unwrap_err();
        assert_eq!(prod.fields(), ["function"]);
        let text = prod.to_string();
        assert!(text.contains("sample-service-prod") && text.contains("(sample-service-staging*)"), "{text}");
        assert!(text.contains("ManagedFunctionPattern"), "names the fix: {text}");
        let by_arn = serde_json::json!({"function": "arn:aws:lambda:eu-west-1:123456789012:function:sample-service-prod",
            "hooks": {"post_traffic": "sample-service-prod-smoke"}});
        assert_eq!(staging.check(&request(by_arn)).unwrap_err().fields(), ["function", "hooks.post_traffic"]);
        let release = serde_json::json!({"function": null, "alias": null, "version": null, "functions": [
            {"function": "sample-service-staging", "alias": "live", "version": "2"},
            {"function": "sample-service-prod-worker", "alias": "live", "version": "3"}]});
        let mut input = request(serde_json::json!({})).as_written();
        input.as_object_mut().unwrap().retain(|k, _| !["function", "alias", "version"].contains(&k.as_str()));
        input["functions"] = release["functions"].clone();
        let release = crate::parse_request(&input).unwrap();
        assert_eq!(staging.check(&release).unwrap_err().fields(), ["functions[1].function"]);
        // Unsaid (an older definition), nothing is refused here: IAM still denies.
        assert_eq!(Deployment::AWS.check(&request(serde_json::json!({"function": "sample-service-prod"}))), Ok(()));
    }

    #[test]
    fn names_match_as_iam_matches_the_arns_built_from_the_patterns() {
        let cases = [
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("sample-service-staging*", "sample-service-staging-e2e-1-smoke", true),
            ("sample-service-staging*-smoke", "sample-service-staging-e2e-1-smoke", true),
            ("sample-service-staging*-smoke", "sample-service-staging-e2e-1", false),
            ("sample-service-staging*-smoke", "sample-service-prod-smoke", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXcYb", false),
            ("Orders", "orders", false),
        ];
        for (pattern, name, matches) in cases {
            assert_eq!(name_matches(pattern, name), matches, "{pattern} ~ {name}");
        }
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
