//! amtool 0.25 (from Debian's prometheus-alertmanager) as a real client of Strata's API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use strata_alertmanager::time::SystemClock;
use strata_alertmanager::{router, Alertmanager, AlertmanagerConfig};

const AMTOOL: &str = "/usr/bin/amtool";

/// Runs amtool (against `url` when given) and returns its output whatever the exit status.
async fn amtool_output(url: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(AMTOOL);
    if let Some(url) = url {
        cmd.arg(format!("--alertmanager.url={url}"))
            .arg("--timeout=10s");
    }
    tokio::time::timeout(
        Duration::from_secs(20),
        cmd.args(args).kill_on_drop(true).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("amtool {args:?} timed out"))
    .unwrap_or_else(|e| panic!("amtool {args:?}: {e}"))
}

async fn amtool(url: &str, args: &[&str]) -> String {
    let out = amtool_output(Some(url), args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "amtool {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn ensure_amtool() {
    if !std::path::Path::new(AMTOOL).exists() {
        // Installed with prometheus-alertmanager; the differential test installs it.
        let _ = std::process::Command::new("apt-get")
            .args(["install", "-y", "prometheus-alertmanager"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    assert!(std::path::Path::new(AMTOOL).exists(), "{AMTOOL} missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_manages_alerts_and_silences() {
    ensure_amtool();
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
        None,
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

        // amtool prints `config.original` of /api/v2/status: the file exactly as written.
        let show = amtool(url, &["config", "show"]).await;
        assert_eq!(show.trim(), cfg.trim(), "config show");
    }
    server.abort();
}

/// A nested route tree where `continue` makes one alert reach several receivers.
const ROUTES: &str = r#"route:
  receiver: default
  group_by: [alertname]
  group_wait: 1h
  routes:
    - matchers: ['team="db"']
      receiver: db
      continue: true
      routes:
        - matchers: ['severity="critical"']
          receiver: db-pager
    - matchers: ['team=~"db|web"', 'env!="dev"']
      receiver: web
    - match_re: {service: 'api|auth'}
      receiver: api
      continue: true
    - match: {env: staging}
      receiver: staging
receivers:
  - name: default
  - name: db
  - name: db-pager
  - name: web
  - name: api
  - name: staging
"#;

/// Starts Strata (loop and API) with `config` on 127.0.0.1.
async fn start(dir: &std::path::Path, config: &str) -> crate::common::Running {
    std::fs::write(dir.join("am.yml"), config).expect("write config");
    let am = crate::common::build(
        dir,
        "config_file: am.yml",
        strata_model::TenancyConfig::default(),
        &mut prometheus_client::registry::Registry::default(),
    )
    .expect("alertmanager");
    crate::common::Running::start(am).await
}

/// `amtool config routes test` routes with the configuration it reads from Strata's
/// `/api/v2/status`; for every label set its answer must equal both the expected receivers and
/// the receivers Strata itself reports for an alert with those labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_routes_test_agrees_with_strata_routing() {
    ensure_amtool();
    let dir = tempfile::tempdir().expect("tempdir");
    let strata = start(dir.path(), ROUTES).await;
    let url = strata.base.as_str();
    let cases: [(&[&str], &[&str]); 7] = [
        (&["alertname=A"], &["default"]),
        (&["alertname=B", "team=db"], &["db", "web"]),
        (
            &["alertname=C", "team=db", "severity=critical"],
            &["db-pager", "web"],
        ),
        // The first child stops (no continue) before `api`.
        (&["alertname=D", "team=web", "service=api"], &["web"]),
        (&["alertname=E", "team=web", "env=dev"], &["default"]),
        (
            &["alertname=F", "service=auth", "env=staging"],
            &["api", "staging"],
        ),
        (
            &["alertname=G", "team=db", "env=dev", "service=api"],
            &["db", "api"],
        ),
    ];
    for (labels, want) in cases {
        let mut args = vec!["config", "routes", "test"];
        args.extend_from_slice(labels);
        let got = amtool(url, &args).await;
        assert_eq!(got.trim(), want.join(","), "amtool routes test {labels:?}");
        // --verify.receivers makes amtool itself fail on a mismatch.
        let verify = format!("--verify.receivers={}", want.join(","));
        let mut args = vec!["config", "routes", "test", verify.as_str()];
        args.extend_from_slice(labels);
        amtool(url, &args).await;

        let label_map: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').expect("label");
                (k.to_string(), serde_json::Value::String(v.to_string()))
            })
            .collect();
        crate::common::post_ok(
            &format!("{url}/api/v2/alerts"),
            None,
            &serde_json::json!([crate::common::firing(label_map.into())]),
        )
        .await;
        let name = labels[0].trim_start_matches("alertname=");
        let listing = crate::common::get_json(
            &format!("{url}/api/v2/alerts?filter=alertname%3D%22{name}%22"),
            None,
        )
        .await;
        let mut strata_receivers: Vec<String> = listing[0]["receivers"]
            .as_array()
            .unwrap_or_else(|| panic!("alert {name} not listed: {listing}"))
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_string())
            .collect();
        strata_receivers.sort();
        let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want_sorted.sort();
        assert_eq!(
            strata_receivers, want_sorted,
            "Strata's receivers of {labels:?}"
        );
    }
    strata.shutdown().await;
}

