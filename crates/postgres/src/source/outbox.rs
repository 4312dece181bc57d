//! Outbox mode: read rows in transaction order from the recorded position, publish them,
//! record the new position; woken by `NOTIFY`, and polling as a safety net.
//!
//! # Why `(txid, id)` and the snapshot horizon
//!
//! A `bigserial` id is taken at insert, not at commit: a transaction holding id 5 can
//! commit after one holding id 6, and a reader that already moved past 6 would skip 5
//! forever. So rows are read ordered by the writing transaction's id (`txid`, from
//! `pg_current_xact_id()`), then `id`, and only rows whose transaction is older than
//! `pg_snapshot_xmin(pg_current_snapshot())`: every transaction below that horizon has
//! ended, so no row can appear later behind the recorded position. A transaction's rows
//! are therefore published together, in insert order, and transactions in txid order.

use std::time::{Duration, Instant};

use herald_bus::{Audience, Draft, EventName, Topic, UserId};
use serde_json::Value;
use tokio_postgres::Row;

use super::{
    End,
    conn::Conn,
    publish::{Ctx, Published, Stop, publish, within},
};
use crate::{MapError, Mapping, Outbox, error::chain};

/// Most rows read, and published as one batch, at a time.
const BATCH: i64 = 500;
/// First wait before re-reading rows held back by an older open transaction.
const RECHECK: Duration = Duration::from_millis(20);

/// A position in the outbox: the last row published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    txid: u64,
    id: i64,
}

impl Position {
    fn txid_text(&self) -> String {
        self.txid.to_string()
    }
}

/// The outbox-mode state kept across reconnects.
pub(super) struct Reader {
    outbox: Outbox,
    mapping: Mapping,
    /// The last row published by this process. It survives reconnects, so a position
    /// write lost with a connection never causes a duplicate.
    position: Option<Position>,
    last_prune: Option<Instant>,
    sql: Queries,
}

struct Queries {
    read: String,
    save: String,
    load: String,
    lag: String,
    prune: String,
}

impl Reader {
    pub(super) fn new(outbox: Outbox, mapping: Mapping) -> Self {
        let table = outbox.table().to_sql();
        let positions = outbox.position_table().to_sql();
        let sql = Queries {
            read: format!(
                "SELECT id, txid::text, topic, event, user_id, payload FROM {table} \
                 WHERE (txid, id) > ($1::text::xid8, $2) \
                 AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY txid, id LIMIT $3"
            ),
            save: format!(
                "INSERT INTO {positions} (source, txid, id, updated_at) \
                 VALUES ($1, $2::text::xid8, $3, now()) \
                 ON CONFLICT (source) DO UPDATE \
                 SET txid = excluded.txid, id = excluded.id, updated_at = excluded.updated_at"
            ),
            load: format!("SELECT txid::text, id FROM {positions} WHERE source = $1"),
            lag: format!("SELECT count(*) FROM {table} WHERE (txid, id) > ($1::text::xid8, $2)"),
            prune: format!(
                "DELETE FROM {table} WHERE created_at < now() - make_interval(secs => $1) \
                 AND (txid, id) <= ($2::text::xid8, $3)"
            ),
        };
        Self {
            outbox,
            mapping,
            position: None,
            last_prune: None,
            sql,
        }
    }

    /// `LISTEN`s on the wake-up channel, then loads the recorded position (keeping this
    /// process's own if it is further).
    pub(super) async fn setup(&mut self, conn: &mut Conn, ctx: &Ctx) -> Result<(), String> {
        within(conn.listen(std::slice::from_ref(self.outbox.channel()))).await?;
        let rows = within(conn.client.query(&self.sql.load, &[&ctx.stats.name()])).await?;
        let stored = match rows.first() {
            Some(row) => Some(Position {
                txid: parse_txid(row.try_get(0).map_err(|e| chain(&e))?)?,
                id: row.try_get(1).map_err(|e| chain(&e))?,
            }),
            None => None,
        };
        self.position = self.position.max(stored).or(Some(Position::default()));
        Ok(())
    }

