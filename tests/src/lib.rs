//! Shared harness for Strata's end-to-end tests.
//!
//! Everything here runs real processes (the `strata` binary, Prometheus, node_exporter) bound to
//! 127.0.0.1 only. Every child is owned by a [`ProcessGuard`] that SIGKILLs it by pid when the
//! guard is dropped, including while a test panics, and every wait is bounded by a deadline.
//! Each process writes its stdout/stderr to files in a temporary directory; when a test panics
//! the guard prints the tail of those files so the failure explains itself.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use strata_proto::prometheus::{ReadRequest, ReadResponse, WriteRequest};

pub mod delay_proxy;
pub mod faulty_proxy;
pub mod local_cluster;
pub mod query_api;

pub use delay_proxy::DelayProxy;
pub use faulty_proxy::FaultyProxy;
pub use local_cluster::LocalCluster;

/// How many bytes of each log file are printed when a test fails.
pub const LOG_TAIL_BYTES: u64 = 6 * 1024;

/// Default deadline for a process to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-request timeout of the HTTP clients built here; no request can hang a test.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

/// Where the Prometheus binary is expected (Debian package `prometheus`); `PROMETHEUS_BIN`
/// overrides it.
pub fn prometheus_bin() -> PathBuf {
    std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"))
}

/// Where node_exporter is expected (Debian package `prometheus-node-exporter`);
/// `NODE_EXPORTER_BIN` overrides it.
pub fn node_exporter_bin() -> PathBuf {
    std::env::var_os("NODE_EXPORTER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus-node-exporter"))
}

/// Where promtool is expected (Debian package `prometheus`); `PROMTOOL_BIN` overrides it.
pub fn promtool_bin() -> PathBuf {
    std::env::var_os("PROMTOOL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"))
}

/// The `strata` binary: `$STRATA_BIN` if set, else `strata` in the cargo profile directory that
/// holds this test executable (`…/target/debug/deps/e2e-xxxx` → `…/target/debug/strata`).
pub fn strata_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join("strata");
        if candidate.is_file() {
            return candidate;
        }
        // Stop at the profile directory (the one containing `deps`) once checked.
        if d.file_name().is_some_and(|n| n == "target") {
            break;
        }
        dir = d.parent();
    }
    // Not found: return the canonical expected location so the error message names it.
    exe.parent()
        .and_then(Path::parent)
        .map(|p| p.join("strata"))
        .unwrap_or_else(|| PathBuf::from("strata"))
}

/// Returns an error message naming the binary and how to get it when `path` is not an
/// executable file.
pub fn check_executable(what: &str, path: &Path, how_to_get: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(format!(
            "{what}: {} exists but is not an executable file; {how_to_get}",
            path.display()
        )),
        Err(e) => Err(format!(
            "{what} not found at {} ({e}); {how_to_get}",
            path.display()
        )),
    }
}

/// Panics with a clear message unless the strata binary exists.
pub fn require_strata() -> PathBuf {
    let bin = strata_bin();
    if let Err(e) = check_executable(
        "strata binary",
        &bin,
        "build it first with `cargo build -p strata` (same CARGO_TARGET_DIR) or set STRATA_BIN",
    ) {
        panic!("{e}");
    }
    bin
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// Owns a child process. Dropping the guard SIGKILLs the child (by pid, via `Child::kill`) and
/// reaps it; if the thread is panicking, the tail of the child's logs is printed first.
pub struct ProcessGuard {
    name: String,
    child: Option<Child>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl std::fmt::Debug for ProcessGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGuard")
            .field("name", &self.name)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish()
    }
}

