//! WAL and checkpoint records.
//!
//! Framing: `u32 len | u32 crc32(payload) | payload`, little-endian; payload = `u8 type | body`.
//! A CRC per record lets replay find a torn final write; lengths let it skip nothing silently.

use strata_model::{MetricMetadata, MetricType};

pub const HEADER_LEN: usize = 8;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const METADATA: u8 = 3;
const SERIES_SNAPSHOT: u8 = 4;

/// A decoded record, borrowing from the segment bytes.
#[derive(Debug, PartialEq)]
pub enum Record<'a> {
    /// A new series: its id in this WAL's numbering and its canonical label key.
    Series {
        tenant: &'a str,
        id: u32,
        key: &'a [u8],
    },
    /// Samples of existing series.
    Samples {
        tenant: &'a str,
        samples: Vec<(u32, i64, f64)>,
    },
    /// Metric metadata as last received.
    Metadata {
        tenant: &'a str,
        metadata: MetricMetadata<'a>,
    },
    /// A series with all its chunks (checkpoints only).
    SeriesSnapshot {
        tenant: &'a str,
        id: u32,
        key: &'a [u8],
        chunks: Vec<&'a [u8]>,
    },
}

/// Builds framed records into a buffer.
#[derive(Debug, Default)]
pub struct RecordWriter {
    pub buf: Vec<u8>,
    start: usize,
}

impl RecordWriter {
    fn begin(&mut self, ty: u8) {
        self.start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER_LEN]);
        self.buf.push(ty);
    }

    fn finish(&mut self) {
        let payload = &self.buf[self.start + HEADER_LEN..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[self.start + 4..self.start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn series(&mut self, tenant: &str, id: u32, key: &[u8]) {
        self.begin(SERIES);
        put_bytes(&mut self.buf, tenant.as_bytes());
        put_uvarint(&mut self.buf, u64::from(id));
        put_bytes(&mut self.buf, key);
        self.finish();
    }

    /// Starts a samples record; add samples with [`RecordWriter::sample`], then call
    /// [`RecordWriter::end_samples`]. Returns false (and writes nothing) for zero samples.
    pub fn begin_samples(&mut self, tenant: &str) -> SamplesRecord {
        self.begin(SAMPLES);
        put_bytes(&mut self.buf, tenant.as_bytes());
        SamplesRecord {
            start: self.start,
            count: 0,
        }
    }

    #[inline]
    pub fn sample(&mut self, rec: &mut SamplesRecord, id: u32, t: i64, v: f64) {
        put_uvarint(&mut self.buf, u64::from(id));
        put_uvarint(&mut self.buf, zigzag(t));
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        rec.count += 1;
    }

    /// Closes a samples record, dropping it if it holds no sample.
    pub fn end_samples(&mut self, rec: SamplesRecord) {
        if rec.count == 0 {
            self.buf.truncate(rec.start);
            return;
        }
        self.start = rec.start;
        self.finish();
    }

    pub fn metadata(&mut self, tenant: &str, md: &MetricMetadata<'_>) {
        self.begin(METADATA);
        put_bytes(&mut self.buf, tenant.as_bytes());
        put_bytes(&mut self.buf, md.family.as_bytes());
        self.buf.push(metric_type_to_u8(md.metric_type));
        put_bytes(&mut self.buf, md.help.as_bytes());
        put_bytes(&mut self.buf, md.unit.as_bytes());
        self.finish();
    }

    pub fn series_snapshot<'c>(
        &mut self,
        tenant: &str,
        id: u32,
        key: &[u8],
        chunks: impl Iterator<Item = &'c [u8]>,
    ) {
        self.begin(SERIES_SNAPSHOT);
        put_bytes(&mut self.buf, tenant.as_bytes());
        put_uvarint(&mut self.buf, u64::from(id));
        put_bytes(&mut self.buf, key);
        for c in chunks {
            put_bytes(&mut self.buf, c);
        }
        self.finish();
    }
}

/// An open samples record.
#[derive(Debug)]
pub struct SamplesRecord {
    start: usize,
    count: u32,
}

fn metric_type_to_u8(t: MetricType) -> u8 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[inline]
fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Why a byte range is not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes remain than the header or the declared length needs.
    Truncated,
    /// The checksum does not match.
    Checksum,
    /// The checksum matches but the payload does not parse (a bug or a foreign file).
    Malformed,
}

