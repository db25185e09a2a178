//! `nq-bench maxcut`: our simulated annealing (SA), simulated quantum annealing (SQA) and
//! parallel tempering (PT) on G-set-format graphs, against D-Wave's `SimulatedAnnealingSampler`
//! (PyPI `dwave-samplers`) run in the same process tree on the same files.
//!
//! **Equal budgets.** Every solver gets the same number of single-spin Metropolis proposals,
//! `reads × sweeps × n`: SA and the peer run `reads` reads of `sweeps` sweeps; PT runs one read
//! with `reads` replicas of `sweeps` sweeps each; SQA runs `reads / slices` reads of `sweeps`
//! sweeps over `slices` Trotter slices. Every cut printed is recomputed from the solver's
//! returned sides (ours and the peer's), so a wrong answer aborts the run.
//!
//! **Reference.** The generated random and planar graphs follow the G-set recipes but are not
//! the published G-set instances, so published best-known cuts do not apply to them; their
//! reference cut is the best cut any solver found in this run, including one long SA run
//! (`--reference-sweeps`). The generated unit tori `g48torus` and `g50torus` have the same
//! optimum as G48/G49 and G50 (see `gset_best`), and published G-set files passed by name
//! (`G22.txt`) are checked against their published best-known cuts:
//! `maxcut_<instance>_of_best_known`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use nq_quantum::encode::{Encoding, MaxCut};
use nq_quantum::io::{self, WeightKind};
use nq_quantum::model::Ising;
use nq_quantum::solve::{
    ParallelTempering, SampleSet, Sampler, SimulatedAnnealing, SimulatedQuantumAnnealing,
    default_beta_range, focused_beta_range,
};

use crate::Result;
use crate::dwave::{self, Peer, PeerRun};
use crate::report::Report;
use crate::system;

#[derive(Debug, Clone, clap::Args)]
pub struct MaxcutArgs {
    /// G-set/rudy graph files (`n m`, then `i j w` lines, 1-based nodes).
    pub files: Vec<PathBuf>,
    /// Write the generated G-set-style graphs (G1-, G6-, G11-, G14- and G22-like, from
    /// nq-quantum's generators) into DIR and benchmark them too.
    #[arg(long, value_name = "DIR")]
    pub generate: Option<PathBuf>,
    /// Reads per solver (SA and the peer: independent reads; PT: replicas; SQA: reads × slices).
    #[arg(long, default_value_t = 32)]
    pub reads: usize,
    /// Metropolis sweeps per read.
    #[arg(long, default_value_t = 1000)]
    pub sweeps: usize,
    /// β range of our SA and PT: `focused` (nq-quantum's `focused_beta_range`) or `default`
    /// (`default_beta_range`, the rule dwave-samplers uses).
    #[arg(long, value_enum, default_value_t = RangeRule::Focused)]
    pub beta_range: RangeRule,
    /// Also run the peer a second time with our SA's β range (column `dwave_our_range`), to
    /// separate the effect of the schedule from that of the implementation.
    #[arg(long)]
    pub peer_same_range: bool,
    /// Trotter slices of SQA.
    #[arg(long, default_value_t = 8)]
    pub sqa_slices: usize,
    /// Sweeps of the long SA reference run (same reads); 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    pub reference_sweeps: usize,
    /// Seed for every solver, the peer included.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads for our solvers (0: one per core). The peer is single-threaded.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Do not run the dwave-samplers peer.
    #[arg(long)]
    pub no_peer: bool,
    /// Python interpreter that has dwave-samplers installed.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The peer script [default: bench/peers/dwave_maxcut.py].
    #[arg(long)]
    pub peer_script: Option<PathBuf>,
}

/// Which β range our SA and PT use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RangeRule {
    Focused,
    Default,
}

impl RangeRule {
    pub fn range(self, ising: &Ising) -> (f64, f64) {
        match self {
            RangeRule::Focused => focused_beta_range(ising),
            RangeRule::Default => default_beta_range(ising),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RangeRule::Focused => "focused_beta_range",
            RangeRule::Default => "default_beta_range",
        }
    }
}

