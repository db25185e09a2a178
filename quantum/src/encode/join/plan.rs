//! Planning a join order with any [`Sampler`]: encode, sample, decode, polish, and report
//! everything an `EXPLAIN` needs.

use std::time::Duration;
use std::time::Instant;

use super::JoinOrder;
use super::JoinOrderProblem;
use super::JoinOrderQubo;
use super::PolishEffort;
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
    /// The best order reached by iterated local search
    /// ([`JoinOrderProblem::iterated_improve`], [`Polish::kicks`] kicks each) from the
    /// [`Polish::starts`] cheapest distinct decoded reads; never costlier than `best_read`.
    pub polished: JoinOrder,
    /// The polish settings used.
    pub polish: Polish,
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

/// How many of the cheapest distinct decoded reads local search starts from by default.
pub const POLISH_STARTS: usize = 4;

/// How [`JoinOrderProblem::plan_with_polish`] polishes the decoded reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polish {
    /// Iterated local search starts from this many of the cheapest distinct decoded reads.
    pub starts: usize,
    /// Perturbation kicks per start (0: plain local search, as [`JoinOrderProblem::improve`]).
    pub kicks: usize,
    /// Seed of the kicks; start `i` uses `seed + i`.
    pub seed: u64,
}

impl Polish {
    /// The default for `n` relations: [`POLISH_STARTS`] starts with `2n` kicks each.
    #[must_use]
    pub fn default_for(n: usize) -> Self {
        Self {
            starts: POLISH_STARTS,
            kicks: 2 * n,
            seed: 0,
        }
    }
}

impl JoinOrderProblem {
    /// Plans this query with `sampler` through the join-order QUBO: decodes every read, keeps
    /// the order with the lowest true `C_out` (the QUBO minimises a logarithmic surrogate, so
    /// its best sample need not be the cheapest plan), and polishes the [`POLISH_STARTS`]
    /// cheapest distinct orders with iterated local search ([`Polish::default_for`]: `2n`
    /// kicks per start). Only decoded reads are used as starts; no classical plan is injected.
    ///
    /// Use [`PermutationAnnealing`](crate::solve::PermutationAnnealing) as the sampler: on this
    /// QUBO single-flip samplers end far from the minimum (see the `qubo` module notes).
    ///
    /// # Errors
    /// Whatever the sampler reports (invalid parameters, size limits).
    pub fn plan_with(&self, sampler: &dyn Sampler) -> Result<AnnealedPlan> {
        self.plan_with_polish(sampler, Polish::default_for(self.num_relations()))
    }

    /// [`plan_with`](Self::plan_with) with explicit polish settings.
    ///
    /// # Errors
    /// Whatever the sampler reports (invalid parameters, size limits).
    pub fn plan_with_polish(&self, sampler: &dyn Sampler, polish: Polish) -> Result<AnnealedPlan> {
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
        for (i, start) in decoded.iter().take(polish.starts).enumerate() {
            let effort = PolishEffort {
                kicks: polish.kicks,
                seed: polish.seed.wrapping_add(i as u64),
            };
            let local_optimum = self.iterated_improve(&start.order, effort)?;
            if local_optimum.cost < polished.cost {
                polished = local_optimum;
            }
        }
        Ok(AnnealedPlan {
            raw,
            best_read,
            polished,
            polish,
            feasible,
            qubo_variables: qubo.num_variables(),
            qubo_interactions: qubo.quadratic().num_interactions(),
            samples,
            planning_time: started.elapsed(),
        })
    }
}