impl ProcessGuard {
    /// Spawns `cmd` with stdin closed and stdout/stderr appended to `<log_dir>/<name>.stdout.log`
    /// and `<log_dir>/<name>.stderr.log` (appended, so a restarted process keeps the earlier log).
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Self {
        let stdout_path = log_dir.join(format!("{name}.stdout.log"));
        let stderr_path = log_dir.join(format!("{name}.stderr.log"));
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap_or_else(|e| panic!("cannot open log file {}: {e}", p.display()))
        };
        cmd.stdin(Stdio::null())
            .stdout(open(&stdout_path))
            .stderr(open(&stderr_path));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Self {
            name: name.to_string(),
            child: Some(child),
            stdout_path,
            stderr_path,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once the child has exited (or was killed by this guard).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten(),
            None => None,
        }
    }

    /// SIGKILLs the child and reaps it. Returns its exit status (None if already reaped).
    /// SIGTERM, then waits up to `grace` for a clean exit before SIGKILL.
    pub fn terminate(&mut self, grace: std::time::Duration) -> Option<ExitStatus> {
        let pid = self.pid()?;
        signal_pid(pid, "TERM");
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Some(st) = self.try_exit_status() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.kill()
    }

    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // `Child::kill` sends SIGKILL to this pid; it errors only if the child was reaped.
        let _ = child.kill();
        child.wait().ok()
    }

    /// The last [`LOG_TAIL_BYTES`] of the child's stdout and stderr, labelled.
    pub fn log_tail(&self) -> String {
        format!(
            "----- {name} stdout ({out}) -----\n{o}\n----- {name} stderr ({err}) -----\n{e}\n----- end of {name} logs -----",
            name = self.name,
            out = self.stdout_path.display(),
            err = self.stderr_path.display(),
            o = tail_of_file(&self.stdout_path, LOG_TAIL_BYTES),
            e = tail_of_file(&self.stderr_path, LOG_TAIL_BYTES),
        )
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        self.kill();
    }
}

/// The last `n` bytes of a file (lossy UTF-8), or a note saying why it could not be read.
pub fn tail_of_file(path: &Path, n: u64) -> String {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("<cannot read {}: {e}>", path.display()),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(n);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return "<seek failed>".into();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let s = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        format!("[… {start} earlier bytes omitted …]\n{s}")
    } else {
        s
    }
}

/// A free TCP port on 127.0.0.1 (bound to port 0, then released). There is a small window in
/// which another process could take it; start-up failures print the child's log, which says so.
/// Never the same port twice in one test process: the kernel readily hands a just-released port
/// out again, and a test that picks several ports before starting their processes (a ring's
/// peer ports, then each process's HTTP port) would otherwise give one port to two of them.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Ports already given stay bound until a new one turns up, so the kernel moves on.
    let mut held = Vec::new();
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
        held.push(l);
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_millis() as i64
}

/// Milliseconds → the `start`/`end` parameter format of the Prometheus HTTP API (seconds with
/// millisecond precision).
pub fn api_time(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("build reqwest client")
}

/// Polls `GET url` until it answers 200, the process exits, or `timeout` passes; panics with the
/// process's log tail in the last two cases.
pub async fn wait_until_ready(
    client: &reqwest::Client,
    url: &str,
    guard: &mut ProcessGuard,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt yet");
    loop {
        if let Some(status) = guard.try_exit_status() {
            panic!(
                "{} exited ({status}) before {url} became ready; last probe: {last}\n{}",
                guard.name(),
                guard.log_tail()
            );
        }
        match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => return,
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                last = format!("HTTP {status}: {}", truncate(&body, 300));
            }
            Err(e) => last = format!("request error: {}", error_chain(&e)),
        }
        if Instant::now() >= deadline {
            panic!(
                "{} did not become ready at {url} within {timeout:?}; last probe: {last}\n{}",
                guard.name(),
                guard.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An error and all its sources, `: `-separated (reqwest's Display alone hides the cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes total]", &s[..end], s.len())
}

// ---------------------------------------------------------------------------------------------
// Strata
// ---------------------------------------------------------------------------------------------

/// A temporary directory for one test: strata's data directory (`data/`), process logs, and
/// Prometheus's config and TSDB. It outlives a killed strata so a new one can start on the same
/// data. If a test panics while it is alive, the directory is kept on disk and its path printed.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDir")
            .field("root", &self.root())
            .finish()
    }
}

impl TestDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("strata-e2e-")
            .tempdir()
            .expect("create temp dir");
        std::fs::create_dir_all(dir.path().join("data")).expect("create data dir");
        Self { dir: Some(dir) }
    }

    pub fn root(&self) -> &Path {
        self.dir.as_ref().expect("dir present until drop").path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.dir.take() {
                let p = d.keep();
                eprintln!(
                    "test failed: keeping test directory {} for inspection",
                    p.display()
                );
            }
        }
    }
}

/// A running strata process (single-process mode) and a client for its HTTP API.
pub struct Strata {
    // Field order matters: the process is killed before the directory is removed.
    process: ProcessGuard,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    dir: TestDir,
}

impl std::fmt::Debug for Strata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strata")
            .field("addr", &self.addr)
            .field("dir", &self.dir)
            .finish()
    }
}

/// The outcome of one push.
#[derive(Debug, Clone)]
pub struct PushResponse {
    pub status: reqwest::StatusCode,
    pub body: String,
}

