//! PostgreSQL sources through the real binary: `[[sources.postgres]]` in the config, a
//! real PostgreSQL, and SSE clients over HTTP. Each test has its own schema, channels and
//! source names, so the tests run in parallel and again without leftovers.

mod support;

use std::{process::Stdio, sync::Arc, time::Duration};

use herald_postgres::{InstallOptions, Outbox, TableName, install};
use herald_sse::Event;
use herald_testkit::{
    server::Server,
    sse::{SseClient, events_path},
};
use serde_json::{Value, json};
use support::{WAIT, pg::Db};
use tokio::time::Instant;

/// Longer, for bursts and reconnects.
const PATIENCE: Duration = Duration::from_secs(15);

/// A notify source `name` for `orders` in the test's schema, on channel `name`, mapped to
/// `db.{table}.{op}` with event type `{op}`, reconnecting fast; `extra` adds keys.
fn notify_source(db: &Db, name: &str, extra: &str) -> String {
    format!(
        "[[sources.postgres]]\nname = \"{name}\"\nurl = \"{url}\"\nmode = \"notify\"\n\
         channels = [\"{name}\"]\ntables = [\"{orders}\"]\nevent = \"{{op}}\"\n\
         reconnect_min_ms = 50\nreconnect_max_ms = 500\n{extra}",
        url = db.url,
        orders = db.table("orders"),
    )
}

/// An outbox source `name` reading `<schema>.herald_outbox`; `extra` adds keys.
fn outbox_source(db: &Db, name: &str, extra: &str) -> String {
    format!(
        "[[sources.postgres]]\nname = \"{name}\"\nurl = \"{url}\"\nmode = \"outbox\"\n\
         outbox = \"{outbox}\"\nevent = \"{{op}}\"\n{extra}",
        url = db.url,
        outbox = db.table("herald_outbox"),
    )
}

/// Creates `orders` and installs its notify trigger on channel `name`.
async fn notify_orders(db: &Db, name: &str) {
    db.create_orders().await;
    let options = InstallOptions::notify(parse(&db.table("orders")))
        .with_channel(herald_postgres::Ident::new(name).expect("valid channel"));
    install(&db.client, &options).await.expect("install");
}

/// Creates `orders` and the test's outbox, with the trigger copying one into the other.
async fn outbox_orders(db: &Db) {
    db.create_orders().await;
    let outbox = Outbox::new(parse(&db.table("herald_outbox"))).expect("short name");
    let options = InstallOptions::outbox(parse(&db.table("orders"))).with_outbox(outbox);
    install(&db.client, &options).await.expect("install");
}

fn parse(table: &str) -> TableName {
    TableName::parse(table).expect("valid table")
}

/// Starts herald with `toml` and waits until `/readyz` says every source is connected.
async fn start(toml: &str) -> Server {
    let server = support::herald()
        .config_toml(format!("[sse]\nretry_ms = 100\n{toml}"))
        .spawn()
        .await;
    wait_ready(&server, 200).await;
    server
}

/// Waits until `/readyz` answers `status`; its JSON.
async fn wait_ready(server: &Server, status: u16) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let res = server.get("/readyz").await;
        if res.status == status {
            return res.json();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {} {}",
            res.status,
            res.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `name{source="<source>"}` in `/metrics`; `None` when absent.
async fn source_metric(server: &Server, name: &str, source: &str) -> Option<f64> {
    let text = server
        .get("/metrics")
        .await
        .assert_status(200)
        .text()
        .into_owned();
    let prefix = format!("{name}{{source=\"{source}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

/// A subscriber to `selectors`, as `user` when given (auth mode none).
async fn subscribe(server: &Server, selectors: &[&str], user: Option<&str>) -> SseClient {
    let mut path = events_path(selectors);
    if let Some(user) = user {
        path.push_str(&format!("&user={user}"));
    }
    let mut client = SseClient::connect(server.addr(), &path, &[])
        .await
        .expect("subscribe");
    assert_eq!(client.status(), 200, "{}", client.body_text());
    client.expect_connected(WAIT).await;
    client
}

fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("{e}: {}", event.data))
}

/// The `key` of each event's change.
fn keys(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|e| data(e)["key"].as_i64().expect("an integer key"))
        .collect()
}

