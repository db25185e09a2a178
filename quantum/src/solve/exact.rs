//! Exhaustive enumeration for small models: the ground truth the heuristic samplers are
//! tested against.

use std::time::Instant;

use super::RunStats;
use super::Sample;
use super::SampleSet;
use super::Sampler;
use super::metropolis::SpinState;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Ising;

/// Largest model [`ExactSolver`] enumerates: 2^26 states at O(degree) each takes seconds.
pub const MAX_EXACT_VARIABLES: usize = 26;

/// Visits all 2^n states in Gray-code order (one flip apart, so each step is O(degree)) and
/// returns a lowest-energy one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactSolver;

impl Sampler for ExactSolver {
    fn name(&self) -> &'static str {
        "exact"
    }

    fn sample_ising(&self, model: &Ising) -> Result<SampleSet> {
        let n = model.num_variables();
        if n > MAX_EXACT_VARIABLES {
            return Err(QuantumError::TooLarge {
                method: "exact enumeration",
                size: n,
                limit: MAX_EXACT_VARIABLES,
                unit: "variables",
            });
        }
        let started = Instant::now();
        let csr = model.couplings().csr();
        let mut state = SpinState::new(model, vec![-1.0; n]);
        let mut best_energy = state.energy;
        let mut best_bits = state.bits();
        let states: u64 = 1 << n;
        for step in 1..states {
            state.flip(csr, step.trailing_zeros() as usize);
            if state.energy < best_energy - 1e-12 {
                best_energy = state.energy;
                best_bits = state.bits();
            }
        }
        let energy = model
            .energy_of_bits(&best_bits)
            .expect("best bits have one entry per variable");
        let best = Sample {
            bits: best_bits,
            energy,
        };
        Ok(SampleSet {
            solver: self.name(),
            samples: vec![best.clone()],
            best,
            energies: vec![energy],
            stats: RunStats {
                wall_time: started.elapsed(),
                reads: 1,
                sweeps_per_read: 0,
                proposed_moves: states.saturating_sub(1),
                accepted_moves: states.saturating_sub(1),
            },
        })
    }
}
