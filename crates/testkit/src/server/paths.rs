//! Where the `herald` binary is, and the temporary directory a server runs in.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

/// The path of the `herald` binary: `HERALD_BIN` if set, else `herald`
/// beside the test executable's profile directory (`target/<profile>/`).
///
/// # Panics
///
/// When the binary is not there; the message says how to build it.
pub fn herald_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    locate_bin(std::env::var_os("HERALD_BIN"), &exe).unwrap_or_else(|msg| panic!("{msg}"))
}

fn locate_bin(env_override: Option<OsString>, exe: &Path) -> Result<PathBuf, String> {
    if let Some(path) = env_override.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("HERALD_BIN={} is not a file", path.display()))
        };
    }
    let mut dir = exe.parent().unwrap_or(Path::new("."));
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir = dir.parent().unwrap_or(dir);
    }
    let path = dir.join(format!("herald{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the herald binary is not at {}: run `cargo build -p herald-server --bin herald` \
             first (same profile as the tests), or set HERALD_BIN to its path",
            path.display()
        ))
    }
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("herald-test-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Self(path),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => panic!("cannot create {}: {err}", path.display()),
            }
        }
    }
}

impl TempDir {
    /// The directory.
    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_binary_beside_the_profile_dir() {
        let dir = TempDir::new();
        let deps = dir.0.join("debug").join("deps");
        std::fs::create_dir_all(&deps).unwrap();
        let exe = deps.join("e2e-0123abcd");
        let missing = locate_bin(None, &exe).unwrap_err();
        assert!(
            missing.contains("cargo build -p herald-server --bin herald"),
            "{missing}"
        );

        let bin = dir
            .0
            .join("debug")
            .join(format!("herald{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&bin, "").unwrap();
        assert_eq!(locate_bin(None, &exe).unwrap(), bin);
        assert_eq!(locate_bin(Some(OsString::new()), &exe).unwrap(), bin);
    }

    #[test]
    fn herald_bin_overrides_the_lookup() {
        let dir = TempDir::new();
        let custom = dir.0.join("my-herald");
        std::fs::write(&custom, "").unwrap();
        let exe = dir.0.join("debug").join("deps").join("t");
        assert_eq!(
            locate_bin(Some(custom.clone().into()), &exe).unwrap(),
            custom
        );
        let err = locate_bin(Some(dir.0.join("nope").into()), &exe).unwrap_err();
        assert!(err.starts_with("HERALD_BIN="), "{err}");
    }

    #[test]
    fn temp_dirs_are_fresh_and_removed() {
        let (a, b) = (TempDir::new(), TempDir::new());
        assert_ne!(a.0, b.0);
        let path = a.0.clone();
        assert!(path.is_dir());
        drop(a);
        assert!(!path.exists());
    }
}
