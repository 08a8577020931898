//! Refusals: why a request cannot be carried out, field by field.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One thing wrong with a request: the field (a dotted path such as `strategy.linear.percent`),
/// what is wrong with it, and what would be right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into(), fix: fix.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.field, self.problem, self.fix)
    }
}

/// A request refused before any traffic moved. It always holds at least one [`FieldError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Refusal {
    pub errors: Vec<FieldError>,
}

impl Refusal {
    pub fn one(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { errors: vec![FieldError::new(field, problem, fix)] }
    }

    /// The fields named, in order; handy in tests and in CLI summaries.
    pub fn fields(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.field.as_str()).collect()
    }
}

/// The most problems a refusal's text names one by one; the rest are counted. A request with more is not a
/// typo but a wrong file, and its text must stay readable (and inside Step Functions' 32 KB cause).
pub const SHOWN_PROBLEMS: usize = 20;

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request refused, nothing was changed:")?;
        for error in self.errors.iter().take(SHOWN_PROBLEMS) {
            write!(f, "\n  - {error}")?;
        }
        if let Some(more) = self.errors.len().checked_sub(SHOWN_PROBLEMS).filter(|n| *n > 0) {
            let rest = format!(
                "\n  - and {more} more problems (the first {SHOWN_PROBLEMS} are shown): is this the request file?"
            );
            f.write_str(&rest)?;
        }
        Ok(())
    }
}

/// Collects field errors while a request is checked, so one refusal can name every problem at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    pub(crate) fn add(&mut self, field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(FieldError::new(field, problem, fix));
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The refusal of everything collected; only for callers that know something was added.
    pub(crate) fn into_refusal(self) -> Refusal {
        Refusal { errors: self.0 }
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, Refusal> {
        if self.0.is_empty() { Ok(value) } else { Err(Refusal { errors: self.0 }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_its_first_problems_and_counts_the_rest() {
        let many = Refusal {
            errors: (0..SHOWN_PROBLEMS + 5).map(|i| FieldError::new(format!("f{i}"), "is wrong", "fix it")).collect(),
        };
        let text = many.to_string();
        assert_eq!(text.lines().count(), 1 + SHOWN_PROBLEMS + 1, "{text}");
        assert!(text.contains("f19: is wrong") && !text.contains("f20:"), "{text}");
        assert!(text.ends_with("and 5 more problems (the first 20 are shown): is this the request file?"), "{text}");
        let exact = Refusal { errors: many.errors[..SHOWN_PROBLEMS].to_vec() };
        assert!(!exact.to_string().contains("more problems"));
    }
}
