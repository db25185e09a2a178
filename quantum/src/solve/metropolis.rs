//! The Metropolis single-spin kernel shared by simulated annealing, parallel tempering and
//! the exact enumerator.
//!
//! A [`SpinState`] caches every spin's local field `f_i = h_i + Σ_j J_ij s_j`, so the energy
//! change of a proposed flip, `delta_i = -2 s_i f_i`, costs O(1). An accepted flip of spin `i`
//! to `s_i'` updates only its neighbours' fields: `f_j ← f_j + 2 J_ij s_i'`, one load and one
//! store per neighbour.

use crate::model::Csr;
use crate::model::Ising;
use crate::rng::Rng;

/// `exp(-44.36)` is below 2^-64, smaller than any uniform draw can resolve, so a move whose
/// `β·delta` exceeds this is rejected without calling `exp` (the same cut dwave-samplers uses).
const EXP_CUTOFF: f64 = 44.361_42;

/// Table entries per unit of `β·delta`.
const EXP_STEPS: f64 = 64.0;

/// `EXP_TABLE[k] = exp(-k / 64)` for `k / 64` up to just past the cutoff.
static EXP_TABLE: std::sync::LazyLock<Vec<f64>> = std::sync::LazyLock::new(|| {
    let entries = (EXP_CUTOFF * EXP_STEPS) as usize + 2;
    (0..entries)
        .map(|k| (-(k as f64) / EXP_STEPS).exp())
        .collect()
});

/// Metropolis acceptance of an uphill move with `x = β·delta > 0`: draws `u` and returns
/// `u < exp(-x)` (moves past the cutoff are rejected without a draw).
///
/// `exp` dominated the sampler's profile on sparse graphs, so the test first brackets
/// `exp(-x)` between two table entries, `exp(-(k+1)/64) ≤ exp(-x) ≤ exp(-k/64)`; only the ~1.5%
/// of draws that land between them pay for `exp`. The decision is the same as `u < exp(-x)`.
#[inline]
pub(crate) fn accept_uphill(x: f64, rng: &mut Rng, table: &ExpTable) -> bool {
    if x >= EXP_CUTOFF {
        return false;
    }
    let u = rng.next_f64();
    let k = (x * EXP_STEPS) as usize;
    let (Some(&upper), Some(&lower)) = (table.0.get(k), table.0.get(k + 1)) else {
        return u < (-x).exp();
    };
    if u >= upper {
        return false;
    }
    if u < lower {
        return true;
    }
    u < (-x).exp()
}

/// A borrowed view of the acceptance table, fetched once per sweep so the hot loop does not
/// touch the lazy initialiser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpTable(&'static [f64]);

impl ExpTable {
    pub(crate) fn get() -> Self {
        Self(EXP_TABLE.as_slice())
    }
}

/// Spins (`±1.0`), cached local fields and the running energy of one replica.
#[derive(Debug, Clone)]
pub(crate) struct SpinState {
    pub(crate) spins: Vec<f64>,
    pub(crate) field: Vec<f64>,
    pub(crate) energy: f64,
}

impl SpinState {
    /// A state with the given spins; computes fields and energy in O(n + m).
    pub(crate) fn new(model: &Ising, spins: Vec<f64>) -> Self {
        let field = (0..spins.len())
            .map(|i| model.local_field(&spins, i))
            .collect();
        let energy = model.energy_of(&spins);
        Self {
            spins,
            field,
            energy,
        }
    }

    /// Energy change if spin `i` were flipped.
    #[inline]
    pub(crate) fn delta(&self, i: usize) -> f64 {
        -2.0 * self.spins[i] * self.field[i]
    }

    /// A uniformly random state.
    pub(crate) fn random(model: &Ising, rng: &mut Rng) -> Self {
        let spins = (0..model.num_variables())
            .map(|_| if rng.coin() { 1.0 } else { -1.0 })
            .collect();
        Self::new(model, spins)
    }

    /// Flips spin `i` and updates the neighbours' fields and the energy.
    #[inline]
    pub(crate) fn flip(&mut self, csr: Csr<'_>, i: usize) {
        self.energy += self.delta(i);
        let flipped = -self.spins[i];
        self.spins[i] = flipped;
        let (lo, hi) = (csr.offsets[i], csr.offsets[i + 1]);
        let scale = 2.0 * flipped;
        for (&j, &w) in csr.neighbours[lo..hi].iter().zip(&csr.weights[lo..hi]) {
            self.field[j as usize] += scale * w;
        }
    }

    /// One sweep over the spins in index order at inverse temperature `beta`; returns the
    /// number of accepted flips.
    #[inline]
    pub(crate) fn sweep(&mut self, csr: Csr<'_>, beta: f64, rng: &mut Rng) -> u64 {
        let table = ExpTable::get();
        let mut accepted = 0;
        for i in 0..self.spins.len() {
            let delta = -2.0 * self.spins[i] * self.field[i];
            let accept = delta <= 0.0 || accept_uphill(beta * delta, rng, &table);
            if accept {
                self.flip(csr, i);
                accepted += 1;
            }
        }
        accepted
    }

    /// Recomputes the energy from scratch, removing drift accumulated by incremental updates.
    pub(crate) fn exact_energy(&self, model: &Ising) -> f64 {
        model.energy_of(&self.spins)
    }

    /// The spins as bits (spin +1 is bit 1).
    pub(crate) fn bits(&self) -> Vec<u8> {
        self.spins.iter().map(|&s| u8::from(s > 0.0)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_table_acceptance_equals_exact_acceptance() {
        let mut table_rng = Rng::new(5);
        let mut exact_rng = Rng::new(5);
        let table = ExpTable::get();
        let mut accepted = 0;
        for step in 0..200_000 {
            let x = f64::from(step % 5000) * 0.0093 + 1e-6;
            let fast = accept_uphill(x, &mut table_rng, &table);
            let exact = x < EXP_CUTOFF && exact_rng.next_f64() < (-x).exp();
            assert_eq!(fast, exact, "x = {x}");
            accepted += u32::from(fast);
        }
        assert!(accepted > 1000);
    }

    #[test]
    fn test_cached_fields_stay_exact_after_many_flips() {
        let mut builder = Ising::builder(6);
        for (i, j, w) in [
            (0, 1, 1.0),
            (1, 2, -2.0),
            (2, 3, 0.5),
            (3, 4, 1.5),
            (4, 5, -1.0),
            (5, 0, 2.0),
            (0, 3, 0.25),
        ] {
            builder.add_coupling(i, j, w);
        }
        builder
            .add_field(2, 0.75)
            .add_field(5, -0.5)
            .add_offset(3.0);
        let model = builder.build().unwrap();
        let mut rng = Rng::new(11);
        let mut state = SpinState::random(&model, &mut rng);
        for step in 0..200 {
            state.flip(model.couplings().csr(), (step * 7 + 3) % 6);
            let fresh = SpinState::new(&model, state.spins.clone());
            for (cached, exact) in state.field.iter().zip(&fresh.field) {
                assert!((cached - exact).abs() < 1e-9);
            }
            assert!((state.energy - fresh.energy).abs() < 1e-9);
        }
    }
}
