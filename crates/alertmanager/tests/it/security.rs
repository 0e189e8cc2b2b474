//! Tenants' configurations are sandboxed and secrets are never served: `*_file` settings are
//! refused (the file is never read, nothing reaches the tenant's receiver), `/api/v2/status` and
//! Mimir's `GET /api/v1/alerts` show `<secret>`, the receivers firewall keeps tenants'
//! notifications off private addresses, and request bodies are bounded.

use crate::common::{self, Hook, Running};
use prometheus_client::registry::Registry;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const SENTINEL: &str = "S3NT1NEL-do-not-leak";

fn upload(am_yml: &str) -> String {
    serde_yaml::to_string(&json!({ "alertmanager_config": am_yml })).expect("yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_file_settings_are_refused_and_the_file_is_never_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("environ");
    std::fs::write(&secret_file, SENTINEL).expect("write sentinel");
    let hook = Hook::start().await;
    // The operator's fallback may read files: it sends with a password from one.
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route: {{receiver: r, group_by: [alertname], group_wait: 1s, group_interval: 1s}}\nreceivers:\n- name: r\n  webhook_configs: [{{url: '{}/fallback', http_config: {{basic_auth: {{username: op, password_file: '{}'}}}}}}]\n",
            hook.url,
            dir.path().join("op-password").display()
        ),
    )
    .expect("write am.yml");
    std::fs::write(dir.path().join("op-password"), "operator-pw").expect("write");
    let am = common::build(
        dir.path(),
        "config_file: am.yml\nsnapshot_interval: 1h",
        common::multi_tenant(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let url = format!("{}/api/v1/alerts", run.base);
    let path = secret_file.display().to_string();
    let head = "route: {receiver: r, group_by: [alertname], group_wait: 1s, group_interval: 1s}\nreceivers:\n- name: r\n";
    for (integration, field) in [
        (
            format!("  webhook_configs: [{{url: '{}/team-a', http_config: {{basic_auth: {{username: u, password_file: '{path}'}}}}}}]", hook.url),
            "receivers[0].webhook_configs[0].http_config.basic_auth.password_file",
        ),
        (
            format!("  webhook_configs: [{{url: '{}/team-a', http_config: {{authorization: {{credentials_file: '{path}'}}}}}}]", hook.url),
            "receivers[0].webhook_configs[0].http_config.authorization.credentials_file",
        ),
        (
            format!("  webhook_configs: [{{url: '{}/team-a', http_config: {{bearer_token_file: '{path}'}}}}]", hook.url),
            "receivers[0].webhook_configs[0].http_config.bearer_token_file",
        ),
        (
            format!("  slack_configs: [{{api_url_file: '{path}'}}]"),
            "receivers[0].slack_configs[0].api_url_file",
        ),
        (
            format!("  pagerduty_configs: [{{routing_key_file: '{path}', url: '{}/team-a'}}]", hook.url),
            "receivers[0].pagerduty_configs[0].routing_key_file",
        ),
    ] {
        let (st, body) = common::call(
            Method::POST,
            &url,
            Some("team-a"),
            Some(upload(&format!("{head}{integration}\n"))),
        )
        .await;
        assert_eq!(st, 400, "{field}: {body}");
        assert!(body.contains(field), "the error names {field}: {body}");
        assert!(!body.contains(SENTINEL), "{body}");
    }
    let (st, _) = common::call(Method::GET, &url, Some("team-a"), None).await;
    assert_eq!(st, 404, "nothing was stored");

    // team-a runs the fallback: its alert reaches the fallback receiver (the positive control
    // that notifications flow), and nothing carrying the file's content reaches anything.
    common::post_ok(
        &format!("{}/api/v2/alerts", run.base),
        Some("team-a"),
        &json!([common::firing(json!({"alertname": "Probe"}))]),
    )
    .await;
    hook.wait_for("fallback", "Probe", 1, Duration::from_secs(10))
        .await;
    let calls = hook.calls();
    assert!(calls.iter().all(|c| c.path != "team-a"), "{calls:?}");
    for c in &calls {
        let auth = c.authorization.clone().unwrap_or_default();
        assert!(
            !auth.contains(SENTINEL) && !c.body.to_string().contains(SENTINEL),
            "{c:?}"
        );
    }
    // The operator's own file was read: basic auth op:operator-pw.
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some("Basic b3A6b3BlcmF0b3ItcHc=")
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_config_api_show_secrets_as_placeholders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets_yml = format!(
        "global:\n  smtp_from: am@example.org\n  smtp_smarthost: 'mail.example.org:587'\n  smtp_auth_username: am\n  smtp_auth_password: {SENTINEL}-smtp\n  slack_api_url: 'https://hooks.slack.example/services/{SENTINEL}'\nroute: {{receiver: r}}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: 'http://hooks.example:8080/{SENTINEL}/hook?token={SENTINEL}'\n    http_config: {{basic_auth: {{username: u, password: {SENTINEL}-basic}}}}\n  - url: 'http://hooks.example:8080/x'\n    http_config: {{authorization: {{credentials: {SENTINEL}-authz}}}}\n  - url: 'http://hooks.example:8080/y'\n    http_config: {{bearer_token: {SENTINEL}-bearer}}\n  slack_configs: [{{channel: '#ops'}}]\n  pagerduty_configs: [{{routing_key: {SENTINEL}-pd}}]\n  email_configs: [{{to: ops@example.org, auth_password: {SENTINEL}-mail}}]\n"
    );
    std::fs::write(dir.path().join("am.yml"), &secrets_yml).expect("write am.yml");
    let am = common::build(
        dir.path(),
        "config_file: am.yml\nsnapshot_interval: 1h",
        common::multi_tenant(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let run = Running::start(am).await;

    // The fallback, as any tenant sees it.
    let status = common::get_json(&format!("{}/api/v2/status", run.base), Some("anyone")).await;
    let original = status["config"]["original"].as_str().expect("original");
    assert!(!original.contains(SENTINEL), "{original}");
    assert!(
        original.contains("smtp_auth_password: <secret>"),
        "{original}"
    );
    assert!(original.contains("slack_api_url: <secret>"), "{original}");
    assert!(original.contains("routing_key: <secret>"), "{original}");
    assert!(
        original.contains("url: http://hooks.example:8080/<secret>"),
        "{original}"
    );
    assert_eq!(original.matches("<secret>").count(), 10, "{original}");

    // A tenant's own configuration, through Mimir's API and the status.
    let url = format!("{}/api/v1/alerts", run.base);
    let (st, body) = common::call(
        Method::POST,
        &url,
        Some("team-a"),
        Some(upload(&secrets_yml)),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = common::call(Method::GET, &url, Some("team-a"), None).await;
    assert_eq!(st, 200);
    assert!(!body.contains(SENTINEL), "{body}");
    assert!(body.contains("<secret>"), "{body}");
    let status = common::get_json(&format!("{}/api/v2/status", run.base), Some("team-a")).await;
    assert!(!status.to_string().contains(SENTINEL), "{status}");

    // The shown document uploaded back is refused: `<secret>` never becomes a credential.
    let (st, refused) = common::call(Method::POST, &url, Some("team-a"), Some(body)).await;
    assert_eq!(st, 400, "{refused}");
    assert!(refused.contains("placeholder"), "{refused}");
    // ... and the stored configuration (with the real secrets) is unchanged.
    let stored = std::fs::read_to_string(
        dir.path()
            .join("alertmanager/team-a")
            .join(strata_alertmanager::persist::USER_CONFIG_FILE),
    )
    .expect("stored config");
    assert!(stored.contains(&format!("{SENTINEL}-pd")), "{stored}");
    run.shutdown().await;
}

fn metric(registry: &Registry, series: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_firewall_keeps_tenants_off_private_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::start().await;
    let port = hook.url.rsplit(':').next().expect("port").to_string();
    let route = |target: &str| {
        // group_interval 1h: a refusal that were retried would only end an hour later.
        format!(
            "route: {{receiver: r, group_by: [alertname], group_wait: 1s, group_interval: 1h}}\nreceivers:\n- name: r\n  webhook_configs: [{{url: '{target}'}}]\n"
        )
    };
    // The operator's fallback is not filtered.
    std::fs::write(
        dir.path().join("am.yml"),
        route(&format!("{}/fallback", hook.url)),
    )
    .expect("write am.yml");
    let mut registry = Registry::default();
    let am = common::build(
        dir.path(),
        "config_file: am.yml\nsnapshot_interval: 1h\nreceivers_firewall:\n  block_private_addresses: true\n",
        common::multi_tenant(),
        &mut registry,
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let url = format!("{}/api/v1/alerts", run.base);
    // A name that resolves to loopback (refused at connect time, after resolution) and a
    // literal loopback address.
    for (tenant, target) in [
        ("by-name", format!("http://localhost:{port}/by-name")),
        ("by-ip", format!("http://127.0.0.1:{port}/by-ip")),
    ] {
        let (st, body) = common::call(
            Method::POST,
            &url,
            Some(tenant),
            Some(upload(&route(&target))),
        )
        .await;
        assert_eq!(st, 201, "{body}");
    }
    for tenant in ["by-name", "by-ip", "fallback-user"] {
        common::post_ok(
            &format!("{}/api/v2/alerts", run.base),
            Some(tenant),
            &json!([common::firing(json!({"alertname": "Probe"}))]),
        )
        .await;
    }
    hook.wait_for("fallback", "Probe", 1, Duration::from_secs(10))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    for tenant in ["by-name", "by-ip"] {
        let series = format!(
            "strata_alertmanager_notifications_blocked_total{{tenant=\"{tenant}\",integration=\"webhook\"}}"
        );
        while metric(&registry, &series) < 1.0 {
            assert!(
                Instant::now() < deadline,
                "{tenant}: no refusal counted (retried instead?)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let failed = format!(
            "alertmanager_notifications_failed_total{{tenant=\"{tenant}\",integration=\"webhook\"}}"
        );
        assert_eq!(metric(&registry, &failed), 1.0, "{tenant}");
    }
    let calls = hook.calls();
    assert!(
        calls.iter().all(|c| c.path == "fallback"),
        "only the operator's notification arrived: {calls:?}"
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let am = common::build(
        dir.path(),
        "max_request_body_bytes: 65536",
        common::multi_tenant(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let big_alerts = serde_json::to_string(&json!([common::firing(
        json!({"alertname": "Big", "pad": "x".repeat(100 << 10)})
    )]))
    .expect("json");
    for path in [
        "/api/v2/alerts",
        "/alertmanager/api/v1/alerts",
        "/api/v1/alerts",
    ] {
        let (st, body) = common::call(
            Method::POST,
            &format!("{}{path}", run.base),
            Some("t"),
            Some(big_alerts.clone()),
        )
        .await;
        assert_eq!(st, 413, "{path}: {body}");
        assert!(
            body.contains("alertmanager.max_request_body_bytes"),
            "{path}: {body}"
        );
    }
    let big_config = upload(&format!(
        "route: {{receiver: a}}\nreceivers: [{{name: a}}]\n# {}\n",
        "x".repeat(100 << 10)
    ));
    let (st, body) = common::call(
        Method::POST,
        &format!("{}/api/v1/alerts", run.base),
        Some("t"),
        Some(big_config),
    )
    .await;
    assert_eq!(st, 413, "{body}");
    // Below the limit: accepted.
    common::post_ok(
        &format!("{}/api/v2/alerts", run.base),
        Some("t"),
        &json!([common::firing(json!({"alertname": "Small"}))]),
    )
    .await;
    run.shutdown().await;
}
