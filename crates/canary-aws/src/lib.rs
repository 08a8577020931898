//! The controller's view of AWS: six narrow traits, each with an SDK implementation.
//!
//! - [`Aliases`]: read and conditionally write a Lambda alias's routing (Lambda control plane).
//! - [`Metrics`]: one window's health figures for the new and the old version, and alarm states (CloudWatch).
//! - [`ExecutionHistory`]: what the controller's functions read of an execution; [`ExecutionControl`]:
//!   start, list, stop and answer executions (canaryctl); [`Executions`] is both (Step Functions).
//! - [`HookRunner`]: invoke traffic hooks (Lambda).
//! - [`Notifier`]: publish rollout events (EventBridge).
//!
//! Architecture invariant: nothing here decides anything. Decisions are `canary-core`'s; this crate turns
//! them into API calls and API answers into core types, and sorts failures into [`AwsError`] kinds that
//! say whether a retry can help.

mod cloudwatch;
mod error;
mod events;
mod lambda;
mod lazy;
mod sfn;
mod tls;

pub use aws_config::SdkConfig;
pub use cloudwatch::CloudWatchMetrics;
pub use error::AwsError;
pub use events::EventBridgeNotifier;
pub use lambda::{Answer, LambdaAliases, LambdaFunctions, LambdaHooks};
pub use sfn::StepFunctionsExecutions;
pub use tls::{AMAZON_ROOTS_PEM, TrustRoots};

/// An SDK time in chrono's terms, sub-seconds kept; a time chrono cannot hold (beyond year 262,143) reads as
/// the epoch, which no decision treats as recent.
fn time_of(t: &aws_smithy_types::DateTime) -> DateTime<Utc> {
    use aws_smithy_types_convert::date_time::DateTimeExt;
    t.to_chrono_utc().unwrap_or_default()
}

use async_trait::async_trait;
use canary_core::concurrency::RunningExecution;
use canary_core::execution::ExecutionStatus;
use canary_core::{AlarmState, AliasState, HealthFigures, HookOutcome, Routing, VersionConfig};
use chrono::{DateTime, Utc};

/// Where and as whom to call AWS; everything left `None` comes from the standard chain (environment,
/// shared config and credentials files, instance or task role), which also honours `AWS_ENDPOINT_URL`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigOptions {
    /// Overrides the endpoint of every service: the local emulator's router, for example.
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// The certificate authorities the HTTPS client trusts: the system's unless told otherwise.
    pub trust_roots: TrustRoots,
    /// Read the credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` only,
    /// instead of building the standard chain (which builds an STS client for web identity as it loads).
    pub environment_credentials: bool,
}

impl ConfigOptions {
    /// The controller's options, from its environment (`vars`, as from [`std::env::vars`]): its trust roots
    /// ([`TrustRoots::for_controller`]), and the credentials straight from the environment when they are
    /// there, as Lambda puts the function role's (the standard chain would pick them first anyway).
    ///
    /// ```
    /// use canary_aws::ConfigOptions;
    /// let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    /// let lambda = env(&[("AWS_ACCESS_KEY_ID", "ASIA..."), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_SESSION_TOKEN", "t")]);
    /// assert!(ConfigOptions::for_controller(lambda).environment_credentials);
    /// assert!(!ConfigOptions::for_controller(env(&[("AWS_ACCESS_KEY_ID", "AKIA...")])).environment_credentials);
    /// assert!(!ConfigOptions::for_controller(env(&[("AWS_PROFILE", "ops")])).environment_credentials);
    /// ```
    pub fn for_controller(vars: impl IntoIterator<Item = (String, String)>) -> ConfigOptions {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let set = |name: &str| vars.iter().any(|(k, v)| k == name && !v.is_empty());
        ConfigOptions {
            environment_credentials: set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"),
            trust_roots: TrustRoots::for_controller(vars.iter().cloned()),
            ..ConfigOptions::default()
        }
    }
}