/// Reads the framed record at the start of `buf`: `(record, bytes consumed)`.
pub fn read_frame(buf: &[u8]) -> Result<(Record<'_>, usize), FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let end = HEADER_LEN.checked_add(len).ok_or(FrameError::Truncated)?;
    if buf.len() < end {
        return Err(FrameError::Truncated);
    }
    let payload = &buf[HEADER_LEN..end];
    if crc32fast::hash(payload) != crc {
        return Err(FrameError::Checksum);
    }
    let rec = parse_payload(payload).ok_or(FrameError::Malformed)?;
    Ok((rec, end))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        if self.0.len() < n {
            return None;
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn f64(&mut self) -> Option<f64> {
        if self.0.len() < 8 {
            return None;
        }
        let (b, rest) = self.0.split_at(8);
        self.0 = rest;
        Some(f64::from_bits(u64::from_le_bytes(b.try_into().ok()?)))
    }
}

fn parse_payload(p: &[u8]) -> Option<Record<'_>> {
    let mut c = Cursor(p);
    let ty = c.u8()?;
    let tenant = c.str()?;
    let rec = match ty {
        SERIES => {
            let id = u32::try_from(c.uvarint()?).ok()?;
            let key = c.bytes()?;
            Record::Series { tenant, id, key }
        }
        SAMPLES => {
            let mut samples = Vec::new();
            while !c.0.is_empty() {
                let id = u32::try_from(c.uvarint()?).ok()?;
                let t = unzigzag(c.uvarint()?);
                let v = c.f64()?;
                samples.push((id, t, v));
            }
            Record::Samples { tenant, samples }
        }
        METADATA => {
            let family = c.str()?;
            let metric_type = MetricType::from_wire(u64::from(c.u8()?));
            let help = c.str()?;
            let unit = c.str()?;
            Record::Metadata {
                tenant,
                metadata: MetricMetadata {
                    family,
                    metric_type,
                    help,
                    unit,
                },
            }
        }
        SERIES_SNAPSHOT => {
            let id = u32::try_from(c.uvarint()?).ok()?;
            let key = c.bytes()?;
            let mut chunks = Vec::new();
            while !c.0.is_empty() {
                chunks.push(c.bytes()?);
            }
            Record::SeriesSnapshot {
                tenant,
                id,
                key,
                chunks,
            }
        }
        _ => return None,
    };
    if !c.0.is_empty() && !matches!(rec, Record::Samples { .. } | Record::SeriesSnapshot { .. }) {
        return None;
    }
    Some(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut w = RecordWriter::default();
        w.series("t1", 7, b"\x01a\x01b");
        let mut r = w.begin_samples("t1");
        w.sample(&mut r, 7, -5, f64::NAN);
        w.sample(&mut r, 300, i64::MAX, 1.5);
        w.end_samples(r);
        let empty = w.begin_samples("t1");
        w.end_samples(empty);
        w.metadata(
            "t1",
            &MetricMetadata {
                family: "up",
                metric_type: MetricType::Gauge,
                help: "h",
                unit: "",
            },
        );
        w.series_snapshot("t1", 7, b"k", [&b"c1"[..], &b"c2"[..]].into_iter());

        let mut buf = &w.buf[..];
        let mut recs = Vec::new();
        while !buf.is_empty() {
            let (rec, n) = read_frame(buf).unwrap();
            recs.push(rec);
            buf = &buf[n..];
        }
        assert_eq!(recs.len(), 4);
        assert_eq!(
            recs[0],
            Record::Series {
                tenant: "t1",
                id: 7,
                key: b"\x01a\x01b"
            }
        );
        match &recs[1] {
            Record::Samples { samples, .. } => {
                assert_eq!(samples.len(), 2);
                assert_eq!((samples[0].0, samples[0].1), (7, -5));
                assert!(samples[0].2.is_nan());
                assert_eq!(samples[1], (300, i64::MAX, 1.5));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(recs[3], Record::SeriesSnapshot { ref chunks, .. } if chunks.len() == 2));
    }

    #[test]
    fn torn_and_corrupt_frames_are_detected() {
        let mut w = RecordWriter::default();
        w.series("t", 1, b"key");
        let full = w.buf.clone();
        for cut in 0..full.len() {
            assert_eq!(
                read_frame(&full[..cut]).unwrap_err(),
                FrameError::Truncated,
                "cut {cut}"
            );
        }
        let mut bad = full.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(read_frame(&bad).unwrap_err(), FrameError::Checksum);
    }
}
