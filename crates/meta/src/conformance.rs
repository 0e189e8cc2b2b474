//! The contract of [`KvStore`], as checks any backend must pass: call [`run_all`] with a
//! function that hands out handles of the store under test (the same store each time, possibly
//! through different nodes or clients). Every check works under its own fresh key prefix and
//! compares versions only relatively, so the store need not be empty and checks can share it.
//!
//! The checks panic on a violation, like assertions in a test.

use crate::kv::{cas_update, KvEntry, KvStore, WatchEvent, WatchStream};
use crate::KvError;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a watch may take to deliver an expected event (generous: CI machines are noisy).
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// Hands out handles of the store under test.
pub type MakeStore<'a> = &'a (dyn Fn() -> Arc<dyn KvStore> + Send + Sync);

/// A key prefix no other check (or earlier run) uses.
pub fn fresh_prefix(name: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "conformance/{name}/{}-{nanos}-{}/",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs every check.
pub async fn run_all(make: impl Fn() -> Arc<dyn KvStore> + Send + Sync) {
    let make: MakeStore<'_> = &make;
    cas_conflicts(&*make()).await;
    concurrent_cas_has_one_winner(make).await;
    versions_strictly_increase(&*make()).await;
    list_by_prefix_is_sorted(&*make()).await;
    delete_with_and_without_expected_version(&*make()).await;
    watch_starts_with_a_snapshot(&*make()).await;
    watch_reports_deletes(&*make()).await;
    watch_orders_events_across_writers(make).await;
    watch_started_mid_stream_has_no_gap_or_duplicate(make).await;
    watch_reports_progress_while_idle(&*make()).await;
    cas_update_under_contention(make).await;
}

fn val(s: impl Into<String>) -> Bytes {
    Bytes::from(s.into())
}

fn is_conflict(r: &Result<u64, KvError>, want_actual: u64) -> bool {
    matches!(r, Err(KvError::Conflict { actual, .. }) if *actual == want_actual)
}

/// Create-if-absent, stale and wrong versions, and a successful swap.
pub async fn cas_conflicts(kv: &dyn KvStore) {
    let p = fresh_prefix("cas");
    let k = format!("{p}k");
    assert_eq!(kv.get(&k).await.unwrap(), None, "fresh key exists");
    let v1 = kv.cas(&k, 0, val("a")).await.unwrap();
    assert!(v1 > 0, "version of a created key is 0");
    let r = kv.cas(&k, 0, val("b")).await;
    assert!(is_conflict(&r, v1), "create over an existing key: {r:?}");
    let r = kv.cas(&k, v1 + 1000, val("b")).await;
    assert!(is_conflict(&r, v1), "cas with a wrong version: {r:?}");
    let v2 = kv.cas(&k, v1, val("b")).await.unwrap();
    assert!(v2 > v1, "versions must grow: {v1} then {v2}");
    let r = kv.cas(&k, v1, val("c")).await;
    assert!(is_conflict(&r, v2), "cas with a stale version: {r:?}");
    let got = kv.get(&k).await.unwrap().expect("written key");
    assert_eq!((got.value.as_ref(), got.version), (&b"b"[..], v2));
    assert!(matches!(
        kv.cas("", 0, val("x")).await,
        Err(KvError::Invalid(_))
    ));
    let too_big = Bytes::from(vec![b'x'; crate::kv::MAX_VALUE_BYTES + 1]);
    assert!(matches!(
        kv.cas(&format!("{p}big"), 0, too_big).await,
        Err(KvError::Invalid(_))
    ));
    let long_key = format!("{p}{}", "k".repeat(crate::kv::MAX_KEY_BYTES));
    assert!(matches!(kv.get(&long_key).await, Err(KvError::Invalid(_))));
}

/// N writers race to create the same key, then to update it: exactly one wins each round.
pub async fn concurrent_cas_has_one_winner(make: MakeStore<'_>) {
    const N: usize = 8;
    let p = fresh_prefix("race");
    let k = format!("{p}k");
    let stores: Vec<_> = (0..N).map(|_| make()).collect();
    let mut expected = 0;
    for round in 0..2 {
        let results = futures::future::join_all(
            stores
                .iter()
                .enumerate()
                .map(|(i, s)| s.cas(&k, expected, val(format!("{round}-{i}")))),
        )
        .await;
        let wins: Vec<(usize, u64)> = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().ok().map(|v| (i, *v)))
            .collect();
        assert_eq!(
            wins.len(),
            1,
            "round {round}: winners {wins:?} of {results:?}"
        );
        let (winner, version) = wins[0];
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(is_conflict(r, version), "round {round}: loser got {r:?}");
        }
        let got = make().get(&k).await.unwrap().expect("key exists");
        assert_eq!(got.value, val(format!("{round}-{winner}")));
        assert_eq!(got.version, version);
        expected = version;
    }
}

