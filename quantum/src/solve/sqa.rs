//! Simulated quantum annealing: path-integral Monte Carlo on the transverse-field Ising model.
//!
//! The annealed Hamiltonian is `H(s) = -A(s) Σ_i σˣ_i + B(s) H_problem`, `s` going from 0 to 1.
//! The Suzuki–Trotter decomposition with `P` slices maps its thermal state at temperature `T`
//! onto `P` classical copies ("replicas") of the spins, simulated at temperature `P·T`, with
//! energy
//!
//! `Σ_k B(s) H_problem(σ^k) - J⊥ Σ_k Σ_i σ_i^k σ_i^{k+1}`  (slices periodic in `k`),
//! `J⊥ = -(P T / 2) · ln tanh(A(s) / (P T))`.
//!
//! A large transverse field `A` gives a weak `J⊥` and the replicas explore independently;
//! as `A → 0`, `J⊥` grows and the replicas lock together into one classical state. Moves are
//! Metropolis single-spin flips within a slice and, optionally, global moves flipping one spin
//! in every slice at once (which leave the `J⊥` term unchanged). The result of a read is its
//! best slice at the end of the schedule.
//!
//! This is a classical Monte Carlo simulation: it runs on the CPU in time proportional to
//! `P · sweeps · (n + m)` and shows no quantum speed-up.

use std::time::Instant;

use rayon::prelude::*;

use super::RunStats;
use super::SampleSet;
use super::Sampler;
use super::metropolis::ExpTable;
use super::metropolis::accept_uphill;
use super::sa::collect_reads;
use super::schedule::default_beta_range;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Csr;
use crate::model::Ising;
use crate::rng::Rng;

/// How the transverse field `A(s) = Γ` falls from `gamma_range.0` to `gamma_range.1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GammaSchedule {
    /// Equal steps in Γ.
    Linear,
    /// Equal ratios in Γ.
    Exponential,
    /// Exponential-like, with the step in `ln Γ` set each sweep: the remaining log-distance is
    /// split evenly over the remaining sweeps and scaled by a factor that shrinks (×0.9, down
    /// to 0.25) while the single-spin acceptance rate is below `target_acceptance` and grows
    /// (×1.1, up to 4) while above it. The anneal thus slows where the system starts to freeze
    /// and always ends exactly at the final Γ.
    Adaptive {
        /// Acceptance rate the step size steers toward, in `(0, 1)`.
        target_acceptance: f64,
    },
}

/// Simulated-quantum-annealing parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedQuantumAnnealing {
    /// Independent reads (run in parallel).
    pub num_reads: usize,
    /// Monte Carlo sweeps per read; each sweep visits every spin of every slice once.
    pub num_sweeps: usize,
    /// Trotter slices `P`.
    pub trotter_slices: usize,
    /// `1 / (P T)`, the inverse temperature of each classical slice. `None` picks half the
    /// model's default cold β (see [`default_beta_range`]), cold enough that the problem term
    /// dominates once Γ is small.
    pub slice_beta: Option<f64>,
    /// Transverse field at the start and end, `Γ0 > Γ1 > 0`. `None` uses
    /// `(3 · max field, 10⁻³ · max field)`, where "max field" bounds the largest local field.
    pub gamma_range: Option<(f64, f64)>,
    /// Shape of the Γ schedule.
    pub schedule: GammaSchedule,
    /// `(B(0), B(1))`, the problem term's weight at both ends, ramped linearly; `(1, 1)` keeps
    /// it constant as in Martoňák, Santoro & Tosatti (2002).
    pub problem_scale: (f64, f64),
    /// Also propose flipping each spin in all slices at once after every sweep.
    pub global_moves: bool,
    /// Seed of the whole run.
    pub seed: u64,
}

impl Default for SimulatedQuantumAnnealing {
    fn default() -> Self {
        Self {
            num_reads: 16,
            num_sweeps: 1000,
            trotter_slices: 16,
            slice_beta: None,
            gamma_range: None,
            schedule: GammaSchedule::Exponential,
            problem_scale: (1.0, 1.0),
            global_moves: false,
            seed: 0,
        }
    }
}

/// Validated, resolved parameters.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    slice_beta: f64,
    gamma: (f64, f64),
}

struct ReadOutcome {
    bits: Vec<u8>,
    energy: f64,
    accepted: u64,
    proposed: u64,
}

