//! amtool 0.25 (from Debian's prometheus-alertmanager) as a real client of Strata's API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use strata_alertmanager::time::SystemClock;
use strata_alertmanager::{router, Alertmanager, AlertmanagerConfig};

const AMTOOL: &str = "/usr/bin/amtool";

async fn amtool(url: &str, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(AMTOOL)
            .arg(format!("--alertmanager.url={url}"))
            .arg("--timeout=10s")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("amtool {args:?} timed out"))
    .unwrap_or_else(|e| panic!("amtool {args:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "amtool {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_manages_alerts_and_silences() {
    if !std::path::Path::new(AMTOOL).exists() {
        // Installed with prometheus-alertmanager; the differential test installs it.
        let _ = std::process::Command::new("apt-get")
            .args(["install", "-y", "prometheus-alertmanager"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    assert!(std::path::Path::new(AMTOOL).exists(), "{AMTOOL} missing");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = "route:\n  receiver: blackhole\n  group_wait: 1h\nreceivers:\n  - name: blackhole\n";
    std::fs::write(dir.path().join("am.yml"), cfg).expect("write config");
    let settings = AlertmanagerConfig {
        config_file: Some("am.yml".into()),
        ..Default::default()
    };
    let am = Alertmanager::new(
        settings,
        &PathBuf::from(dir.path()),
        "http://strata:9093",
        Arc::new(SystemClock),
        strata_model::TenancyConfig::default(),
        &mut prometheus_client::registry::Registry::default(),
    )
    .expect("alertmanager");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router(am)).await;
    });

    for url in [
        format!("http://{addr}"),
        format!("http://{addr}/alertmanager"),
    ] {
        let url = url.as_str();
        amtool(
            url,
            &[
                "alert",
                "add",
                "alertname=AmtoolTest",
                "severity=info",
                "--annotation=summary=hi",
            ],
        )
        .await;
        let q = amtool(url, &["alert", "query", "-o", "json"]).await;
        assert!(q.contains("AmtoolTest"), "alert query: {q}");

        let id = amtool(
            url,
            &[
                "silence",
                "add",
                "alertname=AmtoolTest",
                "-c",
                "maintenance",
                "-a",
                "ops",
                "-d",
                "1h",
            ],
        )
        .await;
        let id = id.trim().to_string();
        assert_eq!(id.len(), 36, "silence id: {id:?}");
        let q = amtool(url, &["silence", "query", "-o", "json"]).await;
        assert!(
            q.contains(&id) && q.contains("\"active\""),
            "silence query: {q}"
        );
        // Silenced alerts are hidden from the default alert query.
        let q = amtool(url, &["alert", "query", "-o", "json"]).await;
        assert!(
            !q.contains("AmtoolTest"),
            "silenced alert still listed: {q}"
        );
        amtool(url, &["silence", "expire", &id]).await;
        let q = amtool(url, &["silence", "query", "--expired", "-o", "json"]).await;
        assert!(q.contains(&id), "expired silence: {q}");
        let q = amtool(url, &["alert", "query", "-o", "json"]).await;
        assert!(q.contains("AmtoolTest"), "alert after expiry: {q}");

        let show = amtool(url, &["config", "show"]).await;
        assert!(show.contains("blackhole"), "config show: {show}");
    }
    server.abort();
}
