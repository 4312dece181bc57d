//! The installer against a real PostgreSQL: idempotent install and uninstall, shared
//! functions, purge.

mod support;

use herald_postgres::{Ident, InstallOptions, Outbox, install, uninstall};
use support::Db;

/// How many triggers named `name` exist on tables of the test's schema.
async fn triggers(db: &Db, name: &str) -> i64 {
    db.int(&format!(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{}' AND t.tgname = '{name}'",
        db.schema
    ))
    .await
}

/// How many functions named `name` exist in the test's schema.
async fn functions(db: &Db, name: &str) -> i64 {
    db.int(&format!(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = '{}' AND p.proname = '{name}'",
        db.schema
    ))
    .await
}

async fn tables(db: &Db) -> i64 {
    db.int(&format!(
        "SELECT count(*) FROM pg_tables WHERE schemaname = '{}'",
        db.schema
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_install_and_uninstall_are_idempotent_and_share_the_function() {
    let Some(db) = Db::start().await else { return };
    let (a, b) = (db.table("a"), db.table("b"));
    for table in [&a, &b] {
        db.exec(&format!(
            "CREATE TABLE {} (id int PRIMARY KEY)",
            table.to_sql()
        ))
        .await;
    }
    let options_a = InstallOptions::notify(a.clone()).with_channel(db.channel("c"));
    let options_b = InstallOptions::notify(b.clone()).with_channel(db.channel("c"));

    install(&db.client, &options_a).await.expect("install a");
    install(&db.client, &options_a)
        .await
        .expect("install a again");
    install(&db.client, &options_b).await.expect("install b");
    assert_eq!(triggers(&db, "herald_notify").await, 2);
    assert_eq!(functions(&db, "herald_notify").await, 1);

    uninstall(&db.client, &options_a)
        .await
        .expect("uninstall a");
    assert_eq!(triggers(&db, "herald_notify").await, 1);
    assert_eq!(functions(&db, "herald_notify").await, 1, "b still uses it");
    db.exec(&format!("INSERT INTO {} VALUES (1)", b.to_sql()))
        .await;

    uninstall(&db.client, &options_b)
        .await
        .expect("uninstall b");
    uninstall(&db.client, &options_b)
        .await
        .expect("uninstall b again");
    assert_eq!(triggers(&db, "herald_notify").await, 0);
    assert_eq!(functions(&db, "herald_notify").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_uninstall_keeps_rows_unless_purged() {
    let Some(db) = Db::start().await else { return };
    let orders = db.table("orders");
    db.exec(&format!(
        "CREATE TABLE {} (id int PRIMARY KEY)",
        orders.to_sql()
    ))
    .await;
    let outbox = Outbox::new(db.table("box")).expect("valid outbox");
    let options = InstallOptions::outbox(orders.clone())
        .with_outbox(outbox.clone())
        .with_key([Ident::new("id").expect("valid")]);

    install(&db.client, &options).await.expect("install");
    install(&db.client, &options).await.expect("install again");
    assert_eq!(
        tables(&db).await,
        4,
        "orders, box, box_position, box_commits"
    );
    assert_eq!(triggers(&db, "herald_commit").await, 1);
    assert_eq!(functions(&db, "herald_outbox_commit").await, 1);
    db.exec(&format!("INSERT INTO {} VALUES (1)", orders.to_sql()))
        .await;
    let payload = db
        .int(&format!(
            "SELECT (payload->>'key')::bigint FROM {}",
            outbox.table().to_sql()
        ))
        .await;
    assert_eq!(payload, 1);

    uninstall(&db.client, &options).await.expect("uninstall");
    assert_eq!(triggers(&db, "herald_outbox").await, 0);
    assert_eq!(functions(&db, "herald_outbox_capture").await, 0);
    assert_eq!(tables(&db).await, 4, "the outbox keeps its rows");
    assert_eq!(
        triggers(&db, "herald_commit").await,
        1,
        "and records commits"
    );

    let purge = options.with_purge(true);
    uninstall(&db.client, &purge).await.expect("purge");
    uninstall(&db.client, &purge).await.expect("purge again");
    assert_eq!(tables(&db).await, 1);
    assert_eq!(functions(&db, "herald_outbox_wake").await, 0);
    assert_eq!(functions(&db, "herald_outbox_commit").await, 0);
    let sequences = format!(
        "SELECT count(*) FROM pg_class WHERE relkind = 'S' AND relnamespace = '{}'::regnamespace",
        db.schema
    );
    assert_eq!(
        db.int(&sequences).await,
        0,
        "the commit sequence is gone too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_install_changes_nothing_and_leaves_the_client_usable() {
    let Some(db) = Db::start().await else { return };
    let options = InstallOptions::notify(db.table("missing"));
    let err = install(&db.client, &options).await.unwrap_err();
    assert!(format!("{:?}", err).contains("does not exist"), "{err:?}");
    assert_eq!(functions(&db, "herald_notify").await, 0, "rolled back");
}
