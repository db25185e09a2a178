//! Simulated annealing restricted to permutation matrices: for QUBOs whose `n²` bits form an
//! `n × n` assignment (bit `r·n + p` means "item `r` at position `p`", as in the TSP and
//! join-order encodings).
//!
//! Single-flip samplers have to leave the feasible set to move between two permutations: a
//! swap is four flips, and the intermediate states pay the one-hot penalties, which are large by
//! design. On the join-order QUBO, 300-sweep single-flip annealing ends far above the QUBO's
//! minimum whatever the penalty weight (see `docs/quantum.md`). This sampler instead starts
//! from a random permutation and proposes only *swaps* (rows `a` and `b` exchange their
//! columns `p` and `q`: four bits change at once), so every state it visits is a permutation
//! and the penalty terms are constant. The energy change of a swap is computed exactly from
//! the QUBO (cached local fields plus the six pairwise couplings among the four bits), so the
//! sampler minimises the QUBO's energy over permutations; it never returns an infeasible
//! sample. This is the classical counterpart of constraint-preserving ("XY") mixers; it is
//! not a model of any quantum device.
//!
//! **Schedule.** A sweep is `n(n-1)/2` random swap proposals. β runs geometrically from
//! `β_hot = ln 2 / q₉₀` to `β_cold = ln 100 / q₁₀`, where `q₉₀` and `q₁₀` are the 90th and
//! 10th percentiles of `|ΔE|` over nonzero random swaps of random permutations (a seeded
//! probe run before the reads): at the start a typical large move is accepted half the time,
//! at the end a small one 1% of the time.

use std::time::Instant;

use rayon::prelude::*;

use super::RunStats;
use super::SampleSet;
use super::Sampler;
use super::sa::collect_reads;
use super::schedule::BetaSchedule;
use super::schedule::check_beta_range;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Ising;
use crate::model::Qubo;
use crate::rng::Rng;

/// Simulated annealing over permutation matrices with swap moves.
#[derive(Debug, Clone, PartialEq)]
pub struct PermutationAnnealing {
    /// Independent restarts (in parallel, each from its own random permutation).
    pub num_reads: usize,
    /// Sweeps per read; a sweep is `n(n-1)/2` swap proposals.
    pub num_sweeps: usize,
    /// `(hot β, cold β)`; `None` probes the model (see the module docs).
    pub beta_range: Option<(f64, f64)>,
    /// Seed of the whole run; read `r` uses stream `r`.
    pub seed: u64,
}

impl Default for PermutationAnnealing {
    fn default() -> Self {
        Self {
            num_reads: 16,
            num_sweeps: 30,
            beta_range: None,
            seed: 0,
        }
    }
}

/// A QUBO with every row's neighbours sorted, for O(log degree) coupling look-ups.
struct SortedQubo {
    linear: Vec<f64>,
    offsets: Vec<usize>,
    neighbours: Vec<u32>,
    weights: Vec<f64>,
}

impl SortedQubo {
    fn new(qubo: &Qubo) -> Self {
        let n = qubo.num_variables();
        let adjacency = qubo.quadratic();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut neighbours = Vec::new();
        let mut weights = Vec::new();
        let mut row: Vec<(u32, f64)> = Vec::new();
        for i in 0..n {
            let (cols, ws) = adjacency.row(i);
            row.clear();
            row.extend(cols.iter().copied().zip(ws.iter().copied()));
            row.sort_unstable_by_key(|&(j, _)| j);
            neighbours.extend(row.iter().map(|&(j, _)| j));
            weights.extend(row.iter().map(|&(_, w)| w));
            offsets.push(neighbours.len());
        }
        Self {
            linear: qubo.linear().to_vec(),
            offsets,
            neighbours,
            weights,
        }
    }

    fn coupling(&self, i: usize, j: usize) -> f64 {
        let range = self.offsets[i]..self.offsets[i + 1];
        let cols = &self.neighbours[range.clone()];
        let j = u32::try_from(j).unwrap_or(u32::MAX);
        cols.binary_search(&j)
            .map_or(0.0, |at| self.weights[range.start + at])
    }
}

/// One read's state: the permutation and every bit's local field `a_i + Σ_j b_ij x_j`.
struct PermState<'a> {
    model: &'a SortedQubo,
    n: usize,
    /// `column[r]`: the position of item `r`.
    column: Vec<usize>,
    field: Vec<f64>,
}

impl<'a> PermState<'a> {
    fn random(model: &'a SortedQubo, n: usize, rng: &mut Rng) -> Self {
        let mut column: Vec<usize> = (0..n).collect();
        for k in (1..n).rev() {
            column.swap(k, rng.below(k + 1));
        }
        let mut state = Self {
            model,
            n,
            column,
            field: model.linear.clone(),
        };
        for r in 0..n {
            state.add_bit(r * n + state.column[r], 1.0);
        }
        state
    }

