//! IAM, which the emulator does not enforce, checked by the project: every AWS call the local stack sees is
//! attributed to the principal that signed it (the router gives each function its execution role's name as
//! its access key ID, as Lambda gives a function its role's credentials), named as IAM names it (action and
//! resource ARNs), and checked against that principal's Allow statements.
//!
//! The model is deliberately strict where AWS could be read two ways: an alias operation must be allowed on
//! both the function's ARN and the alias's, so a policy that passes here passes on AWS either way.

use serde_json::Value;

/// One AWS call, as IAM authorises it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Call {
    /// The access key ID that signed it: the role's name for the stack's functions.
    pub principal: String,
    /// `service:Operation`, as in a policy.
    pub action: String,
    /// The ARN IAM evaluates, or `*` for actions without resource-level permissions.
    pub resource: String,
}

/// The access key ID and the signing service of a SigV4 `Authorization` header.
///
/// ```
/// let header = "AWS4-HMAC-SHA256 Credential=canary-PrepareFunctionRole/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00";
/// assert_eq!(local_aws::iam::signer(header), Some(("canary-PrepareFunctionRole".into(), "lambda".into())));
/// assert_eq!(local_aws::iam::signer("Bearer x"), None);
/// ```
pub fn signer(authorization: &str) -> Option<(String, String)> {
    let credential = authorization.split("Credential=").nth(1)?.split(',').next()?;
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, _date, _region, service, "aws4_request"] => Some((key.to_string(), service.to_string())),
        _ => None,
    }
}

/// Where the calls are made: the ARNs' region and account.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub region: &'a str,
    pub account: &'a str,
}

impl Place<'_> {
    fn function(&self, name_or_arn: &str, qualifier: Option<&str>) -> String {
        let (name, in_name) = crate::function_ref(name_or_arn, None);
        let base = format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account);
        match qualifier.map(str::to_string).or(in_name) {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }
}

