//! `wal_record`: a WAL segment or checkpoint file through the frame and record decoder
//! (`strata_ingester::wal::record::read_frame`) and, record by record, into per-tenant heads the
//! way the ingester's replay applies them at start (series keys, samples, metadata, and the
//! compressed chunks of checkpoint records), then read back through every head query.
//!
//! Each input is replayed twice: as it is, and with every frame's CRC recomputed, so that
//! mutations of a payload reach the record parser and the head instead of stopping at the
//! checksum.
//!
//! Oracle: a head written out as a checkpoint (`TenantHead::snapshot`) and replayed into a fresh
//! head holds exactly the same series and samples.

use std::collections::HashMap;
use std::sync::OnceLock;
use strata_ingester::head::TenantHead;
use strata_ingester::wal::record::{read_frame, Record, RecordWriter, HEADER_LEN};
use strata_model::{MatchOp, Matcher, TenantId};
use strata_storage::query::Series;

/// Head shards, as a small ingester would have (a power of two).
const SHARDS: usize = 4;

/// Body of the `wal_record` target: `data` is the content of a segment or checkpoint file.
pub fn run(data: &[u8]) {
    replay_and_check(data);
    let fixed = fix_checksums(data);
    if fixed != data {
        replay_and_check(&fixed);
    }
}

/// `data` with the CRC of every frame whose declared length fits recomputed.
pub fn fix_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut pos = 0usize;
    while out.len() - pos >= HEADER_LEN {
        let len = u32::from_le_bytes([out[pos], out[pos + 1], out[pos + 2], out[pos + 3]]) as usize;
        let Some(end) = (pos + HEADER_LEN)
            .checked_add(len)
            .filter(|&e| e <= out.len())
        else {
            break;
        };
        let crc = crc32fast::hash(&out[pos + HEADER_LEN..end]);
        out[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
    out
}

/// Heads rebuilt from records, by tenant, with each tenant's WAL series ids mapped to head
/// locations (what the ingester's replayer keeps).
#[derive(Default)]
struct Heads {
    tenants: HashMap<String, (TenantHead, HashMap<u32, u32>)>,
}

impl Heads {
    /// Applies one record as replay does; `false` where replay would stop with an error.
    fn apply(&mut self, rec: Record<'_>) -> bool {
        let tenant = match &rec {
            Record::Series { tenant, .. }
            | Record::Samples { tenant, .. }
            | Record::Metadata { tenant, .. }
            | Record::SeriesSnapshot { tenant, .. } => *tenant,
        };
        if !self.tenants.contains_key(tenant) {
            let Ok(id) = TenantId::new(tenant) else {
                return false;
            };
            self.tenants.insert(
                tenant.to_owned(),
                (TenantHead::new(id, SHARDS), HashMap::new()),
            );
        }
        let Some((head, ids)) = self.tenants.get_mut(tenant) else {
            return false;
        };
        match rec {
            Record::Series { id, key, .. } => {
                let Ok(loc) = head.replay_series(key) else {
                    return false;
                };
                ids.insert(id, loc);
            }
            Record::Samples { samples, .. } => {
                for (id, t, v) in samples {
                    let Some(&loc) = ids.get(&id) else {
                        return false;
                    };
                    head.replay_sample(loc, t, v);
                }
            }
            Record::Metadata { metadata, .. } => {
                head.update_metadata(&[metadata]);
            }
            Record::SeriesSnapshot {
                id, key, chunks, ..
            } => {
                let chunks = chunks.into_iter().map(Box::from).collect();
                let Ok(loc) = head.restore_series(key, chunks) else {
                    return false;
                };
                ids.insert(id, loc);
            }
        }
        true
    }

    /// Replays every record of `data` until the end or the first error.
    fn replay(data: &[u8]) -> Self {
        let mut heads = Self::default();
        let mut pos = 0usize;
        while pos < data.len() {
            let Ok((rec, n)) = read_frame(&data[pos..]) else {
                break;
            };
            if !heads.apply(rec) {
                break;
            }
            pos += n;
        }
        heads
    }
}

/// `{__name__=~".*"}`, compiled once: compiling the regex per input cost more than the rest of
/// the target together.
fn everything() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| Matcher::new(MatchOp::RegexMatch, "__name__", ".*").expect("a valid regex"))
}

