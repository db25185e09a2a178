//! Tours over a distance matrix: length, a nearest-neighbour construction, and the exact
//! Held–Karp optimum for small instances (the reference the TSP encoder is tested against).

use nalgebra::DMatrix;

use crate::error::QuantumError;
use crate::error::Result;

/// Largest instance [`optimal_tour`] solves: Held–Karp needs O(2^n · n) memory and
/// O(2^n · n²) time, which is about 40 M steps at 18 cities.
pub const MAX_HELD_KARP_CITIES: usize = 18;

/// A closed tour: visits `order[0], order[1], ...` and returns to `order[0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tour {
    /// Cities in visiting order, each exactly once.
    pub order: Vec<usize>,
    /// Sum of the distances along the closed tour.
    pub length: f64,
}

impl Tour {
    /// Wraps `order` and computes its length.
    #[must_use]
    pub fn new(distances: &DMatrix<f64>, order: Vec<usize>) -> Self {
        let length = tour_length(distances, &order);
        Self { order, length }
    }
}

/// Length of the closed tour `order` (0 for fewer than two cities).
#[must_use]
pub fn tour_length(distances: &DMatrix<f64>, order: &[usize]) -> f64 {
    if order.len() < 2 {
        return 0.0;
    }
    let closing = distances[(order[order.len() - 1], order[0])];
    order
        .windows(2)
        .map(|w| distances[(w[0], w[1])])
        .sum::<f64>()
        + closing
}

/// Builds a tour from `start` by always moving to the nearest unvisited city (lowest index on
/// ties).
#[must_use]
pub fn nearest_neighbour_tour(distances: &DMatrix<f64>, start: usize) -> Tour {
    let n = distances.nrows();
    let mut visited = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut current = start;
    for _ in 0..n {
        visited[current] = true;
        order.push(current);
        let next = (0..n)
            .filter(|&c| !visited[c])
            .min_by(|&a, &b| distances[(current, a)].total_cmp(&distances[(current, b)]));
        match next {
            Some(city) => current = city,
            None => break,
        }
    }
    Tour::new(distances, order)
}

/// The shortest tour, by Held–Karp dynamic programming; the tour starts at city 0.
///
/// # Errors
/// [`TooLarge`](QuantumError::TooLarge) beyond [`MAX_HELD_KARP_CITIES`].
pub fn optimal_tour(distances: &DMatrix<f64>) -> Result<Tour> {
    let n = distances.nrows();
    if n > MAX_HELD_KARP_CITIES {
        return Err(QuantumError::TooLarge {
            method: "held-karp",
            size: n,
            limit: MAX_HELD_KARP_CITIES,
            unit: "cities",
        });
    }
    if n <= 3 {
        return Ok(Tour::new(distances, (0..n).collect()));
    }
    // best[mask * m + j]: shortest path from city 0 through the cities in `mask` (bits for
    // cities 1..n) ending at city j + 1, which is in `mask`.
    let m = n - 1;
    let subsets = 1usize << m;
    let mut best = vec![f64::INFINITY; subsets * m];
    let mut parent = vec![u8::MAX; subsets * m];
    for j in 0..m {
        best[(1 << j) * m + j] = distances[(0, j + 1)];
    }
    for mask in 1..subsets {
        for j in 0..m {
            let here = best[mask * m + j];
            if mask & (1 << j) == 0 || !here.is_finite() {
                continue;
            }
            for k in 0..m {
                if mask & (1 << k) != 0 {
                    continue;
                }
                let next = mask | (1 << k);
                let candidate = here + distances[(j + 1, k + 1)];
                if candidate < best[next * m + k] {
                    best[next * m + k] = candidate;
                    // j < m <= 17 fits in u8.
                    parent[next * m + k] = u8::try_from(j).unwrap_or(u8::MAX);
                }
            }
        }
    }
    let full = subsets - 1;
    let last = (0..m)
        .min_by(|&a, &b| {
            let la = best[full * m + a] + distances[(a + 1, 0)];
            let lb = best[full * m + b] + distances[(b + 1, 0)];
            la.total_cmp(&lb)
        })
        .unwrap_or(0);
    let mut order = Vec::with_capacity(n);
    let mut mask = full;
    let mut j = last;
    loop {
        order.push(j + 1);
        let previous = parent[mask * m + j];
        mask &= !(1 << j);
        if previous == u8::MAX {
            break;
        }
        j = usize::from(previous);
    }
    order.push(0);
    order.reverse();
    Ok(Tour::new(distances, order))
}

/// Checks that `order` visits each of `n` cities exactly once.
#[must_use]
pub fn is_permutation(order: &[usize], n: usize) -> bool {
    let mut seen = vec![false; n];
    order.len() == n
        && order
            .iter()
            .all(|&c| c < n && !std::mem::replace(&mut seen[c], true))
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// Every ordering of `items`, for brute-force checks.
    pub(crate) fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut all = Vec::new();
        for (i, &first) in items.iter().enumerate() {
            let mut rest = items.to_vec();
            rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, first);
                all.push(tail);
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::permutations;
    use super::*;

    #[test]
    fn test_held_karp_matches_brute_force() {
        let mut rng = crate::rng::Rng::new(5);
        for n in 4..=8 {
            let coords: Vec<(f64, f64)> =
                (0..n).map(|_| (rng.next_f64(), rng.next_f64())).collect();
            let d = DMatrix::from_fn(n, n, |i, j| {
                ((coords[i].0 - coords[j].0).powi(2) + (coords[i].1 - coords[j].1).powi(2)).sqrt()
            });
            let rest: Vec<usize> = (1..n).collect();
            let brute = permutations(&rest)
                .into_iter()
                .map(|p| {
                    let mut order = vec![0];
                    order.extend(p);
                    tour_length(&d, &order)
                })
                .fold(f64::INFINITY, f64::min);
            let exact = optimal_tour(&d).unwrap();
            assert!(is_permutation(&exact.order, n));
            assert!((exact.length - brute).abs() < 1e-9, "n={n}");
            let greedy = nearest_neighbour_tour(&d, 0);
            assert!(is_permutation(&greedy.order, n));
            assert!(greedy.length >= exact.length - 1e-9);
        }
    }
}
