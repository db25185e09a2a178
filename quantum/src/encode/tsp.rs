//! Travelling salesman as a QUBO in the position encoding.
//!
//! City 0 is fixed at position 0 (a tour is a cycle, so this loses nothing and removes the
//! n-fold rotational symmetry). Bit `x_{v,p}` for `v, p ∈ 1..n` says city `v` is visited at
//! position `p`; it has index `(v - 1)(n - 1) + (p - 1)`, so there are `(n - 1)²` bits. The energy
//!
//! `A Σ_v (1 - Σ_p x_{v,p})² + A Σ_p (1 - Σ_v x_{v,p})² + D(x)`,
//! `D(x) = Σ_v d(0,v) x_{v,1} + Σ_v d(v,0) x_{v,n-1} + Σ_{p} Σ_{u≠v} d(u,v) x_{u,p} x_{v,p+1}`,
//!
//! equals the tour length on permutation matrices.
//!
//! **Penalty choice: `A > max d` makes every QUBO minimiser a feasible (and so optimal) tour.**
//! Take any infeasible `x`. (1) While a row or column holds two or more ones, clear one of
//! them: the penalty does not rise (a line with `r ≥ 2` ones drops by `A(2r - 3) ≥ A`, the
//! crossing line rises by at most `A`) and `D` does not rise (distances are non-negative). (2)
//! Now `x` is a partial permutation with `k` empty rows and `k` empty columns. If `k = 0`, no
//! line was emptied, so every clearing lowered the penalty of both its lines: a strict drop to
//! a tour. If `k ≥ 1`, filling them with any matching removes `2kA` of penalty and adds at most `2k`
//! distance terms, each at most `max d`, so the energy falls by more than `2k(A - max d) > 0`.
//! The default is `A = 1.5 · max d`: safely above the bound, and not so large that the
//! constraint terms swamp the tour length for a sampler.

use nalgebra::DMatrix;

use super::Encoding;
use super::tour::Tour;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Qubo;
use crate::model::check_len;

/// A TSP instance and its QUBO.
#[derive(Debug, Clone)]
pub struct Tsp {
    distances: DMatrix<f64>,
    penalty: f64,
    qubo: Qubo,
}

impl Tsp {
    /// Encodes the instance with the default penalty `1.5 · max d` (1 if all distances are 0).
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) if the matrix is not square, has
    /// fewer than 3 cities, or holds a negative or non-finite distance.
    pub fn new(distances: DMatrix<f64>) -> Result<Self> {
        check_distances(&distances)?;
        let max = max_distance(&distances);
        let penalty = if max > 0.0 { 1.5 * max } else { 1.0 };
        Self::with_penalty(distances, penalty)
    }

    /// Encodes the instance with penalty weight `penalty`. Values at or below the largest
    /// distance void the guarantee that minimisers are tours (see the module docs).
    ///
    /// # Errors
    /// As [`Tsp::new`], or if `penalty` is not a positive finite number.
    pub fn with_penalty(distances: DMatrix<f64>, penalty: f64) -> Result<Self> {
        check_distances(&distances)?;
        if !(penalty.is_finite() && penalty > 0.0) {
            return Err(QuantumError::invalid(
                "penalty",
                format!("need a positive finite weight, got {penalty}"),
            ));
        }
        let qubo = build_qubo(&distances, penalty)?;
        Ok(Self {
            distances,
            penalty,
            qubo,
        })
    }

    /// Number of cities.
    #[must_use]
    pub fn num_cities(&self) -> usize {
        self.distances.nrows()
    }

    /// The distance matrix.
    #[must_use]
    pub fn distances(&self) -> &DMatrix<f64> {
        &self.distances
    }

    /// The constraint weight `A`.
    #[must_use]
    pub fn penalty(&self) -> f64 {
        self.penalty
    }

    /// Bit index of city `city` at position `position` (both in `1..n`).
    #[must_use]
    pub fn variable(&self, city: usize, position: usize) -> usize {
        (city - 1) * (self.num_cities() - 1) + (position - 1)
    }

    /// The bits of a tour that starts at city 0.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) if `order` is not a permutation
    /// starting at city 0.
    pub fn encode_tour(&self, order: &[usize]) -> Result<Vec<u8>> {
        let n = self.num_cities();
        if !super::tour::is_permutation(order, n) || order[0] != 0 {
            return Err(QuantumError::invalid(
                "order",
                "need a permutation of all cities starting with city 0",
            ));
        }
        let mut bits = vec![0u8; (n - 1) * (n - 1)];
        for (position, &city) in order.iter().enumerate().skip(1) {
            bits[self.variable(city, position)] = 1;
        }
        Ok(bits)
    }
}

