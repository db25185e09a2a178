//! Seeded random join queries of the classic join-graph shapes, so the benchmark, the tests
//! and the examples plan the same workload.
//!
//! Cardinalities are log-uniform in [10², 10⁶]. Every predicate has a key/foreign-key-like
//! selectivity of about 1 / the larger side's cardinality, times a log-uniform factor in
//! [10^-0.5, 10^0.5], capped at 1.

use super::problem::{JoinOrderProblem, JoinPredicate};
use crate::error::Result;
use crate::rng::Rng;

/// How the relations of a generated query are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryShape {
    /// `r0 - r1 - ... - r(n-1)`.
    Chain,
    /// `r0` joined with every other relation.
    Star,
    /// A chain closed back to `r0`.
    Cycle,
    /// Every pair joined.
    Clique,
}

impl QueryShape {
    /// Every shape, in the order reports list them.
    pub const ALL: [QueryShape; 4] = [
        QueryShape::Chain,
        QueryShape::Star,
        QueryShape::Cycle,
        QueryShape::Clique,
    ];

    /// The shape's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            QueryShape::Chain => "chain",
            QueryShape::Star => "star",
            QueryShape::Cycle => "cycle",
            QueryShape::Clique => "clique",
        }
    }

    /// The joined pairs of relations for `n` relations.
    fn pairs(self, n: usize) -> Vec<(usize, usize)> {
        match self {
            QueryShape::Chain => (1..n).map(|r| (r - 1, r)).collect(),
            QueryShape::Star => (1..n).map(|r| (0, r)).collect(),
            QueryShape::Cycle => (0..n).map(|r| (r, (r + 1) % n)).collect(),
            QueryShape::Clique => (0..n)
                .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
                .collect(),
        }
    }
}

impl JoinOrderProblem {
    /// A seeded random query of `n` relations joined along `shape` (see the module docs).
    pub fn random(shape: QueryShape, n: usize, seed: u64) -> Result<JoinOrderProblem> {
        let mut rng = Rng::new(seed);
        let cards: Vec<f64> = (0..n)
            .map(|_| 10f64.powf(2.0 + 4.0 * rng.next_f64()).round())
            .collect();
        let predicates: Vec<JoinPredicate> = shape
            .pairs(n)
            .into_iter()
            .map(|(left, right)| {
                let larger = cards[left].max(cards[right]);
                let selectivity = (10f64.powf(rng.next_f64() - 0.5) / larger).min(1.0);
                JoinPredicate {
                    left,
                    right,
                    selectivity,
                }
            })
            .collect();
        JoinOrderProblem::new(cards, &predicates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_shapes_have_their_edge_counts_and_seeds_repeat() {
        for (shape, edges) in [
            (QueryShape::Chain, 5),
            (QueryShape::Star, 5),
            (QueryShape::Cycle, 6),
            (QueryShape::Clique, 15),
        ] {
            assert_eq!(shape.pairs(6).len(), edges, "{}", shape.name());
            let a = JoinOrderProblem::random(shape, 6, 7).unwrap();
            let b = JoinOrderProblem::random(shape, 6, 7).unwrap();
            let order: Vec<usize> = (0..6).collect();
            assert_eq!(a.cost(&order).unwrap(), b.cost(&order).unwrap());
        }
    }
}
