//! `nq-bench joinorder`: join orders planned through the join-order QUBO against exact
//! dynamic programming (small queries) and the greedy planner (large ones).
//!
//! Queries are seeded random chain, star, cycle and clique join graphs. Cardinalities are
//! log-uniform in [10², 10⁶]; every predicate has a key/foreign-key-like selectivity of about
//! 1 / the larger side's cardinality (times a log-uniform factor in [10^-0.5, 10^0.5]). The
//! annealed plan is `JoinOrderProblem::plan_with(&SimulatedAnnealing)`: encode, sample, decode
//! every read, then local search from the cheapest distinct reads. Its `C_out` cost is compared
//! with `optimal()` (4–12 relations) and with `greedy()` (20–50 relations). Every plan's cost is
//! recomputed from its order.

use std::time::Instant;

use nq_quantum::encode::join::{Polish, PolishEffort, QueryShape};
use nq_quantum::encode::{JoinOrder, JoinOrderProblem};
use nq_quantum::model::Ising;
use nq_quantum::rng::Rng;
use nq_quantum::solve::{PermutationAnnealing, SampleSet, Sampler, SimulatedAnnealing};

use crate::Result;
use crate::report::Report;
use crate::system;

#[derive(Debug, Clone, clap::Args)]
pub struct JoinorderArgs {
    /// Random queries per shape and size.
    #[arg(long, default_value_t = 3)]
    pub queries: usize,
    /// Sampler: `perm` (annealing over permutations with swap moves) or `sa` (single-flip
    /// simulated annealing).
    #[arg(long, value_enum, default_value_t = SamplerKind::Perm)]
    pub sampler: SamplerKind,
    /// Reads of the annealer (default: 16 for perm, 32 for sa).
    #[arg(long)]
    pub reads: Option<usize>,
    /// Sweeps per read (default: 30 for perm, each n(n-1)/2 swap proposals; 300 for sa).
    #[arg(long)]
    pub sweeps: Option<usize>,
    /// Seed of the queries and the annealer.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads for the annealer (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// β range of the annealer, chosen per QUBO: `default` (dwave-samplers' rule) or `focused`.
    #[arg(long, value_enum, default_value_t = crate::maxcut::RangeRule::Default)]
    pub beta_range: crate::maxcut::RangeRule,
    /// Perturbation kicks of the iterated local search per start (default: 2 × relations).
    #[arg(long)]
    pub kicks: Option<usize>,
    /// Iterated-local-search starts: the cheapest distinct decoded reads.
    #[arg(long, default_value_t = nq_quantum::encode::join::POLISH_STARTS)]
    pub starts: usize,
    /// A small run for CI: one query per shape at 4, 8 and 12 relations, and at 20 relations.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerKind {
    /// `PermutationAnnealing`: swap moves, every state a permutation.
    Perm,
    /// `SimulatedAnnealing`: single-bit flips through infeasible states.
    Sa,
}

/// A seeded random query of `n` relations joined along `shape`.
fn query(shape: QueryShape, n: usize, seed: u64) -> Result<JoinOrderProblem> {
    Ok(JoinOrderProblem::random(shape, n, seed)?)
}

/// Simulated annealing whose β range is picked from each model by a [`RangeRule`].
///
/// [`RangeRule`]: crate::maxcut::RangeRule
#[derive(Debug)]
struct Annealer {
    sa: SimulatedAnnealing,
    rule: crate::maxcut::RangeRule,
}

impl Sampler for Annealer {
    fn name(&self) -> &'static str {
        self.sa.name()
    }

    fn sample_ising(&self, model: &Ising) -> nq_quantum::Result<SampleSet> {
        let sa = SimulatedAnnealing {
            beta_range: Some(self.rule.range(model)),
            ..self.sa.clone()
        };
        sa.sample_ising(model)
    }
}

