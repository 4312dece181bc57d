//! Runs the real `herald` binary for end-to-end tests.
//!
//! [`Server::builder`] writes an optional TOML config into a fresh temporary
//! directory (the child's working directory, removed on drop), starts
//! `herald serve --listen 127.0.0.1:0 [--config FILE]`, reads the
//! `herald listening on http://ADDR` line from its stdout and waits for
//! `GET /healthz` to answer 200. The child's stderr is forwarded through
//! `eprintln!`, so the test harness shows its logs only when a test fails.
//!
//! It runs the binary it is given and guesses none: herald-server's own
//! integration tests pass `env!("CARGO_BIN_EXE_herald")`, the path of the
//! binary cargo builds for them, so a stale binary is never the one tested.
//!
//! ```no_run
//! # async fn example() {
//! use herald_testkit::server::Server;
//!
//! // In herald-server's tests: `Server::builder(env!("CARGO_BIN_EXE_herald"))`.
//! let server = Server::builder("target/debug/herald")
//!     .config_toml("[sse]\nheartbeat_ms = 200\n")
//!     .env("HERALD_RETENTION__MAX_EVENTS", "10")
//!     .spawn()
//!     .await;
//! let mut events = server.subscribe(&["orders.*"]).await;
//! let id = server.publish(serde_json::json!({"topic": "orders.created", "data": "hi"})).await;
//! assert_eq!(events.next_event(std::time::Duration::from_secs(5)).await.last_event_id, id);
//! # }
//! ```

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    http::{self, Response},
    sse::{self, SseClient},
};

/// How long the server may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `GET /healthz` may take to answer 200 after that.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
const LISTENING: &str = "herald listening on http://";

mod temp_dir;

use temp_dir::TempDir;

/// Configures and starts a [`Server`].
#[derive(Debug)]
pub struct ServerBuilder {
    bin: PathBuf,
    config: Option<String>,
    envs: Vec<(String, String)>,
    args: Vec<String>,
}

impl ServerBuilder {
    /// The config file's contents (TOML, the keys of `docs/configuration.md`); passed as
    /// `--config`.
    pub fn config_toml(mut self, toml: impl Into<String>) -> Self {
        self.config = Some(toml.into());
        self
    }

    /// Sets an environment variable for the server, e.g.
    /// `("HERALD_SSE__HEARTBEAT_MS", "200")`.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Adds an argument after `serve --listen 127.0.0.1:0 [--config FILE]`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the server and waits until `GET /healthz` answers 200.
    ///
    /// Config variables inherited from the test's environment
    /// (`HERALD_SECTION__KEY`) are removed so a developer's shell cannot
    /// change the tests; set them with [`env`](Self::env).
    ///
    /// # Panics
    ///
    /// When the binary is missing, exits early, or is not up in time; the
    /// message includes its stderr.
    pub async fn spawn(self) -> Server {
        let dir = TempDir::new();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(toml) = &self.config {
            let file = dir.path().join("herald.toml");
            std::fs::write(&file, toml).expect("write the test config");
            cmd.arg("--config").arg(file);
        }
        for (key, _) in std::env::vars_os() {
            if key
                .to_str()
                .is_some_and(|k| k.starts_with("HERALD_") && k.contains("__"))
            {
                cmd.env_remove(key);
            }
        }
        cmd.args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.bin.display()));
        let pid = child.id().expect("a just-spawned child has a pid");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_task = tokio::spawn(forward_stderr(
            child.stderr.take().expect("stderr is piped"),
            pid,
            Arc::clone(&stderr),
        ));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            stderr,
            tasks: vec![stderr_task],
            _dir: dir,
        };
        let listening = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = stdout.next_line().await.ok().flatten() {
                if let Some(addr) = line.strip_prefix(LISTENING) {
                    return Some(addr.trim_end_matches('/').parse::<SocketAddr>());
                }
            }
            None
        })
        .await;
        server.addr = match listening {
            Ok(Some(Ok(addr))) => addr,
            Ok(Some(Err(err))) => server.fail(&format!("bad listening line ({err})")).await,
            Ok(None) => server.fail("stdout closed before the listening line").await,
            Err(_) => {
                let msg = format!("no listening line within {START_TIMEOUT:?}");
                server.fail(&msg).await
            }
        };
        server.tasks.push(tokio::spawn(async move {
            while let Ok(Some(_)) = stdout.next_line().await {}
        }));
        server.wait_healthy().await;
        server
    }
}

