//! The local AWS stack's library: the router's pure parts (which function and qualifier an Invoke names,
//! which version an alias's weights send one invocation to) and fixtures for the demo and the tests.

pub mod control;
pub mod fixtures;
pub mod iam;

use std::collections::BTreeMap;

/// The function name and qualifier of an Invoke path segment: a name, `name:qualifier`, or a function
/// ARN with or without a qualifier. A `Qualifier` query parameter wins over one in the name, as in AWS.
///
/// ```
/// use local_aws::function_ref;
/// assert_eq!(function_ref("orders", None), ("orders".into(), None));
/// assert_eq!(function_ref("orders:live", None), ("orders".into(), Some("live".into())));
/// assert_eq!(
///     function_ref("arn:aws:lambda:us-east-1:123456789012:function:orders:7", None),
///     ("orders".into(), Some("7".into()))
/// );
/// ```
pub fn function_ref(segment: &str, qualifier: Option<&str>) -> (String, Option<String>) {
    let parts: Vec<&str> = segment.split(':').collect();
    let (name, in_name) = match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name] => (*name, None),
        ["arn", _, "lambda", _, _, "function", name, q] => (*name, Some(*q)),
        [name, q] => (*name, Some(*q)),
        _ => (segment, None),
    };
    (name.to_string(), qualifier.or(in_name).filter(|q| !q.is_empty()).map(str::to_string))
}

/// Whether a qualifier names a version rather than an alias.
pub fn is_version(qualifier: &str) -> bool {
    qualifier == "$LATEST" || (!qualifier.is_empty() && qualifier.chars().all(|c| c.is_ascii_digit()))
}

/// The version one invocation of an alias runs, for a uniform draw in [0, 1): each additional version
/// takes its weight's share, the alias's own version the rest, as Lambda's weighted aliases do.
///
/// ```
/// use local_aws::pick_version;
/// let weights = [("2".to_string(), 0.25)].into();
/// assert_eq!(pick_version("1", &weights, 0.1), "2");
/// assert_eq!(pick_version("1", &weights, 0.5), "1");
/// ```
pub fn pick_version(function_version: &str, weights: &BTreeMap<String, f64>, draw: f64) -> String {
    let mut upper = 0.0;
    for (version, weight) in weights {
        upper += weight;
        if draw < upper {
            return version.clone();
        }
    }
    function_version.to_string()
}

