//! IAM, which the emulator does not enforce, checked after the suite: every call its signer made against
//! the policy the template (or deploy/canaryctl-policy.json) grants it, every role exercised or said why
//! not, and no role of one stage allowed to write the other's functions.

use super::deploy::resources_of;
use super::{ACCOUNT, REGION, Stack, state_dir};
use crate::tools::{root, step};
use serde_json::Value;

/// The policy documents each principal of the local stack signs with: every IAM role of the template (its
/// inline policies, as SAM translated them; the managed basic-execution policy grants only logs, which the
/// controller never calls), and `canaryctl`'s published policy (deploy/canaryctl-policy.json), placed.
pub(super) fn policies_by_principal() -> Result<std::collections::BTreeMap<String, (String, Vec<Value>)>, String> {
    let path = state_dir().join("template-stack.json");
    let stack: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| e.to_string())?;
    let mut out = std::collections::BTreeMap::new();
    for (id, role) in resources_of(&stack, "AWS::IAM::Role") {
        let name = role["PhysicalName"].as_str().unwrap_or_default().to_string();
        let users: Vec<String> = resources_of(&stack, "AWS::Lambda::Function")
            .filter(|(_, f)| f["Properties"]["Role"].as_str() == role["Arn"].as_str())
            .map(|(f, _)| f.clone())
            .collect();
        let documents =
            role["Properties"]["Policies"].as_array().into_iter().flatten().map(|p| p["PolicyDocument"].clone());
        let who = if users.is_empty() { id.clone() } else { users.join(", ") };
        out.insert(name, (who, documents.collect()));
    }
    let parameters = &stack["parameters"];
    let mut text = std::fs::read_to_string(root().join("deploy/canaryctl-policy.json")).map_err(|e| e.to_string())?;
    for (name, value) in [("AWS::Region", REGION), ("AWS::AccountId", ACCOUNT), ("AWS::Partition", "aws")] {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    text = text.replace("${Stage}", parameters["Stage"].as_str().ok_or("the stack has no Stage")?);
    // The pattern the stack's roles were given (the parameter, or the stage's own functions when it is empty),
    // as the template hands it to Prepare.
    let managed = resources_of(&stack, "AWS::StepFunctions::StateMachine")
        .find_map(|(_, r)| r["Properties"]["DefinitionSubstitutions"]["ManagedFunctionPattern"].as_str())
        .ok_or("the state machine is given no ManagedFunctionPattern")?;
    text = text.replace("${ManagedFunctionPattern}", managed);
    let policy: Value = serde_json::from_str(&text).map_err(|e| format!("deploy/canaryctl-policy.json: {e}"))?;
    out.insert(CANARYCTL_PRINCIPAL.to_string(), ("canaryctl".to_string(), vec![policy]));
    Ok(out)
}

/// The access key ID the suite and the demo run `canaryctl` with, so its calls are checked against its
/// published policy.
pub const CANARYCTL_PRINCIPAL: &str = "canaryctl";