/// How long one AWS call may take, retries included, and one attempt of it. The controller's functions
/// run for at most 30 s (template.yaml): a call that hangs must fail, and be retried by the state machine,
/// well before Lambda kills the function in the middle of its work.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Loads the AWS configuration once; build every client from it.
pub async fn load_config(options: &ConfigOptions) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &options.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(client) = options.trust_roots.http_client() {
        loader = loader.http_client(client);
    }
    if options.environment_credentials {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
}

/// A Lambda alias's routing, read and written.
#[async_trait]
pub trait Aliases: Send + Sync {
    async fn function_exists(&self, function: &str) -> Result<bool, AwsError>;
    /// A published version's role and dead-letter target, or `None` when there is no such version.
    async fn version_config(&self, function: &str, version: &str) -> Result<Option<VersionConfig>, AwsError>;
    /// The provisioned concurrency configured on the alias (requested), or `None` when it has none.
    async fn provisioned_concurrency(&self, function: &str, alias: &str) -> Result<Option<u32>, AwsError>;
    /// The alias, or `None` when the function has no such alias.
    async fn get_alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>, AwsError>;
    /// The value of the function's tag `key` (`ListTags`), or `None` when it has no such tag: how the check
    /// reads an operator's pause ([`canary_core::lock::pause_tag`]).
    async fn tag(&self, function_arn: &str, key: &str) -> Result<Option<String>, AwsError>;
    /// Sets the alias's routing and description on condition that it is still at `revision_id`
    /// ([`AwsError::RevisionChanged`] otherwise), and returns it as written.
    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &Routing,
        description: &str,
        revision_id: &str,
    ) -> Result<AliasState, AwsError>;
}

/// Traffic hooks: Lambda functions the rollout invokes before and after the traffic shift.
#[async_trait]
pub trait HookRunner: Send + Sync {
    /// Invokes `function` synchronously with `payload`. It fails when the function fails, or answers
    /// `{"passed": false, "reason": "..."}`.
    async fn run(&self, function: &str, payload: &serde_json::Value) -> Result<HookOutcome, AwsError>;
}

/// Rollout events, published for people and systems to follow.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, notices: &[canary_core::notice::Notice]) -> Result<(), AwsError>;
}

/// Which metrics one health check reads: the alias's invocations, split by the version that ran them.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowQuery {
    pub function_name: String,
    pub alias: String,
    pub new_version: String,
    pub baseline_version: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Count the invocations slower than this many milliseconds too (the latency rule's threshold).
    pub slow_above_ms: Option<f64>,
}

/// The old version's traffic before a rollout: its minutes' counts, and its p99 over the whole window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficBefore {
    pub minutes: Vec<canary_core::sequential::Counts>,
    pub p99_duration_ms: Option<f64>,
}

/// Health figures from CloudWatch.
#[async_trait]
pub trait Metrics: Send + Sync {
    /// The figures of both versions over the window, in one request (alarms left empty).
    async fn figures(&self, query: &WindowQuery) -> Result<HealthFigures, AwsError>;
    /// The old version's (`baseline_version`'s) invocations and errors minute by minute over the window,
    /// and its p99 over the whole window, in one request.
    async fn traffic_before(&self, query: &WindowQuery) -> Result<TrafficBefore, AwsError>;
    /// The states of the named alarms that exist; a name with no alarm is left out.
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, AwsError>;
}

/// A Step Functions execution as `DescribeExecution` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    pub arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while it runs.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// One execution of a state machine, as `ListExecutions` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSummary {
    pub arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while it runs.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// One entry of an execution's history: a state left, with its output.
#[derive(Debug, Clone, PartialEq)]
pub struct StateExit {
    pub event_id: i64,
    pub state_name: String,
    pub output: Option<String>,
    /// When the state was left.
    pub at: DateTime<Utc>,
}

