//! Paced publishing over HTTP (or straight into a bus), each event carrying
//! its stream's next sequence number and its send time.
//!
//! Several workers share the rate; each owns the streams `s % workers == w`
//! and waits for every answer before its next publish, so the server sees a
//! stream's events strictly in order (two concurrent requests could be
//! reordered and show up as out-of-order deliveries that are not the
//! server's fault). A failed publish does not consume its sequence number.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use herald_bus::{Audience, Bus, Data, Draft, Topic, UserId};
use tokio::time::Instant;

use crate::receiver::histogram;
use crate::template::Template;
use crate::{Error, Plan, Target, payload};

/// Where events go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// Herald's `POST /publish`, through `herald-client`.
    Herald {
        /// The client, with its keep-alive connection pool.
        client: herald_client::Client,
    },
    /// `POST` (path and body from templates) to another HTTP server, whose
    /// API `herald-client` does not speak.
    Templated {
        /// Keep-alive connection pool.
        client: reqwest::Client,
        /// The server.
        target: Target,
        /// Path template, e.g. `/publish` or `/pub?topic={topic}`.
        path: Template,
        /// Body template, e.g. `{"topic":"{topic}","data":{data}}`.
        body: Template,
    },
    /// `Bus::publish` in this process.
    Bus {
        /// The bus.
        bus: Bus,
        /// One topic per stream.
        topics: Vec<Topic>,
        /// One audience per stream.
        audiences: Vec<Audience>,
    },
}

impl Sink {
    /// A sink into the Herald at `target`.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`] if the client cannot be built.
    pub(crate) fn herald(target: &Target) -> Result<Self, Error> {
        let client = herald_client::Client::builder(target.url(""))
            .request_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Publish(e.to_string()))?;
        Ok(Self::Herald { client })
    }

    /// A sink into another server: `POST` with path and body from
    /// templates, over a pool sized for `workers` connections.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`] if the HTTP client cannot be built.
    pub(crate) fn templated(
        target: Target,
        path: Template,
        body: Template,
        workers: usize,
    ) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(workers)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Publish(e.to_string()))?;
        Ok(Self::Templated {
            client,
            target,
            path,
            body,
        })
    }

    /// A sink into `bus` for the streams of `plan`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when a topic or user name of the plan is not valid
    /// for the bus.
    pub(crate) fn bus(bus: Bus, plan: &Plan) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Invalid {
            what: "topic or user",
            reason,
        };
        let mut topics = Vec::new();
        let mut audiences = Vec::new();
        for s in 0..plan.streams() {
            topics.push(Topic::new(plan.topic(s)).map_err(|e| invalid(e.to_string()))?);
            audiences.push(match plan.user(s) {
                "" => Audience::Everyone,
                user => Audience::User(UserId::new(user).map_err(|e| invalid(e.to_string()))?),
            });
        }
        Ok(Self::Bus {
            bus,
            topics,
            audiences,
        })
    }

    /// Publishes one event of `stream` with payload `data`.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`] when the server refuses it or cannot be reached.
    pub(crate) async fn publish(
        &self,
        plan: &Plan,
        stream: usize,
        data: &str,
    ) -> Result<(), Error> {
        match self {
            Self::Herald { client } => {
                let value: serde_json::Value =
                    serde_json::from_str(data).map_err(|e| Error::Publish(e.to_string()))?;
                let mut draft = herald_client::Draft::new(plan.topic(stream), value);
                if !plan.user(stream).is_empty() {
                    draft = draft.with_user(plan.user(stream));
                }
                client
                    .publish(&draft)
                    .await
                    .map(drop)
                    .map_err(|e| Error::Publish(e.to_string()))
            }
            Self::Templated {
                client,
                target,
                path,
                body,
            } => {
                let vars = plan.vars(stream, data);
                let response = client
                    .post(target.url(&path.expand(&vars)))
                    .header("content-type", "application/json")
                    .body(body.expand(&vars))
                    .send()
                    .await
                    .map_err(|e| Error::Publish(e.to_string()))?;
                let status = response.status();
                // Read the body so the connection goes back to the pool.
                let text = response.text().await.unwrap_or_default();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(Error::Publish(format!("status {status}: {}", text.trim())))
                }
            }
            Self::Bus {
                bus,
                topics,
                audiences,
            } => {
                let value: serde_json::Value =
                    serde_json::from_str(data).map_err(|e| Error::Publish(e.to_string()))?;
                let draft = Draft::new(topics[stream].clone(), Data::from(value))
                    .with_audience(audiences[stream].clone());
                bus.publish(draft)
                    .await
                    .map(drop)
                    .map_err(|e| Error::Publish(e.to_string()))
            }
        }
    }
}

