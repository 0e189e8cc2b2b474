//! The copy of the state in the bucket: a replica that lost its state directory comes back
//! with the tenants' configurations, silences and notification log from the bucket, and sends
//! no repeat of what was notified before.

use crate::common::{self, Hook, Running};
use prometheus_client::registry::Registry;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use strata_alertmanager::Alertmanager;
use strata_storage::bucket::{Bucket, BucketConfig};

const SETTINGS: &str =
    "config_file: am.yml\nsnapshot_interval: 1h\nbucket: {upload_interval: 1h}\n";

fn fs_bucket(dir: &std::path::Path) -> Bucket {
    let mut cfg = BucketConfig::default();
    cfg.filesystem.directory = dir.to_path_buf();
    Bucket::from_config(&cfg).expect("filesystem bucket")
}

fn tenant_yml(hook: &str) -> String {
    let am = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{hook}/team-a'}}]\n"
    );
    serde_yaml::to_string(&json!({ "alertmanager_config": am })).expect("yaml")
}

async fn start(data: &std::path::Path, bucket: &Bucket) -> (Running, Vec<String>) {
    let settings: strata_alertmanager::config::AlertmanagerConfig =
        serde_yaml::from_str(SETTINGS).expect("settings");
    let tenancy = common::multi_tenant();
    let restored = Alertmanager::restore_from_bucket(&settings, data, &tenancy, bucket, None)
        .await
        .expect("restore from the bucket");
    let am = common::build(data, SETTINGS, tenancy, &mut Registry::default()).expect("build");
    am.attach_bucket(bucket.clone());
    (Running::start(am).await, restored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_state_directory_is_restored_from_the_bucket() {
    let hook = Hook::start().await;
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let bucket = fs_bucket(bucket_dir.path());
    let first_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        first_dir.path().join("am.yml"),
        "route: {receiver: none}\nreceivers: [{name: none}]\n",
    )
    .expect("write am.yml");

    let (first, restored) = start(first_dir.path(), &bucket).await;
    assert!(restored.is_empty(), "nothing in a new bucket: {restored:?}");
    let url = |run: &Running, p: &str| format!("{}{p}", run.base);
    let (st, body) = common::call(
        Method::POST,
        &url(&first, "/api/v1/alerts"),
        Some("team-a"),
        Some(tenant_yml(&hook.url)),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    common::post_ok(
        &url(&first, "/api/v2/silences"),
        Some("team-a"),
        &common::silence("Quiet"),
    )
    .await;
    let alerts = json!([
        common::firing(json!({"alertname": "Kept"})),
        common::firing(json!({"alertname": "Quiet"})),
    ]);
    common::post_ok(&url(&first, "/api/v2/alerts"), Some("team-a"), &alerts).await;
    hook.wait_for("team-a", "Kept", 1, Duration::from_secs(10))
        .await;
    let am = first.am.clone();
    first.shutdown().await;
    let uploaded = am.upload_state(true).await.expect("upload");
    assert_eq!(
        uploaded, 3,
        "team-a's snapshot, configuration and its record"
    );
    for object in [
        "@alertmanager/team-a/snapshot.json",
        "@alertmanager/team-a/config.yaml",
        "@alertmanager/team-a/config-meta.json",
    ] {
        assert!(bucket.exists(object).await.expect("exists"), "{object}");
    }
    // Unchanged files are not uploaded again.
    assert_eq!(am.upload_state(true).await.expect("upload"), 0);
    // The storage components never take the state prefix for a tenant.
    let tenants = strata_storage::index::list_tenants(&bucket)
        .await
        .expect("list tenants");
    assert!(tenants.is_empty(), "{tenants:?}");

    // A new replica on an empty disk.
    let second_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        second_dir.path().join("am.yml"),
        "route: {receiver: none}\nreceivers: [{name: none}]\n",
    )
    .expect("write am.yml");
    let (second, restored) = start(second_dir.path(), &bucket).await;
    assert_eq!(restored, vec!["team-a".to_string()]);
    let (st, body) = common::call(
        Method::GET,
        &url(&second, "/api/v1/alerts"),
        Some("team-a"),
        None,
    )
    .await;
    assert_eq!(st, 200, "the tenant's configuration is back: {body}");
    // The API shows the webhook URL's address only; the file on disk has all of it.
    assert!(body.contains("receiver: r"), "{body}");
    let stored = std::fs::read_to_string(
        second_dir
            .path()
            .join("alertmanager/team-a")
            .join(strata_alertmanager::persist::USER_CONFIG_FILE),
    )
    .expect("restored config.yaml");
    assert!(stored.contains("/team-a"), "{stored}");
    let sils = common::get_json(&url(&second, "/api/v2/silences"), Some("team-a")).await;
    assert_eq!(sils.as_array().map(Vec::len), Some(1), "{sils}");
    assert_eq!(sils[0]["matchers"][0]["value"], "Quiet");
    // Prometheus keeps sending the firing alerts: the restored log says they were notified.
    common::post_ok(&url(&second, "/api/v2/alerts"), Some("team-a"), &alerts).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        hook.calls_for("team-a", "Kept").len(),
        1,
        "repeated after a restore from the bucket: {:?}",
        hook.calls()
    );
    assert!(hook.calls_for("team-a", "Quiet").is_empty());

    // A configuration deleted locally is deleted from the bucket too.
    let (st, body) = common::call(
        Method::DELETE,
        &url(&second, "/api/v1/alerts"),
        Some("team-a"),
        None,
    )
    .await;
    assert!((200..300).contains(&st), "{st}: {body}");
    let am = second.am.clone();
    second.shutdown().await;
    am.upload_state(true).await.expect("upload");
    assert!(!bucket
        .exists("@alertmanager/team-a/config.yaml")
        .await
        .expect("exists"));
    assert!(bucket
        .exists("@alertmanager/team-a/snapshot.json")
        .await
        .expect("exists"));
}

#[test]
fn prefix_must_not_be_a_tenant_id() {
    for (prefix, ok) in [
        ("@alertmanager", true),
        ("alertmanager", false),
        ("", false),
        ("a/b@", false),
    ] {
        let yaml = format!("bucket: {{prefix: '{prefix}'}}\n");
        let cfg: strata_alertmanager::config::AlertmanagerConfig =
            serde_yaml::from_str(&yaml).expect("yaml");
        let res = cfg.validate();
        assert_eq!(res.is_ok(), ok, "{prefix:?}: {res:?}");
        if let Err(e) = res {
            assert!(e.to_string().contains("alertmanager.bucket.prefix"), "{e}");
        }
    }
}
