//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::{Shard, SourceIps};

/// Default subscription path (`&user={user}` is added with `--user-scoped`).
pub(crate) const SUBSCRIBE_TEMPLATE: &str = "/events?topic={topic}";
/// Default publish path.
pub(crate) const PUBLISH_TEMPLATE: &str = "/publish";
/// Default publish body (`,"user":"{user}"` is added with `--user-scoped`).
pub(crate) const PUBLISH_BODY: &str = r#"{"topic":"{topic}","data":{data}}"#;

/// Load generator for Herald and other SSE servers.
///
/// Opens many SSE subscriptions, publishes numbered, timestamped events at a
/// fixed rate, and reports connect time, deliveries per second, lost /
/// duplicated / out-of-order events, latency percentiles, the server's memory
/// per connection and CPU per 1,000 deliveries, and its own CPU. Exits 1 if
/// any event was lost, duplicated, out of order or misrouted, 3 if
/// connections or publishes failed, 0 otherwise; timings never fail a run.
#[derive(Debug, Parser)]
#[command(
    name = "herald-loadgen",
    version,
    about,
    long_about,
    args_override_self = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// N subscribers over K topics, events at rate R (scenarios a, b, c, e, f).
    Run(RunArgs),
    /// Subscribe, disconnect, publish M events, reconnect with
    /// Last-Event-ID and time until all M are in (scenario d).
    Catchup(CatchupArgs),
    /// Print two JSON reports side by side with the ratio of each figure.
    Compare(CompareArgs),
}

/// Options of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// First report (the numerator of the ratios).
    pub a: PathBuf,
    /// Second report.
    pub b: PathBuf,
    /// Names of the two, comma-separated.
    #[arg(long, default_value = "a,b")]
    pub names: String,
}

/// Options every command shares: the server and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct ServerOpts {
    /// Server base URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// Subscription path; placeholders {topic} {k} {user} {run}.
    /// Default: /events?topic={topic} (plus &user={user} when user-scoped).
    #[arg(long)]
    pub(crate) subscribe_template: Option<String>,
    /// Publish path; same placeholders. Default: /publish.
    #[arg(long)]
    pub(crate) publish_template: Option<String>,
    /// Publish body; {data} is the JSON payload. Default:
    /// {"topic":"{topic}","data":{data}} (plus ,"user":"{user}" when user-scoped).
    /// For nchan: --publish-template '/pub?topic={topic}' --publish-body '{data}'.
    #[arg(long)]
    pub(crate) publish_body: Option<String>,
    /// Local source addresses for subscriber sockets, round robin:
    /// `127.0.0.1-127.0.0.20` or a comma list of addresses and ranges.
    #[arg(long)]
    pub(crate) source_ips: Option<SourceIps>,
    /// Server process to measure (RSS, CPU) from /proc; repeat to sum
    /// several (e.g. nginx master and worker).
    #[arg(long = "server-pid")]
    pub(crate) server_pids: Vec<u32>,
    /// Run id for the {run} placeholder (default: derived from pid and time).
    #[arg(long)]
    pub(crate) run_id: Option<String>,
    /// Payload size in bytes (~128-byte SSE event with Herald's id line).
    #[arg(long, default_value_t = 96)]
    pub(crate) data_bytes: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    pub(crate) connect_concurrency: usize,
    /// Give up on a connection after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) connect_timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Server and protocol options.
    #[command(flatten)]
    pub server: ServerOpts,
    /// SSE connections in total (over all shards).
    #[arg(long, short = 'n', default_value_t = 100)]
    pub(crate) connections: usize,
    /// Topics; connection c follows topic c % topics.
    #[arg(long, short = 'k', default_value_t = 1)]
    pub(crate) topics: usize,
    /// Events per second, all topics together (round robin over streams).
    #[arg(long, short = 'r', default_value_t = 100.0)]
    pub(crate) rate: f64,
    /// Measured publishing time.
    #[arg(long, short = 'd', default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Publishing before the measurement (events checked, latency not recorded).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) warmup: Duration,
    /// Topic names; placeholders {k} {run}.
    #[arg(long, default_value = "load.{k}")]
    pub(crate) topic_template: String,
    /// User-scoped events: each topic has --users-per-topic users, each
    /// subscriber subscribes as one (Herald: ?user= in auth mode none) and
    /// each event is published to one user; sequences run per (topic, user).
    #[arg(long)]
    pub(crate) user_scoped: bool,
    /// Users per topic with --user-scoped.
    #[arg(long, default_value_t = 1)]
    pub(crate) users_per_topic: usize,
    /// Publish nothing: hold the connections for --duration and measure
    /// memory per connection (scenario c).
    #[arg(long)]
    pub(crate) idle: bool,
    /// Drive herald-bus in this process instead of a server (no HTTP, no SSE).
    #[arg(long)]
    pub(crate) in_process: bool,
    /// Concurrent publishing connections (each owns some streams).
    #[arg(long, default_value_t = 2)]
    pub(crate) publishers: usize,
    /// After publishing, wait at most this long for the last events.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) drain: Duration,
    /// Pause between opening the last connection and reading the server's RSS.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) settle: Duration,
    /// This process's part of a run split over processes: `I/N` opens
    /// connections c with c % N == I; only shard 0 publishes. Needs --sync-dir.
    #[arg(long, default_value = "0/1")]
    pub(crate) shard: Shard,
    /// Directory the shards of one run coordinate through (start shard 0 first).
    #[arg(long)]
    pub(crate) sync_dir: Option<PathBuf>,
}