/// Checks every AWS call the stack's functions (and canaryctl) made since it came up against the policy
/// their role grants in template.yaml: a call not allowed fails, naming function, action and resource.
pub async fn check_iam(stack: &Stack) -> Result<(), String> {
    step("IAM: every call of the suite against its signer's policy (template.yaml, deploy/canaryctl-policy.json)");
    let (status, body) = local_aws::control::request(&stack.endpoint_url, "GET", "/_local/iam-calls", "").await?;
    if status != 200 {
        return Err(format!("the router did not list its calls: {status} {body}"));
    }
    let calls: Vec<(local_aws::iam::Call, u64)> = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let policies = policies_by_principal()?;
    let (failures, summary) = judge_calls(&calls, &policies);
    println!("{:<44} {:>7} {:>8}", "principal (who)", "calls", "actions");
    for (principal, (count, actions)) in &summary {
        let who = policies.get(principal).map_or("", |(who, _)| who.as_str());
        println!("{:<44} {count:>7} {actions:>8}", format!("{principal} ({who})"));
    }
    let stage = policies_stage()?;
    let reaches = reaches_other_stage(&policies, &stage);
    println!(
        "no role of the {stage} stack may write the other stage's functions: {}",
        if reaches.is_empty() { "proven" } else { "NOT SO" }
    );
    let (unexercised, notes) = unexercised_roles(&policies, &summary);
    for note in notes {
        println!("{note}");
    }
    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!(
            "calls their role does not allow (on AWS each would be AccessDenied):\n  {}",
            failures.join("\n  ")
        ));
    }
    if !reaches.is_empty() {
        problems.push(format!(
            "roles of the {stage} stack allowed to write the other stage's functions:\n  {}",
            reaches.join("\n  ")
        ));
    }
    if !unexercised.is_empty() {
        problems.push(format!(
            "roles of the template that grant AWS calls no test made (their policy is unproven): exercise them in \
             the suite, or list them with a reason in UNEXERCISED (xtask/src/local.rs):\n  {}",
            unexercised.join("\n  ")
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// The stage of the deployed local stack.
pub(super) fn policies_stage() -> Result<String, String> {
    let path = state_dir().join("template-stack.json");
    let stack: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| e.to_string())?;
    stack["parameters"]["Stage"].as_str().map(str::to_string).ok_or_else(|| "the stack has no Stage".into())
}

/// The writes a stage's roles (and canaryctl's policy) must never be allowed on the other stage's sample
/// functions, whatever the suite happened to call: every alias write and every invocation, on the function,
/// its alias, a version, its worker and its smoke hook. Each allowed one, named.
pub fn reaches_other_stage(
    policies: &std::collections::BTreeMap<String, (String, Vec<Value>)>,
    stage: &str,
) -> Vec<String> {
    let other = if stage == "prod" { "staging" } else { "prod" };
    let base = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:sample-service-{other}");
    let resources = [
        base.clone(),
        format!("{base}:live"),
        format!("{base}:7"),
        format!("{base}-worker:live"),
        format!("{base}-smoke"),
        format!("{base}-smoke:live"),
    ];
    let mut reached = Vec::new();
    for (principal, (who, documents)) in policies {
        for action in ["lambda:UpdateAlias", "lambda:InvokeFunction"] {
            for resource in &resources {
                if local_aws::iam::allowed(documents, action, resource).unwrap_or(true) {
                    reached.push(format!("{who} (role {principal}) may {action} on {resource}"));
                }
            }
        }
    }
    reached
}

/// The roles of the template that the suite may leave without a call, each with the reason: the one place
/// where "never called" is allowed. Every other role that grants an AWS call must be exercised.
pub const UNEXERCISED: [(&str, &str); 1] = [(
    "RolloutStateMachineRole",
    "moto's ASL interpreter invokes the tasks itself, unsigned; the template test checks that this role may invoke \
     exactly the controller's seven task functions",
)];

/// The roles (not canaryctl) that made no call: those that grant calls and are not in [`UNEXERCISED`] (each
/// named with who uses it), and a note for the others.
pub fn unexercised_roles(
    policies: &std::collections::BTreeMap<String, (String, Vec<Value>)>,
    summary: &std::collections::BTreeMap<String, (u64, usize)>,
) -> (Vec<String>, Vec<String>) {
    let (mut unproven, mut notes) = (Vec::new(), Vec::new());
    for (principal, (who, documents)) in policies {
        if principal == CANARYCTL_PRINCIPAL || summary.contains_key(principal) {
            continue;
        }
        let grants = documents.iter().any(|d| d["Statement"].as_array().is_some_and(|s| !s.is_empty()));
        if !grants {
            notes.push(format!("{principal} ({who}) grants no AWS call beyond its logs: nothing to check"));
        } else if let Some((_, why)) = UNEXERCISED.iter().find(|(id, _)| principal.ends_with(id) || who == id) {
            notes.push(format!("{principal} ({who}) is not exercised here: {why}"));
        } else {
            unproven.push(format!("{principal} ({who})"));
        }
    }
    (unproven, notes)
}

/// The calls no policy of their signer allows, and per checked principal (calls, distinct actions). Calls by
/// other principals (the tests' own clients, moto's interpreter) are not the product's and are skipped.
pub fn judge_calls(
    calls: &[(local_aws::iam::Call, u64)],
    policies: &std::collections::BTreeMap<String, (String, Vec<Value>)>,
) -> (Vec<String>, std::collections::BTreeMap<String, (u64, usize)>) {
    let mut failures = Vec::new();
    let mut summary: std::collections::BTreeMap<String, (u64, std::collections::BTreeSet<String>)> = Default::default();
    for (call, count) in calls {
        let Some((who, documents)) = policies.get(&call.principal) else { continue };
        let entry = summary.entry(call.principal.clone()).or_default();
        entry.0 += count;
        entry.1.insert(call.action.clone());
        match local_aws::iam::allowed(documents, &call.action, &call.resource) {
            Ok(true) => {}
            Ok(false) => failures.push(format!(
                "{who} (role {}) called {} on {} ({count} times): not allowed",
                call.principal, call.action, call.resource
            )),
            Err(e) => failures.push(format!("{who} (role {}): {e}", call.principal)),
        }
    }
    (failures, summary.into_iter().map(|(p, (n, a))| (p, (n, a.len()))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use local_aws::iam::Call;
    use serde_json::json;

    #[test]
    fn a_call_its_role_does_not_allow_fails_naming_function_action_and_resource() {
        let policy =
            json!({"Statement": [{"Effect": "Allow", "Action": "lambda:GetAlias", "Resource": "arn:aws:lambda:*"}]});
        let policies = [("role-p".to_string(), ("PrepareFunction".to_string(), vec![policy]))].into();
        let call = |principal: &str, action: &str| {
            (Call { principal: principal.into(), action: action.into(), resource: "*".into() }, 2)
        };
        let calls = [
            (
                Call {
                    principal: "role-p".into(),
                    action: "lambda:GetAlias".into(),
                    resource: "arn:aws:lambda:x".into(),
                },
                1,
            ),
            call("role-p", "cloudwatch:GetMetricData"),
            call("testing", "s3:DeleteBucket"),
        ];
        let (failures, summary) = judge_calls(&calls, &policies);
        assert_eq!(
            failures,
            ["PrepareFunction (role role-p) called cloudwatch:GetMetricData on * (2 times): not allowed"]
        );
        assert_eq!(summary.get("role-p"), Some(&(3, 2)), "the test clients' own calls are not the product's");
        assert!(!summary.contains_key("testing"));
    }

    #[test]
    fn a_role_allowed_to_write_the_other_stages_functions_is_named() {
        let statement = |resource: &str| json!({"Statement": [{"Effect": "Allow", "Action": ["lambda:UpdateAlias"], "Resource": [resource]}]});
        let own = statement("arn:aws:lambda:us-east-1:123456789012:function:sample-service-staging*:*");
        let wide = statement("arn:aws:lambda:us-east-1:123456789012:function:sample-service-*:*");
        let policies = [
            ("role-own".to_string(), ("ShiftFunction".to_string(), vec![own])),
            ("role-wide".to_string(), ("PromoteFunction".to_string(), vec![wide])),
        ]
        .into();
        let reached = reaches_other_stage(&policies, "staging");
        assert!(!reached.is_empty() && reached.iter().all(|r| r.starts_with("PromoteFunction (role role-wide)")));
        assert!(reached.iter().any(|r| {
            r.contains("UpdateAlias on arn:aws:lambda:us-east-1:123456789012:function:sample-service-prod:live")
        }));
    }

    #[test]
    fn a_role_that_grants_calls_no_test_made_fails_unless_listed_with_a_reason() {
        let grants = json!({"Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]});
        let policies = [
            ("canary-HookRole".to_string(), ("SampleSmokeHookFunction".to_string(), vec![grants.clone()])),
            ("canary-WorkerRole".to_string(), ("SampleWorkerFunction".to_string(), vec![])),
            ("canary-RolloutStateMachineRole".to_string(), ("RolloutStateMachineRole".to_string(), vec![grants])),
            (CANARYCTL_PRINCIPAL.to_string(), ("canaryctl".to_string(), vec![])),
        ]
        .into();
        let (unproven, notes) = unexercised_roles(&policies, &Default::default());
        assert_eq!(unproven, ["canary-HookRole (SampleSmokeHookFunction)"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("WorkerRole") && n.contains("nothing to check")), "{notes:?}");
        let called = [("canary-HookRole".to_string(), (3, 1))].into();
        assert!(unexercised_roles(&policies, &called).0.is_empty());
    }
}
