//! QUANTUM_JOIN: join ordering by annealing the join-order QUBO of `nq-quantum`.
//!
//! A query asks for it with `a QUANTUM_JOIN b ON ...` or the hint
//! `SELECT /*+ QUANTUM_JOIN(swap|sa|sqa|pt) */ ...` (see `parse`); the planner also uses the
//! annealer on its own beyond the dynamic-programming limit, where it keeps the cheaper of
//! the annealed and the greedy plan ([`AnnealOrGreedy`]).
//!
//! The annealer is a classical Monte Carlo simulation: it encodes the order as `n²` bits,
//! samples the QUBO, decodes every read, scores the decoded orders with the planner's own
//! `C_out` estimate and polishes the best ones by local search. Samplers are seeded with a
//! constant, so a query gets the same plan every time it is planned.

use std::time::Instant;

use nq_quantum::encode::join::{AnnealedPlan, JoinOrderProblem, JoinPredicate};
use nq_quantum::solve::{
    ParallelTempering, PermutationAnnealing, Sampler, SimulatedAnnealing, SimulatedQuantumAnnealing,
};

use crate::error::{Result, SqlError};
use crate::join_order::{GreedyOrderer, JoinChoice, JoinGraph, JoinOrderer};

/// Seed of every planning run: plans must not change between two EXPLAINs of one query.
const SEED: u64 = 0x5EED_0F01;

/// Which sampler anneals the join-order QUBO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Solver {
    /// Annealing with swap moves over permutations (the default): every state is a valid
    /// order, so it reaches the QUBO's low-energy orders where single-flip samplers stall on
    /// the permutation penalties.
    #[default]
    Swap,
    /// Simulated annealing with single-bit flips.
    Sa,
    /// Simulated quantum annealing (path-integral Monte Carlo on the transverse-field model).
    Sqa,
    /// Parallel tempering.
    Pt,
}

impl Solver {
    /// Parses the hint argument: empty (default), `swap`, `sa`, `sqa` or `pt`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(argument: &str) -> Result<Solver> {
        match argument.trim().to_ascii_lowercase().as_str() {
            "" | "swap" => Ok(Solver::Swap),
            "sa" => Ok(Solver::Sa),
            "sqa" => Ok(Solver::Sqa),
            "pt" => Ok(Solver::Pt),
            other => Err(SqlError::Invalid(format!(
                "unknown QUANTUM_JOIN solver {other:?}; choose swap, sa, sqa or pt"
            ))),
        }
    }

    /// The sampler with the planner's budget: a few milliseconds on small queries.
    fn sampler(self) -> Box<dyn Sampler> {
        match self {
            Solver::Swap => Box::new(PermutationAnnealing {
                num_reads: 16,
                num_sweeps: 30,
                seed: SEED,
                ..PermutationAnnealing::default()
            }),
            Solver::Sa => Box::new(SimulatedAnnealing {
                num_reads: 32,
                num_sweeps: 300,
                seed: SEED,
                ..SimulatedAnnealing::default()
            }),
            Solver::Sqa => Box::new(SimulatedQuantumAnnealing {
                num_reads: 8,
                num_sweeps: 200,
                trotter_slices: 8,
                seed: SEED,
                ..SimulatedQuantumAnnealing::default()
            }),
            Solver::Pt => Box::new(ParallelTempering {
                num_reads: 2,
                num_replicas: 8,
                num_sweeps: 300,
                seed: SEED,
                ..ParallelTempering::default()
            }),
        }
    }
}

/// Orders joins with an annealer.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuantumOrderer {
    /// The sampler.
    pub solver: Solver,
}

impl QuantumOrderer {
    /// Runs the annealer; `Err` with the reason when the problem cannot be encoded or sampled.
    fn anneal(&self, graph: &JoinGraph) -> std::result::Result<(AnnealedPlan, Vec<usize>), String> {
        let cardinalities = graph.relations.iter().map(|r| r.rows.max(1.0)).collect();
        let predicates: Vec<JoinPredicate> = graph
            .edges
            .iter()
            .filter(|e| e.a != e.b)
            .map(|e| JoinPredicate {
                left: e.a,
                right: e.b,
                selectivity: e.selectivity.clamp(f64::MIN_POSITIVE, 1.0),
            })
            .collect();
        let problem =
            JoinOrderProblem::new(cardinalities, &predicates).map_err(|e| e.to_string())?;
        let plan = problem
            .plan_with(self.solver.sampler().as_ref())
            .map_err(|e| e.to_string())?;
        // The annealer scores with its own C_out; keep whichever of its candidates the
        // planner's estimate (which floors sizes at one row) prefers.
        let order = [&plan.polished, &plan.best_read, &plan.raw]
            .into_iter()
            .map(|o| o.order.clone())
            .min_by(|a, b| graph.cost(a).total_cmp(&graph.cost(b)))
            .expect("three candidates");
        Ok((plan, order))
    }
}

