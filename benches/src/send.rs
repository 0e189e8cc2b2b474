//! Where the pre-built requests go: one URL; several URLs behind a round-robin "load balancer"
//! (`spread`, e.g. two Strata distributors); or every URL at once with an acknowledgement rule
//! (`quorum`), as a writer that replicates by itself would write to independent single-node
//! stores.
//!
//! In quorum mode a request is acknowledged as soon as `quorum` URLs answered 2xx, and its
//! latency is the time to that answer. The other sends are not cancelled and the shard does not
//! wait for them: it goes on with its next request while they finish in the background, like
//! the Strata distributor's third replica (a real replicating writer would not wait for the
//! slowest copy either). The run reports how long those stragglers took to drain and how many
//! sends were in flight at most, so a replica that falls behind is visible.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How a request is sent when there are several URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Each request to the next URL, round-robin over all shards (a load balancer).
    Spread,
    /// Each request to every URL concurrently; acknowledged once `quorum` answered 2xx.
    Quorum,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Spread => "spread",
            Mode::Quorum => "quorum",
        }
    }
}

/// A request's result: the status code of the answer that decided it, or (code, message).
pub type Outcome = Result<String, (String, String)>;

/// Answers of one URL (in quorum mode also those that came after the request was decided).
#[derive(Default, Debug)]
struct UrlStats {
    ok: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// The URLs of one run, the mode, and what each URL answered.
#[derive(Debug)]
pub struct Endpoints {
    urls: Vec<String>,
    mode: Mode,
    quorum: usize,
    next: AtomicUsize,
    stats: Vec<UrlStats>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Endpoints {
    /// `quorum` is only used in quorum mode; it must be between 1 and the number of URLs.
    pub fn new(urls: Vec<String>, mode: Mode, quorum: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(!urls.is_empty(), "--url: at least one is needed");
        if mode == Mode::Quorum {
            anyhow::ensure!(
                (1..=urls.len()).contains(&quorum),
                "--quorum {quorum}: must be between 1 and the number of URLs ({})",
                urls.len()
            );
        }
        let stats = urls.iter().map(|_| UrlStats::default()).collect();
        Ok(Self {
            urls,
            mode,
            quorum,
            next: AtomicUsize::new(0),
            stats,
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        })
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// The index of the next request's URL in spread mode (round-robin over every caller).
    fn next_index(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len()
    }

    fn record(&self, i: usize, outcome: &Outcome) {
        let s = &self.stats[i];
        match outcome {
            Ok(_) => {
                s.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((_, msg)) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = s.first_error.lock().unwrap_or_else(|e| e.into_inner());
                if first.is_none() {
                    *first = Some(msg.clone());
                }
            }
        }
    }

    /// Sends one body. In quorum mode the sends that are still running when the request is
    /// decided are pushed to `background`; the caller awaits them at the end of the run.
    pub async fn send(
        self: &Arc<Self>,
        client: &reqwest::Client,
        headers: &HeaderMap,
        body: Bytes,
        background: &mut Vec<JoinHandle<()>>,
    ) -> Outcome {
        match self.mode {
            Mode::Spread => {
                let i = self.next_index();
                self.begin();
                let out = post_once(client, &self.urls[i], headers, body).await;
                self.end();
                self.record(i, &out);
                out
            }
            Mode::Quorum => self.send_quorum(client, headers, body, background).await,
        }
    }

    fn begin(&self) {
        let n = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(n, Ordering::Relaxed);
    }

    fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    async fn send_quorum(
        self: &Arc<Self>,
        client: &reqwest::Client,
        headers: &HeaderMap,
        body: Bytes,
        background: &mut Vec<JoinHandle<()>>,
    ) -> Outcome {
        background.retain(|h| !h.is_finished());
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..self.urls.len() {
            let (me, client, headers, body, tx) = (
                self.clone(),
                client.clone(),
                headers.clone(),
                body.clone(),
                tx.clone(),
            );
            self.begin();
            background.push(tokio::spawn(async move {
                let out = post_once(&client, &me.urls[i], &headers, body).await;
                me.end();
                me.record(i, &out);
                // The receiver is gone once the request was decided: nothing to tell.
                let _ = tx.send((i, out));
            }));
        }
        drop(tx);
        let mut tally = Tally::new(self.urls.len(), self.quorum);
        while let Some((i, out)) = rx.recv().await {
            match out {
                Ok(code) => {
                    if tally.record(true) == Decision::Acked {
                        return Ok(code);
                    }
                }
                Err((code, msg)) => {
                    if tally.record(false) == Decision::Failed {
                        return Err((
                            format!("quorum-failed({code})"),
                            format!(
                                "{} of {} answered 2xx, {} needed; last error: {}: {msg}",
                                tally.ok,
                                self.urls.len(),
                                self.quorum,
                                self.urls[i]
                            ),
                        ));
                    }
                }
            }
        }
        Err((
            "quorum-failed".into(),
            "every send ended without a decision".into(),
        ))
    }

    /// Per-URL answers and the most sends in flight at once, for the result line.
    pub fn report(&self) -> Value {
        let per_url: Vec<Value> = self
            .urls
            .iter()
            .zip(&self.stats)
            .map(|(u, s)| {
                json!({
                    "url": u,
                    "ok": s.ok.load(Ordering::Relaxed),
                    "errors": s.errors.load(Ordering::Relaxed),
                    "first_error": *s.first_error.lock().unwrap_or_else(|e| e.into_inner()),
                })
            })
            .collect();
        json!({
            "per_url": per_url,
            "max_sends_in_flight": self.max_in_flight.load(Ordering::Relaxed),
        })
    }
}

/// What the answers so far decide about a request sent to `n` URLs needing `need` 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Pending,
    Acked,
    Failed,
}

/// Counts the answers of one replicated request.
#[derive(Debug)]
pub struct Tally {
    n: usize,
    need: usize,
    ok: usize,
    failed: usize,
}

impl Tally {
    pub fn new(n: usize, need: usize) -> Self {
        Self {
            n,
            need,
            ok: 0,
            failed: 0,
        }
    }

