//! Lambda: [`LambdaAliases`] reads and conditionally writes an alias (`GetAlias`, `UpdateAlias` with
//! `RevisionId`) and asks whether a function or version exists (`GetFunctionConfiguration`);
//! [`LambdaHooks`] invokes a traffic hook synchronously and reads its answer.

use crate::error::classify;
use crate::lazy::OnFirstUse;
use crate::{Aliases, AwsError, HookRunner};
use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use canary_core::rollout::VersionState;
use canary_core::{AliasState, HookOutcome, Routing, VersionConfig};
use std::collections::HashMap;

/// [`Aliases`] on the Lambda API.
#[derive(Debug, Clone)]
pub struct LambdaAliases {
    client: OnFirstUse<Client>,
}

impl LambdaAliases {
    pub fn new(client: Client) -> Self {
        Self { client: OnFirstUse::built(client) }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self { client: OnFirstUse::from_config(config, Client::new) }
    }

    /// Sets the function's tag `key` to `value` (`TagResource`): an operator's pause (`canaryctl pause`).
    pub async fn set_tag(&self, function_arn: &str, key: &str, value: &str) -> Result<(), AwsError> {
        let request = self.client.get().tag_resource().resource(function_arn).tags(key, value);
        request.send().await.map(|_| ()).map_err(classify)
    }

    /// Removes the function's tag `key` (`UntagResource`; none is fine): `canaryctl resume`.
    pub async fn remove_tag(&self, function_arn: &str, key: &str) -> Result<(), AwsError> {
        let request = self.client.get().untag_resource().resource(function_arn).tag_keys(key);
        request.send().await.map(|_| ()).map_err(classify)
    }
}