/// The sampler under test, with the reads and sweeps actually used.
fn sampler_for(args: &JoinorderArgs) -> (Box<dyn Sampler>, usize, usize) {
    match args.sampler {
        SamplerKind::Perm => {
            let (reads, sweeps) = (args.reads.unwrap_or(16), args.sweeps.unwrap_or(30));
            let sampler = PermutationAnnealing {
                num_reads: reads,
                num_sweeps: sweeps,
                beta_range: None,
                seed: args.seed,
            };
            (Box::new(sampler), reads, sweeps)
        }
        SamplerKind::Sa => {
            let (reads, sweeps) = (args.reads.unwrap_or(32), args.sweeps.unwrap_or(300));
            let sampler = Annealer {
                sa: SimulatedAnnealing {
                    num_reads: reads,
                    num_sweeps: sweeps,
                    seed: args.seed,
                    ..SimulatedAnnealing::default()
                },
                rule: args.beta_range,
            };
            (Box::new(sampler), reads, sweeps)
        }
    }
}

/// One planned query.
#[derive(Debug)]
struct Planned {
    shape: QueryShape,
    relations: usize,
    /// Polished annealed plan cost / classical plan cost.
    ratio: f64,
    /// The sampler's lowest-energy sample alone, decoded / classical plan cost.
    raw_ratio: f64,
    /// The cheapest decoded read, before any local search / classical plan cost.
    best_read_ratio: f64,
    /// The same polish from random permutations instead of annealed reads / classical cost.
    random_ratio: f64,
    feasible: bool,
    ours_s: f64,
    random_s: f64,
    classical_s: f64,
}

/// Recomputes `plan`'s cost from its order and fails if it differs.
fn check(problem: &JoinOrderProblem, label: &str, plan: &JoinOrder) -> Result<()> {
    let cost = problem.cost(&plan.order)?;
    if (cost - plan.cost).abs() > 1e-9 * cost.max(1.0) {
        return Err(format!("{label}: plan claims cost {} but costs {cost}", plan.cost).into());
    }
    Ok(())
}

/// The ablation: the same iterated local search as `plan_with_polish`, started from
/// `polish.starts` seeded random permutations instead of decoded annealer reads.
fn random_start_polish(problem: &JoinOrderProblem, polish: Polish, seed: u64) -> Result<JoinOrder> {
    let n = problem.num_relations();
    let mut rng = Rng::new(seed ^ 0x5eed_0fab_1a7e);
    let mut best: Option<JoinOrder> = None;
    for i in 0..polish.starts.max(1) {
        let mut order: Vec<usize> = (0..n).collect();
        for k in (1..n).rev() {
            order.swap(k, rng.below(k + 1));
        }
        let effort = PolishEffort {
            kicks: polish.kicks,
            seed: polish.seed.wrapping_add(i as u64),
        };
        let found = problem.iterated_improve(&order, effort)?;
        if best.as_ref().is_none_or(|b| found.cost < b.cost) {
            best = Some(found);
        }
    }
    best.ok_or_else(|| "no start".into())
}

fn plan(
    sampler: &dyn Sampler,
    args: &JoinorderArgs,
    shape: QueryShape,
    relations: usize,
    seed: u64,
    against_optimum: bool,
) -> Result<Planned> {
    let problem = query(shape, relations, seed)?;
    let label = format!("{} n={relations} seed={seed}", shape.name());
    let mut polish = Polish::default_for(relations);
    polish.starts = args.starts;
    if let Some(kicks) = args.kicks {
        polish.kicks = kicks;
    }
    let started = Instant::now();
    let annealed = problem.plan_with_polish(sampler, polish)?;
    let ours_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let random = random_start_polish(&problem, polish, seed)?;
    let random_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let classical = if against_optimum {
        problem.optimal()?
    } else {
        problem.greedy()
    };
    let classical_s = started.elapsed().as_secs_f64();
    check(&problem, &label, &annealed.polished)?;
    check(&problem, &label, &annealed.raw)?;
    check(&problem, &label, &annealed.best_read)?;
    check(&problem, &label, &random)?;
    check(&problem, &label, &classical)?;
    let planned = Planned {
        shape,
        relations,
        ratio: annealed.polished.cost / classical.cost,
        raw_ratio: annealed.raw.cost / classical.cost,
        best_read_ratio: annealed.best_read.cost / classical.cost,
        random_ratio: random.cost / classical.cost,
        feasible: annealed.feasible,
        ours_s,
        random_s,
        classical_s,
    };
    if against_optimum && planned.ratio.min(planned.random_ratio) < 1.0 - 1e-9 {
        return Err(format!("{label}: annealed plan beats the DP optimum; DP is wrong").into());
    }
    Ok(planned)
}

