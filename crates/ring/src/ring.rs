//! An immutable snapshot of a ring: instances sorted by id, every token sorted with its owner,
//! replica sets by a clockwise walk with dskit's rules (docs/ring.md).

use crate::desc::{InstanceDesc, InstanceState};
use crate::error::{RingError, UncoveredRange};
use std::sync::OnceLock;
use std::time::Duration;

/// What a replica set is for: decides which states count as healthy and which are skipped over
/// (the set is extended past them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Only ACTIVE instances take writes; the set is extended past every other state.
    Write,
    /// Every state may be read (LEAVING still holds data, PENDING/JOINING answer with what
    /// they have); the set is extended past non-ACTIVE instances exactly like [`Self::Write`],
    /// so that a range's read set always contains its write set and the per-range read quorum
    /// overlaps every write quorum (dskit does not extend reads past LEAVING; with two LEAVING
    /// instances in one range that would let a read quorum miss every copy of new writes).
    Read,
    /// Status pages and metrics: every state healthy, no extension.
    Reporting,
}

impl Operation {
    /// Whether an instance in `state` may serve this operation (heartbeat aside).
    pub fn is_state_healthy(self, state: InstanceState) -> bool {
        match self {
            Operation::Write => state == InstanceState::Active,
            Operation::Read | Operation::Reporting => true,
        }
    }

    /// Whether meeting an instance in `state` grows the replica set by one.
    pub fn extends_on(self, state: InstanceState) -> bool {
        match self {
            Operation::Write | Operation::Read => state != InstanceState::Active,
            Operation::Reporting => false,
        }
    }
}

/// How a ring snapshot interprets its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingOptions {
    pub replication_factor: usize,
    /// One replica per zone (at most `max(1, RF / zones)` per zone).
    pub zone_awareness_enabled: bool,
    /// An instance whose last heartbeat is older than this is unhealthy.
    pub heartbeat_timeout: Duration,
}

impl Default for RingOptions {
    fn default() -> Self {
        Self {
            replication_factor: 3,
            zone_awareness_enabled: false,
            heartbeat_timeout: Duration::from_secs(60),
        }
    }
}

/// Replica-set members held inline: a set rarely exceeds RF plus one or two extensions, so the
/// distributor's per-series lookup does not allocate.
const INLINE: usize = 8;

#[derive(Debug, Clone, Default)]
struct Members {
    inline: [u32; INLINE],
    len: usize,
    /// Used instead of `inline` once more than `INLINE` members were pushed.
    spilled: bool,
    spill: Vec<u32>,
}