/// Inserts orders `ids` (user 1) in one transaction.
async fn insert(db: &Db, ids: std::ops::RangeInclusive<i32>) {
    let orders = db.sql("orders");
    let values: Vec<String> = ids.map(|id| format!("({id}, 1, 'new')")).collect();
    db.exec(&format!(
        "INSERT INTO {orders} (id, user_id, status) VALUES {}",
        values.join(", ")
    ))
    .await;
}

#[tokio::test]
async fn insert_update_delete_reach_an_sse_client_as_mapped_events() {
    let Some(db) = Db::start().await else { return };
    let name = db.unique("crud");
    notify_orders(&db, &name).await;
    let server = start(&notify_source(&db, &name, "")).await;
    let mut client = subscribe(&server, &["db.orders.>"], None).await;
    let orders = db.sql("orders");

    db.exec(&format!(
        "INSERT INTO {orders} (id, user_id, status) VALUES (1, 42, 'new')"
    ))
    .await;
    db.exec(&format!("UPDATE {orders} SET status = 'paid' WHERE id = 1"))
        .await;
    db.exec(&format!("DELETE FROM {orders} WHERE id = 1")).await;

    let events = client.collect_events(3, WAIT).await;
    for (event, (op, status)) in
        events
            .iter()
            .zip([("insert", "new"), ("update", "paid"), ("delete", "paid")])
    {
        assert_eq!(event.event_type, op);
        let change = data(event);
        assert_eq!(
            (
                &change["schema"],
                &change["table"],
                &change["op"],
                &change["key"]
            ),
            (&json!(db.schema), &json!("orders"), &json!(op), &json!(1))
        );
        assert_eq!(
            change["row"],
            json!({"id": 1, "user_id": 42, "status": status, "body": null})
        );
        assert!(change["at"].is_string(), "{change}");
    }
    client.assert_quiet(Duration::from_millis(200)).await;

    let ready = server.get("/readyz").await.assert_status(200).json();
    assert_eq!(
        ready["sources"],
        json!([{"name": name, "mode": "notify", "connected": true, "last_error": null}])
    );
    let stats = server.get("/stats").await.assert_status(200).json();
    assert_eq!(stats["sources"][0]["published"], 3);
    assert_eq!(stats["sources"][0]["notifications"], 3);
    let metric = |n| source_metric(&server, n, &name);
    assert_eq!(metric("herald_source_connected").await, Some(1.0));
    assert_eq!(metric("herald_source_notifications_total").await, Some(3.0));
    assert_eq!(
        metric("herald_source_events_published_total").await,
        Some(3.0)
    );
    assert_eq!(metric("herald_source_bad_payloads_total").await, Some(0.0));
    assert_eq!(metric("herald_source_reconnects_total").await, Some(0.0));
    assert_eq!(
        metric("herald_source_outbox_lag").await,
        None,
        "notify mode"
    );
}

#[tokio::test]
async fn notify_sends_a_row_over_8000_bytes_as_its_key_marked_truncated() {
    let Some(db) = Db::start().await else { return };
    let name = db.unique("big");
    notify_orders(&db, &name).await;
    let server = start(&notify_source(&db, &name, "")).await;
    let mut client = subscribe(&server, &["db.orders.insert"], None).await;
    let orders = db.sql("orders");

    db.exec(&format!(
        "INSERT INTO {orders} (id, body) VALUES (1, repeat('x', 9000)), (2, 'small')"
    ))
    .await;

    let events = client.collect_events(2, WAIT).await;
    let big = data(&events[0]);
    assert_eq!((&big["key"], &big["truncated"]), (&json!(1), &json!(true)));
    assert!(big.get("row").is_none(), "{big}");
    let small = data(&events[1]);
    assert_eq!(small["row"]["body"], "small");
    assert!(small.get("truncated").is_none(), "{small}");
}

#[tokio::test]
async fn outbox_sends_a_row_over_8000_bytes_whole() {
    let Some(db) = Db::start().await else { return };
    outbox_orders(&db).await;
    let server = start(&outbox_source(&db, &db.unique("big"), "")).await;
    let mut client = subscribe(&server, &["db.orders.insert"], None).await;

    db.exec(&format!(
        "INSERT INTO {} (id, body) VALUES (1, repeat('x', 20000))",
        db.sql("orders")
    ))
    .await;

    let change = data(&client.collect_events(1, WAIT).await[0]);
    assert_eq!(change["key"], 1);
    assert_eq!(change["row"]["body"].as_str().map(str::len), Some(20_000));
    assert!(change.get("truncated").is_none(), "{change}");
}