    /// Records one answer. Acked once `need` answered 2xx; failed once so many failed that
    /// `need` can no longer be reached.
    pub fn record(&mut self, ok: bool) -> Decision {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        if self.ok >= self.need {
            Decision::Acked
        } else if self.n - self.failed < self.need {
            Decision::Failed
        } else {
            Decision::Pending
        }
    }
}

/// One POST of a remote-write body; a non-2xx answer is an error carrying the status and the
/// start of the body.
pub async fn post_once(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Outcome {
    let resp = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header("User-Agent", "strata-ingest-bench/0.1")
        .headers(headers.clone())
        .body(body)
        .send()
        .await;
    match resp {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(_) if status.is_success() => Ok(status.as_u16().to_string()),
                Ok(body) => Err((
                    status.as_u16().to_string(),
                    format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(1_000)]).trim()
                    ),
                )),
                Err(e) => Err((
                    "body-error".to_string(),
                    format!("HTTP {status}, reading body failed: {e}"),
                )),
            }
        }
        Err(e) => Err((
            "transport-error".to_string(),
            format!("request failed: {e:#}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::watch;

    #[test]
    fn tally_acks_at_quorum_and_fails_when_out_of_reach() {
        let mut t = Tally::new(3, 2);
        assert_eq!(t.record(true), Decision::Pending);
        assert_eq!(t.record(false), Decision::Pending);
        assert_eq!(t.record(true), Decision::Acked);

        let mut t = Tally::new(3, 2);
        assert_eq!(t.record(false), Decision::Pending);
        assert_eq!(t.record(false), Decision::Failed);

        let mut t = Tally::new(3, 3);
        assert_eq!(t.record(true), Decision::Pending);
        assert_eq!(t.record(false), Decision::Failed);

        let mut t = Tally::new(1, 1);
        assert_eq!(t.record(true), Decision::Acked);
    }

    #[test]
    fn quorum_must_be_reachable() {
        let urls = vec!["http://a".to_string(), "http://b".to_string()];
        assert!(Endpoints::new(urls.clone(), Mode::Quorum, 3).is_err());
        assert!(Endpoints::new(urls.clone(), Mode::Quorum, 0).is_err());
        assert!(Endpoints::new(urls.clone(), Mode::Quorum, 2).is_ok());
        // The quorum means nothing when spreading.
        assert!(Endpoints::new(urls, Mode::Spread, 0).is_ok());
        assert!(Endpoints::new(vec![], Mode::Spread, 1).is_err());
    }

    #[test]
    fn spread_goes_round_robin() {
        let urls: Vec<String> = ["http://a", "http://b"].map(String::from).to_vec();
        let e = Endpoints::new(urls, Mode::Spread, 1).unwrap();
        let picked: Vec<usize> = (0..5).map(|_| e.next_index()).collect();
        assert_eq!(picked, [0, 1, 0, 1, 0]);
    }

    /// A loopback HTTP/1.1 server answering every request with `status`, once `gate` is true;
    /// returns its URL.
    async fn server(status: u16, gate: watch::Receiver<bool>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut gate = gate.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // Read the head, then as many body bytes as Content-Length says.
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(head_end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let len: usize = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() < head_end + 4 + len {
                            continue;
                        }
                        buf.drain(..head_end + 4 + len);
                        while !*gate.borrow() {
                            if gate.changed().await.is_err() {
                                return;
                            }
                        }
                        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                        if sock.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://{addr}/api/v1/write")
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn quorum_acks_without_waiting_for_the_held_replica() {
        let (open_tx, open) = watch::channel(true);
        let (held_tx, held) = watch::channel(false);
        let urls = vec![
            server(204, open.clone()).await,
            server(204, open.clone()).await,
            server(204, held).await,
        ];
        let e = Arc::new(Endpoints::new(urls, Mode::Quorum, 2).unwrap());
        let mut background = Vec::new();
        let out = e
            .send(
                &client(),
                &HeaderMap::new(),
                Bytes::from_static(b"x"),
                &mut background,
            )
            .await;
        assert_eq!(out, Ok("204".to_string()));
        // The third send is still held by its server: acknowledged without it.
        assert!(background.iter().any(|h| !h.is_finished()));
        held_tx.send(true).unwrap();
        for h in background {
            h.await.unwrap();
        }
        let r = e.report();
        let oks: Vec<u64> = r["per_url"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["ok"].as_u64().unwrap())
            .collect();
        assert_eq!(oks, [1, 1, 1]);
        assert_eq!(r["max_sends_in_flight"], 3);
        drop(open_tx);
    }

    #[tokio::test]
    async fn quorum_fails_when_two_of_three_fail() {
        let (_open_tx, open) = watch::channel(true);
        let urls = vec![
            server(204, open.clone()).await,
            server(500, open.clone()).await,
            server(503, open).await,
        ];
        let e = Arc::new(Endpoints::new(urls, Mode::Quorum, 2).unwrap());
        let mut background = Vec::new();
        let out = e
            .send(
                &client(),
                &HeaderMap::new(),
                Bytes::from_static(b"x"),
                &mut background,
            )
            .await;
        let (code, msg) = out.unwrap_err();
        assert!(code.starts_with("quorum-failed("), "{code}");
        assert!(msg.contains("2 needed"), "{msg}");
        for h in background {
            h.await.unwrap();
        }
        let errors: u64 = e.report()["per_url"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["errors"].as_u64().unwrap())
            .sum();
        assert_eq!(errors, 2);
    }

    #[tokio::test]
    async fn spread_alternates_between_urls() {
        let (_open_tx, open) = watch::channel(true);
        let urls = vec![server(204, open.clone()).await, server(204, open).await];
        let e = Arc::new(Endpoints::new(urls, Mode::Spread, 1).unwrap());
        let mut background = Vec::new();
        for _ in 0..4 {
            let out = e
                .send(
                    &client(),
                    &HeaderMap::new(),
                    Bytes::from_static(b"x"),
                    &mut background,
                )
                .await;
            assert_eq!(out, Ok("204".to_string()));
        }
        assert!(background.is_empty());
        let oks: Vec<u64> = e.report()["per_url"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["ok"].as_u64().unwrap())
            .collect();
        assert_eq!(oks, [2, 2]);
    }
}
