//! Grover search when the number of marked items is unknown: the exponential search of Boyer,
//! Brassard, Høyer & Tapp (1998).
//!
//! Start with `m = 1`. Each round picks `j` uniformly from `0..⌈m⌉`, runs `j` Grover
//! iterations from scratch, measures, and checks the measured item classically. A hit ends the
//! search; otherwise `m ← min(λ·m, √N)` with `λ = 6/5`. For `M ≥ 1` marked items the expected
//! number of oracle calls is `O(√(N/M))` (below `(9/2)·√(N/M)` in the paper's analysis). With
//! no marked item the search would never end, so it stops after `max_oracle_calls` and reports
//! that nothing was found.

use super::StateVector;
use super::qubits_for;
use super::search::Oracle;
use crate::error::Result;
use crate::rng::Rng;

/// Exponential-search parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialSearch {
    /// Growth factor of the iteration bound, in `(1, 4/3)`.
    pub lambda: f64,
    /// Give up after this many oracle calls; `None` uses `⌈9·√N⌉ + 1`, twice the expected
    /// cost of the worst case with one marked item.
    pub max_oracle_calls: Option<u64>,
    /// Seed of the random iteration counts and measurements.
    pub seed: u64,
}

impl Default for ExponentialSearch {
    fn default() -> Self {
        Self {
            lambda: 6.0 / 5.0,
            max_oracle_calls: None,
            seed: 0,
        }
    }
}

/// The outcome of an exponential search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExponentialSearchOutcome {
    /// A marked item, or `None` if the budget ran out (most likely there is none).
    pub found: Option<usize>,
    /// Grover oracle calls (iterations) made across all rounds.
    pub oracle_calls: u64,
    /// Classical predicate checks of measured items (one per round).
    pub classical_checks: u64,
    /// Rounds (measurements) performed.
    pub rounds: u64,
    /// Qubits simulated.
    pub qubits: u32,
}

impl ExponentialSearch {
    /// Searches items `0..items` for one satisfying `predicate`.
    ///
    /// # Errors
    /// As [`qubits_for`]: zero items, or more than [`MAX_QUBITS`](super::MAX_QUBITS) qubits.
    pub fn run(
        &self,
        items: usize,
        predicate: impl Fn(usize) -> bool,
    ) -> Result<ExponentialSearchOutcome> {
        let qubits = qubits_for(items)?;
        if !(self.lambda > 1.0 && self.lambda < 4.0 / 3.0) {
            return Err(crate::QuantumError::invalid(
                "lambda",
                format!("need 1 < λ < 4/3, got {}", self.lambda),
            ));
        }
        let oracle = Oracle::new(items, &predicate);
        let sqrt_n = (items as f64).sqrt();
        let budget = self
            .max_oracle_calls
            .unwrap_or_else(|| (9.0 * sqrt_n).ceil() as u64 + 1);
        let mut rng = Rng::new(self.seed);
        let mut bound = 1.0f64;
        let mut outcome = ExponentialSearchOutcome {
            found: None,
            oracle_calls: 0,
            classical_checks: 0,
            rounds: 0,
            qubits,
        };
        while outcome.oracle_calls <= budget {
            let iterations = rng.below(bound.ceil() as usize);
            let mut state = StateVector::uniform(items, qubits);
            for _ in 0..iterations {
                state.apply_oracle(&oracle);
                state.apply_diffusion();
            }
            outcome.oracle_calls += iterations as u64;
            outcome.rounds += 1;
            let measured = state.measure(1, &mut rng)[0];
            outcome.classical_checks += 1;
            if predicate(measured) {
                outcome.found = Some(measured);
                return Ok(outcome);
            }
            bound = (bound * self.lambda).min(sqrt_n);
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_finds_a_marked_item_with_sublinear_oracle_calls() {
        let items = 1 << 12;
        let mut total_calls = 0;
        for seed in 0..20 {
            let search = ExponentialSearch {
                seed,
                ..Default::default()
            };
            let outcome = search.run(items, |i| i == 3000 || i == 17).unwrap();
            let found = outcome.found.expect("a marked item exists");
            assert!(found == 3000 || found == 17);
            total_calls += outcome.oracle_calls;
        }
        // √(N/M) ≈ 45; a linear scan would need ~N/3 = 1365 checks on average.
        let mean = total_calls as f64 / 20.0;
        assert!(mean < 4.5 * 45.3, "mean oracle calls {mean}");
    }

    #[test]
    fn test_gives_up_without_marked_items() {
        let outcome = ExponentialSearch::default().run(256, |_| false).unwrap();
        assert_eq!(outcome.found, None);
        assert!(outcome.oracle_calls > 9 * 16);
        assert!(outcome.rounds == outcome.classical_checks);
    }
}
