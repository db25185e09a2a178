//! Local-search polish applied after a sampler, reported beside (never instead of) the raw
//! result so a benchmark can tell the sampler's work from the polish's.

use super::Sample;
use super::SampleSet;
use super::metropolis::SpinState;
use crate::encode::Tour;
use crate::error::Result;
use crate::model::Ising;
use crate::model::check_len;

/// Which improving flip one-flip descent takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Descent {
    /// The flip with the most negative energy change, until none improves.
    #[default]
    Steepest,
    /// Any improving flip, scanning in index order, until a full scan finds none.
    FirstImprovement,
}

/// A sampler's result with its polished best sample beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Polished {
    /// The sampler's output as it was.
    pub raw: SampleSet,
    /// The raw best sample after one-flip descent (never worse than `raw.best`).
    pub polished: Sample,
}

/// Runs one-flip descent from `bits` to a local minimum of `model` (no single flip lowers the
/// energy). Works for QUBOs through their Ising form: bit 1 is spin +1 and energies agree.
///
/// # Errors
/// [`SampleLength`](crate::QuantumError::SampleLength) if `bits` has the wrong length.
pub fn descend(model: &Ising, bits: &[u8], rule: Descent) -> Result<Sample> {
    check_len(model.num_variables(), bits.len())?;
    let spins = bits
        .iter()
        .map(|&b| if b == 0 { -1.0 } else { 1.0 })
        .collect();
    let mut state = SpinState::new(model, spins);
    let csr = model.couplings().csr();
    // Ignore improvements below rounding noise so descent always terminates.
    let tolerance = 1e-12 * (1.0 + model.max_abs_field());
    match rule {
        Descent::Steepest => loop {
            let best = (0..model.num_variables())
                .map(|i| (i, state.delta(i)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((i, delta)) if delta < -tolerance => state.flip(csr, i),
                _ => break,
            }
        },
        Descent::FirstImprovement => loop {
            let mut improved = false;
            for i in 0..model.num_variables() {
                if state.delta(i) < -tolerance {
                    state.flip(csr, i);
                    improved = true;
                }
            }
            if !improved {
                break;
            }
        },
    }
    Ok(Sample {
        energy: state.exact_energy(model),
        bits: state.bits(),
    })
}

/// Polishes the best sample of `raw` with one-flip descent.
///
/// # Errors
/// [`SampleLength`](crate::QuantumError::SampleLength) if `raw` came from another model.
pub fn polish_samples(model: &Ising, raw: SampleSet, rule: Descent) -> Result<Polished> {
    let polished = descend(model, &raw.best.bits, rule)?;
    Ok(Polished { raw, polished })
}

/// Improves a tour with 2-opt (reverse a segment) and Or-opt (move a run of 1–3 cities,
/// possibly reversed) until neither finds an improving move. The first city stays first.
/// Assumes symmetric distances, as TSPLIB's coordinate types are.
#[must_use]
pub fn polish_tour(distances: &nalgebra::DMatrix<f64>, tour: &Tour) -> Tour {
    let mut order = tour.order.clone();
    loop {
        let improved_2opt = two_opt_pass(distances, &mut order);
        let improved_or = or_opt_pass(distances, &mut order);
        if !(improved_2opt || improved_or) {
            break;
        }
    }
    Tour::new(distances, order)
}

/// Gains smaller than this are rounding noise, not improvements.
const TOUR_EPSILON: f64 = 1e-9;

/// One first-improvement 2-opt pass; returns whether anything changed.
fn two_opt_pass(d: &nalgebra::DMatrix<f64>, order: &mut [usize]) -> bool {
    let n = order.len();
    let mut improved = false;
    if n < 4 {
        return false;
    }
    for i in 0..n - 2 {
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue; // the two edges share city order[0]
            }
            let (a, b) = (order[i], order[i + 1]);
            let (c, e) = (order[j], order[(j + 1) % n]);
            let change = d[(a, c)] + d[(b, e)] - d[(a, b)] - d[(c, e)];
            if change < -TOUR_EPSILON {
                order[i + 1..=j].reverse();
                improved = true;
            }
        }
    }
    improved
}

