//! One tenant's in-memory head: series sharded over mutexes by label hash, a postings index,
//! and metric metadata.
//!
//! Lock order is shard → postings (write, only to register a new series) → WAL pending buffer.
//! WAL records of a series are queued while its shard lock is held, so for any one series the
//! WAL order equals the in-memory order, and a series record always precedes its samples.

pub mod key;
pub mod postings;
pub mod series;

use crate::wal::record::RecordWriter;
use crate::wal::Wal;
use hashbrown::HashTable;
use parking_lot::{Mutex, RwLock};
use postings::Postings;
use series::{AppendResult, MemSeries};
use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use strata_model::labels::fmt_series;
use strata_model::time::format_rfc3339_ms;
use strata_model::{Labels, Limits, Matcher, MetricMetadata, Sample, TenantId, WriteBatch};
use strata_storage::limits::{check_count, chunk_heap_bytes, ReadLimits};
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{LimitExceeded, PushOutcome, ReadLimit, Rejection, RejectionKind};

#[derive(Debug, Default)]
struct Shard {
    table: HashTable<u32>,
    series: Vec<MemSeries>,
}

impl Shard {
    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let series = &self.series;
        self.table
            .find(hash, |&i| {
                let s = &series[i as usize];
                s.hash == hash && &*s.key == key
            })
            .copied()
    }

    fn insert(&mut self, s: MemSeries) -> u32 {
        let local = self.series.len() as u32;
        let hash = s.hash;
        self.series.push(s);
        let series = &self.series;
        self.table
            .insert_unique(hash, local, |&i| series[i as usize].hash);
        local
    }
}

/// Per-request scratch space, reused across requests to avoid allocation.
#[derive(Debug, Default)]
pub struct AppendScratch {
    keys: Vec<u8>,
    key_ends: Vec<u32>,
    hashes: Vec<u64>,
    order: Vec<(u32, u32)>,
    series_records: RecordWriter,
    sample_records: RecordWriter,
}

/// The head of one tenant.
#[derive(Debug)]
pub struct TenantHead {
    pub tenant: TenantId,
    shards: Box<[Mutex<Shard>]>,
    mask: u64,
    postings: RwLock<Postings>,
    metadata: Mutex<HashMap<String, SeriesMetadata>>,
    min_t: AtomicI64,
    max_t: AtomicI64,
    /// Samples older than this were cut into a block: appending them would put them where no
    /// block cut will ever pick them up, so they are refused (Mimir's "out of bounds").
    min_valid_t: AtomicI64,
    /// Wall-clock time of the last append, ms (for the idle cut).
    last_append_ms: AtomicI64,
    /// Held shared by queries (which resolve postings to shard locations and then read the
    /// shards) and exclusively by truncation (which moves series inside shards).
    truncation: RwLock<()>,
    /// Series examined by queries (see [`TenantHead::series_visited`]).
    visited: AtomicU64,
}

/// What a truncation removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TruncateStats {
    pub series_removed: usize,
    pub chunks_removed: usize,
}

#[inline]
fn location(shard: usize, local: u32) -> u32 {
    (local << 8) | shard as u32
}

#[inline]
fn split_location(loc: u32) -> (usize, usize) {
    ((loc & 0xff) as usize, (loc >> 8) as usize)
}

/// Estimated heap bytes of the label set a canonical key decodes to (each name and value
/// becomes a `String` of a `Label`).
fn key_heap_bytes(key: &[u8]) -> usize {
    std::mem::size_of::<Labels>()
        + key::pairs(key)
            .map(|(n, v)| std::mem::size_of::<strata_model::Label>() + n.len() + v.len())
            .sum::<usize>()
}

/// How many items to collect to answer under `limit`: one more shows it is exceeded.
fn upto(limit: usize) -> usize {
    if limit == strata_storage::NO_LIMIT {
        usize::MAX
    } else {
        limit.saturating_add(1)
    }
}

