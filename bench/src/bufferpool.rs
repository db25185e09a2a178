//! `nq-bench bufferpool`: CLOCK against SIEVE on the same skewed workload.
//!
//! One tree is built once; then, for each policy, the database is reopened with a pool far
//! smaller than the tree and serves Zipf-distributed point lookups, with a sequential scan
//! between every `--scan-every` lookups. A scan touches many pages once; a scan-resistant policy
//! evicts them again before the lookups' hot pages, which shows in the lookups' hit ratio.
//! CLOCK is the peer here; every figure comes from `Database::stats` deltas and wall time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nq_storage::{BufferPoolConfig, BufferPoolStats, Database, EvictionPolicy, Options};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::Result;
use crate::report::Report;
use crate::system;
use crate::workload::{self, key_bytes, value_for};

/// Rows read by each interleaved sequential scan.
const SCAN_ROWS: usize = 20_000;
const POLICIES: [(EvictionPolicy, &str); 2] = [
    (EvictionPolicy::Clock, "clock"),
    (EvictionPolicy::Sieve, "sieve"),
];

#[derive(Debug, Clone, clap::Args)]
pub struct BufferpoolArgs {
    /// Rows in the tree (distinct random u64 keys, 100-byte values).
    #[arg(long, default_value_t = 200_000)]
    pub rows: usize,
    /// Point lookups per policy.
    #[arg(long, default_value_t = 200_000)]
    pub ops: usize,
    /// Buffer pool budget in MiB while measuring (the build uses the default pool).
    #[arg(long, default_value_t = 4)]
    pub pool_mb: usize,
    /// Zipf exponent over key ranks (0 = uniform).
    #[arg(long, default_value_t = 0.99)]
    pub theta: f64,
    /// A sequential scan of 20,000 rows runs between every this many lookups.
    #[arg(long, default_value_t = 50_000)]
    pub scan_every: usize,
    /// Page size of the tree.
    #[arg(long, default_value_t = 4096)]
    pub page_size: usize,
    /// Directory for the temporary database [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seed for keys, the rank-to-key shuffle, the Zipf draws and scan starts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Zipf over ranks `0..n`: P(rank r) is proportional to 1 / (r + 1)^theta. Exact: a binary
/// search over the precomputed CDF, affordable at benchmark sizes.
#[derive(Debug)]
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, theta: f64) -> Zipf {
        let mut sum = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|rank| {
                sum += (rank as f64).powf(-theta);
                sum
            })
            .collect();
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// The whole measured sequence, identical for every policy.
#[derive(Debug)]
struct Workload {
    /// Sorted keys; lookups and scans refer to them by index.
    keys: Vec<u64>,
    lookups: Vec<u32>,
    scan_starts: Vec<usize>,
    scan_every: usize,
}

#[derive(Debug)]
struct PolicyResult {
    lookup_hit_ratio: f64,
    overall_hit_ratio: f64,
    lookup_per_s: f64,
    lookup_p99_us: f64,
    evictions: u64,
}

pub fn run(args: &BufferpoolArgs) -> Result<()> {
    if args.rows == 0 || args.ops == 0 || args.scan_every == 0 {
        return Err("--rows, --ops and --scan-every must be positive".into());
    }
    if !(args.theta.is_finite() && args.theta >= 0.0) {
        return Err("--theta must be a finite number >= 0".into());
    }
    let rows = u32::try_from(args.rows).map_err(|_| "--rows must fit in u32")?;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("nq-bench-bufferpool-")
        .tempdir_in(base)?;
    let path = dir.path().join("data.nqdb");

    let mut keys = workload::generate_keys(args.rows, args.seed);
    let started = Instant::now();
    build(&path, args.page_size, &keys)?;
    eprintln!(
        "[build] {} rows in {:.2} s",
        keys.len(),
        started.elapsed().as_secs_f64()
    );
    keys.sort_unstable();

    // Ranks map to shuffled key indices, so the hottest keys sit on pages all over the tree
    // rather than on a few adjacent leaves.
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x7A69_7066);
    let mut by_rank: Vec<u32> = (0..rows).collect();
    by_rank.shuffle(&mut rng);
    let zipf = Zipf::new(args.rows, args.theta);
    let lookups: Vec<u32> = (0..args.ops)
        .map(|_| by_rank[zipf.sample(&mut rng)])
        .collect();
    let scans = (args.ops - 1) / args.scan_every;
    let last_start = args.rows.saturating_sub(SCAN_ROWS);
    let scan_starts: Vec<usize> = (0..scans)
        .map(|_| rng.random_range(0..=last_start))
        .collect();
    let workload = Workload {
        keys,
        lookups,
        scan_starts,
        scan_every: args.scan_every,
    };

    let mut results = Vec::new();
    for (policy, name) in POLICIES {
        let result = run_policy(&path, args, policy, &workload)?;
        eprintln!(
            "[{name}] lookup hit ratio {:.4}, {:.0} lookups/s",
            result.lookup_hit_ratio, result.lookup_per_s
        );
        results.push(result);
    }

    let mut report = Report::new(POLICIES.iter().map(|(_, name)| *name).collect(), false);
    let column = |f: fn(&PolicyResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
    report.push("hit_ratio", column(|r| r.lookup_hit_ratio), 4);
    report.push("hit_ratio_with_scans", column(|r| r.overall_hit_ratio), 4);
    report.push("lookup_per_s", column(|r| r.lookup_per_s), 0);
    report.push("lookup_p99_us", column(|r| r.lookup_p99_us), 2);
    report.push("evictions", column(|r| r.evictions as f64), 0);

    println!("{}", system::machine_line());
    println!(
        "workload: rows={} (random distinct u64 keys, 100-byte values), page_size={}, \
         pool_mb={}, ops={} Zipf lookups (theta={}, ranks shuffled over the key space), \
         {} sequential scans of up to {SCAN_ROWS} rows (one every {} lookups), seed={}",
        args.rows,
        args.page_size,
        args.pool_mb,
        args.ops,
        args.theta,
        scans,
        args.scan_every,
        args.seed
    );
    println!(
        "notes: each policy reopens the same file with a cold pool; the OS page cache is warm for \
         both. hit_ratio counts page requests made by lookups only; hit_ratio_with_scans also \
         counts the scans'. lookup_per_s and lookup_p99_us time each lookup alone (scans \
         excluded). evictions cover the whole run."
    );
    println!();
    print!("{}", report.markdown());
    println!();
    print!("{}", report.machine_lines());
    Ok(())
}