/// Reading executions: all the controller's functions need (`Prepare` asks whether a lock's holder still
/// runs; the safety net reads an ended execution's last state), and what `canaryctl` follows.
#[async_trait]
pub trait ExecutionHistory: Send + Sync {
    async fn describe(&self, execution_arn: &str) -> Result<ExecutionInfo, AwsError>;
    /// The states the execution has left since event `after` (0: since it started), oldest first. The
    /// history is read newest first and reading stops at `after`.
    async fn state_exits_after(&self, execution_arn: &str, after: i64) -> Result<Vec<StateExit>, AwsError>;
    /// The output of the newest state the execution left for which `wanted` holds: the history is read
    /// newest first, one page at a time, and reading stops there (a 25,000-event history is not read whole).
    async fn newest_state_output(
        &self,
        execution_arn: &str,
        wanted: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
    ) -> Result<Option<String>, AwsError>;
    /// The state machine's executions that ended ABORTED, TIMED_OUT or FAILED at `since` or later: what the
    /// safety net's sweep looks at.
    async fn ended_since(
        &self,
        state_machine_arn: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<ExecutionSummary>, AwsError>;
}

/// The last rollout state an execution's history holds: the output of the newest state it left that is one.
/// The history is read newest first, so a long one costs a page or two.
pub async fn last_rollout_state(
    executions: &dyn ExecutionHistory,
    execution_arn: &str,
) -> Result<Option<canary_core::Rollout>, AwsError> {
    let is_state = |output: &str| serde_json::from_str::<canary_core::Rollout>(output).is_ok();
    let output = executions.newest_state_output(execution_arn, &is_state).await?;
    Ok(output.and_then(|o| serde_json::from_str(&o).ok()))
}

/// Starting, listing, stopping and answering executions: what only the command line does.
#[async_trait]
pub trait ExecutionControl: Send + Sync {
    /// Starts an execution and returns its ARN.
    async fn start(&self, state_machine_arn: &str, name: Option<&str>, input: &str) -> Result<String, AwsError>;
    /// The state machine's running executions, with their inputs.
    async fn running(&self, state_machine_arn: &str) -> Result<Vec<RunningExecution>, AwsError>;
    /// The state machine's most recent executions, newest first, at most `max`.
    async fn recent(&self, state_machine_arn: &str, max: i32) -> Result<Vec<ExecutionSummary>, AwsError>;
    /// One page of the state machine's executions, newest first (as ListExecutions returns them), from
    /// `token` (the start when `None`), and the token of the next page if there is one.
    async fn recent_page(
        &self,
        state_machine_arn: &str,
        page_size: i32,
        token: Option<String>,
    ) -> Result<(Vec<ExecutionSummary>, Option<String>), AwsError>;
    /// Stops a running execution.
    async fn stop(&self, execution_arn: &str, cause: &str) -> Result<(), AwsError>;
    /// The state machine's definition (its ASL, substitutions filled).
    async fn definition(&self, state_machine_arn: &str) -> Result<String, AwsError>;
    /// The task token of the approval gate the execution waits at, if it waits at one.
    async fn approval_token(&self, execution_arn: &str) -> Result<Option<String>, AwsError>;
    /// Answers a waiting task: `Ok(output)` succeeds it, `Err((error, cause))` fails it.
    async fn answer(&self, token: &str, answer: Result<String, (String, String)>) -> Result<(), AwsError>;
}

/// Both halves: the Step Functions adapter, for code that reads and controls.
pub trait Executions: ExecutionHistory + ExecutionControl {}

impl<T: ExecutionHistory + ExecutionControl> Executions for T {}

/// The state machine of an execution ARN (`arn:...:execution:MACHINE:NAME` -> `arn:...:stateMachine:MACHINE`).
pub fn state_machine_of(execution_arn: &str) -> Option<String> {
    let parts: Vec<&str> = execution_arn.split(':').collect();
    match parts.as_slice() {
        [arn, partition, "states", region, account, "execution", machine, _name] => {
            Some(format!("{arn}:{partition}:states:{region}:{account}:stateMachine:{machine}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_bounded_within_the_functions_timeout() {
        let config = load_config(&ConfigOptions { region: Some("eu-west-1".into()), ..Default::default() }).await;
        let timeouts = config.timeout_config().unwrap();
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        // template.yaml's functions run 30 s; a call must give up well before.
        assert!(OPERATION_TIMEOUT.as_secs() < 30 && ATTEMPT_TIMEOUT < OPERATION_TIMEOUT);
    }
}
