//! Which certificate authorities the HTTPS client trusts.
//!
//! The SDK's default client reads the system trust store before its first call: on a Debian-like system
//! every file of `/etc/ssl/certs`, about 4 ms, half of what a controller function's cold start was
//! (docs/performance.md). The controller only ever calls AWS service endpoints, whose certificates all
//! chain to the five roots of Amazon Trust Services, so it can trust exactly those, compiled in, and read no
//! file. Amazon Trust Services recommends all five for a custom trust store
//! (<https://www.amazontrust.com/repository/>).
//!
//! Whoever points the process somewhere else keeps the system store: `SSL_CERT_FILE` or `SSL_CERT_DIR` set
//! (a TLS-inspecting proxy's authority, say) or an endpoint override (`AWS_ENDPOINT_URL`, or any
//! `AWS_ENDPOINT_URL_<SERVICE>`), whose certificate may come from anyone.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Amazon Trust Services' five roots, PEM (`tls/amazon-roots.pem` says where they come from).
pub const AMAZON_ROOTS_PEM: &str = include_str!("tls/amazon-roots.pem");

/// The certificate authorities an HTTPS client trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustRoots {
    /// The system's store, read by the SDK's default client (what the CLI uses: it runs on people's
    /// machines and CI agents, behind whatever proxies they have).
    #[default]
    System,
    /// Amazon Trust Services' roots, compiled in: nothing read from disk.
    Amazon,
    /// These certificates only, PEM (tests).
    Pem(String),
}

impl TrustRoots {
    /// The controller's choice: Amazon's roots, unless the environment (`vars`, as from
    /// [`std::env::vars`]) sets a trust store of its own or points the SDK at another endpoint.
    ///
    /// ```
    /// use canary_aws::TrustRoots;
    /// let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    /// assert_eq!(TrustRoots::for_controller(env(&[("AWS_REGION", "eu-west-1")])), TrustRoots::Amazon);
    /// assert_eq!(TrustRoots::for_controller(env(&[("SSL_CERT_FILE", "/etc/proxy-ca.pem")])), TrustRoots::System);
    /// assert_eq!(TrustRoots::for_controller(env(&[("AWS_ENDPOINT_URL_LAMBDA", "https://x")])), TrustRoots::System);
    /// ```
    pub fn for_controller(vars: impl IntoIterator<Item = (String, String)>) -> TrustRoots {
        let elsewhere =
            |name: &str| name == "SSL_CERT_FILE" || name == "SSL_CERT_DIR" || name.starts_with("AWS_ENDPOINT_URL");
        if vars.into_iter().any(|(name, value)| elsewhere(&name) && !value.is_empty()) {
            TrustRoots::System
        } else {
            TrustRoots::Amazon
        }
    }

    /// The HTTPS client to give the SDK, or `None` for its default one (the system store).
    ///
    /// Built as the SDK builds its default client (rustls with aws-lc, proxies from the environment, the
    /// runtime's sleep and connector settings); only the trust store differs.
    pub fn http_client(&self) -> Option<SharedHttpClient> {
        let pem = match self {
            TrustRoots::System => return None,
            TrustRoots::Amazon => AMAZON_ROOTS_PEM.as_bytes().to_vec(),
            TrustRoots::Pem(pem) => pem.as_bytes().to_vec(),
        };
        let context = TlsContext::builder()
            .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
            .build()
            .expect("a trust store of PEM certificates is a valid TLS context");
        // Every SDK client built on this HTTP client asks it once for a connector, with no settings, only to
        // load its trust store early (`validate_base_client_config`), and drops it; real requests ask with
        // their settings. The first such check builds the real thing; later ones (one per service client)
        // get a plain-HTTP connector instead of parsing the roots again. A plain-HTTP connector refuses
        // `https` URLs, so even used by mistake it would fail, never send in the clear.
        let checked = std::sync::atomic::AtomicBool::new(false);
        Some(Builder::new().build_with_connector_fn(move |settings, components| {
            if settings.is_none() && components.is_none() && checked.swap(true, std::sync::atomic::Ordering::Relaxed) {
                return ConnectorBuilder::default().build_http();
            }
            let mut connector = ConnectorBuilder::default()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }))
    }
}
