//! Every heuristic sampler must find the exact ground state of small hard instances, and must
//! give the same answer for the same seed whatever the thread count.

use nq_quantum::encode::Edge;
use nq_quantum::encode::Encoding;
use nq_quantum::encode::Graph;
use nq_quantum::encode::MaxCut;
use nq_quantum::io::WeightKind;
use nq_quantum::io::random_graph;
use nq_quantum::io::toroidal_grid;
use nq_quantum::model::Ising;
use nq_quantum::rng::Rng;
use nq_quantum::solve::BetaSchedule;
use nq_quantum::solve::Descent;
use nq_quantum::solve::ExactSolver;
use nq_quantum::solve::GammaSchedule;
use nq_quantum::solve::ParallelTempering;
use nq_quantum::solve::Sampler;
use nq_quantum::solve::SimulatedAnnealing;
use nq_quantum::solve::SimulatedQuantumAnnealing;
use nq_quantum::solve::polish_samples;

/// A Sherrington–Kirkpatrick spin glass: all pairs coupled with Gaussian-like weights, heavily
/// frustrated, with random fields so the ground state is unique.
fn sk_model(n: usize, seed: u64) -> Ising {
    let mut rng = Rng::new(seed);
    let mut builder = Ising::builder(n);
    for i in 0..n {
        for j in i + 1..n {
            let w = (0..4).map(|_| rng.next_f64()).sum::<f64>() - 2.0;
            builder.add_coupling(i, j, w);
        }
        builder.add_field(i, 0.1 * (rng.next_f64() - 0.5));
    }
    builder.build().unwrap()
}

/// A 2D ±J spin glass on a torus, the classic frustrated benchmark.
fn torus_glass(rows: usize, cols: usize, seed: u64) -> Ising {
    let graph = toroidal_grid(rows, cols, WeightKind::PlusMinusOne, seed).unwrap();
    let mut builder = Ising::builder(graph.num_nodes());
    for e in graph.edges() {
        builder.add_coupling(e.u, e.v, e.weight);
    }
    builder.build().unwrap()
}

/// Checks that `sampler` reaches the exact ground-state energy of `model`, and that its
/// reported energy is the energy of its reported bits.
fn check_ground_state(sampler: &dyn Sampler, model: &Ising, label: &str) {
    let exact = ExactSolver.sample_ising(model).unwrap().best.energy;
    let result = sampler.sample_ising(model).unwrap();
    let recomputed = model.energy_of_bits(&result.best.bits).unwrap();
    assert!(
        (recomputed - result.best.energy).abs() < 1e-9,
        "{label}: energy mismatch"
    );
    assert!(
        result.best.energy <= exact + 1e-9,
        "{label} ({}): found {} but the ground state is {exact}",
        sampler.name(),
        result.best.energy
    );
    assert!(result.stats.proposed_moves > 0);
    assert!(result.stats.accepted_moves > 0 && result.stats.acceptance_rate() < 1.0);
}

#[test]
fn test_simulated_annealing_finds_max_cut_optimum() {
    for seed in 0..3 {
        let graph = random_graph(20, 0.3, WeightKind::PlusMinusOne, seed).unwrap();
        let problem = MaxCut::new(graph);
        let exact = ExactSolver.sample_qubo(problem.qubo()).unwrap();
        for schedule in [BetaSchedule::Geometric, BetaSchedule::Linear] {
            let sa = SimulatedAnnealing {
                num_reads: 16,
                num_sweeps: 200,
                schedule,
                seed,
                ..SimulatedAnnealing::default()
            };
            let result = sa.sample_qubo(problem.qubo()).unwrap();
            let cut = problem.decode(&result.best.bits).unwrap();
            let best_cut = problem.decode(&exact.best.bits).unwrap().value;
            assert!(
                (cut.value - best_cut).abs() < 1e-9,
                "seed {seed} {schedule:?}"
            );
            assert!((result.best.energy + cut.value).abs() < 1e-9);
            assert_eq!(result.energies.len(), 16);
            assert!(result.mean_energy() >= result.best.energy);
        }
    }
}

#[test]
fn test_weighted_max_cut_by_simulated_annealing() {
    let mut rng = Rng::new(99);
    let mut edges = Vec::new();
    for u in 0..18 {
        for v in u + 1..18 {
            if rng.below(3) == 0 {
                edges.push(Edge {
                    u,
                    v,
                    weight: (rng.next_f64() * 10.0).round() + 1.0,
                });
            }
        }
    }
    let problem = MaxCut::new(Graph::new(18, edges).unwrap());
    let exact = ExactSolver.sample_qubo(problem.qubo()).unwrap().best.energy;
    let result = SimulatedAnnealing {
        num_reads: 8,
        num_sweeps: 300,
        ..Default::default()
    }
    .sample_qubo(problem.qubo())
    .unwrap();
    assert!((result.best.energy - exact).abs() < 1e-9);
}

#[test]
fn test_every_sampler_reaches_ground_states_of_frustrated_instances() {
    let instances = [
        ("sk-18", sk_model(18, 1)),
        ("sk-20", sk_model(20, 2)),
        ("torus-4x5", torus_glass(4, 5, 3)),
    ];
    let sa = SimulatedAnnealing {
        num_reads: 16,
        num_sweeps: 500,
        seed: 5,
        ..Default::default()
    };
    let pt = ParallelTempering {
        num_replicas: 8,
        num_sweeps: 1000,
        seed: 5,
        ..Default::default()
    };
    let mut samplers: Vec<(String, Box<dyn Sampler>)> =
        vec![("sa".into(), Box::new(sa)), ("pt".into(), Box::new(pt))];
    for schedule in [
        GammaSchedule::Linear,
        GammaSchedule::Exponential,
        GammaSchedule::Adaptive {
            target_acceptance: 0.1,
        },
    ] {
        for global_moves in [false, true] {
            let sqa = SimulatedQuantumAnnealing {
                num_reads: 8,
                num_sweeps: 300,
                trotter_slices: 8,
                schedule,
                global_moves,
                seed: 5,
                ..Default::default()
            };
            samplers.push((
                format!("sqa {schedule:?} global={global_moves}"),
                Box::new(sqa),
            ));
        }
    }
    for (name, model) in &instances {
        for (label, sampler) in &samplers {
            check_ground_state(sampler.as_ref(), model, &format!("{name} {label}"));
        }
    }
}