/// Every write gets a version above every earlier write's, whatever the key.
pub async fn versions_strictly_increase(kv: &dyn KvStore) {
    let p = fresh_prefix("versions");
    let mut last = 0;
    let mut current = BTreeMap::new();
    for i in 0..20 {
        let k = format!("{p}{}", i % 3);
        let expected = current.get(&k).copied().unwrap_or(0);
        let v = kv.cas(&k, expected, val(i.to_string())).await.unwrap();
        assert!(v > last, "write {i}: version {v} after {last}");
        last = v;
        current.insert(k, v);
    }
    assert!(kv.delete(&format!("{p}0"), None).await.unwrap());
    let v = kv.cas(&format!("{p}0"), 0, val("again")).await.unwrap();
    assert!(
        v > last,
        "version after a delete must still grow: {v} after {last}"
    );
}

/// `list` returns exactly the keys under the prefix, sorted, with their current values.
pub async fn list_by_prefix_is_sorted(kv: &dyn KvStore) {
    let p = fresh_prefix("list");
    for k in ["b", "a", "c/y", "c/x", "ab"] {
        kv.cas(&format!("{p}d/{k}"), 0, val(k)).await.unwrap();
    }
    // Siblings of the prefix that must not show up.
    kv.cas(&format!("{p}d"), 0, val("no")).await.unwrap();
    kv.cas(&format!("{p}dx/a"), 0, val("no")).await.unwrap();
    let got = kv.list(&format!("{p}d/")).await.unwrap();
    let keys: Vec<&str> = got.iter().map(|e| e.key.as_str()).collect();
    let want: Vec<String> = ["a", "ab", "b", "c/x", "c/y"]
        .iter()
        .map(|k| format!("{p}d/{k}"))
        .collect();
    assert_eq!(keys, want.iter().map(String::as_str).collect::<Vec<_>>());
    for e in &got {
        let one = kv.get(&e.key).await.unwrap().expect("listed key exists");
        assert_eq!(&one, e, "list and get disagree");
    }
    assert!(kv.list(&format!("{p}none/")).await.unwrap().is_empty());
}

/// Conditional and unconditional deletes, of present and absent keys.
pub async fn delete_with_and_without_expected_version(kv: &dyn KvStore) {
    let p = fresh_prefix("delete");
    let k = format!("{p}k");
    assert!(!kv.delete(&k, None).await.unwrap(), "absent key deleted");
    assert!(
        !kv.delete(&k, Some(0)).await.unwrap(),
        "absent key, expected 0"
    );
    assert!(matches!(
        kv.delete(&k, Some(5)).await,
        Err(KvError::Conflict { actual: 0, .. })
    ));
    let v = kv.cas(&k, 0, val("a")).await.unwrap();
    assert!(matches!(
        kv.delete(&k, Some(v + 1)).await,
        Err(KvError::Conflict { actual, .. }) if actual == v
    ));
    assert!(
        kv.get(&k).await.unwrap().is_some(),
        "failed delete removed the key"
    );
    assert!(kv.delete(&k, Some(v)).await.unwrap());
    assert_eq!(kv.get(&k).await.unwrap(), None);
    let v2 = kv.cas(&k, 0, val("b")).await.unwrap();
    assert!(v2 > v);
    assert!(kv.delete(&k, None).await.unwrap());
    assert_eq!(kv.get(&k).await.unwrap(), None);
}

async fn next_event(w: &mut WatchStream, what: &str) -> WatchEvent {
    match tokio::time::timeout(EVENT_WAIT, w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(Some(Err(e))) => panic!("{what}: watch broke: {e}"),
        Ok(None) => panic!("{what}: watch ended"),
        Err(_) => panic!("{what}: no watch event within {EVENT_WAIT:?}"),
    }
}

/// The next event that is not progress.
async fn next_change(w: &mut WatchStream, what: &str) -> WatchEvent {
    loop {
        let ev = next_event(w, what).await;
        if !matches!(ev, WatchEvent::Progress { .. }) {
            return ev;
        }
    }
}

