use crate::{entry, kv, put, PREFIX};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use strata_ring::{
    ring_router, InstanceState, RingOptions, RingStatus, RingWatcher, WatcherOptions,
};
use tokio::task::JoinHandle;

/// A server on 127.0.0.1:0, stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(router: axum::Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Server { addr, task }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn ring_page_lists_instances_and_forgets_them() {
    let (_m, kv) = kv();
    let now = now_ms();
    put(
        &*kv,
        "ing-1",
        InstanceState::Active,
        vec![1 << 30, 3 << 30],
        now,
    )
    .await;
    put(
        &*kv,
        "ing-<2>",
        InstanceState::Leaving,
        vec![2 << 30],
        now - 3_600_000,
    )
    .await;
    let w = RingWatcher::start(
        kv.clone(),
        PREFIX,
        WatcherOptions::new("ingester", RingOptions::default()),
    );
    w.wait_for(|r| r.len() == 2).await;
    let server = serve(ring_router("/ingester/ring", w.clone(), kv.clone(), PREFIX)).await;
    let url = format!("http://{}/ingester/ring", server.addr);
    let client = reqwest::Client::new();

    let html = client.get(&url).send().await.unwrap();
    assert_eq!(html.status(), 200);
    let html = html.text().await.unwrap();
    assert!(html.contains("<td>ing-1</td>"), "{html}");
    assert!(html.contains("ing-&lt;2&gt;"), "escaped: {html}");
    assert!(!html.contains("ing-<2>"));
    assert!(html.contains("name=\"forget\""));
    assert!(html.contains("UNHEALTHY"));

    let st: RingStatus = client
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st.instances.len(), 2);
    let i1 = &st.instances[0];
    assert_eq!(
        (i1.id.as_str(), i1.state, i1.tokens),
        ("ing-1", InstanceState::Active, 2)
    );
    assert!(i1.healthy);
    assert!(
        (i1.ownership_percent - 75.0).abs() < 1e-6,
        "{}",
        i1.ownership_percent
    );
    assert!(!st.instances[1].healthy);
    assert_eq!(st.instances[1].http_addr, "ing-<2>.local:8080");

    let resp = client
        .post(&url)
        .form(&[("forget", "ing-<2>")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "redirected back to the page");
    assert!(entry(&*kv, "ing-<2>").await.is_none());
    assert!(entry(&*kv, "ing-1").await.is_some());

    let resp = client
        .post(&url)
        .form(&[("forget", "nobody")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
