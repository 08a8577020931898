//! `canaryctl`: plan, start and follow canary rollouts of AWS Lambda aliases.

mod cli;
mod debug;
mod events;
mod history;
mod live;
mod ops;
mod output;
mod render;
mod start;
mod views;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cli::{AwsArgs, CliError, Exit, Output};
use std::process::ExitCode;

/// The exit codes, as `--help` prints them; README.md shows the same text (a test holds them together).
const EXIT_CODES: &str = "Exit codes:
  0  done: the plan is valid; the rollout started; the status was read; a rollout at a gate was promoted;
     a rollout was paused or resumed; an abort left the alias restored; (start --wait, watch) the new
     version was promoted
  1  the rollout ended without promoting (rolled back, aborted, timed out, failed); an abort could not
     restore the alias (someone else changed it); abort, pause or resume of an execution that is not
     running; promote of one that is not waiting for approval
  2  the command line is wrong, or a file it names cannot be read
  3  the request was refused (bad input, another rollout of the alias is running, or the version was
     rejected by its last rollout); nothing moved
  4  AWS could not be reached or refused the call (credentials, permissions, throttling)
  5  what was asked for does not exist (an execution, a state machine)
  6  --timeout passed while following a rollout that still runs (it goes on; watch follows it again)";

const EXAMPLES: &str = "Examples:
  canaryctl plan --input deploy/prod-rollout.json --version 42
  canaryctl start --function orders-api --alias live --version 42 --linear 10 --interval 120 --wait
  canaryctl --region eu-west-1 -o json status orders-api-live-v42-20261130T120000Z
  canaryctl watch EXECUTION_ARN --timeout 3600
  canaryctl history orders-api live
  canaryctl undo orders-api live --wait
  canaryctl retry orders-api-live-v42-20261130T120000Z --wait
  canaryctl promote EXECUTION_ARN --full
  canaryctl pause orders-api:live";

/// What `--version` prints after the name: the release and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CANARYCTL_COMMIT"), ")");

fn after_help() -> String {
    format!("{EXIT_CODES}\n\n{EXAMPLES}")
}

#[derive(Debug, Parser)]
#[command(name = "canaryctl", version = VERSION, about = "Canary rollouts of AWS Lambda aliases", after_help = after_help())]
#[command(after_long_help = after_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How results are printed, for every subcommand: text, or json for machines. Example: --output json
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(flatten)]
    aws: AwsArgs,
    /// Print one line on stderr for every AWS call: service, operation, attempts, time taken, and how it failed.
    /// RUST_LOG, when set, gives the SDK's own trace instead (e.g. RUST_LOG=aws_smithy_runtime=debug).
    /// Example: --debug
    #[arg(long, global = true)]
    debug: bool,
}

/// What --debug listens to: the SDK's call spans and their attempts (printed one line a call by
/// [`debug::CallLines`]), nothing else.
const DEBUG_LOG: &str = "aws_smithy_runtime=debug,aws_smithy_runtime_api=debug,aws_sdk_sfn=debug,aws_sdk_lambda=debug,aws_sdk_cloudwatch=debug,aws_sdk_eventbridge=debug,aws_config=warn";

