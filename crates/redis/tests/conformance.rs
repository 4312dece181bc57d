//! The log conformance suite every `Log` implementation runs, on the shared Redis.

mod support;

use std::sync::{Arc, Mutex};

use herald_bus::Retention;
use herald_redis::RedisOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_log_passes_the_conformance_suite() {
    let url = support::redis_url();
    if !support::reachable(&url) {
        return;
    }
    let used: Arc<Mutex<Vec<RedisOptions>>> = Arc::default();
    herald_testkit::conformance::run(|retention: Retention| {
        let options = RedisOptions {
            max_len: retention.max_events,
            max_age: retention.max_age,
            ..support::options(&url)
        };
        used.lock().unwrap().push(options.clone());
        async move { support::connect(&options).await }
    })
    .await;
    let used = used.lock().unwrap().clone();
    support::cleanup(&used).await;
}
