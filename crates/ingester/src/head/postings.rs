//! The inverted index of one tenant's head: label pair → sorted series ids, plus the id → shard
//! location table. Ids are allocated under this index's write lock, so every postings list is
//! appended in increasing order and stays sorted without re-sorting.

use std::collections::{BTreeMap, HashMap};
use strata_model::Matcher;

/// Sorted, de-duplicated series ids.
pub type PostingsList = Vec<u32>;

#[derive(Debug, Default)]
pub struct Postings {
    /// name → value → ids. BTreeMap keeps names and values sorted for the label APIs.
    index: BTreeMap<Box<str>, HashMap<Box<str>, PostingsList>>,
    /// Location of series `id`: shard in the low bits, index within the shard above;
    /// [`REMOVED`] once the series was truncated away (ids are never reused while the process
    /// runs, because WAL records written before the removal still carry them).
    locations: Vec<u32>,
    live: usize,
}

/// Location of a removed series.
pub const REMOVED: u32 = u32::MAX;

impl Postings {
    /// Registers a new series located at `location` and returns its id.
    pub fn add(
        &mut self,
        location: u32,
        labels: impl Iterator<Item = (impl AsRef<str>, impl AsRef<str>)>,
    ) -> u32 {
        let id = self.locations.len() as u32;
        self.locations.push(location);
        self.live += 1;
        for (n, v) in labels {
            let values = match self.index.get_mut(n.as_ref()) {
                Some(m) => m,
                None => self.index.entry(n.as_ref().into()).or_default(),
            };
            match values.get_mut(v.as_ref()) {
                Some(list) => list.push(id),
                None => {
                    values.insert(v.as_ref().into(), vec![id]);
                }
            }
        }
        id
    }

    pub fn location(&self, id: u32) -> u32 {
        self.locations[id as usize]
    }

    /// Live series.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Moves series `id` to a new location.
    pub fn relocate(&mut self, id: u32, location: u32) {
        self.locations[id as usize] = location;
    }

    /// Removes series. `dead` holds each removed id with its label pairs. One pass per
    /// affected postings list, however many series it loses.
    pub fn remove<'a>(&mut self, dead: &[(u32, Vec<(&'a str, &'a str)>)]) {
        let mut ids: Vec<u32> = dead.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        let mut affected: std::collections::HashSet<(&str, &str)> = Default::default();
        for (id, pairs) in dead {
            if self.locations[*id as usize] != REMOVED {
                self.locations[*id as usize] = REMOVED;
                self.live -= 1;
            }
            affected.extend(pairs.iter().copied());
        }
        for (n, v) in affected {
            let Some(values) = self.index.get_mut(n) else {
                continue;
            };
            if let Some(list) = values.get_mut(v) {
                *list = subtract(list, &ids);
                if list.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                self.index.remove(n);
            }
        }
    }

    /// Sorted label names.
    pub fn label_names(&self) -> Vec<String> {
        self.label_names_upto(usize::MAX)
    }

    /// Like [`Postings::label_names`], collecting at most `n` (a caller over a limit needs no
    /// more to know it).
    pub fn label_names_upto(&self, n: usize) -> Vec<String> {
        self.index.keys().take(n).map(|k| k.to_string()).collect()
    }

    /// Sorted values of a label.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.label_values_upto(name, usize::MAX)
    }

    /// Like [`Postings::label_values`], collecting at most `n` before sorting.
    pub fn label_values_upto(&self, name: &str, n: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .index
            .get(name)
            .map(|m| m.keys().take(n).map(|k| k.to_string()).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Union of the postings of the values of `name` that satisfy `pred`.
    fn union_where(&self, name: &str, pred: impl Fn(&str) -> bool) -> PostingsList {
        let Some(values) = self.index.get(name) else {
            return Vec::new();
        };
        let lists: Vec<&PostingsList> = values
            .iter()
            .filter(|(v, _)| pred(v))
            .map(|(_, l)| l)
            .collect();
        union(&lists)
    }

    /// Ids of series matching every matcher, with Prometheus semantics: a matcher that accepts
    /// the empty string also selects series lacking the label.
    pub fn select(&self, matchers: &[Matcher]) -> PostingsList {
        let mut positive: Vec<PostingsList> = Vec::new();
        let mut negative: Vec<PostingsList> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                // Exclude series whose value of this label does not match.
                let excluded = self.union_where(&m.name, |v| !m.matches(v));
                if !excluded.is_empty() {
                    negative.push(excluded);
                }
            } else if let Some(set) = m.set_matches() {
                let Some(values) = self.index.get(m.name.as_str()) else {
                    return Vec::new();
                };
                let lists: Vec<&PostingsList> = set.iter().filter_map(|v| values.get(*v)).collect();
                positive.push(union(&lists));
            } else {
                positive.push(self.union_where(&m.name, |v| m.matches(v)));
            }
        }
        let mut result = if positive.is_empty() {
            (0..self.locations.len() as u32)
                .filter(|&id| self.locations[id as usize] != REMOVED)
                .collect()
        } else {
            positive.sort_by_key(Vec::len);
            let mut it = positive.into_iter();
            let mut acc = it.next().unwrap_or_default();
            for p in it {
                acc = intersect(&acc, &p);
            }
            acc
        };
        for n in &negative {
            result = subtract(&result, n);
        }
        result
    }
}