impl Strata {
    /// Starts strata on a fresh temporary directory and waits until `/ready` answers 200.
    pub async fn start() -> Self {
        Self::start_in(TestDir::new()).await
    }

    /// Starts strata on an existing directory (e.g. the one of a killed instance) on a new port.
    pub async fn start_in(dir: TestDir) -> Self {
        Self::start_with_config(dir, None).await
    }

    /// Like [`Strata::start_in`], with a YAML configuration file (written into the directory).
    pub async fn start_with_config(dir: TestDir, config_yaml: Option<&str>) -> Self {
        let bin = require_strata();
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new(&bin);
        if let Some(yaml) = config_yaml {
            let path = dir.root().join("strata.yml");
            std::fs::write(&path, yaml).expect("write strata config");
            cmd.arg("--config").arg(path);
        }
        cmd.arg("--data-dir")
            .arg(dir.data_dir())
            .arg("--http-listen-address")
            .arg(addr.to_string());
        let mut process = ProcessGuard::spawn("strata", cmd, dir.root());
        let client = http_client();
        wait_until_ready(
            &client,
            &format!("http://{addr}/ready"),
            &mut process,
            READY_TIMEOUT,
        )
        .await;
        Self {
            process,
            addr,
            client,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// The process's whole `/metrics` exposition.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The process's `/metrics` value of `name` (no labels), or 0 if absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }

    /// Starts strata with `--target=<target>`, a YAML configuration, and a process name for
    /// its log files and failure output (several instances in one test).
    pub async fn start_target(dir: TestDir, name: &str, target: &str, config_yaml: &str) -> Self {
        let bin = require_strata();
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let path = dir.root().join(format!("{name}.yml"));
        std::fs::write(&path, config_yaml).expect("write strata config");
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(path)
            .arg(format!("--target={target}"))
            .arg("--data-dir")
            .arg(dir.data_dir())
            .arg("--http-listen-address")
            .arg(addr.to_string());
        let mut process = ProcessGuard::spawn(name, cmd, dir.root());
        let client = http_client();
        wait_until_ready(
            &client,
            &format!("http://{addr}/ready"),
            &mut process,
            READY_TIMEOUT,
        )
        .await;
        Self {
            process,
            addr,
            client,
            dir,
        }
    }

    /// SIGKILLs strata and hands back its directory for a restart.
    pub fn kill(self) -> TestDir {
        let Strata {
            mut process, dir, ..
        } = self;
        process.kill();
        dir
    }

    /// Stops strata gracefully (SIGTERM; SIGKILL after 30 s) and hands back its directory.
    pub fn stop(self) -> TestDir {
        let Strata {
            mut process, dir, ..
        } = self;
        process.terminate(std::time::Duration::from_secs(30));
        dir
    }

    /// POSTs a remote-write 1.0 request (snappy block format, protobuf). Transport errors are
    /// returned as `Err`; any HTTP status is `Ok`.
    pub async fn push(&self, req: &WriteRequest) -> Result<PushResponse, reqwest::Error> {
        push_to(&self.client, &self.url("/api/v1/push"), req).await
    }

    /// Pushes and panics unless the answer is 2xx.
    pub async fn push_ok(&self, req: &WriteRequest) {
        let r = self
            .push(req)
            .await
            .unwrap_or_else(|e| panic!("push failed: {}\n{}", error_chain(&e), self.log_tail()));
        assert!(
            r.status.is_success(),
            "push answered {} (expected 2xx): {}\n{}",
            r.status,
            r.body,
            self.log_tail()
        );
    }

    /// POSTs raw bytes to `/api/v1/push` with the given headers (for malformed-request tests).
    pub async fn push_raw(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> PushResponse {
        let mut rb = self.client.post(self.url("/api/v1/push")).body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap_or_else(|e| {
            panic!("push_raw failed: {}\n{}", error_chain(&e), self.log_tail())
        });
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        PushResponse { status, body }
    }

    /// Prometheus remote read (SAMPLES response type). Panics with strata's log on any failure.
    pub async fn remote_read(&self, req: &ReadRequest) -> ReadResponse {
        remote_read_from(&self.client, &self.url("/api/v1/read"), req)
            .await
            .unwrap_or_else(|e| panic!("remote read failed: {e}\n{}", self.log_tail()))
    }

    /// `GET /api/v1/series` over [start_ms, end_ms]; panics with strata's log on any failure.
    pub async fn series(&self, matchers: &[&str], start_ms: i64, end_ms: i64) -> Vec<LabelSet> {
        series_from(&self.client, &self.url(""), matchers, start_ms, end_ms)
            .await
            .unwrap_or_else(|e| panic!("strata series query failed: {e}\n{}", self.log_tail()))
    }
}

/// Sends `signal` (a name `kill -s` takes, e.g. `STOP`, `CONT`) to one process by pid.
pub fn signal_pid(pid: u32, signal: &str) {
    let out = run_bounded(
        {
            let mut c = Command::new("kill");
            c.arg("-s").arg(signal).arg(pid.to_string());
            c
        },
        Duration::from_secs(5),
    );
    assert!(
        out.status.success(),
        "kill -s {signal} {pid} failed: {}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Webhook receiver
// ---------------------------------------------------------------------------------------------

/// One request a [`WebhookReceiver`] got: its path, JSON body and arrival time.
#[derive(Debug, Clone)]
pub struct WebhookCall {
    pub path: String,
    pub body: serde_json::Value,
    pub at: Instant,
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every request 200 and records it: the
/// notification target of alertmanager tests. Minimal on purpose (one request per connection
/// is enough for Alertmanager-style webhooks, which the server closes after answering).
pub struct WebhookReceiver {
    pub url: String,
    calls: std::sync::Arc<std::sync::Mutex<Vec<WebhookCall>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("url", &self.url)
            .finish()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_http_request(stream: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let path = head.split_whitespace().nth(1)?.to_string();
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((path, buf[header_end..header_end + len].to_vec()))
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook receiver");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let calls: std::sync::Arc<std::sync::Mutex<Vec<WebhookCall>>> = Default::default();
        let recorded = calls.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    if let Some((path, body)) = read_http_request(&mut stream).await {
                        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                        recorded
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(WebhookCall {
                                path,
                                body,
                                at: Instant::now(),
                            });
                        let _ = stream
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            )
                            .await;
                        let _ = stream.shutdown().await;
                    }
                });
            }
        });
        Self { url, calls, task }
    }

