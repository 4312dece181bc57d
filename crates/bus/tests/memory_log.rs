//! The in-memory log passes the log conformance suite, one test per rule.

use herald_bus::{MemoryLog, Retention};

herald_testkit::conformance_tests!(|retention: Retention| async move { MemoryLog::new(retention) });
