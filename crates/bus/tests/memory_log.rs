//! The in-memory log passes the log conformance suite.

use herald_bus::{MemoryLog, Retention};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_log_conforms() {
    herald_testkit::conformance::run(
        |retention: Retention| async move { MemoryLog::new(retention) },
    )
    .await;
}
