//! The log conformance suite every `Log` implementation runs, one test per rule, on the
//! shared Redis.

mod support;

use std::sync::Mutex;

use herald_bus::Retention;
use herald_redis::{RedisLog, RedisOptions};
use herald_testkit::{conformance::Factory, services::skip_or_fail};

/// Logs on the shared Redis, each under a key prefix of its own, deleted once the rule
/// passed. An unreachable Redis is a reported skip (a failure under
/// `HERALD_REQUIRE_SERVICES=1`).
struct RedisLogs {
    url: String,
    used: Mutex<Vec<RedisOptions>>,
}

impl RedisLogs {
    fn new() -> Self {
        Self {
            url: support::redis_url(),
            used: Mutex::new(Vec::new()),
        }
    }
}

impl Factory for RedisLogs {
    type Log = RedisLog;

    async fn log(&self, retention: Retention) -> Option<RedisLog> {
        let options = RedisOptions {
            max_len: retention.max_events,
            max_age: retention.max_age,
            ..support::options(&self.url)
        };
        self.used.lock().unwrap().push(options.clone());
        match RedisLog::connect(options).await {
            Ok(log) => Some(log),
            Err(error) => {
                // The log's error and its causes, so the report says why.
                let causes: Vec<String> =
                    std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                        .map(ToString::to_string)
                        .collect();
                skip_or_fail("redis", format!("{}: {}", self.url, causes.join(": ")));
                None
            }
        }
    }

    async fn cleanup(self) {
        let used = self.used.into_inner().unwrap();
        support::cleanup(&used).await;
    }
}

herald_testkit::conformance_tests!(RedisLogs::new());
