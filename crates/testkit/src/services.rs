//! Skip-or-fail for tests that need an external service (PostgreSQL, Redis).
//!
//! Under plain `make test` such a test prints a loud `SKIP:` line and passes
//! when its service cannot be reached; with `HERALD_REQUIRE_SERVICES=1` (set
//! by `.ci/run`) it fails instead, so CI never passes on skipped tests.
//!
//! ```no_run
//! use herald_testkit::services::{service_url, skip_or_fail};
//!
//! # async fn connect(_: &str) -> Result<(), std::io::Error> { Ok(()) }
//! # async fn example() {
//! let url = service_url("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379");
//! let conn = match connect(&url).await {
//!     Ok(conn) => conn,
//!     Err(err) => return skip_or_fail("redis", format!("{url}: {err}")),
//! };
//! # }
//! ```

use std::{fmt::Display, io::Write};

/// The variable that turns a skip into a failure.
pub const REQUIRE_VAR: &str = "HERALD_REQUIRE_SERVICES";

/// Whether `HERALD_REQUIRE_SERVICES` is set to `1` (or `true`/`yes`).
pub fn require_services() -> bool {
    std::env::var(REQUIRE_VAR)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// `var` from the environment if set and not empty, else `default` (the
/// local service).
pub fn service_url(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Reports that the current test cannot reach `service`: prints
/// `SKIP: <test> needs <service>: <reason>` to stderr and returns, so the
/// caller can `return`; or panics when [`require_services`] is true.
///
/// The line is written to the process's stderr directly, past the test
/// harness's output capture, so it shows even for a passing test.
///
/// # Panics
///
/// When services are required.
#[track_caller]
pub fn skip_or_fail(service: &str, reason: impl Display) {
    report(require_services(), service, &reason, &mut std::io::stderr());
}

#[track_caller]
fn report(required: bool, service: &str, reason: &dyn Display, out: &mut dyn Write) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed test>");
    if required {
        panic!(
            "{test} needs {service}: {reason} ({REQUIRE_VAR}=1, so this fails instead of skipping)"
        );
    }
    let line =
        format!("SKIP: {test} needs {service}: {reason} (set {REQUIRE_VAR}=1 to fail instead)\n");
    let _ = out.write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_when_not_required() {
        let mut out = Vec::new();
        report(false, "redis", &"connection refused", &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.starts_with(
                "SKIP: services::tests::skips_when_not_required needs redis: connection refused"
            ),
            "{line}"
        );
    }

    #[test]
    #[should_panic(expected = "skips_or_fails_when_required needs postgres: refused")]
    fn skips_or_fails_when_required() {
        report(true, "postgres", &"refused", &mut Vec::new());
    }

    #[test]
    fn service_url_defaults() {
        assert_eq!(
            service_url("HERALD_TESTKIT_UNSET_VARIABLE", "redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
