//! Fan-out benchmarks: herald-bus next to raw `tokio::sync::broadcast` and
//! `async_broadcast` doing the same deliveries, in the same run.
//!
//! # Groups
//!
//! - `fanout_one_topic/{herald_bus,tokio_broadcast,async_broadcast}/N`: one topic and N
//!   subscribers (1, 100, 1,000, 10,000); every subscriber receives every event.
//! - `fanout_1000_topics_wildcards/{herald_bus,tokio_broadcast,async_broadcast}`: 1,000
//!   topics `t.{i}.x`, one exact subscriber per topic, 50 subscribers on `t.*.x` and 10
//!   on `>`; one burst publishes one event to each topic, round robin.
//! - `publish/herald_bus/N`: the time of one [`Bus::publish`] call with 0 or 1,000
//!   subscribers on the topic. Publishing never waits for subscribers, so the two should
//!   be close; a gap is what the fan-out running beside the publisher costs it. Only the
//!   publish calls are clocked: each burst's fan-out completes off the clock.
//!
//! # Method
//!
//! One iteration is a burst: publish [`BURST`] events, then wait until every subscriber
//! has received its share of them. The clock runs from the first publish to the last
//! delivery. Subscribers are Tokio tasks that count their events; they are created once
//! per sample, outside the clock, and one untimed burst runs first so that every task has
//! been polled and is waiting. Publisher and subscribers all run on one multi-thread
//! runtime with two workers (the bench machine has two cores).
//!
//! Nothing may be dropped: raw channels are sized to hold a burst, herald's default
//! subscriber buffer (1,024) holds one too, and a lagged raw receiver or a herald
//! [`Delivery::Reset`] fails the benchmark instead of being counted as fast.
//!
//! # Running
//!
//! `make bench`, or `cargo bench -p herald-bus --bench fanout`. Pass a filter to run part
//! of it (`-- fanout_one_topic/.*/1000`), `-- --quick` for a rough pass, `-- --test` to
//! check that every benchmark runs once.
//!
//! # Reading
//!
//! Fan-out groups report throughput in elements per second, where an element is one
//! delivery (one event reaching one subscriber). The figure of merit is herald's
//! throughput divided by the faster of the two raw channels at the same parameter; the
//! target is at least 0.5 at 1,000 subscribers on one topic.
//!
//! The raw channels are a floor for the cost of waking receivers, not a competing
//! product: they assign no ids, keep no history, match no selectors (the benchmark wires
//! each subscriber to the right channel by hand), check no audience and never recover a
//! slow receiver. Their messages are an `Arc` holding the same payload allocation as
//! herald's events, and their receivers use the allocation-free `recv` forms.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use futures_util::StreamExt;
use herald_bus::{Bus, Delivery, Draft, Retention, Selector, Subscription, Topic};
use tokio::{runtime::Runtime, sync::Notify, task::JoinHandle};

/// Events per timed burst. Small enough for every channel and herald's default
/// subscriber buffer to hold it, so no implementation ever has to lag.
const BURST: usize = 100;
/// Topics in the mixed group; its burst is one event per topic.
const TOPICS: usize = 1000;
/// Longest wait for one burst before the benchmark is declared stuck.
const STUCK_AFTER: Duration = Duration::from_secs(60);
const PAYLOAD: &str = r#"{"order":7,"status":"shipped"}"#;

/// Which topics a subscriber receives.
#[derive(Debug, Clone, Copy)]
enum Interest {
    /// Exactly topic `t.{i}.x`.
    Topic(usize),
    /// Every topic, through `t.*.x`.
    Pattern,
    /// Every topic, through `>`.
    All,
}

impl Interest {
    fn selector(self) -> Selector {
        let text = match self {
            Self::Topic(i) => topic_name(i),
            Self::Pattern => "t.*.x".to_owned(),
            Self::All => ">".to_owned(),
        };
        Selector::new(&text).expect("benchmark selectors are valid")
    }
}

