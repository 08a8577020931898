//! `--debug`: one line on stderr for every AWS call, when it ends: the service and operation, how many attempts
//! it took, how long, and how it failed, as in
//! `aws: SFN DescribeExecution: 3 attempts, 1.2 s, failed: ...`.
//!
//! The SDK traces each call in a span with `rpc.service` and `rpc.method` (`SFN.DescribeExecution`) and logs its attempts and
//! failure as events inside it; this layer keeps what it needs in the span and prints it when the span
//! closes. `RUST_LOG` still gives the SDK's own trace, for a bug report about the SDK itself.

use std::fmt::Write as _;
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// What one call's span has gathered so far.
struct Call {
    service: String,
    operation: String,
    started: Instant,
    attempts: u32,
    endpoint: Option<String>,
    failure: Option<String>,
}

/// The `--debug` layer: prints each AWS call's line through `print` when it ends.
pub struct CallLines<P> {
    print: P,
}

impl<P: Fn(&str) + 'static> CallLines<P> {
    pub fn new(print: P) -> Self {
        CallLines { print }
    }
}

#[derive(Default)]
struct Fields {
    service: Option<String>,
    method: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field.name(), format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, name: &str, value: String) {
        match name {
            "rpc.service" => self.service = Some(value.trim_matches('"').to_string()),
            "rpc.method" => self.method = Some(value.trim_matches('"').to_string()),
            "message" => self.message = Some(value),
            "err" | "error" => self.error = Some(value),
            _ => {}
        }
    }
}

impl<S, P> Layer<S> for CallLines<P>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    P: Fn(&str) + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // A call's span, whatever its name (`SFN.DescribeExecution`; `invoke` in older SDKs), has both fields.
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let (Some(service), Some(operation)) = (fields.service, fields.method) else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            let call = Call { service, operation, started: Instant::now(), attempts: 0, endpoint: None, failure: None };
            span.extensions_mut().insert(call);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        // The innermost call the event belongs to.
        let Some(span) = scope.into_iter().find(|s| s.extensions().get::<Call>().is_some()) else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.message.unwrap_or_default();
        let mut extensions = span.extensions_mut();
        let Some(call) = extensions.get_mut::<Call>() else {
            return;
        };
        if let Some(attempt) = message.strip_prefix("beginning attempt #").and_then(|n| n.trim().parse().ok()) {
            call.attempts = attempt;
        } else if message.starts_with("will apply endpoint") {
            // `Endpoint { url: "https://states.eu-west-1.amazonaws.com", ... }`
            let url = message.split("url: \"").nth(1).and_then(|rest| rest.split('"').next());
            call.endpoint = url.map(str::to_string);
        } else if message.contains("encountered orchestrator error") {
            // The SDK says no more here; canaryctl's own message says what failed.
            call.failure.get_or_insert_with(String::new);
        } else if *event.metadata().level() <= Level::WARN {
            let said = fields.error.unwrap_or(message);
            call.failure = Some(said.lines().next().unwrap_or_default().to_string());
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(call) = span.extensions_mut().remove::<Call>() else {
            return;
        };
        (self.print)(&line(&call));
    }
}

/// A call's line.
fn line(call: &Call) -> String {
    let millis = call.started.elapsed().as_millis();
    let took = if millis >= 1000 { format!("{:.1} s", millis as f64 / 1000.0) } else { format!("{millis} ms") };
    let attempts = call.attempts.max(1);
    let mut text = format!("aws: {} {}", call.service, call.operation);
    if let Some(endpoint) = &call.endpoint {
        let _ = write!(text, " at {endpoint}");
    }
    let _ = write!(text, ": {attempts} attempt{}, {took}", if attempts == 1 { "" } else { "s" });
    match call.failure.as_deref() {
        Some("") => text.push_str(", failed"),
        Some(failure) => {
            let _ = write!(text, ", failed: {failure}");
        }
        None => text.push_str(", ok"),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// A call's span, its attempts and its failure make one line when it ends; events outside a call, and
    /// spans that are no call, make none.
    #[test]
    fn each_call_is_one_line_with_its_attempts_and_failure() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(CallLines::new(move |l: &str| sink.lock().unwrap().push(l.to_string())));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("outside any call");
            let other = tracing::debug_span!("apply_configuration");
            other.in_scope(|| tracing::debug!("not a call"));
            let call = tracing::debug_span!(
                "SFN.DescribeExecution",
                "rpc.service" = "states",
                "rpc.method" = "DescribeExecution"
            );
            call.in_scope(|| {
                tracing::debug!("beginning attempt #1");
                tracing::debug!("beginning attempt #2");
                let attempt = tracing::debug_span!("try_attempt");
                attempt.in_scope(|| {
                    tracing::debug!("will apply endpoint Endpoint {{ url: \"http://127.0.0.1:9\", headers: {{}} }}");
                    tracing::debug!("encountered orchestrator error; halting")
                });
            });
            drop(call);
            let fine = tracing::debug_span!("invoke", "rpc.service" = "lambda", "rpc.method" = "GetAlias");
            fine.in_scope(|| tracing::debug!("beginning attempt #1"));
            drop(fine);
            let warned = tracing::debug_span!("invoke", "rpc.service" = "imds", "rpc.method" = "get");
            warned.in_scope(|| tracing::warn!(err = "IMDS is disabled", "failed to load region"));
        });
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("aws: states DescribeExecution at http://127.0.0.1:9: 2 attempts, "),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with(" ms, failed"), "{}", lines[0]);
        assert!(
            lines[1].starts_with("aws: lambda GetAlias: 1 attempt, ") && lines[1].ends_with(", ok"),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with("failed: IMDS is disabled"), "{}", lines[2]);
    }

    #[test]
    fn a_long_call_says_seconds() {
        let call = Call {
            service: "sfn".into(),
            operation: "GetExecutionHistory".into(),
            started: Instant::now() - std::time::Duration::from_millis(1500),
            attempts: 0,
            endpoint: None,
            failure: None,
        };
        assert!(line(&call).starts_with("aws: sfn GetExecutionHistory: 1 attempt, 1.5 s"), "{}", line(&call));
    }
}