/// The first event is a snapshot of exactly the keys under the prefix, sorted.
pub async fn watch_starts_with_a_snapshot(kv: &dyn KvStore) {
    let p = fresh_prefix("watch-snapshot");
    let vb = kv.cas(&format!("{p}w/b"), 0, val("b")).await.unwrap();
    let va = kv.cas(&format!("{p}w/a"), 0, val("a")).await.unwrap();
    kv.cas(&format!("{p}x"), 0, val("x")).await.unwrap();
    let mut w = kv.watch(&format!("{p}w/")).await.unwrap();
    match next_event(&mut w, "snapshot").await {
        WatchEvent::Snapshot { revision, entries } => {
            let got: Vec<(String, u64)> = entries.into_iter().map(|e| (e.key, e.version)).collect();
            assert_eq!(got, vec![(format!("{p}w/a"), va), (format!("{p}w/b"), vb)]);
            assert!(
                revision >= va.max(vb),
                "snapshot revision {revision} before its entries"
            );
        }
        e => panic!("first watch event is not a snapshot: {e:?}"),
    }
}

/// A created then deleted key shows as a put then a delete, in that order.
pub async fn watch_reports_deletes(kv: &dyn KvStore) {
    let p = fresh_prefix("watch-delete");
    let mut w = kv.watch(&p).await.unwrap();
    assert!(matches!(
        next_event(&mut w, "snapshot").await,
        WatchEvent::Snapshot { .. }
    ));
    let k = format!("{p}k");
    let v = kv.cas(&k, 0, val("a")).await.unwrap();
    assert!(kv.delete(&k, Some(v)).await.unwrap());
    match next_change(&mut w, "put").await {
        WatchEvent::Put(e) => assert_eq!((e.key.as_str(), e.version), (k.as_str(), v)),
        e => panic!("expected the put, got {e:?}"),
    }
    match next_change(&mut w, "delete").await {
        WatchEvent::Delete { key, revision } => {
            assert_eq!(key, k);
            assert!(
                revision > v,
                "delete at {revision} not after the put at {v}"
            );
        }
        e => panic!("expected the delete, got {e:?}"),
    }
}

/// Replays a watch into a map until its revision reaches `until`, checking the order rules:
/// changes in strictly increasing revisions, progress never behind them and never followed by
/// an older change. Returns the view and the revision reached.
async fn follow(
    w: &mut WatchStream,
    mut view: BTreeMap<String, KvEntry>,
    mut seen: u64,
    until: u64,
    what: &str,
) -> (BTreeMap<String, KvEntry>, u64) {
    while seen < until {
        match next_event(w, what).await {
            WatchEvent::Snapshot { revision, entries } => {
                // A resync after lagging: it replaces the view.
                assert!(
                    revision >= seen,
                    "{what}: resync went back from {seen} to {revision}"
                );
                view = entries.into_iter().map(|e| (e.key.clone(), e)).collect();
                seen = revision;
            }
            WatchEvent::Put(e) => {
                assert!(
                    e.version > seen,
                    "{what}: put at {} after {seen}",
                    e.version
                );
                seen = e.version;
                view.insert(e.key.clone(), e);
            }
            WatchEvent::Delete { key, revision } => {
                assert!(revision > seen, "{what}: delete at {revision} after {seen}");
                assert!(
                    view.remove(&key).is_some(),
                    "{what}: delete of unknown {key}"
                );
                seen = revision;
            }
            WatchEvent::Progress { revision } => {
                assert!(
                    revision >= seen,
                    "{what}: progress at {revision} after {seen}"
                );
                seen = revision;
            }
        }
    }
    (view, seen)
}

fn snapshot_view(ev: WatchEvent, what: &str) -> (BTreeMap<String, KvEntry>, u64) {
    match ev {
        WatchEvent::Snapshot { revision, entries } => (
            entries.into_iter().map(|e| (e.key.clone(), e)).collect(),
            revision,
        ),
        e => panic!("{what}: first event is not a snapshot: {e:?}"),
    }
}