pub fn run(args: &JoinorderArgs) -> Result<()> {
    if args.reads == Some(0) || args.sweeps == Some(0) || args.queries == 0 {
        return Err("--reads, --sweeps and --queries must be positive".into());
    }
    crate::set_threads(args.threads)?;
    let (sampler, reads, sweeps) = sampler_for(args);
    let (small_sizes, large_sizes, queries): (Vec<usize>, Vec<usize>, usize) = if args.quick {
        (vec![4, 8, 12], vec![20], 1)
    } else {
        ((4..=12).collect(), vec![20, 30, 40, 50], args.queries)
    };

    let mut small = Vec::new();
    let mut large = Vec::new();
    for (sizes, against_optimum, out) in [
        (&small_sizes, true, &mut small),
        (&large_sizes, false, &mut large),
    ] {
        for &shape in &QueryShape::ALL {
            for &n in sizes {
                for q in 0..queries {
                    let seed = args.seed.wrapping_mul(1_000_003) ^ (n as u64 * 100 + q as u64);
                    let planned = plan(sampler.as_ref(), args, shape, n, seed, against_optimum)?;
                    eprintln!(
                        "[{} n={n} q={q}] annealed/{} {:.4} (best read {:.3}, raw {:.3e}; \
                         random-start polish {:.4}) in {:.3} s",
                        shape.name(),
                        if against_optimum { "dp" } else { "greedy" },
                        planned.ratio,
                        planned.best_read_ratio,
                        planned.raw_ratio,
                        planned.random_ratio,
                        planned.ours_s
                    );
                    out.push(planned);
                }
            }
        }
    }
    print_report(args, (reads, sweeps), &small, &large);
    Ok(())
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    sum / count.max(1) as f64
}

fn max(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(f64::NEG_INFINITY, f64::max)
}

fn min(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(f64::INFINITY, f64::min)
}