#[test]
fn test_results_depend_only_on_the_seed() {
    let model = sk_model(40, 7);
    let sa = SimulatedAnnealing {
        num_reads: 6,
        num_sweeps: 50,
        seed: 11,
        ..Default::default()
    };
    let sqa = SimulatedQuantumAnnealing {
        num_reads: 3,
        num_sweeps: 30,
        trotter_slices: 4,
        seed: 11,
        ..Default::default()
    };
    let pt = ParallelTempering {
        num_replicas: 4,
        num_sweeps: 60,
        seed: 11,
        ..Default::default()
    };
    let samplers: [&dyn Sampler; 3] = [&sa, &sqa, &pt];
    for sampler in samplers {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| sampler.sample_ising(&model).unwrap())
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(one.best, two.best, "{}", sampler.name());
        assert_eq!(one.energies, two.energies, "{}", sampler.name());
        assert_eq!(one.stats.accepted_moves, two.stats.accepted_moves);
    }
    let other_seed = SimulatedAnnealing {
        seed: 12,
        ..sa.clone()
    }
    .sample_ising(&model)
    .unwrap();
    assert_ne!(
        other_seed.energies,
        sa.sample_ising(&model).unwrap().energies
    );
}

#[test]
fn test_parallel_tempering_ladder_adapts_and_reports_exchanges() {
    let model = torus_glass(6, 6, 1);
    let pt = ParallelTempering {
        num_replicas: 10,
        num_sweeps: 3000,
        adapt_fraction: 0.5,
        seed: 3,
        ..Default::default()
    };
    let report = pt.run(&model).unwrap();
    let ladder = &report.ladders[0];
    let (hot, cold) = nq_quantum::solve::default_beta_range(&model);
    assert_eq!(ladder.betas.len(), 10);
    assert!((ladder.betas[0] - hot).abs() < 1e-12);
    assert!((ladder.betas[9] / cold - 1.0).abs() < 1e-9);
    assert!(ladder.betas.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(ladder.exchanges.len(), 9);
    let rates: Vec<f64> = ladder
        .exchanges
        .iter()
        .map(nq_quantum::solve::ExchangeStats::rate)
        .collect();
    assert!(ladder.exchanges.iter().all(|e| e.attempted > 0));
    // Adaptation should leave no pair that never exchanges.
    assert!(rates.iter().all(|&r| r > 0.02), "{rates:?}");
}

#[test]
fn test_polish_is_reported_beside_the_raw_result() {
    let model = sk_model(60, 4);
    // A deliberately short anneal leaves room for descent to improve.
    let raw = SimulatedAnnealing {
        num_reads: 1,
        num_sweeps: 3,
        seed: 1,
        ..Default::default()
    }
    .sample_ising(&model)
    .unwrap();
    let raw_energy = raw.best.energy;
    let polished = polish_samples(&model, raw, Descent::Steepest).unwrap();
    assert_eq!(polished.raw.best.energy, raw_energy);
    assert!(polished.polished.energy <= raw_energy);
    assert!(
        (model.energy_of_bits(&polished.polished.bits).unwrap() - polished.polished.energy).abs()
            < 1e-9
    );
}

#[test]
fn test_invalid_parameters_are_errors_not_panics() {
    let model = sk_model(5, 0);
    let bad_sa = SimulatedAnnealing {
        num_reads: 0,
        ..Default::default()
    };
    assert!(bad_sa.sample_ising(&model).is_err());
    let bad_range = SimulatedAnnealing {
        beta_range: Some((2.0, 1.0)),
        ..Default::default()
    };
    assert!(bad_range.sample_ising(&model).is_err());
    let bad_pt = ParallelTempering {
        num_replicas: 1,
        ..Default::default()
    };
    assert!(bad_pt.sample_ising(&model).is_err());
    let bad_sqa = SimulatedQuantumAnnealing {
        trotter_slices: 1,
        ..Default::default()
    };
    assert!(bad_sqa.sample_ising(&model).is_err());
    let bad_gamma = SimulatedQuantumAnnealing {
        gamma_range: Some((0.1, 1.0)),
        ..Default::default()
    };
    assert!(bad_gamma.sample_ising(&model).is_err());
    assert!(ExactSolver.sample_ising(&sk_model(27, 0)).is_err());
    // Zero sweeps is a legal (if useless) budget: every sampler still returns a full sample.
    let zero: [&dyn Sampler; 3] = [
        &SimulatedAnnealing {
            num_sweeps: 0,
            ..Default::default()
        },
        &ParallelTempering {
            num_sweeps: 0,
            ..Default::default()
        },
        &SimulatedQuantumAnnealing {
            num_sweeps: 0,
            ..Default::default()
        },
    ];
    for sampler in zero {
        let result = sampler.sample_ising(&model).unwrap();
        assert_eq!(result.best.bits.len(), 5, "{}", sampler.name());
        assert!(
            (model.energy_of_bits(&result.best.bits).unwrap() - result.best.energy).abs() < 1e-9
        );
    }
}