fn silence_ids(query_json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(query_json)
        .unwrap_or_else(|e| panic!("silence query output is not JSON: {e}: {query_json}"));
    let mut ids: Vec<String> = v
        .as_array()
        .expect("array of silences")
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

/// `amtool silence import` of `amtool silence query -o json` output: into the same Strata it
/// updates the silences; into another one the ids are unknown (404) and amtool creates them
/// anew, as it does with `--force`; the matchers, comments and ends survive either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_imports_exported_silences() {
    ensure_amtool();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let a = start(dir_a.path(), ROUTES).await;
    let b = start(dir_b.path(), ROUTES).await;
    for (matchers, comment) in [
        (["alertname=Disk", "team=db"], "disk work"),
        (["alertname=~Net.*", "env!=prod"], "network work"),
    ] {
        let mut args = vec!["silence", "add", "-c", comment, "-a", "ops", "-d", "2h"];
        args.extend_from_slice(&matchers);
        amtool(&a.base, &args).await;
    }
    let exported = amtool(&a.base, &["silence", "query", "-o", "json"]).await;
    let ids_a = silence_ids(&exported);
    assert_eq!(ids_a.len(), 2, "{exported}");
    let file = dir_a.path().join("silences.json");
    std::fs::write(&file, &exported).expect("write export");
    let file = file.to_str().expect("utf-8 path");

    // Into the origin each id is known, so the import is an update; the export rounds startsAt
    // to milliseconds, so (as upstream) an update may replace a silence rather than edit it in
    // place: either way two active silences with the same matchers remain.
    amtool(&a.base, &["silence", "import", file]).await;
    let after = amtool(&a.base, &["silence", "query", "-o", "json"]).await;
    assert_eq!(
        silence_ids(&after).len(),
        2,
        "import into the origin: {after}"
    );

    // Unknown ids: Strata answers 404 (as upstream), which amtool recognises and answers by
    // creating each silence anew; a different status would make the import fail.
    amtool(&b.base, &["silence", "import", file]).await;
    let imported = amtool(&b.base, &["silence", "query", "-o", "json"]).await;
    let ids_b = silence_ids(&imported);
    assert_eq!(ids_b.len(), 2, "{imported}");
    assert!(ids_b.iter().all(|id| !ids_a.contains(id)), "{imported}");
    // --force drops the ids up front: two more silences.
    amtool(&b.base, &["silence", "import", "--force", file]).await;
    let forced = amtool(&b.base, &["silence", "query", "-o", "json"]).await;
    assert_eq!(silence_ids(&forced).len(), 4, "{forced}");
    let strip = |text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        let mut kept: Vec<(String, String, String)> = v
            .as_array()
            .expect("array")
            .iter()
            .map(|s| {
                (
                    s["matchers"].to_string(),
                    s["comment"].to_string(),
                    s["endsAt"].to_string(),
                )
            })
            .collect();
        kept.sort();
        kept
    };
    assert_eq!(strip(&imported), strip(&exported));
    assert_eq!(strip(&after), strip(&exported));
    a.shutdown().await;
    b.shutdown().await;
}

