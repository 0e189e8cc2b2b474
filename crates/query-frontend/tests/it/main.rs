//! The query-frontend against a fake querier that answers any range query with one series per
//! tenant (`{tenant="…"}`, value = evaluation time in seconds): splitting, joining, caching,
//! freshness, tenants, retries and pass-through.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;
use strata_model::{TenancyConfig, TenancyMode};
use strata_query_frontend::{Downstream, FrontendError, QueryFrontend, QueryFrontendConfig};

const DAY: i64 = 86_400;

#[derive(Default)]
struct Fake {
    /// (path, query string) of every call.
    calls: Mutex<Vec<(String, String)>>,
    /// Answer 503 to this many calls first.
    fail_first: Mutex<u32>,
    /// Each call takes this long.
    delay_ms: Mutex<u64>,
}

fn param(q: &str, k: &str) -> Option<String> {
    form_urlencoded::parse(q.as_bytes())
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
}

/// A matrix answer over the grid of `start..=end` by `step` (seconds).
fn answer(tenant: &str, query: &str, start: i64, end: i64, step: i64) -> Value {
    let values: Vec<Value> = (0..)
        .map(|k| start + k * step)
        .take_while(|&t| t <= end)
        .map(|t| json!([t, t.to_string()]))
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"tenant": tenant, "q": query}, "values": values}
    ]}})
}

#[async_trait]
impl Downstream for Fake {
    fn name(&self) -> &str {
        "fake"
    }

    async fn call(&self, req: Request<Bytes>) -> Result<Response<Bytes>, FrontendError> {
        let path = req.uri().path().to_owned();
        // Pieces come as form POSTs; other reads as they were sent.
        let qs = match req.uri().query() {
            Some(q) => q.to_owned(),
            None => String::from_utf8_lossy(req.body()).into_owned(),
        };
        self.calls.lock().push((path.clone(), qs.clone()));
        let delay = *self.delay_ms.lock();
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        {
            let mut f = self.fail_first.lock();
            if *f > 0 {
                *f -= 1;
                return Ok(Response::builder()
                    .status(503)
                    .body(Bytes::from_static(b"{\"status\":\"error\"}"))
                    .unwrap());
            }
        }
        if !path.ends_with("/query_range") {
            return Ok(Response::new(Bytes::from(format!("passed {path}"))));
        }
        let tenant = req
            .headers()
            .get("x-scope-orgid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let query = param(&qs, "query").unwrap();
        if query == "bad" {
            return Ok(Response::builder()
                .status(422)
                .body(Bytes::from_static(
                    b"{\"status\":\"error\",\"error\":\"bad\"}",
                ))
                .unwrap());
        }
        let secs = |k: &str| Some(param(&qs, k)?.parse::<f64>().ok()? as i64);
        let (Some(start), Some(end), Some(step)) = (secs("start"), secs("end"), secs("step"))
        else {
            return Ok(Response::new(Bytes::from(format!("passed {path}"))));
        };
        let body = answer(&tenant, &query, start, end, step);
        Ok(Response::new(Bytes::from(body.to_string())))
    }
}

fn frontend(cfg: QueryFrontendConfig) -> (Arc<QueryFrontend>, Arc<Fake>) {
    frontend_with(cfg, TenancyMode::Header)
}

fn frontend_with(cfg: QueryFrontendConfig, mode: TenancyMode) -> (Arc<QueryFrontend>, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let tenancy = TenancyConfig {
        mode,
        ..TenancyConfig::default()
    };
    let f = QueryFrontend::new(cfg, tenancy, fake.clone(), &mut Default::default()).unwrap();
    (f, fake)
}

async fn range(
    f: &QueryFrontend,
    tenant: &str,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
) -> (StatusCode, Value) {
    let uri = format!(
        "/prometheus/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
        form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
    );
    let req = Request::get(uri)
        .header("X-Scope-OrgID", tenant)
        .body(Body::empty())
        .unwrap();
    let resp = f.serve(req).await;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn now() -> i64 {
    strata_model::time::now_ms() / 1000
}

#[tokio::test]
async fn a_range_query_is_cut_at_day_boundaries_and_joined_into_the_same_answer() {
    let (f, fake) = frontend(QueryFrontendConfig::default());
    let (start, end, step) = (10 * DAY - 3600 + 17, 13 * DAY + 600, 300);
    let (status, got) = range(&f, "t", "up", start, end, step).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, answer("t", "up", start, end, step));
    // Pieces: the rest of day 9, days 10–12, the start of day 13; each within one day and
    // on the query's grid.
    let calls = fake.calls.lock().clone();
    assert_eq!(calls.len(), 5, "{calls:?}");
    for (_, qs) in &calls {
        let s = param(qs, "start").unwrap().parse::<i64>().unwrap();
        let e = param(qs, "end").unwrap().parse::<i64>().unwrap();
        assert_eq!(s.div_euclid(DAY), e.div_euclid(DAY), "{qs}");
        assert_eq!((s - start) % step, 0, "{qs}");
    }
}

#[tokio::test]
async fn old_pieces_are_cached_per_tenant_and_fresh_ones_never() {
    let (f, fake) = frontend(QueryFrontendConfig::default());
    let end = now();
    let start = end - 3 * DAY;
    let (_, first) = range(&f, "a", "up", start, end, 600).await;
    let pieces = fake.calls.lock().len();
    assert_eq!(pieces, 4);
    // Every piece but the one ending within max_cache_freshness (10 m) of now is kept.
    assert_eq!(f.cached_pieces(), 3);
    fake.calls.lock().clear();
    let (_, again) = range(&f, "a", "up", start, end, 600).await;
    assert_eq!(again, first);
    assert_eq!(
        fake.calls.lock().len(),
        1,
        "only the fresh piece is asked again"
    );
    // Another tenant's identical query is not answered from a's cache.
    fake.calls.lock().clear();
    let (_, b) = range(&f, "b", "up", start, end, 600).await;
    assert_eq!(fake.calls.lock().len(), 4);
    assert_eq!(b["data"]["result"][0]["metric"]["tenant"], "b");
    // No cache at all with a zero budget.
    let (f, fake) = frontend(QueryFrontendConfig {
        results_cache_max_bytes: 0,
        ..QueryFrontendConfig::default()
    });
    range(&f, "a", "up", start, end, 600).await;
    range(&f, "a", "up", start, end, 600).await;
    assert_eq!(fake.calls.lock().len(), 8);
}

#[tokio::test]
async fn a_querier_5xx_is_retried_and_a_4xx_is_the_answer() {
    let (f, fake) = frontend(QueryFrontendConfig::default());
    *fake.fail_first.lock() = 2;
    let (status, got) = range(&f, "t", "up", 0, 3600, 60).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, answer("t", "up", 0, 3600, 60));
    assert_eq!(fake.calls.lock().len(), 3);
    // More failures than retries: the querier's last answer.
    let (f, fake) = frontend(QueryFrontendConfig {
        max_retries: 1,
        ..QueryFrontendConfig::default()
    });
    *fake.fail_first.lock() = 5;
    let (status, _) = range(&f, "t", "up", 0, 3600, 60).await;
    assert_eq!(status, 503);
    assert_eq!(fake.calls.lock().len(), 2);
    // A bad query is not retried, and its error is the answer.
    fake.calls.lock().clear();
    let (status, body) = range(&f, "t", "bad", 0, 3 * DAY, 60).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "bad");
}

