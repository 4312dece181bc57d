//! Publishing through `herald-client` against the real binary: ids, batches,
//! and the server's errors as typed values.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use herald_client::{Client, Draft, Error, Item};
use serde_json::json;
use support::client::{WAIT, connected, data, events, next_error, quick_client};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn publish_returns_the_id_the_subscriber_sees() {
    let server = support::start().await;
    let client = quick_client(&server.url(""));
    let mut sub = client.subscribe(["orders.*"]);
    connected(&mut sub).await;
    let id = client
        .publish(&Draft::new("orders.created", json!({"id": 7})).with_event("created"))
        .await
        .expect("published");
    let got = events(&mut sub, 1).await;
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].event_type, "created");
    assert_eq!(
        got[0].json::<serde_json::Value>().unwrap(),
        json!({"id": 7})
    );
}

#[tokio::test]
async fn a_batch_returns_ids_in_order_and_delivers_in_order() {
    let server = support::start().await;
    let client = quick_client(&server.url(""));
    let mut sub = client.subscribe(["a", "b"]);
    connected(&mut sub).await;
    let ids = client
        .publish_batch(&[Draft::new("a", "one"), Draft::new("b", "two")])
        .await
        .expect("published");
    let got = events(&mut sub, 2).await;
    assert_eq!(data(&got), ["one", "two"]);
    assert_eq!(ids, [got[0].id.clone(), got[1].id.clone()]);
}

#[tokio::test]
async fn scoped_events_reach_only_their_user_and_connection() {
    let server = support::start().await;
    let client = quick_client(&server.url(""));
    let mut alice = client.subscribe(["inbox"]).with_user("alice");
    let mut bob = client.subscribe(["inbox"]).with_user("bob");
    connected(&mut alice).await;
    let bob_connection = connected(&mut bob).await;
    client
        .publish(&Draft::new("inbox", "for alice").with_user("alice"))
        .await
        .unwrap();
    client
        .publish(&Draft::new("inbox", "for bob's connection").with_connection(bob_connection))
        .await
        .unwrap();
    client
        .publish(&Draft::new("inbox", "for all"))
        .await
        .unwrap();
    assert_eq!(data(&events(&mut alice, 2).await), ["for alice", "for all"]);
    assert_eq!(
        data(&events(&mut bob, 2).await),
        ["for bob's connection", "for all"]
    );
}

#[tokio::test]
async fn refusals_keep_the_status_code_and_message() {
    let server = support::start().await;
    let client = quick_client(&server.url(""));
    let err = client
        .publish(&Draft::new("t", 1).with_event("has space"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused { status: 400, code: Some(code), message }
            if code == "invalid_event" && !message.is_empty()),
        "{err:?}"
    );
    assert!(!err.is_unreachable());
    let err = client.publish_batch(&[]).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(400), Some("empty_batch")));
    let err = client
        .publish(&Draft::new("t", 1).with_user("u").with_connection("c"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_event"));
}

#[tokio::test]
async fn a_closed_port_is_unreachable_not_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = client.publish(&Draft::new("t", 1)).await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn a_refused_subscription_ends_with_its_error() {
    let server = support::start().await;
    let client = quick_client(&server.url(""));
    let mut sub = client.subscribe(["a..b"]);
    let err = next_error(&mut sub).await;
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("invalid_selector"))
    );
    let end = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut sub)).await;
    assert!(matches!(end, Ok(None)), "the stream ends after a refusal");
}

fn token(publish: &[&str], subscribe: &[&str]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = json!({"sub": "svc", "exp": exp,
                        "herald": {"publish": publish, "subscribe": subscribe}});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_mode_sends_the_token_and_maps_its_refusals() {
    let server = support::herald()
        .config_toml(format!(
            "[auth]\nmode = \"jwt\"\nhs256_secret = \"{SECRET}\"\n"
        ))
        .spawn()
        .await;
    let anonymous = quick_client(&server.url(""));
    let err = anonymous.publish(&Draft::new("a.1", 1)).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some("missing_token"))
    );

    let client = Client::builder(server.url(""))
        .token(token(&["a.*"], &["a.*"]))
        .build()
        .unwrap();
    let err = client.publish(&Draft::new("b.1", 1)).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("forbidden_topic"))
    );
    let err = next_error(&mut client.subscribe(["b.*"])).await;
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("forbidden_topic"))
    );

    let mut sub = client.subscribe(["a.*"]);
    assert!(matches!(
        support::client::next(&mut sub).await,
        Item::Connected { .. }
    ));
    let id = client.publish(&Draft::new("a.1", "ok")).await.unwrap();
    assert_eq!(events(&mut sub, 1).await[0].id, id);
}