/// `amtool check-config` and `AmConfig::load_with` must give the same verdict on each config
/// (templates included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_check_config_agrees_with_strata_validation() {
    ensure_amtool();
    let dir = tempfile::tempdir().expect("tempdir");
    let receivers = "receivers:\n  - name: a\n    webhook_configs: [{url: 'http://127.0.0.1:1/a'}]\n  - name: b\n";
    let with_receivers = |route: &str| format!("{route}{receivers}");
    let cases: Vec<(&str, String, bool)> = vec![
        ("nested routes", ROUTES.to_string(), true),
        (
            "intervals and inhibition",
            with_receivers(
                "route:\n  receiver: a\n  routes: [{receiver: b, matchers: ['x=\"1\"'], mute_time_intervals: [night]}]\ntime_intervals:\n  - name: night\n    time_intervals: [{times: [{start_time: '00:00', end_time: '06:00'}]}]\ninhibit_rules:\n  - source_matchers: ['severity=critical']\n    target_matchers: ['severity=warning']\n    equal: [cluster]\n",
            ),
            true,
        ),
        (
            "http_config",
            "route: {receiver: a}\nreceivers:\n  - name: a\n    webhook_configs: [{url: 'http://127.0.0.1:1/', max_alerts: 3, http_config: {basic_auth: {username: u, password: p}}}]\n".into(),
            true,
        ),
        (
            "good template file",
            with_receivers("templates: ['tmpl/*.tmpl']\nroute: {receiver: a}\n"),
            true,
        ),
        (
            "template file with a syntax error",
            with_receivers("templates: ['bad/*.tmpl']\nroute: {receiver: a}\n"),
            false,
        ),
        (
            "template file with an unknown function",
            with_receivers("templates: ['nofunc/*.tmpl']\nroute: {receiver: a}\n"),
            false,
        ),
        (
            "templates matching nothing",
            with_receivers("templates: ['none/*.tmpl']\nroute: {receiver: a}\n"),
            true,
        ),
        (
            "slack, pagerduty and email",
            "global: {smtp_from: 'am@x.org', smtp_smarthost: 'mail.x.org:587'}\nroute: {receiver: a}\nreceivers:\n  - name: a\n    slack_configs: [{api_url: 'https://hooks.example/T', channel: '#ops', title: '{{ .Status | toUpper }}'}]\n    pagerduty_configs: [{routing_key: k, severity: warning}]\n    email_configs: [{to: 'ops@x.org', headers: {Subject: '{{ template \"email.default.subject\" . }}'}}]\n".into(),
            true,
        ),
        (
            "slack without api_url",
            "route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{channel: '#ops'}]}]\n".into(),
            false,
        ),
        (
            // Only template files are parsed at load; a setting fails at send time.
            "slack title that does not parse",
            "route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{api_url: 'http://x/', title: '{{ .Status'}]}]\n".into(),
            true,
        ),
        (
            "pagerduty without routing key",
            "route: {receiver: a}\nreceivers: [{name: a, pagerduty_configs: [{severity: error}]}]\n".into(),
            false,
        ),
        (
            "email without to",
            "global: {smtp_from: 'am@x.org', smtp_smarthost: 'mail.x.org:587'}\nroute: {receiver: a}\nreceivers: [{name: a, email_configs: [{from: 'b@x.org'}]}]\n".into(),
            false,
        ),
        (
            "email without smarthost",
            "route: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: 'a@x.org', from: 'b@x.org'}]}]\n".into(),
            false,
        ),
        ("empty file", String::new(), false),
        (
            "unknown key",
            with_receivers("route:\n  receiver: a\n  group_wiat: 1s\n"),
            false,
        ),
        (
            "unknown receiver key",
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'http://x/', sendresolved: true}]}]\n".into(),
            false,
        ),
        (
            "bad duration",
            with_receivers("route:\n  receiver: a\n  group_wait: 5x\n"),
            false,
        ),
        (
            "unitless resolve_timeout",
            with_receivers("global: {resolve_timeout: 5}\nroute: {receiver: a}\n"),
            false,
        ),
        (
            "undefined receiver",
            with_receivers("route:\n  receiver: a\n  routes: [{receiver: nope}]\n"),
            false,
        ),
        (
            "bad matcher",
            with_receivers("route:\n  receiver: a\n  routes: [{matchers: ['{x']}]\n"),
            false,
        ),
        (
            "bad regex matcher",
            with_receivers("route:\n  receiver: a\n  routes: [{matchers: ['x=~\"(\"']}]\n"),
            false,
        ),
        (
            "bad match_re",
            with_receivers("route:\n  receiver: a\n  routes: [{match_re: {x: '('}}]\n"),
            false,
        ),
        (
            "missing route receiver",
            with_receivers("route:\n  group_by: [x]\n"),
            false,
        ),
        ("missing route", receivers.to_string(), false),
        (
            "root matchers",
            with_receivers("route:\n  receiver: a\n  matchers: ['x=\"1\"']\n"),
            false,
        ),
        (
            "duplicate receiver",
            "route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n".into(),
            false,
        ),
        (
            "webhook without url",
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{send_resolved: true}]}]\n".into(),
            false,
        ),
        (
            "invalid group_by label",
            with_receivers("route:\n  receiver: a\n  group_by: [x-y]\n"),
            false,
        ),
        (
            "undefined time interval",
            with_receivers("route:\n  receiver: a\n  routes: [{receiver: b, mute_time_intervals: [nope]}]\n"),
            false,
        ),
        (
            "zero repeat_interval",
            with_receivers("route:\n  receiver: a\n  repeat_interval: 0s\n"),
            false,
        ),
    ];
    for (sub, text) in [
        (
            "tmpl",
            r#"{{ define "my.title" }}{{ .Status | toUpper }} {{ range .Alerts.Firing }}{{ .Labels.SortedPairs.Values | join "," }}{{ end }}{{ end }}"#,
        ),
        ("bad", r#"{{ define "x" }}{{ if }}{{ end }}{{ end }}"#),
        (
            "nofunc",
            r#"{{ define "x" }}{{ nosuchfunction . }}{{ end }}"#,
        ),
    ] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        std::fs::write(dir.path().join(sub).join("a.tmpl"), text).expect("write template");
    }
    for (i, (name, text, valid)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yml"));
        std::fs::write(&path, text).expect("write case");
        let out = amtool_output(None, &["check-config", path.to_str().expect("utf-8")]).await;
        // Both resolve `templates:` relative to the configuration file's directory.
        let strata = strata_alertmanager::amconfig::AmConfig::load_with(
            text,
            strata_alertmanager::amconfig::TemplateSource::Dir(dir.path()),
        );
        assert_eq!(
            out.status.success(),
            *valid,
            "{name}: amtool says {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            strata.is_ok(),
            *valid,
            "{name}: Strata says {:?}",
            strata.err()
        );
    }
}

