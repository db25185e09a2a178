//! Plans random chain, star, cycle and clique queries with the annealer and compares the plan
//! cost with the greedy plan (and the DP optimum where it is feasible).
//!
//! `cargo run --release -p nq-quantum --example plan_joins`

use std::time::Instant;

use nq_quantum::encode::JoinOrderProblem;
use nq_quantum::encode::join::QueryShape;
use nq_quantum::solve::SimulatedAnnealing;

fn main() -> Result<(), nq_quantum::QuantumError> {
    let sampler = SimulatedAnnealing {
        num_reads: 32,
        num_sweeps: 300,
        seed: 1,
        ..Default::default()
    };
    for n in [8, 12, 20, 30, 50] {
        for shape in QueryShape::ALL {
            let problem = JoinOrderProblem::random(shape, n, n as u64)?;
            let started = Instant::now();
            let plan = problem.plan_with(&sampler)?;
            let elapsed = started.elapsed();
            let greedy = problem.greedy().cost;
            let optimum = if n <= 14 {
                problem.optimal()?.cost
            } else {
                f64::NAN
            };
            println!(
                "{:>6} n={n:>2}: polished/greedy {:.3} polished/dp {:.3} raw/greedy {:.3e} feasible {} time {:.3}s",
                shape.name(),
                plan.polished.cost / greedy,
                plan.polished.cost / optimum,
                plan.raw.cost / greedy,
                plan.feasible,
                elapsed.as_secs_f64()
            );
        }
    }
    Ok(())
}