/// Every series of a head with all its samples, values as bits (NaN compares equal).
fn contents(head: &TenantHead) -> Vec<(String, Vec<(i64, u64)>)> {
    let bits = |s: Series| {
        (
            s.labels.to_string(),
            s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
        )
    };
    let mut v: Vec<_> = head
        .select(std::slice::from_ref(everything()), i64::MIN, i64::MAX)
        .into_iter()
        .map(bits)
        .collect();
    // Corrupt keys can decode to equal label sets, whose relative order depends on insertion
    // order, which a checkpoint does not keep.
    v.sort();
    v
}

fn replay_and_check(data: &[u8]) {
    let heads = Heads::replay(data);
    let all = std::slice::from_ref(everything());
    for (tenant, (head, _)) in &heads.tenants {
        // Every read path of the head.
        let _ = head.stats();
        let _ = head.heap_bytes();
        let _ = head.metadata(None);
        let _ = head.label_names(&[], i64::MIN, i64::MAX, strata_storage::NO_LIMIT);
        let _ = head.label_values("job", all, i64::MIN, i64::MAX, strata_storage::NO_LIMIT);
        let _ = head.series(all, i64::MIN, i64::MAX, strata_storage::NO_LIMIT);
        let unlimited = strata_storage::ReadLimits::default();
        for s in head
            .select_chunks(all, i64::MIN, i64::MAX, &unlimited)
            .unwrap_or_default()
        {
            let mut out = Vec::new();
            s.decode_into(i64::MIN, i64::MAX, &mut out);
        }
        if let (Some(lo), Some(hi)) = (head.min_time(), head.max_time()) {
            let mid = lo / 2 + hi / 2;
            let _ = head.select(all, mid, hi);
        }
        // The checkpoint round trip.
        let want = contents(head);
        let mut w = RecordWriter::default();
        let mut checkpoint = Vec::new();
        head.snapshot(&mut w, |w| {
            checkpoint.extend_from_slice(&w.buf);
            w.clear();
            Ok(())
        })
        .expect("writing into memory cannot fail");
        let restored = Heads::replay(&checkpoint);
        let got = restored
            .tenants
            .get(tenant.as_str())
            .map(|(h, _)| contents(h))
            .unwrap_or_default();
        assert_eq!(
            got, want,
            "a checkpoint of tenant {tenant} restores differently"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::{MetricMetadata, MetricType};

    fn segment() -> Vec<u8> {
        let mut w = RecordWriter::default();
        let mut key = Vec::new();
        strata_ingester::head::key::encode_into(&[("__name__", "up"), ("job", "a")], &mut key);
        w.series("t1", 3, &key);
        let mut r = w.begin_samples("t1");
        for i in 0..300 {
            w.sample(&mut r, 3, i * 15_000, i as f64);
        }
        w.end_samples(r);
        w.metadata(
            "t1",
            &MetricMetadata {
                family: "up",
                metric_type: MetricType::Gauge,
                help: "h",
                unit: "",
            },
        );
        w.buf
    }

    #[test]
    fn a_segment_replays_and_its_checkpoint_matches() {
        let seg = segment();
        let heads = Heads::replay(&seg);
        let (head, _) = &heads.tenants["t1"];
        let c = contents(head);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].1.len(), 300);
        run(&seg);
    }

    #[test]
    fn fixing_checksums_makes_a_corrupted_payload_parse() {
        let mut seg = segment();
        // Damage the tenant name's last byte: the CRC no longer matches.
        seg[HEADER_LEN + 3] = b'2';
        assert!(read_frame(&seg).is_err());
        let fixed = fix_checksums(&seg);
        match read_frame(&fixed) {
            Ok((Record::Series { tenant, .. }, _)) => assert_eq!(tenant, "t2"),
            other => panic!("{other:?}"),
        }
        run(&seg);
    }
}
