//! Inhibition (upstream `inhibit.Inhibitor`): a target alert is muted while a firing source alert
//! of the same rule has equal values for the rule's `equal` labels.

use crate::alert::Alert;
use crate::amconfig::InhibitRule;
use crate::labels::LabelSet;
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
    /// Per rule: the alerts matching its source side, by fingerprint.
    sources: Vec<HashMap<u64, Arc<Alert>>>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Self {
        let sources = vec![HashMap::new(); rules.len()];
        Self { rules, sources }
    }

    /// Feeds an alert as it is stored.
    pub fn observe(&mut self, alert: &Arc<Alert>) {
        for (rule, cache) in self.rules.iter().zip(self.sources.iter_mut()) {
            if rule.source.matches(&alert.labels) {
                cache.insert(alert.fingerprint(), Arc::clone(alert));
            }
        }
    }

    /// The fingerprint of an alert inhibiting `labels`, if any.
    pub fn inhibited_by(&self, labels: &LabelSet, now: Timestamp) -> Option<u64> {
        for (rule, cache) in self.rules.iter().zip(self.sources.iter()) {
            if !rule.target.matches(labels) {
                continue;
            }
            // An alert matching both sides cannot be inhibited by another such alert.
            let two_sided = rule.source.matches(labels);
            let found = cache.iter().find(|(_, a)| {
                !a.resolved_at(now)
                    && rule.equal.iter().all(|n| {
                        a.labels.get(n).map(String::as_str).unwrap_or("")
                            == labels.get(n).map(String::as_str).unwrap_or("")
                    })
                    && !(two_sided && rule.target.matches(&a.labels))
            });
            if let Some((fp, _)) = found {
                return Some(*fp);
            }
        }
        None
    }

    pub fn gc(&mut self, now: Timestamp) {
        for cache in &mut self.sources {
            cache.retain(|_, a| !a.resolved_at(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amconfig::AmConfig;
    use crate::time::{parse_rfc3339, zero_time};

    fn alert(pairs: &[(&str, &str)], ends: Option<&str>) -> Arc<Alert> {
        Arc::new(Alert {
            labels: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<LabelSet>()
                .into(),
            annotations: Arc::default(),
            starts_at: parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            ends_at: ends
                .map(|e| parse_rfc3339(e).unwrap())
                .unwrap_or_else(zero_time),
            generator_url: String::new(),
            updated_at: parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            timeout: false,
        })
    }

    #[test]
    fn inhibition_with_equal_and_two_sided() {
        let c = AmConfig::load(
            "route: {receiver: a}\nreceivers: [{name: a}]\ninhibit_rules:\n- source_matchers: ['severity=\"critical\"']\n  target_matchers: ['severity=~\"warning|critical\"']\n  equal: [cluster]\n- source_match: {alertname: Both}\n  target_match_re: {alertname: 'Both|Other'}\n",
        )
        .unwrap();
        let mut ih = Inhibitor::new(c.inhibit_rules.clone());
        let now = parse_rfc3339("2026-01-01T00:01:00Z").unwrap();
        let src = alert(
            &[
                ("alertname", "NodeDown"),
                ("cluster", "c1"),
                ("severity", "critical"),
            ],
            None,
        );
        ih.observe(&src);
        let warn_c1 = alert(
            &[
                ("alertname", "X"),
                ("cluster", "c1"),
                ("severity", "warning"),
            ],
            None,
        );
        let warn_c2 = alert(
            &[
                ("alertname", "X"),
                ("cluster", "c2"),
                ("severity", "warning"),
            ],
            None,
        );
        assert_eq!(
            ih.inhibited_by(&warn_c1.labels, now),
            Some(src.fingerprint())
        );
        assert_eq!(ih.inhibited_by(&warn_c2.labels, now), None);
        // A critical alert matches both sides: another critical does not inhibit it, and it
        // does not inhibit itself.
        let crit = alert(
            &[
                ("alertname", "Y"),
                ("cluster", "c1"),
                ("severity", "critical"),
            ],
            None,
        );
        ih.observe(&crit);
        assert_eq!(ih.inhibited_by(&crit.labels, now), None);
        assert_eq!(ih.inhibited_by(&src.labels, now), None);
        // Resolved sources no longer inhibit.
        ih.observe(&alert(
            &[
                ("alertname", "NodeDown"),
                ("cluster", "c1"),
                ("severity", "critical"),
            ],
            Some("2026-01-01T00:00:30Z"),
        ));
        ih.observe(&alert(
            &[
                ("alertname", "Y"),
                ("cluster", "c1"),
                ("severity", "critical"),
            ],
            Some("2026-01-01T00:00:30Z"),
        ));
        assert_eq!(ih.inhibited_by(&warn_c1.labels, now), None);
        // Missing equal labels compare as empty.
        let both = alert(&[("alertname", "Both")], None);
        ih.observe(&both);
        assert_eq!(
            ih.inhibited_by(&alert(&[("alertname", "Other")], None).labels, now),
            Some(both.fingerprint())
        );
        ih.gc(now);
    }
}