/// How to pace publishing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Events per second, all streams together.
    pub rate: f64,
    /// Warm-up time: events are marked `w` and their latencies not recorded.
    pub warmup: Duration,
    /// Measured time after the warm-up.
    pub duration: Duration,
    /// Concurrent publishing connections.
    pub workers: usize,
    /// Payload size, bytes.
    pub data_bytes: usize,
}

/// What the publisher did.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    /// Events accepted per stream: stream `s` has sequence numbers `0..published[s]`.
    pub per_stream: Vec<u64>,
    /// Events accepted outside the warm-up.
    pub measured: u64,
    /// Round-trip time of each measured publish, microseconds.
    pub latency: Histogram<u64>,
    /// Publishes that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Publishes started more than one interval behind schedule.
    pub late: u64,
}

/// Publishes at `pace.rate` for `pace.warmup + pace.duration`, from `start`.
pub(crate) async fn publish(
    sink: Arc<Sink>,
    plan: Arc<Plan>,
    pace: Pace,
    start: Instant,
) -> Published {
    let streams = plan.streams();
    let workers = pace.workers.clamp(1, streams);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (sink, plan) = (Arc::clone(&sink), Arc::clone(&plan));
            tokio::spawn(worker(sink, plan, pace, start, w, workers))
        })
        .collect();
    let mut total = Published {
        per_stream: vec![0; streams],
        measured: 0,
        latency: histogram(),
        errors: 0,
        first_error: None,
        late: 0,
    };
    for handle in handles {
        let part = handle.await.expect("publisher worker panicked");
        for (sum, n) in total.per_stream.iter_mut().zip(part.per_stream) {
            *sum += n;
        }
        total.measured += part.measured;
        total.latency.add(&part.latency).expect("same bounds");
        total.errors += part.errors;
        total.first_error = total.first_error.or(part.first_error);
        total.late += part.late;
    }
    total
}

async fn worker(
    sink: Arc<Sink>,
    plan: Arc<Plan>,
    pace: Pace,
    start: Instant,
    w: usize,
    workers: usize,
) -> Published {
    let owned: Vec<usize> = (w..plan.streams()).step_by(workers).collect();
    let mut out = Published {
        per_stream: vec![0; plan.streams()],
        measured: 0,
        latency: histogram(),
        errors: 0,
        first_error: None,
        late: 0,
    };
    let interval = Duration::from_secs_f64(workers as f64 / pace.rate.max(1e-6));
    let measure_from = start + pace.warmup;
    let end = measure_from + pace.duration;
    let mut data = String::with_capacity(pace.data_bytes + 64);
    // An absolute schedule: a slow answer makes the next publishes go at once
    // (a burst) rather than lowering the rate for the rest of the run.
    for tick in 0u64.. {
        let due = start + interval.mul_f64(tick as f64);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let sent = Instant::now();
        if sent.duration_since(due) > interval {
            out.late += 1;
        }
        let stream = owned[usize::try_from(tick).unwrap_or(0) % owned.len()];
        let warmup = due < measure_from;
        let seq = out.per_stream[stream];
        payload::write(
            &mut data,
            seq,
            payload::unix_micros(),
            stream,
            warmup,
            pace.data_bytes,
        );
        match sink.publish(&plan, stream, &data).await {
            Ok(()) => {
                out.per_stream[stream] += 1;
                if !warmup {
                    out.measured += 1;
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    out.latency.saturating_record(micros.max(1));
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    out
}
