//! The alert model and the alert store (upstream's `types.Alert` and `provider/mem`).

use crate::labels::{fingerprint, LabelSet};
use crate::time::{is_zero, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Labels and annotations are shared (`Arc`) between the versions of an alert: a resend that
/// changes only times (what Prometheus sends every minute) allocates nothing that lasts, and a
/// snapshot holding the previous versions costs their few times, not their labels again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: Arc<LabelSet>,
    pub annotations: Arc<LabelSet>,
    pub starts_at: Timestamp,
    /// Go zero time when unset.
    pub ends_at: Timestamp,
    pub generator_url: String,
    pub updated_at: Timestamp,
    /// `ends_at` was set by the server from `resolve_timeout`, not by the client.
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Upstream `ResolvedAt`: an end time is set and not after `now`.
    pub fn resolved_at(&self, now: Timestamp) -> bool {
        !is_zero(&self.ends_at) && self.ends_at <= now
    }

    /// Upstream `Alert.Merge`: combines two versions of the same alert whose activity ranges
    /// overlap; `self` is the stored one.
    pub fn merge(&self, o: &Alert, now: Timestamp) -> Alert {
        if o.updated_at < self.updated_at {
            return o.merge(self, now);
        }
        let mut res = o.clone();
        if self.starts_at < o.starts_at {
            res.starts_at = self.starts_at;
        }
        if o.resolved_at(now) {
            // The latest explicit resolved timestamp wins if both are resolved.
            if self.resolved_at(now) && self.ends_at > o.ends_at {
                res.ends_at = self.ends_at;
            }
        } else if self.ends_at > o.ends_at && !self.timeout {
            // A non-timeout end always rules if it is the latest.
            res.ends_at = self.ends_at;
        }
        res
    }
}

/// Every alert the API accepted, by fingerprint.
///
/// Alerts are shared (`Arc`) with the aggregation groups, the inhibitor and snapshots, like
/// upstream's pointers: one copy of each alert however many routes it takes.
#[derive(Debug, Default)]
pub struct AlertStore {
    alerts: HashMap<u64, Arc<Alert>>,
}

impl AlertStore {
    /// Stores `alert`, merging it with the stored version when their activity ranges overlap
    /// (upstream's exact condition); returns what is now stored.
    pub fn put(&mut self, mut alert: Alert, now: Timestamp) -> Arc<Alert> {
        let fp = alert.fingerprint();
        if let Some(old) = self.alerts.get(&fp) {
            if old.labels == alert.labels {
                alert.labels = Arc::clone(&old.labels);
            }
            if old.annotations == alert.annotations {
                alert.annotations = Arc::clone(&old.annotations);
            }
        }
        let stored = match self.alerts.get(&fp) {
            Some(old)
                if (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                    || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at) =>
            {
                old.merge(&alert, now)
            }
            _ => alert,
        };
        let stored = Arc::new(stored);
        self.alerts.insert(fp, Arc::clone(&stored));
        stored
    }

    pub fn get(&self, fp: u64) -> Option<&Arc<Alert>> {
        self.alerts.get(&fp)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Arc<Alert>)> {
        self.alerts.iter()
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Drops resolved alerts (upstream runs this every `--alerts.gc-interval`).
    pub fn gc(&mut self, now: Timestamp) -> usize {
        let before = self.alerts.len();
        self.alerts.retain(|_, a| !a.resolved_at(now));
        before - self.alerts.len()
    }
}

/// Upstream's `AlertSlice` order, used for notifications: by `job`, then `instance` (an alert
/// with the label sorts first), then by label set (`LabelSet.Before`).
pub fn alert_order(a: &LabelSet, b: &LabelSet) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    label_set_before(a, b)
}

