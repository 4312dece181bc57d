//! PostgreSQL for the end-to-end tests: a private schema per test (dropped, with what is
//! in it, when the test ends), names unique to the test, and a few queries.
//!
//! Built on [`PgSchema`]: without PostgreSQL a test prints a loud SKIP and passes,
//! unless `HERALD_REQUIRE_SERVICES=1`.

use std::ops::{Deref, DerefMut};

use herald_testkit::postgres::PgSchema;

/// The test's schema ([`PgSchema`]), with the names and tables these tests use.
pub struct Db(PgSchema);

impl Deref for Db {
    type Target = PgSchema;

    fn deref(&self) -> &PgSchema {
        &self.0
    }
}

impl DerefMut for Db {
    fn deref_mut(&mut self) -> &mut PgSchema {
        &mut self.0
    }
}

impl Db {
    /// Connects and creates the schema; `None` (after a loud skip) without PostgreSQL.
    #[track_caller]
    pub fn start() -> impl Future<Output = Option<Db>> {
        let schema = PgSchema::start("herald_e2e");
        async move { schema.await.map(Db) }
    }

    /// `name` in the test's schema, as the config and the CLI take it: `schema.name`.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.schema)
    }

    /// `name` made unique to this test: for channels (database-wide) and source names.
    pub fn unique(&self, name: &str) -> String {
        format!("{name}_{}", self.suffix)
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
}