fn describe(key: &[u8]) -> String {
    let mut s = String::new();
    let _ = fmt_series(&mut s, key::pairs(key));
    s
}

impl TenantHead {
    pub fn new(tenant: TenantId, shards: usize) -> Self {
        Self {
            tenant,
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            mask: (shards - 1) as u64,
            postings: RwLock::new(Postings::default()),
            metadata: Mutex::new(HashMap::new()),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            min_valid_t: AtomicI64::new(i64::MIN),
            last_append_ms: AtomicI64::new(strata_model::time::now_ms()),
            truncation: RwLock::new(()),
            visited: AtomicU64::new(0),
        }
    }

    /// Oldest timestamp the head accepts.
    pub fn min_valid_t(&self) -> i64 {
        self.min_valid_t.load(Ordering::Relaxed)
    }

    /// Refuses samples older than `t` from now on.
    pub fn set_min_valid_t(&self, t: i64) {
        self.min_valid_t.fetch_max(t, Ordering::Relaxed);
    }

    /// Wall-clock time of the last append, ms.
    pub fn last_append_ms(&self) -> i64 {
        self.last_append_ms.load(Ordering::Relaxed)
    }

    /// Newest sample time seen, if any.
    pub fn max_time(&self) -> Option<i64> {
        let t = self.max_t.load(Ordering::Relaxed);
        (t != i64::MIN).then_some(t)
    }

    /// Oldest sample time seen, if any (an upper bound after truncation).
    pub fn min_time(&self) -> Option<i64> {
        let t = self.min_t.load(Ordering::Relaxed);
        (t != i64::MAX).then_some(t)
    }

    /// Drops every chunk whose samples are all older than `t` and the series left empty.
    /// Called once the blocks covering that time are safely in the bucket.
    pub fn truncate_before(&self, t: i64) -> TruncateStats {
        let _excl = self.truncation.write();
        let mut stats = TruncateStats::default();
        for (shard_idx, shard) in self.shards.iter().enumerate() {
            let mut shard = shard.lock();
            let mut any_dead = false;
            for s in shard.series.iter_mut() {
                stats.chunks_removed += s.drop_chunks_before(t);
                any_dead |= s.is_empty();
            }
            if !any_dead {
                continue;
            }
            let old = std::mem::take(&mut shard.series);
            shard.table = HashTable::new();
            let (dead, live): (Vec<MemSeries>, Vec<MemSeries>) =
                old.into_iter().partition(MemSeries::is_empty);
            let mut postings = self.postings.write();
            for s in live {
                let id = s.id;
                let local = shard.insert(s);
                postings.relocate(id, location(shard_idx, local));
            }
            let dead_pairs: Vec<(u32, Vec<(&str, &str)>)> = dead
                .iter()
                .map(|s| (s.id, key::pairs(&s.key).collect()))
                .collect();
            postings.remove(&dead_pairs);
            stats.series_removed += dead.len();
        }
        if stats.chunks_removed > 0 {
            self.min_t.fetch_max(t, Ordering::Relaxed);
        }
        stats
    }

    /// Active series.
    pub fn num_series(&self) -> usize {
        self.postings.read().len()
    }

    fn shard_of(&self, hash: u64) -> usize {
        // High bits pick the shard; the hash table uses the low bits.
        ((hash >> 48) & self.mask) as usize
    }

    fn note_time_range(&self, min_t: i64, max_t: i64) {
        if min_t <= max_t {
            self.min_t.fetch_min(min_t, Ordering::Relaxed);
            self.max_t.fetch_max(max_t, Ordering::Relaxed);
        }
    }

