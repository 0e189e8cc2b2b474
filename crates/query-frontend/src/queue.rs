//! Slots for calls to the queriers, shared fairly between tenants: at most `slots` calls run
//! at once, and when one ends the next slot goes to the tenant after the last one served (round
//! robin over the tenants waiting), not to whoever queued first. A tenant with a thousand
//! pieces queued then delays another tenant's query by one piece per tenant ahead of it, not
//! by a thousand (Mimir's per-tenant queues, in one process).

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::oneshot;

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    waiting: BTreeMap<String, VecDeque<oneshot::Sender<Slot>>>,
    /// The tenant served last; the next slot goes to the first waiting tenant after it.
    last: Option<String>,
}

/// The fair queue.
#[derive(Debug)]
pub struct FairQueue {
    slots: usize,
    state: Mutex<State>,
}

/// A slot; dropping it hands the slot on. Slots travel to waiters inside the channel, so a
/// waiter that gives up after being handed one drops it, and it moves on: none is lost.
#[derive(Debug)]
pub struct Slot {
    queue: Arc<FairQueue>,
    armed: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.armed {
            self.queue.release();
        }
    }
}

impl FairQueue {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn slot(self: &Arc<Self>) -> Slot {
        Slot {
            queue: self.clone(),
            armed: true,
        }
    }

    /// Waits for a slot for `tenant`.
    pub async fn acquire(self: &Arc<Self>, tenant: &str) -> Slot {
        let rx = {
            let mut s = self.state.lock();
            if s.in_use < self.slots {
                s.in_use += 1;
                s.last = Some(tenant.to_owned());
                return self.slot();
            }
            let (tx, rx) = oneshot::channel();
            s.waiting
                .entry(tenant.to_owned())
                .or_default()
                .push_back(tx);
            rx
        };
        match rx.await {
            Ok(slot) => slot,
            // Senders are only dropped with a slot in them; without one, take a slot anew.
            Err(_) => {
                self.state.lock().in_use += 1;
                self.slot()
            }
        }
    }

    /// Hands a freed slot to the next waiter (round robin over tenants), or frees it.
    fn release(self: &Arc<Self>) {
        loop {
            let tx = {
                let mut s = self.state.lock();
                let after = s.last.clone().unwrap_or_default();
                let next = s
                    .waiting
                    .range::<String, _>((
                        std::ops::Bound::Excluded(after),
                        std::ops::Bound::Unbounded,
                    ))
                    .chain(s.waiting.iter())
                    .find(|(_, q)| !q.is_empty())
                    .map(|(t, _)| t.clone());
                let Some(tenant) = next else {
                    s.in_use -= 1;
                    return;
                };
                let q = s.waiting.get_mut(&tenant).expect("tenant just found");
                let tx = q.pop_front().expect("queue not empty");
                if q.is_empty() {
                    s.waiting.remove(&tenant);
                }
                s.last = Some(tenant);
                tx
            };
            // Sent outside the lock. A waiter that is gone gives the slot back: disarm it and
            // try the next waiter (in_use unchanged, the slot is still taken).
            match tx.send(self.slot()) {
                Ok(()) => return,
                Err(mut slot) => slot.armed = false,
            }
        }
    }

    /// Calls waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.state.lock().waiting.values().map(VecDeque::len).sum()
    }

    /// Slots taken.
    pub fn in_use(&self) -> usize {
        self.state.lock().in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_go_round_robin_between_the_tenants_waiting() {
        let q = FairQueue::new(1);
        let first = q.acquire("heavy").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Heavy queues five calls, then light queues one.
        for (i, t) in ["heavy", "heavy", "heavy", "heavy", "heavy", "light"]
            .into_iter()
            .enumerate()
        {
            let (q2, order) = (q.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = q2.acquire(t).await;
                order.lock().push(format!("{t}{i}"));
            }));
            tokio::task::yield_now().await;
            while q.waiting() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().clone();
        // The light tenant is served right after heavy's first waiting call, not after all.
        assert_eq!(order[0], "light5", "{order:?}");
        assert_eq!(order.len(), 6);
        assert_eq!(q.in_use(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_slot() {
        let q = FairQueue::new(1);
        let first = q.acquire("a").await;
        // A waiter handed the slot but dropped before it runs again.
        let (q2, q3) = (q.clone(), q.clone());
        let gone = tokio::spawn(async move {
            let _s = q2.acquire("b").await;
            std::future::pending::<()>().await;
        });
        while q.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        drop(first);
        // The slot is free again: a new caller gets it at once.
        let s = tokio::time::timeout(std::time::Duration::from_secs(5), q3.acquire("c"))
            .await
            .expect("the slot leaked");
        assert_eq!(q.in_use(), 1);
        drop(s);
        assert_eq!(q.in_use(), 0);
    }
}
