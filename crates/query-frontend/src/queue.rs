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
    waiting: BTreeMap<String, VecDeque<oneshot::Sender<()>>>,
    /// The tenant served last; the next slot goes to the first waiting tenant after it.
    last: Option<String>,
}

/// The fair queue.
#[derive(Debug)]
pub struct FairQueue {
    slots: usize,
    state: Mutex<State>,
}

/// A slot; dropping it hands the slot on.
#[derive(Debug)]
pub struct Slot {
    queue: Arc<FairQueue>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queue.release();
    }
}

impl FairQueue {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.max(1),
            state: Mutex::new(State::default()),
        })
    }

    /// Waits for a slot for `tenant`.
    pub async fn acquire(self: &Arc<Self>, tenant: &str) -> Slot {
        let rx = {
            let mut s = self.state.lock();
            if s.in_use < self.slots {
                s.in_use += 1;
                s.last = Some(tenant.to_owned());
                return Slot {
                    queue: self.clone(),
                };
            }
            let (tx, rx) = oneshot::channel();
            s.waiting
                .entry(tenant.to_owned())
                .or_default()
                .push_back(tx);
            rx
        };
        // The sender is only dropped after handing over the slot, so an error cannot happen
        // while the queue lives; if it did, the slot count was not raised for us.
        if rx.await.is_err() {
            let mut s = self.state.lock();
            s.in_use += 1;
        }
        Slot {
            queue: self.clone(),
        }
    }

    fn release(&self) {
        let mut s = self.state.lock();
        loop {
            // The first tenant with waiters after the last one served, wrapping around.
            let next = {
                let after = s.last.clone().unwrap_or_default();
                s.waiting
                    .range::<String, _>((
                        std::ops::Bound::Excluded(after),
                        std::ops::Bound::Unbounded,
                    ))
                    .chain(s.waiting.iter())
                    .find(|(_, q)| !q.is_empty())
                    .map(|(t, _)| t.clone())
            };
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
            // The slot passes to the waiter as it is (in_use unchanged); a waiter that gave up
            // (its query was dropped) passes it on to the next.
            if tx.send(()).is_ok() {
                return;
            }
        }
    }

    /// Calls waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.state.lock().waiting.values().map(VecDeque::len).sum()
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
    }
}