    pub fn calls(&self) -> Vec<WebhookCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls whose payload's `groupLabels.alertname` is `alertname`.
    pub fn calls_for(&self, alertname: &str) -> Vec<WebhookCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.body["groupLabels"]["alertname"] == alertname)
            .collect()
    }

    /// Waits until at least `n` calls for `alertname` arrived; panics after `timeout`.
    pub async fn wait_for(&self, alertname: &str, n: usize, timeout: Duration) -> Vec<WebhookCall> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.calls_for(alertname);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{n} notification(s) for {alertname} not received within {timeout:?}; got {} call(s) in all: {:?}",
                got.len(),
                self.calls().iter().map(|c| (&c.path, &c.body["groupLabels"])).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire helpers
// ---------------------------------------------------------------------------------------------

/// A series' labels, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

pub fn snappy_compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compress")
}

pub fn encode_write_request(req: &WriteRequest) -> Vec<u8> {
    snappy_compress(&req.encode_to_vec())
}

pub async fn push_to(
    client: &reqwest::Client,
    url: &str,
    req: &WriteRequest,
) -> Result<PushResponse, reqwest::Error> {
    let r = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(encode_write_request(req))
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    Ok(PushResponse { status, body })
}

pub async fn remote_read_from(
    client: &reqwest::Client,
    url: &str,
    req: &ReadRequest,
) -> Result<ReadResponse, String> {
    let r = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .body(snappy_compress(&req.encode_to_vec()))
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
    let status = r.status();
    let body = r
        .bytes()
        .await
        .map_err(|e| format!("reading body of {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "POST {url} answered {status}: {}",
            truncate(&String::from_utf8_lossy(&body), 500)
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .map_err(|e| {
            format!(
                "remote read response is not snappy block format ({} bytes): {e}",
                body.len()
            )
        })?;
    ReadResponse::decode(raw.as_slice())
        .map_err(|e| format!("remote read response is not a ReadResponse: {e}"))
}

/// `GET <base>/api/v1/series?match[]=…&start=…&end=…` against Prometheus or strata, parsed as
/// Prometheus's JSON (`{"status":"success","data":[{label: value, …}, …]}`).
pub async fn series_from(
    client: &reqwest::Client,
    base: &str,
    matchers: &[&str],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<LabelSet>, String> {
    let mut params: Vec<(&str, String)> = matchers
        .iter()
        .map(|m| ("match[]", m.to_string()))
        .collect();
    params.push(("start", api_time(start_ms)));
    params.push(("end", api_time(end_ms)));
    let url = format!("{base}/api/v1/series");
    let r = client
        .get(&url)
        .query(&params)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = r.status();
    let text = r
        .text()
        .await
        .map_err(|e| format!("GET {url}: reading body: {e}"))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "GET {url} {params:?} answered {status}: {}",
            truncate(&text, 1000)
        ));
    }
    parse_series_response(&text)
        .map_err(|e| format!("GET {url} {params:?}: {e}; body: {}", truncate(&text, 1000)))
}