/// Several concurrent writers: the watcher sees every acknowledged write once, in revision
/// order.
pub async fn watch_orders_events_across_writers(make: MakeStore<'_>) {
    const WRITERS: usize = 4;
    const WRITES: usize = 10;
    let p = fresh_prefix("watch-order");
    let watcher = make();
    let mut w = watcher.watch(&p).await.unwrap();
    let (view, seen) = snapshot_view(next_event(&mut w, "order").await, "order");
    assert!(view.is_empty());
    let writers: Vec<_> = (0..WRITERS).map(|_| make()).collect();
    let acked = futures::future::join_all(writers.iter().enumerate().map(|(i, kv)| {
        let p = &p;
        async move {
            let mut out = Vec::new();
            let mut version = 0;
            let k = format!("{p}w{i}");
            for j in 0..WRITES {
                version = kv.cas(&k, version, val(format!("{j}"))).await.unwrap();
                out.push((k.clone(), version));
            }
            out
        }
    }))
    .await;
    let last = acked.iter().flatten().map(|(_, v)| *v).max().unwrap();
    let mut puts = Vec::new();
    let mut seen = seen;
    // The watcher reads only after the writes, so a loaded machine can make it lag: the watch
    // then resyncs with a snapshot, which replaces the history up to its revision.
    let mut resynced_at = 0;
    while seen < last {
        match next_event(&mut w, "order").await {
            WatchEvent::Put(e) => {
                assert!(e.version > seen, "order: put at {} after {seen}", e.version);
                seen = e.version;
                puts.push((e.key, e.version));
            }
            WatchEvent::Progress { revision } => {
                assert!(
                    revision >= seen,
                    "order: progress at {revision} after {seen}"
                );
                seen = revision;
            }
            WatchEvent::Snapshot { revision, entries } => {
                assert!(
                    revision >= seen,
                    "order: resync went back from {seen} to {revision}"
                );
                let mut state = std::collections::BTreeMap::new();
                for (k, v) in acked.iter().flatten().filter(|(_, v)| *v <= revision) {
                    let e = state.entry(k.clone()).or_insert(*v);
                    *e = (*e).max(*v);
                }
                let got: std::collections::BTreeMap<String, u64> =
                    entries.iter().map(|e| (e.key.clone(), e.version)).collect();
                assert_eq!(got, state, "order: resync snapshot at {revision}");
                puts.clear();
                seen = revision;
                resynced_at = revision;
            }
            e => panic!("order: unexpected {e:?}"),
        }
    }
    let mut want: Vec<(String, u64)> = acked
        .into_iter()
        .flatten()
        .filter(|(_, v)| *v > resynced_at)
        .collect();
    want.sort_by_key(|(_, v)| *v);
    assert_eq!(
        puts, want,
        "the watch must report each acknowledged write once, in order"
    );
}

/// A watcher that starts while writes are going on: its snapshot plus its events equal the
/// store's content.
pub async fn watch_started_mid_stream_has_no_gap_or_duplicate(make: MakeStore<'_>) {
    let p = fresh_prefix("watch-mid");
    let kv = make();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut w = None;
    for i in 0..30u64 {
        if i == 12 {
            w = Some(make().watch(&p).await.unwrap());
        }
        let k = format!("{p}k{}", i % 7);
        if i % 9 == 8 {
            if let Some(v) = versions.remove(&k) {
                assert!(kv.delete(&k, Some(v)).await.unwrap());
                continue;
            }
        }
        let expected = versions.get(&k).copied().unwrap_or(0);
        let v = kv.cas(&k, expected, val(i.to_string())).await.unwrap();
        versions.insert(k, v);
    }
    // End on a write, so the watch's revision reaches `last` through an event.
    let k = format!("{p}end");
    let last = kv.cas(&k, 0, val("end")).await.unwrap();
    let mut w = w.expect("watch started");
    let (view, seen) = snapshot_view(next_event(&mut w, "mid").await, "mid");
    let (view, _) = follow(&mut w, view, seen, last, "mid").await;
    let listed = kv.list(&p).await.unwrap();
    assert_eq!(
        view.into_values().collect::<Vec<_>>(),
        listed,
        "snapshot plus events differ from list"
    );
}

/// An idle watch reports progress, never behind its snapshot.
pub async fn watch_reports_progress_while_idle(kv: &dyn KvStore) {
    let p = fresh_prefix("watch-progress");
    kv.cas(&format!("{p}k"), 0, val("a")).await.unwrap();
    let mut w = kv.watch(&p).await.unwrap();
    let (_, seen) = snapshot_view(next_event(&mut w, "progress").await, "progress");
    // Nothing changes under this prefix, so the next event must be progress.
    match next_event(&mut w, "progress").await {
        WatchEvent::Progress { revision } => {
            assert!(
                revision >= seen,
                "progress at {revision} behind snapshot at {seen}"
            );
        }
        e => panic!("idle watch reported {e:?}"),
    }
}

/// N tasks increment one counter with [`cas_update`]: none of the increments is lost.
pub async fn cas_update_under_contention(make: MakeStore<'_>) {
    const N: u64 = 8;
    let p = fresh_prefix("counter");
    let k = format!("{p}n");
    let stores: Vec<_> = (0..N).map(|_| make()).collect();
    let results = futures::future::join_all(stores.iter().map(|kv| {
        cas_update(kv.as_ref(), &k, |cur| {
            let n: u64 = cur
                .map(|b| std::str::from_utf8(b).unwrap().parse().unwrap())
                .unwrap_or(0);
            Some(val((n + 1).to_string()))
        })
    }))
    .await;
    for r in &results {
        assert!(r.is_ok(), "cas_update failed: {r:?}");
    }
    let got = make().get(&k).await.unwrap().expect("counter exists");
    assert_eq!(got.value, val(N.to_string()));
}
