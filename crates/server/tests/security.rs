//! JWT mode against the real binary: who may read and publish what, bad tokens, expiry,
//! token sources, key types, and limits.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use herald_testkit::{http, server::Server, sse::SseClient};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{WAIT, data};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn claims(sub: &str, subscribe: &[&str], publish: &[&str]) -> Value {
    json!({"sub": sub, "exp": now() + 600, "herald": {"subscribe": subscribe, "publish": publish}})
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn jwt_config(extra: &str) -> String {
    format!("[auth]\nmode = \"jwt\"\nhs256_secret = \"{SECRET}\"\nleeway_secs = 0\n{extra}")
}

async fn jwt_server(extra: &str) -> Server {
    support::herald()
        .config_toml(jwt_config(extra))
        .spawn()
        .await
}

async fn open(server: &Server, query: &str, token: &str) -> SseClient {
    let auth = format!("Bearer {token}");
    SseClient::connect(
        server.addr(),
        &format!("/events?{query}"),
        &[("Authorization", &auth)],
    )
    .await
    .unwrap()
}

async fn publish_as(server: &Server, token: &str, body: &Value) -> http::Response {
    let auth = format!("Bearer {token}");
    http::post_json(
        server.addr(),
        "/publish",
        &body.to_string(),
        &[("Authorization", &auth)],
    )
    .await
}

#[tokio::test]
async fn two_users_on_one_topic_never_see_each_others_events() {
    let server = jwt_server("").await;
    let publisher = hs256(&claims("backend", &[], &[">"]));
    let mut alice = open(
        &server,
        "topic=inbox",
        &hs256(&claims("alice", &["inbox"], &[])),
    )
    .await;
    let mut bob = open(
        &server,
        "topic=inbox",
        &hs256(&claims("bob", &["inbox"], &[])),
    )
    .await;
    alice.expect_connected(WAIT).await;
    bob.expect_connected(WAIT).await;
    let batch: Vec<Value> = (0..300)
        .map(|i| {
            let user = ["alice", "bob", "carol"][i % 3];
            json!({"topic": "inbox", "data": format!("{user}:{i}"), "user": user})
        })
        .collect();
    publish_as(&server, &publisher, &json!(batch))
        .await
        .assert_status(200);
    for (client, user) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let got = data(&client.collect_events(100, WAIT).await);
        assert!(
            got.iter().all(|d| d.starts_with(&format!("{user}:"))),
            "{user} got {got:?}"
        );
        client.assert_quiet(Duration::from_millis(200)).await;
    }
    // Identity comes from the token only.
    let sneaky = open(
        &server,
        "topic=inbox&user=bob",
        &hs256(&claims("alice", &["inbox"], &[])),
    )
    .await;
    sneaky.assert_error(400, "user_param_not_allowed");
}

#[tokio::test]
async fn bad_tokens_get_401_and_no_stream() {
    let server = jwt_server("").await;
    let base = claims("alice", &["t"], &["t"]);
    let mut expired = base.clone();
    expired["exp"] = json!(now() - 10);
    let mut not_yet = base.clone();
    not_yet["nbf"] = json!(now() + 300);
    let mut no_exp = base.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &base,
        &EncodingKey::from_secret(b"another secret, also 32 bytes!!!"),
    )
    .unwrap();
    let hs384 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS384),
        &base,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let rs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &base,
        &EncodingKey::from_rsa_pem(&std::fs::read(fixture("rs256-private.pem")).unwrap()).unwrap(),
    )
    .unwrap();
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(base.to_string())
    );
    let good = hs256(&base);
    let cases = [
        ("expired", hs256(&expired)),
        ("not yet valid", hs256(&not_yet)),
        ("no exp", hs256(&no_exp)),
        ("wrong signature", wrong_secret),
        ("algorithm not configured", hs384),
        ("RS256 against an HS256 server", rs256),
        ("alg none", alg_none),
        ("truncated", good[..good.len() - 10].to_owned()),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in cases {
        open(&server, "topic=t", &token)
            .await
            .assert_error(401, "invalid_token");
        let res = publish_as(&server, &token, &json!({"topic": "t", "data": what})).await;
        assert_eq!(res.status, 401, "{what}: {}", res.text());
    }
    SseClient::connect(server.addr(), "/events?topic=t", &[])
        .await
        .unwrap()
        .assert_error(401, "missing_token");
    assert_eq!(
        support::metric_as(
            &server,
            &hs256(&json!({"sub": "x", "exp": now() + 60, "herald": {"admin": true}})),
            "herald_connections"
        )
        .await,
        0.0
    );
}

