//! herald-loadgen: a load generator for Herald and other SSE servers.
//!
//! It opens many Server-Sent Events subscriptions over raw HTTP/1.1 (one
//! small task and one 4 KiB buffer each), publishes events at a fixed rate
//! through an HTTP API, each carrying a per-stream sequence number and its
//! send time, and checks on every subscriber that nothing was lost,
//! duplicated, reordered or misrouted. It reports connect time, deliveries
//! per second, latency percentiles (HDR histogram), the server's memory per
//! connection and CPU seconds per 1,000 deliveries (from `/proc`, given its
//! pid), and its own CPU, since it shares the machine. Timings are reported,
//! never asserted.
//!
//! # Usage
//!
//! ```text
//! herald-loadgen run --url http://127.0.0.1:8080 -n 1000 -k 1 -r 100 -d 30s \
//!     --server-pid $(pgrep -x herald) --json a.json          # (a) fan-out
//! herald-loadgen run -n 10000 -k 1 -r 10 -d 30s ...          # (b), (e): publish_latency
//! herald-loadgen run -n 19000 --idle -d 10s ...              # (c) memory per connection
//! herald-loadgen catchup -m 1000 -n 1 ...                    # (d) resume after 1,000 missed
//! herald-loadgen run -n 10000 -k 1000 --user-scoped -r 1000 ...  # (f) user-scoped topics
//! herald-loadgen run --in-process -n 1000 -r 1000            # the bus alone, no HTTP
//! herald-loadgen compare herald.json nchan.json --names herald,nchan   # ratios
//! ```
//!
//! `bench/compare.sh SCENARIO` runs a scenario against Herald and nchan and
//! prints both reports and the ratios.
//!
//! Other servers: the URL paths and the publish body are templates with
//! `{topic}`, `{k}`, `{user}`, `{data}` and `{run}` placeholders, e.g. for
//! nchan `--subscribe-template '/sub?topic={topic}' --publish-template
//! '/pub?topic={topic}' --publish-body '{data}'`. The receiver finds `seq` and
//! `ts` by parsing each event's data as JSON, also when it is wrapped.
//!
//! Past one process's open-file limit, split a run: `--shard I/N --sync-dir
//! DIR` in N processes (shard 0 first; it publishes and measures the server).
//! `--source-ips 127.0.0.1-127.0.0.20` spreads connections over source
//! addresses, past the ~28,000 ephemeral ports of one.
//!
//! Exit status: 0 clean, 1 events lost / duplicated / out of order /
//! misrouted (or streams ended early), 2 usage, 3 connections or publishes
//! failed, 4 the run could not be carried out.
//!
//! # Layout
//!
//! - `cli`: the options ([`cli::Cli`]); `run`, `catchup` and [`compare`]: the commands.
//! - [`template`](Template): `{name}` placeholders; [`Plan`]: which stream
//!   (topic, user) each connection follows.
//! - [`http`](SseConn): raw SSE connections; [`BodyDecoder`]: chunked bodies.
//! - [`Fleet`]: the subscriber tasks; [`Receiver`], [`Recorder`]: per-event
//!   checks and latency; [`SeqChecker`]: lost / dup / out-of-order counting.
//! - `publisher`: paced publishing ([`Sink`]: HTTP or an in-process bus).
//! - [`payload`]: the event body; [`resources`]: `/proc` and `RLIMIT_NOFILE`.
//! - [`Shard`], [`SyncDir`]: one run over several processes; [`SourceIps`].
//! - `report`: [`RunReport`], [`Summary`], the table.
//!
//! # Example
//!
//! ```
//! use herald_loadgen::{SeqChecker, Template, Vars};
//!
//! let path = Template::parse("/events?topic={topic}")?;
//! assert_eq!(path.expand(&Vars { topic: "load.0", ..Vars::default() }), "/events?topic=load.0");
//!
//! let mut check = SeqChecker::new();
//! [0, 1, 1, 3].into_iter().for_each(|seq| { check.observe(seq); });
//! check.finish(4);
//! assert_eq!((check.counts().lost, check.counts().duplicated), (1, 1));
//! # Ok::<(), herald_loadgen::Error>(())
//! ```

mod body;
mod catchup;
mod checker;
pub mod cli;
mod compare;
mod error;
mod fleet;
mod http;
pub mod payload;
mod plan;
mod publisher;
pub mod receiver;
mod report;
pub mod resources;
mod run;
mod shard;
mod source;
mod template;

pub use body::BodyDecoder;
pub use catchup::{CatchupReport, catchup};
pub use checker::{Counts, Observation, SeqChecker};
pub use compare::compare;
pub use error::Error;
pub use fleet::{End, Fleet, HttpSetup, Member, Opened, Outcome};
pub use http::{SseConn, Target};
pub use payload::Probe;
pub use plan::Plan;
pub use publisher::{Pace, Published, Sink, publish};
pub use receiver::{Receiver, Recorder, Tally};
pub use report::{Connections, Delivery, Resources, RunReport, Summary, Table};
pub use run::run;
pub use shard::{Shard, SyncDir};
pub use source::SourceIps;
pub use template::{Template, Var, Vars};