    /// Whether the head may hold samples in `[start, end]`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.min_t.load(Ordering::Relaxed) <= end && self.max_t.load(Ordering::Relaxed) >= start
    }

    /// Appends a batch, queueing WAL records for what was stored. Returns the WAL sequence to
    /// wait on before acknowledging (0 if nothing needs to be made durable).
    pub fn append(
        &self,
        batch: &WriteBatch<'_>,
        limits: &Limits,
        wal: &Wal,
        scratch: &mut AppendScratch,
        outcome: &mut PushOutcome,
    ) -> u64 {
        let s = scratch;
        s.keys.clear();
        s.key_ends.clear();
        s.hashes.clear();
        s.order.clear();
        for i in 0..batch.series.len() {
            let start = s.keys.len();
            key::encode_into(batch.series_labels(i), &mut s.keys);
            s.key_ends.push(s.keys.len() as u32);
            let h = key::hash(&s.keys[start..]);
            s.hashes.push(h);
            if !batch.series_samples(i).is_empty() {
                s.order.push((self.shard_of(h) as u32, i as u32));
            }
        }
        s.order.sort_unstable();
        self.last_append_ms
            .store(strata_model::time::now_ms(), Ordering::Relaxed);
        let tenant = self.tenant.as_str();
        let mut seq = 0;
        let mut g = 0;
        while g < s.order.len() {
            let shard_idx = s.order[g].0 as usize;
            let mut end = g;
            while end < s.order.len() && s.order[end].0 as usize == shard_idx {
                end += 1;
            }
            let mut shard = self.shards[shard_idx].lock();
            // Read under the shard lock: a block cut raises it and then reads every shard under
            // its lock, so a sample is either seen by the cut or refused here, never neither.
            let min_valid = self.min_valid_t();
            s.series_records.clear();
            s.sample_records.clear();
            let mut rec = s.sample_records.begin_samples(tenant);
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for &(_, i) in &s.order[g..end] {
                let i = i as usize;
                let kstart = if i == 0 {
                    0
                } else {
                    s.key_ends[i - 1] as usize
                };
                let key = &s.keys[kstart..s.key_ends[i] as usize];
                let hash = s.hashes[i];
                let samples = batch.series_samples(i);
                let rejected_before = outcome.samples_rejected;
                let local = match shard.find(hash, key) {
                    Some(l) => l,
                    None => {
                        let max = limits.max_series_per_tenant;
                        let mut postings = self.postings.write();
                        if max > 0 && postings.len() as u64 >= max {
                            drop(postings);
                            outcome.reject(samples.len() as u64, || Rejection {
                                kind: RejectionKind::Limit,
                                reason: "max-series-per-tenant",
                                message: format!(
                                    "per-tenant series limit of {max} exceeded for tenant {tenant}; series {} was not created. Raise limits.max_series_per_tenant or reduce cardinality",
                                    describe(key)
                                ),
                            });
                            outcome
                                .rejected_series
                                .push((i as u32, RejectionKind::Limit));
                            continue;
                        }
                        let local = shard.series.len() as u32;
                        let id = postings.add(location(shard_idx, local), key::pairs(key));
                        drop(postings);
                        s.series_records.series(tenant, id, key);
                        shard.insert(MemSeries::new(key.into(), hash, id))
                    }
                };
                let series = &mut shard.series[local as usize];
                for smp in samples {
                    if smp.t < min_valid {
                        outcome.reject(1, || Rejection {
                            kind: RejectionKind::BadData,
                            reason: "sample-out-of-bounds",
                            message: format!(
                                "sample at {} is older than {}, the start of the head: older data was already cut into a block; series {}",
                                format_rfc3339_ms(smp.t),
                                format_rfc3339_ms(min_valid),
                                describe(key)
                            ),
                        });
                        continue;
                    }
                    match series.append(smp.t, smp.v) {
                        AppendResult::Appended => {
                            s.sample_records.sample(&mut rec, series.id, smp.t, smp.v);
                            outcome.samples_written += 1;
                            lo = lo.min(smp.t);
                            hi = hi.max(smp.t);
                        }
                        AppendResult::Duplicate => outcome.samples_written += 1,
                        AppendResult::OutOfOrder { newest } => {
                            outcome.reject(1, || Rejection {
                                kind: RejectionKind::BadData,
                                reason: "sample-out-of-order",
                                message: format!(
                                    "out-of-order sample: timestamp {} is older than the newest sample of the series at {}; series {}",
                                    format_rfc3339_ms(smp.t),
                                    format_rfc3339_ms(newest),
                                    describe(key)
                                ),
                            })
                        }
                        AppendResult::DuplicateTimestamp => outcome.reject(1, || Rejection {
                            kind: RejectionKind::BadData,
                            reason: "sample-duplicate-timestamp",
                            message: format!(
                                "duplicate sample for timestamp {} with a different value ({}); series {}",
                                format_rfc3339_ms(smp.t),
                                smp.v,
                                describe(key)
                            ),
                        }),
                    }
                }
                if outcome.samples_rejected != rejected_before {
                    outcome
                        .rejected_series
                        .push((i as u32, RejectionKind::BadData));
                }
            }
            s.sample_records.end_samples(rec);
            if !s.series_records.is_empty() || !s.sample_records.is_empty() {
                seq = wal.append_parts(&[&s.series_records.buf, &s.sample_records.buf]);
            }
            drop(shard);
            self.note_time_range(lo, hi);
            g = end;
        }
        seq
    }

    /// Records metadata; returns the entries that changed (to be logged).
    pub fn update_metadata<'a>(&self, md: &[MetricMetadata<'a>]) -> Vec<MetricMetadata<'a>> {
        let mut map = self.metadata.lock();
        let mut changed = Vec::new();
        for m in md {
            if m.family.is_empty() {
                continue;
            }
            let same = map.get(m.family).is_some_and(|e| {
                e.metric_type == m.metric_type && e.help == m.help && e.unit == m.unit
            });
            if !same {
                map.insert(
                    m.family.to_owned(),
                    SeriesMetadata {
                        family: m.family.to_owned(),
                        metric_type: m.metric_type,
                        help: m.help.to_owned(),
                        unit: m.unit.to_owned(),
                    },
                );
                changed.push(m.clone());
            }
        }
        changed
    }

    pub fn metadata(&self, metric: Option<&str>) -> Vec<SeriesMetadata> {
        let map = self.metadata.lock();
        let mut v: Vec<SeriesMetadata> = match metric {
            Some(m) => map.get(m).cloned().into_iter().collect(),
            None => map.values().cloned().collect(),
        };
        v.sort_by(|a, b| a.family.cmp(&b.family));
        v
    }

    // ---- replay (no WAL, no limits) ----

    /// Finds or creates a series during replay; returns its location. A key that is not a
    /// canonical label encoding (a corrupt record whose checksum still matched) is refused:
    /// queries would decode it into an unsorted label set.
    pub fn replay_series(&self, key: &[u8]) -> Result<u32, &'static str> {
        if !key::is_canonical(key) {
            return Err("the series key is not a sorted label encoding");
        }
        let hash = key::hash(key);
        let shard_idx = self.shard_of(hash);
        let mut shard = self.shards[shard_idx].lock();
        if let Some(l) = shard.find(hash, key) {
            return Ok(location(shard_idx, l));
        }
        let local = shard.series.len() as u32;
        let id = self
            .postings
            .write()
            .add(location(shard_idx, local), key::pairs(key));
        shard.insert(MemSeries::new(key.into(), hash, id));
        Ok(location(shard_idx, local))
    }

    /// Appends a replayed sample; samples already present (a checkpoint overlaps the first
    /// segment after it) are skipped.
    pub fn replay_sample(&self, loc: u32, t: i64, v: f64) {
        let (shard_idx, local) = split_location(loc);
        let mut shard = self.shards[shard_idx].lock();
        if shard.series[local].append(t, v) == AppendResult::Appended {
            drop(shard);
            self.note_time_range(t, t);
        }
    }

    /// Restores a series from a checkpoint.
    pub fn restore_series(&self, key: &[u8], chunks: Vec<Box<[u8]>>) -> Result<u32, &'static str> {
        let loc = self.replay_series(key)?;
        let (shard_idx, local) = split_location(loc);
        let mut shard = self.shards[shard_idx].lock();
        let s = &mut shard.series[local];
        s.restore_chunks(chunks)?;
        let mut all = Vec::new();
        s.samples_in(i64::MIN, i64::MAX, &mut all);
        drop(shard);
        if let (Some(a), Some(b)) = (all.first(), all.last()) {
            self.note_time_range(a.t, b.t);
        }
        Ok(loc)
    }

    /// Writes every series with its chunks and the metadata as checkpoint records.
    pub fn snapshot(
        &self,
        out: &mut RecordWriter,
        mut flush: impl FnMut(&mut RecordWriter) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let tenant = self.tenant.as_str();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for s in &shard.series {
                out.series_snapshot(tenant, s.id, &s.key, s.chunks());
                if out.buf.len() > 1 << 20 {
                    flush(out)?;
                }
            }
        }
        for m in self.metadata.lock().values() {
            out.metadata(
                tenant,
                &MetricMetadata {
                    family: &m.family,
                    metric_type: m.metric_type,
                    help: &m.help,
                    unit: &m.unit,
                },
            );
        }
        flush(out)
    }

    // ---- queries ----

    fn matching_locations(&self, matchers: &[Matcher]) -> Vec<u32> {
        let postings = self.postings.read();
        let mut locs: Vec<u32> = postings
            .select(matchers)
            .into_iter()
            .map(|id| postings.location(id))
            .collect();
        drop(postings);
        locs.sort_unstable_by_key(|l| (l & 0xff, l >> 8));
        locs
    }

    /// Visits matching series shard by shard (each shard locked once) until `f` breaks.
    fn for_each_match(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(&MemSeries) -> ControlFlow<()>,
    ) {
        let _shared = self.truncation.read();
        let locs = self.matching_locations(matchers);
        let mut i = 0;
        let mut visited = 0u64;
        'shards: while i < locs.len() {
            let (shard_idx, _) = split_location(locs[i]);
            let shard = self.shards[shard_idx].lock();
            while i < locs.len() && split_location(locs[i]).0 == shard_idx {
                visited += 1;
                if f(&shard.series[split_location(locs[i]).1]).is_break() {
                    break 'shards;
                }
                i += 1;
            }
        }
        self.visited.fetch_add(visited, Ordering::Relaxed);
    }

    /// Series examined by queries since the head was created (a cost measure: a read stopped
    /// by a limit examines fewer).
    pub fn series_visited(&self) -> u64 {
        self.visited.load(Ordering::Relaxed)
    }

    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        if !self.overlaps(start, end) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut raw: Vec<(Box<[u8]>, Vec<Sample>)> = Vec::new();
        self.for_each_match(matchers, |s| {
            let mut samples = Vec::new();
            s.samples_in(start, end, &mut samples);
            if !samples.is_empty() {
                raw.push((s.key.clone(), samples));
            }
            ControlFlow::Continue(())
        });
        for (k, samples) in raw {
            out.push(Series {
                labels: key::to_labels(&k),
                samples,
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Matching series with their chunks overlapping `[start, end]`, sorted by labels. Series,
    /// samples (from the chunks' headers) and bytes are counted series by series under the
    /// shard locks, and the walk stops at the first series over `limits`.
    pub fn select_chunks(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limits: &ReadLimits,
    ) -> Result<Vec<strata_storage::ChunkedSeries>, LimitExceeded> {
        if !self.overlaps(start, end) {
            return Ok(Vec::new());
        }
        let mut raw: Vec<(Box<[u8]>, Vec<strata_storage::EncodedChunk>)> = Vec::new();
        let mut tally = limits.tally();
        let mut res = Ok(());
        self.for_each_match(matchers, |s| {
            let chunks = s.encoded_chunks(start, end);
            if chunks.is_empty() {
                return ControlFlow::Continue(());
            }
            res = tally.add(
                1,
                chunks.iter().map(|c| c.num_samples()).sum(),
                key_heap_bytes(&s.key) + chunks.iter().map(chunk_heap_bytes).sum::<usize>(),
            );
            if res.is_err() {
                return ControlFlow::Break(());
            }
            raw.push((s.key.clone(), chunks));
            ControlFlow::Continue(())
        });
        res?;
        let mut out: Vec<strata_storage::ChunkedSeries> = raw
            .into_iter()
            .map(|(k, chunks)| strata_storage::ChunkedSeries::Chunks {
                labels: key::to_labels(&k),
                chunks,
            })
            .collect();
        out.sort_by(|a, b| a.labels().cmp(b.labels()));
        Ok(out)
    }

    /// Label sets of the matching series with a sample in `[start, end]`, sorted; stops at the
    /// series past `limit`.
    pub fn series(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, LimitExceeded> {
        let mut keys: Vec<Box<[u8]>> = Vec::new();
        self.matching_keys(
            matchers,
            start,
            end,
            |s, keys| {
                keys.push(s.key.clone());
                check_count(keys.len(), limit, ReadLimit::Series)
            },
            &mut keys,
        )?;
        let mut out: Vec<Labels> = keys.iter().map(|k| key::to_labels(k)).collect();
        out.sort();
        Ok(out)
    }

    /// Calls `f` on each matching series with a sample in `[start, end]` until it fails.
    fn matching_keys<T>(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        mut f: impl FnMut(&MemSeries, &mut T) -> Result<(), LimitExceeded>,
        acc: &mut T,
    ) -> Result<(), LimitExceeded> {
        if !self.overlaps(start, end) {
            return Ok(());
        }
        let mut res = Ok(());
        self.for_each_match(matchers, |s| {
            if s.has_sample_in(start, end) {
                res = f(s, acc);
                if res.is_err() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        res
    }

    /// Sorted label names of the matching series (every series when `matchers` is empty);
    /// stops once more than `limit` are found.
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, LimitExceeded> {
        if !self.overlaps(start, end) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            let names = self.postings.read().label_names_upto(upto(limit));
            check_count(names.len(), limit, ReadLimit::LabelNames)?;
            return Ok(names);
        }
        let mut names = BTreeSet::new();
        self.matching_keys(
            matchers,
            start,
            end,
            |s, names: &mut BTreeSet<String>| {
                for (n, _) in key::pairs(&s.key) {
                    if !names.contains(n) {
                        names.insert(n.to_owned());
                        check_count(names.len(), limit, ReadLimit::LabelNames)?;
                    }
                }
                Ok(())
            },
            &mut names,
        )?;
        Ok(names.into_iter().collect())
    }

    /// Sorted values of label `name` among the matching series; stops once more than `limit`
    /// are found.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, LimitExceeded> {
        if !self.overlaps(start, end) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            let values = self.postings.read().label_values_upto(name, upto(limit));
            check_count(values.len(), limit, ReadLimit::LabelValues)?;
            return Ok(values);
        }
        let mut values = BTreeSet::new();
        self.matching_keys(
            matchers,
            start,
            end,
            |s, values: &mut BTreeSet<String>| {
                if let Some(v) = key::get(&s.key, name) {
                    if !values.contains(v) {
                        values.insert(v.to_owned());
                        check_count(values.len(), limit, ReadLimit::LabelValues)?;
                    }
                }
                Ok(())
            },
            &mut values,
        )?;
        Ok(values.into_iter().collect())
    }

    /// Series, chunks and time range of this head.
    pub fn stats(&self) -> strata_storage::HeadStats {
        let mut chunks = 0u64;
        for s in self.shards.iter() {
            chunks += s
                .lock()
                .series
                .iter()
                .map(|x| x.chunk_count() as u64)
                .sum::<u64>();
        }
        strata_storage::HeadStats {
            num_series: self.num_series() as u64,
            chunk_count: chunks,
            min_time: self.min_t.load(Ordering::Relaxed),
            max_time: self.max_t.load(Ordering::Relaxed),
        }
    }

    /// Approximate heap bytes of series data (labels and chunks).
    pub fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .series
                    .iter()
                    .map(MemSeries::heap_bytes)
                    .sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::MatchOp;

    /// A head of `n` series `m{i="…", l<i%50>="x"}` with 200 samples each, 1 s apart.
    fn head(n: usize) -> TenantHead {
        let h = TenantHead::new(TenantId::new("t").unwrap(), 16);
        for i in 0..n {
            let id = format!("{i:05}");
            let extra = format!("l{:02}", i % 50);
            let mut pairs = vec![("__name__", "m"), ("i", id.as_str()), (extra.as_str(), "x")];
            pairs.sort();
            let mut k = Vec::new();
            key::encode_into(&pairs, &mut k);
            let loc = h.replay_series(&k).unwrap();
            for t in 0..200 {
                h.replay_sample(loc, t * 1000, t as f64);
            }
        }
        h
    }

    #[test]
    fn limits_stop_the_walk_over_series() {
        let h = head(1000);
        let m = [Matcher::equal("__name__", "m")];
        let limits = |max_series, max_samples, max_bytes| ReadLimits {
            max_series,
            max_samples,
            max_bytes,
        };
        let cases = [
            (limits(10, 0, 0), ReadLimit::Series),
            (limits(0, 2000, 0), ReadLimit::Samples),
            (limits(0, 0, 16 << 10), ReadLimit::QueryMemory),
        ];
        for (l, kind) in cases {
            let before = h.series_visited();
            let e = h.select_chunks(&m, 0, 200_000, &l).unwrap_err();
            assert_eq!(e.limit, kind);
            let visited = h.series_visited() - before;
            assert!(visited < 100, "{kind:?}: {visited} of 1000 series visited");
        }
        let before = h.series_visited();
        let got = h
            .select_chunks(&m, 0, 200_000, &limits(1000, 200_000, 0))
            .unwrap();
        assert_eq!(got.len(), 1000);
        assert_eq!(h.series_visited() - before, 1000);

        let before = h.series_visited();
        let e = h.series(&m, 0, 200_000, 10).unwrap_err();
        assert_eq!((e.limit, e.max), (ReadLimit::Series, 10));
        let e = h.label_values("i", &m, 0, 200_000, 10).unwrap_err();
        assert_eq!(e.limit, ReadLimit::LabelValues);
        let e = h.label_names(&m, 0, 200_000, 10).unwrap_err();
        assert_eq!(e.limit, ReadLimit::LabelNames);
        assert!(h.series_visited() - before <= 11 + 11 + 10);
        // Without matchers the postings answer, also stopping at the limit.
        let e = h.label_values("i", &[], 0, 200_000, 10).unwrap_err();
        assert_eq!(e.limit, ReadLimit::LabelValues);
        let e = h.label_names(&[], 0, 200_000, 10).unwrap_err();
        assert_eq!(e.limit, ReadLimit::LabelNames);
        // Under the limits: complete answers.
        assert_eq!(h.series(&m, 0, 200_000, 1000).unwrap().len(), 1000);
        assert_eq!(h.label_names(&[], 0, 200_000, 52).unwrap().len(), 52);
        let re = [Matcher::new(MatchOp::RegexMatch, "i", "0000.").unwrap()];
        assert_eq!(h.label_values("i", &re, 0, 200_000, 10).unwrap().len(), 10);
    }
}
