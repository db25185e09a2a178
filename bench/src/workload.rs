//! Data and statistics shared by every benchmark: the keys, the values, and percentiles.
//!
//! Values are derived from their key instead of being stored, so a child process that measures
//! an engine's peak RSS carries only the key array (8 bytes a row), not 100 bytes a row of
//! expected values, and a lookup can still be checked against exactly what was inserted.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Length of every value, in bytes.
pub const VALUE_LEN: usize = 100;

/// Returns `rows` distinct random keys in random (insertion) order, the same for a given seed.
///
/// Duplicates are removed by sorting, topped up and shuffled, so no hash set inflates the peak
/// RSS of the process that later measures an engine.
pub fn generate_keys(rows: usize, seed: u64) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys: Vec<u64> = Vec::with_capacity(rows);
    loop {
        while keys.len() < rows {
            keys.push(rand::Rng::random(&mut rng));
        }
        keys.sort_unstable();
        keys.dedup();
        if keys.len() == rows {
            break;
        }
    }
    keys.shuffle(&mut rng);
    keys
}

/// The on-disk form of a key: big-endian, so byte order equals numeric order in every engine.
pub fn key_bytes(key: u64) -> [u8; 8] {
    key.to_be_bytes()
}

/// The value stored under `key`: deterministic pseudo-random bytes (a SplitMix64 stream seeded
/// by the key), so it compresses no better than real data and can be recomputed to verify reads.
pub fn value_for(key: u64) -> [u8; VALUE_LEN] {
    let mut out = [0u8; VALUE_LEN];
    let mut state = key ^ 0x5851_F42D_4C95_7F2D;
    for chunk in out.chunks_mut(8) {
        let word = splitmix64(&mut state).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
}

/// The `index`-th key of a stream: random-looking, distinct for distinct indices of one seed
/// (SplitMix64's finaliser is a bijection), and recomputable from the index alone, so a process
/// can check what another wrote without either holding a key array.
pub fn scrambled_key(index: u64, seed: u64) -> u64 {
    let mut state = index
        .wrapping_add(seed.wrapping_mul(0xD6E8_FEB8_6659_FD93))
        .wrapping_sub(0x9E37_79B9_7F4A_7C15);
    splitmix64(&mut state)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Nearest-rank percentile (`p` in 0..=1) of nanosecond samples; sorts `samples` in place.
pub fn percentile_ns(samples: &mut [u64], p: f64) -> u64 {
    assert!(!samples.is_empty(), "percentile of no samples");
    samples.sort_unstable();
    let rank = (p * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_deterministic() {
        let a = generate_keys(10_000, 7);
        let b = generate_keys(10_000, 7);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10_000);
        assert_ne!(a, sorted, "insertion order must not be sorted");
    }

    #[test]
    fn values_depend_on_the_key() {
        assert_eq!(value_for(1), value_for(1));
        assert_ne!(value_for(1), value_for(2));
    }

    #[test]
    fn scrambled_keys_are_distinct() {
        let mut keys: Vec<u64> = (0..100_000).map(|i| scrambled_key(i, 42)).collect();
        assert_eq!(keys[7], scrambled_key(7, 42));
        assert_ne!(keys[7], scrambled_key(7, 43));
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 100_000);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile_ns(&mut s, 0.50), 50);
        assert_eq!(percentile_ns(&mut s, 0.99), 99);
        assert_eq!(percentile_ns(&mut s, 1.0), 100);
        assert_eq!(percentile_ns(&mut [5], 0.5), 5);
    }
}
