//! `herald-loadgen run`: connect, (warm up, publish, drain), measure, report.

use std::sync::Arc;
use std::time::Duration;

use herald_bus::Bus;
use serde_json::json;
use tokio::time::Instant;

use crate::cli::RunArgs;
use crate::fleet::{End, HttpSetup, Member, Outcome};
use crate::publisher::{Pace, Published, Sink, publish};
use crate::report::{Connections, Delivery, Resources, RunReport};
use crate::resources::{ProcSample, raise_nofile_limit};
use crate::{Error, Fleet, Plan, Recorder, Summary, SyncDir, Target, Template};

/// How long shards wait for each other's files (connecting 19,000 takes a while).
const SHARD_WAIT: Duration = Duration::from_secs(600);

/// Resource readings at the points a run measures.
#[derive(Debug, Default, Clone, Copy)]
struct Readings {
    before: ProcSample,
    connected: ProcSample,
    window_start: ProcSample,
    end: ProcSample,
}

/// Runs the `run` command.
///
/// # Errors
///
/// Bad options, an unreachable server, or a shard hand-over that times out.
/// Connection failures and delivery anomalies are not errors: they are in
/// the report.
pub async fn run(args: RunArgs) -> Result<RunReport, Error> {
    let file_limit = raise_nofile_limit().ok();
    let run_id = args.server.run_id();
    let users = args.user_scoped.then_some(args.users_per_topic);
    let plan = Arc::new(Plan::new(
        &Template::parse(&args.topic_template)?,
        &run_id,
        args.topics,
        users,
    ));
    let (subscribe, publish_path, publish_body) = args.server.templates(args.user_scoped);
    let (subscribe, publish_path, publish_body) = (
        Template::parse(&subscribe)?,
        Template::parse(&publish_path)?,
        Template::parse(&publish_body)?,
    );
    let shard = args.shard;
    let sync = match (&args.sync_dir, shard.count) {
        (_, 1) => None,
        (Some(dir), _) => Some(SyncDir::new(dir, shard)),
        (None, _) => {
            return Err(Error::Invalid {
                what: "shard",
                reason: "--shard I/N with N > 1 needs --sync-dir".into(),
            });
        }
    };
    let publishes = shard.is_leader() && !args.idle && args.rate > 0.0;
    let members: Vec<Member> = (0..args.connections)
        .filter(|&c| shard.owns(c))
        .map(|connection| Member {
            connection,
            ..Member::default()
        })
        .collect();
    let requested = members.len();

    let bus = args.in_process.then(Bus::new);
    let server_pids = match (&bus, shard.is_leader()) {
        (Some(_), _) => vec![std::process::id()],
        (None, true) => args.server.server_pids.clone(),
        (None, false) => Vec::new(),
    };
    let target = match bus {
        Some(_) => None,
        None => Some(Target::resolve(&args.server.url).await?),
    };
    // Made before the first reading, so its histograms do not count as
    // memory per connection.
    let recorder = Arc::new(Recorder::default());
    let mut server = Readings::default();
    let mut own = Readings::default();
    let read_server = |pids: &[u32]| -> Result<ProcSample, Error> {
        if pids.is_empty() {
            Ok(ProcSample::default())
        } else {
            ProcSample::read_all(pids)
        }
    };
    server.before = read_server(&server_pids)?;
    own.before = ProcSample::read(None)?;
    if let Some(sync) = &sync {
        if shard.is_leader() {
            sync.begin().await?
        } else {
            sync.wait_begin(SHARD_WAIT).await?
        }
    }

    let mut fleet = match (&bus, &target) {
        (Some(bus), _) => Fleet::bus(bus, &plan, members, &recorder)?,
        (None, Some(target)) => {
            let setup = HttpSetup {
                target: target.clone(),
                subscribe,
                sources: args.server.source_ips.clone(),
                concurrency: args.server.connect_concurrency,
                timeout: args.server.connect_timeout,
            };
            Fleet::http(Arc::new(setup), &plan, members, &recorder)
        }
        (None, None) => unreachable!("a run has a bus or a target"),
    };
    let opened = fleet.wait_connected().await;
    if opened.opened == 0 && requested > 0 {
        return Err(Error::Protocol(format!(
            "no connection could be opened: {:?}",
            opened.failures
        )));
    }
    let mut total_connected = opened.opened;
    if let Some(sync) = &sync {
        sync.ready(opened.opened).await?;
        if shard.is_leader() {
            total_connected += sync.wait_ready(SHARD_WAIT).await?;
        }
    }
    tokio::time::sleep(args.settle).await;
    server.connected = read_server(&server_pids)?;
    own.connected = ProcSample::read(None)?;

    let deliveries_at_start;
    let published: Published;
    if publishes {
        let sink = match (&bus, target) {
            (Some(bus), _) => Sink::bus(bus.clone(), &plan)?,
            (None, Some(target)) if args.server.custom_publish() => {
                Sink::templated(target, publish_path, publish_body, args.publishers)?
            }
            (None, Some(target)) => Sink::herald(&target)?,
            (None, None) => unreachable!("a run has a bus or a target"),
        };
        let pace = Pace {
            rate: args.rate,
            warmup: args.warmup,
            duration: args.duration,
            workers: args.publishers,
            data_bytes: args.server.data_bytes,
        };
        let start = Instant::now();
        let publisher = spawn_publisher(publish(Arc::new(sink), Arc::clone(&plan), pace, start))?;
        tokio::time::sleep_until(start + args.warmup).await;
        server.window_start = read_server(&server_pids)?;
        own.window_start = ProcSample::read(None)?;
        deliveries_at_start = recorder.deliveries();
        published = publisher.await.expect("publisher panicked");
        if let Some(sync) = &sync {
            sync.published(&published.per_stream).await?;
        }
        fleet.drain(&published.per_stream, args.drain).await;
    } else {
        server.window_start = read_server(&server_pids)?;
        own.window_start = ProcSample::read(None)?;
        deliveries_at_start = recorder.deliveries();
        let per_stream = match &sync {
            Some(sync) if !shard.is_leader() && !args.idle => {
                sync.wait_published(SHARD_WAIT).await?
            }
            _ => {
                tokio::time::sleep(args.duration).await;
                vec![0; plan.streams()]
            }
        };
        if let Some(sync) = sync.as_ref().filter(|_| shard.is_leader()) {
            sync.published(&per_stream).await?;
        }
        fleet.drain(&per_stream, args.drain).await;
        published = Published {
            per_stream,
            measured: 0,
            latency: crate::receiver::histogram(),
            errors: 0,
            first_error: None,
            late: 0,
        };
    }
    let window_deliveries = recorder.deliveries() - deliveries_at_start;
    server.end = read_server(&server_pids)?;
    own.end = ProcSample::read(None)?;
    let outcomes = fleet.stop().await;

    let mut connections = Connections {
        requested,
        opened: opened.opened,
        failures: opened.failures,
        connect: Summary::of(&opened.connect),
        open_all_s: opened.elapsed.as_secs_f64(),
        ..Connections::default()
    };
    let delivery = tally(outcomes, &published.per_stream, &mut connections);
    // A shard's server figures count every shard's connections and deliveries;
    // deliveries of the others are taken to be proportional to their connections.
    let scale = total_connected as f64 / opened.opened.max(1) as f64;
    let server_report = (!server_pids.is_empty()).then(|| {
        resources(
            server_pids,
            &server,
            total_connected,
            window_deliveries as f64 * scale,
        )
    });
    let generator = resources(
        vec![std::process::id()],
        &own,
        opened.opened,
        window_deliveries as f64,
    );
    let ok = delivery.is_clean() && connections.closed_early == 0 && connections.stream_errors == 0;
    let settings = [
        ("connections", json!(args.connections)),
        ("topics", json!(args.topics.max(1))),
        ("streams", json!(plan.streams())),
        ("users_per_topic", json!(users)),
        ("rate_per_s", json!(if publishes { args.rate } else { 0.0 })),
        ("warmup_s", json!(args.warmup.as_secs_f64())),
        ("duration_s", json!(args.duration.as_secs_f64())),
        ("data_bytes", json!(args.server.data_bytes)),
        (
            "subscribe_template",
            json!(args.server.templates(args.user_scoped).0),
        ),
        ("run_id", json!(run_id)),
        (
            "source_ips",
            json!(args.server.source_ips.as_ref().map_or(1, |s| s.len())),
        ),
    ];
    Ok(RunReport {
        target: if args.in_process {
            "in-process".into()
        } else {
            args.server.url.clone()
        },
        shard: shard.to_string(),
        settings: settings.into_iter().collect(),
        file_limit,
        connections,
        published: published.per_stream.iter().sum(),
        published_measured: published.measured,
        publish_errors: published.errors,
        publish_error: published.first_error,
        publish_late: published.late,
        publish_latency: Summary::of(&published.latency),
        deliveries_per_s: delivery.tally.measured as f64 / args.duration.as_secs_f64().max(1e-9),
        delivery,
        latency: Summary::of(&recorder.latency()),
        server: server_report,
        generator,
        ok,
    })
}