/// Parses a Prometheus `/api/v1/series` JSON body strictly.
pub fn parse_series_response(text: &str) -> Result<Vec<LabelSet>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("status").and_then(|s| s.as_str()) != Some("success") {
        return Err("\"status\" is not \"success\"".into());
    }
    let data = v
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or("\"data\" is not an array")?;
    data.iter()
        .map(|entry| {
            let obj = entry
                .as_object()
                .ok_or_else(|| format!("series entry is not an object: {entry}"))?;
            obj.iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|s| (k.clone(), s.to_string()))
                        .ok_or_else(|| format!("label value of {k} is not a string: {entry}"))
                })
                .collect::<Result<LabelSet, String>>()
        })
        .collect()
}

/// `{a="b", c="d"}` rendering for messages.
pub fn fmt_labels(ls: &LabelSet) -> String {
    let inner: Vec<String> = ls.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Prometheus and node_exporter
// ---------------------------------------------------------------------------------------------

/// A running external process that serves HTTP on `addr` (Prometheus, node_exporter).
#[derive(Debug)]
pub struct External {
    pub process: ProcessGuard,
    pub addr: SocketAddr,
}

impl External {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// Starts node_exporter on a free 127.0.0.1 port, logging into `log_dir`, and waits for
/// `/metrics` to answer.
pub async fn start_node_exporter(log_dir: &Path) -> External {
    let bin = node_exporter_bin();
    if let Err(e) = check_executable(
        "node_exporter",
        &bin,
        "install it with `apt-get install prometheus-node-exporter` or set NODE_EXPORTER_BIN",
    ) {
        panic!("{e}");
    }
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = Command::new(bin);
    // The systemd collector needs a system bus; without one it logs an error on every scrape,
    // burying anything useful in the log tail.
    cmd.arg(format!("--web.listen-address={addr}"))
        .arg("--no-collector.systemd");
    let mut process = ProcessGuard::spawn("node_exporter", cmd, log_dir);
    wait_until_ready(
        &http_client(),
        &format!("http://{addr}/metrics"),
        &mut process,
        READY_TIMEOUT,
    )
    .await;
    External { process, addr }
}

/// Starts Prometheus with `config_yaml` (where the literal `$PROMETHEUS_ADDR` is replaced by its
/// own listen address), a temporary TSDB under `work_dir`, and waits for `/-/ready`.
pub async fn start_prometheus(work_dir: &Path, config_yaml: &str) -> External {
    let bin = prometheus_bin();
    if let Err(e) = check_executable(
        "prometheus",
        &bin,
        "install it with `apt-get install prometheus` or set PROMETHEUS_BIN",
    ) {
        panic!("{e}");
    }
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config_path = work_dir.join("prometheus.yml");
    std::fs::write(
        &config_path,
        config_yaml.replace("$PROMETHEUS_ADDR", &addr.to_string()),
    )
    .expect("write prometheus.yml");
    let tsdb = work_dir.join("prometheus-data");
    std::fs::create_dir_all(&tsdb).expect("create prometheus tsdb dir");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=info");
    let mut process = ProcessGuard::spawn("prometheus", cmd, work_dir);
    wait_until_ready(
        &http_client(),
        &format!("http://{addr}/-/ready"),
        &mut process,
        READY_TIMEOUT,
    )
    .await;
    External { process, addr }
}

/// Prometheus configuration used by the tests that compare strata with Prometheus: scrape
/// node_exporter and Prometheus itself every second, and remote-write everything to strata with
/// short batching deadlines so strata lags by about a second.
pub fn scrape_and_remote_write_config(node_exporter: SocketAddr, strata: SocketAddr) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['{node_exporter}']
  - job_name: prometheus
    static_configs:
      - targets: ['$PROMETHEUS_ADDR']
remote_write:
  - url: http://{strata}/api/v1/push
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"#
    )
}

