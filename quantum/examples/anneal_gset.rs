//! Anneals Max-Cut on G-set files (or a generated G1-like graph) and prints cut and time.
//!
//! `cargo run --release -p nq-quantum --example anneal_gset -- [FILE...]`

use std::time::Instant;

use nq_quantum::encode::Encoding;
use nq_quantum::encode::MaxCut;
use nq_quantum::io::WeightKind;
use nq_quantum::io::random_graph;
use nq_quantum::io::read_gset;
use nq_quantum::solve::Sampler;
use nq_quantum::solve::SimulatedAnnealing;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let graphs = if files.is_empty() {
        vec![(
            "generated-G1-like".to_owned(),
            random_graph(800, 0.06, WeightKind::Unit, 1)?,
        )]
    } else {
        files
            .iter()
            .map(|f| Ok((f.clone(), read_gset(f)?)))
            .collect::<Result<Vec<_>, nq_quantum::QuantumError>>()?
    };
    for (name, graph) in graphs {
        let problem = MaxCut::new(graph);
        let ising = problem.qubo().to_ising();
        let sampler = SimulatedAnnealing {
            num_reads: 100,
            num_sweeps: 1000,
            ..SimulatedAnnealing::default()
        };
        let started = Instant::now();
        let result = sampler.sample_ising(&ising)?;
        let cut = problem.decode(&result.best.bits)?;
        println!(
            "{name}: best cut {} mean energy {:.1} time {:.3}s (sampler {:.3}s) acceptance {:.3}",
            cut.value,
            result.mean_energy(),
            started.elapsed().as_secs_f64(),
            result.stats.wall_time.as_secs_f64(),
            result.stats.acceptance_rate()
        );
    }
    Ok(())
}
