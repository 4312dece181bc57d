//! PostgreSQL for the end-to-end tests: a private schema per test (dropped, with what is
//! in it, when the test ends), names unique to the test, and a few queries.
//!
//! Without PostgreSQL a test prints a loud SKIP and passes, unless
//! `HERALD_REQUIRE_SERVICES=1`; the URL is `HERALD_PG_URL` (default the local `test`
//! database).

use herald_postgres::tokio_postgres::Client;
use herald_testkit::services::{service_url, skip_or_fail};

/// The test database.
pub fn pg_url() -> String {
    service_url("HERALD_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// A schema of the test's own; dropped with everything in it (and whatever
/// [`Db::clean_up`] was given) when this is dropped.
pub struct Db {
    pub url: String,
    pub client: Client,
    /// 12 random hex digits, unique to the test.
    pub suffix: String,
    pub schema: String,
    cleanup: Vec<String>,
}

impl Db {
    /// Connects and creates the schema; `None` (after a loud skip) without PostgreSQL.
    #[track_caller]
    pub fn start() -> impl Future<Output = Option<Db>> {
        let caller = std::panic::Location::caller();
        async move {
            let url = pg_url();
            let client = match herald_postgres::connect(&url).await {
                Ok(client) => client,
                Err(err) => {
                    let mut reason = format!("{url}: {err}");
                    let mut source = std::error::Error::source(&err);
                    while let Some(cause) = source {
                        reason.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    skip_or_fail("postgres", format!("{reason} (at {caller})"));
                    return None;
                }
            };
            let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
            let schema = format!("herald_e2e_{suffix}");
            client
                .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
                .await
                .expect("create the test schema");
            Some(Db {
                url,
                client,
                suffix,
                schema,
                cleanup: Vec::new(),
            })
        }
    }

    /// `name` in the test's schema, as the config and the CLI take it: `schema.name`.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.schema)
    }

    /// `name` in the test's schema as quoted SQL: `"schema"."name"`.
    pub fn sql(&self, name: &str) -> String {
        format!("\"{}\".\"{name}\"", self.schema)
    }

    /// `name` made unique to this test: for channels (database-wide) and source names.
    pub fn unique(&self, name: &str) -> String {
        format!("{name}_{}", self.suffix)
    }

    /// Runs `sql` at the end too, before the schema is dropped (for roles, say).
    pub fn clean_up(&mut self, sql: impl Into<String>) {
        self.cleanup.push(sql.into());
    }

    /// Runs SQL on the test's connection.
    pub async fn exec(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// One integer from a query.
    pub async fn int(&self, sql: &str) -> i64 {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }

    /// Another connection, for concurrent writers.
    pub async fn connect(&self) -> Client {
        herald_postgres::connect(&self.url)
            .await
            .expect("another connection")
    }

    /// `CREATE TABLE orders (id serial PRIMARY KEY, user_id int, status text, body
    /// text)` in the test's schema.
    pub async fn create_orders(&self) {
        self.exec(&format!(
            "CREATE TABLE {} (id serial PRIMARY KEY, user_id int, status text, body text)",
            self.sql("orders")
        ))
        .await;
    }

    /// Kills the backends of the source named `name` (found by its `application_name`,
    /// `herald:<name>`); returns how many.
    pub async fn terminate(&self, name: &str) -> i64 {
        self.client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&format!("herald:{name}")],
            )
            .await
            .expect("terminate")
            .get(0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Drop cannot await: clean up from a thread with a runtime of its own.
        let url = self.url.clone();
        let mut script: String = self.cleanup.iter().map(|s| format!("{s};\n")).collect();
        script.push_str(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE;",
            self.schema
        ));
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                let client = herald_postgres::connect(&url)
                    .await
                    .expect("cleanup connection");
                client
                    .batch_execute(&script)
                    .await
                    .unwrap_or_else(|e| panic!("clean up with {script}: {e:?}"));
            });
        });
        let _ = cleanup.join();
    }
}
