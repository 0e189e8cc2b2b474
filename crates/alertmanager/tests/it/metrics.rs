//! The metrics under Alertmanager 0.25's names, read from the registry's text exposition.

use crate::common::{self, Hook, Running};
use prometheus_client::registry::Registry;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use strata_model::TenancyConfig;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_metric_names_and_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::start().await;
    let cfg = format!(
        "route:\n  receiver: ok\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  routes:\n    - matchers: ['alertname=\"Broken\"']\n      receiver: broken\nreceivers:\n  - name: ok\n    webhook_configs: [{{url: '{0}/ok'}}]\n  - name: broken\n    webhook_configs: [{{url: '{0}/fail'}}]\n",
        hook.url
    );
    std::fs::write(dir.path().join("am.yml"), cfg).expect("write");
    let mut registry = Registry::default();
    let am = common::build(
        dir.path(),
        "config_file: am.yml\nsnapshot_interval: 1s",
        TenancyConfig::default(),
        &mut registry,
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let url = |p: &str| format!("{}{p}", run.base);
    common::post_ok(&url("/api/v2/silences"), None, &common::silence("Quiet")).await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    common::post_ok(
        &url("/api/v2/alerts"),
        None,
        &json!([
            common::firing(json!({"alertname": "Fine"})),
            common::firing(json!({"alertname": "Broken"})),
            common::firing(json!({"alertname": "Quiet"})),
            {"labels": {"alertname": "Gone"}, "startsAt": past, "endsAt": past},
        ]),
    )
    .await;
    // One invalid alert (no labels left once empty values are dropped), through API v1.
    let (st, _) = common::call(
        Method::POST,
        &url("/alertmanager/api/v1/alerts"),
        None,
        Some(r#"[{"labels":{"alertname":""}}]"#.into()),
    )
    .await;
    assert_eq!(st, 400);
    hook.wait_for("ok", "Fine", 1, Duration::from_secs(10))
        .await;
    hook.wait_for("fail", "Broken", 1, Duration::from_secs(10))
        .await;
    // Let the failure be recorded and a snapshot be written.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    let t = r#"tenant="anonymous""#;
    let expect = [
        (format!("alertmanager_alerts{{{t},state=\"active\"}}"), 2.0),
        (
            format!("alertmanager_alerts{{{t},state=\"suppressed\"}}"),
            1.0,
        ),
        (
            format!("alertmanager_alerts_received_total{{{t},status=\"firing\",version=\"v2\"}}"),
            3.0,
        ),
        (
            format!("alertmanager_alerts_received_total{{{t},status=\"resolved\",version=\"v2\"}}"),
            1.0,
        ),
        (
            format!("alertmanager_alerts_invalid_total{{{t},version=\"v1\"}}"),
            1.0,
        ),
        (
            format!("alertmanager_silences{{{t},state=\"active\"}}"),
            1.0,
        ),
        (
            format!("alertmanager_silences{{{t},state=\"pending\"}}"),
            0.0,
        ),
        (
            format!("alertmanager_silences{{{t},state=\"expired\"}}"),
            0.0,
        ),
        (
            format!("alertmanager_config_last_reload_successful{{{t}}}"),
            1.0,
        ),
        ("strata_alertmanager_tenants".to_string(), 1.0),
    ];
    for (series, want) in &expect {
        assert_eq!(value(&text, series), Some(*want), "{series} in\n{text}");
    }
    let webhook = format!("{t},integration=\"webhook\"");
    let sent = value(
        &text,
        &format!("alertmanager_notifications_total{{{webhook}}}"),
    )
    .expect("notifications_total");
    let failed = value(
        &text,
        &format!("alertmanager_notifications_failed_total{{{webhook}}}"),
    )
    .expect("notifications_failed_total");
    assert!(sent >= 2.0 && failed >= 1.0, "sent {sent}, failed {failed}");
    let latency = value(
        &text,
        &format!("alertmanager_notification_latency_seconds_count{{{webhook}}}"),
    )
    .expect("latency histogram");
    assert!(latency >= 2.0, "{latency}");
    assert!(
        value(&text, "alertmanager_nflog_snapshot_duration_seconds_count")
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let reloaded = value(
        &text,
        &format!("alertmanager_config_last_reload_success_timestamp_seconds{{{t}}}"),
    )
    .expect("reload timestamp");
    assert!(reloaded > 1.7e9, "{reloaded}");

    // A failed reload of the fallback file flips the gauge.
    std::fs::write(dir.path().join("am.yml"), "route: {receiver: nope}\n").expect("write");
    let (st, _) = common::call(Method::POST, &url("/-/reload"), None, None).await;
    assert_eq!(st, 500);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert_eq!(
        value(
            &text,
            &format!("alertmanager_config_last_reload_successful{{{t}}}")
        ),
        Some(0.0)
    );
    run.shutdown().await;
}
