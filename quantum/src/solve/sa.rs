//! Simulated annealing: independent Metropolis runs cooled along a β schedule.

use std::time::Instant;

use rayon::prelude::*;

use super::RunStats;
use super::Sample;
use super::SampleSet;
use super::Sampler;
use super::metropolis::SpinState;
use super::schedule::BetaSchedule;
use super::schedule::check_beta_range;
use super::schedule::default_beta_range;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Ising;
use crate::rng::Rng;

/// Simulated annealing with single-spin Metropolis sweeps, in the manner of dwave-samplers'
/// `SimulatedAnnealingSampler`: each read starts from a random state and performs
/// `num_sweeps` sweeps, sweep `k` at the `k`-th β of the schedule, and returns its final state.
///
/// Reads run in parallel with rayon. Read `r` draws from its own generator seeded from
/// `(seed, r)`, so the result is identical whatever the thread count.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedAnnealing {
    /// Independent restarts.
    pub num_reads: usize,
    /// Sweeps per read (one β per sweep).
    pub num_sweeps: usize,
    /// Interpolation between the β range's ends.
    pub schedule: BetaSchedule,
    /// `(hot β, cold β)`; `None` picks [`default_beta_range`] from the model's coefficients.
    pub beta_range: Option<(f64, f64)>,
    /// Seed of the whole run.
    pub seed: u64,
}

impl Default for SimulatedAnnealing {
    fn default() -> Self {
        Self {
            num_reads: 64,
            num_sweeps: 1000,
            schedule: BetaSchedule::Geometric,
            beta_range: None,
            seed: 0,
        }
    }
}

struct ReadOutcome {
    bits: Vec<u8>,
    energy: f64,
    accepted: u64,
}

impl SimulatedAnnealing {
    fn anneal_one(&self, model: &Ising, betas: &[f64], read: usize) -> ReadOutcome {
        let mut rng = Rng::for_stream(self.seed, read as u64);
        let mut state = SpinState::random(model, &mut rng);
        let csr = model.couplings().csr();
        let mut accepted = 0;
        for &beta in betas {
            accepted += state.sweep(csr, beta, &mut rng);
        }
        ReadOutcome {
            energy: state.exact_energy(model),
            bits: state.bits(),
            accepted,
        }
    }
}

impl Sampler for SimulatedAnnealing {
    fn name(&self) -> &'static str {
        "simulated-annealing"
    }

    fn sample_ising(&self, model: &Ising) -> Result<SampleSet> {
        if self.num_reads == 0 {
            return Err(QuantumError::invalid("num_reads", "need at least one read"));
        }
        let range = match self.beta_range {
            Some(range) => {
                check_beta_range(range)?;
                range
            }
            None => default_beta_range(model),
        };
        let started = Instant::now();
        let betas = self.schedule.betas(range, self.num_sweeps);
        let outcomes: Vec<ReadOutcome> = (0..self.num_reads)
            .into_par_iter()
            .map(|read| self.anneal_one(model, &betas, read))
            .collect();
        let proposed = (model.num_variables() * self.num_sweeps * self.num_reads) as u64;
        Ok(collect_reads(
            self.name(),
            outcomes.into_iter().map(|o| (o.bits, o.energy, o.accepted)),
            RunStats {
                wall_time: started.elapsed(),
                reads: self.num_reads,
                sweeps_per_read: self.num_sweeps,
                proposed_moves: proposed,
                accepted_moves: 0,
            },
        ))
    }
}

/// Builds a [`SampleSet`] from per-read `(bits, energy, accepted)` in read order, adding the
/// accepted counts into `stats` and keeping the first lowest-energy read as the best.
pub(crate) fn collect_reads(
    solver: &'static str,
    reads: impl Iterator<Item = (Vec<u8>, f64, u64)>,
    mut stats: RunStats,
) -> SampleSet {
    let mut best: Option<usize> = None;
    let mut samples: Vec<Sample> = Vec::new();
    for (bits, energy, accepted) in reads {
        stats.accepted_moves += accepted;
        if best.is_none_or(|b| energy < samples[b].energy) {
            best = Some(samples.len());
        }
        samples.push(Sample { bits, energy });
    }
    let best = best.map_or_else(
        || Sample {
            bits: Vec::new(),
            energy: 0.0,
        },
        |b| samples[b].clone(),
    );
    SampleSet {
        solver,
        best,
        energies: samples.iter().map(|s| s.energy).collect(),
        samples,
        stats,
    }
}
