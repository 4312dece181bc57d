//! PostgreSQL for tests: a schema of the test's own, dropped with everything in it when
//! the test ends, a suffix to make database-wide names unique, and a few queries.
//!
//! Without PostgreSQL [`PgSchema::start`] prints a loud SKIP and gives `None`, unless
//! `HERALD_REQUIRE_SERVICES=1`; the URL is `HERALD_PG_URL` (default the local `test`
//! database).

use tokio_postgres::{Client, NoTls};

use crate::services::{service_url, skip_or_fail};

/// The test database.
pub fn pg_url() -> String {
    service_url("HERALD_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// Connects to `url` without TLS, driving the connection in the background.
///
/// # Errors
///
/// When the URL is malformed or the server cannot be reached.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A schema of the test's own; dropped with everything in it (and whatever
/// [`PgSchema::clean_up`] was given) when this is dropped.
#[derive(Debug)]
pub struct PgSchema {
    /// The database's URL.
    pub url: String,
    /// The test's connection.
    pub client: Client,
    /// 12 random hex digits, unique to the test.
    pub suffix: String,
    /// The schema's name: the prefix given to [`PgSchema::start`] and the suffix.
    pub schema: String,
    cleanup: Vec<String>,
}

impl PgSchema {
    /// Connects and creates the schema `<prefix>_<suffix>`; `None` (after a loud skip)
    /// without PostgreSQL.
    ///
    /// # Panics
    ///
    /// When the schema cannot be created.
    #[track_caller]
    pub fn start(prefix: &str) -> impl Future<Output = Option<Self>> + use<> {
        let caller = std::panic::Location::caller();
        let prefix = prefix.to_owned();
        async move {
            let url = pg_url();
            let client = match connect(&url).await {
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
            let schema = format!("{prefix}_{suffix}");
            client
                .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
                .await
                .expect("create the test schema");
            Some(Self {
                url,
                client,
                suffix,
                schema,
                cleanup: Vec::new(),
            })
        }
    }

    /// `name` in the test's schema as quoted SQL: `"schema"."name"`.
    pub fn sql(&self, name: &str) -> String {
        format!("\"{}\".\"{name}\"", self.schema)
    }

    /// Runs `sql` at the end too, before the schema is dropped (for roles, say).
    pub fn clean_up(&mut self, sql: impl Into<String>) {
        self.cleanup.push(sql.into());
    }

    /// Runs SQL on the test's connection.
    ///
    /// # Panics
    ///
    /// When the SQL fails.
    pub async fn exec(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// One integer from a query.
    ///
    /// # Panics
    ///
    /// When the query fails or does not give one `bigint`.
    pub async fn int(&self, sql: &str) -> i64 {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }

    /// Another connection, for concurrent writers.
    ///
    /// # Panics
    ///
    /// When it cannot connect.
    pub async fn connect(&self) -> Client {
        connect(&self.url).await.expect("another connection")
    }

    /// Kills the backends whose `application_name` is `herald:<source>` (a Herald
    /// PostgreSQL source's); returns how many.
    ///
    /// # Panics
    ///
    /// When the query fails.
    pub async fn terminate(&self, source: &str) -> i64 {
        self.client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&format!("herald:{source}")],
            )
            .await
            .expect("terminate")
            .get(0)
    }
}

impl Drop for PgSchema {
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
                let client = connect(&url).await.expect("cleanup connection");
                client
                    .batch_execute(&script)
                    .await
                    .unwrap_or_else(|e| panic!("clean up with {script}: {e:?}"));
            });
        });
        let _ = cleanup.join();
    }
}
