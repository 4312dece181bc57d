//! `[[sources.postgres]]`: the PostgreSQL sources as written in the configuration, and
//! their translation into [`PgSource`]s. Every URL, name and template is checked here,
//! with `herald-postgres`'s own types, so a bad value stops `herald serve` at startup
//! with a message naming the source, never later at runtime. The translation runs once,
//! when the configuration is loaded; the server starts the sources built then.

use std::{collections::HashSet, fmt, time::Duration};

use anyhow::Context as _;
use herald_postgres::{
    DataShape, Ident, InstallOptions, Mapping, Mode, Outbox, PgSource, TableName,
};
use serde::{Deserialize, Serialize};

use super::units::millis;

/// Longest source name: `herald:<name>` must fit PostgreSQL's 63-byte
/// `application_name`, or the server would cut it and nobody could find the session.
const MAX_NAME: usize = 56;

/// The `[sources]` section: the ingresses that publish into the bus by themselves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Sources {
    pub(crate) postgres: Vec<PostgresSource>,
    /// The [`PgSource`]s `postgres` describes, in order, once [`Sources::build`] ran.
    #[serde(skip)]
    built: Vec<PgSource>,
}

impl Sources {
    /// Checks and builds every PostgreSQL source, in order, keeping them for
    /// [`Sources::built`]. `Config::load` calls it once.
    ///
    /// # Errors
    ///
    /// The first entry that cannot work, named by its index and name; or a name used
    /// twice (it keys the outbox position, so two sources must never share one).
    pub(crate) fn build(&mut self) -> anyhow::Result<()> {
        self.built = self.translate()?;
        Ok(())
    }

    /// The sources [`Sources::build`] made, ready to spawn.
    pub(crate) fn built(&self) -> &[PgSource] {
        &self.built
    }

    fn translate(&self) -> anyhow::Result<Vec<PgSource>> {
        let mut names = HashSet::new();
        let mut built = Vec::with_capacity(self.postgres.len());
        for (index, source) in self.postgres.iter().enumerate() {
            let at = match &source.name {
                Some(name) => format!("sources.postgres[{index}] (name {name:?})"),
                None => format!("sources.postgres[{index}]"),
            };
            let pg = source
                .build()
                .with_context(|| format!("{at} is not valid"))?;
            anyhow::ensure!(
                names.insert(pg.name().to_owned()),
                "{at}: another source is already named {:?}; give each source its own `name`",
                pg.name()
            );
            built.push(pg);
        }
        Ok(built)
    }
}

/// How a source reads PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SourceMode {
    /// `LISTEN` on channels that triggers `NOTIFY`.
    Notify,
    /// Read an outbox table from a recorded position.
    Outbox,
}

/// What an event's data is: the whole change, or only its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SourceData {
    #[default]
    Change,
    Row,
}

/// One `[[sources.postgres]]` entry. Keys that belong to the other mode are errors, so
/// a setting cannot be silently ignored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresSource {
    /// Names the source in `/readyz`, metrics and `pg_stat_activity`, and keys its outbox
    /// position. Default: the channels joined by `+` (notify), the outbox table (outbox).
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) url: String,
    pub(crate) mode: SourceMode,
    /// Notify: the channels to `LISTEN` on (default `["herald"]`). Outbox: at most one,
    /// the wake-up channel (default the outbox table's name).
    #[serde(default)]
    pub(crate) channels: Option<Vec<String>>,
    /// Outbox: the outbox table (default `public.herald_outbox`).
    #[serde(default)]
    pub(crate) outbox: Option<String>,
    #[serde(default = "default_topic")]
    pub(crate) topic: String,
    #[serde(default)]
    pub(crate) event: Option<String>,
    #[serde(default)]
    pub(crate) user_column: Option<String>,
    #[serde(default)]
    pub(crate) data: SourceData,
    /// Notify: the tables the triggers are on, so `herald.reset` reaches their topics
    /// after an outage even before anything was published to them.
    #[serde(default)]
    pub(crate) tables: Vec<String>,
    /// Outbox: how often to read without being woken (default
    /// `Outbox::DEFAULT_POLL_INTERVAL`).
    #[serde(default)]
    pub(crate) poll_interval_ms: Option<u64>,
    /// Outbox: how long published rows are kept (default `Outbox::DEFAULT_RETENTION`).
    #[serde(default)]
    pub(crate) retention_secs: Option<u64>,
    /// Notify: how often an idle connection is checked (default
    /// `PgSource::DEFAULT_HEALTH_INTERVAL`).
    #[serde(default)]
    pub(crate) health_interval_ms: Option<u64>,
    #[serde(default = "default_reconnect_min_ms")]
    pub(crate) reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    pub(crate) reconnect_max_ms: u64,
}

fn default_topic() -> String {
    "db.{table}.{op}".to_owned()
}

fn default_reconnect_min_ms() -> u64 {
    millis(PgSource::DEFAULT_MIN_BACKOFF)
}

