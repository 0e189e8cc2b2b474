//! The watch stream shared by the local backends: a snapshot, then the changes of a broadcast
//! feed filtered by prefix, a fresh snapshot when the watcher lagged or the state was replaced,
//! and progress while idle and allowed.

use crate::kv::{KvEntry, WatchEvent, WatchStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::watch;

/// What applying a change did, for watchers.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Put(KvEntry),
    Delete {
        key: String,
        revision: u64,
    },
    /// The whole state was replaced (a snapshot from the leader was installed).
    Reset,
}

/// Where a watch gets its data.
pub(crate) trait WatchSource: Send + Sync + 'static {
    /// A receiver of changes, and the revision and entries under `prefix` as of subscribing.
    fn subscribe(&self, prefix: &str) -> (broadcast::Receiver<Change>, u64, Vec<KvEntry>);
    /// The revision and entries under `prefix` now.
    fn snapshot(&self, prefix: &str) -> (u64, Vec<KvEntry>);
    /// Whether this replica is in contact with a quorum, so that progress may be reported.
    fn in_contact(&self) -> bool;
}

struct State {
    source: Arc<dyn WatchSource>,
    prefix: String,
    rx: broadcast::Receiver<Change>,
    /// Highest revision already accounted for.
    seen: u64,
    pending: Option<WatchEvent>,
    tick: tokio::time::Interval,
    closed: watch::Receiver<bool>,
}

/// A watch over `source`; it ends when `closed` turns true or the change feed closes.
pub(crate) fn stream(
    source: Arc<dyn WatchSource>,
    prefix: &str,
    progress_interval: Duration,
    closed: watch::Receiver<bool>,
) -> WatchStream {
    let (rx, revision, entries) = source.subscribe(prefix);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + progress_interval,
        progress_interval,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        source,
        prefix: prefix.to_owned(),
        rx,
        seen: revision,
        pending: Some(WatchEvent::Snapshot { revision, entries }),
        tick,
        closed,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        let ev = s.next().await?;
        Some((Ok(ev), s))
    }))
}

impl State {
    fn resync(&mut self) -> WatchEvent {
        let (revision, entries) = self.source.snapshot(&self.prefix);
        self.seen = self.seen.max(revision);
        WatchEvent::Snapshot { revision, entries }
    }

    /// The event to report for a change, if any.
    fn on_change(&mut self, c: Change) -> Option<WatchEvent> {
        let (key, rev, ev) = match c {
            Change::Reset => return Some(self.resync()),
            Change::Put(e) => (e.key.clone(), e.version, WatchEvent::Put(e)),
            Change::Delete { key, revision } => {
                (key.clone(), revision, WatchEvent::Delete { key, revision })
            }
        };
        // Already in the snapshot this watcher was given.
        if rev <= self.seen {
            return None;
        }
        self.seen = rev;
        key.starts_with(&self.prefix).then_some(ev)
    }

    async fn next(&mut self) -> Option<WatchEvent> {
        if let Some(ev) = self.pending.take() {
            return Some(ev);
        }
        if *self.closed.borrow() {
            return None;
        }
        loop {
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(c) => {
                        if let Some(ev) = self.on_change(c) {
                            return Some(ev);
                        }
                    }
                    Err(RecvError::Lagged(_)) => return Some(self.resync()),
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    // Progress promises that nothing before its revision is still to come:
                    // drain what the feed already holds first.
                    loop {
                        match self.rx.try_recv() {
                            Ok(c) => {
                                if let Some(ev) = self.on_change(c) {
                                    return Some(ev);
                                }
                            }
                            Err(TryRecvError::Lagged(_)) => return Some(self.resync()),
                            Err(TryRecvError::Closed) => return None,
                            Err(TryRecvError::Empty) => break,
                        }
                    }
                    if self.source.in_contact() {
                        return Some(WatchEvent::Progress { revision: self.seen });
                    }
                }
                r = self.closed.changed() => {
                    if r.is_err() || *self.closed.borrow() {
                        return None;
                    }
                }
            }
        }
    }
}
