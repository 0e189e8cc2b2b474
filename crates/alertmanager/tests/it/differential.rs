//! Differential test against Debian's Alertmanager 0.25: the same configuration and the same
//! pushes go to both; the webhook payloads each sends must be byte-identical once
//! `externalURL` is normalised (arrival time and User-Agent are not compared).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_alertmanager::time::SystemClock;
use strata_alertmanager::{router, Alertmanager, AlertmanagerConfig};

const AM_BIN: &str = "/usr/bin/prometheus-alertmanager";

/// Kills the child by its pid when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ensure_alertmanager() {
    if std::path::Path::new(AM_BIN).exists() {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "prometheus-alertmanager"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    assert!(
        std::path::Path::new(AM_BIN).exists(),
        "{AM_BIN} missing and `apt-get install -y prometheus-alertmanager` did not provide it ({status:?})"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// (who, receiver, body) of every webhook call.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

async fn hook(
    State(rx): State<Received>,
    Path((who, receiver)): Path<(String, String)>,
    body: Bytes,
) -> &'static str {
    rx.lock()
        .push((who, receiver, String::from_utf8_lossy(&body).into_owned()));
    "ok"
}

const CONFIG: &str = r#"
global:
  resolve_timeout: 5m
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: [ 'team="db"' ]
      receiver: db
      group_by: [alertname, cluster]
      continue: true
      routes:
        - match: { severity: critical }
          receiver: db-critical
    - matchers: [ 'team=~"db|web"', 'env!="dev"' ]
      receiver: truncated
    - match_re: { service: "api|web" }
      receiver: all
      group_by: ['...']
receivers:
  - name: default
    webhook_configs: [ { url: 'HOOK/default' } ]
  - name: db
    webhook_configs: [ { url: 'HOOK/db', send_resolved: false } ]
  - name: db-critical
    webhook_configs: [ { url: 'HOOK/db-critical' } ]
  - name: truncated
    webhook_configs: [ { url: 'HOOK/truncated', max_alerts: 1 } ]
  - name: all
    webhook_configs: [ { url: 'HOOK/all' } ]
inhibit_rules:
  - source_matchers: [ 'severity="critical"' ]
    target_matchers: [ 'severity="warning"' ]
    equal: [ cluster ]
"#;

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{base} not ready within 20s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post_both(client: &reqwest::Client, bases: &[&str], path: &str, body: &Value) {
    for base in bases {
        let r = client
            .post(format!("{base}{path}"))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "POST {base}{path}: {status} {text}");
    }
}

fn alert(labels: Value, starts: &str, ends: &str) -> Value {
    json!({"labels": labels, "annotations": {"summary": "s <&>"}, "startsAt": starts, "endsAt": ends,
           "generatorURL": "http://prom:9090/graph?g0.expr=up&g0.tab=1"})
}

