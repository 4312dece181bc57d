//! The live subscribers of one bus, indexed by what they may receive, and dispatch.
//!
//! Events for everyone are routed through a selector trie. User- and connection-scoped
//! events are routed through per-user and per-connection lists, so they never touch (or
//! wake) anyone else's subscriber.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::{
    Audience, ConnectionId, Event, EventId, Topic, UserId, log::Filter, mailbox::Mailbox,
    trie::Trie,
};

/// One registered subscriber.
#[derive(Debug)]
pub(crate) struct Member {
    id: u64,
    pub(crate) filter: Arc<Filter>,
    pub(crate) mailbox: Mailbox,
}

#[derive(Debug, Default)]
struct Index {
    everyone: Trie<Arc<Member>>,
    by_user: HashMap<UserId, Vec<Arc<Member>>>,
    by_connection: HashMap<ConnectionId, Vec<Arc<Member>>>,
    members: HashMap<u64, Arc<Member>>,
    closed: bool,
}

#[derive(Debug)]
pub(crate) struct Registry {
    /// Dispatch takes the read side; (un)registering the write side, so a new member
    /// sees either all of an event's dispatch or none of it.
    index: RwLock<Index>,
    next_id: AtomicU64,
    /// Id of the last event dispatched. Written by the dispatcher under the read lock,
    /// read under the write lock, so a registration sees a settled value.
    dispatched_epoch: AtomicU64,
    dispatched_offset: AtomicU64,
}

impl Registry {
    pub(crate) fn new(start: EventId) -> Self {
        Self {
            index: RwLock::default(),
            next_id: AtomicU64::new(1),
            dispatched_epoch: AtomicU64::new(start.epoch()),
            dispatched_offset: AtomicU64::new(start.offset()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .expect("no code panics while holding the registry lock")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .expect("no code panics while holding the registry lock")
    }

    /// Adds a subscriber. Returns it and the id of the last event dispatched before it:
    /// it is offered every later one. `None` once the registry is closed.
    pub(crate) fn register(
        &self,
        filter: Arc<Filter>,
        capacity: usize,
    ) -> Option<(Arc<Member>, EventId)> {
        let member = Arc::new(Member {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            filter,
            mailbox: Mailbox::new(capacity),
        });
        let mut index = self.write();
        if index.closed {
            return None;
        }
        for selector in member.filter.selectors() {
            index
                .everyone
                .insert(selector, member.id, Arc::clone(&member));
        }
        if let Some(user) = member.filter.user() {
            index
                .by_user
                .entry(user.clone())
                .or_default()
                .push(Arc::clone(&member));
        }
        let connection = member.filter.connection();
        index
            .by_connection
            .entry(connection)
            .or_default()
            .push(Arc::clone(&member));
        index.members.insert(member.id, Arc::clone(&member));
        let start = EventId::new(
            self.dispatched_epoch.load(Ordering::Acquire),
            self.dispatched_offset.load(Ordering::Acquire),
        );
        Some((member, start))
    }

    pub(crate) fn unregister(&self, member: &Member) {
        let is_it = |m: &Arc<Member>| m.id == member.id;
        let mut index = self.write();
        if index.members.remove(&member.id).is_none() {
            return;
        }
        for selector in member.filter.selectors() {
            index.everyone.remove(selector, member.id);
        }
        if let Some(user) = member.filter.user() {
            remove_from(&mut index.by_user, user, is_it);
        }
        remove_from(&mut index.by_connection, &member.filter.connection(), is_it);
    }

    /// Offers `events`, in log order, to every subscriber that may receive them. Never
    /// waits.
    ///
    /// Consecutive events for the same topic and audience form a run: the index is
    /// searched once per run and each matching mailbox is locked once per run, not once
    /// per event.
    pub(crate) fn dispatch(&self, events: &[Arc<Event>]) {
        let Some(newest) = events.last() else {
            return;
        };
        let index = self.read();
        for run in events.chunk_by(|a, b| a.topic() == b.topic() && a.audience() == b.audience()) {
            let topic = run[0].topic();
            let offer = |m: &Arc<Member>| m.mailbox.offer(run);
            let offer_if_matching = |m: &Arc<Member>| {
                if m.filter.matches(topic) {
                    m.mailbox.offer(run);
                }
            };
            match run[0].audience() {
                Audience::Everyone => index.everyone.for_each_match(topic, &mut { offer }),
                Audience::User(user) => index
                    .by_user
                    .get(user)
                    .into_iter()
                    .flatten()
                    .for_each(offer_if_matching),
                Audience::Connection(c) => index
                    .by_connection
                    .get(c)
                    .into_iter()
                    .flatten()
                    .for_each(offer_if_matching),
            }
        }
        self.dispatched_epoch
            .store(newest.id().epoch(), Ordering::Release);
        self.dispatched_offset
            .store(newest.id().offset(), Ordering::Release);
    }

    /// Tells every subscriber that events were lost before reaching it.
    pub(crate) fn lag_all(&self) {
        self.read().members.values().for_each(|m| m.mailbox.lag());
    }

    /// Ends every subscriber and refuses new ones.
    pub(crate) fn close(&self) {
        let mut index = self.write();
        index.closed = true;
        index.members.values().for_each(|m| m.mailbox.close());
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.read().members.len()
    }

    /// How many distinct subscribers an everyone-event on `topic` would reach.
    pub(crate) fn subscribers_of(&self, topic: &Topic) -> usize {
        let mut seen = HashSet::new();
        self.read().everyone.for_each_match(topic, &mut |m| {
            seen.insert(m.id);
        });
        seen.len()
    }

    /// Topics some subscriber names exactly.
    pub(crate) fn exact_topics(&self) -> Vec<Topic> {
        self.read().everyone.exact_topics()
    }
}

fn remove_from<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Vec<Arc<Member>>>,
    key: &K,
    is_it: impl Fn(&Arc<Member>) -> bool,
) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|m| !is_it(m));
        if list.is_empty() {
            map.remove(key);
        }
    }
}

/// Removes its member from the registry when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: Arc<Registry>,
    pub(crate) member: Arc<Member>,
}

impl Registration {
    pub(crate) fn new(registry: Arc<Registry>, member: Arc<Member>) -> Self {
        Self { registry, member }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.unregister(&self.member);
    }
}
