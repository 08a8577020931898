//! Names and ARNs: a function given by name or by ARN, where an ARN lives, and the plain name CloudWatch uses.

use crate::refusal::Problems;

///
/// ```
/// use canary_core::request::arn_location;
/// let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:x";
/// assert_eq!(arn_location(arn), Some(("aws", "eu-west-1", "123456789012")));
/// assert_eq!(arn_location("orders-api"), None);
/// ```
pub fn arn_location(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.strip_prefix("arn:")?.split(':');
    let partition = parts.next()?;
    let _service = parts.next()?;
    Some((partition, parts.next()?, parts.next()?))
}

/// The ARN of `function` (a name, or an ARN as it is) in the partition, region and account of
/// `execution_arn`, where `Prepare` holds every function of a rollout to be: what Lambda's tag calls take.
///
/// ```
/// use canary_core::request::function_arn;
/// let execution = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:x";
/// assert_eq!(function_arn("orders", execution).unwrap(), "arn:aws:lambda:eu-west-1:123456789012:function:orders");
/// assert_eq!(function_arn("arn:aws:lambda:eu-west-1:1:function:o", "").unwrap(), "arn:aws:lambda:eu-west-1:1:function:o");
/// assert_eq!(function_arn("orders", "not an arn"), None);
/// ```
pub fn function_arn(function: &str, execution_arn: &str) -> Option<String> {
    if function.starts_with("arn:") {
        return Some(function.to_string());
    }
    let (partition, region, account) = arn_location(execution_arn)?;
    Some(format!("arn:{partition}:lambda:{region}:{account}:function:{function}"))
}

/// The plain function name of a name or an unqualified function ARN.
///
/// ```
/// use canary_core::request::function_name_of;
/// assert_eq!(function_name_of("arn:aws:lambda:eu-west-1:123456789012:function:orders-api"), "orders-api");
/// assert_eq!(function_name_of("orders-api"), "orders-api");
/// ```
pub fn function_name_of(function: &str) -> &str {
    function.rsplit(':').next().unwrap_or(function)
}

pub(super) fn check_function(problems: &mut Problems, field: &str, function: &str) {
    if let Some(rest) = function.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [partition, "lambda", region, account, "function", name]
                if is_partition(partition) && is_region(region) && is_account(account) && is_name(name, 64) => {}
            [_partition, "lambda", _region, _account, "function", _name, qualifier] => problems.add(
                field,
                format!("the ARN carries the qualifier \"{qualifier}\""),
                "give the unqualified function ARN (a rollout's alias goes in \"alias\")",
            ),
            _ => problems.add(
                field,
                format!("\"{function}\" is not a Lambda function ARN"),
                "use arn:aws:lambda:REGION:ACCOUNT:function:NAME, or the plain function name",
            ),
        }
    } else if !is_name(function, 64) {
        problems.add(
            field,
            format!("\"{function}\" is not a valid function name"),
            "use 1 to 64 letters, digits, '-' or '_', or the function's ARN",
        );
    }
}

/// `aws`, `aws-cn`, `aws-us-gov`, ...: lowercase words joined by '-', starting with `aws`.
fn is_partition(text: &str) -> bool {
    text.len() <= 32
        && text
            .split('-')
            .enumerate()
            .all(|(i, w)| (i > 0 || w == "aws") && !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
}

/// `eu-west-1`, `us-gov-east-1`, ...: lowercase words joined by '-', ending in a number.
fn is_region(text: &str) -> bool {
    let words: Vec<&str> = text.split('-').collect();
    text.len() <= 32
        && words.len() >= 3
        && words[..words.len() - 1].iter().all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
        && words.last().is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
}

/// Twelve digits.
fn is_account(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

pub(super) fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
