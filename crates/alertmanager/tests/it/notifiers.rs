//! Slack and PagerDuty notifications against a local endpoint: the exact fields of firing and
//! resolved notifications rendered from `templates:` files and defaults, and a template that
//! fails at send time.

use crate::common::{self, Call, Hook, Running};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use strata_model::TenancyConfig;

async fn wait_calls(hook: &Hook, path: &str, n: usize) -> Vec<Call> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let calls: Vec<Call> = hook
            .calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect();
        if calls.len() >= n {
            return calls;
        }
        assert!(
            Instant::now() < deadline,
            "{n} call(s) to /{path} not received; got {:?}",
            hook.calls()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_pagerduty_firing_resolved_and_template_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Hook::start().await;
    std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
    std::fs::write(
        dir.path().join("templates/team.tmpl"),
        r#"{{ define "team.title" }}{{ .Status | toUpper }} {{ .CommonLabels.alertname }} ({{ len .Alerts.Firing }} firing){{ end }}"#,
    )
    .expect("write template");
    let cfg = format!(
        r#"templates: ['templates/*.tmpl']
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="Broken"']
      receiver: broken
receivers:
  - name: team
    slack_configs:
      - api_url: '{url}/slack'
        channel: '#ops'
        send_resolved: true
        title: '{{{{ template "team.title" . }}}}'
        fields: [{{title: Instance, value: '{{{{ .CommonLabels.instance }}}}', short: true}}]
    pagerduty_configs:
      - routing_key: rk-1
        url: '{url}/pd'
        severity: '{{{{ .CommonLabels.severity }}}}'
        details: {{summary: '{{{{ .CommonAnnotations.summary }}}}'}}
  - name: broken
    slack_configs:
      - api_url: '{url}/broken'
        title: '{{{{ template "nowhere" . }}}}'
"#,
        url = hook.url
    );
    std::fs::write(dir.path().join("am.yml"), cfg).expect("write config");
    let mut registry = Registry::default();
    let am = common::build(
        dir.path(),
        "config_file: am.yml",
        TenancyConfig::default(),
        &mut registry,
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let alerts = format!("{}/api/v2/alerts", run.base);
    let labels = json!({"alertname": "DiskFull", "instance": "db1", "severity": "critical"});
    let mut alert = common::firing(labels.clone());
    alert["annotations"] = json!({"summary": "disk is full"});
    common::post_ok(
        &alerts,
        None,
        &json!([alert, common::firing(json!({"alertname": "Broken"}))]),
    )
    .await;

    let slack = wait_calls(&hook, "slack", 1).await;
    let s = &slack[0].body;
    assert_eq!(s["channel"], "#ops");
    assert_eq!(s["username"], "Strata Alertmanager");
    let a = &s["attachments"][0];
    assert_eq!(a["title"], "FIRING DiskFull (1 firing)");
    assert_eq!(a["color"], "danger");
    assert_eq!(
        a["title_link"],
        "http://strata.test:9009/#/alerts?receiver=team"
    );
    assert_eq!(
        a["fields"],
        json!([{"title": "Instance", "value": "db1", "short": true}])
    );
    let text = a["text"].as_str().expect("text");
    assert!(
        text.contains("instance = db1") && text.contains("summary = disk is full"),
        "{text}"
    );

    let pd = wait_calls(&hook, "pd", 1).await;
    let p = &pd[0].body;
    assert_eq!(p["routing_key"], "rk-1");
    assert_eq!(p["event_action"], "trigger");
    assert_eq!(
        p["payload"]["summary"],
        "[FIRING:1] DiskFull (db1 critical)"
    );
    assert_eq!(p["payload"]["severity"], "critical");
    assert_eq!(p["payload"]["source"], "Strata Alertmanager");
    assert_eq!(
        p["payload"]["custom_details"],
        json!({"summary": "disk is full"})
    );
    let dedup = p["dedup_key"].as_str().expect("dedup_key").to_string();
    assert_eq!(dedup.len(), 64, "{p}");

    // Resolve: both notify again, Slack in green, PagerDuty resolving the same incident.
    let now = chrono::Utc::now().to_rfc3339();
    let mut resolved = alert.clone();
    resolved["endsAt"] = Value::String(now);
    common::post_ok(&alerts, None, &json!([resolved])).await;
    let slack = wait_calls(&hook, "slack", 2).await;
    let a = &slack[1].body["attachments"][0];
    assert_eq!(a["title"], "RESOLVED DiskFull (0 firing)");
    assert_eq!(a["color"], "good");
    let pd = wait_calls(&hook, "pd", 2).await;
    assert_eq!(pd[1].body["event_action"], "resolve");
    assert_eq!(pd[1].body["dedup_key"], Value::String(dedup));

    // The broken template failed its notification without a request, and was counted.
    assert!(
        hook.calls().iter().all(|c| c.path != "broken"),
        "{:?}",
        hook.calls()
    );
    let mut exposition = String::new();
    prometheus_client::encoding::text::encode(&mut exposition, &registry).expect("encode");
    let failed: f64 = exposition
        .lines()
        .filter(|l| {
            l.starts_with("alertmanager_notifications_failed_total{")
                && l.contains("integration=\"slack\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failed >= 1.0, "{exposition}");
    run.shutdown().await;
}

/// What one SMTP session delivered.
#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A plain-text SMTP server on 127.0.0.1 that accepts every message (no TLS, no AUTH).
async fn fake_smtp() -> (u16, std::sync::Arc<parking_lot::Mutex<Vec<Mail>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind smtp");
    let port = listener.local_addr().expect("addr").port();
    let mails: std::sync::Arc<parking_lot::Mutex<Vec<Mail>>> = Default::default();
    let store = mails.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 fake ESMTP\r\n").await;
                let mut mail = Mail {
                    from: String::new(),
                    to: Vec::new(),
                    data: String::new(),
                };
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 fake\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        mail.from = line[10..].trim().to_string();
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        mail.to.push(line[8..].trim().to_string());
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        let _ = w.write_all(b"354 go ahead\r\n").await;
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            mail.data.push_str(&l);
                            mail.data.push('\n');
                        }
                        store.lock().push(mail.clone());
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, mails)
}

/// Undoes quoted-printable soft breaks and `=3D`, enough to read the bodies.
fn unqp(s: &str) -> String {
    s.replace("=\n", "").replace("=3D", "=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_firing_and_resolved_over_smtp() {
    let (port, mails) = fake_smtp().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        r#"global:
  smtp_from: 'Strata <am@example.org>'
  smtp_smarthost: '127.0.0.1:{port}'
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: mail
    email_configs:
      - to: 'ops@example.org, dba@example.org'
        send_resolved: true
        headers: {{X-Team: '{{{{ .CommonLabels.team }}}}'}}
        text: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} is {{{{ .Status }}}}{{{{ end }}}}'
"#
    );
    std::fs::write(dir.path().join("am.yml"), cfg).expect("write config");
    let am = common::build(
        dir.path(),
        "config_file: am.yml",
        TenancyConfig::default(),
        &mut Registry::default(),
    )
    .expect("alertmanager");
    let run = Running::start(am).await;
    let alerts = format!("{}/api/v2/alerts", run.base);
    let alert = common::firing(json!({"alertname": "DiskFull", "instance": "db1", "team": "dba"}));
    common::post_ok(&alerts, None, &json!([alert])).await;
    let wait = |n: usize| {
        let mails = mails.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if mails.lock().len() >= n {
                    return mails.lock().clone();
                }
                assert!(Instant::now() < deadline, "{n} email(s) not received");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let got = wait(1).await;
    let m = &got[0];
    assert_eq!(m.from, "<am@example.org>");
    assert_eq!(m.to, vec!["<ops@example.org>", "<dba@example.org>"]);
    let data = unqp(&m.data);
    assert!(
        data.contains("Subject: [FIRING:1] DiskFull (db1 dba)\n"),
        "{data}"
    );
    assert!(data.contains("From: Strata <am@example.org>\n"), "{data}");
    assert!(data.contains("X-Team: dba\n"), "{data}");
    assert!(data.contains("db1 is firing"), "{data}");
    assert!(data.contains("Content-Type: text/html"), "{data}");
    assert!(data.contains("<td>instance</td><td>db1</td>"), "{data}");

    let mut resolved = alert.clone();
    resolved["endsAt"] = Value::String(chrono::Utc::now().to_rfc3339());
    common::post_ok(&alerts, None, &json!([resolved])).await;
    let got = wait(2).await;
    let data = unqp(&got[1].data);
    assert!(
        data.contains("Subject: [RESOLVED] DiskFull (db1 dba)\n"),
        "{data}"
    );
    assert!(data.contains("db1 is resolved"), "{data}");
    run.shutdown().await;
}
