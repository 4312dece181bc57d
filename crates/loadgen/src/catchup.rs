//! `herald-loadgen catchup` (scenario d): how fast a reconnect with
//! `Last-Event-ID` catches up on events it missed.
//!
//! 1. `n` subscribers connect; one event (seq 0) is published and each notes
//!    its id; they disconnect.
//! 2. `m` events (seq 1..=m) are published, one after another.
//! 3. The subscribers reconnect with `Last-Event-ID` and each is timed from
//!    its reconnect until seq m is in; every one must get exactly 1..=m.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::cli::CatchupArgs;
use crate::fleet::{End, HttpSetup, Member};
use crate::publisher::Sink;
use crate::report::{Delivery, Summary, Table};
use crate::resources::raise_nofile_limit;
use crate::{Error, Fleet, Plan, Recorder, Target, Template, payload};

/// Everything `catchup` measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatchupReport {
    /// Server URL.
    pub(crate) target: String,
    /// The topic used.
    pub(crate) topic: String,
    /// Events missed and caught up on.
    pub(crate) events: u64,
    /// Subscribers that reconnected.
    pub(crate) subscribers: usize,
    /// Reconnects answered with 200.
    pub(crate) reconnected: usize,
    /// Reconnect time (to the response head).
    pub(crate) reconnect: Summary,
    /// Time to publish the missed events one after another, seconds.
    pub(crate) publish_s: f64,
    /// Publish round trip.
    pub(crate) publish_latency: Summary,
    /// Time from reconnecting until the last missed event was in.
    pub(crate) catchup: Summary,
    /// Subscribers that got every missed event within the timeout.
    pub(crate) completed: usize,
    /// Missed events per second of catch-up (events / median catch-up time).
    pub(crate) events_per_s: f64,
    /// Delivery correctness after the reconnect.
    pub(crate) delivery: Delivery,
    /// Every subscriber completed and delivery is clean.
    pub(crate) ok: bool,
}

impl CatchupReport {
    /// Whether every subscriber caught up and delivery was clean.
    pub fn is_clean(&self) -> bool {
        self.ok
    }

    /// Whether some subscribers could not reconnect.
    pub fn has_failures(&self) -> bool {
        self.reconnected < self.subscribers
    }

    /// The report as a readable table.
    pub fn table(&self) -> Table {
        let mut t = Table::default();
        let d = &self.delivery;
        t.row("target", &self.target)
            .row("topic", &self.topic)
            .row("missed events", self.events)
            .row(
                "publish",
                format!(
                    "{:.3} s, round trip p50 {:.2} ms p99 {:.2} ms",
                    self.publish_s, self.publish_latency.p50_ms, self.publish_latency.p99_ms
                ),
            )
            .row(
                "reconnected",
                format!("{} of {}", self.reconnected, self.subscribers),
            )
            .row(
                "reconnect",
                format!(
                    "p50 {:.2} ms  max {:.2} ms",
                    self.reconnect.p50_ms, self.reconnect.max_ms
                ),
            )
            .row(
                "completed",
                format!("{} of {}", self.completed, self.subscribers),
            )
            .row(
                "catch-up time",
                format!(
                    "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                    self.catchup.p50_ms, self.catchup.p99_ms, self.catchup.max_ms
                ),
            )
            .row(
                "catch-up rate",
                format!("{:.0} events/s per subscriber", self.events_per_s),
            )
            .delivery_checks(d)
            .row("ok", if self.ok { "yes" } else { "NO" });
        t
    }
}