/// The actions and resources of one request to the emulator, signed for `service` (SigV4's signing name),
/// as (action, resource) pairs: each must be allowed. None for a request this model does not know (the
/// caller reports it, so a new kind of call cannot pass unchecked).
///
/// ```
/// use local_aws::iam::{Place, request_of};
/// let here = Place { region: "us-east-1", account: "123456789012" };
/// let alias = request_of(here, "lambda", "PUT", "/2015-03-31/functions/orders/aliases/live", "", None, b"{}").unwrap();
/// assert_eq!(alias, vec![
///     ("lambda:UpdateAlias".to_string(), "arn:aws:lambda:us-east-1:123456789012:function:orders".to_string()),
///     ("lambda:UpdateAlias".to_string(), "arn:aws:lambda:us-east-1:123456789012:function:orders:live".to_string()),
/// ]);
/// let metrics = request_of(here, "monitoring", "POST", "/", "", None, b"Action=GetMetricData&Version=2010-08-01").unwrap();
/// assert_eq!(metrics, vec![("cloudwatch:GetMetricData".to_string(), "*".to_string())]);
/// ```
pub fn request_of(
    place: Place,
    service: &str,
    method: &str,
    path: &str,
    query: &str,
    target: Option<&str>,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let prefix = match service {
        "monitoring" => "cloudwatch",
        other => other,
    };
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(target) = target {
        let operation = target.rsplit('.').next().unwrap_or(target);
        let action = format!("{prefix}:{operation}");
        let resources: Vec<String> = match (prefix, operation) {
            ("states", _) => {
                let arn = ["executionArn", "stateMachineArn"].iter().find_map(|k| json[*k].as_str());
                vec![arn.unwrap_or("*").to_string()]
            }
            ("events", "PutEvents") => {
                let buses: Vec<String> = json["Entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| e["EventBusName"].as_str().unwrap_or("default").to_string())
                    .map(|bus| {
                        if bus.starts_with("arn:") {
                            bus
                        } else {
                            format!("arn:aws:events:{}:{}:event-bus/{bus}", place.region, place.account)
                        }
                    })
                    .collect();
                if buses.is_empty() { vec!["*".into()] } else { buses }
            }
            ("sqs", _) => {
                let url = json["QueueUrl"].as_str().unwrap_or("");
                let name = url.rsplit('/').next().unwrap_or("");
                vec![format!("arn:aws:sqs:{}:{}:{name}", place.region, place.account)]
            }
            _ => vec!["*".into()],
        };
        return Some(resources.into_iter().map(|r| (action.clone(), r)).collect());
    }
    if prefix == "cloudwatch" {
        let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let operation = form.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone())?;
        let action = format!("cloudwatch:{operation}");
        let alarms: Vec<String> = form
            .iter()
            .filter(|(k, _)| k.starts_with("AlarmNames.member."))
            .map(|(_, name)| format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", place.region, place.account))
            .collect();
        return Some(match operation.as_str() {
            "DescribeAlarms" if !alarms.is_empty() => alarms.into_iter().map(|a| (action.clone(), a)).collect(),
            "DescribeAlarms" => {
                vec![(action, format!("arn:aws:cloudwatch:{}:{}:alarm:*", place.region, place.account))]
            }
            _ => vec![(action, "*".into())],
        });
    }
    if prefix != "lambda" {
        return None;
    }
    let qualifier =
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "Qualifier").map(|(_, v)| v.to_string());
    // Step Functions' interpreter sends a function ARN percent-encoded in the path.
    let path: String = form_urlencoded::parse(path.replace('+', "%2B").as_bytes()).map(|(k, _)| k).collect();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (action, resources) = match (method, parts.as_slice()) {
        ("GET" | "PUT", [_, "functions", function, "aliases", alias]) => {
            let action = if method == "GET" { "lambda:GetAlias" } else { "lambda:UpdateAlias" };
            (action, vec![place.function(function, None), place.function(function, Some(alias))])
        }
        ("GET", [_, "functions", function, "configuration"]) => {
            ("lambda:GetFunctionConfiguration", vec![place.function(function, qualifier.as_deref())])
        }
        ("GET", [_, "functions", function]) => {
            ("lambda:GetFunction", vec![place.function(function, qualifier.as_deref())])
        }
        ("POST", [_, "functions", function, "invocations"]) => {
            ("lambda:InvokeFunction", vec![place.function(function, qualifier.as_deref())])
        }
        ("GET", [_, "functions", function, "versions"]) => {
            ("lambda:ListVersionsByFunction", vec![place.function(function, None)])
        }
        ("GET", [_, "functions", function, "aliases"]) => ("lambda:ListAliases", vec![place.function(function, None)]),
        // Tags name the function by its ARN (a pause: canaryctl pause, the check's read).
        ("GET", [_, "tags", arn]) => ("lambda:ListTags", vec![arn.to_string()]),
        ("POST", [_, "tags", arn]) => ("lambda:TagResource", vec![arn.to_string()]),
        ("DELETE", [_, "tags", arn]) => ("lambda:UntagResource", vec![arn.to_string()]),
        ("GET", [_, "functions", function, "provisioned-concurrency"]) => {
            ("lambda:GetProvisionedConcurrencyConfig", vec![place.function(function, qualifier.as_deref())])
        }
        _ => return None,
    };
    Some(resources.into_iter().map(|r| (action.to_string(), r)).collect())
}