/// Logs to stderr when asked, so stdout stays the result a script reads: RUST_LOG, the SDK's own trace as it
/// filters it; --debug, one line a call.
fn init_logging(debug: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(value))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .try_init();
        }
        _ if debug => {
            let _ = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new(DEBUG_LOG))
                .with(debug::CallLines::new(|line: &str| eprintln!("{line}")))
                .try_init();
        }
        _ => {}
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a rollout request offline and print the weights the alias will carry, in order.
    /// Takes the same request flags as start. Example: plan --input deploy/prod-rollout.json --version 7
    Plan(PlanArgs),
    /// Start a rollout through the controller's state machine; with --wait, follow it to the end.
    /// Example: start --input deploy/prod-rollout.json --version 42 --wait
    Start(Box<start::StartArgs>),
    /// Where a rollout stands, or how it ended. Example: status orders-api-live-v42-20261130T120000Z
    Status(ops::Target),
    /// Follow a rollout to its end; the exit code says whether it was promoted. In a terminal, one screen
    /// redrawn (step, weights, both versions' figures, next check, gates); elsewhere, one line an event; with
    /// -o json, one typed JSON event a line (docs/operators.md). Example: watch EXECUTION_ARN --timeout 3600
    Watch {
        #[command(flatten)]
        target: ops::Target,
        /// Seconds between looks at the execution. Example: --poll-seconds 10
        #[arg(long, value_name = "SECONDS", default_value_t = 5)]
        poll_seconds: u64,
        /// Stop following after this many seconds (exit 6; the rollout goes on). Example: --timeout 3600
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// Append one line an event even in a terminal, instead of redrawing one screen. Example: --plain
        #[arg(long)]
        plain: bool,
    },
    /// Recent rollouts of the state machine, newest first, optionally of one function and alias.
    /// Example: list --function orders-api --alias live --max 10
    List(ops::ListArgs),
    /// An alias's past rollouts, newest first: versions, outcome, when, how long and why.
    /// Example: history orders-api live --max 10
    History(history::HistoryArgs),
    /// Back to the version before the alias's last promotion, through the controller: all at once (hooks
    /// kept), or with --full-policy the promoted rollout's own policy. Refused, as start is, while a rollout of
    /// the alias runs, or when the alias was moved since that promotion. Example: undo orders-api live --wait
    Undo(Box<history::UndoArgs>),
    /// Run a rollout that ended without promoting (rolled back, aborted, timed out, failed) again, as it was
    /// asked, under a new name; its version is no longer refused as rejected. Example: retry orders-api-live-v42-20261130T120000Z --wait
    Retry(Box<history::RetryArgs>),
    /// Continue a rollout paused at an approval gate: on to the next step, or with --full to 100%.
    /// Example: promote orders-api-live-v42-20261130T120000Z --full
    Promote {
        #[command(flatten)]
        target: ops::Target,
        /// Skip the remaining steps: straight to 100%. Example: --full
        #[arg(long)]
        full: bool,
    },
    /// Hold a running rollout at its weight: from the next check of a step that passed, it stays there, still
    /// judged (a failure still rolls back), until resume, for at most a day. Example: pause orders-api:live
    Pause(ops::Target),
    /// Lift a pause: the next check of a step that passed moves on. Example: resume orders-api:live
    Resume(ops::Target),
    /// Stop a running rollout and restore the alias's original routing; returns once it is restored.
    /// Example: abort orders-api-live-v42-20261130T120000Z
    Abort(ops::Target),
    /// Print a JSON Schema: of a rollout request (both forms; for editors and the Step Functions console), of
    /// the events `watch -o json` prints, or of every command's -o json. Example: schema output > out.schema.json
    Schema {
        #[arg(value_enum, default_value_t = SchemaOf::Request)]
        of: SchemaOf,
    },
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell).
    /// Example: completion bash > ~/.local/share/bash-completion/completions/canaryctl
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Which schema `canaryctl schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchemaOf {
    /// The rollout request (docs/request.schema.json).
    Request,
    /// A request file, whose function, alias and version the command line may give
    /// (docs/request-file.schema.json).
    RequestFile,
    /// The events of `watch -o json` (docs/watch-events.schema.json).
    Events,
    /// Everything the commands print with -o json, one definition per command
    /// (docs/canaryctl-output.schema.json).
    Output,
}

/// Ends the process quietly when its output is closed early (`canaryctl plan ... | head -1`), as Unix tools
/// do. Rust ignores SIGPIPE, so every print would otherwise fail with a broken pipe and panic.
fn restore_default_sigpipe() {
    // SAFETY: sets the process-wide disposition of one signal to the default, a valid one; nothing in this
    // process installs a handler for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `plan`'s arguments: the request, and where it will run.
#[derive(Debug, Clone, Args)]
struct PlanArgs {
    #[command(flatten)]
    request: start::RequestArgs,
    /// Where the rollout will run: its metrics' resolution and delay decide which holds, looks and delays can
    /// be judged (aws: per minute, at least 60 s late; local: the local stack, per second).
    /// Example: --runs-on local
    #[arg(long, value_enum, default_value_t = RunsOn::Aws)]
    runs_on: RunsOn,
    /// The function's usual traffic: the plan then says how many invocations of the new version each held
    /// step should see, and how long the promotion waits for the evidence it needs.
    /// Example: --requests-per-minute 3
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    requests_per_minute: Option<f64>,
    /// The provisioned concurrency configured on the alias: the plan then says how Lambda shares it
    /// between the versions at each weight. Example: --provisioned-concurrency 10
    #[arg(long, value_name = "N")]
    provisioned_concurrency: Option<u32>,
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{text:?} is not a number of requests a minute above 0, e.g. 3 or 0.5")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RunsOn {
    Aws,
    Local,
}

fn plan(args: &PlanArgs, output: Output) -> Result<Exit, CliError> {
    let (input, request) = start::build_request(&args.request)?;
    let (deployment, runs_on) = match args.runs_on {
        RunsOn::Aws => (canary_core::deployment::Deployment::AWS, "aws"),
        RunsOn::Local => (canary_core::deployment::Deployment::LOCAL, "local"),
    };
    start::check_deployment(&input, &request, &deployment, runs_on)?;
    let provisioned = args.provisioned_concurrency.map(|n| canary_core::budget::provisioned_split(&request, n));
    match output {
        Output::Json => {
            let mut plan = render::plan_json(&request, runs_on, args.requests_per_minute);
            plan.provisioned_concurrency = provisioned;
            println!("{}", serde_json::to_string_pretty(&plan).expect("plans serialise"))
        }
        Output::Text => {
            print!("{}", render::plan_text(&request, args.requests_per_minute));
            if let Some(note) = provisioned {
                println!("{note}");
            }
        }
    }
    Ok(Exit::Success)
}

/// Said after clap's own message when no state machine was given.
const MISSING_STATE_MACHINE: &str = "Give --state-machine-arn ARN, or set CANARY_STATE_MACHINE_ARN: the stack's output \
    StateMachineArn (aws cloudformation describe-stacks --stack-name lambda-canary-STAGE --query \
    \"Stacks[0].Outputs[?OutputKey=='StateMachineArn'].OutputValue\" --output text).";

#[tokio::main]
async fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap names the flag alone; the environment variable CI usually sets is the other way to give it.
            let missing_arn = error.kind() == clap::error::ErrorKind::MissingRequiredArgument
                && error.to_string().contains("--state-machine-arn");
            let _ = error.print();
            if missing_arn {
                eprintln!("\n{MISSING_STATE_MACHINE}");
            }
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    init_logging(cli.debug);
    let calls_aws = !matches!(cli.command, Command::Plan(_) | Command::Completion { .. } | Command::Schema { .. });
    if calls_aws && let Some(problem) = cli.aws.profile_problem() {
        eprintln!("canaryctl: {problem}");
        return Exit::Aws.into();
    }
    let (output, aws) = (cli.output, cli.aws);
    let target = |target: ops::Target| ops::Target { output, aws: aws.clone(), ..target };
    let result = match cli.command {
        Command::Plan(args) => plan(&args, output),
        Command::Start(args) => start::run(start::StartArgs { output, aws: aws.clone(), ..*args }).await,
        Command::Status(t) => ops::status(target(t)).await,
        Command::Watch { target: t, poll_seconds, timeout, plain } => {
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            ops::watch(target(t), poll_seconds, timeout, ops::WatchMode::choose(output, plain, terminal)).await
        }
        Command::List(args) => ops::list(ops::ListArgs { output, aws: aws.clone(), ..args }).await,
        Command::History(args) => history::history(history::HistoryArgs { output, aws: aws.clone(), ..args }).await,
        Command::Retry(args) => {
            let args = *args;
            history::retry(history::RetryArgs { target: target(args.target), ..args }).await
        }
        Command::Undo(args) => history::undo(history::UndoArgs { output, aws: aws.clone(), ..*args }).await,
        Command::Promote { target: t, full } => ops::promote(target(t), full).await,
        Command::Abort(t) => ops::abort(target(t)).await,
        Command::Pause(t) => ops::pause(target(t), true).await,
        Command::Resume(t) => ops::pause(target(t), false).await,
        Command::Schema { of } => {
            let schema = match of {
                SchemaOf::Request => canary_core::request::request_schema(),
                SchemaOf::RequestFile => canary_core::request::request_file_schema(),
                SchemaOf::Events => events::schema(),
                SchemaOf::Output => output::schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema).expect("schemas serialise"));
            Ok(Exit::Success)
        }
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "canaryctl", &mut std::io::stdout());
            Ok(Exit::Success)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("canaryctl: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// What the unit tests share: a rollout prepared against a live alias.
#[cfg(test)]
pub mod testing {
    use canary_core::{LiveFacts, Rollout, parse_request};

    /// Fails unless `docs/<file>` is `generated` (`CANARY_WRITE_SCHEMA=1` rewrites it instead): a published
    /// schema is the one generated from the types.
    pub fn holds_published_schema(file: &str, generated: &serde_json::Value) {
        let path = format!("{}/../../docs/{file}", env!("CARGO_MANIFEST_DIR"));
        let published: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default()).unwrap_or_default();
        if published == *generated {
            return;
        }
        if std::env::var_os("CANARY_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(generated).unwrap() + "\n").unwrap();
        } else {
            panic!("docs/{file} is stale: CANARY_WRITE_SCHEMA=1 cargo test -p canaryctl");
        }
    }

    /// `request` prepared at `t0` against aliases (a release's each) that route all of their traffic to
    /// `old_version`.
    pub fn prepared(request: serde_json::Value, old_version: &str, t0: chrono::DateTime<chrono::Utc>) -> Rollout {
        let facts = LiveFacts::healthy(old_version, canary_core::deployment::Deployment::LOCAL);
        let request = parse_request(&request).expect("a valid request");
        let facts = vec![facts; request.targets().len()];
        Rollout::prepare_all(request, facts, "arn:aws:states:us-east-1:1:execution:m:x", t0).expect("prepared")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_an_example_in_its_help() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for subcommand in cli.get_subcommands() {
            for arg in subcommand.get_arguments().filter(|a| !a.is_positional()) {
                let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
                if !help.contains("Example: ") {
                    missing.push(format!("{} --{}", subcommand.get_name(), arg.get_long().unwrap_or_default()));
                }
            }
        }
        assert!(missing.is_empty(), "flags without an example in their help: {missing:?}");
    }

    #[test]
    fn the_readme_shows_the_exit_codes_the_help_prints() {
        let readme = include_str!("../../../README.md");
        assert!(readme.contains(EXIT_CODES), "README.md's exit codes differ from --help's (EXIT_CODES)");
    }
}