#[tokio::test]
async fn queries_using_start_or_end_are_not_cut_and_other_reads_pass_through() {
    let (f, fake) = frontend(QueryFrontendConfig::default());
    let (status, _) = range(&f, "t", "up @ end()", 0, 3 * DAY, 600).await;
    assert_eq!(status, 200);
    assert_eq!(fake.calls.lock().len(), 1);
    // Aligned to the step when asked.
    let (f, fake) = frontend(QueryFrontendConfig {
        align_queries_with_step: true,
        ..QueryFrontendConfig::default()
    });
    let (_, got) = range(&f, "t", "up", 65, 1000, 60).await;
    assert_eq!(got, answer("t", "up", 60, 960, 60));
    // Not a range query, or one the frontend cannot read: the querier answers as it is.
    let resp = f
        .serve(Request::get("/api/v1/labels").body(Body::empty()).unwrap())
        .await;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "passed /api/v1/labels");
    let resp = f
        .serve(
            Request::get("/api/v1/query_range?query=up&start=x&end=1&step=1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "passed /api/v1/query_range");
    assert_eq!(fake.calls.lock().len(), 3);
}

#[tokio::test]
async fn a_heavy_tenant_does_not_starve_a_light_one() {
    let (f, fake) = frontend(QueryFrontendConfig {
        max_concurrent_calls: 1,
        ..QueryFrontendConfig::default()
    });
    *fake.delay_ms.lock() = 20;
    // Heavy: a 10-day query, 10 pieces, all queued at once behind one slot.
    let heavy = {
        let f = f.clone();
        tokio::spawn(async move { range(&f, "heavy", "up", 0, 10 * DAY - 1, 3600).await })
    };
    while fake.calls.lock().is_empty() {
        tokio::task::yield_now().await;
    }
    let (status, _) = range(&f, "light", "up", 0, 3600, 60).await;
    assert_eq!(status, 200);
    // The light query got the slot right after heavy's running piece, not after all ten.
    let calls = fake.calls.lock().clone();
    let light_at = calls
        .iter()
        .position(|(_, qs)| param(qs, "step").as_deref() == Some("60"))
        .unwrap();
    assert!(
        light_at <= 2,
        "light query ran as call {light_at} of {}",
        calls.len()
    );
    let (status, body) = heavy.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body,
        answer("heavy", "up", 0, 10 * DAY - 1 - (10 * DAY - 1) % 3600, 3600)
    );
}

/// A memcached server on a free loopback port, stopped when dropped.
struct MemcachedServer {
    child: std::process::Child,
    addr: String,
}

