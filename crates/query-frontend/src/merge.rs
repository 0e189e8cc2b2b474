//! Joins the answers of a range query's pieces into one Prometheus matrix answer: series with
//! the same labels have their points concatenated in piece order (pieces are disjoint and in
//! time order), series sorted by labels as Prometheus sorts a matrix, warnings kept once.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A series' labels as a sortable key: pairs sorted by name.
pub(crate) type Key = Vec<(String, String)>;

pub(crate) fn key_of(metric: &Map<String, Value>) -> Key {
    let mut k: Key = metric
        .iter()
        .map(|(n, v)| (n.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    k.sort();
    k
}

/// The merged body, or a reason the pieces are not matrix answers.
pub fn merge_matrices(pieces: &[Value]) -> Result<Value, String> {
    let mut series: BTreeMap<Key, (Value, Vec<Value>, Vec<Value>)> = BTreeMap::new();
    let mut warnings: Vec<Value> = Vec::new();
    let mut infos: Vec<Value> = Vec::new();
    for p in pieces {
        if p["status"] != "success" {
            return Err(format!("status {}", p["status"]));
        }
        if p["data"]["resultType"] != "matrix" {
            return Err(format!("resultType {}", p["data"]["resultType"]));
        }
        let result = p["data"]["result"]
            .as_array()
            .ok_or("no data.result array")?;
        for s in result {
            let metric = s["metric"].as_object().ok_or("a series without metric")?;
            let e = series
                .entry(key_of(metric))
                .or_insert_with(|| (s["metric"].clone(), Vec::new(), Vec::new()));
            if let Some(v) = s["values"].as_array() {
                e.1.extend(v.iter().cloned());
            }
            if let Some(h) = s["histograms"].as_array() {
                e.2.extend(h.iter().cloned());
            }
        }
        for (field, into) in [("warnings", &mut warnings), ("infos", &mut infos)] {
            for w in p[field].as_array().into_iter().flatten() {
                if !into.contains(w) {
                    into.push(w.clone());
                }
            }
        }
    }
    let result: Vec<Value> = series
        .into_values()
        .map(|(metric, values, histograms)| {
            let mut s = Map::new();
            s.insert("metric".into(), metric);
            if !values.is_empty() {
                s.insert("values".into(), Value::Array(values));
            }
            if !histograms.is_empty() {
                s.insert("histograms".into(), Value::Array(histograms));
            }
            Value::Object(s)
        })
        .collect();
    let mut out = serde_json::json!({
        "status": "success",
        "data": {"resultType": "matrix", "result": result},
    });
    if !warnings.is_empty() {
        out["warnings"] = Value::Array(warnings);
    }
    if !infos.is_empty() {
        out["infos"] = Value::Array(infos);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn series_are_joined_in_piece_order_and_sorted_by_labels() {
        let a = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "b"}, "values": [[1, "1"]]},
            {"metric": {"job": "a"}, "values": [[1, "2"], [2, "3"]]},
        ]}});
        let b = json!({"status": "success", "warnings": ["w"], "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "a"}, "values": [[3, "4"]]},
            {"metric": {"job": "c"}, "values": [[3, "5"]]},
        ]}});
        let m = merge_matrices(&[a, b.clone(), json!({"status": "success", "warnings": ["w"], "data": {"resultType": "matrix", "result": []}})]).unwrap();
        assert_eq!(
            m,
            json!({"status": "success", "warnings": ["w"], "data": {"resultType": "matrix", "result": [
                {"metric": {"job": "a"}, "values": [[1, "2"], [2, "3"], [3, "4"]]},
                {"metric": {"job": "b"}, "values": [[1, "1"]]},
                {"metric": {"job": "c"}, "values": [[3, "5"]]},
            ]}})
        );
        let e = merge_matrices(&[json!({"status": "error"})]).unwrap_err();
        assert!(e.contains("status"), "{e}");
    }
}
