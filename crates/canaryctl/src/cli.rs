//! What every command shares: where AWS is, how to print, the exit codes and errors, and reading input.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Where AWS is: the standard chain (environment, profile, SSO, instance role), or these overrides. Global,
/// as in the aws CLI: they may come before or after the subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// Send every AWS call here (the local emulator, for example); AWS_ENDPOINT_URL works too.
    /// Example: --endpoint-url http://127.0.0.1:4566
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The AWS region; by default AWS_REGION, the profile's, or the region in the ARN given.
    /// Example: --region eu-west-1
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// A named profile of ~/.aws/config; AWS_PROFILE works too. Example: --profile prod-deployer
    #[arg(long, global = true)]
    pub profile: Option<String>,
}

impl AwsArgs {
    /// A named profile (`--profile`, or `AWS_PROFILE`) that neither the shared config file nor the
    /// credentials file defines: said as such, rather than later as "no credentials".
    pub fn profile_problem(&self) -> Option<String> {
        let (name, from) = match (&self.profile, std::env::var("AWS_PROFILE")) {
            (Some(name), _) => (name.clone(), "--profile"),
            (None, Ok(name)) if !name.is_empty() => (name, "AWS_PROFILE"),
            _ => return None,
        };
        let home = std::env::var("HOME").unwrap_or_default();
        let file = |variable: &str, default: &str| {
            std::env::var(variable).unwrap_or_else(|_| format!("{home}/.aws/{default}"))
        };
        let (config, credentials) =
            (file("AWS_CONFIG_FILE", "config"), file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        if profile_defined(&read(&config), &name, true) || profile_defined(&read(&credentials), &name, false) {
            return None;
        }
        Some(format!(
            "{from} names profile \"{name}\", which neither {config} nor {credentials} defines: check the name \
             (aws configure list-profiles), or leave {from} unset to use the environment's credentials"
        ))
    }

    pub fn options(&self) -> canary_aws::ConfigOptions {
        canary_aws::ConfigOptions {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
            ..canary_aws::ConfigOptions::default()
        }
    }

    /// The AWS configuration for calls about `arn` (a state machine or an execution): the standard chain
    /// and these overrides, and, when they name no region, the ARN's own region rather than a failure.
    pub async fn config_for(&self, arn: &str) -> aws_config::SdkConfig {
        let config = canary_aws::load_config(&self.options()).await;
        match canary_core::request::arn_location(arn) {
            Some((_, region, _)) if config.region().is_none() && !region.is_empty() => {
                let options = canary_aws::ConfigOptions { region: Some(region.to_string()), ..self.options() };
                canary_aws::load_config(&options).await
            }
            _ => config,
        }
    }
}

/// Whether an AWS shared file defines the profile: `[profile NAME]` (or `[NAME]`, and `[default]`) in the
/// config file, `[NAME]` in the credentials file.
fn profile_defined(text: &str, name: &str, config_file: bool) -> bool {
    text.lines().filter_map(|line| line.trim().strip_prefix('[')?.strip_suffix(']')).any(|section| {
        let section = section.trim();
        let named = if config_file { section.strip_prefix("profile ").map(str::trim) } else { None };
        named.unwrap_or(section) == name
    })
}

/// The documented exit codes (`EXIT_CODES`), each in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: planned, started, read, aborted with the alias restored, or (following) promoted.
    Success = 0,
    /// The rollout ended without promoting, or the operation does not apply to it as it is.
    NotPromoted = 1,
    /// The command line is wrong.
    Usage = 2,
    /// The request was refused; nothing moved.
    Refused = 3,
    /// AWS could not be reached or refused the call.
    Aws = 4,
    /// What was asked for does not exist.
    NotFound = 5,
    /// `--timeout` passed while the rollout still runs.
    StillRunning = 6,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// What went wrong, with the exit code it maps to (`EXIT_CODES`).
#[derive(Debug)]
pub struct CliError {
    pub code: Exit,
    pub message: String,
}

impl CliError {
    pub fn refused(message: impl Into<String>) -> Self {
        CliError { code: Exit::Refused, message: message.into() }
    }
    pub fn aws(message: impl Into<String>) -> Self {
        CliError { code: Exit::Aws, message: message.into() }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        CliError { code: Exit::Usage, message: message.into() }
    }
    /// An AWS call that failed, after `what` ("could not read X"): exit 5 when what was asked for does not
    /// exist, 4 otherwise; one line that says what to do.
    pub fn from_aws(what: impl std::fmt::Display, error: &canary_aws::AwsError) -> Self {
        let code = if matches!(error, canary_aws::AwsError::NotFound(_)) { Exit::NotFound } else { Exit::Aws };
        CliError { code, message: format!("{what}: {error}") }
    }
}

/// A state machine that could not be read: one that does not exist says where it was looked for and what to
/// check (exit 5); any other failure is the AWS call's (exit 4).
pub fn state_machine_unread(arn: &str, error: &canary_aws::AwsError) -> CliError {
    if let canary_aws::AwsError::NotFound(_) = error {
        let (region, account) = canary_core::request::arn_location(arn).map_or(("?", "?"), |(_, r, a)| (r, a));
        return CliError {
            code: Exit::NotFound,
            message: format!(
                "no state machine {arn} (region {region}, account {account}): check the ARN (the stack's output \
                 StateMachineArn, or CANARY_STATE_MACHINE_ARN) and that these credentials are for that account"
            ),
        };
    }
    CliError::from_aws("could not read the state machine", error)
}

/// A `--state-machine-arn`: refused before any call when it is not a state machine's ARN, naming what it is.
pub fn state_machine_arn(text: &str) -> Result<String, String> {
    let shape = "arn:aws:states:REGION:ACCOUNT:stateMachine:NAME (the stack's output StateMachineArn)";
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "states", _, _, "stateMachine", name] if !name.is_empty() => Ok(text.to_string()),
        ["arn", _, "states", _, _, "execution", ..] => {
            Err(format!("{text} is an execution's ARN, not its state machine's: give {shape}"))
        }
        ["arn", ..] => Err(format!("{text} is not a Step Functions state machine's ARN: give {shape}")),
        _ => Err(format!("{text} is a name, not an ARN: give {shape}")),
    }
}