/// All slices of one read: spins and cached problem local fields, slice-major.
struct Replicas<'a> {
    n: usize,
    slices: usize,
    spins: Vec<f64>,
    field: Vec<f64>,
    csr: Csr<'a>,
}

impl<'a> Replicas<'a> {
    fn random(model: &'a Ising, slices: usize, rng: &mut Rng) -> Self {
        let n = model.num_variables();
        let mut spins = Vec::with_capacity(n * slices);
        for _ in 0..n * slices {
            spins.push(if rng.coin() { 1.0 } else { -1.0 });
        }
        let mut field = vec![0.0; n * slices];
        for k in 0..slices {
            let slice = &spins[k * n..(k + 1) * n];
            for i in 0..n {
                field[k * n + i] = model.local_field(slice, i);
            }
        }
        Self {
            n,
            slices,
            spins,
            field,
            csr: model.couplings().csr(),
        }
    }

    /// Problem-energy change if spin `i` of slice `k` were flipped.
    #[inline]
    fn delta(&self, k: usize, i: usize) -> f64 {
        let at = k * self.n + i;
        -2.0 * self.spins[at] * self.field[at]
    }

    /// Flips spin `i` of slice `k`, updating that slice's cached fields.
    #[inline]
    fn flip(&mut self, k: usize, i: usize) {
        let base = k * self.n;
        let flipped = -self.spins[base + i];
        self.spins[base + i] = flipped;
        let (lo, hi) = (self.csr.offsets[i], self.csr.offsets[i + 1]);
        let scale = 2.0 * flipped;
        let field = &mut self.field[base..base + self.n];
        for (&j, &w) in self.csr.neighbours[lo..hi]
            .iter()
            .zip(&self.csr.weights[lo..hi])
        {
            field[j as usize] += scale * w;
        }
    }

    /// One local sweep; returns accepted moves.
    fn local_sweep(&mut self, beta: f64, problem: f64, j_perp: f64, rng: &mut Rng) -> u64 {
        let (n, p) = (self.n, self.slices);
        let table = ExpTable::get();
        let mut accepted = 0;
        for k in 0..p {
            let up = ((k + 1) % p) * n;
            let down = ((k + p - 1) % p) * n;
            for i in 0..n {
                let s = self.spins[k * n + i];
                let neighbours = self.spins[up + i] + self.spins[down + i];
                let change = problem * self.delta(k, i) + 2.0 * j_perp * s * neighbours;
                if change <= 0.0 || accept_uphill(beta * change, rng, &table) {
                    self.flip(k, i);
                    accepted += 1;
                }
            }
        }
        accepted
    }

    /// One sweep of global moves (spin `i` flipped in every slice); returns accepted moves.
    fn global_sweep(&mut self, beta: f64, problem: f64, rng: &mut Rng) -> u64 {
        let (n, p) = (self.n, self.slices);
        let table = ExpTable::get();
        let mut accepted = 0;
        for i in 0..n {
            let change: f64 = problem * (0..p).map(|k| self.delta(k, i)).sum::<f64>();
            if change <= 0.0 || accept_uphill(beta * change, rng, &table) {
                for k in 0..p {
                    self.flip(k, i);
                }
                accepted += 1;
            }
        }
        accepted
    }

    fn slice(&self, k: usize) -> &[f64] {
        &self.spins[k * self.n..(k + 1) * self.n]
    }
}

/// `J⊥ = -(P T / 2) ln tanh(Γ / (P T))` with `P T = 1 / slice_beta`.
fn j_perp(gamma: f64, slice_beta: f64) -> f64 {
    let pt = 1.0 / slice_beta;
    let t = (gamma / pt).tanh().max(f64::MIN_POSITIVE);
    -(pt / 2.0) * t.ln()
}