/// A stable name for one version environment, so equal environments share one runner.
pub fn environment_key(environment: &BTreeMap<String, String>) -> String {
    environment.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

/// The AWS operation a request to moto is, and the Lambda function it names ("" for other services): the
/// JSON protocols' `X-Amz-Target` (`AWSStepFunctions.DescribeExecution`), the query protocol's `Action`
/// (CloudWatch's `GetMetricData`), or Lambda's REST paths.
///
/// ```
/// use local_aws::operation_of;
/// let op = |m, p, t, b: &str| operation_of(m, p, t, b.as_bytes());
/// assert_eq!(op("PUT", "/2015-03-31/functions/orders/aliases/live", None, ""), ("UpdateAlias".into(), "orders".into()));
/// assert_eq!(op("GET", "/2015-03-31/functions/orders/aliases/live", None, ""), ("GetAlias".into(), "orders".into()));
/// assert_eq!(op("POST", "/", Some("AWSEvents.PutEvents"), "{}"), ("PutEvents".into(), "".into()));
/// assert_eq!(op("POST", "/", None, "Action=GetMetricData&Version=2010-08-01"), ("GetMetricData".into(), "".into()));
/// assert_eq!(op("GET", "/2015-03-31/functions/orders/configuration", None, ""), ("GetFunctionConfiguration".into(), "orders".into()));
/// assert_eq!(op("GET", "/2015-03-31/functions/orders/policy", None, ""), ("GET functions/policy".into(), "orders".into()));
/// ```
pub fn operation_of(method: &str, path: &str, target: Option<&str>, body: &[u8]) -> (String, String) {
    if let Some(target) = target {
        return (target.rsplit('.').next().unwrap_or(target).to_string(), String::new());
    }
    let body = String::from_utf8_lossy(body);
    if let Some(action) = body.split('&').find_map(|pair| pair.strip_prefix("Action=")) {
        return (action.to_string(), String::new());
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [_, "tags", arn] => {
            let operation = match method {
                "GET" => "ListTags",
                "POST" => "TagResource",
                _ => "UntagResource",
            };
            // The ARN may come percent-encoded; the function is its last part.
            let arn: String = form_urlencoded::parse(arn.as_bytes()).map(|(k, _)| k).collect();
            (operation.to_string(), arn.rsplit(':').next().unwrap_or_default().to_string())
        }
        [_, "functions", function, "aliases", _] => {
            let operation = match method {
                "GET" => "GetAlias",
                "PUT" => "UpdateAlias",
                "DELETE" => "DeleteAlias",
                _ => "AliasCall",
            };
            (operation.to_string(), function.to_string())
        }
        [_, "functions", function, rest @ ..] => {
            let operation = match (method, rest) {
                ("GET", []) => "GetFunction",
                ("GET", ["configuration"]) => "GetFunctionConfiguration",
                ("PUT", ["configuration"]) => "UpdateFunctionConfiguration",
                ("POST", ["versions"]) => "PublishVersion",
                ("GET", ["versions"]) => "ListVersionsByFunction",
                ("POST", ["aliases"]) => "CreateAlias",
                _ => return (format!("{method} functions/{}", rest.join("/")), function.to_string()),
            };
            (operation.to_string(), function.to_string())
        }
        _ => (format!("{method} {path}"), String::new()),
    }
}

/// Lambda's Invoke API errors, as the SDKs expect them: a status, `x-amzn-ErrorType`, and a JSON body.
pub fn invoke_error(status: u16, error_type: &str, message: &str) -> (u16, String, String) {
    (status, error_type.to_string(), serde_json::json!({"Type": "User", "message": message}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_refs() {
        let cases = [
            ("orders", None, "orders", None),
            ("orders", Some("3"), "orders", Some("3")),
            ("orders:live", Some("2"), "orders", Some("2")),
            ("orders:", None, "orders", None),
            ("arn:aws:lambda:us-east-1:123456789012:function:canary-shift", None, "canary-shift", None),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:canary-shift:$LATEST",
                None,
                "canary-shift",
                Some("$LATEST"),
            ),
        ];
        for (segment, query, name, qualifier) in cases {
            assert_eq!(function_ref(segment, query), (name.to_string(), qualifier.map(str::to_string)), "{segment}");
        }
        assert!(is_version("12") && is_version("$LATEST") && !is_version("live") && !is_version(""));
    }

    #[test]
    fn weighted_choice_follows_the_weights() {
        let weights = BTreeMap::from([("2".to_string(), 0.1), ("3".to_string(), 0.2)]);
        let draws = 10_000;
        let mut counts = BTreeMap::new();
        for i in 0..draws {
            *counts.entry(pick_version("1", &weights, i as f64 / draws as f64)).or_insert(0) += 1;
        }
        // Cumulative f64 weights (0.1 + 0.2 = 0.30000000000000004) may move a draw at a boundary.
        for (version, expected) in [("1", 7000), ("2", 1000), ("3", 2000)] {
            let count: i32 = counts[version];
            assert!((count - expected).abs() <= 1, "version {version}: {count} of {draws}, expected {expected}");
        }
        assert_eq!(pick_version("4", &BTreeMap::new(), 0.99), "4");
    }

    #[test]
    fn environment_keys_are_order_free() {
        let a = BTreeMap::from([("B".to_string(), "2".to_string()), ("A".to_string(), "1".to_string())]);
        assert_eq!(environment_key(&a), "A=1\nB=2");
        assert_eq!(environment_key(&BTreeMap::new()), "");
        let (status, kind, body) = invoke_error(429, "TooManyRequestsException", "Rate Exceeded.");
        assert_eq!((status, kind.as_str()), (429, "TooManyRequestsException"));
        assert!(body.contains("Rate Exceeded."));
    }
}
