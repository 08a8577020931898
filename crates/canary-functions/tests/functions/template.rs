//! The SAM template agrees with the code: the state machine's substitutions, the binaries it deploys, and
//! the rollout requests the pipeline sends.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn template() -> String {
    std::fs::read_to_string(root().join("template.yaml")).unwrap()
}

/// The keys of the block under `header:` (one indentation level deeper), read as text: CloudFormation
/// YAML uses tags (`!GetAtt`) that plain YAML readers reject.
fn block_keys(text: &str, header: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut lines = text.lines().skip_while(|l| l.trim() != header);
    let Some(head) = lines.next() else { return keys };
    let indent = head.len() - head.trim_start().len();
    for line in lines {
        let depth = line.len() - line.trim_start().len();
        if line.trim().is_empty() || depth <= indent {
            break;
        }
        if line.trim_start().starts_with('#') {
            continue;
        }
        if let Some((key, _)) = line.trim().split_once(':') {
            keys.insert(key.to_string());
        }
    }
    keys
}

#[test]
fn every_placeholder_of_the_definition_has_a_substitution() {
    let definition = std::fs::read_to_string(root().join("statemachine/canary.asl.json")).unwrap();
    let placeholders: BTreeSet<String> =
        definition.split("${").skip(1).map(|p| p.split('}').next().unwrap().to_string()).collect();
    assert_eq!(block_keys(&template(), "DefinitionSubstitutions:"), placeholders);
    // On AWS the deployment's facts are AWS's.
    for (name, value) in canary_core::deployment::Deployment::AWS.substitutions() {
        assert!(template().contains(&format!("{name}: \"{value}\"")), "template.yaml sets {name} to {value}");
    }
    assert!(template().contains("DefinitionUri: statemachine/canary.asl.json"));
}

#[test]
fn every_deployed_binary_exists_and_every_controller_binary_is_deployed() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .unwrap();
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let binaries: BTreeSet<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    let deployed: BTreeSet<String> =
        template().lines().filter_map(|l| l.trim().strip_prefix("Binary: ")).map(str::to_string).collect();
    for binary in &deployed {
        assert!(binaries.contains(binary), "template.yaml deploys {binary}, which no workspace crate builds");
    }
    for binary in ["canary-controller", "sample-service", "sample-smoke-hook", "sample-worker"] {
        assert!(deployed.contains(binary), "{binary} is not deployed by template.yaml");
    }
    // Every function is built for Lambda's current Rust runtime.
    assert!(template().contains("Runtime: provided.al2023") && template().contains("Architectures: [arm64]"));
    assert_eq!(template().matches("BuildMethod: rust-cargolambda").count(), template().matches("Binary: ").count());
}

#[test]
fn the_pipelines_rollout_requests_are_valid() {
    for stage in ["staging", "prod"] {
        let text = std::fs::read_to_string(root().join(format!("deploy/{stage}-rollout.json"))).unwrap();
        let mut request: Value = serde_json::from_str(&text).unwrap();
        // scripts/rollout.sh supplies these two as flags.
        request["function"] = format!("sample-service-{stage}").into();
        request["version"] = "2".into();
        if let Err(refusal) = canary_core::parse_request(&request) {
            panic!("deploy/{stage}-rollout.json: {refusal}");
        }
    }
}

#[test]
fn every_controller_task_is_one_function_of_the_one_controller_binary() {
    use canary_functions::serve::{ControllerTask, TASK_VARIABLE};
    let template = template();
    let tasks: Vec<&str> =
        template.lines().filter_map(|l| l.trim().strip_prefix(&format!("{TASK_VARIABLE}: "))).collect();
    let mut expected: Vec<&str> = ControllerTask::ALL.map(ControllerTask::name).to_vec();
    let mut found = tasks.clone();
    expected.sort_unstable();
    found.sort_unstable();
    assert_eq!(found, expected, "each task is served by exactly one function");
    for task in tasks {
        assert_eq!(ControllerTask::parse(Some(task)).map(ControllerTask::name), Ok(task));
    }
    // SAM builds functions with the same code and build metadata once: every controller function shares one.
    assert_eq!(template.matches("Binary: canary-controller").count(), ControllerTask::ALL.len());
    // Every controller function has its substitution (the safety net's, for canaryctl abort).
    let substitutions = block_keys(&template, "DefinitionSubstitutions:");
    for task in ControllerTask::ALL {
        let substitution = task.substitution();
        assert!(substitutions.contains(substitution), "no {substitution} in DefinitionSubstitutions");
    }
}