/// Creates the database at `path` and loads every key, with the default (large) pool.
fn build(path: &Path, page_size: usize, keys: &[u64]) -> Result<()> {
    let options = Options {
        page_size,
        ..Options::default()
    };
    let db = Database::create(path, &options)?;
    let tree = db.create_tree("kv")?;
    for &key in keys {
        tree.insert(&key_bytes(key), &value_for(key))?;
    }
    drop(tree);
    db.close()?;
    Ok(())
}

fn run_policy(
    path: &Path,
    args: &BufferpoolArgs,
    policy: EvictionPolicy,
    workload: &Workload,
) -> Result<PolicyResult> {
    let options = Options {
        page_size: args.page_size,
        buffer_pool: BufferPoolConfig {
            budget_bytes: args.pool_mb << 20,
            policy,
            ..BufferPoolConfig::default()
        },
        ..Options::default()
    };
    let db = Database::open(path, &options)?;
    let tree = db.open_tree("kv")?;
    let keys = &workload.keys;

    let start = db.stats();
    let mut lookup = BufferPoolStats::default();
    let mut samples = Vec::with_capacity(workload.lookups.len());
    let mut wrong = 0usize;
    let mut scan_starts = workload.scan_starts.iter();
    for (segment_index, segment) in workload.lookups.chunks(workload.scan_every).enumerate() {
        if segment_index > 0 {
            let &first = scan_starts
                .next()
                .ok_or("fewer scan starts than segments")?;
            let expected = SCAN_ROWS.min(keys.len() - first);
            let mut count = 0usize;
            for item in tree
                .range(key_bytes(keys[first]).as_slice()..)
                .take(SCAN_ROWS)
            {
                let (key, _value) = item?;
                if key != key_bytes(keys[first + count]) {
                    return Err(format!("scan from row {first} returned a wrong key").into());
                }
                count += 1;
            }
            if count != expected {
                return Err(format!("scan from row {first} read {count} of {expected}").into());
            }
        }
        let before = db.stats();
        for &index in segment {
            let key = keys[index as usize];
            let started = Instant::now();
            let value = tree.get(&key_bytes(key))?;
            samples.push(started.elapsed().as_nanos() as u64);
            if value.as_deref() != Some(value_for(key).as_slice()) {
                wrong += 1;
            }
        }
        let after = db.stats();
        lookup.hits += after.hits - before.hits;
        lookup.misses += after.misses - before.misses;
    }
    let end = db.stats();
    assert!(
        wrong == 0,
        "{policy:?}: {wrong} lookups returned a wrong or missing value"
    );

    let overall = BufferPoolStats {
        hits: end.hits - start.hits,
        misses: end.misses - start.misses,
        ..BufferPoolStats::default()
    };
    let lookup_time: Duration = samples.iter().map(|&ns| Duration::from_nanos(ns)).sum();
    let result = PolicyResult {
        lookup_hit_ratio: lookup.hit_ratio(),
        overall_hit_ratio: overall.hit_ratio(),
        lookup_per_s: samples.len() as f64 / lookup_time.as_secs_f64(),
        lookup_p99_us: workload::percentile_ns(&mut samples, 0.99) as f64 / 1e3,
        evictions: end.evictions - start.evictions,
    };
    drop(tree);
    db.close()?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_low_ranks() {
        let zipf = Zipf::new(1000, 0.99);
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        // Rank 0 holds 1/H(1000, 0.99) of the mass, about 13%.
        assert!(
            (11_000..15_000).contains(&counts[0]),
            "rank 0 drawn {} times",
            counts[0]
        );
    }

    #[test]
    fn zipf_theta_zero_is_uniform() {
        let zipf = Zipf::new(4, 0.0);
        let mut rng = StdRng::seed_from_u64(2);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