fn default_reconnect_max_ms() -> u64 {
    millis(PgSource::DEFAULT_MAX_BACKOFF)
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PostgresSource")
            .field("name", &self.name)
            .field("url", &"<hidden>")
            .field("mode", &self.mode)
            .field("channels", &self.channels)
            .field("outbox", &self.outbox)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl PostgresSource {
    /// The [`PgSource`] this entry describes (not started).
    fn build(&self) -> anyhow::Result<PgSource> {
        anyhow::ensure!(
            self.reconnect_min_ms > 0,
            "reconnect_min_ms must be above 0"
        );
        anyhow::ensure!(
            self.reconnect_max_ms >= self.reconnect_min_ms,
            "reconnect_max_ms must be at least reconnect_min_ms"
        );
        let (mode, derived_name) = match self.mode {
            SourceMode::Notify => self.notify()?,
            SourceMode::Outbox => self.outbox()?,
        };
        let name = match &self.name {
            Some(name) => {
                check_name(name)?;
                name.clone()
            }
            None => check_name(&derived_name)
                .map(|()| derived_name.clone())
                .with_context(|| {
                    format!("the name derived from it, {derived_name:?}, is not usable; set `name`")
                })?,
        };
        let mut mapping = Mapping::new(&self.topic)?.with_data(match self.data {
            SourceData::Change => DataShape::Change,
            SourceData::Row => DataShape::Row,
        });
        if let Some(event) = &self.event {
            mapping = mapping.with_event(event)?;
        }
        if let Some(column) = &self.user_column {
            mapping = mapping.with_user_column(Ident::new(column)?.as_str());
        }
        let tables = self
            .tables
            .iter()
            .map(|t| TableName::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut builder = PgSource::builder(&self.url)
            .name(name)
            .mode(mode)
            .mapping(mapping.with_tables(tables))
            .backoff(
                Duration::from_millis(self.reconnect_min_ms),
                Duration::from_millis(self.reconnect_max_ms),
            );
        if let Some(ms) = self.health_interval_ms {
            builder = builder.health_interval(Duration::from_millis(ms));
        }
        Ok(builder.build()?)
    }

    /// Notify mode, and the name it derives: its channels.
    fn notify(&self) -> anyhow::Result<(Mode, String)> {
        for (key, set) in [
            ("outbox", self.outbox.is_some()),
            ("poll_interval_ms", self.poll_interval_ms.is_some()),
            ("retention_secs", self.retention_secs.is_some()),
        ] {
            anyhow::ensure!(!set, "`{key}` is for mode = \"outbox\"");
        }
        anyhow::ensure!(
            self.health_interval_ms != Some(0),
            "health_interval_ms must be above 0"
        );
        let channels = match &self.channels {
            Some(channels) => channels
                .iter()
                .map(|c| Ident::new(c))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![Ident::new(InstallOptions::DEFAULT_CHANNEL).expect("a valid name")],
        };
        anyhow::ensure!(!channels.is_empty(), "`channels` is empty");
        let name = channels
            .iter()
            .map(Ident::as_str)
            .collect::<Vec<_>>()
            .join("+");
        Ok((Mode::notify(channels), name))
    }

    /// Outbox mode, and the name it derives: the outbox table.
    fn outbox(&self) -> anyhow::Result<(Mode, String)> {
        anyhow::ensure!(
            self.tables.is_empty(),
            "`tables` is for mode = \"notify\" (an outbox source loses nothing, so it sends no herald.reset)"
        );
        anyhow::ensure!(
            self.health_interval_ms.is_none(),
            "`health_interval_ms` is for mode = \"notify\" (an outbox source polls)"
        );
        let mut outbox = match &self.outbox {
            Some(table) => Outbox::new(TableName::parse(table)?)?,
            None => Outbox::default(),
        };
        match self.channels.as_deref() {
            None => {}
            Some([channel]) => outbox = outbox.with_channel(Ident::new(channel)?),
            Some(other) => anyhow::bail!(
                "an outbox source wakes on one channel; `channels` has {}",
                other.len()
            ),
        }
        if let Some(ms) = self.poll_interval_ms {
            anyhow::ensure!(ms > 0, "poll_interval_ms must be above 0");
            outbox = outbox.with_poll_interval(Duration::from_millis(ms));
        }
        if let Some(secs) = self.retention_secs {
            outbox = outbox.with_retention(Duration::from_secs(secs));
        }
        let name = outbox.table().to_string();
        Ok((Mode::outbox(outbox), name))
    }
}

/// A source name: 1–56 bytes of ASCII letters, digits and `_ - . : +`, so it reads the
/// same in `pg_stat_activity`, metric labels and logs.
fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty() && name.len() <= MAX_NAME,
        "the name must be 1 to {MAX_NAME} bytes"
    );
    anyhow::ensure!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:+".contains(&b)),
        "the name {name:?} may hold only ASCII letters, digits and `_ - . : +`"
    );
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests {
    use std::path::Path;

    use super::super::{Config, herald_env};

    /// Loads `toml` as the config file; the error text on failure.
    fn load(toml: &str) -> Result<Config, String> {
        let mut result = Err(String::new());
        figment::Jail::expect_with(|jail| {
            jail.create_file("herald.toml", toml)?;
            result = Config::load(Some(Path::new("herald.toml")), herald_env())
                .map_err(|e| format!("{e:#}"));
            Ok(())
        });
        result
    }

    fn error(toml: &str) -> String {
        load(toml).expect_err("the configuration should be refused")
    }

    const URL: &str = "url = \"postgres://postgres@127.0.0.1:5432/test\"\n";

    #[test]
    fn sources_build_with_defaults_and_derived_names() {
        let config = load(&format!(
            "[[sources.postgres]]\n{URL}mode = \"notify\"\ntables = [\"shop.orders\"]\n\
             [[sources.postgres]]\n{URL}mode = \"outbox\"\nretention_secs = 60\n\
             [[sources.postgres]]\n{URL}mode = \"notify\"\nchannels = [\"a\", \"b\"]\n"
        ))
        .unwrap();
        let names: Vec<&str> = config.sources.built().iter().map(|s| s.name()).collect();
        assert_eq!(names, ["herald", "public.herald_outbox", "a+b"]);
        assert_eq!(config.sources.postgres[0].topic, "db.{table}.{op}");
        assert_eq!(config.sources.postgres[0].reconnect_max_ms, 5000);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = error(&format!(
            "[[sources.postgres]]\n{URL}mode = \"notify\"\n\
             [[sources.postgres]]\n{URL}mode = \"notify\"\nchannels = [\"herald\"]\n"
        ));
        assert!(
            err.contains("sources.postgres[1]: another source is already named \"herald\""),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_source_and_the_problem() {
        for (entry, expected) in [
            (
                "mode = \"notify\"\ntopic = \"db.{tabel}\"",
                "unknown placeholder {tabel}",
            ),
            ("mode = \"notify\"\nevent = \"a b\"", "can be in no topic"),
            (
                "mode = \"notify\"\nchannels = [\"a;b\"]",
                "sql name \"a;b\" is not usable",
            ),
            ("mode = \"notify\"\nchannels = []", "`channels` is empty"),
            (
                "mode = \"notify\"\nuser_column = \"\"",
                "sql name \"\" is not usable",
            ),
            (
                "mode = \"notify\"\ntables = [\"a.b.c\"]",
                "expected `table` or `schema.table`",
            ),
            (
                "mode = \"notify\"\noutbox = \"x\"",
                "`outbox` is for mode = \"outbox\"",
            ),
            (
                "mode = \"outbox\"\ntables = [\"t\"]",
                "`tables` is for mode = \"notify\"",
            ),
            (
                "mode = \"outbox\"\nchannels = [\"a\", \"b\"]",
                "wakes on one channel",
            ),
            (
                "mode = \"outbox\"\noutbox = \"s.t.u\"",
                "expected `table` or `schema.table`",
            ),
            (
                "mode = \"notify\"\nname = \"a b\"",
                "may hold only ASCII letters",
            ),
            (
                "mode = \"notify\"\nreconnect_min_ms = 0",
                "reconnect_min_ms must be above 0",
            ),
        ] {
            let err = error(&format!("[[sources.postgres]]\n{URL}{entry}\n"));
            assert!(
                err.contains("sources.postgres[0]") && err.contains(expected),
                "{entry}: {err}"
            );
        }
        let url =
            error("[[sources.postgres]]\nurl = \"postgres://a@b:notaport/c\"\nmode = \"notify\"\n");
        assert!(
            url.contains("postgres connection url is not valid"),
            "{url}"
        );
        assert!(!url.contains("notaport"), "the url is not echoed: {url}");
    }

    #[test]
    fn typos_and_missing_keys_are_errors() {
        let typo = error(&format!(
            "[[sources.postgres]]\n{URL}mode = \"notify\"\nchanels = [\"a\"]\n"
        ));
        assert!(typo.contains("unknown field: found `chanels`"), "{typo}");
        let mode = error(&format!("[[sources.postgres]]\n{URL}mode = \"listen\"\n"));
        assert!(mode.contains("unknown variant: found `listen`"), "{mode}");
        let missing = error("[[sources.postgres]]\nmode = \"notify\"\n");
        assert!(missing.contains("missing field `url`"), "{missing}");
        let section = error("[[sources.mysql]]\nurl = \"x\"\n");
        assert!(
            section.contains("unknown field: found `mysql`"),
            "{section}"
        );
    }

    #[test]
    fn sources_can_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "HERALD_SOURCES__POSTGRES",
                "[{name = \"env\", url = \"postgres://postgres@127.0.0.1/test\", mode = \"outbox\"}]",
            );
            let config = Config::load(None, herald_env()).map_err(|e| format!("{e:#}"))?;
            let sources = config.sources.built();
            assert_eq!(sources.len(), 1);
            assert_eq!(sources[0].name(), "env");
            Ok(())
        });
    }
}