/// What EXPLAIN says about an annealing run.
fn describe(plan: &AnnealedPlan, graph: &JoinGraph) -> Vec<String> {
    let s = &plan.samples;
    vec![
        format!(
            "Annealer: {}, QUBO of {} variables and {} interactions, {} reads x {} sweeps, acceptance {:.3}, {:.3} ms",
            s.solver,
            plan.qubo_variables,
            plan.qubo_interactions,
            s.stats.reads,
            s.stats.sweeps_per_read,
            s.stats.acceptance_rate(),
            plan.planning_time.as_secs_f64() * 1000.0,
        ),
        format!(
            "Best energy {:.4} ({}); plan cost of the lowest-energy sample {:.0}, of the best read {:.0}, after local search {:.0}",
            s.best.energy,
            if plan.feasible {
                "a permutation"
            } else {
                "repaired to a permutation"
            },
            graph.cost(&plan.raw.order),
            graph.cost(&plan.best_read.order),
            graph.cost(&plan.polished.order),
        ),
    ]
}

impl JoinOrderer for QuantumOrderer {
    fn name(&self) -> &'static str {
        "quantum annealing"
    }

    fn order(&self, graph: &JoinGraph) -> JoinChoice {
        match self.anneal(graph) {
            Ok((plan, order)) => JoinChoice {
                order,
                detail: describe(&plan, graph),
            },
            Err(reason) => JoinChoice {
                order: GreedyOrderer.order(graph).order,
                detail: vec![format!("Annealer failed ({reason}); greedy order used")],
            },
        }
    }
}

/// The planner's choice beyond the DP limit: anneal, plan greedily, keep the cheaper.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnnealOrGreedy;

impl JoinOrderer for AnnealOrGreedy {
    fn name(&self) -> &'static str {
        "annealing or greedy"
    }

    fn order(&self, graph: &JoinGraph) -> JoinChoice {
        let started = Instant::now();
        let greedy = GreedyOrderer.order(graph).order;
        let greedy_cost = graph.cost(&greedy);
        let annealed = QuantumOrderer::default().order(graph);
        let annealed_cost = graph.cost(&annealed.order);
        let (order, winner) = if annealed_cost <= greedy_cost {
            (annealed.order, "annealed")
        } else {
            (greedy, "greedy")
        };
        let mut detail = vec![format!(
            "Kept the {winner} plan: annealed cost {annealed_cost:.0}, greedy cost {greedy_cost:.0}, {:.3} ms in all",
            started.elapsed().as_secs_f64() * 1000.0
        )];
        detail.extend(annealed.detail);
        JoinChoice { order, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join_order::DpOrderer;
    use crate::join_order::tests::chain;

    fn is_permutation(order: &[usize], n: usize) -> bool {
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        sorted == (0..n).collect::<Vec<_>>()
    }

    #[test]
    fn test_every_solver_orders_a_small_chain_as_well_as_dp() {
        let g = chain(&[1_000_000.0, 10.0, 100_000.0, 50.0, 2_000.0]);
        let dp = g.cost(&DpOrderer.order(&g).order);
        for solver in [Solver::Swap, Solver::Sa, Solver::Sqa, Solver::Pt] {
            let choice = QuantumOrderer { solver }.order(&g);
            assert!(is_permutation(&choice.order, 5), "{solver:?}: {choice:?}");
            assert!(
                g.cost(&choice.order) <= dp * 1.0001,
                "{solver:?}: {choice:?} vs {dp}"
            );
            assert!(
                choice.detail[0].contains("QUBO of 25 variables"),
                "{:?}",
                choice.detail
            );
        }
    }

    #[test]
    fn test_planning_is_deterministic() {
        let g = chain(&[5.0, 1e6, 3.0, 1e4, 7.0, 1e3, 2.0, 9.0, 11.0, 1e5, 4.0, 6.0]);
        let a = QuantumOrderer::default().order(&g).order;
        let b = QuantumOrderer::default().order(&g).order;
        assert_eq!(a, b);
    }

    #[test]
    fn test_anneal_or_greedy_is_never_worse_than_greedy() {
        let g = chain(&[
            5.0, 1e6, 3.0, 1e4, 7.0, 1e3, 2.0, 9.0, 11.0, 1e5, 4.0, 6.0, 8.0,
        ]);
        let choice = AnnealOrGreedy.order(&g);
        assert!(is_permutation(&choice.order, 13));
        let greedy = g.cost(&GreedyOrderer.order(&g).order);
        assert!(g.cost(&choice.order) <= greedy);
        assert!(
            choice.detail[0].starts_with("Kept the "),
            "{:?}",
            choice.detail
        );
    }

    #[test]
    fn test_solver_names_parse() {
        assert_eq!(Solver::parse("").unwrap(), Solver::Swap);
        assert_eq!(Solver::parse("sa").unwrap(), Solver::Sa);
        assert_eq!(Solver::parse(" SQA ").unwrap(), Solver::Sqa);
        assert_eq!(Solver::parse("pt").unwrap(), Solver::Pt);
        let err = Solver::parse("dwave").unwrap_err().to_string();
        assert!(err.contains("swap, sa, sqa or pt"), "{err}");
    }
}
