//! The amplitude vector and the two operations Grover needs, parallelised with rayon.
//!
//! Reductions sum fixed-size chunks and then add the chunk sums in order, so results are
//! bit-identical whatever the thread count.

use nalgebra::Complex;
use rayon::prelude::*;

use super::search::Oracle;
use crate::rng::Rng;

/// Amplitudes per parallel work item.
const CHUNK: usize = 1 << 14;

/// The state of `qubits` qubits: `2^qubits` amplitudes, of which the first `items` belong to
/// real items and the rest (padding) stay zero.
#[derive(Debug, Clone, PartialEq)]
pub struct StateVector {
    amplitudes: Vec<Complex<f64>>,
    items: usize,
    qubits: u32,
}

impl StateVector {
    /// The uniform superposition over `items` items, padded to `2^qubits` amplitudes.
    pub(crate) fn uniform(items: usize, qubits: u32) -> Self {
        let size = 1usize << qubits;
        let amplitude = Complex::new(1.0 / (items as f64).sqrt(), 0.0);
        let mut amplitudes = vec![Complex::new(0.0, 0.0); size];
        amplitudes[..items]
            .par_chunks_mut(CHUNK)
            .for_each(|chunk| chunk.fill(amplitude));
        Self {
            amplitudes,
            items,
            qubits,
        }
    }

    /// Number of simulated qubits.
    #[must_use]
    pub fn qubits(&self) -> u32 {
        self.qubits
    }

    /// The amplitudes (length `2^qubits`).
    #[must_use]
    pub fn amplitudes(&self) -> &[Complex<f64>] {
        &self.amplitudes
    }

    /// Bytes held by the amplitudes.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self.amplitudes.as_slice())
    }

    /// The oracle: flips the sign of every marked item's amplitude.
    pub(crate) fn apply_oracle(&mut self, oracle: &Oracle) {
        self.amplitudes[..self.items]
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let base = c * CHUNK;
                for (offset, amplitude) in chunk.iter_mut().enumerate() {
                    if oracle.is_marked(base + offset) {
                        *amplitude = -*amplitude;
                    }
                }
            });
    }

    /// The diffusion operator `2|ψ⟩⟨ψ| - I` about the uniform state `|ψ⟩` over the items:
    /// `a_i ← 2·mean - a_i` for real items. Padding amplitudes are zero and `-0 = 0`, so they
    /// are left alone.
    pub(crate) fn apply_diffusion(&mut self) {
        let items = &mut self.amplitudes[..self.items];
        let chunk_sums: Vec<Complex<f64>> = items
            .par_chunks(CHUNK)
            .map(|chunk| chunk.iter().sum())
            .collect();
        let sum: Complex<f64> = chunk_sums.into_iter().sum();
        let twice_mean = sum * (2.0 / self.items as f64);
        items
            .par_chunks_mut(CHUNK)
            .for_each(|chunk| chunk.iter_mut().for_each(|a| *a = twice_mean - *a));
    }

    /// Probability that a measurement yields a marked item.
    #[must_use]
    pub fn probability_of(&self, oracle: &Oracle) -> f64 {
        let chunk_sums: Vec<f64> = self.amplitudes[..self.items]
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let base = c * CHUNK;
                chunk
                    .iter()
                    .enumerate()
                    .filter(|(offset, _)| oracle.is_marked(base + offset))
                    .map(|(_, a)| a.norm_sqr())
                    .sum::<f64>()
            })
            .collect();
        chunk_sums.into_iter().sum()
    }

    /// Simulates `shots` measurements in the computational basis; returns the measured basis
    /// states in the order drawn. One pass over the amplitudes, O(shots) extra memory.
    #[must_use]
    pub fn measure(&self, shots: usize, rng: &mut Rng) -> Vec<usize> {
        let mut draws: Vec<(f64, usize)> = (0..shots).map(|shot| (rng.next_f64(), shot)).collect();
        draws.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = self.amplitudes.iter().map(Complex::norm_sqr).sum();
        let mut results = vec![0; shots];
        let mut cumulative = 0.0;
        let mut next = 0;
        let last_nonzero = self
            .amplitudes
            .iter()
            .rposition(|a| a.norm_sqr() > 0.0)
            .unwrap_or(0);
        for (index, amplitude) in self.amplitudes.iter().enumerate() {
            cumulative += amplitude.norm_sqr() / total;
            while next < draws.len() && (draws[next].0 < cumulative || index == last_nonzero) {
                results[draws[next].1] = index;
                next += 1;
            }
            if next == draws.len() {
                break;
            }
        }
        results
    }
}
