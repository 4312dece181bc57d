//! herald-loadgen: a load generator for Herald and other SSE servers.
//!
//! It opens many Server-Sent Events subscriptions over raw HTTP/1.1 (one
//! small task and one 4 KiB buffer each; see below why), publishes events at
//! a fixed rate through an HTTP API, each carrying a per-stream sequence number and its
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
//! - `cli`: the options ([`cli::Cli`]); `run`, `catchup` and `compare`: the
//!   commands ([`run()`], [`catchup()`], [`compare()`]).
//! - `template`: `{name}` placeholders; `plan`: which stream (topic, user)
//!   each connection follows.
//! - `http`: the raw SSE connections; `body`: their chunked-body decoder.
//! - `fleet`: the subscriber tasks; `receiver`: per-event checks and
//!   latency; `checker`: lost / dup / out-of-order counting.
//! - `publisher`: paced publishing: Herald through `herald-client`, another
//!   server through its templates, or an in-process bus.
//! - `payload`: the event body; `resources`: `/proc` and `RLIMIT_NOFILE`.
//! - `shard`: one run over several processes; `source`: source addresses.
//! - `report`: [`RunReport`], the table ([`Table`]).
//! - `error`: [`Error`].
//!
//! The public items are the ones the `herald-loadgen` binary uses.
//!
//! # Why the receive path is hand-written
//!
//! Publishing goes through `herald-client`, but the subscribers do not. A
//! run holds up to tens of thousands of open streams in one process (scenario
//! (c) measures the server's memory per connection at 19,000), and the
//! generator must cost less than the server it measures, since both share
//! the machine: one small task, one socket and one 4 KiB buffer per
//! stream, and the body bytes go from that buffer straight into
//! [`herald_sse::Parser`]. A `herald-client` subscription adds per stream a
//! hyper connection task and its buffers, a boxed body stream, and a `Bytes`
//! per chunk. A first trial (debug builds, 1,000 subscribers; not yet a
//! benchmark with a reproducing command) showed a bare `herald-client`
//! consumer using several times the memory per stream and more CPU per
//! delivery than this generator, and falling behind the events. That client
//! is for a service's few subscriptions that must never lose an event, not a
//! load generator's thousands. The request is one
//! fixed `GET`, so the hand-written part is small: `httparse` reads the
//! head, and `body` is the workspace's only chunked decoder.
//!
//! # Example
//!
//! ```
//! use clap::Parser as _;
//! use herald_loadgen::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["herald-loadgen", "run", "-n", "100", "--json", "a.json"])?;
//! let Command::Run(args) = cli.command else { panic!("a run") };
//! assert_eq!(args.server.json.as_deref(), Some(std::path::Path::new("a.json")));
//!
//! let a = serde_json::json!({"deliveries_per_s": 3000.0});
//! let b = serde_json::json!({"deliveries_per_s": 1000.0});
//! let table = herald_loadgen::compare(("herald", &a), ("other", &b)).to_string();
//! assert!(table.contains("deliveries/s") && table.contains("3.00"));
//! # Ok::<(), clap::Error>(())
//! ```

mod body;
mod catchup;
mod checker;
pub mod cli;
mod compare;
mod error;
mod fleet;
mod http;
mod payload;
mod plan;
mod publisher;
mod receiver;
mod report;
mod resources;
mod run;
mod shard;
mod source;
mod template;

// The public surface is what the binary uses; everything else is the
// crate's own (pub(crate)), re-exported here for the modules.
pub use catchup::{CatchupReport, catchup};
pub use compare::compare;
pub use error::Error;
pub use report::{RunReport, Table};
pub use run::run;

pub(crate) use body::BodyDecoder;
pub(crate) use checker::{Counts, SeqChecker};
pub(crate) use fleet::Fleet;
pub(crate) use http::{SseConn, Target};
pub(crate) use plan::Plan;
pub(crate) use receiver::{Receiver, Recorder, Tally};
pub(crate) use report::Summary;
pub(crate) use shard::{Shard, SyncDir};
pub(crate) use source::SourceIps;
pub(crate) use template::Template;
