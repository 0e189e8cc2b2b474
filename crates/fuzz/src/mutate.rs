//! A small deterministic mutator for the stable replay test: libFuzzer's cheap byte-level
//! mutations (bit flips, interesting integers, inserts, deletes, copies, splices with another
//! corpus input, dictionary tokens) without coverage feedback. Same seed, same inputs: a
//! failure in CI reproduces locally.

/// Integers that sit on boundaries parsers get wrong.
const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Stacked random mutations of corpus inputs.
#[derive(Debug)]
pub struct Mutator {
    rng: fastrand::Rng,
    max_len: usize,
    dict: Vec<Vec<u8>>,
}

impl Mutator {
    /// A mutator whose outputs depend only on `seed`; outputs are at most `max_len` bytes;
    /// `dict` holds tokens worth inserting (may be empty).
    pub fn new(seed: u64, max_len: usize, dict: Vec<Vec<u8>>) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            max_len: max_len.max(1),
            dict,
        }
    }

    /// Picks an index below `n` (`n > 0`).
    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.usize(..n)
    }

    /// One to eight stacked mutations of `input`; `others` are splice partners.
    pub fn mutate(&mut self, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut out = input.to_vec();
        let rounds = 1 + self.rng.usize(..8);
        for _ in 0..rounds {
            self.once(&mut out, others);
        }
        out.truncate(self.max_len);
        out
    }

    fn once(&mut self, b: &mut Vec<u8>, others: &[Vec<u8>]) {
        let r = &mut self.rng;
        if b.is_empty() {
            let n = 1 + r.usize(..16);
            b.extend((0..n).map(|_| r.u8(..)));
            return;
        }
        let len = b.len();
        match r.u8(..12) {
            0 => {
                let i = r.usize(..len);
                b[i] ^= 1 << r.u8(..8);
            }
            1 => {
                let i = r.usize(..len);
                b[i] = r.u8(..);
            }
            2 => {
                // An interesting integer, 1/2/4/8 bytes, either endianness.
                let v = INTERESTING[r.usize(..INTERESTING.len())];
                let width = [1usize, 2, 4, 8][r.usize(..4)].min(len);
                let bytes = if r.bool() {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let bytes = if bytes[0] == 0 && width < 8 && r.bool() {
                    &bytes[8 - width..]
                } else {
                    &bytes[..width]
                };
                let i = r.usize(..=len - width);
                b[i..i + width].copy_from_slice(bytes);
            }
            3 => {
                let i = r.usize(..=len);
                let n = 1 + r.usize(..8);
                let ins: Vec<u8> = (0..n).map(|_| r.u8(..)).collect();
                b.splice(i..i, ins);
            }
            4 => {
                let i = r.usize(..len);
                let n = 1 + r.usize(..(len - i).min(64));
                b.drain(i..i + n);
            }
            5 => {
                // Copy a block of the input elsewhere (over-writing or inserting).
                let src = r.usize(..len);
                let n = 1 + r.usize(..(len - src).min(128));
                let block = b[src..src + n].to_vec();
                let dst = r.usize(..=len);
                if r.bool() {
                    b.splice(dst..dst, block);
                } else {
                    let end = (dst + n).min(len);
                    b.splice(dst..end, block);
                }
            }
            6 => {
                if let Some(other) = others.get(r.usize(..others.len().max(1))) {
                    // Splice: our head, another input's tail.
                    if !other.is_empty() {
                        let cut = r.usize(..=len);
                        let from = r.usize(..other.len());
                        b.truncate(cut);
                        b.extend_from_slice(&other[from..]);
                    }
                }
            }
            7 => {
                let n = r.usize(..len);
                b.truncate(n.max(1));
            }
            8 => {
                let i = r.usize(..len);
                let j = r.usize(..len);
                b.swap(i, j);
            }
            9 => {
                // A byte plus or minus a little: lengths and counts off by a few.
                let i = r.usize(..len);
                let d = r.u8(1..=16);
                b[i] = if r.bool() {
                    b[i].wrapping_add(d)
                } else {
                    b[i].wrapping_sub(d)
                };
            }
            _ => {
                if self.dict.is_empty() {
                    let i = r.usize(..len);
                    b[i] = r.u8(..);
                } else {
                    let tok = self.dict[r.usize(..self.dict.len())].clone();
                    let i = r.usize(..=len);
                    if r.bool() {
                        b.splice(i..i, tok);
                    } else {
                        let end = (i + tok.len()).min(len);
                        b.splice(i..end, tok);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_outputs_and_outputs_vary() {
        let input = b"sum by (job) (rate(x[5m]))".to_vec();
        let others = vec![b"other input".to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed, 64, vec![b"offset".to_vec()]);
            (0..200)
                .map(|_| m.mutate(&input, &others))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|o| o.len() <= 64));
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 150, "{} distinct of 200", distinct.len());
        assert!(a.iter().any(|o| o.windows(6).any(|w| w == b"offset")));
    }

    #[test]
    fn empty_inputs_grow() {
        let mut m = Mutator::new(1, 8, Vec::new());
        assert!(!m.mutate(&[], &[]).is_empty());
    }
}