async fn forward_stderr(pipe: impl AsyncRead + Unpin, pid: u32, keep: Arc<Mutex<Vec<String>>>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[herald {pid}] {line}");
        keep.lock().expect("stderr buffer lock").push(line);
    }
}

/// A running `herald` child process; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
    pid: u32,
    stderr: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
    _dir: TempDir,
}

impl Server {
    /// A builder for a server that runs the `herald` binary at `bin`, with
    /// the config, env and args set on it.
    pub fn builder(bin: impl Into<PathBuf>) -> ServerBuilder {
        ServerBuilder {
            bin: bin.into(),
            config: None,
            envs: Vec::new(),
            args: Vec::new(),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The stderr lines the server printed so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr buffer lock").clone()
    }

    /// Sends SIGTERM (with the `kill` command).
    ///
    /// # Panics
    ///
    /// When `kill` cannot be run or fails.
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run `kill -TERM`");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid);
    }

    /// Sends SIGKILL: the process dies at once, no shutdown, like a crashed node.
    pub fn sigkill(&self) {
        let status = std::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .expect("run `kill -KILL`");
        assert!(status.success(), "kill -KILL {} failed: {status}", self.pid);
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Some(status.expect("wait for the herald child")),
            Err(_) => None,
        }
    }

    /// `GET path` against this server (see [`http::get`]).
    pub async fn get(&self, path: &str) -> Response {
        http::get(self.addr, path, &[]).await
    }

    /// `POST path` with a JSON body against this server (see [`http::post_json`]).
    pub async fn post_json(&self, path: &str, body: &str) -> Response {
        http::post_json(self.addr, path, body, &[]).await
    }

    /// Publishes one event (`POST /publish`) and returns its id.
    ///
    /// # Panics
    ///
    /// Unless the reply is `200 {"id": "..."}`.
    pub async fn publish(&self, event: serde_json::Value) -> String {
        let res = self.post_json("/publish", &event.to_string()).await;
        res.assert_status(200).json()["id"]
            .as_str()
            .unwrap_or_else(|| panic!("publish reply has no id: {}", res.text()))
            .to_owned()
    }

    /// Opens `GET /events?topic=…` for `selectors`, checks the 200 and
    /// takes the `herald.connected` opening event.
    ///
    /// # Panics
    ///
    /// When the subscription fails or does not open in time.
    pub async fn subscribe(&self, selectors: &[&str]) -> SseClient {
        let path = sse::events_path(selectors);
        let mut client = SseClient::connect(self.addr, &path, &[])
            .await
            .unwrap_or_else(|err| panic!("GET {path} failed: {err}"));
        assert_eq!(client.status(), 200, "GET {path}: {}", client.body_text());
        client.expect_connected(Duration::from_secs(10)).await;
        client
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            match http::request(self.addr, "GET", "/healthz", &[], b"").await {
                Ok(res) if res.status == 200 => return,
                Ok(res) => last = format!("status {} body {:?}", res.status, res.text()),
                Err(err) => last = err.to_string(),
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!("exited with {status} before /healthz answered"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let msg = format!("GET /healthz not 200 within {HEALTH_TIMEOUT:?} (last: {last})");
        self.fail(&msg).await;
    }

    async fn fail(&mut self, why: &str) -> ! {
        let status = match self.wait_exit(Duration::from_millis(500)).await {
            Some(status) => status.to_string(),
            None => "still running".to_owned(),
        };
        // Let the forwarder catch the last lines of a crashed server.
        if let Some(task) = self.tasks.first_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        panic!(
            "herald (pid {}) did not start: {why}; {status}; stderr:\n{}",
            self.pid,
            self.stderr().join("\n")
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.child.start_kill();
    }
}
