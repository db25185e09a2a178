//! Inverse-temperature (β) ranges and schedules for the thermal samplers.

use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Ising;

/// How β moves from its start to its end value across the sweeps of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BetaSchedule {
    /// Equal ratios between successive β (dwave-samplers' default).
    #[default]
    Geometric,
    /// Equal differences between successive β.
    Linear,
}

impl BetaSchedule {
    /// The β of each of `sweeps` sweeps, from `range.0` to `range.1` inclusive.
    #[must_use]
    pub fn betas(self, range: (f64, f64), sweeps: usize) -> Vec<f64> {
        let (start, end) = range;
        if sweeps <= 1 {
            return vec![end; sweeps];
        }
        let last = (sweeps - 1) as f64;
        (0..sweeps)
            .map(|k| {
                let t = k as f64 / last;
                match self {
                    Self::Geometric => start * (end / start).powf(t),
                    Self::Linear => start + (end - start) * t,
                }
            })
            .collect()
    }
}

/// The default β range for `model`, chosen the way dwave-samplers chooses it.
///
/// * Hot end: the largest energy change any single flip can cause is `2 · max_i Σ|bias_i|`;
///   at `β = ln 2 / (2 · max field)` such a flip is accepted half the time, so the start is hot
///   enough to cross every barrier.
/// * Cold end: the smallest nonzero bias `b_min` sets the smallest uphill step; at
///   `β = ln(k / 0.01) / (2 · b_min)`, where `k` counts the spins whose smallest bias is
///   `b_min`, the expected number of such excitations per sweep is about 1%, so the end state is
///   (locally) frozen.
///
/// A model without any nonzero coefficient gets `(0.1, 1.0)`.
#[must_use]
pub fn default_beta_range(model: &Ising) -> (f64, f64) {
    let n = model.num_variables();
    let mut max_field = 0.0f64;
    let mut min_bias = vec![f64::INFINITY; n];
    for (i, slot) in min_bias.iter_mut().enumerate() {
        let h = model.fields()[i].abs();
        let (_, ws) = model.couplings().row(i);
        let mut field = h;
        if h > 0.0 {
            *slot = h;
        }
        for w in ws {
            let w = w.abs();
            field += w;
            if w > 0.0 {
                *slot = slot.min(w);
            }
        }
        max_field = max_field.max(field);
    }
    let smallest = min_bias.iter().copied().fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return (0.1, 1.0);
    }
    let count = min_bias.iter().filter(|&&b| b == smallest).count();
    let hot = std::f64::consts::LN_2 / (2.0 * max_field);
    let cold = ((count as f64) / 0.01).ln() / (2.0 * smallest);
    (hot, cold.max(hot))
}

/// A narrower β range for short anneals of frustrated models such as Max-Cut, found by
/// measurement on G-set-style graphs (see the `maxcut` section of `docs/benchmarks.md`).
///
/// * Hot end: `2 ln 2 / f_rms`, where `f_rms` is the median over spins of
///   `√(h_i² + Σ_j J_ij²)`, the typical size of a local field in a random state. A flip against
///   such a field (`delta = 2 f_rms`) is accepted with probability 1/16, so the anneal starts
///   near the ordering region instead of spending its first half in a random state.
/// * Cold end: half of [`default_beta_range`]'s cold end; the last sweeps still freeze the
///   state but fewer of them are spent doing nothing.
///
/// Fewer accepted flips at the hot end also make each sweep cheaper. The end is never hotter
/// than the start; a model without any nonzero coefficient gets `(0.1, 1.0)`.
#[must_use]
pub fn focused_beta_range(model: &Ising) -> (f64, f64) {
    let n = model.num_variables();
    let mut rms: Vec<f64> = (0..n)
        .map(|i| {
            let (_, ws) = model.couplings().row(i);
            let squares: f64 = ws.iter().map(|w| w * w).sum();
            (model.fields()[i].powi(2) + squares).sqrt()
        })
        .filter(|&r| r > 0.0)
        .collect();
    if rms.is_empty() {
        return (0.1, 1.0);
    }
    rms.sort_by(f64::total_cmp);
    let median = rms[rms.len() / 2];
    let cold = default_beta_range(model).1 / 2.0;
    let hot = 2.0 * std::f64::consts::LN_2 / median;
    (hot.min(cold), cold)
}

/// Checks a user-supplied β range: both ends finite, non-negative, and the end not hotter
/// than the start.
pub(crate) fn check_beta_range(range: (f64, f64)) -> Result<()> {
    let (start, end) = range;
    let valid = start.is_finite() && end.is_finite() && start > 0.0 && end >= start;
    if valid {
        Ok(())
    } else {
        Err(QuantumError::invalid(
            "beta_range",
            format!("need 0 < start <= end, both finite; got ({start}, {end})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_schedules_hit_both_ends_and_are_monotone() {
        for schedule in [BetaSchedule::Geometric, BetaSchedule::Linear] {
            let betas = schedule.betas((0.1, 10.0), 50);
            assert_eq!(betas.len(), 50);
            assert!((betas[0] - 0.1).abs() < 1e-12);
            assert!((betas[49] - 10.0).abs() < 1e-9);
            assert!(betas.windows(2).all(|w| w[1] > w[0]));
        }
        let geo = BetaSchedule::Geometric.betas((1.0, 4.0), 3);
        assert!((geo[1] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn test_focused_range_starts_at_the_typical_field() {
        // A 4-cycle with |J| = 1: every spin has f_rms = √2, smallest bias 1 on all 4 spins.
        let mut builder = Ising::builder(4);
        builder
            .add_coupling(0, 1, 1.0)
            .add_coupling(1, 2, -1.0)
            .add_coupling(2, 3, 1.0)
            .add_coupling(3, 0, 1.0);
        let model = builder.build().unwrap();
        let (hot, cold) = focused_beta_range(&model);
        // A flip against the typical field (delta = 2√2) is accepted with probability 1/16.
        assert!(((-hot * 2.0 * 2f64.sqrt()).exp() - 1.0 / 16.0).abs() < 1e-12);
        assert!((cold - default_beta_range(&model).1 / 2.0).abs() < 1e-12);
        assert!(hot <= cold);
        assert_eq!(
            focused_beta_range(&Ising::builder(3).build().unwrap()),
            (0.1, 1.0)
        );
    }

    #[test]
    fn test_default_range_follows_acceptance_targets() {
        // Spin 0 couples to 1 (J = 1) and 2 (J = -3), spin 2 has h = 0.5.
        let mut builder = Ising::builder(3);
        builder
            .add_coupling(0, 1, 1.0)
            .add_coupling(0, 2, -3.0)
            .add_field(2, 0.5);
        let model = builder.build().unwrap();
        let (hot, cold) = default_beta_range(&model);
        // Largest field: spin 0 with 1 + 3 = 4, so a worst flip costs 8 and exp(-8 hot) = 1/2.
        assert!(((-8.0 * hot).exp() - 0.5).abs() < 1e-12);
        // Smallest bias 0.5 belongs to spin 2 only: exp(-2 * 0.5 * cold) = 0.01.
        assert!(((-cold).exp() - 0.01).abs() < 1e-12);
        assert_eq!(
            default_beta_range(&Ising::builder(2).build().unwrap()),
            (0.1, 1.0)
        );
    }
}
