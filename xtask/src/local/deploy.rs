//! Deploying template.yaml onto the emulator: translated by SAM's own translator, its intrinsics resolved, its
//! resources created as CloudFormation would (crates/local-aws/emulator/template_stack.py).

use super::{TEMPLATE_PARAMETERS, fake_credentials, state_dir};
use crate::tools::{root, step};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

/// Runs `crates/local-aws/emulator/template_stack.py` on template.yaml with the local parameters: the
/// template as SAM translates it, its intrinsic functions resolved (`translate`), or also created on moto.
pub(super) fn template_stack(command: &str, extra: &[String]) -> Result<Value, String> {
    let mut args = vec![
        root().join("crates/local-aws/emulator/template_stack.py").display().to_string(),
        command.to_string(),
        "--template".into(),
        root().join("template.yaml").display().to_string(),
    ];
    for (name, value) in TEMPLATE_PARAMETERS {
        args.extend(["--param".to_string(), format!("{name}={value}")]);
    }
    args.extend(extra.iter().cloned());
    let output = fake_credentials(Command::new(root().join(".venv/bin/python")).args(&args))
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run template_stack.py: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "loading template.yaml on the local stack failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("template_stack.py printed no stack: {e}"))
}

/// The resources of a resolved stack of one type: (logical ID, resource).
pub fn resources_of<'a>(stack: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
    stack["resources"].as_object().into_iter().flatten().filter(move |(_, r)| r["Type"] == kind)
}

/// The function the template's rule on ended executions invokes (EventBridge in AWS; the router here).
pub(super) fn safety_net_of(stack: &Value) -> Result<String, String> {
    resources_of(stack, "AWS::Events::Rule")
        .find(|(_, rule)| rule["Properties"]["EventPattern"]["source"] == json!(["aws.states"]))
        .and_then(|(_, rule)| rule["Properties"]["Targets"][0]["Arn"].as_str())
        .and_then(|arn| arn.rsplit(':').next())
        .map(str::to_string)
        .ok_or_else(|| "template.yaml has no rule from aws.states to a function: no safety net".into())
}

/// The roles of the services the demo and the tests deploy, unless they exist.
pub(super) async fn ensure_services_role(config: &aws_config::SdkConfig) -> Result<(), String> {
    let iam = aws_sdk_iam::Client::new(config);
    for name in [local_aws::fixtures::ROLE_NAME, local_aws::fixtures::OTHER_ROLE_NAME] {
        if iam.get_role().role_name(name).send().await.is_ok() {
            continue;
        }
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"}}]});
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| format!("creating role {name}: {}", aws_sdk_iam::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}

/// template.yaml as SAM translated it and its intrinsics resolved, before anything is created.
pub(super) fn translated_file() -> PathBuf {
    state_dir().join("template-translated.json")
}

/// What `deploy_controller` created.
pub(super) struct Created {
    pub(super) state_machine_arn: String,
    /// Logical ID -> function name, for the tests (AWS would add a random suffix; the local stack does not).
    pub(super) functions: std::collections::BTreeMap<String, String>,
}

/// Creates (or updates) the template's stack on moto: exactly the translated resources, with one named
/// change, the deployment's facts (the local stack publishes every invocation's metrics at once, so its
/// rollouts may hold for seconds).
pub(super) fn deploy_controller(moto_url: &str) -> Result<Created, String> {
    step("deploying template.yaml (SAM-translated: the controller and the sample service) onto the emulator");
    let substitutions: serde_json::Map<String, Value> = canary_core::deployment::Deployment::LOCAL
        .substitutions()
        .into_iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    let overrides = json!({"definition_substitutions": substitutions});
    let resolved = translated_file().display().to_string();
    let stack = template_stack(
        "create",
        &[
            "--endpoint".into(),
            moto_url.to_string(),
            "--overrides".into(),
            overrides.to_string(),
            "--resolved".into(),
            resolved,
        ],
    )?;
    std::fs::write(state_dir().join("template-stack.json"), serde_json::to_string_pretty(&stack).expect("json"))
        .map_err(|e| e.to_string())?;
    let state_machine_arn = resources_of(&stack, "AWS::StepFunctions::StateMachine")
        .find_map(|(_, r)| r["Arn"].as_str().map(str::to_string))
        .ok_or("template.yaml has no state machine")?;
    let functions = resources_of(&stack, "AWS::Lambda::Function")
        .filter_map(|(id, r)| Some((id.clone(), r["PhysicalName"].as_str()?.to_string())))
        .collect();
    Ok(Created { state_machine_arn, functions })
}
