//! Planning a join order with any [`Sampler`]: encode, sample, decode, polish, and report
//! everything an `EXPLAIN` needs.

use std::time::Duration;
use std::time::Instant;

use super::JoinOrder;
use super::JoinOrderProblem;
use super::JoinOrderQubo;
use crate::encode::Encoding;
use crate::error::Result;
use crate::solve::SampleSet;
use crate::solve::Sampler;

/// The result of [`JoinOrderProblem::plan_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnnealedPlan {
    /// The sampler's lowest-energy sample decoded (and repaired if needed): the annealer's
    /// answer on its own.
    pub raw: JoinOrder,
    /// The cheapest order, by true `C_out`, among all reads' decoded samples.
    pub best_read: JoinOrder,
    /// The best local optimum reached by [`JoinOrderProblem::improve`] from the
    /// [`POLISH_STARTS`] cheapest distinct decoded reads; never costlier than `best_read`.
    pub polished: JoinOrder,
    /// Whether the sampler's best bits were a valid permutation before repair.
    pub feasible: bool,
    /// Number of QUBO variables (`n²`).
    pub qubo_variables: usize,
    /// Number of QUBO pairwise terms.
    pub qubo_interactions: usize,
    /// The sampler's full output (best energy, per-read energies, effort).
    pub samples: SampleSet,
    /// Wall time of encoding, sampling, decoding and polishing together.
    pub planning_time: Duration,
}

/// How many of the cheapest distinct decoded reads local search starts from. Each start costs
/// O(n⁴) per improving pass, so this stays small.
pub const POLISH_STARTS: usize = 4;

impl JoinOrderProblem {
    /// Plans this query with `sampler` through the join-order QUBO: decodes every read, keeps
    /// the order with the lowest true `C_out` (the QUBO minimises a logarithmic surrogate, and
    /// single-flip samplers rarely agree between reads on permutation QUBOs, so the reads are
    /// best used as diverse starting points), and polishes the [`POLISH_STARTS`] cheapest
    /// distinct orders with local search.
    ///
    /// # Errors
    /// Whatever the sampler reports (invalid parameters, size limits).
    pub fn plan_with(&self, sampler: &dyn Sampler) -> Result<AnnealedPlan> {
        let started = Instant::now();
        let encoding = JoinOrderQubo::new(self);
        let qubo = encoding.qubo();
        let samples = sampler.sample_qubo(qubo)?;
        let feasible = encoding.is_feasible(&samples.best.bits);
        let raw = encoding.decode(&samples.best.bits)?;
        let mut decoded = vec![raw.clone()];
        for sample in &samples.samples {
            decoded.push(encoding.decode(&sample.bits)?);
        }
        decoded.sort_by(|a, b| {
            a.cost
                .total_cmp(&b.cost)
                .then_with(|| a.order.cmp(&b.order))
        });
        decoded.dedup_by(|a, b| a.order == b.order);
        let best_read = decoded[0].clone();
        let mut polished = best_read.clone();
        for start in decoded.iter().take(POLISH_STARTS) {
            let local_optimum = self.improve(&start.order)?;
            if local_optimum.cost < polished.cost {
                polished = local_optimum;
            }
        }
        Ok(AnnealedPlan {
            raw,
            best_read,
            polished,
            feasible,
            qubo_variables: qubo.num_variables(),
            qubo_interactions: qubo.quadratic().num_interactions(),
            samples,
            planning_time: started.elapsed(),
        })
    }
}