/// A generated test graph: file stem, G-set family it imitates, recipe.
struct Recipe {
    name: &'static str,
    imitates: &'static str,
    build: fn() -> nq_quantum::Result<nq_quantum::encode::Graph>,
}

/// The generated set: each G-set family once (random unit and ±1 weights, toroidal ±1,
/// planar union) at 800 nodes, the sparse 2000-node random family, and the two unit tori
/// whose optima equal G48's and G50's best-known cuts.
const RECIPES: [Recipe; 7] = [
    Recipe {
        name: "g1like",
        imitates: "G1: random_graph(800, 0.06, unit, seed 1)",
        build: || io::random_graph(800, 0.06, WeightKind::Unit, 1),
    },
    Recipe {
        name: "g6like",
        imitates: "G6: random_graph(800, 0.06, ±1, seed 6)",
        build: || io::random_graph(800, 0.06, WeightKind::PlusMinusOne, 6),
    },
    Recipe {
        name: "g11like",
        imitates: "G11: toroidal_grid(8, 100, ±1, seed 11)",
        build: || io::toroidal_grid(8, 100, WeightKind::PlusMinusOne, 11),
    },
    Recipe {
        name: "g14like",
        imitates: "G14: planar_union(800, 0.99, unit, seed 14)",
        build: || io::planar_union(800, 0.99, WeightKind::Unit, 14),
    },
    Recipe {
        name: "g22like",
        imitates: "G22: random_graph(2000, 0.01, unit, seed 22)",
        build: || io::random_graph(2000, 0.01, WeightKind::Unit, 22),
    },
    Recipe {
        name: "g48torus",
        imitates: "G48/G49: toroidal_grid(50, 60, unit), optimum 6000",
        build: || io::toroidal_grid(50, 60, WeightKind::Unit, 48),
    },
    Recipe {
        name: "g50torus",
        imitates: "G50: toroidal_grid(25, 120, unit), optimum 5880",
        build: || io::toroidal_grid(25, 120, WeightKind::Unit, 50),
    },
];

/// Our solvers, in column order.
const OURS: [&str; 3] = ["sa", "sqa", "pt"];

/// One solver's outcome on one graph.
#[derive(Debug, Clone)]
struct SolverRun {
    best_cut: f64,
    mean_cut: f64,
    seconds: f64,
}

/// Everything measured on one graph.
#[derive(Debug)]
struct Instance {
    name: String,
    nodes: usize,
    edges: usize,
    /// The β range our SA and PT used.
    beta_range: (f64, f64),
    ours: Vec<SolverRun>,
    peer: Option<PeerRun>,
    /// The peer run again with our β range (`--peer-same-range`).
    peer_same_range: Option<PeerRun>,
    reference: Option<SolverRun>,
    /// The published (or, for the generated tori, proven) best cut, and its source.
    best_known: Option<(f64, &'static str)>,
}

impl Instance {
    /// Our reported figure: the best cut among our solvers, the fastest solver on ties.
    fn ours_best(&self) -> (usize, &SolverRun) {
        let mut best = 0;
        for (index, run) in self.ours.iter().enumerate() {
            let current = &self.ours[best];
            if run.best_cut > current.best_cut
                || (run.best_cut == current.best_cut && run.seconds < current.seconds)
            {
                best = index;
            }
        }
        (best, &self.ours[best])
    }