/// With secrets in the configuration, `config.original` shows `<secret>` (a webhook URL as its
/// address and `/<secret>`), and amtool 0.25 still reads it: `config show` prints no secret and
/// `config routes test` routes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_reads_a_configuration_whose_secrets_are_hidden() {
    ensure_amtool();
    const SECRET: &str = "S3NT1NEL";
    let cfg = format!(
        "global:\n  smtp_from: am@example.org\n  smtp_smarthost: 'mail.example.org:587'\n  smtp_auth_password: {SECRET}\nroute:\n  receiver: hooks\n  routes:\n    - matchers: ['team=\"db\"']\n      receiver: pager\nreceivers:\n  - name: hooks\n    webhook_configs: [{{url: 'http://hooks.example:8080/{SECRET}', http_config: {{basic_auth: {{username: u, password: {SECRET}}}}}}}]\n    slack_configs: [{{api_url: 'https://hooks.slack.example/{SECRET}'}}]\n  - name: pager\n    pagerduty_configs: [{{routing_key: {SECRET}}}]\n    email_configs: [{{to: db@example.org}}]\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let strata = start(dir.path(), &cfg).await;
    let url = strata.base.as_str();
    let show = amtool(url, &["config", "show"]).await;
    assert!(!show.contains(SECRET), "{show}");
    assert!(show.contains("<secret>"), "{show}");
    let got = amtool(url, &["config", "routes", "test", "team=db"]).await;
    assert_eq!(got.trim(), "pager");
    let got = amtool(url, &["config", "routes", "test", "team=web"]).await;
    assert_eq!(got.trim(), "hooks");
    strata.shutdown().await;
}