fn print_report(
    args: &JoinorderArgs,
    (reads, sweeps): (usize, usize),
    small: &[Planned],
    large: &[Planned],
) {
    // Goal lines: polished annealed plan vs DP optimum, 4-12 relations.
    let mut goals = Report::new(vec!["ours"], false);
    goals.push(
        "joinorder_mean_ratio",
        vec![mean(small.iter().map(|p| p.ratio))],
        4,
    );
    goals.push(
        "joinorder_worst_ratio",
        vec![max(small.iter().map(|p| p.ratio))],
        4,
    );
    goals.push(
        "joinorder_vs_greedy",
        vec![mean(large.iter().map(|p| p.ratio))],
        4,
    );

    // Ablation: what the annealer contributes. best_read = cheapest decoded read before any
    // local search; random_start_polish = the same iterated local search from random orders.
    let mut ablation = Report::new(vec!["ours", "best_read", "random_start_polish"], false);
    for (metric, plans, worst) in [
        ("joinorder_mean_ratio", small, false),
        ("joinorder_worst_ratio", small, true),
        ("joinorder_vs_greedy", large, false),
    ] {
        let pick = |f: fn(&Planned) -> f64| {
            if worst {
                max(plans.iter().map(f))
            } else {
                mean(plans.iter().map(f))
            }
        };
        ablation.push(
            format!("{metric}_ablation"),
            vec![
                pick(|p| p.ratio),
                pick(|p| p.best_read_ratio),
                pick(|p| p.random_ratio),
            ],
            4,
        );
    }
    let mut ablation_times = Report::new(vec!["ours", "random_start_polish"], false);
    for (metric, plans) in [
        ("joinorder_small_plan_ms_ablation", small),
        ("joinorder_large_plan_ms_ablation", large),
    ] {
        ablation_times.push(
            metric,
            vec![
                1e3 * mean(plans.iter().map(|p| p.ours_s)),
                1e3 * mean(plans.iter().map(|p| p.random_s)),
            ],
            3,
        );
    }

    // Planning time: ours vs the classical planner it is compared with.
    let mut times = Report::new(vec!["ours", "dp"], true);
    times.push(
        "joinorder_small_plan_ms",
        vec![
            1e3 * mean(small.iter().map(|p| p.ours_s)),
            1e3 * mean(small.iter().map(|p| p.classical_s)),
        ],
        3,
    );
    let mut greedy_times = Report::new(vec!["ours", "greedy"], true);
    greedy_times.push(
        "joinorder_large_plan_ms",
        vec![
            1e3 * mean(large.iter().map(|p| p.ours_s)),
            1e3 * mean(large.iter().map(|p| p.classical_s)),
        ],
        3,
    );

    // Per shape and size band: mean, worst and raw figures.
    let mut detail = Report::new(
        vec![
            "queries",
            "mean_ratio",
            "worst_ratio",
            "best_ratio",
            "raw_feasible_share",
            "raw_mean_ratio",
            "best_read_mean_ratio",
            "random_polish_mean_ratio",
            "random_polish_worst_ratio",
            "ours_ms",
            "classical_ms",
        ],
        false,
    );
    for (band, plans, against) in [("4_12", small, "dp"), ("20_50", large, "greedy")] {
        for shape in QueryShape::ALL {
            let group: Vec<&Planned> = plans.iter().filter(|p| p.shape == shape).collect();
            if group.is_empty() {
                continue;
            }
            detail.push(
                format!("joinorder_{}_{band}_vs_{against}", shape.name()),
                vec![
                    group.len() as f64,
                    mean(group.iter().map(|p| p.ratio)),
                    max(group.iter().map(|p| p.ratio)),
                    min(group.iter().map(|p| p.ratio)),
                    mean(group.iter().map(|p| f64::from(u8::from(p.feasible)))),
                    mean(group.iter().map(|p| p.raw_ratio)),
                    mean(group.iter().map(|p| p.best_read_ratio)),
                    mean(group.iter().map(|p| p.random_ratio)),
                    max(group.iter().map(|p| p.random_ratio)),
                    1e3 * mean(group.iter().map(|p| p.ours_s)),
                    1e3 * mean(group.iter().map(|p| p.classical_s)),
                ],
                4,
            );
        }
    }

    let sizes = |plans: &[Planned]| {
        let mut sizes: Vec<usize> = plans.iter().map(|p| p.relations).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    println!("{}", system::machine_line());
    println!(
        "workload: chain, star, cycle and clique queries; {} relations against the DP optimum \
         ({} queries), {} relations against the greedy plan ({} queries); {} per shape and \
         size; cardinalities log-uniform in [1e2, 1e6], selectivity ~ 1/larger side x \
         10^U(-0.5, 0.5); seed {}. Ours: plan_with_polish({}) on {} threads: encode (n^2 \
         variables), sample, decode every read, iterated local search ({} kicks per start) \
         from the {} cheapest distinct decoded reads. No classical planner's plan is used as a \
         start.",
        sizes(small),
        small.len(),
        sizes(large),
        large.len(),
        if args.quick { 1 } else { args.queries },
        args.seed,
        match args.sampler {
            SamplerKind::Perm => format!(
                "PermutationAnnealing {{ reads {reads}, sweeps {sweeps} of n(n-1)/2 swaps, probed β range }}"
            ),
            SamplerKind::Sa => format!(
                "SimulatedAnnealing {{ reads {reads}, sweeps {sweeps}, β range {} }}",
                args.beta_range.name()
            ),
        },
        rayon::current_num_threads(),
        args.kicks
            .map_or_else(|| "2n".to_string(), |k| k.to_string()),
        args.starts,
    );
    println!(
        "notes: ratio = C_out of our plan / C_out of the DP optimum (4-12) or of the greedy \
         plan (20-50); lower is better, 1 is optimal against DP. raw = the sampler's \
         lowest-energy sample decoded alone, before the other reads and local search; \
         raw_feasible_share = fraction of queries whose best sample was a permutation before \
         repair (always 1 for perm, which only visits permutations). best_read = cheapest \
         decoded read before local search. random_start_polish = the same iterated local \
         search from as many seeded random permutations, no sampler: what the polish achieves \
         without the annealer. Times are per query, wall clock; dp = \
         JoinOrderProblem::optimal (subset DP), greedy = JoinOrderProblem::greedy."
    );
    println!();
    print!("{}", goals.markdown());
    println!();
    print!("{}", ablation.markdown());
    println!();
    print!("{}", ablation_times.markdown());
    println!();
    print!("{}", times.markdown());
    println!();
    print!("{}", greedy_times.markdown());
    println!();
    print!("{}", detail.markdown());
    println!();
    print!("{}", goals.machine_lines());
    print!("{}", times.machine_lines());
    print!("{}", greedy_times.machine_lines());
}
