//! `herald publish` and `herald subscribe` against a real server: output and exit codes.

mod support;

use std::{process::Output, time::Duration};

use herald_testkit::server::{Server, herald_bin};
use tokio::process::Command;

async fn herald(args: &[&str]) -> Output {
    let run = Command::new(herald_bin())
        .args(args)
        .env_remove("HERALD_URL")
        .output();
    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("herald exits")
        .expect("herald runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn publish_prints_the_id_and_subscribe_prints_the_events() {
    let server = Server::start().await;
    let url = format!("http://{}", server.addr());
    let subscriber = {
        let url = url.clone();
        tokio::spawn(async move {
            herald(&["subscribe", "--count", "2", "--url", &url, "orders.>"]).await
        })
    };
    support::wait_metric(&server, "herald_subscribers", 1.0).await;

    let first = herald(&[
        "publish",
        "--url",
        &url,
        "--event",
        "created",
        "orders.created",
        r#"{"id":7}"#,
    ])
    .await;
    assert!(first.status.success(), "{first:?}");
    let id = stdout(&first).trim().to_owned();
    let second = herald(&["publish", "--url", &url, "orders.paid", "plain text"]).await;
    let id2 = stdout(&second).trim().to_owned();

    let out = subscriber.await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!("{id} created {{\"id\":7}}\n{id2} message plain text\n")
    );
}

#[tokio::test]
async fn subscribe_resumes_from_a_given_id_and_prints_json_lines() {
    let server = Server::start().await;
    let url = format!("http://{}", server.addr());
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            server
                .publish(serde_json::json!({"topic": "t", "data": i}))
                .await,
        );
    }
    let out = herald(&[
        "subscribe",
        "--json",
        "--count",
        "2",
        "--last-event-id",
        &ids[0],
        "--url",
        &url,
        "t",
    ])
    .await;
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        serde_json::json!({"id": ids[1], "event": "message", "data": "1"})
    );
    assert_eq!(lines[1]["id"], ids[2]);
}

#[tokio::test]
async fn exit_codes_tell_refused_from_unreachable() {
    let server = Server::start().await;
    let url = format!("http://{}", server.addr());
    let refused = herald(&["publish", "--url", &url, "bad..topic", "x"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("segment 2"),
        "{refused:?}"
    );
    let bad_selector = herald(&["subscribe", "--url", &url, "a.>.b"]).await;
    assert_eq!(bad_selector.status.code(), Some(1));

    // A port nothing listens on: bind one, then free it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = herald(&["publish", "--url", &format!("http://{free}"), "t", "x"]).await;
    assert_eq!(unreachable.status.code(), Some(3));
    let usage = herald(&["publish"]).await;
    assert_eq!(usage.status.code(), Some(2), "clap's usage error");
}
