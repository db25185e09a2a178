//! Parallel tempering (replica exchange Monte Carlo).
//!
//! `R` replicas run Metropolis sweeps at inverse temperatures `β_0 < … < β_{R-1}` (in parallel
//! with rayon); after every `sweeps_per_exchange` sweeps, neighbouring replicas swap states
//! with probability `min(1, exp((β_{k+1} - β_k)(E_{k+1} - E_k)))`, which keeps each replica at
//! equilibrium while letting states escape local minima at hot temperatures.
//!
//! **Adaptive ladder.** The ladder starts geometric between the model's default β range.
//! During the first `adapt_fraction` of the run it is re-spaced every window: in log-β, each
//! gap is stretched when its pair exchanges more often than average and shrunk when less,
//! with the end points fixed, which drives the exchange rates toward uniform. Statistics in
//! the report count only the production phase after adaptation.
//!
//! Each temperature slot owns its random generator (it does not move with the swapped state),
//! so results do not depend on thread scheduling.

use std::time::Instant;

use rayon::prelude::*;

use super::RunStats;
use super::SampleSet;
use super::Sampler;
use super::metropolis::SpinState;
use super::result::ratio;
use super::sa::collect_reads;
use super::schedule::check_beta_range;
use super::schedule::default_beta_range;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Ising;
use crate::rng::Rng;

/// Parallel-tempering parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelTempering {
    /// Independent runs.
    pub num_reads: usize,
    /// Temperatures in the ladder (at least 2).
    pub num_replicas: usize,
    /// Sweeps each replica performs per read.
    pub num_sweeps: usize,
    /// Sweeps between exchange attempts.
    pub sweeps_per_exchange: usize,
    /// `(hottest β, coldest β)`; `None` uses [`default_beta_range`].
    pub beta_range: Option<(f64, f64)>,
    /// Fraction of the sweeps spent adapting the ladder (0 disables adaptation).
    pub adapt_fraction: f64,
    /// Seed of the whole run.
    pub seed: u64,
}

impl Default for ParallelTempering {
    fn default() -> Self {
        Self {
            num_reads: 1,
            num_replicas: 16,
            num_sweeps: 2000,
            sweeps_per_exchange: 1,
            beta_range: None,
            adapt_fraction: 0.25,
            seed: 0,
        }
    }
}

/// Exchange attempts and acceptances between ladder slots `k` and `k + 1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeStats {
    /// Swaps proposed.
    pub attempted: u64,
    /// Swaps accepted.
    pub accepted: u64,
}

impl ExchangeStats {
    /// Fraction of proposed swaps accepted.
    #[must_use]
    pub fn rate(&self) -> f64 {
        if self.attempted == 0 {
            0.0
        } else {
            ratio(self.accepted, self.attempted)
        }
    }
}

/// The ladder and exchange statistics of one read.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderReport {
    /// The final β ladder, hottest first.
    pub betas: Vec<f64>,
    /// Production-phase exchange statistics per adjacent pair.
    pub exchanges: Vec<ExchangeStats>,
}

/// Samples plus the per-read ladders.
#[derive(Debug, Clone, PartialEq)]
pub struct TemperingReport {
    /// Best final sample over reads and replicas.
    pub samples: SampleSet,
    /// One ladder report per read.
    pub ladders: Vec<LadderReport>,
}

struct ReadOutcome {
    bits: Vec<u8>,
    energy: f64,
    accepted: u64,
    ladder: LadderReport,
}

impl ParallelTempering {
    fn validate(&self, model: &Ising) -> Result<(f64, f64)> {
        if self.num_reads == 0 {
            return Err(QuantumError::invalid("num_reads", "need at least one read"));
        }
        if self.num_replicas < 2 {
            return Err(QuantumError::invalid(
                "num_replicas",
                "need at least two replicas",
            ));
        }
        if self.sweeps_per_exchange == 0 {
            return Err(QuantumError::invalid(
                "sweeps_per_exchange",
                "need at least one",
            ));
        }
        if !(0.0..1.0).contains(&self.adapt_fraction) {
            return Err(QuantumError::invalid(
                "adapt_fraction",
                "need a fraction in [0, 1)",
            ));
        }
        match self.beta_range {
            Some(range) => check_beta_range(range).map(|()| range),
            None => Ok(default_beta_range(model)),
        }
    }

    /// Runs parallel tempering and returns the samples together with each read's final
    /// ladder and exchange statistics.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) for zero reads, fewer than two
    /// replicas, zero sweeps per exchange, an adapt fraction outside `[0, 1)`, or a bad β range.
    pub fn run(&self, model: &Ising) -> Result<TemperingReport> {
        let range = self.validate(model)?;
        let started = Instant::now();
        let outcomes: Vec<ReadOutcome> = (0..self.num_reads)
            .map(|read| self.run_one(model, range, read))
            .collect();
        let proposed =
            (model.num_variables() * self.num_sweeps * self.num_replicas * self.num_reads) as u64;
        let mut ladders = Vec::with_capacity(outcomes.len());
        let reads = outcomes.into_iter().map(|o| {
            ladders.push(o.ladder);
            (o.bits, o.energy, o.accepted)
        });
        let samples = collect_reads(
            self.name(),
            reads,
            RunStats {
                wall_time: std::time::Duration::ZERO,
                reads: self.num_reads,
                sweeps_per_read: self.num_sweeps,
                proposed_moves: proposed,
                accepted_moves: 0,
            },
        );
        let mut samples = samples;
        samples.stats.wall_time = started.elapsed();
        Ok(TemperingReport { samples, ladders })
    }

