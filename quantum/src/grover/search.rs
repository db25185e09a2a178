//! Grover's algorithm with a known number of marked items.

use std::f64::consts::PI;

use super::StateVector;
use super::qubits_for;
use crate::error::Result;
use crate::rng::Rng;

/// The set of marked items, evaluated once from a predicate.
///
/// Building the oracle evaluates the predicate on every item: that is the classical cost of
/// compiling it into a "circuit" for the simulator. Each later [`GroverSearch`] iteration is
/// one oracle call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oracle {
    marked: Vec<u64>,
    items: usize,
    marked_count: usize,
}

impl Oracle {
    /// Marks the items `0..items` for which `predicate` holds.
    #[must_use]
    pub fn new(items: usize, predicate: impl Fn(usize) -> bool) -> Self {
        let mut marked = vec![0u64; items.div_ceil(64)];
        let mut marked_count = 0;
        for item in (0..items).filter(|&i| predicate(i)) {
            marked[item / 64] |= 1 << (item % 64);
            marked_count += 1;
        }
        Self {
            marked,
            items,
            marked_count,
        }
    }

    /// Whether `item` is marked (padding items never are).
    #[inline]
    #[must_use]
    pub fn is_marked(&self, item: usize) -> bool {
        item < self.items && self.marked[item / 64] >> (item % 64) & 1 == 1
    }

    /// Number of items searched.
    #[must_use]
    pub fn items(&self) -> usize {
        self.items
    }

    /// Number of marked items `M`.
    #[must_use]
    pub fn marked_count(&self) -> usize {
        self.marked_count
    }
}

/// `⌊π/4 · √(N/M)⌋`, the iteration count that maximises the success probability for `M ≥ 1`
/// marked items among `N` (0 when `M = 0` or `M ≥ N`, where iterating cannot help).
#[must_use]
pub fn optimal_iterations(items: usize, marked: usize) -> usize {
    if marked == 0 || marked >= items {
        return 0;
    }
    (PI / 4.0 * (items as f64 / marked as f64).sqrt()).floor() as usize
}

/// The outcome of a Grover run.
#[derive(Debug, Clone, PartialEq)]
pub struct GroverOutcome {
    /// Grover iterations applied.
    pub iterations: usize,
    /// Oracle calls made (one per iteration).
    pub oracle_calls: u64,
    /// Qubits simulated.
    pub qubits: u32,
    /// Bytes of amplitudes held.
    pub memory_bytes: usize,
    /// Exact probability, from the final state, that a measurement yields a marked item.
    pub success_probability: f64,
    /// Simulated measurement results (basis-state indices), in shot order.
    pub measurements: Vec<usize>,
}

/// Grover search over `N` items with a predicate oracle.
#[derive(Debug, Clone)]
pub struct GroverSearch {
    oracle: Oracle,
    qubits: u32,
}

impl GroverSearch {
    /// Prepares a search over items `0..items` marked by `predicate`.
    ///
    /// # Errors
    /// [`TooManyQubits`](crate::QuantumError::TooManyQubits) if `items` needs more than
    /// [`MAX_QUBITS`](super::MAX_QUBITS); [`InvalidParameter`](crate::QuantumError::InvalidParameter)
    /// for zero items. The size check happens before the predicate is evaluated.
    pub fn new(items: usize, predicate: impl Fn(usize) -> bool) -> Result<Self> {
        let qubits = qubits_for(items)?;
        Ok(Self {
            oracle: Oracle::new(items, predicate),
            qubits,
        })
    }

    /// The oracle.
    #[must_use]
    pub fn oracle(&self) -> &Oracle {
        &self.oracle
    }

    /// Qubits simulated.
    #[must_use]
    pub fn qubits(&self) -> u32 {
        self.qubits
    }

    /// The state after `iterations` Grover iterations from the uniform superposition.
    #[must_use]
    pub fn state_after(&self, iterations: usize) -> StateVector {
        let mut state = StateVector::uniform(self.oracle.items(), self.qubits);
        for _ in 0..iterations {
            state.apply_oracle(&self.oracle);
            state.apply_diffusion();
        }
        state
    }

    /// Runs `iterations` iterations (the optimal count if `None`) and simulates `shots`
    /// measurements with a generator seeded by `seed`.
    #[must_use]
    pub fn run(&self, iterations: Option<usize>, shots: usize, seed: u64) -> GroverOutcome {
        let iterations = iterations
            .unwrap_or_else(|| optimal_iterations(self.oracle.items(), self.oracle.marked_count()));
        let state = self.state_after(iterations);
        let mut rng = Rng::new(seed);
        GroverOutcome {
            iterations,
            oracle_calls: iterations as u64,
            qubits: self.qubits,
            memory_bytes: state.memory_bytes(),
            success_probability: state.probability_of(&self.oracle),
            measurements: state.measure(shots, &mut rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sin²((2k+1)θ)` with `sin θ = √(M/N)`.
    fn analytic(items: usize, marked: usize, k: usize) -> f64 {
        let theta = (marked as f64 / items as f64).sqrt().asin();
        ((2 * k + 1) as f64 * theta).sin().powi(2)
    }

    #[test]
    fn test_success_probability_matches_analytic_formula() {
        for (items, marked_every) in [
            (1024usize, 1024usize),
            (1000, 333),
            (37, 11),
            (5000, 97),
            (2, 2),
        ] {
            let search =
                GroverSearch::new(items, |i| i % marked_every == 7 % marked_every).unwrap();
            let m = search.oracle().marked_count();
            assert!(m >= 1);
            let best = optimal_iterations(items, m);
            for k in 0..=best + 3 {
                let simulated = search.state_after(k).probability_of(search.oracle());
                let expected = analytic(items, m, k);
                assert!(
                    (simulated - expected).abs() < 1e-9,
                    "N={items} M={m} k={k}: {simulated} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn test_optimal_iterations_and_measurements() {
        assert_eq!(optimal_iterations(1024, 1), 25);
        assert_eq!(optimal_iterations(100, 4), 3);
        assert_eq!(optimal_iterations(100, 0), 0);
        let search = GroverSearch::new(4096, |i| i == 1234).unwrap();
        let outcome = search.run(None, 200, 9);
        assert_eq!(outcome.iterations, 50);
        assert_eq!(outcome.oracle_calls, 50);
        assert_eq!(outcome.qubits, 12);
        assert_eq!(outcome.memory_bytes, 4096 * 16);
        assert!(outcome.success_probability > 0.999);
        let hits = outcome.measurements.iter().filter(|&&i| i == 1234).count();
        assert!(hits >= 195, "{hits}/200");
        assert_eq!(outcome, search.run(None, 200, 9));
    }

    #[test]
    fn test_measurement_statistics_follow_amplitudes() {
        // After 0 iterations over 3 items (2 qubits, one padding state), each item has 1/3.
        let search = GroverSearch::new(3, |i| i == 0).unwrap();
        let outcome = search.run(Some(0), 30_000, 1);
        let mut counts = [0usize; 4];
        for &m in &outcome.measurements {
            counts[m] += 1;
        }
        assert_eq!(counts[3], 0, "padding must never be measured");
        for &count in &counts[..3] {
            assert!((9_500..=10_500).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn test_results_do_not_depend_on_thread_count() {
        // Large enough to split into several chunks.
        let search = GroverSearch::new(100_000, |i| i % 9_973 == 5).unwrap();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| search.state_after(5))
        };
        assert_eq!(run(1), run(2));
    }
}