/// prometheus/common `LabelSet.Before` as an ordering: fewer labels first, then the first
/// differing label in the union of names (a missing name sorts first).
pub fn label_set_before(a: &LabelSet, b: &LabelSet) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, zero_time};

    fn t(s: &str) -> Timestamp {
        parse_rfc3339(s).unwrap()
    }

    fn alert(start: &str, end: Option<&str>, updated: &str) -> Alert {
        Alert {
            labels: Arc::new(LabelSet::from([("alertname".to_string(), "A".to_string())])),
            annotations: Arc::default(),
            starts_at: t(start),
            ends_at: end.map(t).unwrap_or_else(zero_time),
            generator_url: String::new(),
            updated_at: t(updated),
            timeout: false,
        }
    }

    #[test]
    fn merge_keeps_earliest_start_and_latest_annotations() {
        let now = t("2026-01-01T00:10:00Z");
        let mut store = AlertStore::default();
        store.put(
            alert(
                "2026-01-01T00:00:00Z",
                Some("2026-01-01T00:20:00Z"),
                "2026-01-01T00:01:00Z",
            ),
            now,
        );
        let mut newer = alert(
            "2026-01-01T00:05:00Z",
            Some("2026-01-01T00:30:00Z"),
            "2026-01-01T00:02:00Z",
        );
        Arc::make_mut(&mut newer.annotations).insert("s".into(), "new".into());
        let got = store.put(newer, now);
        assert_eq!(got.starts_at, t("2026-01-01T00:00:00Z"));
        assert_eq!(got.ends_at, t("2026-01-01T00:30:00Z"));
        assert_eq!(got.annotations["s"], "new");
        // A re-fire after resolution does not overlap: replaced.
        let later = alert(
            "2026-01-01T01:00:00Z",
            Some("2026-01-01T01:30:00Z"),
            "2026-01-01T01:00:00Z",
        );
        let got = store.put(later, now);
        assert_eq!(got.starts_at, t("2026-01-01T01:00:00Z"));
    }

    #[test]
    fn resends_share_labels_and_unchanged_annotations() {
        let now = t("2026-01-01T00:10:00Z");
        let mut store = AlertStore::default();
        let first = store.put(
            alert("2026-01-01T00:00:00Z", None, "2026-01-01T00:01:00Z"),
            now,
        );
        let again = store.put(
            alert("2026-01-01T00:00:00Z", None, "2026-01-01T00:02:00Z"),
            now,
        );
        assert!(Arc::ptr_eq(&first.labels, &again.labels));
        assert!(Arc::ptr_eq(&first.annotations, &again.annotations));
        assert_eq!(again.updated_at, t("2026-01-01T00:02:00Z"));
        let mut changed = alert("2026-01-01T00:00:00Z", None, "2026-01-01T00:03:00Z");
        Arc::make_mut(&mut changed.annotations).insert("summary".into(), "new".into());
        let third = store.put(changed, now);
        assert!(Arc::ptr_eq(&first.labels, &third.labels));
        assert!(!Arc::ptr_eq(&first.annotations, &third.annotations));
        assert_eq!(third.annotations["summary"], "new");
        assert_eq!(
            store.get(first.fingerprint()).unwrap().annotations["summary"],
            "new"
        );
    }

    #[test]
    fn timeout_end_does_not_override_explicit() {
        let now = t("2026-01-01T00:10:00Z");
        let mut stored = alert(
            "2026-01-01T00:00:00Z",
            Some("2026-01-01T00:40:00Z"),
            "2026-01-01T00:01:00Z",
        );
        stored.timeout = true;
        let newer = alert(
            "2026-01-01T00:00:00Z",
            Some("2026-01-01T00:30:00Z"),
            "2026-01-01T00:02:00Z",
        );
        assert_eq!(stored.merge(&newer, now).ends_at, t("2026-01-01T00:30:00Z"));
        stored.timeout = false;
        assert_eq!(stored.merge(&newer, now).ends_at, t("2026-01-01T00:40:00Z"));
    }

    #[test]
    fn notification_order() {
        let l = |p: &[(&str, &str)]| -> LabelSet {
            p.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let mut v = [
            l(&[("alertname", "B"), ("cluster", "c3")]),
            l(&[("alertname", "A")]),
            l(&[("alertname", "B"), ("cluster", "c2")]),
            l(&[("alertname", "Z"), ("job", "j")]),
        ];
        v.sort_by(alert_order);
        assert_eq!(v[0]["alertname"], "Z");
        assert_eq!(v[1]["alertname"], "A");
        assert_eq!(v[2]["cluster"], "c2");
    }
}