fn check_distances(distances: &DMatrix<f64>) -> Result<()> {
    if !distances.is_square() || distances.nrows() < 3 {
        return Err(QuantumError::invalid(
            "distances",
            format!(
                "need a square matrix of at least 3 cities, got {}x{}",
                distances.nrows(),
                distances.ncols()
            ),
        ));
    }
    if let Some(bad) = distances.iter().find(|d| !(d.is_finite() && **d >= 0.0)) {
        return Err(QuantumError::invalid(
            "distances",
            format!("distances must be finite and non-negative, found {bad}"),
        ));
    }
    Ok(())
}

fn max_distance(distances: &DMatrix<f64>) -> f64 {
    let n = distances.nrows();
    (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .map(|(i, j)| distances[(i, j)])
        .fold(0.0, f64::max)
}

fn build_qubo(distances: &DMatrix<f64>, penalty: f64) -> Result<Qubo> {
    let n = distances.nrows();
    let m = n - 1;
    let index = |city: usize, position: usize| (city - 1) * m + (position - 1);
    let mut builder = Qubo::builder(m * m);
    // One-hot rows (each city once) and columns (each position once):
    // A (1 - Σ x)² = A - A Σ x + 2A Σ_{pairs} x x.
    for line in 1..n {
        builder.add_offset(2.0 * penalty);
        for a in 1..n {
            builder.add_linear(index(line, a), -2.0 * penalty);
            for b in a + 1..n {
                builder.add_quadratic(index(line, a), index(line, b), 2.0 * penalty);
                builder.add_quadratic(index(a, line), index(b, line), 2.0 * penalty);
            }
        }
    }
    for v in 1..n {
        builder.add_linear(index(v, 1), distances[(0, v)]);
        builder.add_linear(index(v, m), distances[(v, 0)]);
    }
    for p in 1..m {
        for u in 1..n {
            for v in 1..n {
                if u != v {
                    builder.add_quadratic(index(u, p), index(v, p + 1), distances[(u, v)]);
                }
            }
        }
    }
    builder.build()
}

impl Encoding for Tsp {
    type Solution = Tour;

    fn qubo(&self) -> &Qubo {
        &self.qubo
    }

    /// Reads the tour position by position. A position with several set cities takes the one
    /// nearest to the previous city; cities set nowhere (or only where another won) fill the
    /// empty positions left to right, nearest first; ties go to the lowest index. The result
    /// is always a valid tour starting at city 0.
    fn decode(&self, bits: &[u8]) -> Result<Tour> {
        check_len(self.qubo.num_variables(), bits.len())?;
        let n = self.num_cities();
        let d = &self.distances;
        let mut used = vec![false; n];
        used[0] = true;
        let mut slot: Vec<Option<usize>> = vec![None; n];
        slot[0] = Some(0);
        let mut previous = 0;
        for p in 1..n {
            let chosen = (1..n)
                .filter(|&v| !used[v] && bits[self.variable(v, p)] != 0)
                .min_by(|&a, &b| d[(previous, a)].total_cmp(&d[(previous, b)]));
            if let Some(city) = chosen {
                used[city] = true;
                slot[p] = Some(city);
                previous = city;
            }
        }
        for p in 1..n {
            if slot[p].is_some() {
                continue;
            }
            let before = slot[p - 1].unwrap_or(0);
            let city = (1..n)
                .filter(|&v| !used[v])
                .min_by(|&a, &b| d[(before, a)].total_cmp(&d[(before, b)]))
                .expect("an empty position leaves an unused city");
            used[city] = true;
            slot[p] = Some(city);
        }
        let order = slot.into_iter().map(|c| c.unwrap_or(0)).collect();
        Ok(Tour::new(d, order))
    }

    fn is_feasible(&self, bits: &[u8]) -> bool {
        let n = self.num_cities();
        if bits.len() != self.qubo.num_variables() {
            return false;
        }
        let rows_ok =
            (1..n).all(|v| (1..n).filter(|&p| bits[self.variable(v, p)] != 0).count() == 1);
        let cols_ok =
            (1..n).all(|p| (1..n).filter(|&v| bits[self.variable(v, p)] != 0).count() == 1);
        rows_ok && cols_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::tour::optimal_tour;
    use crate::rng::Rng;

    fn random_instance(n: usize, seed: u64) -> DMatrix<f64> {
        let mut rng = Rng::new(seed);
        let coords: Vec<(f64, f64)> = (0..n)
            .map(|_| (rng.next_f64() * 100.0, rng.next_f64() * 100.0))
            .collect();
        DMatrix::from_fn(n, n, |i, j| {
            ((coords[i].0 - coords[j].0).powi(2) + (coords[i].1 - coords[j].1).powi(2))
                .sqrt()
                .round()
        })
    }

    #[test]
    fn test_qubo_minimisers_are_exactly_the_optimal_tours() {
        for seed in 0..4 {
            let d = random_instance(5, seed);
            let tsp = Tsp::new(d.clone()).unwrap();
            let optimum = optimal_tour(&d).unwrap().length;
            let bits_count = tsp.qubo().num_variables();
            assert_eq!(bits_count, 16);
            let mut lowest = f64::INFINITY;
            let mut lowest_infeasible = f64::INFINITY;
            for mask in 0u32..1 << bits_count {
                let bits: Vec<u8> = (0..bits_count)
                    .map(|i| u8::from(mask >> i & 1 == 1))
                    .collect();
                let energy = tsp.qubo().energy(&bits).unwrap();
                lowest = lowest.min(energy);
                if tsp.is_feasible(&bits) {
                    let tour = tsp.decode(&bits).unwrap();
                    assert!((energy - tour.length).abs() < 1e-9, "energy is tour length");
                } else {
                    lowest_infeasible = lowest_infeasible.min(energy);
                }
            }
            assert!(
                (lowest - optimum).abs() < 1e-9,
                "seed {seed}: {lowest} vs {optimum}"
            );
            assert!(
                lowest_infeasible > optimum + 1e-9,
                "seed {seed}: infeasible state ties"
            );
        }
    }

    #[test]
    fn test_penalty_below_bound_lets_infeasible_states_win() {
        // Shows the bound is not vacuous: with a tiny penalty the all-zero state (energy 2mA)
        // beats every tour.
        let d = random_instance(5, 9);
        let tsp = Tsp::with_penalty(d, 1.0).unwrap();
        let zeros = vec![0u8; 16];
        assert!(!tsp.is_feasible(&zeros));
        let optimum = optimal_tour(tsp.distances()).unwrap().length;
        assert!(tsp.qubo().energy(&zeros).unwrap() < optimum);
    }

    #[test]
    fn test_decode_always_yields_a_tour_and_round_trips_feasible_bits() {
        let d = random_instance(6, 3);
        let tsp = Tsp::new(d).unwrap();
        let order = vec![0, 3, 1, 5, 2, 4];
        let bits = tsp.encode_tour(&order).unwrap();
        assert!(tsp.is_feasible(&bits));
        assert_eq!(tsp.decode(&bits).unwrap().order, order);
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let noise: Vec<u8> = (0..25).map(|_| u8::from(rng.below(4) == 0)).collect();
            let tour = tsp.decode(&noise).unwrap();
            assert!(crate::encode::tour::is_permutation(&tour.order, 6));
            assert_eq!(tour.order[0], 0);
        }
    }
}
