//! Notify mode against a real PostgreSQL: triggers, truncation, reconnects, bursts,
//! user scoping, bad payloads.

mod support;

use std::time::Duration;

use herald_bus::Bus;
use herald_postgres::{InstallOptions, Mapping, Mode, PgSource, PgSourceHandle, install};
use serde_json::json;
use support::{Db, assert_quiet, connected, data, next_event, next_events, subscribe, wait_until};

/// Creates `orders` with a notify trigger on the test's channel, and starts a source
/// mapping it to `db.{table}.{op}` with event type `{op}`.
async fn orders_source(db: &Db, bus: &Bus, mapping: Option<Mapping>) -> PgSourceHandle {
    let orders = db.table("orders");
    db.exec(&format!(
        "CREATE TABLE {} (id serial PRIMARY KEY, user_id int, status text, body text)",
        orders.to_sql()
    ))
    .await;
    let options = InstallOptions::notify(orders.clone()).with_channel(db.channel("orders"));
    install(&db.client, &options).await.expect("install");
    let mapping = mapping.unwrap_or_else(|| {
        Mapping::new("db.{table}.{op}")
            .and_then(|m| m.with_event("{op}"))
            .expect("valid mapping")
    });
    let handle = PgSource::builder(&db.url)
        .name(db.source_name("notify"))
        .mode(Mode::notify([db.channel("orders")]))
        .mapping(mapping.with_tables([orders]))
        .backoff(Duration::from_millis(200), Duration::from_secs(1))
        .spawn(bus)
        .expect("valid source");
    connected(&handle).await;
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_update_delete_arrive_as_mapped_events() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let _source = orders_source(&db, &bus, None).await;
    let orders = db.table("orders").to_sql();

    db.exec(&format!(
        "INSERT INTO {orders} (id, user_id, status) VALUES (1, 42, 'new')"
    ))
    .await;
    db.exec(&format!("UPDATE {orders} SET status = 'paid' WHERE id = 1"))
        .await;
    db.exec(&format!("DELETE FROM {orders} WHERE id = 1")).await;

    let events = next_events(&mut sub, 3).await;
    for (event, (op, status)) in
        events
            .iter()
            .zip([("insert", "new"), ("update", "paid"), ("delete", "paid")])
    {
        assert_eq!(event.topic().as_str(), format!("db.orders.{op}"));
        assert_eq!(event.name().map(|n| n.as_str()), Some(op));
        let change = data(event);
        assert_eq!(change["table"], "orders");
        assert_eq!(change["schema"], db.schema.as_str());
        assert_eq!(change["op"], op);
        assert_eq!(change["key"], 1);
        assert_eq!(
            change["row"],
            json!({"id": 1, "user_id": 42, "status": status, "body": null})
        );
        assert!(change["at"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_row_arrives_truncated_with_its_key() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let _source = orders_source(&db, &bus, None).await;
    let orders = db.table("orders").to_sql();

    db.exec(&format!(
        "INSERT INTO {orders} (id, body) VALUES (7, repeat('x', 10000))"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {orders} (id, body) VALUES (8, 'small')"
    ))
    .await;

    let big = data(&next_event(&mut sub).await);
    assert_eq!(big["truncated"], true);
    assert_eq!(big["key"], 7);
    assert!(big.get("row").is_none(), "{big}");
    let small = data(&next_event(&mut sub).await);
    assert_eq!(small["row"]["body"], "small");
    assert!(small.get("truncated").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_reconnects_and_announces_reset() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let source = orders_source(&db, &bus, None).await;
    let orders = db.table("orders").to_sql();

    db.exec(&format!("INSERT INTO {orders} (id) VALUES (0)"))
        .await;
    let before = next_event(&mut sub).await;
    assert_eq!(db.terminate(&db.source_name("notify")).await, 1);

    let resets = next_events(&mut sub, 3).await;
    let topics: Vec<&str> = resets.iter().map(|e| e.topic().as_str()).collect();
    assert_eq!(
        topics,
        ["db.orders.insert", "db.orders.update", "db.orders.delete"]
    );
    for reset in &resets {
        assert_eq!(reset.name().map(|n| n.as_str()), Some("herald.reset"));
        assert_eq!(
            data(reset),
            json!({"reason": "source_reconnected", "missed_since": before.id().to_string()}),
            "changes after the last event before the outage may be lost"
        );
    }
    let status = source.status();
    assert!(status.connected);
    assert_eq!(status.reconnects, 1);
    assert!(status.last_error.is_some());

    db.exec(&format!("INSERT INTO {orders} (id) VALUES (1)"))
        .await;
    let event = next_event(&mut sub).await;
    assert_eq!(event.topic().as_str(), "db.orders.insert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_from_four_connections_arrives_whole_in_commit_order() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let source = orders_source(&db, &bus, None).await;
    let orders = db.table("orders").to_sql();

    // 4 connections x 25 transactions x 10 inserts, all at once. `user_id` names the
    // writer, `status` the transaction and `body` the insert within it.
    let mut writers = Vec::new();
    for writer in 0..4 {
        let client = db.connect().await;
        let orders = orders.clone();
        writers.push(tokio::spawn(async move {
            for tx in 0..25 {
                let mut script = String::from("BEGIN;");
                for n in 0..10 {
                    script.push_str(&format!(
                        "INSERT INTO {orders} (user_id, status, body) VALUES ({writer}, '{tx}', '{n}');"
                    ));
                }
                script.push_str("COMMIT;");
                client.batch_execute(&script).await.expect("burst insert");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }

    let events = next_events(&mut sub, 1000).await;
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    let rows: Vec<(i64, i64, i64)> = events
        .iter()
        .map(|e| {
            let row = &data(e)["row"];
            let text = |k: &str| row[k].as_str().unwrap().parse::<i64>().unwrap();
            (
                row["user_id"].as_i64().unwrap(),
                text("status"),
                text("body"),
            )
        })
        .collect();
    // A transaction's inserts arrive together and in order (it committed as one), and
    // one writer's transactions in the order it committed them.
    let mut last_tx = [-1i64; 4];
    for block in rows.chunks(10) {
        let (writer, tx, _) = block[0];
        assert!(
            block
                .iter()
                .enumerate()
                .all(|(n, r)| *r == (writer, tx, n as i64)),
            "transaction split or reordered: {block:?}"
        );
        assert_eq!(
            tx,
            last_tx[writer as usize] + 1,
            "writer {writer} out of order"
        );
        last_tx[writer as usize] = tx;
    }
    assert_eq!(last_tx, [24; 4]);
    wait_until("the notifications to be counted", || {
        source.status().notifications == 1000
    })
    .await;
    assert_eq!(source.status().published, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_column_scopes_events_to_that_user() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut alice = subscribe(&bus, Some("42"));
    let mut bob = subscribe(&bus, Some("7"));
    let mut anonymous = subscribe(&bus, None);
    let mapping = Mapping::new("db.{table}.{op}")
        .expect("valid mapping")
        .with_user_column("user_id");
    let _source = orders_source(&db, &bus, Some(mapping)).await;
    let orders = db.table("orders").to_sql();

    db.exec(&format!(
        "INSERT INTO {orders} (id, user_id) VALUES (1, 42)"
    ))
    .await;
    db.exec(&format!("INSERT INTO {orders} (id, user_id) VALUES (2, 7)"))
        .await;

    assert_eq!(data(&next_event(&mut alice).await)["key"], 1);
    assert_eq!(data(&next_event(&mut bob).await)["key"], 2);
    assert_quiet(&mut alice, Duration::from_millis(200)).await;
    assert_quiet(&mut bob, Duration::from_millis(50)).await;
    assert_quiet(&mut anonymous, Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_counted_and_skipped() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let source = orders_source(&db, &bus, None).await;
    let channel = db.channel("orders");

    for payload in [
        "not json",
        r#"{"op": "insert", "row": {}}"#,
        r#"{"table": "a b", "op": "insert", "row": {}}"#,
    ] {
        db.exec(&format!("SELECT pg_notify('{channel}', '{payload}')"))
            .await;
    }
    db.exec(&format!(
        "INSERT INTO {} (id) VALUES (1)",
        db.table("orders").to_sql()
    ))
    .await;

    assert_eq!(data(&next_event(&mut sub).await)["key"], 1);
    let status = source.status();
    assert_eq!((status.notifications, status.bad_payloads), (4, 3));
    assert_eq!((status.published, status.reconnects), (1, 0));
    assert!(status.connected);
}
