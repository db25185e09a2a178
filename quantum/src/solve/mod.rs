//! Samplers: heuristics (and one exact method) that look for low-energy states of an
//! [`Ising`] model or a [`Qubo`].
//!
//! All of them implement [`Sampler`] and return a [`SampleSet`]. A QUBO is sampled through its
//! exact Ising equivalent, so energies and bits mean the same whichever form was submitted.

mod exact;
mod metropolis;
mod permutation;
mod polish;
mod pt;
mod result;
mod sa;
mod schedule;
mod sqa;

pub use exact::ExactSolver;
pub use exact::MAX_EXACT_VARIABLES;
pub use permutation::PermutationAnnealing;
pub use polish::Descent;
pub use polish::Polished;
pub use polish::descend;
pub use polish::polish_samples;
pub use polish::polish_tour;
pub use pt::ExchangeStats;
pub use pt::LadderReport;
pub use pt::ParallelTempering;
pub use pt::TemperingReport;
pub use result::RunStats;
pub use result::Sample;
pub use result::SampleSet;
pub use sa::SimulatedAnnealing;
#[cfg(feature = "hardware")]
pub(crate) use sa::collect_reads as collect_samples;
pub use schedule::BetaSchedule;
pub use schedule::default_beta_range;
pub use schedule::focused_beta_range;
pub use sqa::GammaSchedule;
pub use sqa::SimulatedQuantumAnnealing;

use crate::error::Result;
use crate::model::Ising;
use crate::model::Qubo;

/// A method that searches for low-energy samples.
pub trait Sampler: Send + Sync {
    /// A short, stable name for reports (`simulated-annealing`, `sqa`, `parallel-tempering`).
    fn name(&self) -> &'static str;

    /// Samples an Ising model; bit 1 in the result is spin +1.
    ///
    /// # Errors
    /// Invalid parameters, or a model beyond the method's limits.
    fn sample_ising(&self, model: &Ising) -> Result<SampleSet>;

    /// Samples a QUBO via its exact Ising equivalent; reported energies are QUBO energies.
    ///
    /// # Errors
    /// As [`Sampler::sample_ising`].
    fn sample_qubo(&self, model: &Qubo) -> Result<SampleSet> {
        self.sample_ising(&model.to_ising())
    }
}
