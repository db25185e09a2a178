//! Plans random chain, star, cycle and clique queries with the annealer and compares the plan
//! cost with the greedy plan (and the DP optimum where it is feasible).
//!
//! `cargo run --release -p nq-quantum --example plan_joins`

use std::time::Instant;

use nq_quantum::encode::JoinOrderProblem;
use nq_quantum::encode::JoinPredicate;
use nq_quantum::rng::Rng;
use nq_quantum::solve::SimulatedAnnealing;

fn query(shape: &str, n: usize, seed: u64) -> JoinOrderProblem {
    let mut rng = Rng::new(seed);
    let cards: Vec<f64> = (0..n)
        .map(|_| 10f64.powf(2.0 + 4.0 * rng.next_f64()).round())
        .collect();
    let pairs: Vec<(usize, usize)> = match shape {
        "chain" => (1..n).map(|r| (r - 1, r)).collect(),
        "star" => (1..n).map(|r| (0, r)).collect(),
        "cycle" => (0..n).map(|r| (r, (r + 1) % n)).collect(),
        _ => (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect(),
    };
    let predicates: Vec<JoinPredicate> = pairs
        .into_iter()
        .map(|(left, right)| {
            let larger = cards[left].max(cards[right]);
            let selectivity = ((1.0 / larger) * 10f64.powf(rng.next_f64() - 0.5)).min(1.0);
            JoinPredicate {
                left,
                right,
                selectivity,
            }
        })
        .collect();
    JoinOrderProblem::new(cards, &predicates).expect("generated queries are valid")
}

fn main() -> Result<(), nq_quantum::QuantumError> {
    let sampler = SimulatedAnnealing {
        num_reads: 32,
        num_sweeps: 300,
        seed: 1,
        ..Default::default()
    };
    for n in [8, 12, 20, 30, 50] {
        for shape in ["chain", "star", "cycle", "clique"] {
            let problem = query(shape, n, n as u64);
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
                "{shape:>6} n={n:>2}: polished/greedy {:.3} polished/dp {:.3} raw/greedy {:.3e} feasible {} time {:.3}s",
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