fn union(lists: &[&PostingsList]) -> PostingsList {
    match lists {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut all: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

fn intersect(a: &[u32], b: &[u32]) -> PostingsList {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract(a: &[u32], b: &[u32]) -> PostingsList {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|x| {
            while j < b.len() && b[j] < *x {
                j += 1;
            }
            !(j < b.len() && b[j] == *x)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::MatchOp;

    fn index() -> Postings {
        let mut p = Postings::default();
        p.add(0, [("__name__", "up"), ("job", "a")].into_iter());
        p.add(
            0,
            [("__name__", "up"), ("job", "b"), ("env", "prod")].into_iter(),
        );
        p.add(0, [("__name__", "down"), ("job", "a")].into_iter());
        p.add(0, [("__name__", "up")].into_iter());
        p
    }

    fn sel(p: &Postings, ms: &[(MatchOp, &str, &str)]) -> Vec<u32> {
        let ms: Vec<Matcher> = ms
            .iter()
            .map(|(o, n, v)| Matcher::new(*o, *n, *v).unwrap())
            .collect();
        p.select(&ms)
    }

    #[test]
    fn matcher_semantics() {
        use MatchOp::*;
        let p = index();
        assert_eq!(sel(&p, &[(Equal, "__name__", "up")]), vec![0, 1, 3]);
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (Equal, "job", "a")]),
            vec![0]
        );
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (NotEqual, "job", "a")]),
            vec![1, 3]
        );
        // Empty-value matching selects series without the label.
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (Equal, "env", "")]),
            vec![0, 3]
        );
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (NotEqual, "env", "")]),
            vec![1]
        );
        assert_eq!(sel(&p, &[(RegexMatch, "job", "a|b")]), vec![0, 1, 2]);
        assert_eq!(
            sel(&p, &[(RegexMatch, "job", ".*"), (Equal, "__name__", "up")]),
            vec![0, 1, 3]
        );
        assert_eq!(
            sel(&p, &[(RegexMatch, "job", ".+"), (Equal, "__name__", "up")]),
            vec![0, 1]
        );
        assert_eq!(sel(&p, &[(RegexNoMatch, "job", "a")]), vec![1, 3]);
        // Anchored: "u" does not match "up".
        assert_eq!(sel(&p, &[(RegexMatch, "__name__", "u")]), Vec::<u32>::new());
        assert_eq!(sel(&p, &[(RegexMatch, "__name__", "u.*")]), vec![0, 1, 3]);
        assert_eq!(sel(&p, &[(Equal, "nope", "x")]), Vec::<u32>::new());
        assert_eq!(sel(&p, &[(RegexMatch, "__name__", ".+")]), vec![0, 1, 2, 3]);
    }

    #[test]
    fn removed_series_disappear_from_every_list() {
        use MatchOp::*;
        let mut p = index();
        p.remove(&[(1, vec![("__name__", "up"), ("job", "b"), ("env", "prod")])]);
        assert_eq!(p.len(), 3);
        assert_eq!(sel(&p, &[(Equal, "__name__", "up")]), vec![0, 3]);
        assert_eq!(sel(&p, &[(NotEqual, "job", "zzz")]), vec![0, 2, 3]);
        assert!(p.label_values("env").is_empty());
        assert!(!p.label_names().contains(&"env".to_string()));
        let id = p.add(7, [("__name__", "up"), ("job", "b")].into_iter());
        assert_eq!(id, 4, "ids are not reused");
        assert_eq!(sel(&p, &[(Equal, "job", "b")]), vec![4]);
    }

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 7]), vec![3, 7]);
        assert_eq!(subtract(&[1, 3, 5, 7], &[3, 4, 7]), vec![1, 5]);
        assert_eq!(union(&[&vec![1, 4], &vec![2, 4, 9]]), vec![1, 2, 4, 9]);
    }
}
