//! State that lasts: silences, alerts and the notification log survive a restart, and the
//! snapshot format of earlier builds is still read.

use crate::common::{self, Hook, Running};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::time::{Duration, Instant};
use strata_alertmanager::persist::{SnapshotFile, SNAPSHOT_FILE};
use strata_model::TenancyConfig;

fn am_config(hook: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 5s\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{hook}/hook'}}]\n"
    )
}

const SETTINGS: &str = "config_file: am.yml\nsnapshot_interval: 1s\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_silences_alerts_and_notification_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::start().await;
    std::fs::write(dir.path().join("am.yml"), am_config(&hook.url)).expect("write am.yml");

    let am = common::build(
        dir.path(),
        SETTINGS,
        TenancyConfig::default(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let first = Running::start(am).await;
    common::post_ok(
        &format!("{}/api/v2/silences", first.base),
        None,
        &common::silence("Quiet"),
    )
    .await;
    common::post_ok(
        &format!("{}/api/v2/alerts", first.base),
        None,
        &json!([
            common::firing(json!({"alertname": "Restart", "severity": "page"})),
            common::firing(json!({"alertname": "Quiet"})),
        ]),
    )
    .await;
    hook.wait_for("hook", "Restart", 1, Duration::from_secs(10))
        .await;
    let notified_at = hook.calls_for("hook", "Restart")[0].at;

    // The periodic snapshot (every 1s) catches up with the notification log on its own.
    let snap_path = dir
        .path()
        .join("alertmanager/anonymous")
        .join(SNAPSHOT_FILE);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let logged = std::fs::read(&snap_path)
            .ok()
            .and_then(|b| SnapshotFile::decode(&b, "anonymous").ok())
            .is_some_and(|f| !f.nflog.is_empty());
        if logged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no periodic snapshot with the notification log in {}",
            snap_path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.shutdown().await;

    // A new process on the same directory.
    let am = common::build(
        dir.path(),
        SETTINGS,
        TenancyConfig::default(),
        &mut Registry::default(),
    )
    .expect("restarted alertmanager");
    let second = Running::start(am).await;
    let sils = common::get_json(&format!("{}/api/v2/silences", second.base), None).await;
    assert_eq!(sils.as_array().map(Vec::len), Some(1), "{sils}");
    assert_eq!(sils[0]["status"]["state"], "active");
    assert_eq!(sils[0]["matchers"][0]["value"], "Quiet");
    let alerts = common::get_json(&format!("{}/api/v2/alerts", second.base), None).await;
    assert_eq!(common::alertnames(&alerts), vec!["Quiet", "Restart"]);
    let quiet = alerts
        .as_array()
        .and_then(|a| a.iter().find(|a| a["labels"]["alertname"] == "Quiet"))
        .expect("Quiet listed");
    assert_eq!(
        quiet["status"]["state"], "suppressed",
        "the restored silence applies"
    );
    let groups = common::get_json(&format!("{}/api/v2/alerts/groups", second.base), None).await;
    assert_eq!(
        groups.as_array().map(Vec::len),
        Some(2),
        "groups rebuilt: {groups}"
    );

    // The restored group flushes at once, but the restored log says the receiver already has
    // it: nothing until repeat_interval (5s) after the first notification.
    let quiet_until = notified_at + Duration::from_millis(4500);
    tokio::time::sleep(quiet_until.saturating_duration_since(Instant::now())).await;
    assert_eq!(
        hook.calls_for("hook", "Restart").len(),
        1,
        "repeated before repeat_interval: {:?}",
        hook.calls()
    );
    hook.wait_for("hook", "Restart", 2, Duration::from_secs(6))
        .await;
    let repeat = &hook.calls_for("hook", "Restart")[1];
    assert!(
        repeat.at >= notified_at + Duration::from_secs(5),
        "repeat after {:?}",
        repeat.at - notified_at
    );
    assert!(
        hook.calls_for("hook", "Quiet").is_empty(),
        "silenced alert notified"
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_snapshot_stops_the_start_and_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant_dir = dir.path().join("alertmanager/anonymous");
    std::fs::create_dir_all(&tenant_dir).expect("mkdir");
    let path = tenant_dir.join(SNAPSHOT_FILE);
    std::fs::write(&path, b"{\"version\":1,\"tenant\":\"anonymous\",\"silen").expect("write");
    let err = common::build(
        dir.path(),
        "{}",
        TenancyConfig::default(),
        &mut Registry::default(),
    )
    .expect_err("a corrupt snapshot must not start empty");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a valid snapshot"), "{msg}");

    std::fs::write(&path, b"{\"version\":7}").expect("write");
    let msg = common::build(
        dir.path(),
        "{}",
        TenancyConfig::default(),
        &mut Registry::default(),
    )
    .expect_err("a newer format must not start empty")
    .to_string();
    assert!(msg.contains("version 7 is not supported"), "{msg}");

    // No file at all is a fresh start.
    std::fs::remove_file(&path).expect("rm");
    let am = common::build(
        dir.path(),
        "{}",
        TenancyConfig::default(),
        &mut Registry::default(),
    )
    .expect("fresh start");
    assert!(am
        .default_tenant()
        .expect("tenant")
        .snapshot()
        .alerts
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_format_v1_fixture_is_read() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-v1.json");
    let bytes = std::fs::read(&fixture).expect("fixture");
    let file = SnapshotFile::decode(&bytes, "team-a").expect("v1 fixture decodes");
    assert_eq!(file.version, 1);
    assert_eq!(file.silences.len(), 1);
    assert_eq!(file.alerts.len(), 1);
    assert_eq!(
        file.nflog[0].firing.iter().copied().collect::<Vec<_>>(),
        vec![file.alerts[0].fingerprint()],
        "the fixture's log entry names its alert"
    );

    // And through a whole start: the tenant's directory holds the fixture.
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant_dir = dir.path().join("alertmanager/team-a");
    std::fs::create_dir_all(&tenant_dir).expect("mkdir");
    std::fs::copy(&fixture, tenant_dir.join(SNAPSHOT_FILE)).expect("copy");
    let am = common::build(
        dir.path(),
        "{}",
        common::multi_tenant(),
        &mut Registry::default(),
    )
    .expect("start over the fixture");
    let running = Running::start(am).await;
    let sils = common::get_json(&format!("{}/api/v2/silences", running.base), Some("team-a")).await;
    assert_eq!(sils[0]["comment"], "snapshot format v1");
    let alerts = common::get_json(
        &format!("{}/api/v2/alerts?silenced=true", running.base),
        Some("team-a"),
    )
    .await;
    assert_eq!(common::alertnames(&alerts), vec!["FixtureAlert"]);
    assert_eq!(alerts[0]["status"]["state"], "suppressed");
    assert_eq!(
        alerts[0]["annotations"]["summary"],
        "written by hand for format version 1"
    );
}