#[tokio::test]
async fn notify_reconnects_after_its_backend_is_killed_and_sends_herald_reset() {
    let Some(db) = Db::start().await else { return };
    let name = db.unique("killed");
    notify_orders(&db, &name).await;
    let server = start(&notify_source(&db, &name, "")).await;
    let mut client = subscribe(&server, &["db.orders.>"], None).await;

    assert_eq!(
        db.terminate(&name).await,
        1,
        "one backend, found by application_name"
    );

    // One notice per topic the source feeds: the table's three, known from `tables`.
    for reset in client.collect_events(3, PATIENCE).await {
        assert_eq!(reset.event_type, "herald.reset");
        assert_eq!(
            data(&reset),
            json!({"reason": "source_reconnected", "missed_since": ""}),
            "nothing was published before the outage"
        );
    }
    insert(&db, 1..=1).await;
    let event = client.next_event(WAIT).await;
    assert_eq!(
        (event.event_type.as_str(), data(&event)["key"].clone()),
        ("insert", json!(1))
    );
    assert_eq!(
        source_metric(&server, "herald_source_reconnects_total", &name).await,
        Some(1.0)
    );
    let ready = server.get("/readyz").await.assert_status(200).json();
    assert!(ready["sources"][0]["last_error"].is_string(), "{ready}");
}

#[tokio::test]
async fn outbox_loses_nothing_inserted_while_its_backend_is_dead() {
    let Some(db) = Db::start().await else { return };
    outbox_orders(&db).await;
    let name = db.unique("outage");
    // A long first retry, so the inserts below land while the source is away.
    let extra = "reconnect_min_ms = 1500\nreconnect_max_ms = 3000\n";
    let server = start(&outbox_source(&db, &name, extra)).await;
    let mut client = subscribe(&server, &["db.orders.>"], None).await;
    insert(&db, 1..=5).await;
    assert_eq!(keys(&client.collect_events(5, WAIT).await), [1, 2, 3, 4, 5]);

    assert_eq!(db.terminate(&name).await, 1);
    let down = wait_ready(&server, 503).await;
    assert_eq!(down["error"]["code"], "source_not_connected");
    assert_eq!(down["sources"][0]["connected"], false);
    insert(&db, 6..=8).await;
    insert(&db, 9..=10).await;
    server.get("/readyz").await.assert_status(503);
    wait_ready(&server, 200).await;

    assert_eq!(
        keys(&client.collect_events(5, PATIENCE).await),
        [6, 7, 8, 9, 10]
    );
    client.assert_quiet(Duration::from_millis(300)).await;
    let metric = |n| source_metric(&server, n, &name);
    assert_eq!(metric("herald_source_reconnects_total").await, Some(1.0));
    assert_eq!(
        metric("herald_source_events_published_total").await,
        Some(10.0)
    );
    assert_eq!(metric("herald_source_outbox_lag").await, Some(0.0));
}

#[tokio::test]
async fn restarted_outbox_herald_resumes_where_it_stopped_without_duplicates() {
    let Some(db) = Db::start().await else { return };
    outbox_orders(&db).await;
    let name = db.unique("restart");
    let toml = outbox_source(&db, &name, "");
    let mut first = start(&toml).await;
    let mut client = subscribe(&first, &["db.orders.>"], None).await;
    insert(&db, 1..=5).await;
    let before = client.collect_events(5, WAIT).await;

    first.sigterm();
    let status = first
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits");
    assert!(status.success(), "{status}");
    client.expect_end(WAIT).await;
    insert(&db, 6..=10).await;

    let second = start(&toml).await;
    // As a browser would: back with the last id it saw, which the new process does not
    // know (its memory log is new), so a reset, then everything retained, then live.
    let last = before.last().expect("five events").last_event_id.clone();
    let mut client = SseClient::connect(
        second.addr(),
        &events_path(&["db.orders.>"]),
        &[("Last-Event-ID", &last)],
    )
    .await
    .expect("resubscribe");
    client.expect_connected(WAIT).await;
    assert_eq!(client.next_event(WAIT).await.event_type, "herald.reset");
    let after = client.collect_events(5, WAIT).await;
    insert(&db, 11..=12).await;
    let live = client.collect_events(2, WAIT).await;
    client.assert_quiet(Duration::from_millis(300)).await;

    let seen: Vec<i64> = [before, after, live].iter().flat_map(|e| keys(e)).collect();
    assert_eq!(
        seen,
        (1..=12).collect::<Vec<_>>(),
        "each row once, in order"
    );
    let recorded = db
        .int(&format!(
            "SELECT id FROM {} WHERE source = '{name}'",
            db.sql("herald_outbox_position")
        ))
        .await;
    let newest = db
        .int(&format!("SELECT max(id) FROM {}", db.sql("herald_outbox")))
        .await;
    assert_eq!(recorded, newest, "the position is recorded");
}