fn topic_name(i: usize) -> String {
    format!("t.{i}.x")
}

/// Topics, subscribers and burst of one benchmark. Event `n` of a burst goes to topic
/// `n % topics`.
#[derive(Debug)]
struct Scenario {
    topics: usize,
    burst: usize,
    subscribers: Vec<Interest>,
}

impl Scenario {
    fn one_topic(subscribers: usize) -> Self {
        Self::new(1, BURST, vec![Interest::Topic(0); subscribers])
    }

    fn mixed() -> Self {
        let mut subscribers: Vec<Interest> = (0..TOPICS).map(Interest::Topic).collect();
        subscribers.extend([Interest::Pattern; 50]);
        subscribers.extend([Interest::All; 10]);
        Self::new(TOPICS, TOPICS, subscribers)
    }

    fn new(topics: usize, burst: usize, subscribers: Vec<Interest>) -> Self {
        assert!(
            burst.is_multiple_of(topics),
            "every topic gets the same share of a burst"
        );
        Self {
            topics,
            burst,
            subscribers,
        }
    }

    /// Events of one burst that a subscriber with `interest` receives.
    fn share(&self, interest: Interest) -> usize {
        match interest {
            Interest::Topic(_) => self.burst / self.topics,
            Interest::Pattern | Interest::All => self.burst,
        }
    }

    fn deliveries(&self) -> u64 {
        self.subscribers.iter().map(|&i| self.share(i) as u64).sum()
    }

    fn has_wildcards(&self) -> bool {
        self.subscribers
            .iter()
            .any(|i| !matches!(i, Interest::Topic(_)))
    }
}

/// Where subscribers report: how many still miss part of the burst, and why one failed.
#[derive(Debug, Default)]
struct Tally {
    pending: AtomicUsize,
    done: Notify,
    failure: Mutex<Option<String>>,
}

impl Tally {
    fn arm(&self, subscribers: usize) {
        self.pending.store(subscribers, Ordering::Release);
    }

    /// One subscriber has its whole share of the burst.
    fn complete(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A permit is stored if the publisher is not waiting yet, so this is never lost.
            self.done.notify_one();
        }
    }

    fn fail(&self, why: String) {
        self.failure
            .lock()
            .expect("no panic while holding the lock")
            .get_or_insert(why);
        self.done.notify_one();
    }

    /// Waits for every subscriber to complete the burst.
    ///
    /// # Panics
    ///
    /// When a subscriber failed, or the burst did not arrive within [`STUCK_AFTER`].
    async fn wait(&self) {
        if tokio::time::timeout(STUCK_AFTER, self.done.notified())
            .await
            .is_err()
        {
            panic!(
                "{} subscribers still miss events after {STUCK_AFTER:?}",
                self.pending.load(Ordering::Acquire)
            );
        }
        if let Some(why) = self
            .failure
            .lock()
            .expect("no panic while holding the lock")
            .take()
        {
            panic!("{why}");
        }
    }
}

/// Counts one subscriber's events and completes each burst on the tally.
#[derive(Debug)]
struct Counter {
    tally: Arc<Tally>,
    share: usize,
    seen: usize,
}

impl Counter {
    fn new(tally: &Arc<Tally>, share: usize) -> Self {
        Self {
            tally: Arc::clone(tally),
            share,
            seen: 0,
        }
    }

    /// Counts an event whose payload is `data`, read so that the event is touched.
    fn event(&mut self, data: &str) {
        std::hint::black_box(data.len());
        self.seen += 1;
        if self.seen == self.share {
            self.seen = 0;
            self.tally.complete();
        }
    }
}

/// One implementation under test, seen from the publisher.
trait Fanout: Sized + Send + 'static {
    /// Sets up `scenario`'s subscribers as tasks that report to `tally`.
    fn start(scenario: &Scenario, tally: &Arc<Tally>) -> (Self, Vec<JoinHandle<()>>);

    /// Publishes one event to topic `topic`.
    fn publish(&mut self, topic: usize) -> impl Future<Output = ()> + Send;
}

