//! Multi-tenancy: each tenant (`X-Scope-OrgID`) has its own alerts, silences, notification log,
//! configuration and snapshot; a tenant without a configuration uses the fallback one.

use crate::common::{self, Hook, Running};
use prometheus_client::registry::Registry;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use strata_alertmanager::persist::{SNAPSHOT_FILE, USER_CONFIG_FILE};

fn route(hook: &str, path: &str) -> String {
    format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{hook}/{path}'}}]\n"
    )
}

/// What the API shows of a configuration.
fn shown(am_yml: &str) -> String {
    strata_alertmanager::amconfig::AmConfig::load(am_yml)
        .expect("valid configuration")
        .shown
}

/// Mimir's upload document around an alertmanager.yml.
fn user_config(am_yml: &str) -> String {
    serde_yaml::to_string(&json!({
        "alertmanager_config": am_yml,
        "template_files": {"default.tmpl": "{{ define \"x\" }}x{{ end }}"},
    }))
    .expect("yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_and_use_their_own_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::start().await;
    std::fs::write(dir.path().join("am.yml"), route(&hook.url, "fallback")).expect("write");
    let settings = "config_file: am.yml\nsnapshot_interval: 1h\n";
    let am = common::build(
        dir.path(),
        settings,
        common::multi_tenant(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let url = |p: &str| format!("{}{p}", run.base);

    // No tenant, no service.
    let (st, body) = common::call(Method::GET, &url("/api/v2/alerts"), None, None).await;
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("X-Scope-OrgID"), "{body}");

    // team-a uploads its own configuration; team-b has none.
    let a_yml = route(&hook.url, "team-a");
    let (st, body) = common::call(
        Method::POST,
        &url("/api/v1/alerts"),
        Some("team-a"),
        Some(user_config(&a_yml)),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = common::call(Method::GET, &url("/api/v1/alerts"), Some("team-a"), None).await;
    assert_eq!(st, 200);
    let got: serde_yaml::Value = serde_yaml::from_str(&body).expect("yaml");
    // The webhook URL is a secret: its address is shown, its path is not.
    let a_shown = shown(&a_yml);
    assert_eq!(got["alertmanager_config"].as_str(), Some(a_shown.as_str()));
    assert!(!a_shown.contains("/team-a"), "{a_shown}");
    assert!(got["template_files"]["default.tmpl"].is_string());
    let (st, _) = common::call(Method::GET, &url("/api/v1/alerts"), Some("team-b"), None).await;
    assert_eq!(st, 404, "team-b has no configuration of its own");
    let status = common::get_json(&url("/api/v2/status"), Some("team-a")).await;
    assert_eq!(status["config"]["original"], a_shown.as_str());

    common::post_ok(
        &url("/api/v2/alerts"),
        Some("team-a"),
        &json!([common::firing(json!({"alertname": "OnlyA"}))]),
    )
    .await;
    common::post_ok(
        &url("/alertmanager/api/v2/alerts"),
        Some("team-b"),
        &json!([common::firing(json!({"alertname": "OnlyB"}))]),
    )
    .await;
    common::post_ok(
        &url("/api/v2/silences"),
        Some("team-a"),
        &common::silence("Whatever"),
    )
    .await;

    let a = common::get_json(&url("/api/v2/alerts"), Some("team-a")).await;
    let b = common::get_json(&url("/alertmanager/api/v2/alerts"), Some("team-b")).await;
    assert_eq!(common::alertnames(&a), vec!["OnlyA"]);
    assert_eq!(common::alertnames(&b), vec!["OnlyB"]);
    let sa = common::get_json(&url("/api/v2/silences"), Some("team-a")).await;
    let sb = common::get_json(&url("/api/v2/silences"), Some("team-b")).await;
    assert_eq!(sa.as_array().map(Vec::len), Some(1));
    assert_eq!(sb.as_array().map(Vec::len), Some(0));
    let c = common::get_json(&url("/api/v2/alerts"), Some("team-c")).await;
    assert_eq!(c, json!([]), "a new tenant starts empty");

    // Each tenant notifies through its own configuration.
    hook.wait_for("team-a", "OnlyA", 1, Duration::from_secs(10))
        .await;
    hook.wait_for("fallback", "OnlyB", 1, Duration::from_secs(10))
        .await;
    assert!(hook.calls_for("fallback", "OnlyA").is_empty());
    assert!(hook.calls_for("team-a", "OnlyB").is_empty());

    run.shutdown().await;
    let state = dir.path().join("alertmanager");
    assert!(state.join("team-a").join(SNAPSHOT_FILE).is_file());
    assert!(state.join("team-a").join(USER_CONFIG_FILE).is_file());
    assert!(state.join("team-b").join(SNAPSHOT_FILE).is_file());
    assert!(
        !state.join("team-c").exists(),
        "reading an unknown tenant leaves nothing on disk"
    );

    // After a restart: team-a's configuration, alerts and silence are back, per tenant.
    let am = common::build(
        dir.path(),
        settings,
        common::multi_tenant(),
        &mut Registry::default(),
    )
    .expect("restart");
    let run = Running::start(am).await;
    let url = |p: &str| format!("{}{p}", run.base);
    let (st, _) = common::call(Method::GET, &url("/api/v1/alerts"), Some("team-a"), None).await;
    assert_eq!(st, 200, "the uploaded configuration survives a restart");
    let a = common::get_json(&url("/api/v2/alerts"), Some("team-a")).await;
    assert_eq!(common::alertnames(&a), vec!["OnlyA"]);
    let sa = common::get_json(&url("/api/v2/silences"), Some("team-a")).await;
    assert_eq!(sa.as_array().map(Vec::len), Some(1));
    let b = common::get_json(&url("/api/v2/alerts"), Some("team-b")).await;
    assert_eq!(common::alertnames(&b), vec!["OnlyB"]);

    // Deleting team-a's configuration puts it on the fallback.
    let (st, _) = common::call(Method::DELETE, &url("/api/v1/alerts"), Some("team-a"), None).await;
    assert_eq!(st, 200);
    let (st, _) = common::call(Method::GET, &url("/api/v1/alerts"), Some("team-a"), None).await;
    assert_eq!(st, 404);
    assert!(!state.join("team-a").join(USER_CONFIG_FILE).exists());
    let status = common::get_json(&url("/api/v2/status"), Some("team-a")).await;
    assert_eq!(
        status["config"]["original"],
        shown(&route(&hook.url, "fallback")).as_str()
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_api_refuses_bad_documents_and_keeps_the_old_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let am = common::build(
        dir.path(),
        "{}",
        common::multi_tenant(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let url = format!("{}/api/v1/alerts", run.base);
    let good = user_config("route: {receiver: a}\nreceivers: [{name: a}]\n");
    let (st, body) = common::call(Method::POST, &url, Some("t"), Some(good.clone())).await;
    assert_eq!(st, 201, "{body}");

    let cases = [
        ("alertmanager_config: [unclosed", "not a valid configuration document"),
        (
            "alertmanager_config: x\nextra: 1\n",
            "unknown field `extra`",
        ),
        (
            "template_files: {}\n",
            "configuration provided is empty",
        ),
        (
            "alertmanager_config: \"route: {receiver: nope}\\nreceivers: [{name: a}]\"\n",
            "route.receiver: undefined receiver \"nope\" used in route",
        ),
        (
            "alertmanager_config: \"route: {receiver: a, group_wiat: 1s}\\nreceivers: [{name: a}]\"\n",
            "group_wiat",
        ),
        (
            "alertmanager_config: \"route: {receiver: a}\\nreceivers: [{name: a}]\"\ntemplate_files: {'../../etc/x': y}\n",
            "invalid template file name",
        ),
    ];
    for (doc, want) in cases {
        let (st, body) = common::call(Method::POST, &url, Some("t"), Some(doc.to_string())).await;
        assert_eq!(st, 400, "{doc}: {body}");
        assert!(body.contains(want), "{doc}: {body}");
    }
    let (st, body) = common::call(Method::GET, &url, Some("t"), None).await;
    assert_eq!(st, 200);
    let yaml = |t: &str| serde_yaml::from_str::<serde_yaml::Value>(t).expect("yaml");
    assert_eq!(
        yaml(&body),
        yaml(&good),
        "the stored configuration is unchanged"
    );
    let receivers = common::get_json(&format!("{}/api/v2/receivers", run.base), Some("t")).await;
    assert_eq!(receivers, json!([{"name": "a"}]));
    // A bad tenant id is refused before anything is stored.
    let (st, _) = common::call(Method::POST, &url, Some("../x"), Some(good)).await;
    assert_eq!(st, 401);
    assert!(!dir.path().join("x").exists());
}