    /// Adds `sign · b_ij` to every neighbour's field (a bit turning on or off).
    fn add_bit(&mut self, i: usize, sign: f64) {
        let m = self.model;
        for at in m.offsets[i]..m.offsets[i + 1] {
            self.field[m.neighbours[at] as usize] += sign * m.weights[at];
        }
    }

    /// Energy change of exchanging the columns of rows `a` and `b`.
    fn swap_delta(&self, a: usize, b: usize) -> f64 {
        let n = self.n;
        let (p, q) = (self.column[a], self.column[b]);
        let off = [a * n + p, b * n + q];
        let on = [a * n + q, b * n + p];
        let m = self.model;
        // Turning `off` bits off (d = -1) and `on` bits on (d = +1):
        // ΔE = Σ d_s f_s + Σ_{s<t} d_s d_t b_st, with the fields taken before the move.
        let mut delta =
            self.field[on[0]] + self.field[on[1]] - self.field[off[0]] - self.field[off[1]];
        delta += m.coupling(off[0], off[1]) + m.coupling(on[0], on[1]);
        for &x in &off {
            for &y in &on {
                delta -= m.coupling(x, y);
            }
        }
        delta
    }

    fn apply_swap(&mut self, a: usize, b: usize) {
        let n = self.n;
        let (p, q) = (self.column[a], self.column[b]);
        self.add_bit(a * n + p, -1.0);
        self.add_bit(b * n + q, -1.0);
        self.add_bit(a * n + q, 1.0);
        self.add_bit(b * n + p, 1.0);
        self.column.swap(a, b);
    }

    fn bits(&self) -> Vec<u8> {
        let n = self.n;
        let mut bits = vec![0u8; n * n];
        for (r, &p) in self.column.iter().enumerate() {
            bits[r * n + p] = 1;
        }
        bits
    }
}

