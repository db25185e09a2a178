//! Join ordering through the QUBO: annealed plans must be valid permutations and close to the
//! dynamic-programming optimum on the query shapes the planner sees.

use nq_quantum::encode::JoinOrderProblem;
use nq_quantum::encode::JoinPredicate;
use nq_quantum::rng::Rng;
use nq_quantum::solve::SimulatedAnnealing;

#[derive(Debug, Clone, Copy)]
enum Shape {
    Chain,
    Star,
    Cycle,
    Clique,
}

fn query(shape: Shape, n: usize, seed: u64) -> JoinOrderProblem {
    let mut rng = Rng::new(seed);
    let cards: Vec<f64> = (0..n)
        .map(|_| 10f64.powf(2.0 + 4.0 * rng.next_f64()).round())
        .collect();
    let pairs: Vec<(usize, usize)> = match shape {
        Shape::Chain => (1..n).map(|r| (r - 1, r)).collect(),
        Shape::Star => (1..n).map(|r| (0, r)).collect(),
        Shape::Cycle => (0..n).map(|r| (r, (r + 1) % n)).collect(),
        Shape::Clique => (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect(),
    };
    let predicates: Vec<JoinPredicate> = pairs
        .into_iter()
        .map(|(left, right)| {
            // Key/foreign-key-like: selectivity near 1 / the larger side.
            let larger = cards[left].max(cards[right]);
            let selectivity = (1.0 / larger) * 10f64.powf(rng.next_f64() - 0.5);
            JoinPredicate {
                left,
                right,
                selectivity: selectivity.min(1.0),
            }
        })
        .collect();
    JoinOrderProblem::new(cards, &predicates).unwrap()
}

#[test]
fn test_annealed_plans_are_valid_and_near_optimal() {
    let sampler = SimulatedAnnealing {
        num_reads: 32,
        num_sweeps: 300,
        seed: 1,
        ..Default::default()
    };
    let mut ratios = Vec::new();
    for shape in [Shape::Chain, Shape::Star, Shape::Cycle, Shape::Clique] {
        for (n, seed) in [(4, 1), (6, 2), (8, 3), (10, 4)] {
            let problem = query(shape, n, seed);
            let optimum = problem.optimal().unwrap();
            let plan = problem.plan_with(&sampler).unwrap();
            assert_eq!(plan.qubo_variables, n * n);
            let mut sorted = plan.polished.order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            assert!(plan.polished.cost <= plan.raw.cost);
            assert!(plan.polished.cost >= optimum.cost * (1.0 - 1e-9));
            ratios.push(plan.polished.cost / optimum.cost);
        }
    }
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!(
        mean <= 1.05 && worst <= 1.5,
        "mean {mean}, worst {worst}, {ratios:?}"
    );
}