/// Whether `text` matches an IAM pattern: `*` any run of characters, `?` any one; actions compare
/// case-insensitively, ARNs exactly.
///
/// ```
/// use local_aws::iam::matches;
/// assert!(matches("arn:aws:lambda:*:1:function:sample-service-*:*", "arn:aws:lambda:us-east-1:1:function:sample-service-a:live", false));
/// assert!(!matches("arn:aws:lambda:*:1:function:sample-service-*", "arn:aws:lambda:us-east-1:1:function:orders", false));
/// assert!(matches("lambda:get*", "lambda:GetAlias", true));
/// ```
pub fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (pattern, text) = if ignore_case {
        (pattern.to_ascii_lowercase(), text.to_ascii_lowercase())
    } else {
        (pattern.to_string(), text.to_string())
    };
    // The same glob the controller matches function names with (`*`, `?`), so both read a pattern alike.
    canary_core::deployment::name_matches(&pattern, &text)
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether the policy documents allow `action` on `resource`: some Allow statement names both, and no Deny
/// statement does. Statements with `NotAction`, `NotResource` or `Condition` are refused as unmodelled.
pub fn allowed(documents: &[Value], action: &str, resource: &str) -> Result<bool, String> {
    let mut allow = false;
    for document in documents {
        let statements = match &document["Statement"] {
            Value::Array(list) => list.clone(),
            one @ Value::Object(_) => vec![one.clone()],
            _ => Vec::new(),
        };
        for statement in &statements {
            if ["NotAction", "NotResource", "Condition"].iter().any(|k| statement.get(*k).is_some()) {
                return Err(format!("a statement this check does not model: {statement}"));
            }
            let hit = strings(&statement["Action"]).iter().any(|a| matches(a, action, true))
                && strings(&statement["Resource"]).iter().any(|r| matches(r, resource, false));
            match (hit, statement["Effect"].as_str()) {
                (true, Some("Deny")) => return Ok(false),
                (true, Some("Allow")) => allow = true,
                _ => {}
            }
        }
    }
    Ok(allow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_statement_is_refused_and_a_matching_one_allowed() {
        let policy = json!({"Statement": [
            {"Effect": "Allow", "Action": ["lambda:GetAlias", "lambda:UpdateAlias"],
             "Resource": ["arn:aws:lambda:us-east-1:1:function:sample-service-*", "arn:aws:lambda:us-east-1:1:function:sample-service-*:*"]},
            {"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms", "Resource": "arn:aws:cloudwatch:us-east-1:1:alarm:*"}]});
        let ok = |action: &str, resource: &str| allowed(std::slice::from_ref(&policy), action, resource).unwrap();
        assert!(ok("lambda:UpdateAlias", "arn:aws:lambda:us-east-1:1:function:sample-service-x:live"));
        assert!(!ok("lambda:UpdateAlias", "arn:aws:lambda:us-east-1:1:function:orders:live"), "outside the pattern");
        assert!(!ok("cloudwatch:GetMetricData", "*"), "an action no statement names");
        assert!(!ok("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:1:function:sample-service-x"));
        let deny = json!({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}});
        assert!(
            !allowed(&[policy.clone(), deny], "cloudwatch:DescribeAlarms", "arn:aws:cloudwatch:us-east-1:1:alarm:a")
                .unwrap()
        );
        let conditional = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}]});
        assert!(allowed(&[conditional], "s3:GetObject", "*").is_err());
    }

    #[test]
    fn requests_are_named_as_iam_names_them() {
        let here = Place { region: "us-east-1", account: "1" };
        let one = |service, method, path, query, target, body: &str| {
            request_of(here, service, method, path, query, target, body.as_bytes())
        };
        assert_eq!(
            one("states", "POST", "/", "", Some("AWSStepFunctions.DescribeExecution"), r#"{"executionArn": "arn:x"}"#),
            Some(vec![("states:DescribeExecution".into(), "arn:x".into())])
        );
        assert_eq!(
            one("events", "POST", "/", "", Some("AWSEvents.PutEvents"), r#"{"Entries": [{"Source": "s"}]}"#),
            Some(vec![("events:PutEvents".into(), "arn:aws:events:us-east-1:1:event-bus/default".into())])
        );
        assert_eq!(
            one("monitoring", "POST", "/", "", None, "Action=DescribeAlarms&AlarmNames.member.1=a%20b"),
            Some(vec![("cloudwatch:DescribeAlarms".into(), "arn:aws:cloudwatch:us-east-1:1:alarm:a b".into())])
        );
        assert_eq!(
            one("lambda", "GET", "/2015-03-31/functions/f/configuration", "Qualifier=3", None, ""),
            Some(vec![("lambda:GetFunctionConfiguration".into(), "arn:aws:lambda:us-east-1:1:function:f:3".into())])
        );
        assert_eq!(
            one("sqs", "POST", "/", "", Some("AmazonSQS.SendMessage"), r#"{"QueueUrl": "http://h/1/q"}"#),
            Some(vec![("sqs:SendMessage".into(), "arn:aws:sqs:us-east-1:1:q".into())])
        );
        assert_eq!(one("lambda", "DELETE", "/2015-03-31/functions/f", "", None, ""), None, "unknown: reported");
        assert_eq!(
            one("lambda", "GET", "/2019-09-30/functions/f/provisioned-concurrency", "Qualifier=live", None, ""),
            Some(vec![(
                "lambda:GetProvisionedConcurrencyConfig".into(),
                "arn:aws:lambda:us-east-1:1:function:f:live".into()
            )])
        );
        assert_eq!(
            one(
                "lambda",
                "POST",
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Ag/invocations",
                "",
                None,
                ""
            ),
            Some(vec![("lambda:InvokeFunction".into(), "arn:aws:lambda:us-east-1:1:function:g".into())])
        );
    }
}
