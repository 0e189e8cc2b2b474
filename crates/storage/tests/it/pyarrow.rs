//! pyarrow reads `series.parquet` and `samples.parquet` without Strata and must find exactly the
//! stored samples, bit for bit, in the documented sort order (format v3: time bucket after time
//! bucket as `meta.json` lists them, each sorted by series id then time, in its own row groups).
//! DuckDB, another Parquet reader, answers SQL over the same files (a join of the two files by
//! series id, the label map and the bucket-count list) with the stored samples' counts and
//! ranges per series.

use std::process::Command;
use std::time::Duration;
use strata_model::{Labels, Sample, TenantId, STALE_NAN};
use strata_storage::block::{synth, BlockWriter, WriterOptions, SAMPLES_FILE, SERIES_FILE};

const CHECK: &str = r#"
import json, struct, sys
import pyarrow.parquet as pq

block, expected_path = sys.argv[1], sys.argv[2]
expected = json.load(open(expected_path))
series = pq.read_table(block + "/series.parquet")
samples = pq.read_table(block + "/samples.parquet")
assert series.num_rows == len(expected), (series.num_rows, len(expected))

cols = series.column_names
ids = series.column("series_id").to_pylist()
assert ids == list(range(len(ids))), "series_id is the row index"
label_cols = [c for c in cols if c == "__name__" or c.startswith("l_")]
names = {c: series.column(c).to_pylist() for c in label_cols}
rest = series.column("labels").to_pylist()
labels = []
for i in range(series.num_rows):
    d = {}
    for c in label_cols:
        v = names[c][i]
        if v is not None:
            d["__name__" if c == "__name__" else c[2:]] = v
    for k, v in rest[i]:
        d[k] = v
    labels.append(d)

# Sorted by metric name, then by the label set.
def key(d):
    return (d.get("__name__", ""), sorted(d.items()))
assert [key(d) for d in labels] == sorted(key(d) for d in labels), "series sort order"

sid = samples.column("series_id").to_pylist()
ts = samples.column("timestamp").to_pylist()
fl = samples.column("value").to_pylist()
it = samples.column("value_int").to_pylist() if "value_int" in samples.column_names else [None] * len(fl)
pairs = list(zip(sid, ts))
assert len(set(pairs)) == len(pairs), "no duplicate samples"

# Format v3: time buckets in meta.json order; inside each, sorted by (series_id, timestamp);
# bucket_num_samples gives each series' rows per bucket; no row group spans two buckets.
meta = json.load(open(block + "/meta.json"))
assert meta["schemaVersion"] == 3, meta["schemaVersion"]
buckets = meta["timeBuckets"]
counts = series.column("bucket_num_samples").to_pylist()
row = 0
for b, bk in enumerate(buckets):
    rows = pairs[row:row + bk["numSamples"]]
    assert rows == sorted(rows), ("bucket not sorted by (series_id, timestamp)", b)
    assert all(bk["minTime"] <= t <= bk["maxTime"] for _, t in rows), ("sample outside its bucket", b)
    per_series = {}
    for s, _ in rows:
        per_series[s] = per_series.get(s, 0) + 1
    assert all(counts[s][b] == per_series.get(s, 0) for s in range(len(ids))), ("bucket_num_samples", b)
    row += bk["numSamples"]
assert row == samples.num_rows, (row, samples.num_rows)
if len(buckets) > 1:
    md = pq.ParquetFile(block + "/samples.parquet").metadata
    starts, r = set(), 0
    for b in buckets:
        starts.add(r)
        r += b["numSamples"]
    r = 0
    for g in range(md.num_row_groups):
        n = md.row_group(g).num_rows
        inside = [x for x in starts if r < x < r + n]
        assert not inside, ("row group spans a bucket boundary", g)
        r += n
print("buckets", len(buckets), file=sys.stderr)

# Format v2: value_int rows are decimal-scaled per series (value_scale in the series file).
scale = series.column("value_scale").to_pylist() if "value_scale" in cols else [0] * len(ids)
got = {}
for s, t, f, i in zip(sid, ts, fl, it):
    v = f if f is not None else float(i) / (10.0 ** scale[s])
    bits = struct.unpack("<Q", struct.pack("<d", v))[0]
    got.setdefault(s, []).append([t, "%016x" % bits])

want = {json.dumps(sorted(e["labels"].items())): e["samples"] for e in expected}
total = 0
for s, d in enumerate(labels):
    k = json.dumps(sorted(d.items()))
    assert k in want, ("unexpected series", d)
    assert got.get(s, []) == want[k], ("samples differ", d)
    total += len(want[k])
assert samples.num_rows == total, (samples.num_rows, total)
print("ok", series.num_rows, "series", samples.num_rows, "samples")
"#;

