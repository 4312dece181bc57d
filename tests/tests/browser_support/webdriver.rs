//! Headless Chromium driven over WebDriver (W3C) through Debian's `chromedriver`.
//!
//! Only the handful of commands the browser tests use: navigate, run a script, find an
//! element, click it, type into it, press keys, open a tab, resize, take a screenshot.
//! They are plain JSON over HTTP to `chromedriver` on `127.0.0.1`, sent with the
//! testkit's HTTP client, so the tests add no dependency.
//!
//! Cleanup holds on every path, a panic or a timeout included: [`Browser`]'s `Drop`
//! closes the session (chromedriver quits Chromium), then kills chromedriver's whole
//! process group (it starts Chromium inside it), then removes the fresh user-data dir.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use herald_testkit::{http, services::skip_or_fail};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    time::Instant,
};

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

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

/// A headless Chromium with one WebDriver session; quit and cleaned up on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    /// chromedriver's pid, which is also its process group's id.
    group: u32,
    addr: SocketAddr,
    session: String,
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
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"script": 5000, "pageLoad": 10000, "implicit": 0},
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut browser = Self {
            driver: child,
            group,
            addr,
            session: String::new(),
            profile,
        };
        let reply = browser
            .command("POST", "/session", Some(&capabilities))
            .await;
        browser.session = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {reply}"))
            .to_owned();
        Some(browser)
    }

    /// Sends one WebDriver command and returns its `value`.
    async fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        let headers = [("Content-Type", "application/json; charset=utf-8")];
        let deadline = Instant::now() + START_TIMEOUT;
        let res = loop {
            match http::request(self.addr, method, path, &headers, body.as_bytes()).await {
                Ok(res) => break res,
                // chromedriver may print its port just before it accepts connections.
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionRefused
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("WebDriver {method} {path} failed: {e}"),
            }
        };
        let json = res.json();
        assert!(
            res.status == 200,
            "WebDriver {method} {path} answered {}: {} ({})",
            res.status,
            json["value"]["error"],
            json["value"]["message"]
        );
        json["value"].clone()
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Loads `url` and waits for its `load` event.
    pub async fn goto(&self, url: &str) {
        self.command("POST", &self.at("/url"), Some(&json!({"url": url})))
            .await;
    }

    /// Runs `script` as a function body in the page (`arguments[i]` are `args`) and
    /// returns what it returns.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        let body = json!({"script": script, "args": args});
        self.command("POST", &self.at("/execute/sync"), Some(&body))
            .await
    }

    /// Runs `script` every 50 ms until it returns something other than `null` or
    /// `false`, and returns that.
    ///
    /// # Panics
    ///
    /// After `timeout`, naming `what` and showing the last value.
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
        let body = json!({"using": "css selector", "value": selector});
        let value = self
            .command("POST", &self.at("/element"), Some(&body))
            .await;
        Element(
            value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element for {selector}: {value}"))
                .to_owned(),
        )
    }

    /// Clicks `element`.
    pub async fn click(&self, element: &Element) {
        let path = self.at(&format!("/element/{}/click", element.0));
        self.command("POST", &path, Some(&json!({}))).await;
    }

    /// Empties the input or textarea `element`.
    pub async fn clear(&self, element: &Element) {
        let path = self.at(&format!("/element/{}/clear", element.0));
        self.command("POST", &path, Some(&json!({}))).await;
    }

    /// Focuses `element` and types `text` into it, key by key (`\u{E007}` is Enter).
    pub async fn type_into(&self, element: &Element, text: &str) {
        let path = self.at(&format!("/element/{}/value", element.0));
        self.command("POST", &path, Some(&json!({"text": text})))
            .await;
    }

    /// Presses and releases each key of `keys` on whatever has the focus.
    pub async fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                let key = c.to_string();
                [
                    json!({"type": "keyDown", "value": key}),
                    json!({"type": "keyUp", "value": key}),
                ]
            })
            .collect();
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.command("POST", &self.at("/actions"), Some(&body))
            .await;
    }

    /// Opens a new tab and switches to it; returns the handle of the tab it left.
    pub async fn new_tab(&self) -> String {
        let previous = self.command("GET", &self.at("/window"), None).await;
        let tab = self
            .command(
                "POST",
                &self.at("/window/new"),
                Some(&json!({"type": "tab"})),
            )
            .await;
        self.switch_to(tab["handle"].as_str().expect("a new tab has a handle"))
            .await;
        previous.as_str().expect("a window handle").to_owned()
    }

    /// Makes the tab `handle` the one commands go to.
    pub async fn switch_to(&self, handle: &str) {
        self.command(
            "POST",
            &self.at("/window"),
            Some(&json!({"handle": handle})),
        )
        .await;
    }

    /// Resizes the window (the viewport is a little smaller).
    pub async fn resize(&self, width: u32, height: u32) {
        let body = json!({"width": width, "height": height});
        self.command("POST", &self.at("/window/rect"), Some(&body))
            .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let value = self.command("GET", &self.at("/screenshot"), None).await;
        STANDARD
            .decode(value.as_str().expect("a screenshot is base64 text"))
            .expect("a screenshot is valid base64")
    }

    /// Saves a screenshot as a test artifact under the target dir's `browser/`, and
    /// returns its path.
    pub async fn save_screenshot(&self, name: &str) -> PathBuf {
        let png = self.screenshot().await;
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
        if !self.session.is_empty() {
            let _ = delete_session(self.addr, &self.session);
        }
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

/// `DELETE /session/ID` over a blocking socket: chromedriver quits Chromium.
fn delete_session(addr: SocketAddr, session: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    // Read the reply, not to the end: chromedriver may keep the connection open.
    let mut reply = Vec::new();
    let mut buf = [0; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            length.is_none_or(|length| body.len() >= length)
        });
        if n == 0 || complete {
            return Ok(());
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

/// A reference to an element in the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

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
