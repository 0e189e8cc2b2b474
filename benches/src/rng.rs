//! A tiny deterministic PRNG (SplitMix64) so payloads are reproducible from a seed without extra dependencies.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x6a09_e667_f3bc_c908);
        // Discard one output so that nearby seeds do not start with related values.
        r.next_u64();
        r
    }

    /// A generator for item `index` derived from `seed`, independent of the order items are visited in.
    pub fn derived(seed: u64, stream: u64, index: u64) -> Self {
        Rng::new(
            seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ index.wrapping_mul(0xbf58_476d_1ce4_e5b9),
        )
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Integer in [lo, hi] inclusive.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `base` scaled by a log-uniform factor in [1/spread, spread].
    pub fn spread(&mut self, base: f64, spread: f64) -> f64 {
        let l = spread.ln();
        base * self.range(-l, l).exp()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}