/// A comparable view of `GET /api/v2/alerts`: fingerprint, state, receivers.
async fn alert_view(client: &reqwest::Client, base: &str) -> Vec<(String, String, Value)> {
    let v: Value = client
        .get(format!("{base}/api/v2/alerts"))
        .send()
        .await
        .expect("GET alerts")
        .json()
        .await
        .expect("alerts JSON");
    let mut out: Vec<(String, String, Value)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap_or("").to_string(),
                a["status"]["state"].as_str().unwrap_or("").to_string(),
                a["receivers"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_payloads_match_alertmanager_0_25() {
    ensure_alertmanager();
    let dir = tempfile::tempdir().expect("tempdir");

    // The webhook receiver both send to.
    let received: Received = Arc::default();
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind hook");
    let hook_addr = hook_listener.local_addr().expect("hook addr");
    let hook_app = Router::new()
        .route("/{who}/{receiver}", post(hook))
        .with_state(received.clone());
    let hook_server = tokio::spawn(async move {
        let _ = axum::serve(hook_listener, hook_app).await;
    });

    // Upstream Alertmanager.
    let am_cfg = dir.path().join("am.yml");
    std::fs::write(
        &am_cfg,
        CONFIG.replace("HOOK", &format!("http://{hook_addr}/am")),
    )
    .expect("write am.yml");
    let am_port = free_port();
    let am_base = format!("http://127.0.0.1:{am_port}");
    let log = std::fs::File::create(dir.path().join("am.log")).expect("log file");
    let child = Command::new(AM_BIN)
        .arg(format!("--config.file={}", am_cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .arg("--web.external-url=http://upstream.example:9093")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .spawn()
        .expect("spawn prometheus-alertmanager");
    let _am = Proc(child);

    // Strata, in process.
    let strata_cfg = dir.path().join("strata-am.yml");
    std::fs::write(
        &strata_cfg,
        CONFIG.replace("HOOK", &format!("http://{hook_addr}/strata")),
    )
    .expect("write config");
    let settings = AlertmanagerConfig {
        config_file: Some(strata_cfg),
        external_url: Some("http://strata.example:9093".into()),
        ..Default::default()
    };
    let strata = Alertmanager::new(
        settings,
        &PathBuf::from(dir.path()),
        "http://unused",
        Arc::new(SystemClock),
        strata_model::TenancyConfig::default(),
        &mut prometheus_client::registry::Registry::default(),
        None,
    )
    .expect("strata alertmanager");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(strata.clone().run(async {
        let _ = stop_rx.await;
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind strata");
    let strata_base = format!("http://{}", listener.local_addr().expect("strata addr"));
    let app = router(strata.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    wait_ready(&client, &am_base).await;
    wait_ready(&client, &strata_base).await;
    let bases = [am_base.as_str(), strata_base.as_str()];

    // Phase 1: a silence, then the alerts (explicit times, identical for both).
    let t0 = chrono::Utc::now();
    let (start, end) = (ts(t0), ts(t0 + chrono::Duration::hours(1)));
    post_both(
        &client,
        &bases,
        "/api/v2/silences",
        &json!({"matchers": [{"name": "alertname", "value": "Silenced", "isRegex": false, "isEqual": true}],
                "startsAt": start, "endsAt": end, "createdBy": "test", "comment": "differential"}),
    )
    .await;
    let phase1 = json!([
        alert(
            json!({"alertname": "HighLatency", "team": "db", "cluster": "c1", "severity": "warning"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "HighLatency", "team": "db", "cluster": "c2", "severity": "warning"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "HighLatency", "team": "web", "cluster": "c3", "severity": "page"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "HighLatency", "team": "db", "cluster": "c\"4<&>", "severity": "info"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "NodeDown", "cluster": "c1", "severity": "critical"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "DbDown", "team": "db", "cluster": "c1", "severity": "critical"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "Silenced", "team": "web"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "ApiErrors", "service": "api", "job": "j", "instance": "i1"}),
            &start,
            &end
        ),
        alert(
            json!({"alertname": "ApiErrors", "service": "web", "job": "j", "instance": "i2", "env": "dev"}),
            &start,
            &end
        ),
    ]);
    post_both(&client, &bases, "/api/v2/alerts", &phase1).await;
    let phase1_at = Instant::now();

    // After the first flush (group_wait 1s): the API views agree too.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (up_view, strata_view) = (
        alert_view(&client, &am_base).await,
        alert_view(&client, &strata_base).await,
    );
    assert_eq!(up_view.len(), 9);
    assert_eq!(
        strata_view, up_view,
        "GET /api/v2/alerts (fingerprint, state, receivers) differ"
    );

    // Phase 2, between flush ticks (ticks at +1s, +3s, +5s …): resolve both critical sources
    // (un-inhibiting HighLatency c1) and one ApiErrors alert.
    tokio::time::sleep(Duration::from_millis(4000).saturating_sub(phase1_at.elapsed())).await;
    let resolved_at = ts(chrono::Utc::now());
    let phase2 = json!([
        alert(
            json!({"alertname": "NodeDown", "cluster": "c1", "severity": "critical"}),
            &start,
            &resolved_at
        ),
        alert(
            json!({"alertname": "DbDown", "team": "db", "cluster": "c1", "severity": "critical"}),
            &start,
            &resolved_at
        ),
        alert(
            json!({"alertname": "ApiErrors", "service": "api", "job": "j", "instance": "i1"}),
            &start,
            &resolved_at
        ),
    ]);
    post_both(&client, &bases, "/api/v2/alerts", &phase2).await;
    tokio::time::sleep(Duration::from_millis(8500).saturating_sub(phase1_at.elapsed())).await;

    let got = received.lock().clone();
    let view = |who: &str, url: &str| {
        let mut v: Vec<(String, String)> = got
            .iter()
            .filter(|(w, _, _)| w == who)
            .map(|(_, r, b)| (r.clone(), b.replace(url, "EXTERNAL_URL")))
            .collect();
        v.sort();
        v
    };
    let upstream = view("am", "http://upstream.example:9093");
    let ours = view("strata", "http://strata.example:9093");

    let _ = stop_tx.send(());
    let _ = runner.await;
    server.abort();
    hook_server.abort();

    if upstream != ours {
        let dump = |v: &[(String, String)]| {
            v.iter()
                .map(|(r, b)| format!("  {r}: {b}"))
                .collect::<String>()
        };
        let am_log = std::fs::read_to_string(dir.path().join("am.log")).unwrap_or_default();
        panic!(
            "webhook payloads differ\n--- alertmanager 0.25 ({}):\n{}\n--- strata ({}):\n{}\n--- am.log tail:\n{}",
            upstream.len(),
            dump(&upstream),
            ours.len(),
            dump(&ours),
            am_log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
    }

    // The comparison must have covered every scenario.
    let bodies: Vec<Value> = ours
        .iter()
        .map(|(_, b)| serde_json::from_str(b).expect("payload JSON"))
        .collect();
    let any = |f: &dyn Fn(&(String, String), &Value) -> bool| {
        ours.iter().zip(&bodies).any(|(o, b)| f(o, b))
    };
    assert!(
        any(&|o, b| o.0 == "truncated" && b["truncatedAlerts"].as_u64() > Some(0)),
        "max_alerts truncation"
    );
    assert!(
        any(&|o, b| o.0 == "default" && b["status"] == "resolved"),
        "resolved notification"
    );
    assert!(
        any(&|o, b| o.0 == "db-critical" && b["status"] == "resolved"),
        "nested route resolved"
    );
    assert!(
        any(&|o, b| o.0 == "all"
            && b["groupKey"]
                .as_str()
                .is_some_and(|k| k.contains("instance=\"i2\""))),
        "group_by ..."
    );
    assert!(
        any(&|o, b| o.0 == "db"
            && b["groupKey"]
                .as_str()
                .is_some_and(|k| k.contains("c\\\"4<&>"))),
        "escaped group key"
    );
    // Inhibited first, then notified once the sources resolved.
    let c1_db: Vec<&Value> = ours
        .iter()
        .zip(&bodies)
        .filter(|(o, b)| {
            o.0 == "db"
                && b["groupLabels"]["cluster"] == "c1"
                && b["groupLabels"]["alertname"] == "HighLatency"
        })
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        c1_db.len(),
        1,
        "HighLatency c1 to db exactly once, after its inhibition ended"
    );
    // The silenced alert never appears.
    assert!(
        !ours.iter().any(|(_, b)| b.contains("Silenced")),
        "silenced alert notified"
    );
    // send_resolved: false sends nothing when all alerts of the db DbDown group resolved.
    assert!(!ours
        .iter()
        .any(|(r, b)| r == "db" && b.contains("\"status\":\"resolved\"")));
}