    fn run_one(&self, model: &Ising, range: (f64, f64), read: usize) -> ReadOutcome {
        let r = self.num_replicas;
        let stream_base = (read as u64) << 32;
        let mut rngs: Vec<Rng> = (0..r)
            .map(|k| Rng::for_stream(self.seed, stream_base + k as u64))
            .collect();
        let mut exchange_rng = Rng::for_stream(self.seed, stream_base + r as u64);
        let mut states: Vec<SpinState> = rngs
            .iter_mut()
            .map(|rng| SpinState::random(model, rng))
            .collect();
        let mut log_gaps = vec![(range.1 / range.0).ln() / (r - 1) as f64; r - 1];
        let mut betas = ladder(range.0, &log_gaps);

        let rounds = self.num_sweeps.div_ceil(self.sweeps_per_exchange);
        let adapt_rounds = ((rounds as f64) * self.adapt_fraction) as usize;
        let window = (adapt_rounds / 20).max(10);
        let mut stats = vec![ExchangeStats::default(); r - 1];
        let coldest_start = &states[r - 1];
        let mut best_energy = coldest_start.energy;
        let mut best_spins = coldest_start.spins.clone();
        let mut accepted = 0;
        let csr = model.couplings().csr();
        let mut sweeps_done = 0;

        for round in 0..rounds {
            let sweeps = self.sweeps_per_exchange.min(self.num_sweeps - sweeps_done);
            sweeps_done += sweeps;
            accepted += states
                .par_iter_mut()
                .zip(rngs.par_iter_mut())
                .zip(betas.par_iter())
                .map(|((state, rng), &beta)| {
                    (0..sweeps)
                        .map(|_| state.sweep(csr, beta, rng))
                        .sum::<u64>()
                })
                .sum::<u64>();
            for state in &states {
                if state.energy < best_energy {
                    best_energy = state.energy;
                    best_spins.clone_from(&state.spins);
                }
            }
            // Alternate even and odd pairs so every pair is tried every other round.
            for k in (round % 2..r - 1).step_by(2) {
                let log_accept =
                    (betas[k + 1] - betas[k]) * (states[k + 1].energy - states[k].energy);
                let swap = log_accept >= 0.0 || exchange_rng.next_f64() < log_accept.exp();
                stats[k].attempted += 1;
                if swap {
                    stats[k].accepted += 1;
                    states.swap(k, k + 1);
                }
            }
            if round < adapt_rounds && (round + 1) % window == 0 {
                respace(&mut log_gaps, &stats);
                betas = ladder(range.0, &log_gaps);
                stats.fill(ExchangeStats::default());
            }
            if round + 1 == adapt_rounds {
                stats.fill(ExchangeStats::default());
            }
        }
        let final_state = SpinState::new(model, best_spins);
        ReadOutcome {
            energy: final_state.exact_energy(model),
            bits: final_state.bits(),
            accepted,
            ladder: LadderReport {
                betas,
                exchanges: stats,
            },
        }
    }
}

/// β values from the hottest `start` and the log-gaps between neighbours.
fn ladder(start: f64, log_gaps: &[f64]) -> Vec<f64> {
    let mut betas = Vec::with_capacity(log_gaps.len() + 1);
    let mut log_beta = start.ln();
    betas.push(start);
    for gap in log_gaps {
        log_beta += gap;
        betas.push(log_beta.exp());
    }
    betas
}

/// Stretches gaps whose pairs exchange more often than average and shrinks the others
/// (by at most a factor of 2 per window), keeping the total span fixed.
fn respace(log_gaps: &mut [f64], stats: &[ExchangeStats]) {
    let rates: Vec<f64> = stats.iter().map(ExchangeStats::rate).collect();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let span: f64 = log_gaps.iter().sum();
    for (gap, rate) in log_gaps.iter_mut().zip(&rates) {
        let factor = ((rate + 0.02) / (mean + 0.02)).sqrt().clamp(0.5, 2.0);
        *gap *= factor;
    }
    let scaled: f64 = log_gaps.iter().sum();
    for gap in log_gaps.iter_mut() {
        *gap *= span / scaled;
    }
}

impl Sampler for ParallelTempering {
    fn name(&self) -> &'static str {
        "parallel-tempering"
    }

    fn sample_ising(&self, model: &Ising) -> Result<SampleSet> {
        Ok(self.run(model)?.samples)
    }
}
