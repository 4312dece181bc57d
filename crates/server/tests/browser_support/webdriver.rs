//! Headless Chromium driven over WebDriver (W3C) through Debian's `chromedriver`, with
//! [`fantoccini`] as the client.
//!
//! This file only starts chromedriver, opens a session with the right capabilities and
//! cleans up; [`Browser`] adds panicking, test-shaped shorthands over fantoccini's
//! [`Client`].
//!
//! Cleanup holds on every path, a panic or a timeout included: [`Browser`]'s `Drop`
//! kills chromedriver's whole process group (it starts Chromium inside it), then removes
//! the fresh user-data dir. fantoccini's session task may still try to close the
//! session as the client goes; with chromedriver gone that fails quietly.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use fantoccini::{
    Client, ClientBuilder, Locator,
    actions::{InputSource as _, KeyAction, KeyActions},
    elements::Element,
    error::NewSessionError,
    wd::{Capabilities, WindowHandle},
};
use herald_testkit::services::skip_or_fail;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    time::Instant,
};

/// How long chromedriver and a new session may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Chromium's flags: headless, no sandbox (containers, root), and nothing that talks to
/// the network on its own, so a test talks only to `127.0.0.1`. Host names do not
/// resolve at all; the tests use IP addresses.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1200,820",
];

/// Where Chromium and chromedriver are: `HERALD_CHROMIUM` / `HERALD_CHROMEDRIVER`, else
/// Debian's paths.
fn executables() -> Result<(PathBuf, PathBuf), String> {
    let find = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let chromium = find("HERALD_CHROMIUM", "/usr/bin/chromium");
    let driver = find("HERALD_CHROMEDRIVER", "/usr/bin/chromedriver");
    for path in [&chromium, &driver] {
        if !path.is_file() {
            return Err(format!(
                "{} is missing (apt-get install chromium chromium-driver; .ci/run does it)",
                path.display()
            ));
        }
    }
    Ok((chromium, driver))
}

/// A headless Chromium with one WebDriver session; killed and cleaned up on drop.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: Child,
    /// chromedriver's pid, which is also its process group's id.
    group: u32,
    profile: Profile,
}

impl Browser {
    /// Starts chromedriver and Chromium with a fresh user-data dir; `None` (after a loud
    /// SKIP line) when they are not installed, unless `HERALD_REQUIRE_SERVICES=1`.
    ///
    /// # Panics
    ///
    /// When they are installed but do not start, or when they are missing and required.
    pub async fn launch() -> Option<Self> {
        let (chromium, driver) = match executables() {
            Ok(paths) => paths,
            Err(why) => {
                skip_or_fail("chromium", why);
                return None;
            }
        };
        let profile = Profile::new();
        let mut child = Command::new(&driver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so that Chromium (started inside it) goes with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let group = child.id().expect("a just-spawned child has a pid");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let port = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await;
        let Ok(Some(port)) = port else {
            kill_group(group);
            panic!("chromedriver did not report its port within {START_TIMEOUT:?}");
        };
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let Value::Object(capabilities) = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"script": 5000, "pageLoad": 10000, "implicit": 0},
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }) else {
            unreachable!("a JSON object")
        };
        let client = match connect(&format!("http://127.0.0.1:{port}"), capabilities).await {
            Ok(client) => client,
            Err(e) => {
                // Chromium may be up already; `profile` removes itself as this unwinds.
                kill_group(group);
                panic!("cannot open a WebDriver session on port {port}: {e}");
            }
        };
        Some(Self {
            client,
            driver: child,
            group,
            profile,
        })
    }

    /// Loads `url` and waits for its `load` event.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver goto {url} failed: {e}"));
    }

    /// Runs `script` as a function body in the page (`arguments[i]` are the items of the
    /// JSON array `args`) and returns what it returns.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        let Value::Array(args) = args else {
            panic!("script arguments are a JSON array, not {args}")
        };
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("WebDriver script failed: {e}\n{script}"))
    }

    /// Runs `script` every 50 ms until it returns something other than `null` or
    /// `false`, and returns that.
    ///
    /// # Panics
    ///
    /// After `timeout`, naming `what`.
    pub async fn wait_for(
        &self,
        what: &str,
        script: &str,
        args: Value,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(script, args.clone()).await;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Element {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no element for {selector}: {e}"))
    }

    /// Clicks `element`.
    pub async fn click(&self, element: &Element) {
        element.click().await.expect("WebDriver click");
    }

    /// Empties the input or textarea `element`.
    pub async fn clear(&self, element: &Element) {
        element.clear().await.expect("WebDriver clear");
    }

    /// Focuses `element` and types `text` into it, key by key (`\u{E007}` is Enter).
    pub async fn type_into(&self, element: &Element, text: &str) {
        element.send_keys(text).await.expect("WebDriver send keys");
    }

    /// Presses and releases each key of `keys` on whatever has the focus.
    pub async fn press(&self, keys: &str) {
        let actions = keys
            .chars()
            .fold(KeyActions::new("keyboard".into()), |a, c| {
                a.then(KeyAction::Down { value: c })
                    .then(KeyAction::Up { value: c })
            });
        self.client
            .perform_actions(actions)
            .await
            .unwrap_or_else(|e| panic!("WebDriver key actions {keys:?} failed: {e}"));
    }

    /// Opens a new tab and switches to it; returns the handle of the tab it left.
    pub async fn new_tab(&self) -> WindowHandle {
        let previous = self.client.window().await.expect("WebDriver window handle");
        let tab = self
            .client
            .new_window(true)
            .await
            .expect("WebDriver new tab");
        self.switch_to(&tab.handle).await;
        previous
    }

    /// Makes the tab `handle` the one commands go to.
    pub async fn switch_to(&self, handle: &WindowHandle) {
        self.client
            .switch_to_window(handle.clone())
            .await
            .expect("WebDriver switch to window");
    }

    /// Resizes the window (the viewport is a little smaller).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("WebDriver resize");
    }

    /// Saves a PNG of the viewport as a test artifact under the target dir's `browser/`,
    /// and returns its path.
    pub async fn save_screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .expect("WebDriver screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        std::fs::create_dir_all(&dir).expect("create the screenshot dir");
        let path = dir.join(name);
        std::fs::write(&path, &png).expect("write the screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop also runs while a panic or a timeout unwinds.
        kill_group(self.group);
        let _ = self.driver.start_kill();
        // Reap chromedriver now: the runtime that would do it later may be gone.
        for _ in 0..40 {
            if !matches!(self.driver.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        // `self.profile` is removed after this, once Chromium no longer writes to it.
    }
}

/// Opens a WebDriver session at `url` over plain HTTP (chromedriver is on 127.0.0.1, so
/// no TLS), retrying while chromedriver does not answer yet: it may print its port just
/// before it accepts connections.
async fn connect(url: &str, capabilities: Capabilities) -> Result<Client, NewSessionError> {
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match builder.connect(url).await {
            Err(NewSessionError::Failed(_) | NewSessionError::FailedC(_))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => return result,
        }
    }
}

/// SIGKILL to chromedriver's process group: chromedriver and any Chromium left.
fn kill_group(group: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}

/// A fresh Chromium user-data dir under the system temp dir, removed on drop.
#[derive(Debug)]
struct Profile(PathBuf);

impl Profile {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("herald-chromium-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Self(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        // Chromium may still be flushing files for a moment after it was killed.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
