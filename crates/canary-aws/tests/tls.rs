//! The controller's trust store: exactly Amazon Trust Services' five roots, and an HTTPS client that trusts
//! what it is given and nothing else.
//!
//! No machine here reaches AWS, so the client is proven against a TLS server on 127.0.0.1 whose certificate
//! a test authority signed (`tests/tls/`, test-only, valid for a century): trusted when the client is given
//! that authority, refused when it is given Amazon's roots.

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use canary_aws::{AMAZON_ROOTS_PEM, Aliases, LambdaAliases, TrustRoots};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const TEST_CA: &str = include_str!("tls/ca.pem");
const SERVER_CERT: &str = include_str!("tls/server.pem");
const SERVER_KEY: &str = include_str!("tls/server.key");

/// SHA-256 of each root's DER, as Amazon Trust Services publishes them (<https://www.amazontrust.com/repository/>).
const AMAZON_ROOTS: [(&str, &str); 5] = [
    ("Amazon Root CA 1", "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"),
    ("Amazon Root CA 2", "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4"),
    ("Amazon Root CA 3", "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4"),
    ("Amazon Root CA 4", "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092"),
    (
        "Starfield Services Root Certificate Authority - G2",
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
    ),
];

#[test]
fn the_compiled_in_store_is_amazon_trust_services_five_roots() {
    let fingerprints: Vec<String> = CertificateDer::pem_slice_iter(AMAZON_ROOTS_PEM.as_bytes())
        .map(|cert| {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.expect("a PEM certificate"));
            digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
        })
        .collect();
    let expected: Vec<String> = AMAZON_ROOTS.iter().map(|(_, sha)| sha.to_string()).collect();
    assert_eq!(fingerprints, expected);
    for (name, _) in AMAZON_ROOTS {
        assert!(AMAZON_ROOTS_PEM.contains(&format!("CN = {name}")), "{name} is not named in the PEM file's comments");
    }
}

/// An HTTPS server on 127.0.0.1 answering every request with one alias, and its port.
async fn alias_server() -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = CertificateDer::pem_slice_iter(SERVER_CERT.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate hangs up here.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = r#"{"AliasArn":"arn:aws:lambda:us-east-1:123456789012:function:orders:live","Name":"live","FunctionVersion":"1","RevisionId":"r-1","Description":""}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn aliases(port: u16, roots: TrustRoots) -> LambdaAliases {
    aliases_over(port, roots.http_client().expect("a client of its own"))
}

fn aliases_over(port: u16, http: aws_smithy_runtime_api::client::http::SharedHttpClient) -> LambdaAliases {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(http)
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    LambdaAliases::new(aws_sdk_lambda::Client::from_conf(config))
}

#[tokio::test]
async fn the_client_trusts_the_authorities_it_is_given() {
    let port = alias_server().await;
    let alias = aliases(port, TrustRoots::Pem(TEST_CA.into())).get_alias("orders", "live").await;
    assert_eq!(alias.expect("the call went through").expect("an alias").revision_id, "r-1");
}

#[tokio::test]
async fn the_client_with_amazon_roots_refuses_a_certificate_from_anyone_else() {
    let port = alias_server().await;
    let error = aliases(port, TrustRoots::Amazon).get_alias("orders", "live").await.unwrap_err();
    let message = format!("{error:?}");
    assert!(message.contains("UnknownIssuer"), "{message}");
}

/// Each client built on one HTTP client checks it once at construction (a connector built and dropped); only
/// the first check parses the roots. Every client must still speak TLS with them.
#[tokio::test]
async fn clients_built_on_one_http_client_all_speak_tls_with_its_roots() {
    let port = alias_server().await;
    let http = TrustRoots::Pem(TEST_CA.into()).http_client().expect("a client of its own");
    let clients: Vec<LambdaAliases> = (0..3).map(|_| aliases_over(port, http.clone())).collect();
    for client in &clients {
        let alias = client.get_alias("orders", "live").await;
        assert_eq!(alias.expect("the call went through").expect("an alias").revision_id, "r-1");
    }
    let amazon = TrustRoots::Amazon.http_client().expect("a client of its own");
    let refused: Vec<LambdaAliases> = (0..2).map(|_| aliases_over(port, amazon.clone())).collect();
    for client in &refused {
        let message = format!("{:?}", client.get_alias("orders", "live").await.unwrap_err());
        assert!(message.contains("UnknownIssuer"), "{message}");
    }
}

#[test]
fn the_system_store_is_the_sdk_default_client() {
    assert!(TrustRoots::System.http_client().is_none());
}
