//! The server's configuration: defaults, then a TOML file, then `HERALD_*` environment
//! variables (`HERALD_SSE__HEARTBEAT_MS=5000`), then command-line flags.
//!
//! `sources` (the PostgreSQL sources) has its own module, `config/sources.rs`. Defaults
//! that belong to a crate (retention, stream pacing, the Redis log, PostgreSQL backoff)
//! are taken from that crate, never written again here.

mod sources;
mod units;

pub(crate) use sources::Sources;

use std::{net::SocketAddr, path::Path, time::Duration};

use anyhow::Context as _;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use herald_sse::StreamOptions;
use serde::{Deserialize, Serialize};
use units::millis;

/// Top-level keys; only environment variables under these are read, so unrelated
/// `HERALD_*` variables (such as `HERALD_REQUIRE_SERVICES` in CI) are not config typos.
const SECTIONS: [&str; 10] = [
    "listen",
    "auth",
    "sse",
    "retention",
    "limits",
    "shutdown",
    "log",
    "cors",
    "console",
    "sources",
];

/// Everything `herald serve` can be told. Unknown keys are errors, so a typo is caught.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) listen: SocketAddr,
    pub(crate) auth: Auth,
    pub(crate) sse: Sse,
    pub(crate) retention: Retention,
    pub(crate) limits: Limits,
    pub(crate) shutdown: Shutdown,
    pub(crate) log: Log,
    pub(crate) cors: Cors,
    pub(crate) console: Console,
    pub(crate) sources: Sources,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            auth: Auth::default(),
            sse: Sse::default(),
            retention: Retention::default(),
            limits: Limits::default(),
            shutdown: Shutdown::default(),
            log: Log::default(),
            cors: Cors::default(),
            console: Console::default(),
            sources: Sources::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuthMode {
    /// Development: no authentication; `?user=` names the subscriber.
    None,
    /// JSON Web Tokens.
    Jwt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Auth {
    pub(crate) mode: AuthMode,
    pub(crate) hs256_secret: Option<String>,
    pub(crate) public_key_pem: Option<String>,
    pub(crate) algorithms: Vec<String>,
    pub(crate) cookie: String,
    pub(crate) leeway_secs: u64,
    /// When set, tokens must carry this `aud`.
    pub(crate) audience: Option<String>,
    /// When set, tokens must carry this `iss`.
    pub(crate) issuer: Option<String>,
    /// Who may read `/metrics` and `/stats`.
    pub(crate) stats: StatsAccess,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatsAccess {
    /// Anyone who can reach the port.
    Open,
    /// Callers whose token has `herald.admin: true` (jwt mode).
    Admin,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            hs256_secret: None,
            public_key_pem: None,
            algorithms: vec!["HS256".to_owned()],
            cookie: "herald_token".to_owned(),
            leeway_secs: 30,
            audience: None,
            issuer: None,
            stats: StatsAccess::Open,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Sse {
    pub(crate) heartbeat_ms: u64,
    pub(crate) retry_ms: u64,
    /// Live events buffered per subscriber before it catches up from history.
    pub(crate) subscriber_buffer: usize,
}

impl Default for Sse {
    fn default() -> Self {
        Self {
            heartbeat_ms: millis(StreamOptions::DEFAULT_HEARTBEAT),
            retry_ms: millis(StreamOptions::DEFAULT_RETRY),
            subscriber_buffer: herald_bus::DEFAULT_SUBSCRIBER_BUFFER,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Retention {
    pub(crate) max_events: usize,
    pub(crate) max_age_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_events: herald_bus::Retention::DEFAULT_MAX_EVENTS,
            max_age_secs: herald_bus::Retention::DEFAULT_MAX_AGE.as_secs(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Limits {
    pub(crate) max_event_bytes: usize,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_user: usize,
    pub(crate) max_selectors: usize,
    /// Events per second one token (or, without tokens, one client address) may publish;
    /// 0 turns the limit off.
    pub(crate) publish_rate_per_sec: f64,
    /// Events such a publisher may send in a burst.
    pub(crate) publish_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: herald_bus::DEFAULT_MAX_EVENT_BYTES,
            max_body_bytes: 1024 * 1024,
            max_connections: 100_000,
            max_connections_per_user: 64,
            max_selectors: 64,
            publish_rate_per_sec: 1000.0,
            publish_burst: 2000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Shutdown {
    pub(crate) grace_ms: u64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { grace_ms: 5000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogKind {
    Memory,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Log {
    pub(crate) kind: LogKind,
    pub(crate) url: String,
    pub(crate) key_prefix: String,
    /// Redis: entries kept in the shared stream, all topics together.
    pub(crate) max_len: usize,
    /// Redis: the longest any one call may take before it counts as failed.
    pub(crate) call_timeout_ms: u64,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            kind: LogKind::Memory,
            url: herald_redis::DEFAULT_URL.to_owned(),
            key_prefix: herald_redis::DEFAULT_KEY_PREFIX.to_owned(),
            max_len: herald_redis::DEFAULT_MAX_LEN,
            call_timeout_ms: millis(herald_redis::DEFAULT_CALL_TIMEOUT),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cors {
    /// Origins allowed to call the API from a browser (`"*"` for any). Empty: same
    /// origin only.
    pub(crate) allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Console {
    /// Serve the web console at `/`.
    pub(crate) enabled: bool,
}

impl Default for Console {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Config {
    /// Defaults, then `file` (if given), then `HERALD_*` variables from `env`.
    pub(crate) fn load(file: Option<&Path>, env: Env) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        let env = env.split("__").filter(|key| {
            let section = key.as_str().split('.').next().unwrap_or_default();
            SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
        });
        let mut config: Config = figment
            .merge(env)
            .extract()
            .context("invalid configuration")?;
        config.validate()?;
        config.sources.build()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.sse.heartbeat_ms > 0,
            "sse.heartbeat_ms must be above 0"
        );
        anyhow::ensure!(
            self.limits.max_selectors > 0,
            "limits.max_selectors must be above 0"
        );
        anyhow::ensure!(self.log.max_len > 0, "log.max_len must be above 0");
        anyhow::ensure!(
            self.log.call_timeout_ms > 0,
            "log.call_timeout_ms must be above 0"
        );
        anyhow::ensure!(
            self.limits.publish_rate_per_sec >= 0.0 && self.limits.publish_rate_per_sec.is_finite(),
            "limits.publish_rate_per_sec must be 0 (off) or above"
        );
        anyhow::ensure!(
            self.limits.publish_burst > 0,
            "limits.publish_burst must be above 0"
        );
        Ok(())
    }

    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.sse.heartbeat_ms)
    }

    pub(crate) fn grace(&self) -> Duration {
        Duration::from_millis(self.shutdown.grace_ms)
    }
}

/// The environment provider for `HERALD_*` variables.
pub(crate) fn herald_env() -> Env {
    Env::prefixed("HERALD_")
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("herald.toml", "listen = \"127.0.0.1:9000\"\n[sse]\nheartbeat_ms = 100\n[retention]\nmax_events = 5\n")?;
            jail.set_env("HERALD_SSE__HEARTBEAT_MS", "250");
            jail.set_env("HERALD_REQUIRE_SERVICES", "1");
            let config = Config::load(Some(Path::new("herald.toml")), herald_env())
                .map_err(|e| e.to_string())?;
            assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 9000)));
            assert_eq!(config.sse.heartbeat_ms, 250, "env beats the file");
            assert_eq!(config.retention.max_events, 5);
            assert_eq!(config.limits, Limits::default());
            Ok(())
        });
    }

    #[test]
    fn typos_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("herald.toml", "[sse]\nheartbeat = 100\n")?;
            let err = Config::load(Some(Path::new("herald.toml")), herald_env()).unwrap_err();
            assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
            jail.set_env("HERALD_SSE__HEARTBEAT", "1");
            let err = Config::load(None, herald_env()).unwrap_err();
            assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            Config::load(Some(Path::new("/nonexistent/herald.toml")), herald_env()).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