    /// The best cut seen by any solver in this run.
    fn reference_cut(&self) -> f64 {
        let ours = self.ours.iter().map(|r| r.best_cut);
        let peer = self.peer.iter().chain(&self.peer_same_range);
        let long = self.reference.iter().map(|r| r.best_cut);
        ours.chain(peer.map(|p| p.best_cut))
            .chain(long)
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

pub fn run(args: &MaxcutArgs) -> Result<()> {
    if args.reads == 0 || args.sweeps == 0 || args.sqa_slices < 2 {
        return Err("--reads and --sweeps must be positive and --sqa-slices at least 2".into());
    }
    crate::set_threads(args.threads)?;
    let mut files = args.files.clone();
    if let Some(dir) = &args.generate {
        files.extend(generate(dir)?);
    }
    if files.is_empty() {
        return Err("give G-set files or --generate DIR".into());
    }
    let peer = find_peer(args)?;

    let mut instances = Vec::new();
    for path in &files {
        instances.push(run_instance(args, path, peer.as_ref())?);
    }
    print_report(args, peer.as_ref(), &instances);
    Ok(())
}

/// Writes every [`RECIPES`] graph into `dir` and returns the paths.
fn generate(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for recipe in &RECIPES {
        let graph = (recipe.build)()?;
        let path = dir.join(format!("{}.txt", recipe.name));
        io::write_gset(&graph, BufWriter::new(File::create(&path)?))?;
        eprintln!(
            "[generate] {} ({}): {} nodes, {} edges",
            path.display(),
            recipe.imitates,
            graph.num_nodes(),
            graph.edges().len()
        );
        paths.push(path);
    }
    Ok(paths)
}

fn find_peer(args: &MaxcutArgs) -> Result<Option<Peer>> {
    if args.no_peer {
        eprintln!("[dwave] skipped (--no-peer)");
        return Ok(None);
    }
    let script = args
        .peer_script
        .clone()
        .unwrap_or_else(dwave::default_script);
    match dwave::probe(&args.python, &script)? {
        Ok(peer) => {
            eprintln!(
                "[dwave] dwave-samplers {} via {}",
                peer.version, args.python
            );
            Ok(Some(peer))
        }
        Err(reason) => {
            eprintln!(
                "[dwave] peer unavailable, skipping it: {reason} (install with `pip install \
                 dwave-samplers`)"
            );
            Ok(None)
        }
    }
}

/// A metric-safe instance name: the file stem, lowercased, other characters as `_`.
fn instance_name(path: &Path) -> String {
    let stem = path.file_stem().map_or_else(
        || path.to_string_lossy().into_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn run_instance(args: &MaxcutArgs, path: &Path, peer: Option<&Peer>) -> Result<Instance> {
    let name = instance_name(path);
    let graph = io::read_gset(path)?;
    let (nodes, edges) = (graph.num_nodes(), graph.edges().len());
    let problem = MaxCut::new(graph);
    let ising = problem.qubo().to_ising();
    let beta_range = args.beta_range.range(&ising);

    let sa = SimulatedAnnealing {
        num_reads: args.reads,
        num_sweeps: args.sweeps,
        beta_range: Some(beta_range),
        seed: args.seed,
        ..SimulatedAnnealing::default()
    };
    let sqa = SimulatedQuantumAnnealing {
        num_reads: (args.reads / args.sqa_slices).max(1),
        num_sweeps: args.sweeps,
        trotter_slices: args.sqa_slices,
        seed: args.seed,
        ..SimulatedQuantumAnnealing::default()
    };
    let pt = ParallelTempering {
        num_reads: 1,
        num_replicas: args.reads.max(2),
        num_sweeps: args.sweeps,
        beta_range: Some(beta_range),
        seed: args.seed,
        ..ParallelTempering::default()
    };
    let samplers: [&dyn Sampler; 3] = [&sa, &sqa, &pt];
    let mut ours = Vec::new();
    for (label, sampler) in OURS.iter().zip(samplers) {
        let run = solve(&problem, &ising, sampler)?;
        eprintln!(
            "[{name}] {label}: best cut {} mean {:.1} in {:.3} s",
            run.best_cut, run.mean_cut, run.seconds
        );
        ours.push(run);
    }

    let peer_run = match peer {
        Some(peer) => Some(run_peer(&name, &problem, peer, args, path, None)?),
        None => None,
    };
    let peer_same_range = match peer {
        Some(peer) if args.peer_same_range => Some(run_peer(
            &name,
            &problem,
            peer,
            args,
            path,
            Some(beta_range),
        )?),
        _ => None,
    };

    let reference = if args.reference_sweeps > 0 {
        let long = SimulatedAnnealing {
            num_reads: args.reads,
            num_sweeps: args.reference_sweeps,
            seed: args.seed ^ 0x5EED,
            ..SimulatedAnnealing::default()
        };
        let run = solve(&problem, &ising, &long)?;
        eprintln!(
            "[{name}] reference SA ({} x {} sweeps): best cut {} in {:.3} s",
            args.reads, args.reference_sweeps, run.best_cut, run.seconds
        );
        Some(run)
    } else {
        None
    };
    Ok(Instance {
        best_known: crate::gset_best::best_known(&name),
        name,
        nodes,
        edges,
        beta_range,
        ours,
        peer: peer_run,
        peer_same_range,
        reference,
    })
}

/// Runs the peer and checks its best cut against its sides.
fn run_peer(
    name: &str,
    problem: &MaxCut,
    peer: &Peer,
    args: &MaxcutArgs,
    path: &Path,
    beta_range: Option<(f64, f64)>,
) -> Result<PeerRun> {
    let run = peer.run(path, args.reads, args.sweeps, args.seed, beta_range)?;
    let checked = problem.cut_value(&run.best_sides)?;
    if (checked - run.best_cut).abs() > 1e-6 {
        return Err(format!(
            "[{name}] dwave reported cut {} but its sides cut {checked}",
            run.best_cut
        )
        .into());
    }
    let label = if beta_range.is_some() {
        "dwave_our_range"
    } else {
        "dwave"
    };
    eprintln!(
        "[{name}] {label}: best cut {} mean {:.1} in {:.3} s (sampling {:.3} s)",
        run.best_cut, run.mean_cut, run.seconds, run.sampling_seconds
    );
    Ok(run)
}

/// Runs one of our samplers and checks its best cut against the decoded sides.
fn solve(problem: &MaxCut, ising: &Ising, sampler: &dyn Sampler) -> Result<SolverRun> {
    let set: SampleSet = sampler.sample_ising(ising)?;
    let cut = problem.decode(&set.best.bits)?;
    // Max-Cut's energy is minus the cut for every bit vector.
    if (cut.value + set.best.energy).abs() > 1e-6 {
        return Err(format!(
            "{}: energy {} does not match cut {}",
            sampler.name(),
            set.best.energy,
            cut.value
        )
        .into());
    }
    Ok(SolverRun {
        best_cut: cut.value,
        mean_cut: -set.mean_energy(),
        seconds: set.stats.wall_time.as_secs_f64(),
    })
}

fn print_report(args: &MaxcutArgs, peer: Option<&Peer>, instances: &[Instance]) {
    let mut columns: Vec<&'static str> = OURS.to_vec();
    if peer.is_some() {
        columns.push("dwave");
        if args.peer_same_range {
            columns.push("dwave_our_range");
        }
    }
    let mut detail = Report::new(columns, false);
    let mut summary_columns = vec!["ours"];
    if peer.is_some() {
        summary_columns.push("dwave");
    }
    let mut summary = Report::new(summary_columns.clone(), peer.is_some());
    let mut versus_reference = Report::new(summary_columns.clone(), false);
    let mut versus_best_known = Report::new(summary_columns, false);
    let mut winners = Vec::new();
    for instance in instances {
        let name = &instance.name;
        let peer_value = |f: fn(&PeerRun) -> f64| instance.peer.as_ref().map(f);
        let row = |f: fn(&SolverRun) -> f64, peer: fn(&PeerRun) -> f64| {
            let mut values: Vec<f64> = instance.ours.iter().map(f).collect();
            values.extend(instance.peer.as_ref().map(peer));
            values.extend(instance.peer_same_range.as_ref().map(peer));
            values
        };
        detail.push(
            format!("maxcut_{name}_best_cut"),
            row(|r| r.best_cut, |p| p.best_cut),
            0,
        );
        detail.push(
            format!("maxcut_{name}_mean_cut"),
            row(|r| r.mean_cut, |p| p.mean_cut),
            1,
        );
        detail.push(
            format!("maxcut_{name}_solver_s"),
            row(|r| r.seconds, |p| p.seconds),
            3,
        );

        let (winner, ours) = instance.ours_best();
        winners.push(format!("{name}: {}", OURS[winner]));
        let with_peer = |ours: f64, peer: Option<f64>| {
            let mut values = vec![ours];
            values.extend(peer);
            values
        };
        summary.push(
            format!("maxcut_{name}_cut"),
            with_peer(ours.best_cut, peer_value(|p| p.best_cut)),
            0,
        );
        summary.push(
            format!("maxcut_{name}_s"),
            with_peer(ours.seconds, peer_value(|p| p.seconds)),
            3,
        );
        let reference = instance.reference_cut();
        versus_reference.push(
            format!("maxcut_{name}_of_reference"),
            with_peer(
                ours.best_cut / reference,
                peer_value(|p| p.best_cut).map(|cut| cut / reference),
            ),
            4,
        );
        if let Some((best, _)) = instance.best_known {
            versus_best_known.push(
                format!("maxcut_{name}_of_best_known"),
                with_peer(
                    ours.best_cut / best,
                    peer_value(|p| p.best_cut).map(|cut| cut / best),
                ),
                4,
            );
        }
    }

    println!("{}", system::machine_line());
    let threads = rayon::current_num_threads();
    println!(
        "workload: reads={} sweeps={} seed={}; SA: {} reads x {} sweeps, geometric β over \
         nq-quantum's {}; PT: 1 read, {} replicas x {} sweeps over the same range, exchange \
         every sweep, adaptive ladder; SQA: {} reads x {} slices x {} sweeps, its defaults \
         (exponential Γ schedule, slice β = half the default cold β); dwave: {} reads x {} \
         sweeps, its defaults (geometric β over its default range){}.",
        args.reads,
        args.sweeps,
        args.seed,
        args.reads,
        args.sweeps,
        args.beta_range.name(),
        args.reads.max(2),
        args.sweeps,
        (args.reads / args.sqa_slices).max(1),
        args.sqa_slices,
        args.sweeps,
        args.reads,
        args.sweeps,
        if args.peer_same_range {
            "; dwave_our_range: the same, with our SA's β range"
        } else {
            ""
        }
    );
    for instance in instances {
        let reference = instance.reference_cut();
        let long = instance
            .reference
            .as_ref()
            .map_or("no long run".to_owned(), |r| {
                format!(
                    "long SA run ({} reads x {} sweeps) found {}",
                    args.reads, args.reference_sweeps, r.best_cut
                )
            });
        let peer_range = instance.peer.as_ref().map_or(String::new(), |p| {
            format!(
                "; dwave's own split: {:.3} s of sampling within its {:.3} s",
                p.sampling_seconds, p.seconds
            )
        });
        println!(
            "instance: {} ({} nodes, {} edges); our β range ({:.4}, {:.4}); reference cut \
             {reference} = best of every solver in this run ({long}){peer_range}",
            instance.name,
            instance.nodes,
            instance.edges,
            instance.beta_range.0,
            instance.beta_range.1
        );
    }
    match peer {
        Some(peer) => println!(
            "notes: peer = dwave-samplers {} SimulatedAnnealingSampler via {}, single-threaded \
             (its reads run one after another); ours use {threads} rayon threads (reads, \
             replicas or slices in parallel). Times are each solver's own wall time for its \
             sampling call: model building and file parsing are excluded for every solver, \
             the peer's Python process start-up too.",
            peer.version, peer.python
        ),
        None => println!(
            "notes: dwave-samplers peer NOT run (unavailable or --no-peer): no peer figures. \
             Ours use {threads} rayon threads."
        ),
    }
    println!(
        "notes: `ours` in the summary is our best solver on each instance (highest cut, \
         fastest on ties): {}. `_of_reference` is the best cut divided by the reference cut. \
         The generated random and planar graphs follow the G-set recipes but are not the \
         published instances, so the published best-known cuts do not apply to them. \
         `_of_best_known` divides by the best-known cut: {}.",
        winners.join(", "),
        {
            let known: Vec<String> = instances
                .iter()
                .filter_map(|i| {
                    i.best_known
                        .map(|(cut, source)| format!("{} {cut} ({source})", i.name))
                })
                .collect();
            if known.is_empty() {
                "none of these instances has one".to_string()
            } else {
                known.join(", ")
            }
        }
    );
    println!();
    print!("{}", detail.markdown());
    println!();
    print!("{}", summary.markdown());
    println!();
    print!("{}", versus_reference.markdown());
    println!();
    if !versus_best_known.is_empty() {
        print!("{}", versus_best_known.markdown());
        println!();
    }
    print!("{}", detail.machine_lines());
    print!("{}", summary.machine_lines());
    print!("{}", versus_reference.machine_lines());
    print!("{}", versus_best_known.machine_lines());
}
