//! Outbox mode: read rows in commit order from the recorded position, publish them,
//! record the new position; woken by `NOTIFY`, and polling as a safety net.
//!
//! # Why `(seq, id)` from the commits table
//!
//! Neither a row's `bigserial` id nor its transaction id tells when it committed: both
//! are drawn before the commit, so a reader that moved past one could skip a row that
//! commits later with a smaller one, and ordering by them publishes overlapping
//! transactions out of commit order (a client would then apply an older change to a row
//! after a newer one). So the outbox's deferred `herald_commit` trigger gives each
//! writing transaction a `seq` in `<outbox>_commits` at its commit, under a lock held
//! until the commit is visible: `seq`s are in commit order, and once `seq` M is visible
//! every smaller `seq` that will ever commit already is. Rows are read ordered by their
//! transaction's `seq`, then `id`: transactions in commit order, a transaction's rows
//! together and in insert order, and nothing can appear behind the recorded position.
//!
//! A transaction's rows become visible all at once, so only a full batch can leave rows
//! of the position's transaction unread. Those are read through the outbox's primary key
//! `(txid, id)`, in order: joined and sorted by `(seq, id)`, every batch of a
//! transaction of n rows would sort the rest of it again, O(n²) in all.

use std::time::Instant;

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

/// A position in the outbox: the last row published, by its transaction's commit `seq`
/// and its `id`. `(0, 0)` is before every row (`seq` starts at 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    seq: i64,
    id: i64,
}

/// The outbox-mode state kept across reconnects.
pub(super) struct Reader {
    outbox: Outbox,
    mapping: Mapping,
    /// The last row published by this process. It survives reconnects, so a position
    /// write lost with a connection never causes a duplicate.
    position: Option<Position>,
    /// Whether the position's transaction may have rows not read yet: after a full
    /// batch, and after a (re)connect.
    unfinished: bool,
    last_prune: Option<Instant>,
    /// Boxed: six strings would make a reader far larger than a notify listener.
    sql: Box<Queries>,
}

struct Queries {
    /// Rows of the transactions after the position's.
    next: String,
    /// The rest of the position's transaction.
    rest: String,
    save: String,
    load: String,
    lag: String,
    prune: String,
}

