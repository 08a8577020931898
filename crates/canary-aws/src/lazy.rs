//! SDK clients built on their first call.
//!
//! Building an SDK client parses its service's endpoint rules and compiles their region patterns, about a
//! tenth of a millisecond per service (`docs/performance.md`). A controller function builds its adapters at
//! start-up but calls some services only now and then (`Prepare` reads CloudWatch only when the request
//! lists alarms or judges latency at full traffic, Step Functions only for a lock left by another
//! execution), so each adapter builds its
//! client when it first calls it: nothing is built before the function's first poll, and an invocation
//! pays only for the services it calls.

use aws_config::SdkConfig;
use std::sync::OnceLock;

/// How to build a client of type `C`, and from what.
type Source<C> = (SdkConfig, fn(&SdkConfig) -> C);

/// A client of type `C`, built from the configuration when first asked for.
#[derive(Debug, Clone)]
pub(crate) struct OnFirstUse<C> {
    client: OnceLock<C>,
    source: Option<Source<C>>,
}

impl<C> OnFirstUse<C> {
    /// A client built already (tests give mocked ones).
    pub(crate) fn built(client: C) -> Self {
        Self { client: OnceLock::from(client), source: None }
    }

    /// A client `build` makes from `config` on first use.
    pub(crate) fn from_config(config: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        Self { client: OnceLock::new(), source: Some((config.clone(), build)) }
    }

    /// The client, built now if it was not yet.
    pub(crate) fn get(&self) -> &C {
        self.client.get_or_init(|| match &self.source {
            Some((config, build)) => build(config),
            None => unreachable!("a client without a configuration is built at construction"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OnFirstUse;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn build(config: &aws_config::SdkConfig) -> String {
        BUILT.fetch_add(1, Ordering::SeqCst);
        config.region().map(|r| r.to_string()).unwrap_or_default()
    }

    #[test]
    fn a_client_is_built_on_its_first_use_and_only_once() {
        let config = aws_config::SdkConfig::builder().region(aws_config::Region::new("eu-west-1")).build();
        let lazy = OnFirstUse::from_config(&config, build);
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing built at construction");
        assert_eq!(lazy.get(), "eu-west-1");
        assert_eq!(lazy.get(), "eu-west-1");
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
        assert_eq!(OnFirstUse::built("ready".to_string()).get(), "ready");
    }
}
