//! Which replicas own a tenant: a consistent-hash ring over the replica ids.
//!
//! A small ring of our own rather than the `consistent_hash` crate (0.1.4, last released in
//! 2017): that crate hashes through `std::hash::Hash`, whose byte stream is not promised to stay
//! the same across Rust releases or word sizes (it writes the virtual-node number as a native
//! `usize`), and every replica must compute exactly the same owners; it also extends borrows
//! with `unsafe` to an unconstrained lifetime. Here a token is xxh3 over explicit bytes, so
//! ownership is a pure function of the member ids.
//!
//! Each replica places [`TOKENS_PER_MEMBER`] tokens on a 64-bit circle; a tenant's owners are
//! the first `replication_factor` distinct replicas met walking clockwise from the tenant's
//! hash. Adding or removing one replica moves only the tenants whose walk crosses its tokens.

use xxhash_rust::xxh3::xxh3_64;

/// Virtual nodes per replica: enough that tenants spread evenly over a handful of replicas.
pub const TOKENS_PER_MEMBER: u32 = 128;

#[derive(Debug, Clone)]
pub struct Ring {
    /// Member ids, sorted.
    members: Vec<String>,
    /// (token, index into `members`), sorted by token then member id.
    tokens: Vec<(u64, usize)>,
    replication_factor: usize,
}

fn token(id: &str, n: u32) -> u64 {
    let mut bytes = Vec::with_capacity(id.len() + 5);
    bytes.extend_from_slice(id.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&n.to_be_bytes());
    xxh3_64(&bytes)
}

impl Ring {
    /// A ring over `ids` (duplicates ignored) with owners capped at the number of members.
    pub fn new<I, S>(ids: I, replication_factor: usize) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut members: Vec<String> = ids.into_iter().map(Into::into).collect();
        members.sort();
        members.dedup();
        let mut tokens: Vec<(u64, usize)> = members
            .iter()
            .enumerate()
            .flat_map(|(i, id)| (0..TOKENS_PER_MEMBER).map(move |n| (token(id, n), i)))
            .collect();
        // Ties between tokens (astronomically rare) resolve by member id, the same everywhere.
        tokens.sort_unstable();
        let replication_factor = replication_factor.clamp(1, members.len().max(1));
        Self {
            members,
            tokens,
            replication_factor,
        }
    }

    pub fn members(&self) -> &[String] {
        &self.members
    }

    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// The tenant's owners in ring order: position 0 notifies first.
    pub fn owners(&self, tenant: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::with_capacity(self.replication_factor);
        if self.tokens.is_empty() {
            return out;
        }
        let h = xxh3_64(tenant.as_bytes());
        let start = self.tokens.partition_point(|(t, _)| *t < h);
        for k in 0..self.tokens.len() {
            let (_, i) = self.tokens[(start + k) % self.tokens.len()];
            let id = self.members[i].as_str();
            if !out.contains(&id) {
                out.push(id);
                if out.len() == self.replication_factor {
                    break;
                }
            }
        }
        out
    }

    /// Position of `member` among the tenant's owners, `None` if it does not own it.
    pub fn position(&self, tenant: &str, member: &str) -> Option<usize> {
        self.owners(tenant).iter().position(|m| *m == member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tenants() -> Vec<String> {
        (0..2000).map(|i| format!("tenant-{i}")).collect()
    }

    #[test]
    fn owners_are_distinct_capped_and_independent_of_member_order() {
        let a = Ring::new(["am-1", "am-2", "am-3"], 3);
        let b = Ring::new(["am-3", "am-1", "am-2", "am-1"], 3);
        for t in tenants() {
            let o = a.owners(&t);
            assert_eq!(o.len(), 3);
            let mut d = o.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 3, "{t}: {o:?}");
            assert_eq!(o, b.owners(&t), "{t}");
        }
        assert_eq!(Ring::new(["x", "y"], 3).replication_factor(), 2);
        assert_eq!(Ring::new(["x", "y"], 3).owners("t").len(), 2);
        assert!(Ring::new(Vec::<String>::new(), 3).owners("t").is_empty());
    }

    #[test]
    fn first_owners_spread_evenly() {
        let r = Ring::new(["am-1", "am-2", "am-3", "am-4"], 2);
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        let ts = tenants();
        for t in &ts {
            *first.entry(r.owners(t)[0]).or_default() += 1;
        }
        for (m, n) in &first {
            // 500 expected each; 128 tokens per member keep the skew well under ±40%.
            assert!(
                (300..=700).contains(n),
                "{m}: {n} of {} ({first:?})",
                ts.len()
            );
        }
    }

    #[test]
    fn adding_a_member_moves_few_tenants() {
        let before = Ring::new(["am-1", "am-2", "am-3", "am-4"], 1);
        let after = Ring::new(["am-1", "am-2", "am-3", "am-4", "am-5"], 1);
        let ts = tenants();
        let moved: Vec<&String> = ts
            .iter()
            .filter(|t| before.owners(t) != after.owners(t))
            .collect();
        // About 1/5 move, and each of them to the new member only.
        assert!(moved.len() < ts.len() * 3 / 10, "{} moved", moved.len());
        assert!(moved.len() > ts.len() / 10, "{} moved", moved.len());
        for t in moved {
            assert_eq!(after.owners(t), vec!["am-5"], "{t}");
        }
        // Known values pin the hash: a change here would reshuffle every deployed ring.
        let r = Ring::new(["am-1", "am-2", "am-3"], 3);
        assert_eq!(r.owners("anonymous"), vec!["am-1", "am-3", "am-2"]);
        assert_eq!(r.owners("team-a"), vec!["am-3", "am-1", "am-2"]);
        assert_eq!(r.position("anonymous", r.owners("anonymous")[1]), Some(1));
        assert_eq!(r.position("anonymous", "am-9"), None);
    }
}
