//! [`EventStream`]: a bus [`Subscriber`] as the bytes of a `text/event-stream` body.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use herald_bus::{
    Delivery, Event, Reset, Subscriber,
    control::{self, CONNECTED, RESET},
};
use tokio::time::{Instant, Sleep};

use crate::Frame;

/// A heartbeat: an empty comment, which keeps proxies and browsers from timing out an
/// idle stream and dispatches nothing.
const HEARTBEAT: &[u8] = b":\n\n";

/// Ready events are written together up to this many bytes, so a burst costs one write
/// instead of one per event.
const COALESCE_BYTES: usize = 32 * 1024;

/// How an [`EventStream`] paces itself.
///
/// ```
/// use std::time::Duration;
/// use herald_sse::StreamOptions;
///
/// let options = StreamOptions::default().heartbeat(Duration::from_secs(5));
/// assert_eq!(options.heartbeat_interval(), Duration::from_secs(5));
/// assert_eq!(options.retry_base(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    heartbeat: Duration,
    retry: Duration,
}

impl Default for StreamOptions {
    /// A heartbeat every 15 s and a retry hint of 2 s plus jitter.
    fn default() -> Self {
        Self {
            heartbeat: Self::DEFAULT_HEARTBEAT,
            retry: Self::DEFAULT_RETRY,
        }
    }
}

impl StreamOptions {
    /// Default [`StreamOptions::heartbeat`]: 15 s.
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
    /// Default [`StreamOptions::retry`] base: 2 s.
    pub const DEFAULT_RETRY: Duration = Duration::from_secs(2);

    /// Sends a heartbeat comment at the end of each period of this length in which
    /// nothing else was written.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(1));
        self
    }

    /// Base of the `retry:` hint in the first frame; each stream adds up to half of it
    /// again, so clients of a restarted server do not all come back in one millisecond.
    pub fn retry(mut self, base: Duration) -> Self {
        self.retry = base;
        self
    }

    /// The heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat
    }

    /// The base of the retry hint.
    pub fn retry_base(&self) -> Duration {
        self.retry
    }
}