/// The message raw channels carry: what herald shares as `Arc<Event>`, minus ids.
#[derive(Debug)]
struct Message {
    topic: usize,
    data: Box<str>,
}

fn message(topic: usize) -> Arc<Message> {
    Arc::new(Message {
        topic,
        data: PAYLOAD.into(),
    })
}

struct Herald {
    bus: Bus,
    topics: Vec<Topic>,
}

impl Fanout for Herald {
    fn start(scenario: &Scenario, tally: &Arc<Tally>) -> (Self, Vec<JoinHandle<()>>) {
        // Bounded history so 1,000 topics do not retain a million events over a run.
        let bus = Bus::builder()
            .retention(Retention {
                max_events: 128,
                ..Retention::default()
            })
            .build();
        let topics = (0..scenario.topics)
            .map(|i| Topic::new(&topic_name(i)).expect("benchmark topics are valid"))
            .collect();
        let tasks = scenario
            .subscribers
            .iter()
            .map(|&interest| {
                let mut subscriber = bus
                    .subscribe(Subscription::new([interest.selector()]))
                    .expect("the bus is open");
                let mut counter = Counter::new(tally, scenario.share(interest));
                tokio::spawn(async move {
                    while let Some(delivery) = subscriber.next().await {
                        match delivery {
                            Delivery::Event(event) => counter.event(event.data().as_str()),
                            Delivery::Reset(reset) => {
                                return counter
                                    .tally
                                    .fail(format!("herald subscriber was reset: {reset:?}"));
                            }
                        }
                    }
                })
            })
            .collect();
        (Self { bus, topics }, tasks)
    }

    async fn publish(&mut self, topic: usize) {
        let draft = Draft::new(self.topics[topic].clone(), PAYLOAD);
        self.bus.publish(draft).await.expect("publish is accepted");
    }
}

/// One channel per topic for exact subscribers, plus one firehose for wildcard
/// subscribers when there are any; the publisher sends each event to both.
struct TokioBroadcast {
    topics: Vec<tokio::sync::broadcast::Sender<Arc<Message>>>,
    firehose: Option<tokio::sync::broadcast::Sender<Arc<Message>>>,
}

impl Fanout for TokioBroadcast {
    fn start(scenario: &Scenario, tally: &Arc<Tally>) -> (Self, Vec<JoinHandle<()>>) {
        use tokio::sync::broadcast::{self, error::RecvError};

        let per_topic = scenario.burst / scenario.topics;
        let topics: Vec<broadcast::Sender<Arc<Message>>> = (0..scenario.topics)
            .map(|_| broadcast::channel(per_topic).0)
            .collect();
        let firehose = scenario
            .has_wildcards()
            .then(|| broadcast::channel(scenario.burst).0);
        let tasks = scenario
            .subscribers
            .iter()
            .map(|&interest| {
                let mut receiver = match (interest, &firehose) {
                    (Interest::Topic(i), _) => topics[i].subscribe(),
                    (_, Some(all)) => all.subscribe(),
                    (_, None) => unreachable!("wildcard subscribers have a firehose"),
                };
                let mut counter = Counter::new(tally, scenario.share(interest));
                tokio::spawn(async move {
                    loop {
                        match receiver.recv().await {
                            Ok(message) => counter.event(&message.data),
                            Err(RecvError::Closed) => return,
                            Err(RecvError::Lagged(n)) => {
                                return counter.tally.fail(format!("tokio receiver lagged by {n}"));
                            }
                        }
                    }
                })
            })
            .collect();
        (Self { topics, firehose }, tasks)
    }