/// strata, node_exporter and a Prometheus that scrapes node_exporter and itself every second and
/// remote-writes to strata ([`scrape_and_remote_write_config`]). Dropping it kills Prometheus
/// first (so it stops writing), then node_exporter, then strata.
pub struct ScrapeSetup {
    // Field order is drop order.
    pub prometheus: External,
    pub node_exporter: External,
    pub strata: Strata,
    /// When Prometheus answered `/-/ready` (ms); its first scrapes follow within a second.
    pub ready_ms: i64,
    pub work: TestDir,
}

impl std::fmt::Debug for ScrapeSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeSetup")
            .field("prometheus", &self.prometheus)
            .field("node_exporter", &self.node_exporter)
            .field("strata", &self.strata)
            .field("ready_ms", &self.ready_ms)
            .finish()
    }
}

impl ScrapeSetup {
    pub async fn start() -> Self {
        let strata = Strata::start().await;
        let work = TestDir::new();
        let node_exporter = start_node_exporter(work.root()).await;
        let config = scrape_and_remote_write_config(node_exporter.addr, strata.addr);
        let prometheus = start_prometheus(work.root(), &config).await;
        let ready_ms = now_ms();
        Self {
            prometheus,
            node_exporter,
            strata,
            ready_ms,
            work,
        }
    }

    /// Waits until strata holds an `up` sample of both scrape jobs (Prometheus 2.42 starts
    /// scraping up to ~5 s after it reports ready: its scrape manager applies targets on a 5 s
    /// tick) and returns the latest of the two jobs' first `up` timestamps: from then on every
    /// target has data. Asks strata only, so Prometheus's API stays untouched.
    pub async fn wait_for_first_scrapes(&self, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match query_api::remote_read_all(
                &self.strata.client,
                &self.strata.url("/api/v1/read"),
                self.ready_ms - 60_000,
                now_ms(),
            )
            .await
            {
                Ok(data) => {
                    let firsts: Vec<(String, i64)> = data
                        .iter()
                        .filter(|(ls, _)| ls.get("__name__").map(String::as_str) == Some("up"))
                        .filter_map(|(ls, v)| {
                            Some((ls.get("job")?.clone(), v.first().map(|(t, _)| *t)?))
                        })
                        .collect();
                    let jobs: std::collections::BTreeSet<&str> =
                        firsts.iter().map(|(j, _)| j.as_str()).collect();
                    if jobs.contains("node") && jobs.contains("prometheus") {
                        return firsts.iter().map(|(_, t)| *t).max().unwrap_or(0);
                    }
                    format!("`up` of jobs {jobs:?} so far")
                }
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                panic!(
                    "strata did not receive `up` of both jobs within {timeout:?}: {last}\n{}\n{}",
                    self.prometheus.process.log_tail(),
                    self.strata.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The outcome of a finished command.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion with stdin closed, killing it (by pid) if it is still running after
/// `timeout`. Panics if it cannot be started or timed out. Blocks the calling thread; call it
/// from `tokio::task::spawn_blocking` in async code.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> CommandOutput {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} did not finish within {timeout:?}; killed it");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    CommandOutput {
        status,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_time_formats_milliseconds_as_seconds() {
        assert_eq!(api_time(1_700_000_000_123), "1700000000.123");
        assert_eq!(api_time(5), "0.005");
        assert_eq!(api_time(-1), "-1.999");
    }

    #[test]
    fn series_response_is_parsed_strictly() {
        let ok = r#"{"status":"success","data":[{"__name__":"up","job":"node"},{"__name__":"x"}]}"#;
        let got = parse_series_response(ok).expect("valid body");
        assert_eq!(got.len(), 2);
        assert_eq!(fmt_labels(&got[0]), r#"{__name__="up", job="node"}"#);
        assert!(parse_series_response(r#"{"status":"error","data":[]}"#).is_err());
        assert!(parse_series_response(r#"{"status":"success","data":{}}"#).is_err());
        assert!(parse_series_response(r#"{"status":"success","data":[{"a":1}]}"#).is_err());
        assert!(parse_series_response("not json").is_err());
    }

    #[test]
    fn log_tail_keeps_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("log");
        std::fs::write(&p, "0123456789").expect("write");
        assert_eq!(tail_of_file(&p, 100), "0123456789");
        assert!(
            tail_of_file(&p, 3).ends_with("\n789"),
            "{}",
            tail_of_file(&p, 3)
        );
        assert!(tail_of_file(&dir.path().join("missing"), 3).starts_with("<cannot read"));
    }
}
