//! Outbox mode against a real PostgreSQL: large rows, killed connections, restarts,
//! commit order, application rows, pruning.

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
        .int(&format!(
            "SELECT id FROM {} WHERE source = '{}'",
            outbox(&db).position_table().to_sql(),
            db.source_name("outbox")
        ))
        .await;
    let last = db
        .int(&format!(
            "SELECT max(id) FROM {}",
            outbox(&db).table().to_sql()
        ))
        .await;
    assert_eq!(recorded, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_transaction_committing_first_is_published_first() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;
    insert(&db, &orders, 1..=1).await; // row X
    assert_eq!(keys(&mut sub, 1).await, [1]);

    // T1 takes its transaction id first; T2 updates X and commits; then T1 updates X
    // and commits. Commit order is T2, T1: T1's change to X is the newer one.
    let t1 = db.connect().await;
    t1.batch_execute(&format!("BEGIN; INSERT INTO {orders} (id) VALUES (2)"))
        .await
        .expect("t1 begins");
    db.exec(&format!("UPDATE {orders} SET note = 't2' WHERE id = 1"))
        .await;
    t1.batch_execute(&format!(
        "UPDATE {orders} SET note = 't1' WHERE id = 1; COMMIT"
    ))
    .await
    .expect("t1 commits");

    let changes: Vec<(String, i64, Option<String>)> = next_events(&mut sub, 3)
        .await
        .iter()
        .map(|e| {
            let change = data(e);
            (
                change["op"].as_str().expect("op").to_owned(),
                change["key"].as_i64().expect("key"),
                change["row"]["note"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let change = |op: &str, key, note: Option<&str>| (op.to_owned(), key, note.map(str::to_owned));
    assert_eq!(
        changes,
        [
            change("update", 1, Some("t2")),
            change("insert", 2, None),
            change("update", 1, Some("t1")),
        ],
        "T2's change, then T1's: X ends as T1 left it"
    );
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    // What makes the case: transaction-id order would have put T1 first.
    let t1_first = db
        .int(&format!(
            "SELECT ((SELECT txid FROM {outbox} WHERE payload->>'key' = '2') \
             < (SELECT txid FROM {outbox} WHERE payload->'row'->>'note' = 't2'))::int::bigint",
            outbox = outbox(&db).table().to_sql()
        ))
        .await;
    assert_eq!(t1_first, 1, "T1 has the smaller transaction id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_back_nothing_and_is_not_skipped() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    // A takes the lower outbox id and transaction id, and commits last.
    let a = db.connect().await;
    a.batch_execute(&format!("BEGIN; INSERT INTO {orders} (id) VALUES (1)"))
        .await
        .expect("a inserts");
    insert(&db, &orders, 2..=2).await; // B commits while A is open
    assert_eq!(keys(&mut sub, 1).await, [2], "B is not held back by A");
    wait_until("no row to be pending", || {
        source.status().outbox_lag == Some(0)
    })
    .await;

    a.batch_execute("COMMIT").await.expect("a commits");
    assert_eq!(keys(&mut sub, 1).await, [1]);
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    assert_eq!(source.status().published, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_from_four_connections_arrives_whole_once_in_commit_order() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    // 4 connections x 25 transactions x 10 inserts, all at once, read while they commit:
    // ids interleave across transactions, and the commits contend for the outbox's commit
    // lock. A commit numbered out of order would show as a skipped row. Each row carries
    // its transaction in `user_id`.
    let mut writers = Vec::new();
    for writer in 0..4 {
        let client = db.connect().await;
        let orders = orders.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..25 {
                let tx = writer * 25 + n;
                let mut script = String::from("BEGIN;");
                for _ in 0..10 {
                    script.push_str(&format!("INSERT INTO {orders} (user_id) VALUES ({tx});"));
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
    wait_until("the lag to drain", || source.status().outbox_lag == Some(0)).await;
    assert_eq!(source.status().published, 1000, "rows published twice");
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    let delivered: Vec<(i64, i64)> = events
        .iter()
        .map(|e| {
            let change = data(e);
            let tx = change["row"]["user_id"].as_i64().expect("a transaction");
            (tx, change["key"].as_i64().expect("an integer key"))
        })
        .collect();
    for block in delivered.chunks(10) {
        let tx = block[0].0;
        assert!(
            block.iter().all(|(t, _)| *t == tx) && block.is_sorted_by_key(|(_, key)| *key),
            "transaction {tx} split or reordered: {block:?}"
        );
    }
    let committed: Vec<(i64, i64)> = db
        .client
        .query(
            &format!(
                "SELECT (o.payload->'row'->>'user_id')::bigint, (o.payload->>'key')::bigint \
                 FROM {} o JOIN {} c USING (txid) ORDER BY c.seq, o.id",
                outbox(&db).table().to_sql(),
                outbox(&db).commits_table().to_sql()
            ),
            &[],
        )
        .await
        .expect("read the outbox")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(delivered, committed);
    let mut keys: Vec<i64> = delivered.iter().map(|(_, key)| *key).collect();
    keys.sort_unstable();
    assert_eq!(keys, (1..=1000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_larger_than_a_batch_arrives_whole() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    // 1,200 rows: three batches, the position twice in the middle of the transaction.
    db.exec(&format!(
        "INSERT INTO {orders} (id) SELECT generate_series(1, 1200)"
    ))
    .await;
    insert(&db, &orders, 1201..=1201).await;

    assert_eq!(keys(&mut sub, 1201).await, (1..=1201).collect::<Vec<_>>());
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    assert_eq!(source.status().published, 1201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_inside_a_transaction_resumes_with_the_rest_of_it() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    db.exec(&format!(
        "INSERT INTO {orders} (id) SELECT generate_series(1, 1200)"
    ))
    .await;
    insert(&db, &orders, 1201..=1201).await;
    // As a source stopped after publishing row 700 of the first transaction would
    // have recorded it.
    let outbox = outbox(&db);
    db.exec(&format!(
        "INSERT INTO {} (source, seq, id) SELECT '{}', min(seq), 700 FROM {}",
        outbox.position_table().to_sql(),
        db.source_name("outbox"),
        outbox.commits_table().to_sql()
    ))
    .await;

    let source = start(&db, &bus, outbox);
    assert_eq!(keys(&mut sub, 501).await, (701..=1201).collect::<Vec<_>>());
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    assert_eq!(source.status().published, 501);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_and_immediate_constraints_record_each_commit_once() {
    let Some(db) = Db::start().await else { return };
    let bus = Bus::new();
    let mut sub = subscribe(&bus, None);
    let orders = orders_with_outbox(&db).await;
    let source = start(&db, &bus, outbox(&db));
    connected(&source).await;

    // The commit trigger fires early (SET CONSTRAINTS ALL IMMEDIATE) inside a savepoint
    // that is then rolled back: its record goes with it, and it fires again at commit.
    // Row 4 comes after an early firing that stands, and joins that same record.
    db.exec(&format!(
        "BEGIN;
         INSERT INTO {orders} (id) VALUES (1);
         SAVEPOINT s;
         INSERT INTO {orders} (id) VALUES (2);
         SET CONSTRAINTS ALL IMMEDIATE;
         ROLLBACK TO SAVEPOINT s;
         INSERT INTO {orders} (id) VALUES (3);
         SET CONSTRAINTS ALL IMMEDIATE;
         SET CONSTRAINTS ALL DEFERRED;
         INSERT INTO {orders} (id) VALUES (4);
         COMMIT;"
    ))
    .await;
    insert(&db, &orders, 5..=5).await;

    assert_eq!(keys(&mut sub, 4).await, [1, 3, 4, 5]);
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    let commits = format!(
        "SELECT count(*) FROM {}",
        outbox(&db).commits_table().to_sql()
    );
    assert_eq!(db.int(&commits).await, 2, "one record per transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_writers_do_not_conflict_over_commit_records() {
    let Some(db) = Db::start().await else { return };
    let orders = orders_with_outbox(&db).await;
    let (a, b) = (db.connect().await, db.connect().await);
    let begin = |id: i32| {
        format!("BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO {orders} (id) VALUES ({id})")
    };

    // Two overlapping serializable transactions that read nothing the other writes:
    // recording their commits must not make either fail.
    a.batch_execute(&begin(1)).await.expect("a begins");
    b.batch_execute(&begin(2)).await.expect("b begins");
    b.batch_execute("COMMIT").await.expect("b commits");
    a.batch_execute("COMMIT").await.expect("a commits");

    let commits = format!(
        "SELECT count(*) FROM {}",
        outbox(&db).commits_table().to_sql()
    );
    assert_eq!(db.int(&commits).await, 2);
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
    let count = format!(
        "SELECT (SELECT count(*) FROM {}) + (SELECT count(*) FROM {})",
        outbox.table().to_sql(),
        outbox.commits_table().to_sql()
    );
    for _ in 0..100 {
        if db.int(&count).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("published rows and their commits were not pruned");
}