/// The most a request file (or standard input) may hold: a rollout request is a few kilobytes, and the
/// largest the controller accepts is well below this; anything longer is not a request (a wrong file, a
/// device such as /dev/zero), refused before it is parsed or held in memory.
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Reads a request from `path` (`-` for standard input), at most [`MAX_INPUT_BYTES`].
pub fn read_input(path: &PathBuf) -> Result<String, CliError> {
    let (what, reader): (String, Box<dyn std::io::Read>) = if path.as_os_str() == "-" {
        ("standard input".into(), Box::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| CliError { code: Exit::Usage, message: format!("reading {}: {e}", path.display()) })?;
        (path.display().to_string(), Box::new(file))
    };
    read_bounded(reader, &what)
}

/// At most [`MAX_INPUT_BYTES`] of `reader`, as text; more is refused, naming the limit.
fn read_bounded(reader: impl std::io::Read, what: &str) -> Result<String, CliError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError { code: Exit::Usage, message: format!("reading {what}: {e}") })?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(CliError::usage(format!(
            "{what} holds more than {} KiB, the most a request may take (a rollout request is a few kilobytes): \
             give the request file",
            MAX_INPUT_BYTES / 1024
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| CliError::usage(format!("{what} is not UTF-8 text: give a JSON rollout request")))
}

/// A percentage given on the command line: a number, with or without a `%` after it.
pub fn percent(text: &str) -> Result<f64, String> {
    text.trim()
        .trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("\"{text}\" is not a percentage: give a number such as 10 or 10%"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn arns_of_the_wrong_kind_are_named_before_any_call() {
        let machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:canary-rollout-prod";
        assert_eq!(state_machine_arn(machine).unwrap(), machine);
        let execution = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout-prod:x";
        assert!(state_machine_arn(execution).unwrap_err().contains("is an execution's ARN"));
        let function = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
        assert!(state_machine_arn(function).unwrap_err().contains("not a Step Functions state machine's ARN"));
        assert!(state_machine_arn("canary-rollout-prod").unwrap_err().contains("is a name, not an ARN"));
    }

    #[test]
    fn profiles_are_found_as_the_shared_files_name_them() {
        let config = "[default]\nregion = eu-west-1\n[profile prod-deployer]\nsso_session = x\n[sso-session x]\n";
        assert!(profile_defined(config, "prod-deployer", true));
        assert!(profile_defined(config, "default", true));
        assert!(!profile_defined(config, "nope", true));
        assert!(!profile_defined(config, "x", true), "an sso-session is no profile");
        assert!(profile_defined("[ci]\naws_access_key_id = A\n", "ci", false));
        assert!(!profile_defined("[profile ci]\n", "ci", false), "the credentials file has no profile prefix");
    }

    #[test]
    fn input_is_read_up_to_its_limit_and_refused_beyond_it() {
        let request = br#"{"function": "orders"}"#;
        assert_eq!(read_bounded(&request[..], "x").unwrap(), r#"{"function": "orders"}"#);
        let zeros = std::io::repeat(0).take(MAX_INPUT_BYTES * 4);
        let error = read_bounded(zeros, "/dev/zero").unwrap_err();
        assert_eq!(error.code, Exit::Usage);
        assert!(error.message.contains("more than 1024 KiB"), "{}", error.message);
        let random = read_bounded(&[0xff, 0xfe, 0x00][..], "/dev/urandom").unwrap_err();
        assert!(random.message.contains("not UTF-8"), "{}", random.message);
    }

    #[test]
    fn a_percentage_may_carry_its_sign() {
        assert_eq!(percent("10"), Ok(10.0));
        assert_eq!(percent("12.5%"), Ok(12.5));
        assert!(percent("ten").unwrap_err().contains("10 or 10%"));
    }
}
