//! The delivery scripts, run against a stubbed `aws` and `sam` on PATH: what they deploy, and what they
//! refuse to deploy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A directory of stub commands: `aws` answers `get-alias` as `$STUB_GET_ALIAS` says, `sam` records its
/// arguments in `sam.args`.
fn stubs(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("canary-scripts-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |file: &str, body: &str| {
        let path = dir.join(file);
        std::fs::write(&path, body).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    };
    write(
        "aws",
        r#"#!/usr/bin/env bash
case "$*" in
  *describe-execution*) [ "${STUB_EXECUTION:-RUNNING}" = gone ] && exit 254; echo "${STUB_EXECUTION:-RUNNING}"; exit 0 ;;
  *Description*) echo "${STUB_DESCRIPTION:-Carries the traffic}"; exit 0 ;;
esac
case "$STUB_GET_ALIAS" in
  version) echo 7 ;;
  missing) echo "An error occurred (ResourceNotFoundException) when calling the GetAlias operation: Alias not found" >&2; exit 254 ;;
  denied) echo "An error occurred (ExpiredTokenException) when calling the GetAlias operation: The security token included in the request is expired" >&2; exit 254 ;;
  throttled) echo "An error occurred (TooManyRequestsException) when calling the GetAlias operation: Rate exceeded" >&2; exit 254 ;;
esac
"#,
    );
    write("sam", &format!("#!/usr/bin/env bash\necho \"$@\" > {}/sam.args\n", dir.display()));
    dir
}

fn deploy(stubs: &Path, get_alias: &str) -> (Output, Option<String>) {
    deploy_with(stubs, get_alias, "")
}

fn deploy_with(stubs: &Path, get_alias: &str, description: &str) -> (Output, Option<String>) {
    deploy_held(stubs, get_alias, description, "RUNNING")
}

/// A deploy whose alias carries `description`, the execution its lock names being `execution` (a status, or
/// `gone` for one that cannot be read).
fn deploy_held(stubs: &Path, get_alias: &str, description: &str, execution: &str) -> (Output, Option<String>) {
    let _ = std::fs::remove_file(stubs.join("sam.args"));
    let path = format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap());
    let output = Command::new("bash")
        .arg(root().join("scripts/deploy-stage.sh"))
        .arg("prod")
        .env("PATH", path)
        .env("STUB_GET_ALIAS", get_alias)
        .env("STUB_DESCRIPTION", description)
        .env("STUB_EXECUTION", execution)
        .output()
        .unwrap();
    (output, std::fs::read_to_string(stubs.join("sam.args")).ok())
}

#[test]
fn a_deploy_pins_live_at_the_version_it_serves() {
    let stubs = stubs("pins");
    let (output, sam) = deploy(&stubs, "version");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        sam.unwrap().trim_end(),
        "deploy --config-env prod --parameter-overrides Stage=prod LiveVersion=7 WorkerLiveVersion=7",
        "the API's live and its worker's, each pinned"
    );
}

#[test]
fn samconfig_names_each_stages_stack_and_deploys_it_without_prompting() {
    let config = std::fs::read_to_string(root().join("samconfig.toml")).unwrap();
    for stage in ["staging", "prod"] {
        let section = |name: &str| {
            let header = format!("[{stage}.{name}.parameters]");
            let start = config.find(&header).unwrap_or_else(|| panic!("samconfig.toml has no {header}"));
            config[start + header.len()..].split("\n[").next().unwrap().to_string()
        };
        assert!(section("global").contains(&format!("stack_name = \"lambda-canary-{stage}\"")));
        let deploy = section("deploy");
        for setting in ["confirm_changeset = false", "capabilities = \"CAPABILITY_IAM\"", "resolve_s3 = true"] {
            assert!(deploy.contains(setting), "[{stage}.deploy.parameters] lacks {setting}");
        }
        // A bare `sam deploy --config-env` pins nothing, which the template's LivePinned rule refuses.
        let pins = format!("parameter_overrides = \"Stage={stage} LiveVersion=\\\"\\\" WorkerLiveVersion=\\\"\\\"\"");
        assert!(deploy.contains(&pins), "{deploy}");
    }
}

#[test]
fn only_a_missing_alias_means_a_first_deploy() {
    let stubs = stubs("first");
    let (output, sam) = deploy(&stubs, "missing");
    assert!(output.status.success(), "{output:?}");
    assert!(
        sam.unwrap().trim_end().ends_with("LiveVersion=first WorkerLiveVersion=first"),
        "the template's first-deploy case"
    );
}

#[test]
fn a_deploy_over_a_running_rollout_is_refused() {
    let stubs = stubs("held");
    let held = "canary-rollout lock: arn:aws:states:eu-west-1:1:execution:canary-rollout-prod:r1";
    let (output, sam) = deploy_with(&stubs, "version", held);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(sam, None, "sam deploy ran over a rollout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a rollout holds") && stderr.contains("canary-rollout-prod:r1"), "{stderr}");
    // An execution that cannot be read is taken as running: refused the same way.
    let (output, sam) = deploy_held(&stubs, "version", held, "gone");
    assert_eq!((output.status.code(), sam), (Some(1), None));
    assert!(String::from_utf8_lossy(&output.stderr).contains("a rollout holds"));
}

