//! What every sampler returns.

use std::time::Duration;

/// One assignment and its energy. Bit 1 is spin +1 when the model was an Ising model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// One entry per variable, each 0 or 1.
    pub bits: Vec<u8>,
    /// Energy of `bits` under the model that was sampled (QUBO and Ising energies agree).
    pub energy: f64,
}

/// Work a sampler did, for comparing solvers at equal budgets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// Wall-clock time of the whole call, all reads included.
    pub wall_time: Duration,
    /// Independent reads (restarts) performed.
    pub reads: usize,
    /// Monte Carlo sweeps per read (per replica for replica methods).
    pub sweeps_per_read: usize,
    /// Single-spin (or cluster) moves proposed, summed over reads and replicas.
    pub proposed_moves: u64,
    /// Moves accepted.
    pub accepted_moves: u64,
}

impl RunStats {
    /// Fraction of proposed moves that were accepted (0 when none were proposed).
    #[must_use]
    pub fn acceptance_rate(&self) -> f64 {
        if self.proposed_moves == 0 {
            return 0.0;
        }
        ratio(self.accepted_moves, self.proposed_moves)
    }
}

/// The outcome of one sampler call.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSet {
    /// Which sampler produced it (`simulated-annealing`, `sqa`, ...).
    pub solver: &'static str,
    /// The lowest-energy sample over all reads (the earliest read wins ties).
    pub best: Sample,
    /// The final energy of each read, in read order.
    pub energies: Vec<f64>,
    /// The final sample of each read, in read order (`samples[r].energy == energies[r]`).
    pub samples: Vec<Sample>,
    /// Effort and acceptance statistics.
    pub stats: RunStats,
}

impl SampleSet {
    /// Mean final energy over reads.
    #[must_use]
    pub fn mean_energy(&self) -> f64 {
        if self.energies.is_empty() {
            return self.best.energy;
        }
        let reads = u32::try_from(self.energies.len()).unwrap_or(u32::MAX);
        self.energies.iter().sum::<f64>() / f64::from(reads)
    }

    /// Fraction of reads whose energy is within `tolerance` of the best.
    #[must_use]
    pub fn success_rate(&self, tolerance: f64) -> f64 {
        let hits = self
            .energies
            .iter()
            .filter(|&&e| e <= self.best.energy + tolerance)
            .count();
        ratio(hits as u64, self.energies.len().max(1) as u64)
    }
}

/// `a / b` as a float; counts here stay far below 2^53 so the conversion is exact.
pub(crate) fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}