/// The state machine's role may invoke exactly the controller's task functions (not the safety net, no
/// service): the one role the end-to-end suite cannot exercise, since moto's interpreter invokes the tasks
/// unsigned (xtask's UNEXERCISED says so), is checked here instead.
#[test]
fn the_state_machines_role_invokes_exactly_the_controllers_tasks() {
    use canary_functions::serve::ControllerTask;
    let template = template();
    // The resource's lines: from its key to the next key at the same depth (two spaces).
    let next_resource = |l: &&str| l.starts_with("  ") && !l.starts_with("   ") && !l.trim_start().starts_with('#');
    let machine: String = template
        .lines()
        .skip_while(|l| *l != "  RolloutStateMachine:")
        .skip(1)
        .take_while(|l| !next_resource(l))
        .collect::<Vec<_>>()
        .join("\n");
    let invoked: BTreeSet<&str> =
        machine.lines().filter_map(|l| l.trim().strip_prefix("FunctionName: !Ref ")).collect();
    let tasks: BTreeSet<&str> = ControllerTask::ALL
        .into_iter()
        .filter(|t| *t != ControllerTask::SafetyNet)
        .map(|t| t.substitution().trim_end_matches("Arn"))
        .collect();
    assert_eq!(invoked, tasks);
    assert_eq!(machine.matches("- LambdaInvokePolicy:").count(), tasks.len(), "one invoke policy per task");
    assert!(!machine.contains("lambda:*") && !machine.contains("Action: \"*\""), "nothing wider");
}

#[test]
fn every_log_group_expires_and_every_function_logs_to_its_own() {
    let template = template();
    let functions = template.matches("Type: AWS::Serverless::Function").count();
    assert_eq!(template.matches("      LoggingConfig:\n        LogGroup: !Ref ").count(), functions);
    let groups = template.matches("Type: AWS::Logs::LogGroup").count();
    assert_eq!(groups, functions + 1, "one per function, and the state machine's");
    assert_eq!(template.matches("RetentionInDays: !Ref LogRetentionDays").count(), groups);
}

#[test]
fn the_notification_rule_selects_events_the_controller_publishes() {
    let template = template();
    let rule = &template[template.find("RolloutNotificationsRule:\n").unwrap()..];
    let listed: Vec<&str> = rule
        .lines()
        .skip_while(|l| l.trim() != "detail-type:")
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .collect();
    assert_eq!(listed.len(), 6, "{listed:?}");
    let published: Vec<&str> = canary_core::notice::DetailType::all().map(|t| t.as_str()).collect();
    for kind in listed {
        assert!(published.contains(&kind), "the rule selects {kind}, which is never published");
    }
    // Every outcome and pause a person is told of is selected; a step passing is not (it would be noise).
    for kind in canary_core::notice::DetailType::all().filter(|t| *t != canary_core::notice::DetailType::StepPassed) {
        assert!(rule.contains(&format!("- {}", kind.as_str())), "the rule misses {}", kind.as_str());
    }
    assert!(rule.contains("source: [lambda-canary]") && canary_core::notice::SOURCE == "lambda-canary");
}

#[test]
fn the_dashboard_is_valid_json_and_draws_the_metric_the_controller_publishes() {
    let template = template();
    let start = template.find("DashboardBody: !Sub |\n").unwrap() + "DashboardBody: !Sub |\n".len();
    let body: String = template[start..]
        .lines()
        .take_while(|l| l.starts_with("        ") || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    // What CloudFormation substitutes, replaced by plain text.
    let mut filled = body.clone();
    while let Some(at) = filled.find("${") {
        let end = at + filled[at..].find('}').unwrap();
        filled.replace_range(at..=end, "x");
    }
    let dashboard: serde_json::Value = serde_json::from_str(&filled).unwrap_or_else(|e| panic!("{e}: {filled}"));
    let widgets = dashboard["widgets"].as_array().unwrap();
    let titles: Vec<&str> = widgets.iter().filter_map(|w| w["properties"]["title"].as_str()).collect();
    let wanted = ["share of live's traffic", "Rollout outcomes", "API: invocations", "API: errors", "API: p99"];
    let worker = ["Worker: invocations", "Worker: errors", "Worker: p99"];
    for wanted in wanted.into_iter().chain(worker) {
        assert!(titles.iter().any(|t| t.contains(wanted)), "no {wanted} widget: {titles:?}");
    }
    let traffic = &widgets.iter().find(|w| w["properties"]["title"].as_str().unwrap_or("").contains("share")).unwrap();
    let metric = &traffic["properties"]["metrics"][0];
    assert_eq!(metric[0], canary_core::notice::TRAFFIC_NAMESPACE);
    assert_eq!(metric[1], canary_core::notice::TRAFFIC_METRIC);
    assert_eq!((metric[2].as_str(), metric[4].as_str()), (Some("FunctionName"), Some("Alias")));
    // The API's line and its worker's: a release moves both.
    assert_eq!(traffic["properties"]["metrics"].as_array().unwrap().len(), 2);
    assert!(body.contains("\"FunctionName\", \"${SampleWorkerFunction}\", \"Alias\", \"live\""));
}

#[test]
fn every_suppressed_security_finding_says_why() {
    let template = template();
    let lines: Vec<&str> = template.lines().collect();
    let mut suppressed = 0;
    for (i, line) in lines.iter().enumerate() {
        if let Some(id) = line.trim().strip_prefix("- id: CKV_") {
            suppressed += 1;
            let comment = lines.get(i + 1).and_then(|l| l.trim().strip_prefix("comment: ")).unwrap_or("");
            assert!(comment.len() > 40, "CKV_{id} is suppressed without a reason: {comment:?}");
        }
    }
    assert!(suppressed > 0);
}
