//! Property test: random interleavings of publish, subscribe, resume, slow consumption,
//! unsubscribe and retention expiry never break order, never duplicate, and never lose
//! an event without a reset.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use herald_bus::{
    Audience, Bus, Delivery, Draft, EventId, Filter, ResetReason, Resume, Retention, Subscriber,
    Subscription, UserId,
};
use proptest::prelude::*;
use support::{selectors, topic};

const TOPICS: [&str; 4] = ["a.x", "a.y", "b", "c.d.e"];
const SELECTORS: [&str; 6] = ["a.*", "a.>", "b", ">", "c.*.e", "a.x"];
const USERS: [&str; 2] = ["u0", "u1"];

#[derive(Debug, Clone)]
enum Op {
    Publish {
        topic: usize,
        audience: usize,
        count: usize,
    },
    Subscribe {
        selectors: Vec<usize>,
        user: Option<usize>,
        resume: ResumeChoice,
    },
    Consume {
        sub: usize,
        n: usize,
    },
    Drop {
        sub: usize,
    },
    Sleep {
        ms: u64,
    },
}

#[derive(Debug, Clone)]
enum ResumeChoice {
    Live,
    After(usize),
    Unknown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..TOPICS.len(), 0..4usize, 1..4usize).prop_map(|(topic, audience, count)| Op::Publish { topic, audience, count }),
        2 => (
            prop::collection::vec(0..SELECTORS.len(), 1..3),
            prop::option::of(0..USERS.len()),
            prop_oneof![Just(ResumeChoice::Live), (0..40usize).prop_map(ResumeChoice::After), Just(ResumeChoice::Unknown)],
        )
            .prop_map(|(selectors, user, resume)| Op::Subscribe { selectors, user, resume }),
        4 => (0..8usize, 1..12usize).prop_map(|(sub, n)| Op::Consume { sub, n }),
        1 => (0..8usize).prop_map(|sub| Op::Drop { sub }),
        1 => (1..400u64).prop_map(|ms| Op::Sleep { ms }),
    ]
}

/// What the checker needs to know of one published event.
struct Published {
    id: EventId,
    draft: Draft,
}

struct Tracked {
    sub: Subscriber,
    filter: Filter,
    /// Every admitted event after this offset is owed (unless a reset says otherwise).
    pos: u64,
    /// A reset arrived since `pos` moved, so events may be missing before the next one.
    excused: bool,
    /// For a live subscription, the head when it subscribed: it may start earlier.
    live_head: Option<u64>,
    retention_resets: usize,
}

impl Tracked {
    fn admitted_between<'a>(
        &self,
        log: &'a [Published],
        lo: u64,
        hi: u64,
    ) -> impl Iterator<Item = &'a Published> {
        let filter = self.filter.clone();
        log.iter().filter(move |p| {
            let o = p.id.offset();
            o > lo
                && o < hi
                && filter.matches(p.draft.topic())
                && p.draft
                    .audience()
                    .includes(filter.user(), filter.connection())
        })
    }

    fn check(&mut self, delivery: Delivery, log: &[Published]) {
        match delivery {
            Delivery::Reset(reset) => {
                if reset.reason == ResetReason::Retention {
                    self.retention_resets += 1;
                }
                self.excused = true;
            }
            Delivery::Event(event) => {
                let offset = event.id().offset();
                assert!(
                    self.filter.admits(&event),
                    "delivered an event not admitted: {event:?}"
                );
                if let Some(head) = self.live_head.take() {
                    // A live subscriber starts somewhere at or before the head it saw.
                    self.pos = self.pos.min(head).min(offset - 1);
                }
                assert!(
                    offset > self.pos,
                    "order/duplicate: {offset} after {}",
                    self.pos
                );
                if !self.excused {
                    let missed: Vec<u64> = self
                        .admitted_between(log, self.pos, offset)
                        .map(|p| p.id.offset())
                        .collect();
                    assert!(
                        missed.is_empty(),
                        "silently lost {missed:?} before {offset}"
                    );
                }
                self.pos = offset;
                self.excused = false;
            }
        }
    }
}