/// Two distinct rows, uniformly.
fn random_pair(n: usize, rng: &mut Rng) -> (usize, usize) {
    let a = rng.below(n);
    let mut b = rng.below(n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

/// The side `n` of an `n × n` assignment QUBO with `variables` bits.
fn side(variables: usize) -> Result<usize> {
    let n = variables.isqrt();
    if n * n != variables || n < 2 {
        return Err(QuantumError::invalid(
            "model",
            format!("permutation annealing needs n² variables with n ≥ 2, got {variables}"),
        ));
    }
    Ok(n)
}

impl PermutationAnnealing {
    /// The probed β range of the module docs.
    fn probe_range(&self, model: &SortedQubo, n: usize) -> (f64, f64) {
        let mut rng = Rng::for_stream(self.seed, u64::MAX);
        let mut magnitudes = Vec::new();
        for _ in 0..8 {
            let mut state = PermState::random(model, n, &mut rng);
            for _ in 0..4 * n {
                let (a, b) = random_pair(n, &mut rng);
                let delta = state.swap_delta(a, b).abs();
                if delta > 1e-12 {
                    magnitudes.push(delta);
                }
                state.apply_swap(a, b);
            }
        }
        if magnitudes.is_empty() {
            return (0.1, 1.0);
        }
        magnitudes.sort_unstable_by(f64::total_cmp);
        let quantile = |q: f64| magnitudes[((magnitudes.len() - 1) as f64 * q) as usize];
        let hot = std::f64::consts::LN_2 / quantile(0.9);
        let cold = 100f64.ln() / quantile(0.1);
        (hot, cold.max(hot))
    }

    /// Samples an assignment QUBO directly.
    fn sample(&self, qubo: &Qubo) -> Result<SampleSet> {
        if self.num_reads == 0 {
            return Err(QuantumError::invalid("num_reads", "need at least one read"));
        }
        let n = side(qubo.num_variables())?;
        let started = Instant::now();
        let model = SortedQubo::new(qubo);
        let range = match self.beta_range {
            Some(range) => {
                check_beta_range(range)?;
                range
            }
            None => self.probe_range(&model, n),
        };
        let betas = BetaSchedule::Geometric.betas(range, self.num_sweeps);
        let per_sweep = n * (n - 1) / 2;
        let reads: Vec<(Vec<u8>, f64, u64)> = (0..self.num_reads)
            .into_par_iter()
            .map(|read| {
                let mut rng = Rng::for_stream(self.seed, read as u64);
                let mut state = PermState::random(&model, n, &mut rng);
                let mut accepted = 0u64;
                for &beta in &betas {
                    for _ in 0..per_sweep {
                        let (a, b) = random_pair(n, &mut rng);
                        let delta = state.swap_delta(a, b);
                        if delta <= 0.0 || rng.next_f64() < (-beta * delta).exp() {
                            state.apply_swap(a, b);
                            accepted += 1;
                        }
                    }
                }
                let bits = state.bits();
                let energy = qubo
                    .energy(&bits)
                    .expect("the state has one bit per variable");
                (bits, energy, accepted)
            })
            .collect();
        Ok(collect_reads(
            "permutation-annealing",
            reads.into_iter(),
            RunStats {
                wall_time: started.elapsed(),
                reads: self.num_reads,
                sweeps_per_read: self.num_sweeps,
                proposed_moves: (per_sweep * self.num_sweeps * self.num_reads) as u64,
                accepted_moves: 0,
            },
        ))
    }
}

impl Sampler for PermutationAnnealing {
    fn name(&self) -> &'static str {
        "permutation-annealing"
    }

    /// Samples the model's QUBO form (same bits, same energies).
    fn sample_ising(&self, model: &Ising) -> Result<SampleSet> {
        self.sample(&model.to_qubo())
    }

    fn sample_qubo(&self, model: &Qubo) -> Result<SampleSet> {
        self.sample(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encoding;
    use crate::encode::join::JoinOrderQubo;
    use crate::encode::join::problem::tests::random_problem;
    use crate::encode::tour::tests_support::permutations;

    #[test]
    fn test_swap_delta_matches_energy_difference() {
        let problem = random_problem(6, 3, 5);
        let encoding = JoinOrderQubo::new(&problem);
        let model = SortedQubo::new(encoding.qubo());
        let mut rng = Rng::new(3);
        let mut state = PermState::random(&model, 6, &mut rng);
        for _ in 0..200 {
            let (a, b) = random_pair(6, &mut rng);
            let before = encoding.qubo().energy(&state.bits()).unwrap();
            let delta = state.swap_delta(a, b);
            state.apply_swap(a, b);
            let after = encoding.qubo().energy(&state.bits()).unwrap();
            assert!((after - before - delta).abs() < 1e-6 * (1.0 + before.abs()));
        }
        // The cached fields still match a fresh state's.
        let fresh_bits = state.bits();
        for (i, f) in state.field.iter().enumerate() {
            let mut bits = fresh_bits.clone();
            bits[i] = 1;
            let mut cleared = fresh_bits.clone();
            cleared[i] = 0;
            let expected =
                encoding.qubo().energy(&bits).unwrap() - encoding.qubo().energy(&cleared).unwrap();
            assert!(
                (f - expected).abs() < 1e-6 * (1.0 + expected.abs()),
                "bit {i}"
            );
        }
    }

    #[test]
    fn test_finds_the_qubo_minimum_of_small_join_orders_and_stays_feasible() {
        for seed in 0..4 {
            let problem = random_problem(6, 2, 20 + seed);
            let encoding = JoinOrderQubo::new(&problem);
            let minimum = permutations(&[0, 1, 2, 3, 4, 5])
                .iter()
                .map(|p| encoding.surrogate_cost(p).unwrap())
                .fold(f64::INFINITY, f64::min);
            let sampler = PermutationAnnealing {
                num_reads: 8,
                num_sweeps: 100,
                seed,
                ..Default::default()
            };
            let set = sampler.sample_qubo(encoding.qubo()).unwrap();
            for sample in &set.samples {
                assert!(encoding.is_feasible(&sample.bits));
            }
            assert!(
                (set.best.energy - minimum).abs() < 1e-6 * (1.0 + minimum.abs()),
                "seed {seed}: {} vs {minimum}",
                set.best.energy
            );
            // Same seed, same answer; the Ising entry point (whose coefficients differ by
            // rounding) reaches the same energy.
            let again = sampler.sample_qubo(encoding.qubo()).unwrap();
            assert_eq!(again.best.bits, set.best.bits);
            let via_ising = sampler.sample_ising(&encoding.qubo().to_ising()).unwrap();
            assert!((via_ising.best.energy - set.best.energy).abs() < 1e-6 * (1.0 + minimum.abs()));
        }
    }

    #[test]
    fn test_rejects_models_that_are_not_square() {
        let qubo = Qubo::builder(5).build().unwrap();
        assert!(PermutationAnnealing::default().sample_qubo(&qubo).is_err());
        let sampler = PermutationAnnealing {
            num_reads: 0,
            ..Default::default()
        };
        assert!(
            sampler
                .sample_qubo(&Qubo::builder(4).build().unwrap())
                .is_err()
        );
    }
}
