//! Join-order instances, their cost function and the classical planners.
//!
//! **Cost model.** A left-deep order `π` joins `π_0` with `π_1`, the result with `π_2`, and so
//! on. The size of a join of relation set `S` is `|S| = Π_{r∈S} c_r · Π_{(a,b)∈E, a,b∈S} s_ab`
//! (independent predicates; pairs without a predicate form a cross product). The cost is
//! `C_out(π) = Σ_{k=2..n} |{π_0..π_{k-1}}|`, the total size of all join results including the
//! final one (a constant shared by every order). Sizes saturate at `f64::MAX` instead of
//! overflowing on huge cross products.

use crate::error::QuantumError;
use crate::error::Result;

/// Largest instance [`JoinOrderProblem::optimal`] solves: the DP table has 2^n entries
/// (2^20 × 17 bytes ≈ 17 MiB).
pub const MAX_DP_RELATIONS: usize = 20;

/// A join predicate between two relations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JoinPredicate {
    /// One relation (index into the cardinalities).
    pub left: usize,
    /// The other relation.
    pub right: usize,
    /// Fraction of the cross product that survives, in `(0, 1]`.
    pub selectivity: f64,
}

/// A left-deep join order and its `C_out` cost.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOrder {
    /// Relations in join order; a permutation of `0..n`.
    pub order: Vec<usize>,
    /// `C_out` of the order.
    pub cost: f64,
}

/// Relations with estimated cardinalities, joined by predicates with estimated selectivities.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOrderProblem {
    cardinalities: Vec<f64>,
    /// Row-major `n × n`, symmetric; 1.0 where no predicate links the pair.
    selectivity: Vec<f64>,
    predicates: Vec<JoinPredicate>,
}