/// A subscriber as a `text/event-stream` body: a stream of byte chunks.
///
/// The first chunk is a `retry:` hint with jitter and an `event: herald.connected` frame
/// whose data is `{"connection":"<uuid>"}`. Then each [`Delivery`] becomes a frame (an
/// event's frame is encoded once and shared by every stream that sends it); resets are
/// `event: herald.reset` with `{"reason","missed_since"}`. A heartbeat comment is sent
/// at the end of every [`StreamOptions::heartbeat`] period in which nothing else was
/// written, so a stream is never silent for two periods. The stream ends when the subscriber's
/// does (the bus closed), or at the deadline set with [`EventStream::until`].
///
/// Dropping it (the client went away) drops the subscriber, which unsubscribes at once.
pub struct EventStream {
    subscriber: Subscriber,
    first: Option<Bytes>,
    heartbeat: Pin<Box<Sleep>>,
    period: Duration,
    /// Something was written in the current heartbeat period. A flag rather than a timer
    /// reset per write: a delivery costs a store, not a clock read.
    active: bool,
    deadline: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl EventStream {
    /// Streams `subscriber` with `options`.
    pub fn new(subscriber: Subscriber, options: &StreamOptions) -> Self {
        let connection = subscriber.connection();
        let retry = jittered(options.retry, connection.as_uuid().as_u64_pair().1);
        let data = control::connected_data(connection);
        let first = Frame::new(&data)
            .event(CONNECTED)
            .expect("a constant event type is valid")
            .retry(retry)
            .encode();
        Self {
            subscriber,
            first: Some(first),
            heartbeat: Box::pin(tokio::time::sleep(options.heartbeat)),
            period: options.heartbeat,
            active: false,
            deadline: None,
            done: false,
        }
    }

    /// Ends the stream cleanly at `deadline` (for example when the client's token
    /// expires), after the frames already written.
    pub fn until(mut self, deadline: Instant) -> Self {
        self.deadline = Some(Box::pin(tokio::time::sleep_until(deadline)));
        self
    }

    fn rearm_heartbeat(&mut self) {
        let next = Instant::now() + self.period;
        self.heartbeat.as_mut().reset(next);
    }
}

/// `base` plus up to half of it, drawn from `random`, in milliseconds.
fn jittered(base: Duration, random: u64) -> u64 {
    let base = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    base.saturating_add(random % (base / 2 + 1))
}

impl Stream for EventStream {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(first) = this.first.take() {
            this.rearm_heartbeat();
            return Poll::Ready(Some(first));
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.done = true;
            return Poll::Ready(None);
        }
        let mut chunk = Chunk::default();
        while chunk.len() < COALESCE_BYTES {
            match this.subscriber.poll_next_unpin(cx) {
                Poll::Ready(Some(delivery)) => chunk.push(encode(&delivery)),
                Poll::Ready(None) => {
                    this.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if let Some(bytes) = chunk.into_bytes() {
            this.active = true;
            return Poll::Ready(Some(bytes));
        }
        if this.done {
            return Poll::Ready(None);
        }
        while this.heartbeat.as_mut().poll(cx).is_ready() {
            this.rearm_heartbeat();
            if !std::mem::take(&mut this.active) {
                return Poll::Ready(Some(Bytes::from_static(HEARTBEAT)));
            }
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("subscriber", &self.subscriber)
            .field("heartbeat", &self.period)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Frames gathered for one write: the first is kept as is (no copy for the common single
/// event), later ones are appended to a buffer.
#[derive(Default)]
struct Chunk {
    first: Option<Bytes>,
    more: Option<BytesMut>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.more
            .as_ref()
            .map_or_else(|| self.first.as_ref().map_or(0, Bytes::len), BytesMut::len)
    }

    fn push(&mut self, frame: Bytes) {
        match (&self.first, &mut self.more) {
            (None, _) => self.first = Some(frame),
            (Some(_), Some(buf)) => buf.extend_from_slice(&frame),
            (Some(first), None) => {
                let mut buf = BytesMut::with_capacity(first.len() + frame.len() * 4);
                buf.extend_from_slice(first);
                buf.extend_from_slice(&frame);
                self.more = Some(buf);
            }
        }
    }

    fn into_bytes(self) -> Option<Bytes> {
        match self.more {
            Some(buf) => Some(buf.freeze()),
            None => self.first,
        }
    }
}

/// The wire frame of one delivery.
pub fn encode(delivery: &Delivery) -> Bytes {
    match delivery {
        Delivery::Event(event) => event.frame(encode_event),
        Delivery::Reset(reset) => encode_reset(reset),
    }
}

/// The frame of an event: `id`, `event` when it has a type, `retry` when it has a hint,
/// and its data. Prefer [`Event::frame`]`(encode_event)`, which encodes once per event.
///
/// ```
/// use herald_bus::{Draft, EventId, EventName, Topic};
///
/// let event = Draft::new(Topic::new("orders.created")?, "two\nlines")
///     .with_name(EventName::new("created")?)
///     .into_event(EventId::new(0xab, 7), 0);
/// assert_eq!(
///     &herald_sse::encode_event(&event)[..],
///     b"id: ab-7\nevent: created\ndata: two\ndata: lines\n\n"
/// );
/// # Ok::<(), herald_bus::NameError>(())
/// ```
pub fn encode_event(event: &Event) -> Bytes {
    let id = event.id().to_string();
    let mut frame = Frame::new(event.data().as_str())
        .id(&id)
        .expect("an event id has no CR, LF or NUL");
    if let Some(name) = event.name() {
        frame = frame
            .event(name.as_str())
            .expect("an event name has no CR, LF or NUL");
    }
    if let Some(ms) = event.retry() {
        frame = frame.retry(ms);
    }
    frame.encode()
}

/// The frame of a reset notice, with the body [`control::reset_data`] writes.
///
/// ```
/// use herald_bus::{Reset, ResetReason};
///
/// let reset = Reset { reason: ResetReason::Retention, missed_since: "ab-7".into() };
/// assert_eq!(
///     &herald_sse::encode_reset(&reset)[..],
///     &b"event: herald.reset\ndata: {\"reason\":\"retention\",\"missed_since\":\"ab-7\"}\n\n"[..]
/// );
/// ```
pub fn encode_reset(reset: &Reset) -> Bytes {
    let data = control::reset_data(reset);
    Frame::new(&data)
        .event(RESET)
        .expect("a constant event type is valid")
        .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_bus::{Bus, Draft, Selector, Subscription, Topic};

    fn subscribe(bus: &Bus) -> Subscriber {
        bus.subscribe(Subscription::new([Selector::new("t").unwrap()]))
            .unwrap()
    }

    #[test]
    fn jitter_stays_within_half_the_base() {
        let base = Duration::from_millis(2000);
        for random in [0, 1, 999, 1000, 1001, u64::MAX] {
            let ms = jittered(base, random);
            assert!((2000..=3000).contains(&ms), "{ms}");
        }
        assert_eq!(jittered(Duration::ZERO, 12345), 0);
    }

    #[tokio::test]
    async fn first_frame_announces_the_connection_with_a_retry_hint() {
        let bus = Bus::new();
        let sub = subscribe(&bus);
        let connection = sub.connection();
        let mut stream = EventStream::new(sub, &StreamOptions::default());
        let first = stream.next().await.unwrap();
        let text = std::str::from_utf8(&first).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        let ms: u64 = lines[1].strip_prefix("retry: ").unwrap().parse().unwrap();
        assert!((2000..=3000).contains(&ms));
        let want = format!(
            "event: herald.connected\nretry: {ms}\ndata: {{\"connection\":\"{connection}\"}}\n\n"
        );
        assert_eq!(text, want);
    }

    #[tokio::test]
    async fn ready_events_are_coalesced_into_one_chunk() {
        let bus = Bus::new();
        let mut stream = EventStream::new(subscribe(&bus), &StreamOptions::default());
        stream.next().await.unwrap();
        let drafts = (0..3)
            .map(|i| Draft::new(Topic::new("t").unwrap(), i.to_string()))
            .collect();
        let ids = bus.publish_batch(drafts).await.unwrap();
        tokio::task::yield_now().await;
        let chunk = stream.next().await.unwrap();
        let want: String = ids
            .iter()
            .enumerate()
            .map(|(i, id)| format!("id: {id}\ndata: {i}\n\n"))
            .collect();
        assert_eq!(std::str::from_utf8(&chunk).unwrap(), want);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_fill_silence_and_a_deadline_ends_the_stream() {
        let bus = Bus::new();
        let options = StreamOptions::default().heartbeat(Duration::from_secs(15));
        let start = Instant::now();
        let mut stream =
            EventStream::new(subscribe(&bus), &options).until(start + Duration::from_secs(40));
        stream.next().await.unwrap();
        assert_eq!(&stream.next().await.unwrap()[..], HEARTBEAT);
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        assert_eq!(&stream.next().await.unwrap()[..], HEARTBEAT);
        assert!(stream.next().await.is_none(), "ends at the deadline");
        assert_eq!(start.elapsed(), Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_period_with_a_write_has_no_heartbeat() {
        let bus = Bus::new();
        let options = StreamOptions::default().heartbeat(Duration::from_secs(15));
        let start = Instant::now();
        let mut stream = EventStream::new(subscribe(&bus), &options);
        stream.next().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        bus.publish(Draft::new(Topic::new("t").unwrap(), "x"))
            .await
            .unwrap();
        assert!(stream.next().await.unwrap().starts_with(b"id: "));
        // The period that had the event ends at 15 s silently; the next one, empty,
        // ends with a heartbeat at 30 s.
        assert_eq!(&stream.next().await.unwrap()[..], HEARTBEAT);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn closing_the_bus_ends_the_stream() {
        let bus = Bus::new();
        let mut stream = EventStream::new(subscribe(&bus), &StreamOptions::default());
        stream.next().await.unwrap();
        bus.close();
        assert!(stream.next().await.is_none());
    }
}