fn not_found_is_false<T>(result: Result<T, AwsError>) -> Result<bool, AwsError> {
    match result {
        Ok(_) => Ok(true),
        Err(AwsError::NotFound(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

fn alias_state(
    version: Option<&str>,
    routing: Option<&AliasRoutingConfiguration>,
    revision_id: Option<&str>,
    description: Option<&str>,
) -> AliasState {
    let weights = routing.and_then(|r| r.additional_version_weights()).cloned().unwrap_or_default();
    AliasState {
        routing: Routing {
            function_version: version.unwrap_or_default().to_string(),
            additional_version_weights: weights.into_iter().collect(),
        },
        revision_id: revision_id.unwrap_or_default().to_string(),
        description: description.unwrap_or_default().to_string(),
    }
}

#[async_trait]
impl Aliases for LambdaAliases {
    async fn function_exists(&self, function: &str) -> Result<bool, AwsError> {
        not_found_is_false(
            self.client.get().get_function_configuration().function_name(function).send().await.map_err(classify),
        )
    }

    async fn version_config(&self, function: &str, version: &str) -> Result<Option<VersionConfig>, AwsError> {
        let request = self.client.get().get_function_configuration().function_name(function).qualifier(version);
        match request.send().await.map_err(classify) {
            Ok(out) => Ok(Some(VersionConfig {
                role: out.role().unwrap_or_default().to_string(),
                dead_letter_target: out.dead_letter_config().and_then(|d| d.target_arn()).map(str::to_string),
                state: VersionState::from_lambda(out.state().map(|s| s.as_str())),
            })),
            Err(AwsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn provisioned_concurrency(&self, function: &str, alias: &str) -> Result<Option<u32>, AwsError> {
        let request = self.client.get().get_provisioned_concurrency_config().function_name(function).qualifier(alias);
        match request.send().await {
            Ok(out) => Ok(out.requested_provisioned_concurrent_executions().map(|n| n.max(0) as u32)),
            Err(e)
                if e.as_service_error().is_some_and(|e| e.is_provisioned_concurrency_config_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn get_alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>, AwsError> {
        match self.client.get().get_alias().function_name(function).name(alias).send().await.map_err(classify) {
            Ok(out) => Ok(Some(alias_state(
                out.function_version(),
                out.routing_config(),
                out.revision_id(),
                out.description(),
            ))),
            Err(AwsError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn tag(&self, function_arn: &str, key: &str) -> Result<Option<String>, AwsError> {
        let out = self.client.get().list_tags().resource(function_arn).send().await.map_err(classify)?;
        Ok(out.tags().and_then(|tags| tags.get(key)).cloned())
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &Routing,
        description: &str,
        revision_id: &str,
    ) -> Result<AliasState, AwsError> {
        // An empty map is sent, not left out: that is how UpdateAlias clears the extra versions.
        let weights: HashMap<String, f64> =
            routing.additional_version_weights.iter().map(|(v, w)| (v.clone(), *w)).collect();
        let out = self
            .client
            .get()
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(&routing.function_version)
            .routing_config(AliasRoutingConfiguration::builder().set_additional_version_weights(Some(weights)).build())
            .description(description)
            .revision_id(revision_id)
            .send()
            .await
            .map_err(classify)?;
        Ok(alias_state(out.function_version(), out.routing_config(), out.revision_id(), out.description()))
    }
}

/// Invokes a function synchronously and reads its answer: what `canaryctl abort` asks of the stack's safety
/// net.
#[derive(Debug, Clone)]
pub struct LambdaFunctions {
    client: OnFirstUse<Client>,
}

/// A function's answer: its JSON, or its error (`errorType`, `errorMessage`).
pub type Answer = Result<serde_json::Value, (String, String)>;

impl LambdaFunctions {
    pub fn new(client: Client) -> Self {
        Self { client: OnFirstUse::built(client) }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self { client: OnFirstUse::from_config(config, Client::new) }
    }

    /// Invokes `function` with `payload` and waits for its answer.
    pub async fn invoke(&self, function: &str, payload: &serde_json::Value) -> Result<Answer, AwsError> {
        let request = self.client.get().invoke().function_name(function);
        let out = request.payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string())).send().await;
        let out = out.map_err(classify)?;
        let answer: serde_json::Value =
            out.payload().and_then(|p| serde_json::from_slice(p.as_ref()).ok()).unwrap_or(serde_json::Value::Null);
        Ok(match out.function_error() {
            None => Ok(answer),
            Some(kind) => {
                let text = |key: &str| answer.get(key).and_then(|v| v.as_str()).map(str::to_string);
                Err((text("errorType").unwrap_or_else(|| kind.to_string()), text("errorMessage").unwrap_or_default()))
            }
        })
    }
}

/// [`HookRunner`] on Lambda's Invoke API.
#[derive(Debug, Clone)]
pub struct LambdaHooks {
    client: OnFirstUse<Client>,
}

/// A hook may run for Lambda's 15 minutes; its synchronous Invoke waits that long, not the controller's
/// usual bound on a call.
pub const HOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(900);

impl LambdaHooks {
    pub fn new(client: Client) -> Self {
        Self { client: OnFirstUse::built(client) }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        fn build(config: &aws_config::SdkConfig) -> Client {
            let timeouts = aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(HOOK_TIMEOUT)
                .operation_attempt_timeout(HOOK_TIMEOUT)
                .read_timeout(HOOK_TIMEOUT)
                .build();
            Client::from_conf(aws_sdk_lambda::config::Builder::from(config).timeout_config(timeouts).build())
        }
        Self { client: OnFirstUse::from_config(config, build) }
    }
}

/// A hook's answer. Only `{"passed": true}` passes: a function error fails it (with the error's message), as
/// does `{"passed": false}`, and so does any other answer (`null`, `"done"`, `{}`): a hook that forgot to
/// return, or returns something else, has not approved the new version.
pub(crate) fn hook_outcome(function_error: Option<&str>, payload: &[u8]) -> HookOutcome {
    let answer: serde_json::Value = serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null);
    let text = |key: &str| answer.get(key).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(kind) = function_error {
        let message = text("errorMessage").unwrap_or_else(|| format!("the function failed ({kind})"));
        return HookOutcome { passed: false, message };
    }
    match answer.get("passed").and_then(|p| p.as_bool()) {
        Some(true) => HookOutcome { passed: true, message: text("reason").unwrap_or_else(|| "passed".into()) },
        Some(false) => {
            HookOutcome { passed: false, message: text("reason").unwrap_or_else(|| "it answered passed: false".into()) }
        }
        None => {
            let mut shown = String::from_utf8_lossy(payload).into_owned();
            shown.truncate(200);
            HookOutcome {
                passed: false,
                message: format!("it answered {shown}, not {{\"passed\": true}}: a hook approves only explicitly"),
            }
        }
    }
}

/// A hook whose call failed after it was sent (it timed out, or its answer was lost): it may have run, so it
/// is a failed hook, never retried (a hook runs at most once). `None` for a call that never reached it.
pub(crate) fn unanswered<E, R>(error: &aws_sdk_lambda::error::SdkError<E, R>) -> Option<HookOutcome> {
    use aws_sdk_lambda::error::SdkError;
    let what = match error {
        SdkError::TimeoutError(_) => "it did not answer in time",
        SdkError::ResponseError(_) => "its answer was lost",
        _ => return None,
    };
    Some(HookOutcome {
        passed: false,
        message: format!("{what}: it may have run, so it is not run a second time and counts as failed"),
    })
}

#[async_trait]
impl HookRunner for LambdaHooks {
    async fn run(&self, function: &str, payload: &serde_json::Value) -> Result<HookOutcome, AwsError> {
        let sent = self
            .client
            .get()
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(hook_outcome(out.function_error(), out.payload().map_or(&[][..], |p| p.as_ref()))),
            Err(error) => unanswered(&error).ok_or_else(|| classify(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::operation::get_alias::{GetAliasError, GetAliasOutput};
    use aws_sdk_lambda::operation::get_function_configuration::{
        GetFunctionConfigurationError, GetFunctionConfigurationOutput,
    };
    use aws_sdk_lambda::operation::update_alias::{UpdateAliasError, UpdateAliasOutput};
    use aws_sdk_lambda::types::error::{
        PreconditionFailedException, ResourceNotFoundException, TooManyRequestsException,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use std::collections::BTreeMap;

    /// Error metadata as Lambda's response deserializer sets it: the code comes from the wire.
    fn wire(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).build()
    }

    fn not_found() -> GetFunctionConfigurationError {
        GetFunctionConfigurationError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Function not found")
                .meta(wire("ResourceNotFoundException"))
                .build(),
        )
    }

    #[tokio::test]
    async fn existence_checks_map_not_found_to_false() {
        let function = mock!(Client::get_function_configuration)
            .match_requests(|r| r.function_name() == Some("orders") && r.qualifier().is_none())
            .then_output(|| GetFunctionConfigurationOutput::builder().build());
        let version = mock!(Client::get_function_configuration)
            .match_requests(|r| r.qualifier() == Some("9"))
            .then_error(not_found);
        let published = mock!(Client::get_function_configuration)
            .match_requests(|r| r.qualifier() == Some("2"))
            .then_output(|| {
                GetFunctionConfigurationOutput::builder()
                    .role("arn:aws:iam::1:role/orders")
                    .dead_letter_config(aws_sdk_lambda::types::DeadLetterConfig::builder().target_arn("arn:q").build())
                    .build()
            });
        let inactive = mock!(Client::get_function_configuration)
            .match_requests(|r| r.qualifier() == Some("4"))
            .then_output(|| {
                GetFunctionConfigurationOutput::builder()
                    .role("arn:aws:iam::1:role/orders")
                    .state(aws_sdk_lambda::types::State::Inactive)
                    .build()
            });
        let throttled =
            mock!(Client::get_function_configuration).match_requests(|r| r.qualifier() == Some("3")).then_error(|| {
                GetFunctionConfigurationError::TooManyRequestsException(
                    TooManyRequestsException::builder()
                        .message("Rate exceeded")
                        .meta(wire("TooManyRequestsException"))
                        .build(),
                )
            });
        let aliases = LambdaAliases::new(mock_client!(
            aws_sdk_lambda,
            RuleMode::MatchAny,
            [&function, &version, &published, &inactive, &throttled]
        ));
        assert!(aliases.function_exists("orders").await.unwrap());
        assert_eq!(aliases.version_config("orders", "9").await.unwrap(), None);
        let config = VersionConfig {
            role: "arn:aws:iam::1:role/orders".into(),
            dead_letter_target: Some("arn:q".into()),
            state: VersionState::Active,
        };
        assert_eq!(aliases.version_config("orders", "2").await.unwrap(), Some(config), "no state given is Active");
        let inactive = aliases.version_config("orders", "4").await.unwrap().unwrap();
        assert_eq!(inactive.state, VersionState::Inactive);
        let error = aliases.version_config("orders", "3").await.unwrap_err();
        assert!(matches!(error, AwsError::Transient(_)) && error.is_transient(), "{error:?}");
    }

    #[tokio::test]
    async fn provisioned_concurrency_is_read_and_none_when_not_configured() {
        use aws_sdk_lambda::operation::get_provisioned_concurrency_config::{
            GetProvisionedConcurrencyConfigError, GetProvisionedConcurrencyConfigOutput,
        };
        use aws_sdk_lambda::types::error::ProvisionedConcurrencyConfigNotFoundException;
        let configured = mock!(Client::get_provisioned_concurrency_config)
            .match_requests(|r| r.function_name() == Some("orders") && r.qualifier() == Some("live"))
            .then_output(|| {
                GetProvisionedConcurrencyConfigOutput::builder().requested_provisioned_concurrent_executions(10).build()
            });
        let none = mock!(Client::get_provisioned_concurrency_config)
            .match_requests(|r| r.function_name() == Some("quiet"))
            .then_error(|| {
                GetProvisionedConcurrencyConfigError::ProvisionedConcurrencyConfigNotFoundException(
                    ProvisionedConcurrencyConfigNotFoundException::builder()
                        .message("No Provisioned Concurrency Config found")
                        .meta(wire("ProvisionedConcurrencyConfigNotFoundException"))
                        .build(),
                )
            });
        let aliases = LambdaAliases::new(mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&configured, &none]));
        assert_eq!(aliases.provisioned_concurrency("orders", "live").await.unwrap(), Some(10));
        assert_eq!(aliases.provisioned_concurrency("quiet", "live").await.unwrap(), None);
    }

    #[tokio::test]
    async fn get_alias_reads_routing_and_revision() {
        let rule = mock!(Client::get_alias)
            .match_requests(|r| r.function_name() == Some("orders") && r.name() == Some("live"))
            .then_output(|| {
                GetAliasOutput::builder()
                    .function_version("1")
                    .routing_config(AliasRoutingConfiguration::builder().additional_version_weights("2", 0.25).build())
                    .revision_id("rev-1")
                    .description("orders, production")
                    .build()
            });
        let missing = mock!(Client::get_alias).match_requests(|r| r.name() == Some("gone")).then_error(|| {
            GetAliasError::ResourceNotFoundException(
                ResourceNotFoundException::builder().meta(wire("ResourceNotFoundException")).build(),
            )
        });
        let aliases = LambdaAliases::new(mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule, &missing]));
        let state = aliases.get_alias("orders", "live").await.unwrap().unwrap();
        assert_eq!((state.revision_id.as_str(), state.description.as_str()), ("rev-1", "orders, production"));
        assert_eq!(state.routing.function_version, "1");
        assert_eq!(state.routing.additional_version_weights, BTreeMap::from([("2".to_string(), 0.25)]));
        assert_eq!(aliases.get_alias("orders", "gone").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_pause_is_a_function_tag_read_set_and_removed() {
        use aws_sdk_lambda::operation::list_tags::ListTagsOutput;
        use aws_sdk_lambda::operation::tag_resource::TagResourceOutput;
        use aws_sdk_lambda::operation::untag_resource::UntagResourceOutput;
        let arn = "arn:aws:lambda:us-east-1:1:function:orders";
        let tagged = mock!(Client::list_tags)
            .match_requests(move |r| r.resource() == Some(arn))
            .then_output(|| ListTagsOutput::builder().tags("lambda-canary:pause:live", "arn:exec").build());
        let set = mock!(Client::tag_resource)
            .match_requests(move |r| {
                r.resource() == Some(arn)
                    && r.tags().and_then(|t| t.get("lambda-canary:pause:live")).map(String::as_str) == Some("arn:exec")
            })
            .then_output(|| TagResourceOutput::builder().build());
        let removed = mock!(Client::untag_resource)
            .match_requests(move |r| r.resource() == Some(arn) && r.tag_keys() == ["lambda-canary:pause:live"])
            .then_output(|| UntagResourceOutput::builder().build());
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&tagged, &set, &removed]);
        let aliases = LambdaAliases::new(client);
        assert_eq!(aliases.tag(arn, "lambda-canary:pause:live").await.unwrap().as_deref(), Some("arn:exec"));
        assert_eq!(aliases.tag(arn, "lambda-canary:pause:canary").await.unwrap(), None);
        aliases.set_tag(arn, "lambda-canary:pause:live", "arn:exec").await.unwrap();
        aliases.remove_tag(arn, "lambda-canary:pause:live").await.unwrap();
        assert_eq!((set.num_calls(), removed.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn update_alias_is_conditional_and_clears_weights_explicitly() {
        let promote = mock!(Client::update_alias)
            .match_requests(|r| {
                r.function_version() == Some("2")
                    && r.revision_id() == Some("rev-1")
                    && r.description() == Some("orders")
                    && r.routing_config().and_then(|c| c.additional_version_weights()).is_some_and(|w| w.is_empty())
            })
            .then_output(|| {
                UpdateAliasOutput::builder().function_version("2").revision_id("rev-2").description("orders").build()
            });
        let aliases = LambdaAliases::new(mock_client!(aws_sdk_lambda, [&promote]));
        let written =
            aliases.update_alias("orders", "live", &Routing::to_version("2"), "orders", "rev-1").await.unwrap();
        assert_eq!((written.routing, written.revision_id.as_str()), (Routing::to_version("2"), "rev-2"));
        assert_eq!(written.description, "orders");
        assert_eq!(promote.num_calls(), 1);
    }

    #[tokio::test]
    async fn hooks_pass_fail_and_explain() {
        use aws_sdk_lambda::operation::invoke::InvokeOutput;
        use aws_sdk_lambda::primitives::Blob;
        let ok = mock!(Client::invoke)
            .match_requests(|r| {
                r.function_name() == Some("smoke") && r.payload().is_some_and(|p| p.as_ref().starts_with(b"{"))
            })
            .then_output(|| InvokeOutput::builder().status_code(200).payload(Blob::new(r#"{"passed": true}"#)).build());
        let crashed = mock!(Client::invoke).match_requests(|r| r.function_name() == Some("crash")).then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .function_error("Unhandled")
                .payload(Blob::new(r#"{"errorType": "Panic", "errorMessage": "/health answered 500"}"#))
                .build()
        });
        let hooks = LambdaHooks::new(mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&ok, &crashed]));
        let payload = serde_json::json!({"hook": "pre_traffic"});
        assert!(hooks.run("smoke", &payload).await.unwrap().passed);
        let outcome = hooks.run("crash", &payload).await.unwrap();
        assert_eq!((outcome.passed, outcome.message.as_str()), (false, "/health answered 500"));
        // The answers a hook may give.
        let cases: &[(Option<&str>, &str, bool, &str)] = &[
            (None, r#"{"passed": false, "reason": "checkout failed"}"#, false, "checkout failed"),
            (None, r#"{"passed": false}"#, false, "it answered passed: false"),
            (None, "null", false, r#"it answered null, not {"passed": true}: a hook approves only explicitly"#),
            (None, r#""done""#, false, r#"it answered "done", not {"passed": true}: a hook approves only explicitly"#),
            (None, "{}", false, r#"it answered {}, not {"passed": true}: a hook approves only explicitly"#),
            (
                None,
                r#"{"passed": "yes"}"#,
                false,
                r#"it answered {"passed": "yes"}, not {"passed": true}: a hook approves only explicitly"#,
            ),
            (None, r#"{"passed": true, "reason": "smoke ok"}"#, true, "smoke ok"),
            (Some("Unhandled"), "not json", false, "the function failed (Unhandled)"),
        ];
        for &(error, body, passed, message) in cases {
            assert_eq!(hook_outcome(error, body.as_bytes()), HookOutcome { passed, message: message.into() }, "{body}");
        }
    }

    #[tokio::test]
    async fn a_stale_revision_is_reported_as_changed() {
        let stale = mock!(Client::update_alias).then_error(|| {
            UpdateAliasError::PreconditionFailedException(
                PreconditionFailedException::builder()
                    .message("The RevisionId provided does not match")
                    .meta(wire("PreconditionFailedException"))
                    .build(),
            )
        });
        let aliases = LambdaAliases::new(mock_client!(aws_sdk_lambda, [&stale]));
        let error = aliases.update_alias("orders", "live", &Routing::to_version("2"), "", "old").await.unwrap_err();
        assert!(matches!(error, AwsError::RevisionChanged(ref m) if m.contains("RevisionId")), "{error:?}");
    }

    #[tokio::test]
    async fn server_errors_are_transient_and_client_errors_are_not() {
        let rule = mock!(Client::get_alias).sequence().http_status(503, None).http_status(400, None).build();
        let aliases = LambdaAliases::new(mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&rule], |c| c
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())));
        assert!(matches!(aliases.get_alias("f", "a").await, Err(AwsError::Transient(_))));
        assert!(matches!(aliases.get_alias("f", "a").await, Err(AwsError::Other(_))));
    }

    #[tokio::test]
    async fn a_function_answers_its_json_or_its_error() {
        use aws_sdk_lambda::operation::invoke::InvokeOutput;
        use aws_sdk_lambda::primitives::Blob;
        let answered = mock!(Client::invoke)
            .match_requests(|r| r.function_name() == Some("canary-safety-net"))
            .then_output(|| InvokeOutput::builder().payload(Blob::new(r#"{"action": "restored"}"#)).build());
        let failed = mock!(Client::invoke).then_output(|| {
            InvokeOutput::builder()
                .function_error("Unhandled")
                .payload(Blob::new(r#"{"errorType": "AliasChangedConcurrently", "errorMessage": "someone"}"#))
                .build()
        });
        let functions = LambdaFunctions::new(mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&answered, &failed]));
        let payload = serde_json::json!({"detail": {"executionArn": "arn:exec"}});
        assert_eq!(
            functions.invoke("canary-safety-net", &payload).await.unwrap(),
            Ok(serde_json::json!({"action": "restored"}))
        );
        assert_eq!(
            functions.invoke("canary-safety-net", &payload).await.unwrap(),
            Err(("AliasChangedConcurrently".into(), "someone".into()))
        );
    }

    #[test]
    fn a_hook_that_may_have_run_fails_and_one_never_reached_is_retried() {
        use aws_sdk_lambda::error::SdkError;
        use aws_sdk_lambda::operation::invoke::InvokeError;
        let timed_out: SdkError<InvokeError, ()> = SdkError::timeout_error("operation timeout (all attempts)");
        let outcome = unanswered(&timed_out).expect("a hook that may have run is a failed hook");
        assert!(!outcome.passed && outcome.message.contains("not run a second time"), "{outcome:?}");
        let never_sent: SdkError<InvokeError, ()> = SdkError::construction_failure("no endpoint");
        assert_eq!(unanswered(&never_sent), None, "a call that never reached the hook may be retried");
    }

    /// Lambda answers ResourceConflictException (HTTP 409) while an update of the function is in progress:
    /// the same write succeeds once it is done, so a rollback that meets one must be retried, not failed.
    #[tokio::test]
    async fn an_update_in_progress_is_transient() {
        use aws_sdk_lambda::types::error::ResourceConflictException;
        let conflict = mock!(Client::update_alias).then_error(|| {
            UpdateAliasError::ResourceConflictException(
                ResourceConflictException::builder()
                    .message("The operation cannot be performed at this time. An update is in progress.")
                    .meta(wire("ResourceConflictException"))
                    .build(),
            )
        });
        let aliases = LambdaAliases::new(mock_client!(aws_sdk_lambda, [&conflict]));
        let error = aliases.update_alias("f", "a", &Routing::to_version("1"), "", "r1").await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }

    #[tokio::test]
    async fn refused_credentials_say_so_in_one_line() {
        let denied = mock!(Client::get_alias).then_error(|| {
            GetAliasError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("User is not authorized to perform: lambda:GetAlias")
                    .build(),
            )
        });
        let aliases = LambdaAliases::new(mock_client!(aws_sdk_lambda, [&denied]));
        let error = aliases.get_alias("f", "a").await.unwrap_err();
        assert!(!error.is_transient());
        assert_eq!(
            error.to_string(),
            "AWS refused the call (AccessDeniedException: User is not authorized to perform: lambda:GetAlias): \
             the credentials have expired or lack a permission"
        );
    }
}