#[tokio::test]
async fn claims_bound_what_may_be_subscribed_and_published() {
    let server = jwt_server("").await;
    let token = hs256(&claims("42", &["users.42.>"], &["users.42.outbox"]));
    for allowed in [
        "topic=users.42.notifications",
        "topic=users.42.*",
        "topic=users.42.%3E",
    ] {
        let mut client = open(&server, allowed, &token).await;
        assert_eq!(client.status(), 200, "{allowed}");
        client.expect_connected(WAIT).await;
    }
    for denied in [
        "topic=users.*",
        "topic=%3E",
        "topic=users.43.n",
        "topic=users.42.n&topic=users.43.n",
    ] {
        let refused = open(&server, denied, &token).await;
        refused.assert_error(403, "forbidden_topic");
    }
    publish_as(
        &server,
        &token,
        &json!({"topic": "users.42.outbox", "data": 1}),
    )
    .await
    .assert_status(200);
    publish_as(
        &server,
        &token,
        &json!({"topic": "users.43.outbox", "data": 1}),
    )
    .await
    .assert_error(403, "forbidden_topic");
    let no_grants = hs256(&json!({"sub": "x", "exp": now() + 60}));
    open(&server, "topic=a", &no_grants)
        .await
        .assert_error(403, "forbidden_topic");
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let server = jwt_server("").await;
    let mut token_claims = claims("alice", &["t"], &[]);
    token_claims["exp"] = json!(now() + 2);
    let mut client = open(&server, "topic=t", &hs256(&token_claims)).await;
    client.expect_connected(WAIT).await;
    client.expect_end(Duration::from_secs(5)).await;
    assert!(client.ended_cleanly());
    open(&server, "topic=t", &hs256(&token_claims))
        .await
        .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn an_exp_past_any_representable_time_is_a_401_not_a_crash() {
    let server = jwt_server("").await;
    for exp in [u64::MAX, 1u64 << 63] {
        let mut token_claims = claims("alice", &["t"], &[]);
        token_claims["exp"] = json!(exp);
        open(&server, "topic=t", &hs256(&token_claims))
            .await
            .assert_error(401, "invalid_token");
    }
    // Far but representable, up to the last second a clock can hold: a stream its token
    // does not end (the deadline saturates).
    for exp in [(1u64 << 63) - 1, 1u64 << 62] {
        let mut far = claims("alice", &["t"], &[]);
        far["exp"] = json!(exp);
        let mut client = open(&server, "topic=t", &hs256(&far)).await;
        client.expect_connected(WAIT).await;
    }
    server.get("/healthz").await.assert_status(200);
}

#[tokio::test]
async fn tokens_work_by_cookie_and_by_query_parameter() {
    let server = jwt_server("cookie = \"session\"\n").await;
    let token = hs256(&claims("alice", &["t"], &[]));
    let by_query = SseClient::connect(
        server.addr(),
        &format!("/events?topic=t&access_token={token}"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(by_query.status(), 200);
    let cookie = format!("theme=dark; session={token}");
    let by_cookie = SseClient::connect(server.addr(), "/events?topic=t", &[("Cookie", &cookie)])
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let wrong_cookie = format!("herald_token={token}");
    SseClient::connect(
        server.addr(),
        "/events?topic=t",
        &[("Cookie", &wrong_cookie)],
    )
    .await
    .unwrap()
    .assert_error(401, "missing_token");
}

#[tokio::test]
async fn rs256_and_es256_keys_verify_and_algorithm_confusion_fails() {
    for (alg, private, public) in [
        (Algorithm::RS256, "rs256-private.pem", "rs256-public.pem"),
        (Algorithm::ES256, "es256-private.pem", "es256-public.pem"),
    ] {
        let name = format!("{alg:?}");
        let config = format!(
            "[auth]\nmode = \"jwt\"\nalgorithms = [\"{name}\"]\npublic_key_pem = \"{}\"\n",
            fixture(public)
        );
        let server = support::herald().config_toml(config).spawn().await;
        let pem = std::fs::read(fixture(private)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(alg), &claims("alice", &["t"], &[]), &key).unwrap();
        assert_eq!(
            open(&server, "topic=t", &token).await.status(),
            200,
            "{name}"
        );
        // Signing HS256 with the public key as the secret must not pass.
        let public_bytes = std::fs::read(fixture(public)).unwrap();
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims("alice", &["t"], &[]),
            &EncodingKey::from_secret(&public_bytes),
        )
        .unwrap();
        open(&server, "topic=t", &confused)
            .await
            .assert_error(401, "invalid_token");
    }
}

#[tokio::test]
async fn per_user_connection_and_publish_rate_limits() {
    let server = jwt_server(
        "[limits]\nmax_connections_per_user = 2\npublish_rate_per_sec = 5\npublish_burst = 5\n",
    )
    .await;
    let alice = hs256(&claims("alice", &["t"], &["t"]));
    let bob = hs256(&claims("bob", &["t"], &["t"]));
    let mut streams = vec![
        open(&server, "topic=t", &alice).await,
        open(&server, "topic=t", &alice).await,
    ];
    let third = open(&server, "topic=t", &alice).await;
    third.assert_error(429, "too_many_user_connections");
    assert!(third.header("retry-after").is_some());
    streams.push(open(&server, "topic=t", &bob).await);
    for s in &mut streams {
        s.expect_connected(WAIT).await;
    }

    for i in 0..5 {
        publish_as(&server, &alice, &json!({"topic": "t", "data": i}))
            .await
            .assert_status(200);
    }
    let limited = publish_as(&server, &alice, &json!({"topic": "t", "data": "over"})).await;
    limited.assert_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    publish_as(&server, &bob, &json!({"topic": "t", "data": "bob"}))
        .await
        .assert_status(200);
    for s in &mut streams {
        assert_eq!(
            data(&s.collect_events(6, WAIT).await),
            ["0", "1", "2", "3", "4", "bob"]
        );
    }
}

#[tokio::test]
async fn stats_can_be_admin_only() {
    let server = jwt_server("stats = \"admin\"\n").await;
    server
        .get("/metrics")
        .await
        .assert_error(401, "missing_token");
    let user = hs256(&claims("alice", &["t"], &[]));
    http::get(
        server.addr(),
        "/stats",
        &[("Authorization", &format!("Bearer {user}"))],
    )
    .await
    .assert_error(403, "admin_only");
    let admin = hs256(&json!({"sub": "ops", "exp": now() + 60, "herald": {"admin": true}}));
    http::get(
        server.addr(),
        "/stats",
        &[("Authorization", &format!("Bearer {admin}"))],
    )
    .await
    .assert_status(200);
    server.get("/healthz").await.assert_status(200);
}

#[tokio::test]
async fn herald_token_mints_a_working_token() {
    let server = jwt_server("").await;
    let out = tokio::process::Command::new(support::HERALD)
        .args([
            "token",
            "--sub",
            "42",
            "--subscribe",
            "users.42.>",
            "--publish",
            "users.42.out",
            "--ttl",
            "10m",
        ])
        .env("HERALD_AUTH__HS256_SECRET", SECRET)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut client = open(&server, "topic=users.42.n", &token).await;
    client.expect_connected(WAIT).await;
    publish_as(
        &server,
        &token,
        &json!({"topic": "users.42.out", "data": 1}),
    )
    .await
    .assert_status(200);
    open(&server, "topic=users.43.n", &token)
        .await
        .assert_error(403, "forbidden_topic");
}