    async fn publish(&mut self, topic: usize) {
        let message = message(topic);
        if let Some(all) = &self.firehose {
            all.send(Arc::clone(&message))
                .expect("the firehose has a subscriber");
        }
        self.topics[message.topic]
            .send(message)
            .expect("every topic has a subscriber");
    }
}

/// The same wiring as [`TokioBroadcast`], on `async_broadcast` channels.
struct AsyncBroadcast {
    topics: Vec<AsyncChannel>,
    firehose: Option<AsyncChannel>,
}

/// An `async_broadcast` channel, held open by an inactive receiver (which holds no
/// messages) until its subscribers join; every channel of a scenario gets at least one.
struct AsyncChannel {
    sender: async_broadcast::Sender<Arc<Message>>,
    _open: async_broadcast::InactiveReceiver<Arc<Message>>,
}

impl AsyncChannel {
    fn new(capacity: usize) -> Self {
        let (mut sender, receiver) = async_broadcast::broadcast(capacity);
        // Never make the publisher wait; an overwritten message fails the benchmark.
        sender.set_overflow(true);
        Self {
            sender,
            _open: receiver.deactivate(),
        }
    }

    fn send(&self, message: Arc<Message>) {
        match self.sender.try_broadcast(message) {
            Ok(None) => {}
            Ok(Some(_)) => panic!("async_broadcast overwrote a message nobody had received"),
            Err(error) => panic!("async_broadcast refused a message: {error}"),
        }
    }
}

impl Fanout for AsyncBroadcast {
    fn start(scenario: &Scenario, tally: &Arc<Tally>) -> (Self, Vec<JoinHandle<()>>) {
        use async_broadcast::RecvError;

        let per_topic = scenario.burst / scenario.topics;
        let topics: Vec<_> = (0..scenario.topics)
            .map(|_| AsyncChannel::new(per_topic))
            .collect();
        let firehose = scenario
            .has_wildcards()
            .then(|| AsyncChannel::new(scenario.burst));
        let tasks = scenario
            .subscribers
            .iter()
            .map(|&interest| {
                let mut receiver = match (interest, &firehose) {
                    (Interest::Topic(i), _) => topics[i].sender.new_receiver(),
                    (_, Some(all)) => all.sender.new_receiver(),
                    (_, None) => unreachable!("wildcard subscribers have a firehose"),
                };
                let mut counter = Counter::new(tally, scenario.share(interest));
                tokio::spawn(async move {
                    loop {
                        match receiver.recv_direct().await {
                            Ok(message) => counter.event(&message.data),
                            Err(RecvError::Closed) => return,
                            Err(RecvError::Overflowed(n)) => {
                                return counter
                                    .tally
                                    .fail(format!("async_broadcast receiver lost {n}"));
                            }
                        }
                    }
                })
            })
            .collect();
        (Self { topics, firehose }, tasks)
    }

    async fn publish(&mut self, topic: usize) {
        let message = message(topic);
        if let Some(all) = &self.firehose {
            all.send(Arc::clone(&message));
        }
        self.topics[message.topic].send(message);
    }
}

/// Publishes one burst and waits until every subscriber has received its share.
async fn burst<F: Fanout>(fanout: &mut F, scenario: &Scenario, tally: &Tally) {
    tally.arm(scenario.subscribers.len());
    for n in 0..scenario.burst {
        fanout.publish(n % scenario.topics).await;
    }
    tally.wait().await;
}

/// Times `iters` bursts of `scenario` on `F`, set up and torn down outside the clock.
async fn measure<F: Fanout>(scenario: Arc<Scenario>, iters: u64) -> Duration {
    on_workers(async move {
        let tally = Arc::new(Tally::default());
        let (mut fanout, subscribers) = F::start(&scenario, &tally);
        burst(&mut fanout, &scenario, &tally).await;
        let start = Instant::now();
        for _ in 0..iters {
            burst(&mut fanout, &scenario, &tally).await;
        }
        let elapsed = start.elapsed();
        stop(fanout, subscribers).await;
        elapsed
    })
    .await
}

