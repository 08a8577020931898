//! EventBridge: [`EventBridgeNotifier`] publishes the rollout's events (`PutEvents`, source `lambda-canary`)
//! to the bus `CANARY_EVENT_BUS` names (the account's default bus without it).

use crate::error::classify;
use crate::lazy::OnFirstUse;
use crate::{AwsError, Notifier};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use canary_core::notice::{Notice, SOURCE};

/// [`Notifier`] on an EventBridge bus: each notice is an event with source `lambda-canary`.
#[derive(Debug, Clone)]
pub struct EventBridgeNotifier {
    client: OnFirstUse<Client>,
    bus: String,
}

impl EventBridgeNotifier {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client: OnFirstUse::built(client), bus: bus.into() }
    }

    /// On the bus named by `CANARY_EVENT_BUS`, or the account's default bus.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        let bus = std::env::var("CANARY_EVENT_BUS").unwrap_or_else(|_| "default".into());
        Self { client: OnFirstUse::from_config(config, Client::new), bus }
    }
}

#[async_trait]
impl Notifier for EventBridgeNotifier {
    async fn publish(&self, notices: &[Notice]) -> Result<(), AwsError> {
        // PutEvents takes at most 10 entries; a task announces at most two.
        for chunk in notices.chunks(10) {
            let entries = chunk.iter().map(|notice| {
                PutEventsRequestEntry::builder()
                    .source(SOURCE)
                    .detail_type(notice.detail_type.as_str())
                    .detail(notice.detail.to_string())
                    .event_bus_name(&self.bus)
                    .build()
            });
            let out =
                self.client.get().put_events().set_entries(Some(entries.collect())).send().await.map_err(classify)?;
            if out.failed_entry_count() > 0 {
                let reasons: Vec<String> =
                    out.entries().iter().filter_map(|e| e.error_message().map(str::to_string)).collect();
                return Err(AwsError::Other(format!(
                    "EventBridge refused {} events: {}",
                    out.failed_entry_count(),
                    reasons.join("; ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, mock_client};
    use serde_json::json;

    fn notice() -> Notice {
        Notice {
            detail_type: canary_core::notice::DetailType::Promoted,
            detail: json!({"function": "orders", "alias": "live"}),
        }
    }

    #[tokio::test]
    async fn notices_become_events_on_the_bus() {
        let rule = mock!(Client::put_events)
            .match_requests(|r| {
                let entry = &r.entries()[0];
                entry.source() == Some("lambda-canary")
                    && entry.detail_type() == Some("Rollout Promoted")
                    && entry.event_bus_name() == Some("deploys")
                    && entry.detail().is_some_and(|d| d.contains("\"alias\":\"live\""))
            })
            .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());
        let notifier = EventBridgeNotifier::new(mock_client!(aws_sdk_eventbridge, [&rule]), "deploys");
        notifier.publish(&[notice()]).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn refused_entries_are_an_error() {
        let rule = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder().error_code("AccessDenied").error_message("not allowed").build(),
                )
                .build()
        });
        let notifier = EventBridgeNotifier::new(mock_client!(aws_sdk_eventbridge, [&rule]), "default");
        let error = notifier.publish(&[notice()]).await.unwrap_err();
        assert!(matches!(error, AwsError::Other(ref m) if m.contains("not allowed")), "{error:?}");
    }
}