/// One first-improvement Or-opt pass; returns whether anything changed.
fn or_opt_pass(d: &nalgebra::DMatrix<f64>, order: &mut Vec<usize>) -> bool {
    let n = order.len();
    let mut improved = false;
    for len in 1..=3usize {
        if n < len + 3 {
            break;
        }
        let mut i = 1;
        while i + len <= n {
            if let Some(next) = best_segment_move(d, order, i, len) {
                *order = next;
                improved = true;
            }
            i += 1;
        }
    }
    improved
}

/// Tries moving `order[i..i + len]` between every other pair of consecutive cities, either
/// way round; returns the new order for the first improving move.
fn best_segment_move(
    d: &nalgebra::DMatrix<f64>,
    order: &[usize],
    i: usize,
    len: usize,
) -> Option<Vec<usize>> {
    let n = order.len();
    let segment = &order[i..i + len];
    let (first, last) = (segment[0], segment[len - 1]);
    let before = order[i - 1];
    let after = order[(i + len) % n];
    let removal_gain = d[(before, first)] + d[(last, after)] - d[(before, after)];
    let rest: Vec<usize> = order[..i]
        .iter()
        .chain(&order[i + len..])
        .copied()
        .collect();
    let m = rest.len();
    for k in 0..m {
        let (c, e) = (rest[k], rest[(k + 1) % m]);
        if c == before {
            continue; // reinserting where it was
        }
        let forward = d[(c, first)] + d[(last, e)] - d[(c, e)];
        let backward = d[(c, last)] + d[(first, e)] - d[(c, e)];
        let (cost, reversed) = if backward < forward {
            (backward, true)
        } else {
            (forward, false)
        };
        if cost - removal_gain < -TOUR_EPSILON {
            let mut moved: Vec<usize> = segment.to_vec();
            if reversed {
                moved.reverse();
            }
            let mut next = Vec::with_capacity(n);
            next.extend_from_slice(&rest[..=k]);
            next.extend(moved);
            next.extend_from_slice(&rest[k + 1..]);
            return Some(next);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use nalgebra::DMatrix;

    use super::*;
    use crate::encode::tour::is_permutation;
    use crate::encode::tour::nearest_neighbour_tour;
    use crate::encode::tour::optimal_tour;
    use crate::rng::Rng;

    #[test]
    fn test_descent_reaches_a_local_minimum_from_any_start() {
        let mut rng = Rng::new(4);
        let mut builder = Ising::builder(30);
        for i in 0..30 {
            for j in i + 1..30 {
                if rng.below(4) == 0 {
                    builder.add_coupling(i, j, rng.next_f64() * 2.0 - 1.0);
                }
            }
            builder.add_field(i, rng.next_f64() - 0.5);
        }
        let model = builder.build().unwrap();
        for rule in [Descent::Steepest, Descent::FirstImprovement] {
            let start: Vec<u8> = (0..30).map(|_| u8::from(rng.coin())).collect();
            let before = model.energy_of_bits(&start).unwrap();
            let result = descend(&model, &start, rule).unwrap();
            assert!(result.energy <= before);
            let spins = crate::model::bits_to_spins(&result.bits);
            assert!((0..30).all(|i| model.flip_delta(&spins, i) >= -1e-9));
        }
    }

    #[test]
    fn test_tour_polish_never_worsens_and_reaches_optimum_on_small_instances() {
        let mut rng = Rng::new(8);
        let mut hits = 0;
        for _ in 0..10 {
            let n = 10;
            let coords: Vec<(f64, f64)> =
                (0..n).map(|_| (rng.next_f64(), rng.next_f64())).collect();
            let d = DMatrix::from_fn(n, n, |i, j| {
                ((coords[i].0 - coords[j].0).powi(2) + (coords[i].1 - coords[j].1).powi(2)).sqrt()
            });
            let start = nearest_neighbour_tour(&d, 0);
            let polished = polish_tour(&d, &start);
            assert!(is_permutation(&polished.order, n));
            assert_eq!(polished.order[0], 0);
            assert!(polished.length <= start.length + 1e-12);
            let optimum = optimal_tour(&d).unwrap().length;
            assert!(polished.length >= optimum - 1e-9);
            if polished.length <= optimum + 1e-9 {
                hits += 1;
            }
        }
        // 2-opt + Or-opt is not exact, but on 10 random points it almost always is.
        assert!(hits >= 7, "{hits}/10 optimal");
    }
}