async fn drain(tracked: &mut Tracked, log: &[Published], max: usize) {
    for _ in 0..max {
        match tokio::time::timeout(Duration::from_millis(5), tracked.sub.next()).await {
            Ok(Some(delivery)) => tracked.check(delivery, log),
            Ok(None) => panic!("stream ended while the bus is open"),
            Err(_) => return,
        }
    }
}

async fn run(ops: Vec<Op>, small_retention: bool, buffer: usize) {
    let retention = if small_retention {
        Retention {
            max_events: 6,
            max_age: Duration::from_millis(500),
        }
    } else {
        Retention {
            max_events: 100_000,
            max_age: Duration::from_secs(3600),
        }
    };
    let bus = Bus::builder()
        .retention(retention)
        .subscriber_buffer(buffer)
        .replay_page(3)
        .build();
    let mut log: Vec<Published> = Vec::new();
    let mut subs: Vec<Tracked> = Vec::new();
    for op in ops {
        match op {
            Op::Publish {
                topic: t,
                audience,
                count,
            } => {
                let audience = match audience {
                    0 | 1 => Audience::Everyone,
                    a => Audience::User(UserId::new(USERS[a - 2]).unwrap()),
                };
                let drafts: Vec<Draft> = (0..count)
                    .map(|i| {
                        Draft::new(
                            topic(TOPICS[(t + i) % TOPICS.len()]),
                            format!("{}", log.len() + i),
                        )
                        .with_audience(audience.clone())
                    })
                    .collect();
                let ids = bus.publish_batch(drafts.clone()).await.unwrap();
                log.extend(
                    ids.into_iter()
                        .zip(drafts)
                        .map(|(id, draft)| Published { id, draft }),
                );
            }
            Op::Subscribe {
                selectors: chosen,
                user,
                resume,
            } => {
                let patterns: Vec<&str> = chosen.iter().map(|&i| SELECTORS[i]).collect();
                let user = user.map(|u| UserId::new(USERS[u]).unwrap());
                let head = log.last().map_or(0, |p| p.id.offset());
                let (resume, pos, live_head) = match resume {
                    ResumeChoice::Live => (Resume::Live, head, Some(head)),
                    ResumeChoice::After(k) if k < log.len() => {
                        (Resume::After(log[k].id), log[k].id.offset(), None)
                    }
                    ResumeChoice::After(_) | ResumeChoice::Unknown => {
                        (Resume::from_last_event_id("junk"), 0, None)
                    }
                };
                let unknown = matches!(resume, Resume::Unknown(_));
                let mut subscription = Subscription::new(selectors(&patterns)).with_resume(resume);
                if let Some(u) = &user {
                    subscription = subscription.with_user(u.clone());
                }
                let sub = bus.subscribe(subscription).unwrap();
                let filter = Filter::new(selectors(&patterns), user, sub.connection());
                let mut tracked = Tracked {
                    sub,
                    filter,
                    pos,
                    excused: false,
                    live_head,
                    retention_resets: 0,
                };
                if unknown {
                    let first = tracked.sub.next().await.unwrap();
                    assert!(
                        matches!(first, Delivery::Reset(ref r) if r.reason == ResetReason::UnknownId),
                        "{first:?}"
                    );
                    tracked.excused = true;
                }
                subs.push(tracked);
            }
            Op::Consume { sub, n } => {
                if let Some(tracked) = subs.get_mut(sub) {
                    drain(tracked, &log, n).await;
                }
            }
            Op::Drop { sub } => {
                if sub < subs.len() {
                    subs.swap_remove(sub);
                }
            }
            Op::Sleep { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }
    for tracked in &mut subs {
        drain(tracked, &log, usize::MAX).await;
        if !tracked.excused {
            let owed: Vec<u64> = tracked
                .admitted_between(&log, tracked.pos, u64::MAX)
                .map(|p| p.id.offset())
                .collect();
            assert!(owed.is_empty(), "never delivered {owed:?}");
        }
        if !small_retention {
            assert_eq!(
                tracked.retention_resets, 0,
                "a reset although nothing left retention"
            );
        }
    }
    assert_eq!(
        bus.metrics().subscribers,
        subs.len(),
        "dropped subscribers are gone"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_reorder_no_duplicate_no_silent_loss(
        ops in prop::collection::vec(op(), 1..80),
        small_retention: bool,
        buffer in 1..6usize,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        runtime.block_on(run(ops, small_retention, buffer));
    }
}
