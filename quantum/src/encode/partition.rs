//! Number partitioning: split numbers into two groups with sums as equal as possible.
//!
//! Spin `s_i = ±1` puts number `a_i` in group A or B. The Ising energy `(Σ a_i s_i)²`
//! `= Σ a_i² + Σ_{i<j} 2 a_i a_j s_i s_j` is the squared difference of the group sums, so every
//! assignment is feasible and a perfect partition has energy 0.

use super::Encoding;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Ising;
use crate::model::Qubo;
use crate::model::check_len;

/// A number-partitioning instance and its QUBO.
#[derive(Debug, Clone)]
pub struct NumberPartition {
    numbers: Vec<f64>,
    qubo: Qubo,
}

/// A decoded partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// `true` for numbers in the second group.
    pub in_second: Vec<bool>,
    /// `|sum(first) - sum(second)|`.
    pub difference: f64,
}

impl NumberPartition {
    /// Encodes `numbers`.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) if a number is not finite.
    pub fn new(numbers: Vec<f64>) -> Result<Self> {
        if let Some(bad) = numbers.iter().find(|a| !a.is_finite()) {
            return Err(QuantumError::invalid(
                "numbers",
                format!("{bad} is not finite"),
            ));
        }
        let mut builder = Ising::builder(numbers.len());
        for (i, &a) in numbers.iter().enumerate() {
            builder.add_offset(a * a);
            for (j, &b) in numbers.iter().enumerate().skip(i + 1) {
                builder.add_coupling(i, j, 2.0 * a * b);
            }
        }
        let qubo = builder.build()?.to_qubo();
        Ok(Self { numbers, qubo })
    }

    /// The numbers being split.
    #[must_use]
    pub fn numbers(&self) -> &[f64] {
        &self.numbers
    }
}

impl Encoding for NumberPartition {
    type Solution = Partition;

    fn qubo(&self) -> &Qubo {
        &self.qubo
    }

    fn decode(&self, bits: &[u8]) -> Result<Partition> {
        check_len(self.numbers.len(), bits.len())?;
        let in_second: Vec<bool> = bits.iter().map(|&b| b != 0).collect();
        let signed: f64 = self
            .numbers
            .iter()
            .zip(&in_second)
            .map(|(&a, &second)| if second { a } else { -a })
            .sum();
        Ok(Partition {
            in_second,
            difference: signed.abs(),
        })
    }

    fn is_feasible(&self, bits: &[u8]) -> bool {
        bits.len() == self.numbers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::ExactSolver;
    use crate::solve::Sampler;

    #[test]
    fn test_energy_is_squared_difference_and_perfect_split_found() {
        let problem = NumberPartition::new(vec![4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        for mask in 0..32u8 {
            let bits: Vec<u8> = (0..5).map(|i| mask >> i & 1).collect();
            let partition = problem.decode(&bits).unwrap();
            let energy = problem.qubo().energy(&bits).unwrap();
            assert!((energy - partition.difference.powi(2)).abs() < 1e-9);
        }
        // 4 + 5 + 6 = 7 + 8.
        let best = ExactSolver.sample_qubo(problem.qubo()).unwrap();
        assert!(best.best.energy.abs() < 1e-9);
        assert!(problem.decode(&best.best.bits).unwrap().difference < 1e-9);
    }
}
