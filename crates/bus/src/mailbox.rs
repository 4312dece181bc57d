//! A subscriber's bounded live buffer, and its overflow policy.
//!
//! The dispatcher offers events without waiting. When the buffer is full the mailbox
//! drops the events that do not fit and every later one and records that it *lagged*; its subscriber
//! drains what is buffered (all older than the loss), then re-reads the log from its last
//! position. So a slow subscriber costs the publisher nothing and loses nothing that is
//! still retained.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use futures_util::task::AtomicWaker;

use crate::{Event, EventId};

#[derive(Debug)]
pub(crate) struct Mailbox {
    /// A std mutex: every critical section is a few pointer moves, never an `.await`.
    state: Mutex<State>,
    /// The reader's waker: woken when the queue turns non-empty, on lag and on close.
    reader: AtomicWaker,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Arc<Event>>,
    /// Last event offered, so a subscriber whose selectors overlap gets each event once.
    last: Option<EventId>,
    lagged: bool,
    closed: bool,
}

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Events were moved out; `lagged` says events after them were dropped.
    Batch { lagged: bool },
    /// The bus closed this mailbox.
    Closed,
}

impl Mailbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            reader: AtomicWaker::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no code panics while holding a mailbox lock")
    }

    /// Offers `run`, consecutive events for the same audience and topic, without
    /// waiting: buffered while there is room, the rest dropped and recorded as lag.
    ///
    /// A subscriber whose selectors overlap is offered the same run once per matching
    /// selector; it keeps the first offer only.
    pub(crate) fn offer(&self, run: &[Arc<Event>]) {
        let Some(newest) = run.last() else {
            return;
        };
        let mut state = self.lock();
        if state.lagged || state.closed || state.last == Some(newest.id()) {
            return;
        }
        state.last = Some(newest.id());
        let room = self.capacity.saturating_sub(state.queue.len());
        let was_empty = state.queue.is_empty();
        state.queue.extend(run.iter().take(room).cloned());
        state.lagged = run.len() > room;
        drop(state);
        // Only the first events wake the reader; it drains the whole queue at once. A
        // full queue has woken it already.
        if was_empty {
            self.reader.wake();
        }
    }

    /// Records that events were lost upstream of this mailbox (the dispatcher lagged).
    pub(crate) fn lag(&self) {
        self.lock().lagged = true;
        self.reader.wake();
    }

    /// Ends the subscriber after what is buffered.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.reader.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Moves every buffered event into `out` and clears the lag flag, reporting it;
    /// `Pending` (with the waker registered) when there is nothing to do yet.
    pub(crate) fn poll_take(
        &self,
        cx: &mut Context<'_>,
        out: &mut VecDeque<Arc<Event>>,
    ) -> Poll<Take> {
        if let Some(take) = self.try_take(out) {
            return Poll::Ready(take);
        }
        self.reader.register(cx.waker());
        // Check again: an offer between the first check and the registration woke nobody.
        match self.try_take(out) {
            Some(take) => Poll::Ready(take),
            None => Poll::Pending,
        }
    }

    fn try_take(&self, out: &mut VecDeque<Arc<Event>>) -> Option<Take> {
        let mut state = self.lock();
        if !state.queue.is_empty() || state.lagged {
            std::mem::swap(out, &mut state.queue);
            let lagged = std::mem::take(&mut state.lagged);
            return Some(Take::Batch { lagged });
        }
        state.closed.then_some(Take::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Draft, Topic};

    impl Mailbox {
        async fn take(&self, out: &mut VecDeque<Arc<Event>>) -> Take {
            std::future::poll_fn(|cx| self.poll_take(cx, out)).await
        }
    }

    fn event(offset: u64) -> Arc<Event> {
        Arc::new(Draft::new(Topic::new("t").unwrap(), "d").into_event(EventId::new(1, offset), 0))
    }

    fn offsets(q: &VecDeque<Arc<Event>>) -> Vec<u64> {
        q.iter().map(|e| e.id().offset()).collect()
    }

    #[tokio::test]
    async fn overflow_keeps_the_prefix_and_reports_lag() {
        let mailbox = Mailbox::new(2);
        for offset in 1..=4 {
            mailbox.offer(&[event(offset)]);
        }
        let mut out = VecDeque::new();
        assert_eq!(mailbox.take(&mut out).await, Take::Batch { lagged: true });
        assert_eq!(offsets(&out), [1, 2]);

        out.clear();
        mailbox.offer(&[event(5)]);
        assert_eq!(mailbox.take(&mut out).await, Take::Batch { lagged: false });
        assert_eq!(offsets(&out), [5]);
    }

    #[tokio::test]
    async fn a_run_that_does_not_fit_keeps_its_prefix() {
        let mailbox = Mailbox::new(3);
        mailbox.offer(&[event(1)]);
        mailbox.offer(&[event(2), event(3), event(4)]);
        mailbox.offer(&[event(5)]);
        let mut out = VecDeque::new();
        assert_eq!(mailbox.take(&mut out).await, Take::Batch { lagged: true });
        assert_eq!(offsets(&out), [1, 2, 3]);
    }

    #[tokio::test]
    async fn the_same_run_is_buffered_once() {
        let mailbox = Mailbox::new(8);
        let run = [event(1), event(2)];
        mailbox.offer(&run);
        mailbox.offer(&run);
        let mut out = VecDeque::new();
        mailbox.take(&mut out).await;
        assert_eq!(offsets(&out), [1, 2]);
    }

    #[tokio::test]
    async fn close_ends_after_the_buffer() {
        let mailbox = Arc::new(Mailbox::new(8));
        mailbox.offer(&[event(1)]);
        mailbox.close();
        let mut out = VecDeque::new();
        assert_eq!(mailbox.take(&mut out).await, Take::Batch { lagged: false });
        assert_eq!(mailbox.take(&mut out).await, Take::Closed);
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken() {
        let mailbox = Arc::new(Mailbox::new(8));
        let reader = {
            let mailbox = Arc::clone(&mailbox);
            tokio::spawn(async move {
                let mut out = VecDeque::new();
                mailbox.take(&mut out).await;
                offsets(&out)
            })
        };
        tokio::task::yield_now().await;
        mailbox.offer(&[event(7)]);
        assert_eq!(reader.await.unwrap(), [7]);
    }
}
