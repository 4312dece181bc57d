//! `herald publish` and `herald subscribe` against a real server, and `herald pg` against
//! a real PostgreSQL: output and exit codes.

mod support;

use std::{process::Output, time::Duration};

use support::pg::Db;
use tokio::process::Command;

async fn herald(args: &[&str]) -> Output {
    let run = Command::new(support::HERALD)
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
    let server = support::start().await;
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
    let server = support::start().await;
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
    let server = support::start().await;
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

/// `herald pg ARGS…`, without `HERALD_PG_URL` from the test's environment.
async fn pg(args: &[&str]) -> Output {
    let run = Command::new(support::HERALD)
        .arg("pg")
        .args(args)
        .env_remove("HERALD_PG_URL")
        .output();
    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("herald exits")
        .expect("herald runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Triggers named `trigger` on `table` (`"schema"."name"`).
async fn triggers(db: &Db, table: &str, trigger: &str) -> i64 {
    db.int(&format!(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = '{table}'::regclass AND tgname = '{trigger}'"
    ))
    .await
}

/// Whether a function `name` exists in the test's schema.
async fn function(db: &Db, name: &str) -> i64 {
    db.int(&format!(
        "SELECT count(*) FROM pg_proc WHERE proname = '{name}' AND pronamespace = '{}'::regnamespace",
        db.schema
    ))
    .await
}

#[tokio::test]
async fn pg_print_shows_the_sql_without_a_database() {
    let notify = pg(&[
        "install",
        "--print",
        "--table",
        "shop.orders",
        "--channel",
        "orders_changes",
    ])
    .await;
    assert!(notify.status.success(), "{notify:?}");
    let sql = stdout(&notify);
    assert!(
        sql.starts_with("BEGIN;\n") && sql.ends_with("COMMIT;\n"),
        "{sql}"
    );
    assert!(
        sql.contains(r#"CREATE OR REPLACE FUNCTION "shop"."herald_notify"() RETURNS trigger"#),
        "{sql}"
    );
    assert!(
        sql.contains(
            r#"CREATE TRIGGER herald_notify AFTER INSERT OR UPDATE OR DELETE ON "shop"."orders""#
        ),
        "{sql}"
    );
    assert!(
        sql.contains(r#"EXECUTE FUNCTION "shop"."herald_notify"('orders_changes', 'id');"#),
        "{sql}"
    );
    assert!(stderr(&notify).is_empty(), "{notify:?}");

    let outbox = stdout(
        &pg(&[
            "install",
            "--print",
            "--mode",
            "outbox",
            "--table",
            "shop.orders",
            "--key",
            "id,user_id",
        ])
        .await,
    );
    assert!(
        outbox.contains(r#"CREATE TABLE IF NOT EXISTS "public"."herald_outbox" ("#),
        "{outbox}"
    );
    assert!(
        outbox.contains(
            r#""shop"."herald_outbox_capture"('"public"."herald_outbox"', 'id', 'user_id')"#
        ),
        "{outbox}"
    );

    let uninstall = stdout(&pg(&["uninstall", "--print", "--table", "shop.orders"]).await);
    assert!(
        uninstall.contains(r#"DROP TRIGGER IF EXISTS herald_notify ON "shop"."orders";"#),
        "{uninstall}"
    );
    assert!(!uninstall.contains("CREATE"), "{uninstall}");
}

#[tokio::test]
async fn pg_install_twice_then_uninstall_leaves_one_trigger_then_none() {
    let Some(db) = Db::start().await else { return };
    db.create_orders().await;
    let (table, orders) = (db.table("orders"), db.sql("orders"));
    let channel = db.unique("cli");
    let args = ["--url", &db.url, "--table", &table, "--channel", &channel];
    for _ in 0..2 {
        let out = pg(&[&["install"][..], &args].concat()).await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            stdout(&out),
            format!("installed: notify trigger on {table}, channel {channel}\n")
        );
    }
    assert_eq!(triggers(&db, &orders, "herald_notify").await, 1);
    assert_eq!(function(&db, "herald_notify").await, 1);

    for _ in 0..2 {
        let out = pg(&[&["uninstall"][..], &args].concat()).await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            stdout(&out),
            format!("uninstalled: notify trigger on {table}\n")
        );
    }
    assert_eq!(triggers(&db, &orders, "herald_notify").await, 0);
    assert_eq!(function(&db, "herald_notify").await, 0);
}

#[tokio::test]
async fn pg_outbox_install_captures_changes_and_uninstall_keeps_rows_unless_purged() {
    let Some(db) = Db::start().await else { return };
    db.create_orders().await;
    let (table, outbox) = (db.table("orders"), db.table("box"));
    let args = [
        "--url", &db.url, "--mode", "outbox", "--table", &table, "--outbox", &outbox,
    ];
    let out = pg(&[&["install"][..], &args].concat()).await;
    assert_eq!(
        stdout(&out),
        format!(
            "installed: outbox trigger on {table}, into outbox {outbox} (wake-up channel box)\n"
        ),
        "{out:?}"
    );
    db.exec(&format!("INSERT INTO {} (id) VALUES (7)", db.sql("orders")))
        .await;
    let captured = format!(
        "SELECT count(*) FROM {} WHERE payload->>'key' = '7'",
        db.sql("box")
    );
    assert_eq!(db.int(&captured).await, 1, "the change is in the outbox");

    let out = pg(&[&["uninstall"][..], &args].concat()).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(triggers(&db, &db.sql("orders"), "herald_outbox").await, 0);
    assert_eq!(db.int(&captured).await, 1, "rows kept without --purge");

    let out = pg(&[&["uninstall"][..], &args, &["--purge"]].concat()).await;
    assert_eq!(
        stdout(&out),
        format!("uninstalled: outbox trigger on {table}; outbox {outbox} dropped\n"),
        "{out:?}"
    );
    let left = format!(
        // The outbox and everything named after it: position, commits, sequence, index.
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'box%' AND relnamespace = '{}'::regnamespace",
        db.schema
    );
    assert_eq!(db.int(&left).await, 0, "purged");
}

#[tokio::test]
async fn pg_errors_are_one_line_with_an_exit_code_per_cause() {
    let usage = pg(&["install", "--print", "--table", "orders; DROP TABLE users"]).await;
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
    assert!(stderr(&usage).contains("is not usable"), "{usage:?}");
    let no_url = pg(&["install", "--table", "orders"]).await;
    assert_eq!(no_url.status.code(), Some(2), "{no_url:?}");
    let no_table = pg(&["install", "--print"]).await;
    assert_eq!(stderr(&no_table), "herald: --mode notify needs --table\n");
    assert_eq!(no_table.status.code(), Some(2));

    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("postgres://postgres@{free}/test");
    let unreachable = pg(&["install", "--url", &url, "--table", "orders"]).await;
    assert_eq!(unreachable.status.code(), Some(3), "{unreachable:?}");
    assert!(
        stderr(&unreachable).starts_with("herald: cannot connect to PostgreSQL: "),
        "{unreachable:?}"
    );

    let Some(db) = Db::start().await else { return };
    let missing = db.table("missing");
    let refused = pg(&["install", "--url", &db.url, "--table", &missing]).await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(
        stderr(&refused),
        format!(
            "herald: install failed, nothing changed: ERROR: relation \"{missing}\" does not exist\n"
        )
    );
}