const DUCKDB_CHECK: &str = r#"
import json, sys
import duckdb

block, expected_path = sys.argv[1], sys.argv[2]
expected = json.load(open(expected_path))
con = duckdb.connect()
series = f"read_parquet('{block}/series.parquet')"
samples = f"read_parquet('{block}/samples.parquet')"
# Per series: rows, first and last timestamp, through a join on series_id.
got = con.execute(f"""
    select s.series_id, count(*), min(x.timestamp), max(x.timestamp),
           sum(list_sum(s.bucket_num_samples)) / count(*)
    from {series} s join {samples} x on x.series_id = s.series_id
    group by s.series_id order by s.series_id""").fetchall()
want = sorted((len(e["samples"]), e["samples"][0][0], e["samples"][-1][0])
              for e in expected if e["samples"])
assert sorted((n, lo, hi) for _, n, lo, hi, _ in got) == want, ("per-series counts", got[:3], want[:3])
# bucket_num_samples adds up to each series' rows.
assert all(n == b for _, n, _, _, b in got), "bucket_num_samples"
# The label map holds the labels without a column of their own.
rare = con.execute(f"select count(*) from {series} where map_contains(labels, 'rare_label')").fetchone()[0]
assert rare == sum(1 for e in expected if "rare_label" in e["labels"]), rare
total = con.execute(f"select count(*) from {samples}").fetchone()[0]
assert total == sum(len(e["samples"]) for e in expected), total
print("ok", len(got), "series", total, "samples")
"#;

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success())
}

fn run_check(block_dir: &std::path::Path, expected: &std::path::Path) {
    run_script("pyarrow", CHECK, block_dir, expected);
    run_script("duckdb", DUCKDB_CHECK, block_dir, expected);
}

fn run_script(what: &str, script: &str, block_dir: &std::path::Path, expected: &std::path::Path) {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(block_dir)
        .arg(expected)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    // Bounded wait: the check takes a second or two; a hung interpreter must not hang CI.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait python3").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} check did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("python3 output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("ok "), "{stdout}");
}

fn expected_json(input: &[(Labels, Vec<Sample>)]) -> String {
    let v: Vec<serde_json::Value> = input
        .iter()
        .map(|(l, s)| {
            let labels: serde_json::Map<String, serde_json::Value> = l
                .iter()
                .map(|x| (x.name.clone(), serde_json::Value::String(x.value.clone())))
                .collect();
            let samples: Vec<serde_json::Value> = s
                .iter()
                .map(|x| serde_json::json!([x.t, format!("{:016x}", x.v.to_bits())]))
                .collect();
            serde_json::json!({"labels": labels, "samples": samples})
        })
        .collect();
    serde_json::to_string(&v).unwrap()
}

#[tokio::test]
async fn pyarrow_reads_exactly_the_stored_samples() {
    for module in ["pyarrow", "duckdb"] {
        assert!(
            python_has(module),
            "python3 with {module} is required for this test: pip install {module}"
        );
    }
    let mut input = synth::node_exporter_like(3, 1_700_000_000_000, 2 * 3_600_000, 7);
    // Special values, including NaN payloads, -0.0 and a rare label that lands in the map.
    let special = [
        STALE_NAN,
        f64::NAN,
        f64::from_bits(0x7ff8_dead_beef_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.5,
        9_007_199_254_740_993.0,
        -12.0,
    ];
    input.push((
        Labels::from_pairs([("__name__", "special"), ("rare_label", "yes")]),
        special
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(1_700_000_000_000 + i as i64 * 1000, v))
            .collect(),
    ));
    let tenant = TenantId::new("tenant-a").unwrap();
    // Several 30-minute buckets with split integers; the default 2 h buckets without.
    for (split, bucket_ms) in [(true, Some(1_800_000)), (false, None)] {
        let opts = WriterOptions {
            split_integers: split,
            time_bucket_ms: bucket_ms,
            ..Default::default()
        };
        let mut w = BlockWriter::new(
            tenant.clone(),
            1_700_000_000_000,
            1_700_000_000_000 + 2 * 3_600_000,
            opts,
        )
        .unwrap();
        for (l, s) in &input {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = strata_storage::bucket::BucketConfig::default();
        cfg.filesystem.directory = dir.path().to_path_buf();
        let bucket = strata_storage::bucket::Bucket::from_config(&cfg).unwrap();
        files.upload(&bucket).await.unwrap();
        let block_dir = dir
            .path()
            .join(tenant.as_str())
            .join(files.meta.ulid.to_string());
        assert!(block_dir.join(SERIES_FILE).exists());
        assert!(block_dir.join(SAMPLES_FILE).exists());
        let expected = dir.path().join("expected.json");
        std::fs::write(&expected, expected_json(&input)).unwrap();
        run_check(&block_dir, &expected);
    }
}
