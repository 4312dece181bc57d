//! Outbox mode against a real PostgreSQL: large rows, killed connections, restarts,
//! transaction order, application rows, pruning.

mod support;

use std::time::Duration;

use herald_bus::Bus;
use herald_postgres::{InstallOptions, Mapping, Mode, Outbox, PgSource, PgSourceHandle, install};
use serde_json::json;
use support::{Db, assert_quiet, connected, data, next_event, next_events, subscribe, wait_until};

/// The test's outbox, in its schema, on its own channel, polled every second.
fn outbox(db: &Db) -> Outbox {
    Outbox::new(db.table("herald_outbox"))
        .expect("valid outbox")
        .with_channel(db.channel("outbox"))
        .with_poll_interval(Duration::from_secs(1))
}

/// Creates `orders` with a trigger copying its changes into the test's outbox.
async fn orders_with_outbox(db: &Db) -> String {
    let orders = db.table("orders");
    db.exec(&format!(
        "CREATE TABLE {} (id serial PRIMARY KEY, user_id int, note text)",
        orders.to_sql()
    ))
    .await;
    let options = InstallOptions::outbox(orders.clone()).with_outbox(outbox(db));
    install(&db.client, &options).await.expect("install");
    install(&db.client, &options).await.expect("install twice");
    orders.to_sql()
}

fn start(db: &Db, bus: &Bus, outbox: Outbox) -> PgSourceHandle {
    PgSource::builder(&db.url)
        .name(db.source_name("outbox"))
        .mode(Mode::outbox(outbox))
        .mapping(Mapping::new("db.{table}.{op}").expect("valid mapping"))
        .backoff(Duration::from_millis(300), Duration::from_secs(1))
        .spawn(bus)
        .expect("valid source")
}

/// Inserts orders `ids` (one transaction each).
async fn insert(db: &Db, orders: &str, ids: std::ops::RangeInclusive<i32>) {
    for id in ids {
        db.exec(&format!("INSERT INTO {orders} (id) VALUES ({id})"))
            .await;
    }
}