/// Four transactions of 250 inserts each, all open at once. Each then takes one advisory
/// lock before committing and, under it, numbers its commit: the order they committed.
/// Rows carry the transaction in `user_id` and the insert's rank in `status`.
async fn burst(db: &Db) -> Vec<i64> {
    let orders = db.sql("orders");
    let commits = db.sql("commits");
    db.exec(&format!("CREATE TABLE {commits} (seq serial, tx int)"))
        .await;
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let mut writers = Vec::new();
    for tx in 0..4 {
        let client = db.connect().await;
        let (barrier, orders, commits) = (Arc::clone(&barrier), orders.clone(), commits.clone());
        let lock = db.suffix.clone();
        writers.push(tokio::spawn(async move {
            let row =
                |n: usize| format!("INSERT INTO {orders} (user_id, status) VALUES ({tx}, '{n}');");
            client
                .batch_execute(&format!("BEGIN;{}", row(0)))
                .await
                .expect("begin");
            barrier.wait().await;
            let mut script: String = (1..250).map(row).collect();
            script.push_str(&format!(
                "SELECT pg_advisory_xact_lock(hashtext('{lock}'));\
                 INSERT INTO {commits} (tx) VALUES ({tx}); COMMIT;"
            ));
            client.batch_execute(&script).await.expect("commit");
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    db.client
        .query(
            &format!("SELECT tx::bigint FROM {commits} ORDER BY seq"),
            &[],
        )
        .await
        .expect("commit order")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Checks that `events` are four whole transactions of 250 in insert order; returns the
/// transactions in the order they came.
fn transactions(events: &[Event]) -> Vec<i64> {
    events
        .chunks(250)
        .map(|block| {
            let rows: Vec<(i64, String)> = block
                .iter()
                .map(|e| {
                    let row = &data(e)["row"];
                    (
                        row["user_id"].as_i64().expect("tx"),
                        row["status"].as_str().expect("n").to_owned(),
                    )
                })
                .collect();
            let tx = rows[0].0;
            let expected: Vec<(i64, String)> = (0..250).map(|n| (tx, n.to_string())).collect();
            assert_eq!(rows, expected, "transaction {tx} split or reordered");
            tx
        })
        .collect()
}

#[tokio::test]
async fn notify_delivers_a_burst_from_four_transactions_whole_in_commit_order() {
    let Some(db) = Db::start().await else { return };
    let name = db.unique("burst");
    notify_orders(&db, &name).await;
    let server = start(&notify_source(&db, &name, "")).await;
    let mut client = subscribe(&server, &["db.orders.insert"], None).await;

    let committed = burst(&db).await;

    let events = client.collect_events(1000, PATIENCE).await;
    client.assert_quiet(Duration::from_millis(200)).await;
    assert_eq!(transactions(&events), committed);
}

#[tokio::test]
async fn outbox_delivers_a_burst_from_four_transactions_whole_in_commit_order() {
    let Some(db) = Db::start().await else { return };
    outbox_orders(&db).await;
    let server = start(&outbox_source(&db, &db.unique("burst"), "")).await;
    let mut client = subscribe(&server, &["db.orders.insert"], None).await;

    let committed = burst(&db).await;

    let events = client.collect_events(1000, PATIENCE).await;
    client.assert_quiet(Duration::from_millis(200)).await;
    assert_eq!(transactions(&events), committed);
}

#[tokio::test]
async fn a_user_scoped_mapping_reaches_only_that_users_stream() {
    let Some(db) = Db::start().await else { return };
    let name = db.unique("users");
    notify_orders(&db, &name).await;
    let server = start(&notify_source(&db, &name, "user_column = \"user_id\"\n")).await;
    let mut alice = subscribe(&server, &["db.orders.>"], Some("42")).await;
    let mut bob = subscribe(&server, &["db.orders.>"], Some("7")).await;
    let mut anonymous = subscribe(&server, &["db.orders.>"], None).await;

    db.exec(&format!(
        "INSERT INTO {} (id, user_id) VALUES (1, 42), (2, 7), (3, 42)",
        db.sql("orders")
    ))
    .await;

    assert_eq!(keys(&alice.collect_events(2, WAIT).await), [1, 3]);
    assert_eq!(keys(&bob.collect_events(1, WAIT).await), [2]);
    let quiet = Duration::from_millis(300);
    alice.assert_quiet(quiet).await;
    bob.assert_quiet(quiet).await;
    anonymous.assert_quiet(quiet).await;
}

#[tokio::test]
async fn bad_payloads_are_counted_and_the_source_goes_on() {
    let Some(db) = Db::start().await else { return };
    let name = db.unique("bad");
    notify_orders(&db, &name).await;
    let server = start(&notify_source(&db, &name, "")).await;
    let mut client = subscribe(&server, &["db.orders.>"], None).await;

    db.exec(&format!(
        "SELECT pg_notify('{name}', 'not json'), pg_notify('{name}', '{{\"op\": \"insert\", \"row\": {{}}}}')"
    ))
    .await;
    insert(&db, 1..=1).await;

    assert_eq!(keys(&client.collect_events(1, WAIT).await), [1]);
    let metric = |n| source_metric(&server, n, &name);
    assert_eq!(metric("herald_source_bad_payloads_total").await, Some(2.0));
    assert_eq!(metric("herald_source_notifications_total").await, Some(3.0));
    assert_eq!(metric("herald_source_connected").await, Some(1.0));
}

#[tokio::test]
async fn a_source_that_cannot_connect_leaves_herald_serving_but_not_ready_until_it_can() {
    let Some(mut db) = Db::start().await else {
        return;
    };
    let name = db.unique("late");
    notify_orders(&db, &name).await;
    // A role that does not exist yet: every attempt is refused until it is created.
    let role = db.unique("herald_e2e_role");
    db.clean_up(format!("DROP ROLE IF EXISTS {role}"));
    let config: herald_postgres::tokio_postgres::Config = db.url.parse().expect("url");
    let host = match &config.get_hosts()[0] {
        herald_postgres::tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("a TCP host is needed, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let dbname = config.get_dbname().unwrap_or("postgres");
    let url = format!("postgres://{role}:secret@{host}:{port}/{dbname}");
    let toml =
        notify_source(&db, &name, "").replace(&format!("\"{}\"", db.url), &format!("\"{url}\""));
    let server = support::herald().config_toml(toml).spawn().await;

    let mut down = server.get("/readyz").await.assert_status(503).json();
    while down["sources"][0]["last_error"].is_null() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        down = server.get("/readyz").await.assert_status(503).json();
    }
    let error = down["sources"][0]["last_error"].as_str().expect("text");
    assert!(
        error.contains(&format!("role \"{role}\" does not exist")),
        "{down}"
    );
    assert_eq!(down["error"]["code"], "source_not_connected");
    let mut client = subscribe(&server, &["db.orders.>", "other"], None).await;
    server
        .publish(json!({"topic": "other", "data": "still serving"}))
        .await;
    assert_eq!(client.next_event(WAIT).await.data, "still serving");

    db.exec(&format!("CREATE ROLE {role} LOGIN PASSWORD 'secret'"))
        .await;
    let ready = wait_ready(&server, 200).await;
    assert_eq!(ready["sources"][0]["connected"], true);
    insert(&db, 1..=1).await;
    assert_eq!(keys(&client.collect_events(1, WAIT).await), [1]);
}

#[tokio::test]
async fn a_bad_source_setting_stops_herald_at_startup_naming_the_source() {
    let dir = std::env::temp_dir().join(format!("herald-e2e-pg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&dir).expect("temp dir");
    let file = dir.join("herald.toml");
    std::fs::write(
        &file,
        "[[sources.postgres]]\nname = \"orders\"\nurl = \"postgres://postgres@127.0.0.1:1/x\"\n\
         mode = \"notify\"\ntopic = \"db.{tabel}.{op}\"\n",
    )
    .expect("write config");
    let run = tokio::process::Command::new(support::HERALD)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(WAIT, run)
        .await
        .expect("exits at once")
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sources.postgres[0] (name \"orders\") is not valid: template \"db.{tabel}.{op}\" is not valid: unknown placeholder {tabel}"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "never listened");
}
