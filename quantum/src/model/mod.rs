//! Optimisation models: QUBO (binary variables) and Ising (spin variables).
//!
//! Both are quadratic polynomials `offset + Σ a_i v_i + Σ_{i<j} b_ij v_i v_j`, stored sparsely
//! ([`Adjacency`]) so energy evaluation is O(n + m) and a single-variable flip is O(degree).
//! [`DenseQubo`] keeps the same QUBO as an `nalgebra` matrix for small dense problems, where
//! batched matrix products beat pointer chasing.
//!
//! Conversions are exact and keep the constant: for every bit vector `x` and spins
//! `s = 2x - 1`, `qubo.energy(x) == qubo.to_ising().energy(s)` up to rounding.

mod adjacency;
mod dense;
mod ising;
mod qubo;
mod terms;

pub use adjacency::Adjacency;
pub(crate) use adjacency::Csr;
pub use dense::DenseQubo;
pub use ising::Ising;
pub use ising::IsingBuilder;
pub use qubo::Qubo;
pub use qubo::QuboBuilder;

use crate::error::QuantumError;
use crate::error::Result;

/// Checks that a sample has one entry per variable.
pub(crate) fn check_len(expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(QuantumError::SampleLength { expected, got })
    }
}

/// Maps bits (0 / nonzero) to spins (-1.0 / +1.0).
#[must_use]
pub fn bits_to_spins(bits: &[u8]) -> Vec<i8> {
    bits.iter().map(|&b| if b == 0 { -1 } else { 1 }).collect()
}

/// Maps spins (negative / positive) to bits (0 / 1).
#[must_use]
pub fn spins_to_bits(spins: &[i8]) -> Vec<u8> {
    spins.iter().map(|&s| u8::from(s > 0)).collect()
}
