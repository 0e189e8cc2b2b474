//! Helpers shared by the tests that run a real alertmanager against a webhook receiver on
//! 127.0.0.1.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_alertmanager::time::SystemClock;
use strata_alertmanager::{router, Alertmanager, AlertmanagerConfig, AlertmanagerError};
use strata_model::TenancyConfig;

/// One webhook call: the path it was sent to, its payload, its `Authorization` header, when
/// it arrived.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub at: Instant,
}

/// A webhook receiver. Paths starting with `fail` answer 400 (a failure that is not retried).
pub struct Hook {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(calls): State<Arc<Mutex<Vec<Call>>>>,
    Path(path): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fail = path.starts_with("fail");
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    calls.lock().push(Call {
        path,
        body,
        authorization,
        at: Instant::now(),
    });
    if fail {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

impl Hook {
    pub async fn start() -> Hook {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook receiver");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = Router::new()
            .route("/{path}", post(record))
            .with_state(calls.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hook { url, calls, task }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().clone()
    }

    /// Calls to `path` whose group has `alertname`.
    pub fn calls_for(&self, path: &str, alertname: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == path && c.body["groupLabels"]["alertname"] == alertname)
            .collect()
    }

    /// Waits until `n` calls match, or panics after `timeout`.
    pub async fn wait_for(&self, path: &str, alertname: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.calls_for(path, alertname).len() < n {
            assert!(
                Instant::now() < deadline,
                "{n} notification(s) of {alertname} to /{path} not received within {timeout:?}; got {:?}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Builds an alertmanager with the wall clock over `data_dir`, with settings given as YAML.
pub fn build(
    data_dir: &std::path::Path,
    settings: &str,
    tenancy: TenancyConfig,
    registry: &mut Registry,
) -> Result<Arc<Alertmanager>, AlertmanagerError> {
    let settings: AlertmanagerConfig =
        serde_yaml::from_str(settings).expect("alertmanager settings YAML");
    Alertmanager::new(
        settings,
        data_dir,
        "http://strata.test:9009",
        Arc::new(SystemClock),
        tenancy,
        registry,
        None,
    )
}

/// [`build`] for a replica of the ring kept in `kv`.
pub fn build_in_ring(
    data_dir: &std::path::Path,
    settings: &str,
    tenancy: TenancyConfig,
    registry: &mut Registry,
    kv: Arc<dyn strata_meta::KvStore>,
) -> Result<Arc<Alertmanager>, AlertmanagerError> {
    build_in_ring_with(
        data_dir,
        settings,
        tenancy,
        registry,
        strata_alertmanager::RingBackend::new(kv),
    )
}

/// [`build_in_ring`] with a ring backend of the caller's (mutual TLS).
pub fn build_in_ring_with(
    data_dir: &std::path::Path,
    settings: &str,
    tenancy: TenancyConfig,
    registry: &mut Registry,
    backend: strata_alertmanager::RingBackend,
) -> Result<Arc<Alertmanager>, AlertmanagerError> {
    let settings: AlertmanagerConfig =
        serde_yaml::from_str(settings).expect("alertmanager settings YAML");
    Alertmanager::new(
        settings,
        data_dir,
        "http://strata.test:9009",
        Arc::new(SystemClock),
        tenancy,
        registry,
        Some(backend),
    )
}

pub fn multi_tenant() -> TenancyConfig {
    serde_yaml::from_str("mode: header").expect("tenancy YAML")
}

/// An alertmanager whose loop runs and whose API listens on 127.0.0.1.
pub struct Running {
    pub am: Arc<Alertmanager>,
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runner: Option<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn start(am: Arc<Alertmanager>) -> Running {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let runner = tokio::spawn(am.clone().run(async {
            let _ = stop_rx.await;
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind api");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = router(am.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Running {
            am,
            base,
            stop: Some(stop_tx),
            runner: Some(runner),
            server,
        }
    }

    /// Stops the loop and the API, then takes the final snapshot, as the binary does.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(r) = self.runner.take() {
            r.await.expect("alertmanager loop");
        }
        self.server.abort();
        self.am.shutdown().expect("final snapshot");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(r) = &self.runner {
            r.abort();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Sends a request with an optional tenant header; returns (status, body).
pub async fn call(
    method: reqwest::Method,
    url: &str,
    tenant: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    let mut req = client().request(method.clone(), url);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

pub async fn get_json(url: &str, tenant: Option<&str>) -> Value {
    let (status, body) = call(reqwest::Method::GET, url, tenant, None).await;
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

pub async fn post_ok(url: &str, tenant: Option<&str>, body: &Value) -> Value {
    let (status, text) = call(reqwest::Method::POST, url, tenant, Some(body.to_string())).await;
    assert_eq!(status, 200, "POST {url}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// An alert that fires for an hour from now.
pub fn firing(labels: Value) -> Value {
    let now = chrono::Utc::now();
    serde_json::json!({
        "labels": labels,
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
    })
}

/// A silence on `alertname` for an hour from now.
pub fn silence(alertname: &str) -> Value {
    let now = chrono::Utc::now();
    serde_json::json!({
        "matchers": [{"name": "alertname", "value": alertname, "isRegex": false, "isEqual": true}],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "test",
        "comment": "integration test",
    })
}

/// The `alertname`s in an API alert listing, sorted.
pub fn alertnames(listing: &Value) -> Vec<String> {
    let mut v: Vec<String> = listing
        .as_array()
        .expect("array")
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}
