//! The controller's functions as one table, and the Lambda runtime loop that serves each.
//!
//! On AWS every controller function runs one binary, `canary-controller`, and its `CANARY_TASK`
//! environment variable says which task it serves, so the whole controller is built and deployed once. The
//! local stack runs the same binary with the same variable, from the template's own function definitions.

use crate::{ControllerError, state_from};
use canary_aws::{
    CloudWatchMetrics, ConfigOptions, EventBridgeNotifier, LambdaAliases, LambdaHooks, StepFunctionsExecutions,
    load_config,
};
use canary_core::Next;
use canary_core::notice::Task;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// The environment variable that names a function's task.
pub const TASK_VARIABLE: &str = "CANARY_TASK";

/// One controller function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerTask {
    Prepare,
    Shift,
    Check,
    Promote,
    Rollback,
    Hook,
    Gate,
    SafetyNet,
}

impl ControllerTask {
    pub const ALL: [ControllerTask; 8] = [
        ControllerTask::Prepare,
        ControllerTask::Shift,
        ControllerTask::Check,
        ControllerTask::Promote,
        ControllerTask::Rollback,
        ControllerTask::Hook,
        ControllerTask::Gate,
        ControllerTask::SafetyNet,
    ];

    /// Its `CANARY_TASK` value.
    pub fn name(self) -> &'static str {
        match self {
            ControllerTask::Prepare => "prepare",
            ControllerTask::Shift => "shift",
            ControllerTask::Check => "check",
            ControllerTask::Promote => "promote",
            ControllerTask::Rollback => "rollback",
            ControllerTask::Hook => "hook",
            ControllerTask::Gate => "gate",
            ControllerTask::SafetyNet => "safety-net",
        }
    }

    /// The substitution in the state machine's definition that names its function. The safety net is no
    /// state of it (EventBridge invokes it), but the definition names it too, so that `canaryctl abort` finds
    /// the stack's own.
    pub fn substitution(self) -> &'static str {
        match self {
            ControllerTask::Prepare => "PrepareFunctionArn",
            ControllerTask::Shift => "ShiftFunctionArn",
            ControllerTask::Check => "CheckFunctionArn",
            ControllerTask::Promote => "PromoteFunctionArn",
            ControllerTask::Rollback => "RollbackFunctionArn",
            ControllerTask::Hook => "HookFunctionArn",
            ControllerTask::Gate => "GateFunctionArn",
            ControllerTask::SafetyNet => "SafetyNetFunctionArn",
        }
    }

    /// The task a `CANARY_TASK` value names, or what to set instead.
    ///
    /// ```
    /// use canary_functions::serve::ControllerTask;
    /// assert_eq!(ControllerTask::parse(Some("shift")), Ok(ControllerTask::Shift));
    /// assert!(ControllerTask::parse(None).unwrap_err().contains("prepare, shift, check"));
    /// assert!(ControllerTask::parse(Some("Shift")).unwrap_err().contains("\"Shift\""));
    /// ```
    pub fn parse(value: Option<&str>) -> Result<ControllerTask, String> {
        let known = || ControllerTask::ALL.map(ControllerTask::name).join(", ");
        match value {
            Some(value) => ControllerTask::ALL.into_iter().find(|t| t.name() == value).ok_or_else(|| {
                format!("{TASK_VARIABLE} is \"{value}\", which is not a controller task: set it to one of {}", known())
            }),
            None => {
                Err(format!("{TASK_VARIABLE} is not set: set it to one of {} in the function's environment", known()))
            }
        }
    }
}

/// Serves `task` until the Lambda runtime stops.
pub async fn serve(task: ControllerTask) -> Result<(), Error> {
    let config = load_config(&ConfigOptions::for_controller(std::env::vars())).await;
    let clients = Clients::from_config(&config);
    run(|payload| handle(task, payload, &clients, chrono::Utc::now())).await
}

/// The adapters the controller's functions use. Each builds its SDK client on its first call, so building
/// them all costs nothing at start-up and an invocation pays only for the services its task calls.
struct Clients {
    aliases: LambdaAliases,
    metrics: CloudWatchMetrics,
    executions: StepFunctionsExecutions,
    hooks: LambdaHooks,
    notifier: EventBridgeNotifier,
}