/// The keys of the next `n` events.
async fn keys(sub: &mut herald_bus::Subscriber, n: usize) -> Vec<i64> {
    next_events(sub, n)
        .await
        .iter()
        .map(|e| data(e)["key"].as_i64().expect("an integer key"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rows_arrive_whole() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    db.exec(&format!(
        "INSERT INTO {orders} (id, note) VALUES (1, repeat('x', 20000))"
    ))
    .await;

    let event = next_event(&mut sub).await;
    assert_eq!(event.topic().as_str(), "db.orders.insert");
    let change = data(&event);
    assert_eq!(change["row"]["note"].as_str().map(str::len), Some(20000));
    assert!(change.get("truncated").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_loses_nothing() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    insert(&db, &orders, 1..=5).await;
    assert_eq!(keys(&mut sub, 5).await, [1, 2, 3, 4, 5]);

    assert_eq!(db.terminate(&db.source_name("outbox")).await, 1);
    insert(&db, &orders, 6..=10).await; // during the outage (backoff 300 ms)
    wait_until("the source to reconnect", || {
        let status = source.status();
        status.reconnects == 1 && status.connected
    })
    .await;
    insert(&db, &orders, 11..=15).await;

    assert_eq!(keys(&mut sub, 10).await, (6..=15).collect::<Vec<_>>());
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    assert_eq!(source.status().published, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_where_it_stopped_without_duplicates() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    insert(&db, &orders, 1..=3).await; // before the first start: read from the beginning

    let first = start(&db, &bus, outbox(&db));
    insert(&db, &orders, 4..=10).await;
    assert_eq!(keys(&mut sub, 10).await, (1..=10).collect::<Vec<_>>());
    first.stop().await;

    insert(&db, &orders, 11..=20).await;
    assert_quiet(&mut sub, Duration::from_millis(200)).await;

    let second = start(&db, &bus, outbox(&db));
    assert_eq!(keys(&mut sub, 10).await, (11..=20).collect::<Vec<_>>());
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    assert_eq!(second.status().published, 10);
    let recorded = db
        .count(&format!(
            "SELECT id FROM {} WHERE source = '{}'",
            outbox(&db).position_table().to_sql(),
            db.source_name("outbox")
        ))
        .await;
    let last = db
        .count(&format!(
            "SELECT max(id) FROM {}",
            outbox(&db).table().to_sql()
        ))
        .await;
    assert_eq!(recorded, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_from_four_connections_arrives_in_transaction_order() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    // 4 connections x 25 transactions x 10 inserts, all at once: ids interleave across
    // transactions, and commits come in a different order than ids.
    let mut writers = Vec::new();
    for _ in 0..4 {
        let client = db.connect().await;
        let orders = orders.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..25 {
                let mut script = String::from("BEGIN;");
                for _ in 0..10 {
                    script.push_str(&format!("INSERT INTO {orders} DEFAULT VALUES;"));
                }
                script.push_str("COMMIT;");
                client.batch_execute(&script).await.expect("burst insert");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }

    let delivered = keys(&mut sub, 1000).await;
    wait_until("the lag to drain", || source.status().outbox_lag == Some(0)).await;
    assert_eq!(source.status().published, 1000, "rows published twice");
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    let committed: Vec<i64> = db
        .client
        .query(
            &format!(
                "SELECT (payload->>'key')::bigint FROM {} ORDER BY txid, id",
                outbox(&db).table().to_sql()
            ),
            &[],
        )
        .await
        .expect("read the outbox")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(delivered, committed);
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=1000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_id_committing_later_is_not_skipped() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    // A takes the lower outbox id and commits last.
    let a = db.connect().await;
    a.batch_execute(&format!("BEGIN; INSERT INTO {orders} (id) VALUES (1)"))
        .await
        .expect("a inserts");
    insert(&db, &orders, 2..=2).await; // B commits while A is open
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    wait_until("B's row to count as pending", || {
        source.status().outbox_lag == Some(1)
    })
    .await;

    a.batch_execute("COMMIT").await.expect("a commits");
    assert_eq!(keys(&mut sub, 2).await, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_rows_publish_as_written() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut anyone = subscribe(&bus, None);
    let mut alice = subscribe(&bus, Some("42"));
    let outbox = outbox(&db);
    install(&db.client, &InstallOptions::outbox_only(outbox.clone()))
        .await
        .expect("install");
    let source = start(&db, &bus, outbox.clone());
    connected(&source).await;
    let table = outbox.table().to_sql();

    db.exec(&format!(
        "BEGIN;
         INSERT INTO {table} (topic, event, payload) VALUES ('db.bad topic', NULL, '1');
         INSERT INTO {table} (topic, event, payload) VALUES ('db.notes', 'note', '{{\"x\": 1}}');
         INSERT INTO {table} (topic, user_id, payload) VALUES ('db.inbox', '42', '\"hi\"');
         COMMIT;"
    ))
    .await;

    let note = next_event(&mut anyone).await;
    assert_eq!(note.topic().as_str(), "db.notes");
    assert_eq!(note.name().map(|n| n.as_str()), Some("note"));
    assert_eq!(data(&note), json!({"x": 1}));
    assert_eq!(next_event(&mut alice).await.topic().as_str(), "db.notes");
    let private = next_event(&mut alice).await;
    assert_eq!(
        (private.topic().as_str(), private.data().as_str()),
        ("db.inbox", "hi")
    );
    assert_quiet(&mut anyone, Duration::from_millis(200)).await;
    assert_eq!(source.status().bad_payloads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_rows_are_pruned_after_retention() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let outbox = outbox(&db)
        .with_retention(Duration::ZERO)
        .with_poll_interval(Duration::from_millis(100));
    let source = start(&db, &bus, outbox.clone());
    connected(&source).await;

    insert(&db, &orders, 1..=3).await;
    assert_eq!(keys(&mut sub, 3).await, [1, 2, 3]);
    let count = format!("SELECT count(*) FROM {}", outbox.table().to_sql());
    for _ in 0..100 {
        if db.count(&count).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("published rows were not pruned");
}