impl Members {
    fn as_slice(&self) -> &[u32] {
        if self.spilled {
            &self.spill
        } else {
            &self.inline[..self.len]
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn clear(&mut self) {
        self.len = 0;
        self.spilled = false;
        self.spill.clear();
    }

    fn push(&mut self, v: u32) {
        if !self.spilled && self.len < INLINE {
            self.inline[self.len] = v;
            self.len += 1;
        } else {
            if !self.spilled {
                self.spill.extend_from_slice(&self.inline[..self.len]);
                self.spilled = true;
            }
            self.spill.push(v);
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        if self.spilled {
            self.spill.retain(|&v| keep(v));
        } else {
            let mut w = 0;
            for r in 0..self.len {
                let v = self.inline[r];
                if keep(v) {
                    self.inline[w] = v;
                    w += 1;
                }
            }
            self.len = w;
        }
    }
}

/// The instances that hold one key, healthy for the operation, in clockwise order, with the
/// quorum a request to them needs.
#[derive(Debug, Clone, Default)]
pub struct ReplicaSet {
    members: Members,
    /// Successful answers needed (computed on the extended set before unhealthy instances
    /// were dropped).
    pub min_success: usize,
    /// Failures among [`Self::indices`] the request survives.
    pub max_failures: usize,
}

impl ReplicaSet {
    /// An empty set, to be filled by [`Ring::replication_set_into`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Members as indices into [`Ring::all`].
    pub fn indices(&self) -> &[u32] {
        self.members.as_slice()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members' records in `ring` (the ring the set was computed from).
    pub fn instances<'s, 'r>(
        &'s self,
        ring: &'r Ring,
    ) -> impl Iterator<Item = &'r InstanceDesc> + use<'s, 'r> {
        self.indices().iter().map(move |&i| ring.instance(i))
    }
}

/// A token range `(start, end]` and its read replica set (members before health filtering).
#[derive(Debug)]
struct ReadRange {
    start: u32,
    end: u32,
    members: Vec<u32>,
}

/// An immutable ring snapshot. Cheap to share (`Arc<Ring>`); every lookup is read-only.
#[derive(Debug)]
pub struct Ring {
    /// Sorted by id; indices into this are the "instance indices" used everywhere.
    instances: Vec<InstanceDesc>,
    /// Every token, ascending; equal tokens ordered by owner id.
    tokens: Vec<u32>,
    /// `owner[j]` holds `tokens[j]`.
    owner: Vec<u32>,
    zone_of: Vec<u32>,
    zone_names: Vec<String>,
    /// Instances holding tokens, per zone.
    zone_sizes: Vec<u32>,
    zones_with_tokens: usize,
    with_tokens: usize,
    /// Primary ownership: the sum of the ranges `(previous token, token]` ending at each of
    /// the instance's tokens.
    owned: Vec<u64>,
    rf: usize,
    zone_aware: bool,
    timeout_ms: i64,
    revision: Option<u64>,
    read_ranges: OnceLock<Vec<ReadRange>>,
}

const RING_SIZE: f64 = 4_294_967_296.0;

impl Ring {
    /// A ring of `instances` (a repeated id keeps its first record).
    pub fn new(instances: impl IntoIterator<Item = InstanceDesc>, opts: &RingOptions) -> Self {
        let mut instances: Vec<InstanceDesc> = instances.into_iter().collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        instances.dedup_by(|b, a| a.id == b.id);

        let mut zone_names: Vec<String> = instances.iter().map(|d| d.zone.clone()).collect();
        zone_names.sort_unstable();
        zone_names.dedup();
        let zone_of: Vec<u32> = instances
            .iter()
            .map(|d| zone_names.binary_search(&d.zone).unwrap_or(0) as u32)
            .collect();
        let mut zone_sizes = vec![0u32; zone_names.len()];
        let mut with_tokens = 0;
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (i, d) in instances.iter().enumerate() {
            if !d.tokens.is_empty() {
                with_tokens += 1;
                zone_sizes[zone_of[i] as usize] += 1;
            }
            pairs.extend(d.tokens.iter().map(|&t| (t, i as u32)));
        }
        // Instances are sorted by id, so ordering equal tokens by index orders them by id: a
        // collision resolves the same way in every process.
        pairs.sort_unstable();
        let tokens: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let owner: Vec<u32> = pairs.iter().map(|p| p.1).collect();

        let mut owned = vec![0u64; instances.len()];
        let n = tokens.len();
        for j in 0..n {
            let prev = tokens[(j + n - 1) % n];
            let mut size = u64::from(tokens[j].wrapping_sub(prev));
            if j == 0 && size == 0 {
                // One distinct token: its owner holds the whole ring.
                size = 1 << 32;
            }
            owned[owner[j] as usize] += size;
        }

        Self {
            instances,
            tokens,
            owner,
            zone_of,
            zone_names,
            zones_with_tokens: zone_sizes.iter().filter(|&&s| s > 0).count(),
            zone_sizes,
            with_tokens,
            owned,
            rf: opts.replication_factor,
            zone_aware: opts.zone_awareness_enabled,
            timeout_ms: i64::try_from(opts.heartbeat_timeout.as_millis()).unwrap_or(i64::MAX),
            revision: None,
            read_ranges: OnceLock::new(),
        }
    }

    /// A ring with no instances.
    pub fn empty(opts: &RingOptions) -> Self {
        Self::new([], opts)
    }

    /// Records the KV revision this snapshot reflects.
    pub fn with_revision(mut self, revision: u64) -> Self {
        self.revision = Some(revision);
        self
    }

    /// The KV revision this snapshot reflects; `None` before the first snapshot arrived.
    pub fn revision(&self) -> Option<u64> {
        self.revision
    }

    pub fn replication_factor(&self) -> usize {
        self.rf
    }

    pub fn zone_awareness_enabled(&self) -> bool {
        self.zone_aware
    }

    /// Every instance, sorted by id.
    pub fn all(&self) -> &[InstanceDesc] {
        &self.instances
    }

    /// The instance at `index` (from a [`ReplicaSet`]).
    pub fn instance(&self, index: u32) -> &InstanceDesc {
        &self.instances[index as usize]
    }

    pub fn get(&self, id: &str) -> Option<&InstanceDesc> {
        self.index_of(id).map(|i| &self.instances[i])
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.instances
            .binary_search_by(|d| d.id.as_str().cmp(id))
            .ok()
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Number of tokens in the ring.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Every token held by an instance other than `id`: what a joining instance must avoid.
    pub fn tokens_of_others<'a>(&'a self, id: &'a str) -> impl Iterator<Item = u32> + 'a {
        self.tokens
            .iter()
            .zip(&self.owner)
            .filter(move |(_, &o)| self.instances[o as usize].id != id)
            .map(|(&t, _)| t)
    }

    /// The share of the token space `id` owns as primary, 0.0..=1.0.
    pub fn ownership(&self, id: &str) -> f64 {
        self.index_of(id)
            .map_or(0.0, |i| self.owned[i] as f64 / RING_SIZE)
    }

    /// Whether `d` may serve `op` at `now_ms` (use [`crate::RingWatcher::now_ms`], not the wall
    /// clock, so a stale KV does not turn every instance unhealthy).
    pub fn is_healthy(&self, d: &InstanceDesc, op: Operation, now_ms: i64) -> bool {
        op.is_state_healthy(d.state) && now_ms.saturating_sub(d.heartbeat_ms) <= self.timeout_ms
    }

    /// Instances whose state suits `op`, heartbeat aside.
    pub fn instances(&self, op: Operation) -> impl Iterator<Item = &InstanceDesc> {
        self.instances
            .iter()
            .filter(move |d| op.is_state_healthy(d.state))
    }

    /// Instances healthy for `op` at `now_ms`: the targets of a fan-out.
    pub fn healthy_instances(
        &self,
        op: Operation,
        now_ms: i64,
    ) -> impl Iterator<Item = &InstanceDesc> {
        self.instances
            .iter()
            .filter(move |d| self.is_healthy(d, op, now_ms))
    }

    /// The ACTIVE instances among the first `rf` clockwise from `key_token` (extended past
    /// non-ACTIVE ones, one per zone when zone-aware), in ring order: the owners of a tenant or
    /// group. Heartbeats are not judged; an owner finds its position with `iter().position`.
    pub fn owners(&self, key_token: u32, rf: usize) -> Vec<&InstanceDesc> {
        let mut m = Members::default();
        self.walk(key_token, rf, Operation::Write, &mut m);
        m.as_slice()
            .iter()
            .map(|&i| self.instance(i))
            .filter(|d| d.state == InstanceState::Active)
            .collect()
    }

    /// The owners of a block in a store-gateway ring: [`Self::owners`] of the block id's
    /// [`crate::hash::key_token`], replication factor included. Store-gateways hold the blocks
    /// they own and queriers ask a block's owners, both by this one function.
    pub fn block_owners(&self, block_id: &str) -> Vec<&InstanceDesc> {
        self.owners(crate::hash::key_token(block_id.as_bytes()), self.rf)
    }

    /// The first instance clockwise from `key_token` that is healthy for `op` at `now_ms`:
    /// the single owner of work that needs exactly one healthy instance (a ruler's rule
    /// group). Unlike [`Self::owners`], an instance that stopped heartbeating is skipped, so
    /// its work moves to the next instance as soon as the heartbeat timeout passes.
    pub fn first_healthy(
        &self,
        key_token: u32,
        op: Operation,
        now_ms: i64,
    ) -> Option<&InstanceDesc> {
        let n = self.tokens.len();
        let start = self.tokens.partition_point(|&t| t < key_token);
        (0..n)
            .map(|k| self.instance(self.owner[(start + k) % n]))
            .find(|d| self.is_healthy(d, op, now_ms))
    }

    /// The replica set of `token` for `op`: dskit's rules (docs/ring.md). Allocates only when
    /// the set has more than 8 members; use [`Self::replication_set_into`] to reuse one.
    pub fn replication_set(
        &self,
        token: u32,
        op: Operation,
        now_ms: i64,
    ) -> Result<ReplicaSet, RingError> {
        let mut out = ReplicaSet::new();
        self.replication_set_into(token, op, now_ms, &mut out)?;
        Ok(out)
    }

    /// [`Self::replication_set`] into a caller's set, reusing its storage.
    pub fn replication_set_into(
        &self,
        token: u32,
        op: Operation,
        now_ms: i64,
        out: &mut ReplicaSet,
    ) -> Result<(), RingError> {
        self.walk(token, self.rf, op, &mut out.members);
        let size = out.members.len();
        if size == 0 {
            return Err(RingError::EmptyRing);
        }
        // dskit: the quorum counts the extended set (and at least RF), before unhealthy
        // members are dropped, so a LEAVING or JOINING member raises the bar for the others.
        let min_success = size.max(self.rf) / 2 + 1;
        let healthy = |i: u32| self.is_healthy(self.instance(i), op, now_ms);
        let n_healthy = out
            .members
            .as_slice()
            .iter()
            .filter(|&&i| healthy(i))
            .count();
        if n_healthy < min_success {
            return Err(RingError::TooFewHealthy {
                min_success,
                healthy: n_healthy,
                unhealthy: out
                    .members
                    .as_slice()
                    .iter()
                    .filter(|&&i| !healthy(i))
                    .map(|&i| self.instance(i).id.clone())
                    .collect(),
            });
        }
        out.members.retain(healthy);
        out.min_success = min_success;
        out.max_failures = n_healthy - min_success;
        Ok(())
    }

    /// Answers a read of a range's set needs: all but RF/2 of its members (at least one). With
    /// the write quorum `len/2 + 1` on the same set, any read quorum meets any write quorum.
    pub fn read_quorum(&self, set_len: usize) -> usize {
        set_len.saturating_sub(self.rf / 2).max(1)
    }

    /// Whether the instances that `answered` cover every token range with a read quorum
    /// ([`Self::read_quorum`] of the range's [`Operation::Read`] set). Replaces dskit's
    /// ring-wide "too many unhealthy instances" rule: a query fails only when some range lacks
    /// a quorum. `now_ms` only marks which missing members were unhealthy in the error.
    pub fn read_coverage(
        &self,
        answered: &impl Fn(&str) -> bool,
        now_ms: i64,
    ) -> Result<(), RingError> {
        if self.tokens.is_empty() {
            return Err(RingError::EmptyRing);
        }
        let ans: Vec<bool> = self.instances.iter().map(|d| answered(&d.id)).collect();
        const EXAMPLES: usize = 3;
        let mut uncovered = 0;
        let mut examples = Vec::new();
        for r in self.read_ranges() {
            let got = r.members.iter().filter(|&&i| ans[i as usize]).count();
            let required = self.read_quorum(r.members.len());
            if got >= required {
                continue;
            }
            uncovered += 1;
            if examples.len() < EXAMPLES {
                let missing: Vec<&InstanceDesc> = r
                    .members
                    .iter()
                    .filter(|&&i| !ans[i as usize])
                    .map(|&i| self.instance(i))
                    .collect();
                examples.push(UncoveredRange {
                    start: r.start,
                    end: r.end,
                    required,
                    answered: got,
                    missing: missing.iter().map(|d| d.id.clone()).collect(),
                    unhealthy: missing
                        .iter()
                        .filter(|d| !self.is_healthy(d, Operation::Read, now_ms))
                        .map(|d| d.id.clone())
                        .collect(),
                });
            }
        }
        if uncovered == 0 {
            Ok(())
        } else {
            Err(RingError::ReadNotCovered {
                uncovered,
                examples,
            })
        }
    }

    /// Each range's read set, adjacent ranges with equal sets merged; computed once per
    /// snapshot.
    fn read_ranges(&self) -> &[ReadRange] {
        self.read_ranges.get_or_init(|| {
            let n = self.tokens.len();
            let mut out: Vec<ReadRange> = Vec::new();
            let mut m = Members::default();
            for j in 0..n {
                let start = self.tokens[(j + n - 1) % n];
                let end = self.tokens[j];
                if j > 0 && start == end {
                    continue; // the empty range behind a duplicated token
                }
                self.walk(end, self.rf, Operation::Read, &mut m);
                if let Some(last) = out.last_mut() {
                    if last.members == m.as_slice() {
                        last.end = end;
                        continue;
                    }
                }
                out.push(ReadRange {
                    start,
                    end,
                    members: m.as_slice().to_vec(),
                });
            }
            out
        })
    }

    /// dskit's `findInstancesForKey`: from the first token >= `key`, clockwise, the next `rf`
    /// distinct instances, growing the count for every member the operation extends past;
    /// when zone-aware at most `max(1, rf / zones)` non-extended members per zone, stopping
    /// once every zone has its share or has no instance left.
    fn walk(&self, key: u32, rf: usize, op: Operation, out: &mut Members) {
        out.clear();
        let n = self.tokens.len();
        if n == 0 || rf == 0 {
            return;
        }
        let target = if self.zone_aware {
            (rf / self.zones_with_tokens.max(1)).max(1)
        } else {
            0
        };
        let mut want = rf;
        let mut pos = self.tokens.partition_point(|&t| t < key);
        for _ in 0..n {
            if out.len() >= want.min(self.with_tokens) {
                break;
            }
            if self.zone_aware && self.zones_satisfied(out.as_slice(), op, target) {
                break;
            }
            if pos == n {
                pos = 0;
            }
            let i = self.owner[pos];
            pos += 1;
            if out.as_slice().contains(&i) {
                continue;
            }
            if self.zone_aware
                && self.found_in_zone(out.as_slice(), self.zone_of[i as usize], op) >= target
            {
                continue;
            }
            out.push(i);
            if op.extends_on(self.instance(i).state) {
                want += 1;
            }
        }
    }

    /// Members of `zone` in `set` that count towards its share (not extended past).
    fn found_in_zone(&self, set: &[u32], zone: u32, op: Operation) -> usize {
        set.iter()
            .filter(|&&i| {
                self.zone_of[i as usize] == zone && !op.extends_on(self.instance(i).state)
            })
            .count()
    }

    fn zones_satisfied(&self, set: &[u32], op: Operation, target: usize) -> bool {
        (0..self.zone_names.len()).all(|z| {
            let size = self.zone_sizes[z] as usize;
            let examined = set
                .iter()
                .filter(|&&i| self.zone_of[i as usize] == z as u32)
                .count();
            size == 0 || examined >= size || self.found_in_zone(set, z as u32, op) >= target
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use InstanceState::*;

    const NOW: i64 = 1_000_000_000;

    fn inst(id: &str, zone: &str, state: InstanceState, tokens: &[u32]) -> InstanceDesc {
        let mut tokens = tokens.to_vec();
        tokens.sort_unstable();
        InstanceDesc {
            id: id.into(),
            addr: format!("{id}:9095"),
            http_addr: format!("{id}:8080"),
            zone: zone.into(),
            state,
            tokens,
            heartbeat_ms: NOW,
            registered_ms: 0,
        }
    }

    fn opts(rf: usize, zones: bool) -> RingOptions {
        RingOptions {
            replication_factor: rf,
            zone_awareness_enabled: zones,
            heartbeat_timeout: Duration::from_secs(60),
        }
    }

    fn ids<'a>(ring: &'a Ring, set: &ReplicaSet) -> Vec<&'a str> {
        set.instances(ring).map(|d| d.id.as_str()).collect()
    }

    fn abcd(b_state: InstanceState) -> Ring {
        Ring::new(
            [
                inst("a", "", Active, &[100]),
                inst("b", "", b_state, &[200]),
                inst("c", "", Active, &[300]),
                inst("d", "", Active, &[400]),
            ],
            &opts(3, false),
        )
    }

    #[test]
    fn first_healthy_skips_stale_and_non_active_instances() {
        let r = abcd(Active);
        assert_eq!(r.first_healthy(150, Operation::Write, NOW).unwrap().id, "b");
        assert_eq!(
            r.first_healthy(401, Operation::Write, NOW).unwrap().id,
            "a",
            "wraps"
        );
        // b LEAVING: c takes its ranges for writes.
        let r = abcd(Leaving);
        assert_eq!(r.first_healthy(150, Operation::Write, NOW).unwrap().id, "c");
        // b stopped heartbeating two minutes ago (timeout 1m): c, though b is ACTIVE.
        let mut b = inst("b", "", Active, &[200]);
        b.heartbeat_ms = NOW - 120_000;
        let r2 = Ring::new(
            [
                inst("a", "", Active, &[100]),
                b,
                inst("c", "", Active, &[300]),
            ],
            &opts(1, false),
        );
        assert_eq!(
            r2.first_healthy(150, Operation::Write, NOW).unwrap().id,
            "c"
        );
        assert_eq!(
            r2.owners(150, 1)[0].id,
            "b",
            "owners() does not judge heartbeats"
        );
        // Every heartbeat too old: nobody.
        let late = NOW + 10 * 60 * 1000;
        assert!(r.first_healthy(150, Operation::Write, late).is_none());
        assert!(Ring::empty(&RingOptions::default())
            .first_healthy(1, Operation::Write, NOW)
            .is_none());
    }

    #[test]
    fn walks_clockwise_from_the_first_token_at_or_after_the_key() {
        let r = abcd(Active);
        let s = r.replication_set(150, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["b", "c", "d"]);
        assert_eq!((s.min_success, s.max_failures), (2, 1));
        let s = r.replication_set(200, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["b", "c", "d"]);
        let s = r.replication_set(401, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["a", "b", "c"], "wraps past the last token");
    }

    #[test]
    fn quorum_with_a_leaving_member_matches_the_worked_example() {
        // Research §1.5: RF=3, set {A, B(LEAVING), C, D}: dskit's min_success is 3.
        let r = abcd(Leaving);
        let s = r.replication_set(50, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["a", "c", "d"]);
        assert_eq!((s.min_success, s.max_failures), (3, 0));
        // Reads keep B (LEAVING still holds data) and are extended the same way.
        let s = r.replication_set(50, Operation::Read, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["a", "b", "c", "d"]);
        assert_eq!((s.min_success, s.max_failures), (3, 1));
        // Reporting neither extends nor filters.
        let s = r.replication_set(50, Operation::Reporting, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["a", "b", "c"]);
    }

    #[test]
    fn writes_extend_past_joining_and_pending() {
        for st in [Joining, Pending] {
            let r = abcd(st);
            let s = r.replication_set(150, Operation::Write, NOW).unwrap();
            assert_eq!(ids(&r, &s), ["c", "d", "a"], "{st}");
            assert_eq!(s.min_success, 3);
        }
    }

    #[test]
    fn stale_heartbeats_are_unhealthy_and_named() {
        let mut a = inst("a", "", Active, &[100]);
        a.heartbeat_ms = NOW - 61_000;
        let mut b = inst("b", "", Active, &[200]);
        b.heartbeat_ms = NOW - 120_000;
        let c = inst("c", "", Active, &[300]);
        let r = Ring::new([a.clone(), b, c.clone()], &opts(3, false));
        let e = r.replication_set(50, Operation::Write, NOW).unwrap_err();
        match &e {
            RingError::TooFewHealthy {
                min_success,
                healthy,
                unhealthy,
            } => {
                assert_eq!((*min_success, *healthy), (2, 1));
                assert_eq!(unhealthy, &["a", "b"]);
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("a, b"), "{e}");
        // One stale member still leaves a quorum.
        let r = Ring::new([a, inst("b", "", Active, &[200]), c], &opts(3, false));
        let s = r.replication_set(50, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["b", "c"]);
        assert_eq!((s.min_success, s.max_failures), (2, 0));
    }

    #[test]
    fn fewer_instances_than_rf_need_a_majority_of_rf() {
        let r = Ring::new([inst("a", "", Active, &[1])], &opts(3, false));
        let e = r.replication_set(0, Operation::Write, NOW).unwrap_err();
        assert!(
            matches!(
                e,
                RingError::TooFewHealthy {
                    min_success: 2,
                    healthy: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("fewer instances than the replication factor"),
            "{e}"
        );
        let r = Ring::new([inst("a", "", Active, &[1])], &opts(1, false));
        let s = r.replication_set(0, Operation::Write, NOW).unwrap();
        assert_eq!((s.len(), s.min_success), (1, 1));
        assert!(matches!(
            Ring::empty(&opts(3, false)).replication_set(0, Operation::Write, NOW),
            Err(RingError::EmptyRing)
        ));
    }

    #[test]
    fn zone_awareness_takes_one_per_zone() {
        let r = Ring::new(
            [
                inst("a1", "a", Active, &[100]),
                inst("a2", "a", Active, &[110]),
                inst("b1", "b", Active, &[200]),
                inst("b2", "b", Active, &[210]),
                inst("c1", "c", Active, &[300]),
                inst("c2", "c", Active, &[310]),
            ],
            &opts(3, true),
        );
        let s = r.replication_set(105, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["a2", "b1", "c1"]);
        // A LEAVING member is replaced by another of its zone.
        let r2 = Ring::new(
            r.all().iter().cloned().map(|mut d| {
                if d.id == "b1" {
                    d.state = Leaving;
                }
                d
            }),
            &opts(3, true),
        );
        let s = r2.replication_set(105, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r2, &s), ["a2", "b2", "c1"]);
        assert_eq!(s.min_success, 3);
    }

    #[test]
    fn two_zones_with_rf_three_behave_like_dskit() {
        // max(1, 3/2) = 1 per zone: two replicas, both needed (quorum of RF=3 is 2).
        let r = Ring::new(
            [
                inst("a1", "a", Active, &[100]),
                inst("a2", "a", Active, &[150]),
                inst("b1", "b", Active, &[200]),
                inst("b2", "b", Active, &[250]),
            ],
            &opts(3, true),
        );
        let s = r.replication_set(120, Operation::Write, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["a2", "b1"]);
        assert_eq!((s.min_success, s.max_failures), (2, 0));
        // A single zone is not a reason to keep fewer than RF replicas.
        let one = Ring::new(
            ["x", "y", "z", "w"]
                .iter()
                .enumerate()
                .map(|(k, id)| inst(id, "a", Active, &[k as u32 * 10])),
            &opts(3, true),
        );
        assert_eq!(
            one.replication_set(0, Operation::Write, NOW).unwrap().len(),
            3
        );
    }

    #[test]
    fn token_collisions_resolve_by_instance_id() {
        let a = inst("a", "", Active, &[100, 500]);
        let b = inst("b", "", Active, &[100, 600]);
        for order in [[a.clone(), b.clone()], [b, a]] {
            let r = Ring::new(order, &opts(1, false));
            let s = r.replication_set(100, Operation::Write, NOW).unwrap();
            assert_eq!(ids(&r, &s), ["a"]);
            let s = r.replication_set(50, Operation::Write, NOW).unwrap();
            assert_eq!(ids(&r, &s), ["a"]);
        }
    }

    #[test]
    fn large_sets_spill_out_of_the_inline_buffer() {
        let mut v: Vec<InstanceDesc> = (0..12)
            .map(|k| inst(&format!("p{k:02}"), "", Pending, &[k * 10]))
            .collect();
        v.extend((0..3).map(|k| inst(&format!("z{k}"), "", Active, &[1000 + k])));
        let r = Ring::new(v, &opts(3, false));
        let mut s = ReplicaSet::new();
        r.replication_set_into(0, Operation::Read, NOW, &mut s)
            .unwrap();
        assert_eq!(s.len(), 15);
        assert_eq!(s.min_success, 8);
        // Twelve PENDING members raise the write quorum beyond the three ACTIVE ones.
        let e = r
            .replication_set_into(0, Operation::Write, NOW, &mut s)
            .unwrap_err();
        assert!(
            matches!(
                e,
                RingError::TooFewHealthy {
                    min_success: 8,
                    healthy: 3,
                    ..
                }
            ),
            "{e}"
        );
        let s = r.replication_set(995, Operation::Reporting, NOW).unwrap();
        assert_eq!(ids(&r, &s), ["z0", "z1", "z2"]);
    }

    fn random_ring(n: usize, tokens: usize, seed: u64) -> Ring {
        let mut rng = fastrand::Rng::with_seed(seed);
        Ring::new(
            (0..n).map(|k| {
                let t: Vec<u32> = (0..tokens).map(|_| rng.u32(..)).collect();
                inst(&format!("ing-{k}"), "", Active, &t)
            }),
            &opts(3, false),
        )
    }

    #[test]
    fn ownership_of_128_random_tokens_is_within_bounds() {
        for n in 3..=6 {
            let r = random_ring(n, 128, n as u64);
            let shares: Vec<f64> = r.all().iter().map(|d| r.ownership(&d.id)).collect();
            let total: f64 = shares.iter().sum();
            assert!((total - 1.0).abs() < 1e-9, "{total}");
            let fair = 1.0 / n as f64;
            for s in &shares {
                assert!(
                    // 2,000 random rings stayed within 0.73..1.33 of the fair share.
                    (0.65 * fair..=1.4 * fair).contains(s),
                    "{n} instances: share {s} vs fair {fair}: {shares:?}"
                );
            }
        }
        let one = Ring::new([inst("a", "", Active, &[7])], &opts(1, false));
        assert_eq!(one.ownership("a"), 1.0);
    }

    #[test]
    fn read_coverage_tolerates_one_missing_replica_per_range() {
        let r = random_ring(3, 16, 1);
        r.read_coverage(&|id| id != "ing-1", NOW).unwrap();
        let e = r.read_coverage(&|id| id == "ing-0", NOW).unwrap_err();
        let RingError::ReadNotCovered { examples, .. } = &e else {
            panic!("{e}")
        };
        let mut missing = examples[0].missing.clone();
        missing.sort();
        assert_eq!(missing, ["ing-1", "ing-2"]);
        assert_eq!((examples[0].required, examples[0].answered), (2, 1));
    }

    #[test]
    fn read_coverage_fails_only_for_ranges_two_missing_instances_share() {
        let r = random_ring(6, 32, 7);
        for d in r.all() {
            r.read_coverage(&|id| id != d.id, NOW).unwrap();
        }
        // Find two instances that share some range, then take both away.
        let ranges = r.read_ranges();
        let shared = &ranges[0].members;
        let (x, y) = (
            r.instance(shared[0]).id.clone(),
            r.instance(shared[1]).id.clone(),
        );
        let e = r.read_coverage(&|id| id != x && id != y, NOW).unwrap_err();
        let RingError::ReadNotCovered {
            uncovered,
            examples,
        } = &e
        else {
            panic!("{e}")
        };
        let expected = ranges
            .iter()
            .filter(|rr| rr.members.contains(&shared[0]) && rr.members.contains(&shared[1]))
            .count();
        assert_eq!(*uncovered, expected);
        assert!(*uncovered < ranges.len(), "other ranges stay covered");
        let mut missing = examples[0].missing.clone();
        missing.sort();
        let mut want = vec![x.clone(), y.clone()];
        want.sort();
        assert_eq!(missing, want);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("({}, {}]", examples[0].start, examples[0].end)),
            "{msg}"
        );
    }

    #[test]
    fn owners_skip_non_active_instances() {
        let r = abcd(Leaving);
        let o: Vec<&str> = r.owners(150, 3).iter().map(|d| d.id.as_str()).collect();
        assert_eq!(o, ["c", "d", "a"], "b is LEAVING: the walk extends to a");
        let o: Vec<&str> = r.owners(50, 2).iter().map(|d| d.id.as_str()).collect();
        assert_eq!(o, ["a", "c"]);
    }

    fn arb_ring() -> impl Strategy<Value = (Vec<InstanceDesc>, usize, bool)> {
        let state = prop_oneof![
            4 => Just(Active),
            1 => Just(Leaving),
            1 => Just(Joining),
            1 => Just(Pending)
        ];
        let one = (state, 0u8..3, prop::collection::vec(any::<u32>(), 0..6));
        (prop::collection::vec(one, 1..10), 1usize..6, any::<bool>()).prop_map(|(v, rf, zones)| {
            let descs = v
                .into_iter()
                .enumerate()
                .map(|(k, (st, z, t))| inst(&format!("i{k}"), &format!("z{z}"), st, &t))
                .collect();
            (descs, rf, zones)
        })
    }

    proptest! {
        #[test]
        fn replica_sets_hold_distinct_instances_and_respect_zones(
            (descs, rf, zones) in arb_ring(),
            key in any::<u32>(),
        ) {
            let r = Ring::new(descs, &opts(rf, zones));
            let mut m = Members::default();
            for op in [Operation::Write, Operation::Read, Operation::Reporting] {
                r.walk(key, rf, op, &mut m);
                let set = m.as_slice();
                let mut sorted = set.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), set.len(), "duplicate member");
                let counted = set.iter().filter(|&&i| !op.extends_on(r.instance(i).state)).count();
                prop_assert!(counted <= rf);
                if r.token_count() > 0 {
                    // The first member owns the key's range.
                    let pos = r.tokens.partition_point(|&t| t < key) % r.token_count();
                    prop_assert_eq!(set[0], r.owner[pos]);
                    if !zones {
                        let reachable = r.all().iter().filter(|d| !d.tokens.is_empty()).count();
                        prop_assert!(counted == rf.min(reachable) || set.len() == reachable);
                    }
                }
                if zones {
                    let target = (rf / r.zones_with_tokens.max(1)).max(1);
                    for z in 0..r.zone_names.len() as u32 {
                        prop_assert!(r.found_in_zone(set, z, op) <= target);
                    }
                }
            }
            // Read sets contain write sets: the read quorum overlaps the write quorum.
            let mut w = Members::default();
            r.walk(key, rf, Operation::Write, &mut w);
            r.walk(key, rf, Operation::Read, &mut m);
            prop_assert_eq!(w.as_slice(), m.as_slice());
        }
    }
}
