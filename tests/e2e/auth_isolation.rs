//! Built-in authentication (`server.auth`) through the real binary: the tenant isolation
//! matrix over every read and write API in header, basic-auth and token modes, 401 without or
//! with a wrong credential, 403 when naming another tenant, admin endpoints, health checks
//! without credentials, and a users-file change taken without a restart.

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use strata_proto::prometheus::{
    metric_metadata::MetricType, Label, MetricMetadata, Sample, TimeSeries, WriteRequest,
};
use strata_tests::{
    api_time, now_ms, push_to, query_api::remote_read_all, require_strata, series_from, Strata,
    TestDir,
};

/// The hash the binary prints for a secret (`--hash-password` or `--hash-token`).
fn hash(flag: &str, secret: &str) -> String {
    let mut child = std::process::Command::new(require_strata())
        .arg(flag)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run strata");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{secret}\n").as_bytes())
        .expect("write secret");
    let out = child.wait_with_output().expect("strata exits");
    assert!(out.status.success(), "strata {flag} failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn basic(user: &str, password: &str) -> String {
    use std::fmt::Write as _;
    // Standard base64 without a dependency: small enough to spell out.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = out.write_char(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A client that sends `authorization` (if any) and `X-Scope-OrgID` (if any) on every request.
fn client(authorization: Option<&str>, org: Option<&str>) -> reqwest::Client {
    let mut h = HeaderMap::new();
    if let Some(a) = authorization {
        h.insert("authorization", HeaderValue::from_str(a).expect("header"));
    }
    if let Some(o) = org {
        h.insert("x-scope-orgid", HeaderValue::from_str(o).expect("header"));
    }
    reqwest::Client::builder()
        .default_headers(h)
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("client")
}

async fn start(dir: TestDir, tenancy: &str, users: &str) -> Strata {
    let users_file = dir.root().join("users.yml");
    std::fs::write(&users_file, users).expect("users file");
    let cfg = format!(
        "tenancy:\n  mode: {tenancy}\nserver:\n  auth:\n    enabled: true\n    users_file: '{}'\n    reload_interval: 200ms\nquerier:\n  tenant_federation: {{enabled: true}}\n",
        users_file.display()
    );
    Strata::start_with_config(dir, Some(&cfg)).await
}

fn write_request(owner: &str, ts: i64) -> WriteRequest {
    let mut labels = vec![
        ("__name__", "iso_metric".to_string()),
        ("owner", owner.to_string()),
        (if owner == "a" { "only_a" } else { "only_b" }, "1".into()),
    ];
    labels.sort();
    WriteRequest {
        timeseries: vec![TimeSeries {
            labels: labels
                .into_iter()
                .map(|(n, v)| Label {
                    name: n.into(),
                    value: v,
                })
                .collect(),
            samples: vec![Sample {
                value: 1.0,
                timestamp: ts,
            }],
            ..Default::default()
        }],
        metadata: vec![MetricMetadata {
            r#type: MetricType::Gauge as i32,
            metric_family_name: "iso_metric".into(),
            help: format!("help of {owner}"),
            unit: String::new(),
        }],
    }
}

async fn call(
    c: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<String>,
) -> (StatusCode, String) {
    let mut r = c.request(method.clone(), url);
    if let Some(b) = body {
        r = r.body(b);
    }
    let resp = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let s = resp.status();
    (s, resp.text().await.unwrap_or_default())
}

async fn json_of(c: &reqwest::Client, url: &str) -> Value {
    let (s, body) = call(c, Method::GET, url, None).await;
    assert_eq!(s, StatusCode::OK, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// Owners (`owner` label) in a query result.
fn owners(v: &Value) -> BTreeSet<String> {
    v["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter_map(|r| r["metric"]["owner"].as_str().map(str::to_owned))
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The tenant's view: every read API shows exactly `owner`'s data.
async fn sees_only(s: &Strata, c: &reqwest::Client, owner: &str, other: &str, ts: i64) {
    let t = api_time(ts);
    let q = json_of(
        c,
        &s.url(&format!("/api/v1/query?query=iso_metric&time={t}")),
    )
    .await;
    assert_eq!(owners(&q), set(&[owner]), "query: {q}");
    let r = json_of(
        c,
        &s.url(&format!(
            "/api/v1/query_range?query=iso_metric&start={}&end={}&step=15",
            api_time(ts - 60_000),
            api_time(ts + 60_000)
        )),
    )
    .await;
    assert_eq!(owners(&r), set(&[owner]), "query_range: {r}");
    let series = series_from(c, &s.url(""), &["iso_metric"], ts - 60_000, ts + 60_000)
        .await
        .expect("series");
    let got: BTreeSet<String> = series
        .iter()
        .filter_map(|l| l.get("owner").cloned())
        .collect();
    assert_eq!(got, set(&[owner]), "series");
    let labels = json_of(c, &s.url("/api/v1/labels")).await.to_string();
    assert!(
        labels.contains(&format!("only_{owner}")),
        "labels: {labels}"
    );
    assert!(
        !labels.contains(&format!("only_{other}")),
        "labels: {labels}"
    );
    let values = json_of(c, &s.url("/api/v1/label/owner/values")).await;
    assert_eq!(values["data"], json!([owner]), "label values: {values}");
    let md = json_of(c, &s.url("/api/v1/metadata")).await.to_string();
    assert!(md.contains(&format!("help of {owner}")), "metadata: {md}");
    assert!(!md.contains(&format!("help of {other}")), "metadata: {md}");
    let read = remote_read_all(c, &s.url("/api/v1/read"), ts - 60_000, ts + 60_000)
        .await
        .expect("remote read");
    let got: BTreeSet<String> = read
        .keys()
        .filter_map(|l| l.get("owner").cloned())
        .collect();
    assert_eq!(got, set(&[owner]), "remote read");
    let ex = json_of(c, &s.url("/api/v1/query_exemplars?query=iso_metric")).await;
    assert!(
        !ex.to_string().contains(&format!("\"{other}\"")),
        "exemplars: {ex}"
    );

    let alerts = json_of(c, &s.url("/api/v2/alerts")).await;
    let names: BTreeSet<String> = alerts
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, set(&[&format!("Iso_{owner}")]), "alerts: {alerts}");
    let silences = json_of(c, &s.url("/api/v2/silences")).await;
    let by: BTreeSet<String> = silences
        .as_array()
        .expect("silences")
        .iter()
        .filter_map(|x| x["createdBy"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(by, set(&[owner]), "silences: {silences}");
    let status = json_of(c, &s.url("/api/v2/status")).await.to_string();
    assert!(
        status.contains(&format!("recv-{owner}")),
        "status: {status}"
    );
    assert!(
        !status.contains(&format!("recv-{other}")),
        "status: {status}"
    );
    let (st, cfg) = call(c, Method::GET, &s.url("/api/v1/alerts"), None).await;
    assert_eq!(st, StatusCode::OK, "{cfg}");
    assert!(cfg.contains(&format!("recv-{owner}")), "config: {cfg}");
    assert!(!cfg.contains(&format!("recv-{other}")), "config: {cfg}");
    // The ruler: its configuration API lists only the tenant's groups, and neither the rules
    // nor the alerts it evaluates show the other tenant's.
    let (st, rules) = call(c, Method::GET, &s.url("/prometheus/config/v1/rules"), None).await;
    assert_eq!(st, StatusCode::OK, "{rules}");
    assert!(
        rules.contains(&format!("g-{owner}")),
        "rule groups: {rules}"
    );
    assert!(
        !rules.contains(&format!("g-{other}")),
        "rule groups: {rules}"
    );
    for path in ["/prometheus/api/v1/rules", "/prometheus/api/v1/alerts"] {
        let (st, body) = call(c, Method::GET, &s.url(path), None).await;
        assert_eq!(st, StatusCode::OK, "{path}: {body}");
        assert!(
            !body.contains(&format!("rec_{other}")) && !body.contains(&format!("g-{other}")),
            "{path}: {body}"
        );
    }
}

fn am_config(owner: &str) -> String {
    format!(
        "alertmanager_config: |\n  route:\n    receiver: recv-{owner}\n  receivers:\n    - name: recv-{owner}\n"
    )
}

/// Writes `owner`'s data through every write API; returns its silence id.
async fn writes(s: &Strata, c: &reqwest::Client, owner: &str, ts: i64) -> String {
    let p = push_to(c, &s.url("/api/v1/push"), &write_request(owner, ts))
        .await
        .expect("push");
    assert!(
        p.status.is_success(),
        "push as {owner}: {} {}",
        p.status,
        p.body
    );
    let (st, body) = call(
        c,
        Method::POST,
        &s.url("/api/v1/alerts"),
        Some(am_config(owner)),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "config upload as {owner}: {body}");
    let group = format!("name: g-{owner}\nrules:\n  - record: rec_{owner}\n    expr: vector(1)\n");
    let (st, body) = call(
        c,
        Method::POST,
        &s.url(&format!("/prometheus/config/v1/rules/ns-{owner}")),
        Some(group),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::ACCEPTED,
        "rule group upload as {owner}: {body}"
    );
    let alert = json!([{"labels": {"alertname": format!("Iso_{owner}")}}]).to_string();
    let r = c
        .post(s.url("/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(alert)
        .send()
        .await
        .expect("alerts");
    assert!(
        r.status().is_success(),
        "alert as {owner}: {:?}",
        r.text().await
    );
    let now = chrono_like(ts);
    let later = chrono_like(ts + 3_600_000);
    let silence = json!({
        "matchers": [{"name": "alertname", "value": format!("Iso_{owner}"), "isRegex": false}],
        "startsAt": now, "endsAt": later, "createdBy": owner, "comment": "isolation",
    });
    let r = c
        .post(s.url("/api/v2/silences"))
        .header("content-type", "application/json")
        .body(silence.to_string())
        .send()
        .await
        .expect("silence");
    let v: Value = r.json().await.expect("silence answer");
    v["silenceID"].as_str().expect("silenceID").to_owned()
}

/// RFC 3339 in UTC for a millisecond timestamp.
fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Every tenant-scoped endpoint, for the 401/403 sweeps.
fn endpoints() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/api/v1/push"),
        (Method::GET, "/api/v1/query?query=up"),
        (
            Method::GET,
            "/api/v1/query_range?query=up&start=1&end=2&step=1",
        ),
        (Method::GET, "/api/v1/series?match[]=up"),
        (Method::GET, "/api/v1/labels"),
        (Method::GET, "/api/v1/label/owner/values"),
        (Method::GET, "/api/v1/metadata"),
        (Method::POST, "/api/v1/read"),
        (Method::GET, "/api/v1/query_exemplars?query=up"),
        (Method::GET, "/api/v2/alerts"),
        (Method::POST, "/api/v2/alerts"),
        (Method::GET, "/api/v2/silences"),
        (Method::POST, "/api/v2/silences"),
        (Method::GET, "/api/v2/status"),
        (Method::GET, "/api/v1/alerts"),
        (Method::POST, "/api/v1/alerts"),
        (Method::DELETE, "/api/v1/alerts"),
        (Method::GET, "/alertmanager/api/v2/alerts"),
        (Method::GET, "/prometheus/config/v1/rules"),
        (Method::POST, "/prometheus/config/v1/rules/ns"),
        (Method::DELETE, "/prometheus/config/v1/rules/ns"),
        (Method::GET, "/prometheus/api/v1/rules"),
        (Method::GET, "/api/v1/rules"),
        (Method::GET, "/prometheus/api/v1/alerts"),
    ]
}

/// Admin endpoints: (method, path, form body).
fn admin_endpoints() -> Vec<(Method, &'static str, Option<&'static str>)> {
    vec![
        (Method::GET, "/config", None),
        (Method::POST, "/ingester/ring", Some("forget=nobody")),
        (Method::POST, "/distributor/ring", Some("forget=nobody")),
        (Method::POST, "/store-gateway/ring", Some("forget=nobody")),
        (Method::POST, "/ingester/shutdown", None),
        (Method::POST, "/meta/members/add-learner", Some("{}")),
        (Method::POST, "/-/reload", None),
        (Method::GET, "/metrics", None),
    ]
}

/// The matrix for one mode: `a`/`b` act for tenants A and B; `a_naming_b` is A's credential
/// naming B; `wrong` a wrong credential; `admin` an admin.
struct Mode<'a> {
    s: &'a Strata,
    a: reqwest::Client,
    b: reqwest::Client,
    a_naming_b: Option<reqwest::Client>,
    wrong: reqwest::Client,
    admin: reqwest::Client,
}

async fn matrix(m: Mode<'_>) {
    let s = m.s;
    let ts = now_ms();
    let _silence_a = writes(s, &m.a, "a", ts).await;
    let silence_b = writes(s, &m.b, "b", ts).await;
    sees_only(s, &m.a, "a", "b", ts).await;
    sees_only(s, &m.b, "b", "a", ts).await;

    // A cannot change B's data: B's silence stays, B's configuration stays.
    let (st, _) = call(
        &m.a,
        Method::DELETE,
        &s.url(&format!("/api/v2/silence/{silence_b}")),
        None,
    )
    .await;
    assert!(!st.is_success(), "A expired B's silence: {st}");
    let (st, _) = call(
        &m.a,
        Method::GET,
        &s.url(&format!("/api/v2/silence/{silence_b}")),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "A reads B's silence");
    let (st, body) = call(&m.a, Method::DELETE, &s.url("/api/v1/alerts"), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, cfg) = call(&m.b, Method::GET, &s.url("/api/v1/alerts"), None).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "B's configuration survived A's delete: {cfg}"
    );
    assert!(cfg.contains("recv-b"), "{cfg}");
    sees_only_silence(s, &m.b, &silence_b).await;
    let (st, _) = call(
        &m.a,
        Method::DELETE,
        &s.url("/prometheus/config/v1/rules/ns-b"),
        None,
    )
    .await;
    assert!(
        st == StatusCode::NOT_FOUND || st == StatusCode::ACCEPTED,
        "A deleting a namespace it does not have: {st}"
    );
    let (st, rules) = call(
        &m.b,
        Method::GET,
        &s.url("/prometheus/config/v1/rules"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{rules}");
    assert!(
        rules.contains("g-b"),
        "B's rule group survived A's delete: {rules}"
    );

    // No credential, a wrong one, and A naming B.
    let anon = client(None, Some("team-a"));
    for (method, path) in endpoints() {
        let url = s.url(path);
        let r = anon
            .request(method.clone(), &url)
            .send()
            .await
            .expect("call");
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without credentials"
        );
        assert!(
            r.headers().get("www-authenticate").is_some(),
            "{method} {path}: 401 names the schemes"
        );
        let (st, _) = call(&m.wrong, method.clone(), &url, None).await;
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a wrong credential"
        );
        if let Some(c) = &m.a_naming_b {
            let (st, body) = call(c, method.clone(), &url, None).await;
            assert_eq!(
                st,
                StatusCode::FORBIDDEN,
                "{method} {path} naming B: {body}"
            );
            assert!(body.contains("team-b"), "the 403 names the tenant: {body}");
        }
    }
    // Health checks need nothing.
    for path in ["/ready", "/-/healthy", "/-/ready"] {
        let (st, _) = call(&client(None, None), Method::GET, &s.url(path), None).await;
        assert_eq!(st, StatusCode::OK, "{path}");
    }
    // Admin endpoints: 401 without a credential, 403 for a tenant, through for an admin.
    for (method, path, body) in admin_endpoints() {
        let url = s.url(path);
        let with = |c: &reqwest::Client| {
            let mut r = c.request(method.clone(), &url);
            if let Some(b) = body {
                r = r
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(b);
            }
            r
        };
        let st = with(&client(None, None))
            .send()
            .await
            .expect("call")
            .status();
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without credentials"
        );
        let r = with(&m.a).send().await.expect("call");
        let st = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{method} {path} as a tenant: {text}"
        );
        if path == "/ingester/shutdown" {
            // Only a clustered ingester serves it; an admin gets past the check to the 404.
            continue;
        }
        let st = with(&m.admin).send().await.expect("call").status();
        assert!(
            st != StatusCode::UNAUTHORIZED && st != StatusCode::FORBIDDEN,
            "{method} {path} as an admin: {st}"
        );
    }
    let (st, cfg) = call(&m.admin, Method::GET, &s.url("/config"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(cfg.contains("users_file"), "{cfg}");
}

async fn sees_only_silence(s: &Strata, c: &reqwest::Client, id: &str) {
    let (st, body) = call(
        c,
        Method::GET,
        &s.url(&format!("/api/v2/silence/{id}")),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "B still has its silence: {body}");
    assert!(
        body.contains("\"active\""),
        "B's silence is still active: {body}"
    );
}

fn users_yaml(a_pw: &str, b_pw: &str, admin_pw: &str) -> String {
    format!(
        "users:\n- basic_auth: {{username: team-a, password_hash: '{}'}}\n  tenants: [team-a]\n- basic_auth: {{username: team-b, password_hash: '{}'}}\n  tenants: [team-b]\n- basic_auth: {{username: ops, password_hash: '{}'}}\n  tenants: ['*']\n  admin: true\n",
        hash("--hash-password", a_pw),
        hash("--hash-password", b_pw),
        hash("--hash-password", admin_pw),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_mode_isolates_tenants_and_reloads_users() {
    require_strata();
    let dir = TestDir::new();
    let users_file = dir.root().join("users.yml");
    let users = users_yaml("pw-a", "pw-b", "pw-ops");
    let s = start(dir, "header", &users).await;
    let a = basic("team-a", "pw-a");
    let b = basic("team-b", "pw-b");
    matrix(Mode {
        s: &s,
        a: client(Some(&a), Some("team-a")),
        b: client(Some(&b), Some("team-b")),
        a_naming_b: Some(client(Some(&a), Some("team-b"))),
        wrong: client(Some(&basic("team-a", "pw-b")), Some("team-a")),
        admin: client(Some(&basic("ops", "pw-ops")), None),
    })
    .await;

    // Tenant federation is on: A naming both tenants is refused (403 naming B); ops, allowed
    // every tenant, reads both, each series labelled with its tenant.
    let (st, body) = call(
        &client(Some(&a), Some("team-a|team-b")),
        Method::GET,
        &s.url("/api/v1/query?query=iso_metric"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("team-b"), "{body}");
    let both = json_of(
        &client(Some(&basic("ops", "pw-ops")), Some("team-a|team-b")),
        &s.url("/api/v1/query?query=iso_metric"),
    )
    .await;
    let pairs: BTreeSet<(String, String)> = both["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{both}"))
        .iter()
        .map(|r| {
            let l = |n: &str| r["metric"][n].as_str().unwrap_or("").to_owned();
            (l("__tenant_id__"), l("owner"))
        })
        .collect();
    assert_eq!(
        pairs,
        [("team-a", "a"), ("team-b", "b")]
            .iter()
            .map(|(t, o)| (t.to_string(), o.to_string()))
            .collect()
    );

    // A user added to the file is let in without a restart; a broken file keeps the users.
    let carol = client(Some(&basic("carol", "pw-c")), Some("team-c"));
    let (st, _) = call(&carol, Method::GET, &s.url("/api/v1/labels"), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let more = format!(
        "{users}- basic_auth: {{username: carol, password_hash: '{}'}}\n  tenants: [team-c]\n",
        hash("--hash-password", "pw-c")
    );
    replace(&users_file, &more);
    wait_for_status(&s, &carol, StatusCode::OK).await;
    replace(&users_file, "users: [this is not a user]\n");
    // Give the reloader a few rounds at the broken file: carol stays.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (st, _) = call(&carol, Method::GET, &s.url("/api/v1/labels"), None).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "a broken users file keeps the previous users"
    );
    assert!(
        s.log_tail()
            .contains("users file changed but does not load"),
        "{}",
        s.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_mode_checks_the_password_and_the_named_tenant() {
    require_strata();
    let users = users_yaml("pw-a", "pw-b", "pw-ops");
    let s = start(TestDir::new(), "basic_auth", &users).await;
    let a = basic("team-a", "pw-a");
    // Regression: in basic_auth tenancy the password was never checked, and X-Scope-OrgID
    // named any tenant.
    matrix(Mode {
        s: &s,
        a: client(Some(&a), None),
        b: client(Some(&basic("team-b", "pw-b")), None),
        a_naming_b: Some(client(Some(&a), Some("team-b"))),
        wrong: client(Some(&basic("team-b", "not-b's-password")), None),
        admin: client(Some(&basic("ops", "pw-ops")), None),
    })
    .await;
    // The admin may act for any tenant by naming it.
    let ops_as_b = client(Some(&basic("ops", "pw-ops")), Some("team-b"));
    let v = json_of(&ops_as_b, &s.url("/api/v1/label/owner/values")).await;
    assert_eq!(v["data"], json!(["b"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_isolates_tenants() {
    require_strata();
    // A's token has a fast (sha256) hash, B's a slow (argon2) one.
    let users = format!(
        "users:\n- name: robot-a\n  bearer_token_hash: '{}'\n  tenants: [team-a]\n- name: robot-b\n  bearer_token_hash: '{}'\n  tenants: [team-b]\n- name: ops\n  bearer_token_hash: '{}'\n  admin: true\n",
        hash("--hash-token", "token-a"),
        hash("--hash-password", "token-b"),
        hash("--hash-token", "token-ops"),
    );
    let s = start(TestDir::new(), "header", &users).await;
    matrix(Mode {
        s: &s,
        a: client(Some("Bearer token-a"), Some("team-a")),
        b: client(Some("Bearer token-b"), Some("team-b")),
        a_naming_b: Some(client(Some("Bearer token-a"), Some("team-b"))),
        wrong: client(Some("Bearer token-c"), Some("team-a")),
        admin: client(Some("Bearer token-ops"), None),
    })
    .await;
}

fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn wait_for_status(s: &Strata, c: &reqwest::Client, want: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, body) = call(c, Method::GET, &s.url("/api/v1/labels"), None).await;
        if st == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {st} ({body})\n{}",
            s.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