/// Times `iters` calls of [`Bus::publish`] to one topic with `subscribers` on it.
///
/// Publishes go in bursts of [`BURST`], and each burst's fan-out completes off the clock
/// before the next burst starts; the clock sees only the publish calls. Published back
/// to back instead, 1,000 subscribers cannot keep up with the publisher, and the number
/// would measure catch-up from history rather than publishing.
async fn publish_latency(subscribers: usize, iters: u64) -> Duration {
    on_workers(async move {
        let scenario = Scenario::one_topic(subscribers);
        let tally = Arc::new(Tally::default());
        let (mut herald, tasks) = Herald::start(&scenario, &tally);
        let (mut elapsed, mut left) = (Duration::ZERO, iters);
        let mut first = true;
        while left > 0 {
            // The first burst is off the clock: it meets subscriber tasks never polled.
            let timed = if first { 0 } else { left.min(BURST as u64) };
            left -= timed;
            first = false;
            tally.arm(subscribers);
            let start = Instant::now();
            for _ in 0..timed {
                herald.publish(0).await;
            }
            elapsed += start.elapsed();
            // Fill the burst off the clock, so every subscriber completes its share.
            for _ in timed..BURST as u64 {
                herald.publish(0).await;
            }
            if subscribers > 0 {
                tally.wait().await;
            }
        }
        stop(herald, tasks).await;
        elapsed
    })
    .await
}

/// Runs `job` as a task, so that the runtime's two workers are the only busy threads,
/// and passes on its panic.
async fn on_workers<T: Send + 'static>(job: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(job)
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// Closes the channels (or the bus), which ends every subscriber task, and waits for them.
async fn stop<F: Fanout>(fanout: F, subscribers: Vec<JoinHandle<()>>) {
    drop(fanout);
    for subscriber in subscribers {
        subscriber.await.expect("subscriber tasks do not panic");
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime starts")
}

fn compare(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    id: impl Fn(&str) -> BenchmarkId,
    scenario: Scenario,
) {
    group.throughput(Throughput::Elements(scenario.deliveries()));
    let scenario = Arc::new(scenario);
    group.bench_function(id("herald_bus"), |b| {
        b.to_async(rt)
            .iter_custom(|iters| measure::<Herald>(Arc::clone(&scenario), iters));
    });
    group.bench_function(id("tokio_broadcast"), |b| {
        b.to_async(rt)
            .iter_custom(|iters| measure::<TokioBroadcast>(Arc::clone(&scenario), iters));
    });
    group.bench_function(id("async_broadcast"), |b| {
        b.to_async(rt)
            .iter_custom(|iters| measure::<AsyncBroadcast>(Arc::clone(&scenario), iters));
    });
}

fn fanout_one_topic(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fanout_one_topic");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    for subscribers in [1, 100, 1000, 10_000] {
        if subscribers >= 10_000 {
            // About 0.1 s a burst: few, equal samples keep this near five seconds.
            group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(4));
        }
        let id = |name: &str| BenchmarkId::new(name, subscribers);
        compare(&mut group, &rt, id, Scenario::one_topic(subscribers));
    }
    group.finish();
}

fn fanout_mixed(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fanout_1000_topics_wildcards");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    compare(
        &mut group,
        &rt,
        |name: &str| BenchmarkId::from_parameter(name),
        Scenario::mixed(),
    );
    group.finish();
}

fn publish(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("publish");
    // Criterion sizes samples from the wall time of its warm-up, off-clock fan-out
    // included, so these budgets bound the wall time, not the clocked time.
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for subscribers in [0, 1000] {
        group.bench_with_input(
            BenchmarkId::new("herald_bus", subscribers),
            &subscribers,
            |b, &n| {
                b.to_async(&rt)
                    .iter_custom(|iters| publish_latency(n, iters));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fanout_one_topic, fanout_mixed, publish);
criterion_main!(benches);
