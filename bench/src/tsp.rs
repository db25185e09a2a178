//! `nq-bench tsp`: travelling-salesman tours through the QUBO path against a classical
//! local-search tour.
//!
//! Per TSPLIB instance: the position-encoding QUBO (`(n-1)²` variables) is sampled with our
//! simulated annealing; the lowest-energy sample is decoded (`raw`, repaired into a tour if its
//! bits were not a permutation) and then improved with 2-opt + Or-opt (`polished`). The
//! reference is 2-opt + Or-opt from the nearest-neighbour tour, no QUBO involved. Instances up
//! to 18 cities also get the exact Held–Karp optimum. Every length is recomputed from the
//! tour, and every tour is checked to be a permutation.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nq_quantum::encode::tour::{
    MAX_HELD_KARP_CITIES, is_permutation, nearest_neighbour_tour, optimal_tour, tour_length,
};
use nq_quantum::encode::{Encoding, Tour, Tsp};
use nq_quantum::io;
use nq_quantum::rng::Rng;
use nq_quantum::solve::{Sampler, SimulatedAnnealing, polish_tour};

use crate::Result;
use crate::report::Report;
use crate::system;

#[derive(Debug, Clone, clap::Args)]
pub struct TspArgs {
    /// TSPLIB files (`NODE_COORD_SECTION`, EUC_2D/CEIL_2D/GEO/ATT).
    pub files: Vec<PathBuf>,
    /// Write a random EUC_2D instance (`--cities` cities, integer coordinates uniform in
    /// [0, 1000)², seeded by `--seed`) to FILE and benchmark it too.
    #[arg(long, value_name = "FILE")]
    pub generate: Option<PathBuf>,
    /// Cities of the generated instance.
    #[arg(long, default_value_t = 50)]
    pub cities: usize,
    /// Reads of the annealer.
    #[arg(long, default_value_t = 16)]
    pub reads: usize,
    /// Sweeps per read.
    #[arg(long, default_value_t = 2000)]
    pub sweeps: usize,
    /// Seed of the annealer and of the generated instance.
    #[arg(long, default_value_t = 50)]
    pub seed: u64,
    /// Worker threads for the annealer (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Everything measured on one instance.
#[derive(Debug)]
struct Instance {
    name: String,
    cities: usize,
    variables: usize,
    interactions: usize,
    raw: Tour,
    raw_feasible: bool,
    polished: Tour,
    reference: Tour,
    optimum: Option<Tour>,
    encode_s: f64,
    sample_s: f64,
    decode_s: f64,
    polish_s: f64,
    reference_s: f64,
}

impl Instance {
    /// Encoding, sampling and decoding: the QUBO path up to the raw tour.
    fn raw_s(&self) -> f64 {
        self.encode_s + self.sample_s + self.decode_s
    }
}

pub fn run(args: &TspArgs) -> Result<()> {
    if args.reads == 0 || args.sweeps == 0 {
        return Err("--reads and --sweeps must be positive".into());
    }
    crate::set_threads(args.threads)?;
    let mut files = args.files.clone();
    if let Some(path) = &args.generate {
        write_random_instance(path, args.cities, args.seed)?;
        eprintln!(
            "[generate] {}: {} random EUC_2D cities, seed {}",
            path.display(),
            args.cities,
            args.seed
        );
        files.push(path.clone());
    }
    if files.is_empty() {
        return Err("give TSPLIB files or --generate FILE".into());
    }
    let mut instances = Vec::new();
    for path in &files {
        instances.push(run_instance(args, path)?);
    }
    print_report(args, &instances);
    Ok(())
}

/// Writes `cities` random EUC_2D cities with integer coordinates in [0, 1000)².
fn write_random_instance(path: &Path, cities: usize, seed: u64) -> Result<()> {
    if cities < 3 {
        return Err("--cities must be at least 3".into());
    }
    let mut rng = Rng::new(seed);
    let mut out = BufWriter::new(File::create(path)?);
    let name = path
        .file_stem()
        .map_or_else(|| "random".to_owned(), |s| s.to_string_lossy().into_owned());
    writeln!(out, "NAME : {name}")?;
    writeln!(
        out,
        "COMMENT : {cities} random cities, nq-bench tsp --generate FILE --cities {cities} --seed {seed}"
    )?;
    writeln!(out, "TYPE : TSP")?;
    writeln!(out, "DIMENSION : {cities}")?;
    writeln!(out, "EDGE_WEIGHT_TYPE : EUC_2D")?;
    writeln!(out, "NODE_COORD_SECTION")?;
    for city in 1..=cities {
        let x = rng.below(1000);
        let y = rng.below(1000);
        writeln!(out, "{city} {x} {y}")?;
    }
    writeln!(out, "EOF")?;
    out.flush()?;
    Ok(())
}

fn instance_name(path: &Path) -> String {
    let stem = path.file_stem().map_or_else(
        || "instance".to_owned(),
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

fn run_instance(args: &TspArgs, path: &Path) -> Result<Instance> {
    let name = instance_name(path);
    let instance = io::read_tsplib(path)?;
    let distances = instance.distances();
    let cities = instance.num_cities();

    let started = Instant::now();
    let encoding = Tsp::new(distances.clone())?;
    let encode_s = started.elapsed().as_secs_f64();
    let sampler = SimulatedAnnealing {
        num_reads: args.reads,
        num_sweeps: args.sweeps,
        seed: args.seed,
        ..SimulatedAnnealing::default()
    };
    let started = Instant::now();
    let samples = sampler.sample_qubo(encoding.qubo())?;
    let sample_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let raw_feasible = encoding.is_feasible(&samples.best.bits);
    let raw = encoding.decode(&samples.best.bits)?;
    let decode_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let polished = polish_tour(&distances, &raw);
    let polish_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let reference = polish_tour(&distances, &nearest_neighbour_tour(&distances, 0));
    let reference_s = started.elapsed().as_secs_f64();
    let optimum = if cities <= MAX_HELD_KARP_CITIES {
        Some(optimal_tour(&distances)?)
    } else {
        None
    };
    // Every tour must visit each city once and measure what it claims.
    for (label, tour) in [
        ("raw", &raw),
        ("polished", &polished),
        ("reference", &reference),
    ] {
        if !is_permutation(&tour.order, cities) {
            return Err(format!("{name} {label}: not a tour of all {cities} cities").into());
        }
        let length = tour_length(&distances, &tour.order);
        if (length - tour.length).abs() > 1e-6 * length.max(1.0) {
            return Err(format!(
                "{name} {label}: length {} but the tour measures {length}",
                tour.length
            )
            .into());
        }
    }
    eprintln!(
        "[{name}] {cities} cities: raw {} ({}) in {:.3} s, polished {}, local search {}",
        raw.length,
        if raw_feasible { "feasible" } else { "repaired" },
        encode_s + sample_s + decode_s,
        polished.length,
        reference.length
    );
    Ok(Instance {
        name,
        cities,
        variables: encoding.qubo().num_variables(),
        interactions: encoding.qubo().quadratic().num_interactions(),
        raw,
        raw_feasible,
        polished,
        reference,
        optimum,
        encode_s,
        sample_s,
        decode_s,
        polish_s,
        reference_s,
    })
}

fn print_report(args: &TspArgs, instances: &[Instance]) {
    let mut report = Report::new(vec!["ours_raw", "ours_polished", "local_search"], false);
    for instance in instances {
        let name = &instance.name;
        let reference = instance.reference.length;
        report.push(
            format!("tsp_{name}_length"),
            vec![instance.raw.length, instance.polished.length, reference],
            0,
        );
        report.push(
            format!("tsp_{name}_vs_local_search"),
            vec![
                instance.raw.length / reference,
                instance.polished.length / reference,
                1.0,
            ],
            3,
        );
        report.push(
            format!("tsp_{name}_ms"),
            vec![
                1e3 * instance.raw_s(),
                1e3 * (instance.raw_s() + instance.polish_s),
                1e3 * instance.reference_s,
            ],
            2,
        );
        report.push(
            format!("tsp_{name}_feasible"),
            vec![f64::from(u8::from(instance.raw_feasible)), 1.0, 1.0],
            0,
        );
    }
    println!("{}", system::machine_line());
    println!(
        "workload: QUBO path = position encoding (city 0 fixed, (n-1)^2 variables, penalty \
         1.5 x max distance) sampled by our simulated annealing ({} reads x {} sweeps, default \
         β range, seed {}, {} threads), lowest-energy sample decoded (raw) then 2-opt + Or-opt \
         (polished); local_search = 2-opt + Or-opt from the nearest-neighbour tour from city 0, \
         no QUBO.",
        args.reads,
        args.sweeps,
        args.seed,
        rayon::current_num_threads()
    );
    for instance in instances {
        let optimum = instance
            .optimum
            .as_ref()
            .map_or("not computed (Held-Karp limit 18 cities)".to_owned(), |t| {
                format!("{}", t.length)
            });
        println!(
            "instance: {} ({} cities, QUBO {} variables, {} interactions): encode {:.3} s, \
             sample {:.3} s, decode {:.4} s, polish {:.4} s; raw bits {} a permutation; \
             optimum {optimum}",
            instance.name,
            instance.cities,
            instance.variables,
            instance.interactions,
            instance.encode_s,
            instance.sample_s,
            instance.decode_s,
            instance.polish_s,
            if instance.raw_feasible {
                "were"
            } else {
                "were NOT"
            }
        );
    }
    println!(
        "notes: ours_raw time = encode + sample + decode; ours_polished adds the polish. \
         feasible = 1 when the sampler's best bits were a permutation before the decoder's \
         repair (polished and local_search tours are tours by construction). Lengths are in \
         TSPLIB's integer distance units; lower is better."
    );
    println!();
    print!("{}", report.markdown());
    println!();
    print!("{}", report.machine_lines());
}