/// Closes every subscriber's check and sums the results.
fn tally(outcomes: Vec<Outcome>, per_stream: &[u64], connections: &mut Connections) -> Delivery {
    let mut delivery = Delivery::default();
    for outcome in outcomes {
        match &outcome.end {
            End::NotConnected => continue,
            End::Closed => connections.closed_early += 1,
            End::Failed(e) => {
                connections.stream_errors += 1;
                connections.stream_error.get_or_insert_with(|| e.clone());
            }
            End::Stopped => {}
        }
        let published = per_stream
            .get(outcome.receiver.stream())
            .copied()
            .unwrap_or(0);
        let (counts, tally) = outcome.receiver.finish(published);
        delivery.add(&counts, &tally, published);
    }
    delivery
}

/// Memory per connection and CPU per delivery from readings.
fn resources(pids: Vec<u32>, r: &Readings, connections: usize, deliveries: f64) -> Resources {
    let cpu_s = r.end.cpu_seconds_since(&r.window_start);
    let grown = r.connected.rss_kib as f64 - r.before.rss_kib as f64;
    Resources {
        pids,
        rss_before_kib: r.before.rss_kib,
        rss_connected_kib: r.connected.rss_kib,
        rss_end_kib: r.end.rss_kib,
        memory_per_connection_bytes: (connections > 0).then(|| grown * 1024.0 / connections as f64),
        cpu_s,
        cpu_s_per_1000_deliveries: (deliveries > 0.0).then(|| cpu_s / deliveries * 1000.0),
    }
}

/// Runs `publishing` on a thread and runtime of its own. This process also drives
/// thousands of receiving connections; on their runtime a publish would wait its turn
/// behind them, and the publish round trip would measure this generator, not the
/// server.
fn spawn_publisher(
    publishing: impl Future<Output = Published> + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<Published>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the publisher's runtime", e))?;
    let (done, published) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("publisher".into())
        .spawn(move || {
            let _ = done.send(runtime.block_on(publishing));
        })
        .map_err(|e| Error::io("starting the publisher's thread", e))?;
    Ok(published)
}