/// Options of `catchup`.
#[derive(Debug, Clone, Args)]
pub struct CatchupArgs {
    /// Server and protocol options.
    #[command(flatten)]
    pub server: ServerOpts,
    /// Events published while the subscribers are away.
    #[arg(long, short = 'm', default_value_t = 1000)]
    pub(crate) events: u64,
    /// Subscribers that disconnect and catch up together.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub(crate) subscribers: usize,
    /// The topic; placeholders {run}.
    #[arg(long, default_value = "catchup.{run}")]
    pub(crate) topic_template: String,
    /// Give up waiting for the events after this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
}

impl ServerOpts {
    /// Whether publishing follows templates given on the command line
    /// (another server's API) rather than Herald's `POST /publish`.
    pub(crate) fn custom_publish(&self) -> bool {
        self.publish_template.is_some() || self.publish_body.is_some()
    }

    /// The subscribe path, publish path and publish body templates, with the
    /// defaults filled in.
    pub(crate) fn templates(&self, user_scoped: bool) -> (String, String, String) {
        let subscribe = self.subscribe_template.clone().unwrap_or_else(|| {
            let user = if user_scoped { "&user={user}" } else { "" };
            format!("{SUBSCRIBE_TEMPLATE}{user}")
        });
        let publish = self
            .publish_template
            .clone()
            .unwrap_or_else(|| PUBLISH_TEMPLATE.into());
        let body = self.publish_body.clone().unwrap_or_else(|| {
            if user_scoped {
                PUBLISH_BODY.replace("{data}}", r#"{data},"user":"{user}"}"#)
            } else {
                PUBLISH_BODY.into()
            }
        });
        (subscribe, publish, body)
    }

    /// The run id: `--run-id`, or one made from the pid and the time.
    pub(crate) fn run_id(&self) -> String {
        self.run_id.clone().unwrap_or_else(|| {
            format!(
                "{:x}{:x}",
                std::process::id(),
                crate::payload::unix_micros() % 0xffff_ffff
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["herald-loadgen", "run"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(args) => args,
            _ => panic!("not run"),
        }
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let args = run_args(&["-n", "10", "--connections", "20"]);
        assert_eq!(args.connections, 20);
    }

    #[test]
    fn user_scoping_extends_the_default_templates() {
        let args = run_args(&["--user-scoped"]);
        let (sub, publish, body) = args.server.templates(true);
        assert_eq!(sub, "/events?topic={topic}&user={user}");
        assert_eq!(publish, "/publish");
        assert_eq!(body, r#"{"topic":"{topic}","data":{data},"user":"{user}"}"#);
        let (sub, _, body) = args.server.templates(false);
        assert_eq!(
            (sub.as_str(), body.as_str()),
            (SUBSCRIBE_TEMPLATE, PUBLISH_BODY)
        );
    }

    #[test]
    fn options_parse() {
        let args = run_args(&[
            "-n",
            "200",
            "-k",
            "4",
            "-r",
            "50",
            "-d",
            "3s",
            "--warmup",
            "500ms",
            "--source-ips",
            "127.0.0.1-127.0.0.4",
            "--server-pid",
            "1",
            "--server-pid",
            "2",
            "--shard",
            "1/2",
        ]);
        assert_eq!((args.connections, args.topics, args.rate), (200, 4, 50.0));
        assert_eq!(
            (args.duration, args.warmup),
            (Duration::from_secs(3), Duration::from_millis(500))
        );
        assert_eq!(args.server.source_ips.unwrap().len(), 4);
        assert_eq!(args.server.server_pids, [1, 2]);
        assert_eq!((args.shard.index, args.shard.count), (1, 2));
    }
}
