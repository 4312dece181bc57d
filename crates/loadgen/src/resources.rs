//! Process resources from `/proc`: resident memory and CPU time, and the
//! open-file limit.

use std::fs;

use serde::Serialize;

use crate::Error;

/// One reading of a process (or the sum over several processes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ProcSample {
    /// Resident set size, KiB (`VmRSS` in `/proc/PID/status`).
    pub rss_kib: u64,
    /// User + system CPU time, clock ticks (`/proc/PID/stat` fields 14 and 15).
    pub cpu_ticks: u64,
}

impl ProcSample {
    /// Reads process `pid` (`None`: this process).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the files cannot be read (the process is gone), or
    /// [`Error::Protocol`] when they cannot be parsed.
    pub(crate) fn read(pid: Option<u32>) -> Result<Self, Error> {
        let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
        let read = |file: &str| {
            fs::read_to_string(format!("{dir}/{file}"))
                .map_err(|e| Error::io(format!("reading {dir}/{file}"), e))
        };
        let rss_kib = parse_rss_kib(&read("status")?)
            .ok_or_else(|| Error::Protocol(format!("no VmRSS in {dir}/status")))?;
        let cpu_ticks = parse_cpu_ticks(&read("stat")?)
            .ok_or_else(|| Error::Protocol(format!("unparsable {dir}/stat")))?;
        Ok(Self { rss_kib, cpu_ticks })
    }

    /// The sum over `pids` (for example nginx's master and worker).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), for the first process that fails.
    pub(crate) fn read_all(pids: &[u32]) -> Result<Self, Error> {
        pids.iter().try_fold(Self::default(), |sum, &pid| {
            let one = Self::read(Some(pid))?;
            Ok(Self {
                rss_kib: sum.rss_kib + one.rss_kib,
                cpu_ticks: sum.cpu_ticks + one.cpu_ticks,
            })
        })
    }

    /// CPU seconds between `earlier` and this sample.
    pub(crate) fn cpu_seconds_since(&self, earlier: &ProcSample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / clock_ticks_per_second() as f64
    }
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub(crate) fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// `utime + stime` (clock ticks) from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may hold spaces or
/// parentheses itself, so fields are counted after the *last* `)`.
pub(crate) fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0, so utime (14) is 11, stime (15) 12.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub(crate) fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// The open-file limit after [`raise_nofile_limit`]: `(soft, hard)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct FileLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (the ceiling for the soft one).
    pub hard: u64,
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit: every
/// subscriber holds one descriptor.
///
/// # Errors
///
/// [`Error::Io`] if the limit cannot be read or set.
pub(crate) fn raise_nofile_limit() -> Result<FileLimit, Error> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum;
    if limit.current != hard {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        )
        .map_err(|e| Error::io("raising RLIMIT_NOFILE", e.into()))?;
    }
    let now = getrlimit(Resource::Nofile);
    Ok(FileLimit {
        soft: now.current.unwrap_or(u64::MAX),
        hard: now.maximum.unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\tnginx\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_rss_kib(status), Some(1024));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
        assert_eq!(parse_rss_kib("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn cpu_is_utime_plus_stime() {
        // Real line shape; the name holds a space and a parenthesis.
        let stat = "4242 (herald (w) x) S 1 4242 4242 0 -1 4194560 2500 0 0 0 \
                    731 269 0 0 20 0 3 0 12345 987654 3000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(731 + 269));
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_process_can_be_sampled() {
        let sample = ProcSample::read(None).unwrap();
        assert!(sample.rss_kib > 0);
        let pid = std::process::id();
        let sum = ProcSample::read_all(&[pid, pid]).unwrap();
        assert!(sum.rss_kib >= sample.rss_kib);
        assert!(ProcSample::read(Some(u32::MAX)).is_err());
    }

    #[test]
    fn cpu_seconds_use_clock_ticks() {
        let tick = clock_ticks_per_second();
        let before = ProcSample::default();
        let after = ProcSample {
            rss_kib: 0,
            cpu_ticks: tick * 3,
        };
        assert!((after.cpu_seconds_since(&before) - 3.0).abs() < 1e-9);
        assert_eq!(before.cpu_seconds_since(&after), 0.0);
    }

    #[test]
    fn nofile_limit_reaches_hard_limit() {
        let limit = raise_nofile_limit().unwrap();
        assert_eq!(limit.soft, limit.hard);
    }

    #[test]
    fn rss_is_read_from_proc_status_text() {
        let status = "Name:\therald\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(crate::resources::parse_rss_kib(status), Some(12345));
    }
}
