//! Which stream each connection follows: topics, users, names.
//!
//! A *stream* is what one sequence of numbers runs over: a topic, or with
//! user-scoped events a (topic, user) pair. Connection `c` follows topic
//! `k = c % topics` and, when user-scoped, user slot `j = (c / topics) %
//! users_per_topic`; its stream is `k * users_per_topic + j`. The publisher
//! numbers each stream's events `0, 1, 2, …`.

use crate::template::{Template, Vars};

/// The streams of a run and their names.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    topics: Vec<String>,
    /// Users per topic; 1 without user scoping.
    users_per_topic: usize,
    /// One user name per stream (empty without user scoping).
    users: Vec<String>,
    run: String,
}

impl Plan {
    /// `topics` topics named by `topic` (expanded with `{k}` and `{run}`), and
    /// `users_per_topic` users each when events are user-scoped.
    pub(crate) fn new(
        topic: &Template,
        run: &str,
        topics: usize,
        users_per_topic: Option<usize>,
    ) -> Self {
        let topics: Vec<String> = (0..topics.max(1))
            .map(|k| {
                topic.expand(&Vars {
                    k,
                    run,
                    ..Vars::default()
                })
            })
            .collect();
        let per_topic = users_per_topic.unwrap_or(1).max(1);
        let users = (0..topics.len() * per_topic)
            .map(|s| match users_per_topic {
                Some(_) => format!("u{}-{}", s / per_topic, s % per_topic),
                None => String::new(),
            })
            .collect();
        Self {
            topics,
            users_per_topic: per_topic,
            users,
            run: run.to_owned(),
        }
    }

    /// How many streams.
    pub(crate) fn streams(&self) -> usize {
        self.users.len()
    }

    /// The stream connection `c` follows.
    pub(crate) fn stream_of(&self, connection: usize) -> usize {
        let k = connection % self.topics.len();
        let j = (connection / self.topics.len()) % self.users_per_topic;
        k * self.users_per_topic + j
    }

    /// The topic index of `stream`.
    pub(crate) fn topic_index(&self, stream: usize) -> usize {
        stream / self.users_per_topic
    }

    /// The topic name of `stream`.
    pub(crate) fn topic(&self, stream: usize) -> &str {
        &self.topics[self.topic_index(stream)]
    }

    /// The user of `stream` (empty without user scoping).
    pub(crate) fn user(&self, stream: usize) -> &str {
        &self.users[stream]
    }

    /// Template values for `stream`, with `data` as `{data}`.
    pub(crate) fn vars<'a>(&'a self, stream: usize, data: &'a str) -> Vars<'a> {
        Vars {
            topic: self.topic(stream),
            k: self.topic_index(stream),
            user: self.user(stream),
            data,
            run: &self.run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(topics: usize, users: Option<usize>) -> Plan {
        Plan::new(&Template::parse("t.{run}.{k}").unwrap(), "r", topics, users)
    }

    #[test]
    fn without_users_a_stream_is_a_topic() {
        let plan = plan(4, None);
        assert_eq!(plan.streams(), 4);
        assert_eq!(plan.stream_of(6), 2);
        assert_eq!((plan.topic(2), plan.user(2)), ("t.r.2", ""));
    }

    #[test]
    fn users_spread_over_each_topic() {
        let plan = plan(2, Some(3));
        let streams: Vec<usize> = (0..8).map(|c| plan.stream_of(c)).collect();
        // c: 0→(k0,j0) 1→(k1,j0) 2→(k0,j1) 3→(k1,j1) 4→(k0,j2) 5→(k1,j2) 6→(k0,j0)…
        assert_eq!(streams, [0, 3, 1, 4, 2, 5, 0, 3]);
        assert_eq!((plan.topic(4), plan.user(4)), ("t.r.1", "u1-1"));
        let vars = plan.vars(4, "{}");
        assert_eq!(
            (vars.k, vars.topic, vars.user, vars.run),
            (1, "t.r.1", "u1-1", "r")
        );
    }

    #[test]
    fn zero_topics_means_one() {
        assert_eq!(plan(0, None).streams(), 1);
    }

    #[test]
    fn connections_spread_over_topics_then_user_slots() -> Result<(), crate::Error> {
        let topic = Template::parse("load.{k}")?;
        let plan = Plan::new(&topic, "r1", 3, Some(2));
        assert_eq!(plan.streams(), 6);
        // Connection 4: topic 4 % 3 = 1, user slot (4 / 3) % 2 = 1.
        let stream = plan.stream_of(4);
        assert_eq!((plan.topic(stream), plan.user(stream)), ("load.1", "u1-1"));
        Ok(())
    }
}
