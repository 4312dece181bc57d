//! Splitting one run over several generator processes.
//!
//! One process can hold only as many connections as its open-file hard
//! limit allows (20,000 here), so a bigger run starts N processes with
//! `--shard I/N --sync-dir DIR`. Shard 0 measures the server, publishes and
//! tells the others, through files in DIR, when to connect and what it
//! published:
//!
//! 1. shard 0 clears DIR, samples the server, writes `begin`;
//! 2. every shard waits for `begin`, connects, writes `ready.I` (its count);
//! 3. shard 0 waits for every `ready.I`, measures memory, publishes, then
//!    writes `published.json` (events per stream);
//! 4. the others wait for `published.json` and check against it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

use crate::Error;

/// How often a shard looks for the others' files.
const POLL: Duration = Duration::from_millis(50);

/// Which part of a split run this process is: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// This process's number, `0..count`.
    pub index: usize,
    /// Processes in the run.
    pub count: usize,
}

impl Shard {
    /// Whether connection `c` (numbered over the whole run) is this shard's.
    pub(crate) fn owns(&self, connection: usize) -> bool {
        connection % self.count == self.index
    }

    /// Whether this shard publishes and measures the server (shard 0).
    pub(crate) fn is_leader(&self) -> bool {
        self.index == 0
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || Error::Invalid {
            what: "shard",
            reason: format!("{text:?} is not I/N with I < N"),
        };
        let (index, count) = text.split_once('/').ok_or_else(invalid)?;
        let index: usize = index.trim().parse().map_err(|_| invalid())?;
        let count: usize = count.trim().parse().map_err(|_| invalid())?;
        if count == 0 || index >= count {
            return Err(invalid());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// File-based coordination of the shards of one run.
#[derive(Debug, Clone)]
pub(crate) struct SyncDir {
    dir: PathBuf,
    shard: Shard,
}

impl SyncDir {
    /// Coordination in `dir` for `shard`.
    pub(crate) fn new(dir: &Path, shard: Shard) -> Self {
        Self {
            dir: dir.to_owned(),
            shard,
        }
    }

    /// Shard 0: clears what an earlier run left and lets the others connect.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be written.
    pub(crate) async fn begin(&self) -> Result<(), Error> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        for i in 0..self.shard.count {
            let _ = tokio::fs::remove_file(self.path(&format!("ready.{i}"))).await;
        }
        let _ = tokio::fs::remove_file(self.path("published.json")).await;
        self.write("begin", "1").await
    }

    /// Other shards: waits for shard 0's `begin`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after `timeout`.
    pub(crate) async fn wait_begin(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_for("begin", timeout).await.map(drop)
    }

    /// Announces that this shard opened `connected` connections.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub(crate) async fn ready(&self, connected: usize) -> Result<(), Error> {
        self.write(
            &format!("ready.{}", self.shard.index),
            &connected.to_string(),
        )
        .await
    }

    /// Shard 0: waits until every other shard is ready; returns how many
    /// connections they opened together.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after `timeout`, [`Error::Protocol`] on a bad file.
    pub(crate) async fn wait_ready(&self, timeout: Duration) -> Result<usize, Error> {
        let deadline = Instant::now() + timeout;
        let mut total = 0;
        for i in 1..self.shard.count {
            let left = deadline.saturating_duration_since(Instant::now());
            let text = self.wait_for(&format!("ready.{i}"), left).await?;
            total += text
                .trim()
                .parse::<usize>()
                .map_err(|_| Error::Protocol(format!("ready.{i}: {text:?}")))?;
        }
        Ok(total)
    }

    /// Shard 0: records how many events each stream got.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub(crate) async fn published(&self, per_stream: &[u64]) -> Result<(), Error> {
        let json = serde_json::to_string(per_stream).expect("numbers serialize");
        self.write("published.json", &json).await
    }

    /// Other shards: waits for shard 0's counts.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after `timeout`, [`Error::Protocol`] on a bad file.
    pub(crate) async fn wait_published(&self, timeout: Duration) -> Result<Vec<u64>, Error> {
        let text = self.wait_for("published.json", timeout).await?;
        serde_json::from_str(&text).map_err(|e| Error::Protocol(format!("published.json: {e}")))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes atomically (temporary file, then rename), so a reader never
    /// sees half a file.
    async fn write(&self, name: &str, text: &str) -> Result<(), Error> {
        let tmp = self.path(&format!(".{name}.{}", std::process::id()));
        tokio::fs::write(&tmp, text)
            .await
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        tokio::fs::rename(&tmp, self.path(name))
            .await
            .map_err(|e| Error::io(format!("renaming to {name}"), e))
    }

    async fn wait_for(&self, name: &str, timeout: Duration) -> Result<String, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = tokio::fs::read_to_string(self.path(name)).await {
                return Ok(text);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "waiting for {}",
                    self.path(name).display()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parses_and_splits_connections() {
        let shard: Shard = "2/4".parse().unwrap();
        assert_eq!((shard.index, shard.count), (2, 4));
        assert!(shard.owns(6) && !shard.owns(7));
        assert!(!shard.is_leader());
        assert_eq!(shard.to_string(), "2/4");
        for bad in ["4/4", "1/0", "1", "a/2", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn shards_hand_over_through_files() {
        let dir = std::env::temp_dir().join(format!("loadgen-sync-{}", std::process::id()));
        let leader = SyncDir::new(&dir, "0/2".parse().unwrap());
        let other = SyncDir::new(&dir, "1/2".parse().unwrap());
        leader.begin().await.unwrap();
        other.wait_begin(Duration::from_secs(1)).await.unwrap();
        other.ready(7).await.unwrap();
        assert_eq!(leader.wait_ready(Duration::from_secs(1)).await.unwrap(), 7);
        leader.published(&[3, 4]).await.unwrap();
        assert_eq!(
            other.wait_published(Duration::from_secs(1)).await.unwrap(),
            [3, 4]
        );
        // A new run clears the old hand-over.
        leader.begin().await.unwrap();
        assert!(
            other
                .wait_published(Duration::from_millis(10))
                .await
                .is_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_shard_owns_every_nth_connection() -> Result<(), crate::Error> {
        let shard: crate::Shard = "1/3".parse()?;
        assert_eq!(
            (0..7).filter(|&c| shard.owns(c)).collect::<Vec<_>>(),
            [1, 4]
        );
        Ok(())
    }
}