impl Drop for MemcachedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn memcached() -> MemcachedServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("memcached")
        // `-u` only matters as root (memcached refuses to run as root without it).
        .args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-m",
            "64",
            "-u",
            "nobody",
        ])
        .spawn()
        .unwrap_or_else(|e| panic!("memcached could not start ({e}): apt-get install memcached"));
    let addr = format!("127.0.0.1:{port}");
    let mut server = MemcachedServer { child, addr };
    for _ in 0..200 {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("memcached exited at start: {status}");
        }
        if tokio::net::TcpStream::connect(&server.addr).await.is_ok() {
            return server;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("memcached did not listen on {}", server.addr);
}

fn memcached_frontend(addr: &str) -> (Arc<QueryFrontend>, Arc<Fake>) {
    frontend(QueryFrontendConfig {
        results_cache_backend: strata_query_frontend::CacheBackend::Memcached,
        memcached: strata_query_frontend::MemcachedConfig {
            addresses: vec![addr.to_owned()],
            ..Default::default()
        },
        ..QueryFrontendConfig::default()
    })
}

#[tokio::test]
async fn frontends_share_pieces_through_memcached_and_a_dead_cache_is_a_miss() {
    let server = memcached().await;
    let (a, fake_a) = memcached_frontend(&server.addr);
    let (b, fake_b) = memcached_frontend(&server.addr);
    let end = now();
    let start = end - 3 * DAY;
    let (status, first) = range(&a, "t", "up", start, end, 600).await;
    assert_eq!(status, 200);
    assert_eq!(fake_a.calls.lock().len(), 4);
    // The other frontend finds the three old pieces in memcached; only today's is asked.
    let (_, second) = range(&b, "t", "up", start, end, 600).await;
    assert_eq!(second, first);
    assert_eq!(fake_b.calls.lock().len(), 1);
    // Another tenant does not share them.
    let (_, other) = range(&b, "u", "up", start, end, 600).await;
    assert_eq!(other["data"]["result"][0]["metric"]["tenant"], "u");
    assert_eq!(fake_b.calls.lock().len(), 5);
    // With memcached gone every piece is asked of the querier and the query still answers.
    drop(server);
    let (status, again) = range(&a, "t", "up", start, end, 600).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(fake_a.calls.lock().len(), 8);
}

#[tokio::test]
async fn basic_auth_tenants_never_share_cached_pieces() {
    // basic_auth tenancy without X-Scope-OrgID: the user name is the tenant.
    let (f, fake) = frontend_with(QueryFrontendConfig::default(), TenancyMode::BasicAuth);
    let ask = |user: &'static str| {
        let f = f.clone();
        async move {
            let req = Request::get(format!(
                "/api/v1/query_range?query=up&start={}&end={}&step=600",
                10 * DAY,
                13 * DAY
            ))
            .header(
                "authorization",
                match user {
                    "a" => "Basic YTpw", // a:p
                    _ => "Basic Yjpw",   // b:p
                },
            )
            .body(Body::empty())
            .unwrap();
            f.serve(req).await.status()
        }
    };
    assert_eq!(ask("a").await, 200);
    assert_eq!(fake.calls.lock().len(), 4);
    assert_eq!(ask("a").await, 200);
    assert_eq!(
        fake.calls.lock().len(),
        4,
        "a's second query comes from the cache"
    );
    assert_eq!(ask("b").await, 200);
    assert_eq!(
        fake.calls.lock().len(),
        8,
        "b must not get a's cached pieces"
    );
    // Without any tenant the querier answers (and refuses) it; nothing is cached.
    let resp = f
        .serve(
            Request::get(format!(
                "/api/v1/query_range?query=up&start={}&end={}&step=600",
                10 * DAY,
                13 * DAY
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.calls.lock().len(), 9, "passed through as one call");
}

#[tokio::test]
async fn queries_over_the_point_limit_go_whole_and_at_times_are_never_cached() {
    let (f, fake) = frontend(QueryFrontendConfig::default());
    // 20,000 steps over many days: one call, as sent, for the querier to refuse.
    range(&f, "t", "up", 0, 20_000 * 60, 60).await;
    assert_eq!(fake.calls.lock().len(), 1);
    // An `@` time or a negative offset: split, but never cached.
    fake.calls.lock().clear();
    for q in ["up @ 100", "up offset -1h"] {
        range(&f, "t", q, 10 * DAY, 13 * DAY, 600).await;
        range(&f, "t", q, 10 * DAY, 13 * DAY, 600).await;
    }
    assert_eq!(fake.calls.lock().len(), 16);
    assert_eq!(f.cached_pieces(), 0);
    // Times before 1970 keep their fraction right (-1.5 s is not -2.5 s).
    fake.calls.lock().clear();
    let (status, got) = range(&f, "t", "up", -1, 1, 1).await;
    assert_eq!(status, 200);
    assert_eq!(got, answer("t", "up", -1, 1, 1));
}
