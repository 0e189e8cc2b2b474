//! Silences: create, update in place or replace, expire, match, garbage-collect (upstream's
//! `silence` package semantics).

use crate::labels::{is_valid_label_name, LabelSet};
use crate::matcher::{MatchOp, Matcher, MatcherError, Matchers};
use crate::time::{add, is_zero, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Expired,
    Active,
    Pending,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Expired => "expired",
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
        }
    }
}

impl Silence {
    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SilenceError {
    #[error("silence not found")]
    NotFound,
    #[error("silence invalid: {0}")]
    Invalid(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
}

fn compile(ms: &[SilenceMatcher]) -> Result<Matchers, MatcherError> {
    ms.iter()
        .map(|m| {
            Matcher::new(
                MatchOp::from_flags(m.is_regex, m.is_equal),
                &m.name,
                &m.value,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Matchers)
}

fn validate(s: &Silence) -> Result<Matchers, SilenceError> {
    let inv = |m: String| SilenceError::Invalid(m);
    if s.id.is_empty() {
        return Err(inv("ID missing".into()));
    }
    if s.matchers.is_empty() {
        return Err(inv("at least one matcher required".into()));
    }
    for m in &s.matchers {
        if !is_valid_label_name(&m.name) {
            return Err(inv(format!(
                "invalid label matcher: invalid label name {:?}",
                m.name
            )));
        }
    }
    let compiled = compile(&s.matchers).map_err(|e| inv(format!("invalid label matcher: {e}")))?;
    if compiled.0.iter().all(|m| m.matches("")) {
        return Err(inv(
            "at least one matcher must not match the empty string".into()
        ));
    }
    if is_zero(&s.starts_at) {
        return Err(inv("invalid zero start timestamp".into()));
    }
    if is_zero(&s.ends_at) {
        return Err(inv("invalid zero end timestamp".into()));
    }
    if s.ends_at < s.starts_at {
        return Err(inv("end time must not be before start time".into()));
    }
    Ok(compiled)
}

#[derive(Debug, Clone)]
struct Entry {
    silence: Silence,
    matchers: Matchers,
}

/// All silences, keyed by id.
#[derive(Debug)]
pub struct Silences {
    entries: HashMap<String, Entry>,
    /// How long expired silences are kept (`--data.retention`, 120h upstream).
    pub retention: Duration,
}

impl Default for Silences {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            retention: Duration::from_secs(120 * 3600),
        }
    }
}

/// Whether `a` wins over `b` (same id) under last-writer-wins.
fn newer(a: &Silence, b: &Silence) -> bool {
    match a.updated_at.cmp(&b.updated_at) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        // Serializing plain data cannot fail; an error would compare as equal and keep `b`.
        std::cmp::Ordering::Equal => {
            serde_json::to_vec(a).unwrap_or_default() > serde_json::to_vec(b).unwrap_or_default()
        }
    }
}

fn can_update(prev: &Silence, new: &Silence, now: Timestamp) -> bool {
    if prev.matchers != new.matchers {
        return false;
    }
    match prev.state(now) {
        SilenceState::Active => new.starts_at == prev.starts_at && new.ends_at >= now,
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

impl Silences {
    /// Creates (empty id) or updates a silence; returns its id. An update that cannot be done in
    /// place expires the old silence and creates a new one with a new id, like upstream. Nothing
    /// changes when an error is returned.
    pub fn set(&mut self, mut s: Silence, now: Timestamp) -> Result<String, SilenceError> {
        let prev = if s.id.is_empty() {
            None
        } else {
            Some(
                self.entries
                    .get(&s.id)
                    .ok_or(SilenceError::NotFound)?
                    .silence
                    .clone(),
            )
        };
        if let Some(prev) = &prev {
            if can_update(prev, &s, now) {
                s.updated_at = now;
                let matchers = validate(&s)?;
                self.entries.insert(
                    s.id.clone(),
                    Entry {
                        silence: s.clone(),
                        matchers,
                    },
                );
                return Ok(s.id);
            }
        }
        s.id = uuid::Uuid::new_v4().to_string();
        if s.starts_at < now {
            s.starts_at = now;
        }
        s.updated_at = now;
        let matchers = validate(&s)?;
        if let Some(prev) = prev {
            if prev.state(now) != SilenceState::Expired {
                self.expire(&prev.id, now)?;
            }
        }
        self.entries.insert(
            s.id.clone(),
            Entry {
                silence: s.clone(),
                matchers,
            },
        );
        Ok(s.id)
    }

    /// Expires a silence: an active one ends now, a pending one starts and ends now.
    pub fn expire(&mut self, id: &str, now: Timestamp) -> Result<(), SilenceError> {
        let e = self.entries.get_mut(id).ok_or(SilenceError::NotFound)?;
        match e.silence.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Active => e.silence.ends_at = now,
            SilenceState::Pending => {
                e.silence.starts_at = now;
                e.silence.ends_at = now;
            }
        }
        e.silence.updated_at = now;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.entries.get(id).map(|e| &e.silence)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.entries.values().map(|e| &e.silence)
    }

    /// Ids of the active silences matching `labels`, sorted.
    pub fn mutes(&self, labels: &LabelSet, now: Timestamp) -> Vec<String> {
        let mut ids: Vec<String> = self
            .entries
            .values()
            .filter(|e| e.silence.state(now) == SilenceState::Active && e.matchers.matches(labels))
            .map(|e| e.silence.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Drops silences that expired more than `retention` ago.
    pub fn gc(&mut self, now: Timestamp) -> usize {
        let before = self.entries.len();
        let retention = self.retention;
        self.entries
            .retain(|_, e| add(e.silence.ends_at, retention) > now);
        before - self.entries.len()
    }

    /// Merges a silence replicated from a peer, last writer wins: the later `updated_at`, and on
    /// equal times the version whose JSON encoding sorts last, so every replica picks the same
    /// one whatever order versions arrive in. Returns whether the local state changed. A
    /// silence that does not validate is refused.
    pub fn merge(&mut self, s: Silence) -> Result<bool, SilenceError> {
        if let Some(old) = self.entries.get(&s.id) {
            if !newer(&s, &old.silence) {
                return Ok(false);
            }
        }
        let matchers = validate(&s)?;
        self.entries.insert(
            s.id.clone(),
            Entry {
                silence: s,
                matchers,
            },
        );
        Ok(true)
    }

    /// Restores silences from a snapshot. One that no longer validates (a rule tightened
    /// between versions) is skipped with a warning rather than failing the whole start.
    pub fn restore(&mut self, silences: Vec<Silence>) {
        for s in silences {
            match validate(&s) {
                Ok(matchers) => {
                    self.entries.insert(
                        s.id.clone(),
                        Entry {
                            silence: s,
                            matchers,
                        },
                    );
                }
                Err(e) => tracing::warn!(id = %s.id, error = %e, "restored silence skipped"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> Timestamp {
        parse_rfc3339(s).unwrap()
    }

    fn sil(id: &str, start: &str, end: &str, value: &str) -> Silence {
        Silence {
            id: id.into(),
            matchers: vec![SilenceMatcher {
                name: "alertname".into(),
                value: value.into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: t(start),
            ends_at: t(end),
            updated_at: t(start),
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn lifecycle_and_matching() {
        let now = t("2026-01-01T00:00:00Z");
        let mut s = Silences::default();
        // Start in the past is clamped to now.
        let id = s
            .set(
                sil("", "2025-12-31T00:00:00Z", "2026-01-01T01:00:00Z", "A"),
                now,
            )
            .unwrap();
        assert_eq!(s.get(&id).unwrap().starts_at, now);
        assert_eq!(s.get(&id).unwrap().state(now), SilenceState::Active);
        let labels: LabelSet = [("alertname".to_string(), "A".to_string())].into();
        assert_eq!(s.mutes(&labels, now), vec![id.clone()]);
        // In-place update: same matchers, same start, later end.
        let mut upd = s.get(&id).unwrap().clone();
        upd.ends_at = t("2026-01-01T02:00:00Z");
        assert_eq!(s.set(upd, now).unwrap(), id);
        // Changing matchers replaces: new id, old expired.
        let mut repl = s.get(&id).unwrap().clone();
        repl.matchers[0].value = "B".into();
        let later = t("2026-01-01T00:01:00Z");
        let id2 = s.set(repl, later).unwrap();
        assert_ne!(id2, id);
        assert_eq!(
            s.get(&id).unwrap().state(t("2026-01-01T00:01:01Z")),
            SilenceState::Expired
        );
        // Unknown id.
        assert_eq!(
            s.set(
                sil("nope", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "A"),
                now
            ),
            Err(SilenceError::NotFound)
        );
        // Pending silence expiry sets start = end = now.
        let pid = s
            .set(
                sil("", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "C"),
                now,
            )
            .unwrap();
        assert_eq!(s.get(&pid).unwrap().state(now), SilenceState::Pending);
        s.expire(&pid, now).unwrap();
        assert_eq!(s.get(&pid).unwrap().starts_at, now);
        assert!(matches!(
            s.expire(&pid, later),
            Err(SilenceError::AlreadyExpired(_))
        ));
        // GC after retention.
        assert_eq!(s.gc(t("2026-01-10T00:00:00Z")), 3);
    }

    #[test]
    fn merge_is_last_writer_wins_in_any_order() {
        let base = sil("id-1", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "A");
        let mut later = base.clone();
        later.ends_at = t("2026-01-01T00:10:00Z");
        later.updated_at = t("2026-01-01T00:10:00Z");
        // Same update time, different content: the tie must resolve the same way everywhere.
        let mut tie_a = later.clone();
        tie_a.comment = "a".into();
        let mut tie_b = later.clone();
        tie_b.comment = "z".into();
        let versions = [base.clone(), later.clone(), tie_a, tie_b.clone()];
        let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
        for order in orders {
            let mut s = Silences::default();
            for i in order {
                s.merge(versions[i].clone()).unwrap();
            }
            let got = s.get("id-1").unwrap();
            assert_eq!(got.comment, "z", "order {order:?}");
            assert_eq!(got.ends_at, tie_b.ends_at);
        }
        let mut s = Silences::default();
        assert!(s.merge(later.clone()).unwrap());
        assert!(!s.merge(base).unwrap(), "an older version changes nothing");
        assert!(!s.merge(later).unwrap(), "the same version changes nothing");
        let mut bad = sil("id-2", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "");
        bad.updated_at = t("2026-01-01T00:00:00Z");
        assert!(s.merge(bad).is_err());
        assert!(s.get("id-2").is_none());
    }

    #[test]
    fn validation_changes_nothing() {
        let now = t("2026-01-01T00:00:00Z");
        let mut s = Silences::default();
        let mut bad = sil("", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "");
        assert_eq!(
            s.set(bad.clone(), now).unwrap_err().to_string(),
            "silence invalid: at least one matcher must not match the empty string"
        );
        bad.matchers.clear();
        assert!(s
            .set(bad, now)
            .unwrap_err()
            .to_string()
            .contains("at least one matcher required"));
        let mut re = sil("", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "((");
        re.matchers[0].is_regex = true;
        assert!(s
            .set(re, now)
            .unwrap_err()
            .to_string()
            .contains("invalid regular expression"));
        assert_eq!(s.iter().count(), 0);
    }
}