impl Reader {
    pub(super) fn new(outbox: Outbox, mapping: Mapping) -> Self {
        let table = outbox.table().to_sql();
        let commits = outbox.commits_table().to_sql();
        let positions = outbox.position_table().to_sql();
        let sql = Box::new(Queries {
            next: format!(
                "SELECT o.id, c.seq, o.topic, o.event, o.user_id, o.payload \
                 FROM {commits} c JOIN {table} o ON o.txid = c.txid \
                 WHERE c.seq > $1 ORDER BY c.seq, o.id LIMIT $2"
            ),
            // The `txid` as a subquery's value, so the primary key's order is the `id`
            // order and no sort is needed.
            rest: format!(
                "SELECT o.id, $1::bigint, o.topic, o.event, o.user_id, o.payload \
                 FROM {table} o WHERE o.txid = (SELECT txid FROM {commits} WHERE seq = $1) \
                 AND o.id > $2 ORDER BY o.id LIMIT $3"
            ),
            save: format!(
                "INSERT INTO {positions} (source, seq, id, updated_at) \
                 VALUES ($1, $2, $3, now()) \
                 ON CONFLICT (source) DO UPDATE \
                 SET seq = excluded.seq, id = excluded.id, updated_at = excluded.updated_at"
            ),
            load: format!("SELECT seq, id FROM {positions} WHERE source = $1"),
            // `(seq, id) > ($1, $2)` spelled out: a row comparison across two tables
            // cannot use the index on `seq`.
            lag: format!(
                "SELECT count(*) FROM {commits} c JOIN {table} o ON o.txid = c.txid \
                 WHERE c.seq >= $1 AND (c.seq > $1 OR o.id > $2)"
            ),
            // Whole transactions go, with their commit: one that has a row older than
            // the retention and that this source has published to its last row.
            prune: format!(
                "WITH old AS (SELECT DISTINCT txid FROM {table} \
                   WHERE created_at < now() - make_interval(secs => $1)), \
                 done AS (DELETE FROM {commits} c USING old WHERE c.txid = old.txid \
                   AND (c.seq < $2 OR (c.seq = $2 AND NOT EXISTS \
                     (SELECT 1 FROM {table} o WHERE o.txid = c.txid AND o.id > $3))) \
                   RETURNING c.txid) \
                 DELETE FROM {table} o USING done WHERE o.txid = done.txid"
            ),
        });
        Self {
            outbox,
            mapping,
            position: None,
            unfinished: true,
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
                seq: row.try_get(0).map_err(|e| chain(&e))?,
                id: row.try_get(1).map_err(|e| chain(&e))?,
            }),
            None => None,
        };
        self.position = self.position.max(stored).or(Some(Position::default()));
        self.unfinished = true;
        Ok(())
    }

    /// Publishes what has committed, then waits for a wake-up or a poll tick.
    pub(super) async fn serve(&mut self, conn: &mut Conn, ctx: &Ctx, stop: &mut Stop) -> End {
        loop {
            match self.drain(conn, ctx, stop).await {
                Ok(Published::Done) => {}
                Ok(Published::Stopped) => return End::Stopped,
                Err(error) => return End::Lost(error),
            }
            self.prune_if_due(conn).await;
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
                () = tokio::time::sleep(self.outbox.poll_interval()) => {}
            }
        }
    }

    /// Reads, publishes and records batches until none is left, then counts the rows
    /// committed meanwhile as the lag.
    async fn drain(
        &mut self,
        conn: &mut Conn,
        ctx: &Ctx,
        stop: &mut Stop,
    ) -> Result<Published, String> {
        let mut position = self.position.unwrap_or_default();
        loop {
            if stop.is_set() {
                return Ok(Published::Stopped);
            }
            let rest = self.unfinished;
            let rows = if rest {
                let params = [&position.seq, &position.id, &BATCH];
                within(conn.client.query(&self.sql.rest, &params.map(|p| p as _))).await?
            } else {
                within(conn.client.query(&self.sql.next, &[&position.seq, &BATCH])).await?
            };
            let full = rows.len() as i64 == BATCH;
            if let Some(last) = rows.last() {
                let last = Position {
                    seq: last.try_get(1).map_err(|e| chain(&e))?,
                    id: last.try_get(0).map_err(|e| chain(&e))?,
                };
                if self.publish(ctx, &rows, stop).await? == Published::Stopped {
                    return Ok(Published::Stopped);
                }
                // Published: from here on this process never publishes these rows again.
                position = last;
                self.position = Some(last);
                let name = ctx.stats.name();
                within(
                    conn.client
                        .execute(&self.sql.save, &[&name, &last.seq, &last.id]),
                )
                .await?;
            }
            // A read that is not full has the rest of the position's transaction.
            self.unfinished = full;
            if !full && !rest {
                break;
            }
        }
        let lag: i64 = within(
            conn.client
                .query_one(&self.sql.lag, &[&position.seq, &position.id]),
        )
        .await?
        .get(0);
        ctx.stats
            .set_outbox_lag(u64::try_from(lag).unwrap_or_default());
        Ok(Published::Done)
    }

    /// Publishes `rows` as one batch; rows that cannot become events are bad payloads.
    async fn publish(&self, ctx: &Ctx, rows: &[Row], stop: &mut Stop) -> Result<Published, String> {
        let mut drafts = Vec::with_capacity(rows.len());
        for row in rows {
            match self.to_draft(row).map_err(|e| chain(&e))? {
                Ok(draft) => drafts.push(draft),
                Err(error) => {
                    let id: i64 = row.try_get(0).map_err(|e| chain(&e))?;
                    let origin = format!("{} row {id}", self.outbox.table());
                    ctx.bad_payload(&origin, None, &error);
                }
            }
        }
        Ok(publish(ctx, drafts, stop).await)
    }

    /// Deletes published transactions older than the retention (their rows and their
    /// commit), once per poll interval. A failure is logged, not fatal: the next query
    /// finds out whether the connection is.
    async fn prune_if_due(&mut self, conn: &mut Conn) {
        let due = self
            .last_prune
            .is_none_or(|at| at.elapsed() >= self.outbox.poll_interval());
        let Some(position) = self.position.filter(|_| due) else {
            return;
        };
        self.last_prune = Some(Instant::now());
        let retention = self.outbox.retention().as_secs_f64();
        let result = within(
            conn.client
                .execute(&self.sql.prune, &[&retention, &position.seq, &position.id]),
        )
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
