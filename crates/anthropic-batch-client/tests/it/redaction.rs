//! The key goes out only as `x-api-key`, and never into Debug, Display or an error.

use anthropic_batch_client::{Client, ClientConfig, Error, MessageBatchId, SecretString};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, client, config};

/// Every way an error can be shown.
fn shown(err: &Error) -> String {
    let mut text = format!("{err}\n{err:?}\n{err:#?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}\n{cause:?}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn the_key_goes_only_in_its_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("x-api-key", KEY))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let _ = client(&server.uri())
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await;
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(request.headers.get("authorization").is_none());
    assert!(!request.url.as_str().contains(KEY));
    let others = request
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "x-api-key")
        .any(|(_, value)| value.to_str().unwrap_or("").contains(KEY));
    assert!(!others);
}

#[tokio::test]
async fn a_key_echoed_by_the_server_is_redacted_from_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "type": "error",
            "error": {"type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!("not json {KEY}")))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let err = client
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    assert_eq!(err.api().unwrap().message, "invalid x-api-key [REDACTED]");
    assert!(!shown(&err).contains(KEY));
    let err = client
        .cancel_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(!shown(&err).contains(KEY));
}

#[tokio::test]
async fn transport_errors_and_the_client_never_show_the_key() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = config(&url);
    let client = Client::new(config.clone()).unwrap();
    for text in [
        format!("{config:?}"),
        format!("{client:?}"),
        format!("{client:#?}"),
    ] {
        assert!(!text.contains(KEY), "{text}");
    }
    let err = client
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    assert!(!shown(&err).contains(KEY));
    let bad = Client::new(ClientConfig::new(
        format!("http://user:{KEY}@"),
        SecretString::from(KEY),
    ))
    .unwrap_err();
    assert!(!shown(&bad).contains(KEY));
}
