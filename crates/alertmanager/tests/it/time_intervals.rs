//! Routes muted by `mute_time_intervals` or outside their `active_time_intervals` send nothing
//! and log nothing; other routes are unaffected.

use crate::common::{self, Hook, Running};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::time::Duration;
use strata_model::TenancyConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_routes_do_not_notify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::start().await;
    let cfg = format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  routes:
    - matchers: ['alertname="Muted"']
      mute_time_intervals: [always]
    - matchers: ['alertname="Inactive"']
      active_time_intervals: [last-century]
    - matchers: ['alertname="Active"']
      active_time_intervals: [always]
receivers:
  - name: hook
    webhook_configs: [{{url: '{}/hook'}}]
time_intervals:
  - name: always
    time_intervals: [{{weekdays: ['sunday:saturday'], location: 'Europe/Paris'}}]
  - name: last-century
    time_intervals: [{{years: ['1900:1999']}}]
"#,
        hook.url
    );
    std::fs::write(dir.path().join("am.yml"), cfg).expect("write");
    let am = common::build(
        dir.path(),
        "config_file: am.yml",
        TenancyConfig::default(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let run = Running::start(am.clone()).await;
    common::post_ok(
        &format!("{}/api/v2/alerts", run.base),
        None,
        &json!([
            common::firing(json!({"alertname": "Muted"})),
            common::firing(json!({"alertname": "Inactive"})),
            common::firing(json!({"alertname": "Active"})),
            common::firing(json!({"alertname": "Plain"})),
        ]),
    )
    .await;
    hook.wait_for("hook", "Active", 1, Duration::from_secs(10))
        .await;
    hook.wait_for("hook", "Plain", 1, Duration::from_secs(10))
        .await;
    // Several more group_interval ticks: the muted groups are flushed and stay silent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        hook.calls_for("hook", "Muted").is_empty(),
        "{:?}",
        hook.calls()
    );
    assert!(hook.calls_for("hook", "Inactive").is_empty());
    let logged: Vec<String> = am
        .default_tenant()
        .expect("tenant")
        .snapshot()
        .nflog
        .iter()
        .map(|e| e.key.group_key.clone())
        .collect();
    assert_eq!(
        logged.len(),
        2,
        "only the notified groups are logged: {logged:?}"
    );
    assert!(logged
        .iter()
        .all(|k| !k.contains("Muted") && !k.contains("Inactive")));
    // Muting is not silencing: the API still shows the alerts as active.
    let alerts = common::get_json(&format!("{}/api/v2/alerts", run.base), None).await;
    assert_eq!(
        common::alertnames(&alerts),
        vec!["Active", "Inactive", "Muted", "Plain"]
    );
    run.shutdown().await;
}