impl JoinOrderProblem {
    /// Creates an instance. Several predicates on the same pair multiply their selectivities.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) for no relations, a cardinality that
    /// is not positive and finite, a predicate on an unknown relation or on a relation with
    /// itself, or a selectivity outside `(0, 1]`.
    pub fn new(cardinalities: Vec<f64>, predicates: &[JoinPredicate]) -> Result<Self> {
        let n = cardinalities.len();
        if n == 0 {
            return Err(QuantumError::invalid(
                "cardinalities",
                "need at least one relation",
            ));
        }
        if let Some(bad) = cardinalities.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
            return Err(QuantumError::invalid(
                "cardinalities",
                format!("cardinalities must be positive and finite, found {bad}"),
            ));
        }
        let mut selectivity = vec![1.0; n * n];
        for (index, p) in predicates.iter().enumerate() {
            let valid_ends = p.left < n && p.right < n && p.left != p.right;
            let valid_value =
                p.selectivity.is_finite() && p.selectivity > 0.0 && p.selectivity <= 1.0;
            if !(valid_ends && valid_value) {
                return Err(QuantumError::invalid(
                    "predicates",
                    format!(
                        "predicate {index} ({}, {}, {}): need two distinct relations below {n} and a selectivity in (0, 1]",
                        p.left, p.right, p.selectivity
                    ),
                ));
            }
            selectivity[p.left * n + p.right] *= p.selectivity;
            selectivity[p.right * n + p.left] *= p.selectivity;
        }
        Ok(Self {
            cardinalities,
            selectivity,
            predicates: predicates.to_vec(),
        })
    }

    /// Number of relations.
    #[must_use]
    pub fn num_relations(&self) -> usize {
        self.cardinalities.len()
    }

    /// Estimated cardinality of each relation.
    #[must_use]
    pub fn cardinalities(&self) -> &[f64] {
        &self.cardinalities
    }

    /// The predicates as given.
    #[must_use]
    pub fn predicates(&self) -> &[JoinPredicate] {
        &self.predicates
    }

    /// Combined selectivity between relations `a` and `b` (1.0 without a predicate).
    #[must_use]
    pub fn selectivity(&self, a: usize, b: usize) -> f64 {
        self.selectivity[a * self.num_relations() + b]
    }

    /// Size of the result after joining `next` to a prefix of size `size` made of `prefix`.
    fn grow(&self, size: f64, prefix: &[usize], next: usize) -> f64 {
        let mut grown = size * self.cardinalities[next];
        for &r in prefix {
            grown *= self.selectivity(r, next);
        }
        grown.min(f64::MAX)
    }

    /// `C_out` of a left-deep order.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) if `order` is not a permutation of
    /// the relations.
    pub fn cost(&self, order: &[usize]) -> Result<f64> {
        if !crate::encode::tour::is_permutation(order, self.num_relations()) {
            return Err(QuantumError::invalid(
                "order",
                format!("need a permutation of 0..{}", self.num_relations()),
            ));
        }
        Ok(self.cost_unchecked(order))
    }

    pub(crate) fn cost_unchecked(&self, order: &[usize]) -> f64 {
        let Some(&first) = order.first() else {
            return 0.0;
        };
        let mut size = self.cardinalities[first];
        let mut total = 0.0f64;
        for k in 1..order.len() {
            size = self.grow(size, &order[..k], order[k]);
            total = (total + size).min(f64::MAX);
        }
        total
    }

    /// Among `candidates`, the relation whose join with `prefix` (of size `size`) is smallest;
    /// lowest index on ties. Shared by the greedy planner and the QUBO decoder's repair.
    pub(crate) fn cheapest_next(
        &self,
        size: f64,
        prefix: &[usize],
        candidates: impl Iterator<Item = usize>,
    ) -> Option<usize> {
        candidates.min_by(|&a, &b| {
            let sa = self.grow(size, prefix, a);
            let sb = self.grow(size, prefix, b);
            sa.total_cmp(&sb).then(a.cmp(&b))
        })
    }

    /// The optimal left-deep order (cross products allowed), by dynamic programming over
    /// relation subsets: `best(S) = |S| + min_{r∈S} best(S \ {r})`.
    ///
    /// # Errors
    /// [`TooLarge`](QuantumError::TooLarge) beyond [`MAX_DP_RELATIONS`] relations.
    pub fn optimal(&self) -> Result<JoinOrder> {
        let n = self.num_relations();
        if n > MAX_DP_RELATIONS {
            return Err(QuantumError::TooLarge {
                method: "join-order dp",
                size: n,
                limit: MAX_DP_RELATIONS,
                unit: "relations",
            });
        }
        let subsets = 1usize << n;
        let mut size = vec![1.0f64; subsets];
        let mut best = vec![0.0f64; subsets];
        let mut last = vec![0u8; subsets];
        for set in 1..subsets {
            let lowest = set.trailing_zeros() as usize;
            let rest = set & (set - 1);
            let mut grown = size[rest] * self.cardinalities[lowest];
            let mut others = rest;
            while others != 0 {
                let r = others.trailing_zeros() as usize;
                grown *= self.selectivity(lowest, r);
                others &= others - 1;
            }
            size[set] = grown.min(f64::MAX);
            if rest == 0 {
                // A single relation: nothing joined yet, no cost, and it is its own last.
                last[set] = u8::try_from(lowest).unwrap_or(u8::MAX);
                continue;
            }
            let mut best_cost = f64::INFINITY;
            let mut members = set;
            while members != 0 {
                let r = members.trailing_zeros() as usize;
                members &= members - 1;
                let cost = best[set & !(1 << r)];
                if cost < best_cost {
                    best_cost = cost;
                    last[set] = u8::try_from(r).unwrap_or(u8::MAX);
                }
            }
            best[set] = (best_cost + size[set]).min(f64::MAX);
        }
        let mut order = Vec::with_capacity(n);
        let mut set = subsets - 1;
        while set != 0 {
            let r = usize::from(last[set]);
            order.push(r);
            set &= !(1 << r);
        }
        order.reverse();
        let cost = self.cost_unchecked(&order);
        Ok(JoinOrder { order, cost })
    }

    /// A greedy plan: from each possible first relation, repeatedly join the relation giving
    /// the smallest intermediate result; the cheapest of these `n` orders wins. O(n³).
    #[must_use]
    pub fn greedy(&self) -> JoinOrder {
        let n = self.num_relations();
        let mut best: Option<JoinOrder> = None;
        for first in 0..n {
            let mut order = vec![first];
            let mut used = vec![false; n];
            used[first] = true;
            let mut size = self.cardinalities[first];
            while order.len() < n {
                let next = self
                    .cheapest_next(size, &order, (0..n).filter(|&r| !used[r]))
                    .expect("relations remain while the order is short");
                size = self.grow(size, &order, next);
                used[next] = true;
                order.push(next);
            }
            let cost = self.cost_unchecked(&order);
            if best.as_ref().is_none_or(|b| cost < b.cost) {
                best = Some(JoinOrder { order, cost });
            }
        }
        best.expect("a problem has at least one relation")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;

    pub(crate) fn random_problem(n: usize, extra_edges: usize, seed: u64) -> JoinOrderProblem {
        let mut rng = Rng::new(seed);
        let cards: Vec<f64> = (0..n)
            .map(|_| 10f64.powf(1.0 + 5.0 * rng.next_f64()).round())
            .collect();
        let mut predicates = Vec::new();
        // A random spanning tree keeps the query connected, then extra edges add cycles.
        for r in 1..n {
            let other = rng.below(r);
            predicates.push(JoinPredicate {
                left: other,
                right: r,
                selectivity: 10f64.powf(-4.0 * rng.next_f64())
                    / cards[r].min(cards[other]).max(1.0).sqrt(),
            });
        }
        for _ in 0..extra_edges {
            let a = rng.below(n);
            let b = rng.below(n);
            if a != b {
                predicates.push(JoinPredicate {
                    left: a,
                    right: b,
                    selectivity: rng.next_f64().max(1e-3),
                });
            }
        }
        JoinOrderProblem::new(cards, &predicates).unwrap()
    }

    fn brute_force(problem: &JoinOrderProblem) -> f64 {
        let items: Vec<usize> = (0..problem.num_relations()).collect();
        crate::encode::tour::tests_support::permutations(&items)
            .iter()
            .map(|p| problem.cost(p).unwrap())
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn test_cost_of_a_chain_by_hand() {
        // R0(100) -s=0.01- R1(1000) -s=0.001- R2(10)
        let problem = JoinOrderProblem::new(
            vec![100.0, 1000.0, 10.0],
            &[
                JoinPredicate {
                    left: 0,
                    right: 1,
                    selectivity: 0.01,
                },
                JoinPredicate {
                    left: 1,
                    right: 2,
                    selectivity: 0.001,
                },
            ],
        )
        .unwrap();
        // (R0 ⋈ R1) = 1000, then ⋈ R2 = 1000 * 10 * 0.001 = 10: C_out = 1010.
        assert!((problem.cost(&[0, 1, 2]).unwrap() - 1010.0).abs() < 1e-9);
        // R0 × R2 = 1000 (cross product), then ⋈ R1 = 1000 * 1000 * 0.01 * 0.001 = 10.
        assert!((problem.cost(&[0, 2, 1]).unwrap() - 1010.0).abs() < 1e-9);
        // (R1 ⋈ R2) = 10, then ⋈ R0 = 10.
        assert!((problem.cost(&[2, 1, 0]).unwrap() - 20.0).abs() < 1e-9);
        assert!((problem.optimal().unwrap().cost - 20.0).abs() < 1e-9);
        assert!(problem.cost(&[0, 0, 1]).is_err());
    }

    #[test]
    fn test_dp_matches_brute_force_and_bounds_the_heuristics() {
        for seed in 0..6 {
            let problem = random_problem(7, 3, seed);
            let exact = problem.optimal().unwrap();
            let brute = brute_force(&problem);
            assert!((exact.cost - brute).abs() <= 1e-9 * brute, "seed {seed}");
            assert!((problem.cost(&exact.order).unwrap() - exact.cost).abs() <= 1e-9 * brute);
            let greedy = problem.greedy();
            assert!(greedy.cost >= exact.cost * (1.0 - 1e-12));
            let improved = problem.improve(&greedy.order).unwrap();
            assert!(improved.cost <= greedy.cost);
            assert!(improved.cost >= exact.cost * (1.0 - 1e-12));
        }
    }

    #[test]
    fn test_invalid_inputs_are_rejected() {
        assert!(JoinOrderProblem::new(vec![], &[]).is_err());
        assert!(JoinOrderProblem::new(vec![1.0, -2.0], &[]).is_err());
        let bad = JoinPredicate {
            left: 0,
            right: 0,
            selectivity: 0.5,
        };
        assert!(JoinOrderProblem::new(vec![1.0, 2.0], &[bad]).is_err());
        let bad = JoinPredicate {
            left: 0,
            right: 1,
            selectivity: 1.5,
        };
        assert!(JoinOrderProblem::new(vec![1.0, 2.0], &[bad]).is_err());
        let big = JoinOrderProblem::new(vec![10.0; MAX_DP_RELATIONS + 1], &[]).unwrap();
        assert!(matches!(big.optimal(), Err(QuantumError::TooLarge { .. })));
    }
}