/// A lock whose execution has ended without giving it back (signed by the move it made): the deploy is refused
/// as a stale lock, naming the execution and how to clear it, since deploying over it would pin what it left.
#[test]
fn a_deploy_over_a_stale_lock_says_how_to_clear_it() {
    let stubs = stubs("stale");
    let arn = "arn:aws:states:eu-west-1:1:execution:canary-rollout-prod:r1";
    let held = format!("canary-rollout lock: {arn} #3\nCarries the traffic");
    let (output, sam) = deploy_held(&stubs, "version", &held, "ABORTED");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(sam, None, "sam deploy ran over a stale lock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("lock of {arn}, which ended ABORTED")), "{stderr}");
    assert!(stderr.contains(&format!("canaryctl abort {arn} restores")), "{stderr}");
}

#[test]
fn the_template_refuses_a_deploy_that_does_not_pin_live() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    assert!(
        template.contains("FirstDeploy: !Equals [!Ref LiveVersion, \"first\"]"),
        "an empty LiveVersion is no first deploy"
    );
    let rule = &template[template.find("  LivePinned:").expect("the LivePinned rule")..];
    assert!(rule.contains("RuleCondition: !Equals [!Ref SampleService, \"true\"]"));
    assert!(rule.contains("Assert: !Not [!Equals [!Ref LiveVersion, \"\"]]"));
    let worker = &template[template.find("  WorkerLivePinned:").expect("the worker's rule")..];
    assert!(worker.contains("Assert: !Not [!Equals [!Ref WorkerLiveVersion, \"\"]]"));
}

#[test]
fn a_failed_lookup_stops_the_deploy_instead_of_skipping_the_canary() {
    let stubs = stubs("failed");
    for failure in ["denied", "throttled"] {
        let (output, sam) = deploy(&stubs, failure);
        assert_eq!(output.status.code(), Some(1), "{failure}: {output:?}");
        assert_eq!(sam, None, "{failure}: sam deploy ran, and would have sent all traffic to the new version");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not deploying") && stderr.contains("Exception"), "{failure}: {stderr}");
    }
}

/// Runs scripts/rollout.sh with stubs: `aws get-alias` answers each function's `deployed` and `live` as
/// given, `sam` the stack's state machine, and canaryctl records its arguments. Returns its output and the
/// arguments canaryctl was started with, if it was.
fn rollout(name: &str, api: (&str, &str), worker: (&str, &str)) -> (Output, Option<String>) {
    let dir = std::env::temp_dir().join(format!("canary-rollout-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |file: &str, body: String| {
        let path = dir.join(file);
        std::fs::write(&path, body).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    };
    write(
        "aws",
        format!(
            r#"#!/usr/bin/env bash
case "$*" in
  *-worker*deployed*) echo {} ;;
  *-worker*live*) echo {} ;;
  *deployed*) echo {} ;;
  *live*) echo {} ;;
esac
"#,
            worker.0, worker.1, api.0, api.1
        ),
    );
    let machine = "arn:aws:states:eu-west-1:1:stateMachine:canary-rollout-prod";
    write(
        "sam",
        format!(
            "#!/usr/bin/env bash\necho '[{{\"OutputKey\": \"StateMachineArn\", \"OutputValue\": \"{machine}\"}}]'\n"
        ),
    );
    write("canaryctl", format!("#!/usr/bin/env bash\necho \"$@\" > {}/canaryctl.args\necho '{{}}'\n", dir.display()));
    let _ = std::fs::remove_file(dir.join("canaryctl.args"));
    let output = Command::new("bash")
        .arg(root().join("scripts/rollout.sh"))
        .args(["prod", "deploy/prod-rollout.json"])
        .current_dir(root())
        .env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()))
        .env("CANARYCTL", dir.join("canaryctl"))
        .output()
        .unwrap();
    (output, std::fs::read_to_string(dir.join("canaryctl.args")).ok())
}

#[test]
fn the_api_and_its_worker_are_rolled_out_as_one_release_when_both_changed() {
    let machine = "--state-machine-arn arn:aws:states:eu-west-1:1:stateMachine:canary-rollout-prod";
    let (output, args) = rollout("both", ("8", "7"), ("4", "3"));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        args.unwrap().trim_end(),
        format!(
            "start --input deploy/prod-rollout.json --function sample-service-prod:8 --function \
             sample-service-prod-worker:4 --alias live {machine} --wait --output json"
        )
    );
    // One changed: that one alone.
    let (_, args) = rollout("worker", ("7", "7"), ("4", "3"));
    assert!(
        args.unwrap()
            .contains("start --input deploy/prod-rollout.json --function sample-service-prod-worker:4 --alias")
    );
    // Nothing new: nothing started.
    let (output, args) = rollout("none", ("7", "7"), ("3", "3"));
    assert!(output.status.success() && args.is_none(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("nothing to roll out"));
}