    /// Publishes what is ready, then waits for a wake-up, a poll tick or a recheck.
    pub(super) async fn serve(&mut self, conn: &mut Conn, ctx: &Ctx, stop: &mut Stop) -> End {
        let mut recheck = RECHECK;
        loop {
            let pending = match self.drain(conn, ctx, stop).await {
                Ok(Some(pending)) => pending,
                Ok(None) => return End::Stopped,
                Err(error) => return End::Lost(error),
            };
            self.prune_if_due(conn).await;
            // Rows held back by an older open transaction: look again soon, backing off
            // to the poll interval if that transaction is a long one.
            let wait = if pending > 0 {
                let wait = recheck;
                recheck = (recheck * 2).min(self.outbox.poll_interval());
                wait
            } else {
                recheck = RECHECK;
                self.outbox.poll_interval()
            };
            tokio::select! {
                biased;
                () = stop.wait() => return End::Stopped,
                message = conn.recv() => match message {
                    Some(Ok(_)) => {
                        let mut woken = 1;
                        // One read serves every wake-up already queued.
                        while let Some(message) = conn.try_recv() {
                            match message {
                                Ok(_) => woken += 1,
                                Err(err) => return End::Lost(chain(&err)),
                            }
                        }
                        ctx.stats.notifications(woken);
                    }
                    Some(Err(err)) => return End::Lost(chain(&err)),
                    None => return End::Lost("connection closed".to_owned()),
                },
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reads, publishes and records batches until none is left below the horizon.
    /// Returns the rows still pending (held back), or `None` when stopped.
    async fn drain(
        &mut self,
        conn: &mut Conn,
        ctx: &Ctx,
        stop: &mut Stop,
    ) -> Result<Option<u64>, String> {
        let mut position = self.position.unwrap_or_default();
        loop {
            if stop.is_set() {
                return Ok(None);
            }
            let params = (position.txid_text(), position.id, BATCH);
            let rows = within(
                conn.client
                    .query(&self.sql.read, &[&params.0, &params.1, &params.2]),
            )
            .await?;
            let Some(last) = rows.last() else { break };
            let last = Position {
                txid: parse_txid(last.try_get(1).map_err(|e| chain(&e))?)?,
                id: last.try_get(0).map_err(|e| chain(&e))?,
            };
            let mut drafts = Vec::with_capacity(rows.len());
            for row in &rows {
                match self.to_draft(row).map_err(|e| chain(&e))? {
                    Ok(draft) => drafts.push(draft),
                    Err(error) => {
                        let id: i64 = row.try_get(0).map_err(|e| chain(&e))?;
                        let origin = format!("{} row {id}", self.outbox.table());
                        ctx.bad_payload(&origin, None, &error);
                    }
                }
            }
            if publish(ctx, drafts, stop).await == Published::Stopped {
                return Ok(None);
            }
            // Published: from here on this process never publishes these rows again.
            position = last;
            self.position = Some(last);
            let name = ctx.stats.name();
            within(
                conn.client
                    .execute(&self.sql.save, &[&name, &last.txid_text(), &last.id]),
            )
            .await?;
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        let lag: i64 = within(
            conn.client
                .query_one(&self.sql.lag, &[&position.txid_text(), &position.id]),
        )
        .await?
        .get(0);
        let lag = u64::try_from(lag).unwrap_or_default();
        ctx.stats.set_outbox_lag(lag);
        Ok(Some(lag))
    }

    /// Deletes published rows older than the retention, once per poll interval. A
    /// failure is logged, not fatal: the next query finds out whether the connection is.
    async fn prune_if_due(&mut self, conn: &mut Conn) {
        let due = self
            .last_prune
            .is_none_or(|at| at.elapsed() >= self.outbox.poll_interval());
        let Some(position) = self.position.filter(|_| due) else {
            return;
        };
        self.last_prune = Some(Instant::now());
        let retention = self.outbox.retention().as_secs_f64();
        let result = within(conn.client.execute(
            &self.sql.prune,
            &[&retention, &position.txid_text(), &position.id],
        ))
        .await;
        match result {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "pruned published outbox rows"),
            Err(error) => tracing::warn!(%error, "pruning the outbox failed"),
        }
    }

    /// One row as a draft: an application's row (with a `topic`) as it is, a captured
    /// change through the mapping. The inner error is a bad payload.
    fn to_draft(&self, row: &Row) -> Result<Result<Draft, MapError>, tokio_postgres::Error> {
        let topic: Option<String> = row.try_get(2)?;
        let event: Option<String> = row.try_get(3)?;
        let user: Option<String> = row.try_get(4)?;
        let payload: Value = row.try_get(5)?;
        Ok(match topic {
            Some(topic) => direct(&topic, event.as_deref(), user.as_deref(), payload),
            None => self.mapping.to_draft(payload),
        })
    }
}

/// A row an application wrote with its own topic, event type and user.
fn direct(
    topic: &str,
    event: Option<&str>,
    user: Option<&str>,
    data: Value,
) -> Result<Draft, MapError> {
    let mut draft = Draft::new(Topic::new(topic).map_err(MapError::Topic)?, data);
    if let Some(event) = event {
        draft = draft.with_name(EventName::new(event).map_err(MapError::EventName)?);
    }
    if let Some(user) = user {
        let user = UserId::new(user).map_err(MapError::User)?;
        draft = draft.with_audience(Audience::User(user));
    }
    Ok(draft)
}

fn parse_txid(text: String) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("txid {text:?} is not a 64-bit transaction id"))
}