impl Clients {
    fn from_config(config: &canary_aws::SdkConfig) -> Clients {
        Clients {
            aliases: LambdaAliases::from_config(config),
            metrics: CloudWatchMetrics::from_config(config),
            executions: StepFunctionsExecutions::from_config(config),
            hooks: LambdaHooks::from_config(config),
            notifier: EventBridgeNotifier::from_config(config),
        }
    }
}

/// One invocation of `task`: its handler, then, for a task that returns the rollout's state, the traffic
/// share it logs and the events it announces.
async fn handle(
    task: ControllerTask,
    payload: Value,
    clients: &Clients,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, ControllerError> {
    let Clients { aliases, metrics, executions, hooks, notifier } = clients;
    let (state, announced) = match task {
        ControllerTask::Prepare => (crate::prepare(payload, aliases, metrics, executions, now).await?, Task::Prepare),
        ControllerTask::Shift => {
            (crate::move_alias(state_from(payload)?, Next::Shift, aliases, executions, now).await?, Task::Move)
        }
        ControllerTask::Promote => {
            (crate::move_alias(state_from(payload)?, Next::Promote, aliases, executions, now).await?, Task::Move)
        }
        ControllerTask::Check => (crate::check(state_from(payload)?, metrics, aliases, now).await?, Task::Check),
        ControllerTask::Rollback => {
            (crate::rollback(state_from(payload)?, aliases, notifier, now).await?.0, Task::Rollback)
        }
        ControllerTask::Hook => (crate::hook(state_from(payload)?, hooks, aliases, now).await?, Task::Hook),
        ControllerTask::Gate => return crate::gate(payload, notifier, now).await,
        ControllerTask::SafetyNet => {
            let managed = std::env::var("CANARY_MANAGED_FUNCTIONS").ok().filter(|p| !p.is_empty());
            return crate::safety_net_managing(payload, managed.as_deref(), executions, aliases, notifier, now).await;
        }
    };
    publish_traffic(announced, &state);
    crate::announce(notifier, announced, &state).await;
    Ok(serde_json::to_value(state).expect("states serialise"))
}

/// Each new version's share of its alias's traffic after a write (a move or the rollback; nothing for other
/// tasks), as one Embedded Metric Format line each on stdout: CloudWatch Logs makes it a metric (the dashboard's
/// traffic graph) without an API call.
fn publish_traffic(task: Task, state: &canary_core::Rollout) {
    for metric in canary_core::notice::traffic_metrics(task, state, chrono::Utc::now()) {
        println!("{metric}");
    }
}

/// The Lambda runtime loop over one handler of the event's payload.
async fn run<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<Value, ControllerError>>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handler(event.payload))).await
}

/// The binaries' `main`: logging, then the task. A function whose task is unknown stops at once with the
/// fix on stderr (Lambda reports `Runtime.ExitError` and the log holds the line).
pub async fn main(task: Result<ControllerTask, String>) -> Result<(), Error> {
    let task = task.unwrap_or_else(|message| {
        eprintln!("{message}");
        std::process::exit(2)
    });
    init_logging();
    serve(task).await
}

/// Where the Lambda runtime logs every event it receives, whole, at TRACE. An approval gate's event carries
/// its task token, a bearer credential (whoever holds it can skip every check), so this target is capped at
/// DEBUG whatever level the function is asked to log at: the token is logged at no level.
pub const EVENT_LOG_TARGET: &str = "lambda_runtime::layers::api_response";

/// The log filter: the level Lambda's logging controls set (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`'s
/// directives, else INFO), with [`EVENT_LOG_TARGET`] never below DEBUG.
pub fn log_filter(level: Option<&str>) -> lambda_runtime::tracing::subscriber::EnvFilter {
    use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
    let level = level.and_then(|l| l.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    filter.add_directive(format!("{EVENT_LOG_TARGET}=debug").parse().expect("a valid directive"))
}

/// Logging as `lambda_runtime`'s default subscriber sets it up (Lambda's advanced logging controls: level and
/// JSON format), with [`log_filter`].
fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let subscriber = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(log_filter(level.as_deref()));
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
}
