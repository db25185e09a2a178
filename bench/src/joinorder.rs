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

use nq_quantum::encode::{JoinOrder, JoinOrderProblem, JoinPredicate};
use nq_quantum::model::Ising;
use nq_quantum::rng::Rng;
use nq_quantum::solve::{SampleSet, Sampler, SimulatedAnnealing};

use crate::Result;
use crate::report::Report;
use crate::system;

#[derive(Debug, Clone, clap::Args)]
pub struct JoinorderArgs {
    /// Random queries per shape and size.
    #[arg(long, default_value_t = 3)]
    pub queries: usize,
    /// Reads of the annealer.
    #[arg(long, default_value_t = 32)]
    pub reads: usize,
    /// Sweeps per read.
    #[arg(long, default_value_t = 300)]
    pub sweeps: usize,
    /// Seed of the queries and the annealer.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads for the annealer (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// β range of the annealer, chosen per QUBO: `default` (dwave-samplers' rule) or `focused`.
    #[arg(long, value_enum, default_value_t = crate::maxcut::RangeRule::Default)]
    pub beta_range: crate::maxcut::RangeRule,
    /// A small run for CI: one query per shape at 4, 8 and 12 relations, and at 20 relations.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Chain,
    Star,
    Cycle,
    Clique,
}

const SHAPES: [Shape; 4] = [Shape::Chain, Shape::Star, Shape::Cycle, Shape::Clique];

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Chain => "chain",
            Shape::Star => "star",
            Shape::Cycle => "cycle",
            Shape::Clique => "clique",
        }
    }
}

/// A seeded random query of `n` relations joined along `shape`.
fn query(shape: Shape, n: usize, seed: u64) -> Result<JoinOrderProblem> {
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
            let larger = cards[left].max(cards[right]);
            let selectivity = (10f64.powf(rng.next_f64() - 0.5) / larger).min(1.0);
            JoinPredicate {
                left,
                right,
                selectivity,
            }
        })
        .collect();
    Ok(JoinOrderProblem::new(cards, &predicates)?)
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

/// One planned query.
#[derive(Debug)]
struct Planned {
    shape: Shape,
    relations: usize,
    /// Polished annealed plan cost / classical plan cost.
    ratio: f64,
    /// The sampler's lowest-energy sample alone, decoded / classical plan cost.
    raw_ratio: f64,
    feasible: bool,
    ours_s: f64,
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

fn plan(
    sampler: &Annealer,
    shape: Shape,
    relations: usize,
    seed: u64,
    against_optimum: bool,
) -> Result<Planned> {
    let problem = query(shape, relations, seed)?;
    let label = format!("{} n={relations} seed={seed}", shape.name());
    let started = Instant::now();
    let annealed = problem.plan_with(sampler)?;
    let ours_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let classical = if against_optimum {
        problem.optimal()?
    } else {
        problem.greedy()
    };
    let classical_s = started.elapsed().as_secs_f64();
    check(&problem, &label, &annealed.polished)?;
    check(&problem, &label, &annealed.raw)?;
    check(&problem, &label, &classical)?;
    let planned = Planned {
        shape,
        relations,
        ratio: annealed.polished.cost / classical.cost,
        raw_ratio: annealed.raw.cost / classical.cost,
        feasible: annealed.feasible,
        ours_s,
        classical_s,
    };
    if against_optimum && planned.ratio < 1.0 - 1e-9 {
        return Err(format!("{label}: annealed plan beats the DP optimum; DP is wrong").into());
    }
    Ok(planned)
}

pub fn run(args: &JoinorderArgs) -> Result<()> {
    if args.reads == 0 || args.sweeps == 0 || args.queries == 0 {
        return Err("--reads, --sweeps and --queries must be positive".into());
    }
    crate::set_threads(args.threads)?;
    let sampler = Annealer {
        sa: SimulatedAnnealing {
            num_reads: args.reads,
            num_sweeps: args.sweeps,
            seed: args.seed,
            ..SimulatedAnnealing::default()
        },
        rule: args.beta_range,
    };
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
        for &shape in &SHAPES {
            for &n in sizes {
                for q in 0..queries {
                    let seed = args.seed.wrapping_mul(1_000_003) ^ (n as u64 * 100 + q as u64);
                    let planned = plan(&sampler, shape, n, seed, against_optimum)?;
                    eprintln!(
                        "[{} n={n} q={q}] annealed/{} {:.4} (raw {:.3e}) in {:.3} s",
                        shape.name(),
                        if against_optimum { "dp" } else { "greedy" },
                        planned.ratio,
                        planned.raw_ratio,
                        planned.ours_s
                    );
                    out.push(planned);
                }
            }
        }
    }
    print_report(args, &small, &large);
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

fn print_report(args: &JoinorderArgs, small: &[Planned], large: &[Planned]) {
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
            "ours_ms",
            "classical_ms",
        ],
        false,
    );
    for (band, plans, against) in [("4_12", small, "dp"), ("20_50", large, "greedy")] {
        for shape in SHAPES {
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
         10^U(-0.5, 0.5); seed {}. Ours: plan_with(SimulatedAnnealing {{ reads {}, sweeps {}, \
         β range {} }}) on {} threads: encode (n^2 variables), sample, decode every read, \
         local search from the 4 cheapest distinct reads.",
        sizes(small),
        small.len(),
        sizes(large),
        large.len(),
        if args.quick { 1 } else { args.queries },
        args.seed,
        args.reads,
        args.sweeps,
        args.beta_range.name(),
        rayon::current_num_threads()
    );
    println!(
        "notes: ratio = C_out of our plan / C_out of the DP optimum (4-12) or of the greedy \
         plan (20-50); lower is better, 1 is optimal against DP. raw = the sampler's \
         lowest-energy sample decoded alone, before the other reads and local search; \
         raw_feasible_share = fraction of queries whose best sample was a permutation before \
         repair. Times are per query, wall clock; dp = JoinOrderProblem::optimal (subset DP), \
         greedy = JoinOrderProblem::greedy."
    );
    println!();
    print!("{}", goals.markdown());
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
