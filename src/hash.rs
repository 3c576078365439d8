//! A small, fast hasher for the hot loops' tables (names, ids and TRES strings from sacct and
//! from the pipeline's own records; not an adversary's input).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The "Fx" multiply-rotate hasher.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word: [u8; 8] = chunk.try_into().expect("8 bytes");
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        // Shifts, not a copy through a buffer (which stalls on store forwarding); the length
        // tells "ab" from "ab\0".
        let tail = rest
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b));
        self.write_u64(tail ^ ((rest.len() as u64) << 56));
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // The product's high bits depend on every input bit; hashbrown takes buckets from the
        // low ones.
        self.0.rotate_left(26)
    }
}

/// A hash table builder with [`FxHasher`].
pub type Fx = BuildHasherDefault<FxHasher>;

/// A `HashMap` using [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, Fx>;
