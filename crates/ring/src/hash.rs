//! Tokens of keys: FNV-1a 32 over explicit bytes, so every process and every build computes the
//! same token for a series (the hash is part of the cluster's wire contract: a change moves every
//! series to other ingesters).
//!
//! Strings are fed as a little-endian `u32` byte length followed by the bytes, so that no two
//! different label sets produce the same byte stream (`{a="bc"}` vs `{ab="c"}`).

const OFFSET: u32 = 0x811c_9dc5;
const PRIME: u32 = 0x0100_0193;

#[inline]
fn add(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

#[inline]
fn add_str(h: u32, s: &[u8]) -> u32 {
    // Label names and values are far below 4 GiB; a longer string would only wrap the prefix.
    add(add(h, &(s.len() as u32).to_le_bytes()), s)
}

/// Plain FNV-1a 32 of `bytes`: the token of a tenant, a block or a compaction group.
pub fn key_token(bytes: &[u8]) -> u32 {
    add(OFFSET, bytes)
}

/// The token of a series: FNV-1a 32 over the tenant, then each label's name and value, every
/// string length-prefixed (u32 LE). `labels` must be sorted by name (as series labels are).
pub fn series_token(tenant: &str, labels: &[(&str, &str)]) -> u32 {
    let mut h = add_str(OFFSET, tenant.as_bytes());
    for (name, value) in labels {
        h = add_str(h, name.as_bytes());
        h = add_str(h, value.as_bytes());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_vectors() {
        // Published FNV-1a 32 test vectors: pins the algorithm, independent of this code.
        assert_eq!(key_token(b""), 0x811c_9dc5);
        assert_eq!(key_token(b"a"), 0xe40c_292c);
        assert_eq!(key_token(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn series_token_golden_vectors() {
        // Fixed outputs: a change here moves every series in a running cluster.
        assert_eq!(series_token("", &[]), 0x4b95_f515);
        assert_eq!(
            series_token("tenant-1", &[("__name__", "up"), ("job", "node")]),
            0x5f79_6d93
        );
        assert_eq!(
            series_token("anonymous", &[("__name__", "http_requests_total")]),
            0x20bc_9281
        );
        assert_eq!(key_token(b"tenant-1"), 0x4332_af8b);
    }

    #[test]
    fn length_prefix_separates_name_and_value() {
        assert_ne!(
            series_token("t", &[("a", "bc")]),
            series_token("t", &[("ab", "c")])
        );
        assert_ne!(
            series_token("ta", &[("b", "c")]),
            series_token("t", &[("ab", "c")])
        );
    }
}