impl SimulatedQuantumAnnealing {
    fn resolve(&self, model: &Ising) -> Result<Resolved> {
        if self.num_reads == 0 {
            return Err(QuantumError::invalid("num_reads", "need at least one read"));
        }
        if self.trotter_slices < 2 {
            return Err(QuantumError::invalid(
                "trotter_slices",
                "need at least two slices",
            ));
        }
        let scale = model.max_abs_field().max(f64::MIN_POSITIVE);
        let slice_beta = self
            .slice_beta
            .unwrap_or_else(|| default_beta_range(model).1 / 2.0);
        if !(slice_beta.is_finite() && slice_beta > 0.0) {
            return Err(QuantumError::invalid(
                "slice_beta",
                format!("need a positive value, got {slice_beta}"),
            ));
        }
        let gamma = self.gamma_range.unwrap_or((3.0 * scale, 1e-3 * scale));
        if !(gamma.0.is_finite() && gamma.1 > 0.0 && gamma.0 >= gamma.1) {
            return Err(QuantumError::invalid(
                "gamma_range",
                format!("need Γ0 >= Γ1 > 0, got ({}, {})", gamma.0, gamma.1),
            ));
        }
        let (b0, b1) = self.problem_scale;
        if !(b0.is_finite() && b1.is_finite() && b0 >= 0.0 && b1 > 0.0) {
            return Err(QuantumError::invalid(
                "problem_scale",
                "need B(0) >= 0 and B(1) > 0",
            ));
        }
        if let GammaSchedule::Adaptive { target_acceptance } = self.schedule
            && !(target_acceptance > 0.0 && target_acceptance < 1.0)
        {
            return Err(QuantumError::invalid(
                "target_acceptance",
                "need a rate in (0, 1)",
            ));
        }
        Ok(Resolved { slice_beta, gamma })
    }

    fn anneal_one(&self, model: &Ising, resolved: Resolved, read: usize) -> ReadOutcome {
        let mut rng = Rng::for_stream(self.seed, read as u64);
        let p = self.trotter_slices;
        let n = model.num_variables();
        let mut replicas = Replicas::random(model, p, &mut rng);
        let (gamma0, gamma1) = resolved.gamma;
        let beta = resolved.slice_beta;
        let sweeps = self.num_sweeps;
        let mut accepted = 0;
        let mut proposed = 0;
        let mut log_gamma = gamma0.ln();
        let mut step_factor = 1.0f64;
        for sweep in 0..sweeps {
            let s = if sweeps > 1 {
                sweep as f64 / (sweeps - 1) as f64
            } else {
                1.0
            };
            let gamma = match self.schedule {
                GammaSchedule::Linear => gamma0 + (gamma1 - gamma0) * s,
                GammaSchedule::Exponential => gamma0 * (gamma1 / gamma0).powf(s),
                GammaSchedule::Adaptive { .. } => log_gamma.exp(),
            };
            let problem = self.problem_scale.0 + (self.problem_scale.1 - self.problem_scale.0) * s;
            let local = replicas.local_sweep(beta, problem, j_perp(gamma, beta), &mut rng);
            accepted += local;
            proposed += (n * p) as u64;
            if self.global_moves {
                accepted += replicas.global_sweep(beta, problem, &mut rng);
                proposed += n as u64;
            }
            if let GammaSchedule::Adaptive { target_acceptance } = self.schedule {
                let rate = local as f64 / (n * p).max(1) as f64;
                step_factor = if rate < target_acceptance {
                    (step_factor * 0.9).max(0.25)
                } else {
                    (step_factor * 1.1).min(4.0)
                };
                let remaining = (sweeps - sweep - 1) as f64;
                let distance = log_gamma - gamma1.ln();
                log_gamma -= if remaining <= 1.0 {
                    distance
                } else {
                    (step_factor * distance / remaining).min(distance)
                };
            }
        }
        let (energy, best_slice) = (0..p)
            .map(|k| (model.energy_of(replicas.slice(k)), k))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("at least two slices");
        ReadOutcome {
            bits: replicas
                .slice(best_slice)
                .iter()
                .map(|&x| u8::from(x > 0.0))
                .collect(),
            energy,
            accepted,
            proposed,
        }
    }
}

impl Sampler for SimulatedQuantumAnnealing {
    fn name(&self) -> &'static str {
        "sqa"
    }

    fn sample_ising(&self, model: &Ising) -> Result<SampleSet> {
        let resolved = self.resolve(model)?;
        let started = Instant::now();
        let outcomes: Vec<ReadOutcome> = (0..self.num_reads)
            .into_par_iter()
            .map(|read| self.anneal_one(model, resolved, read))
            .collect();
        let proposed = outcomes.iter().map(|o| o.proposed).sum();
        let mut samples = collect_reads(
            self.name(),
            outcomes.into_iter().map(|o| (o.bits, o.energy, o.accepted)),
            RunStats {
                wall_time: std::time::Duration::ZERO,
                reads: self.num_reads,
                sweeps_per_read: self.num_sweeps,
                proposed_moves: proposed,
                accepted_moves: 0,
            },
        );
        samples.stats.wall_time = started.elapsed();
        Ok(samples)
    }
}