/// Runs the `catchup` command.
///
/// # Errors
///
/// Bad options, an unreachable server, a failed publish, or subscribers
/// that never got the first event (so have no id to resume from).
pub async fn catchup(args: CatchupArgs) -> Result<CatchupReport, Error> {
    let _ = raise_nofile_limit();
    let run_id = args.server.run_id();
    let plan = Arc::new(Plan::new(
        &Template::parse(&args.topic_template)?,
        &run_id,
        1,
        None,
    ));
    let (subscribe, publish_path, publish_body) = args.server.templates(false);
    let target = Target::resolve(&args.server.url).await?;
    let setup = Arc::new(HttpSetup {
        target: target.clone(),
        subscribe: Template::parse(&subscribe)?,
        sources: args.server.source_ips.clone(),
        concurrency: args.server.connect_concurrency,
        timeout: args.server.connect_timeout,
    });
    let sink = if args.server.custom_publish() {
        Sink::templated(
            target,
            Template::parse(&publish_path)?,
            Template::parse(&publish_body)?,
            1,
        )?
    } else {
        Sink::herald(&target)?
    };
    let recorder = Arc::new(Recorder::default());
    let mut data = String::new();
    let size = args.server.data_bytes;

    // 1. Subscribe, get seq 0 and its id, disconnect.
    let first: Vec<Member> = (0..args.subscribers)
        .map(|connection| Member {
            connection,
            finish_at: Some(1),
            ..Member::default()
        })
        .collect();
    let mut fleet = Fleet::http(Arc::clone(&setup), &plan, first, &recorder);
    let opened = fleet.wait_connected().await;
    if opened.opened < args.subscribers {
        return Err(Error::Protocol(format!(
            "only {} of {} subscribers connected: {:?}",
            opened.opened, args.subscribers, opened.failures
        )));
    }
    payload::write(&mut data, 0, payload::unix_micros(), 0, true, size);
    sink.publish(&plan, 0, &data).await?;
    fleet.drain(&[1], args.timeout).await;
    let mut ids = Vec::new();
    for outcome in fleet.stop().await {
        if outcome.completed_after.is_none() || outcome.last_event_id.is_empty() {
            return Err(Error::Protocol(format!(
                "a subscriber got no id for the first event ({:?})",
                outcome.end
            )));
        }
        ids.push(outcome.last_event_id);
    }

    // 2. Publish what they miss.
    let mut publish_latency = crate::receiver::histogram();
    let started = Instant::now();
    for seq in 1..=args.events {
        payload::write(&mut data, seq, payload::unix_micros(), 0, true, size);
        let sent = Instant::now();
        sink.publish(&plan, 0, &data).await?;
        publish_latency.saturating_record(
            u64::try_from(sent.elapsed().as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
    }
    let publish_s = started.elapsed().as_secs_f64();

    // 3. Reconnect with Last-Event-ID, time the catch-up.
    let again: Vec<Member> = ids
        .into_iter()
        .enumerate()
        .map(|(connection, id)| Member {
            connection,
            start_seq: 1,
            last_event_id: Some(id),
            finish_at: Some(args.events + 1),
        })
        .collect();
    let mut fleet = Fleet::http(setup, &plan, again, &recorder);
    let reopened = fleet.wait_connected().await;
    fleet.drain(&[args.events + 1], args.timeout).await;
    // Linger briefly so duplicates right after the last event are seen too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcomes = fleet.stop().await;

    let mut catchup = crate::receiver::histogram();
    let mut delivery = Delivery::default();
    let mut completed = 0;
    for outcome in outcomes {
        if outcome.end == End::NotConnected {
            continue;
        }
        if let Some(took) = outcome.completed_after {
            completed += 1;
            catchup.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        let (counts, tally) = outcome.receiver.finish(args.events + 1);
        delivery.add(&counts, &tally, args.events);
    }
    let catchup = Summary::of(&catchup);
    Ok(CatchupReport {
        target: args.server.url.clone(),
        topic: plan.topic(0).to_owned(),
        events: args.events,
        subscribers: args.subscribers,
        reconnected: reopened.opened,
        reconnect: Summary::of(&reopened.connect),
        publish_s,
        publish_latency: Summary::of(&publish_latency),
        events_per_s: if catchup.p50_ms > 0.0 {
            args.events as f64 / (catchup.p50_ms / 1000.0)
        } else {
            0.0
        },
        catchup,
        completed,
        ok: completed == args.subscribers && delivery.is_clean(),
        delivery,
    })
}
