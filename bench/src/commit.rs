//! `nq-bench commit`: durable commit throughput and latency with 1 to many concurrent
//! committer threads, on ours, redb and SQLite.
//!
//! Every commit is one small transaction (`--rows-per-commit` inserts of a random 8-byte key and
//! a 100-byte value) that is durable (fsynced) when it returns. Each (engine, committer count)
//! pair runs in its own child process (this binary re-executed with the hidden `commit-engine`
//! subcommand) on a fresh database in its own temporary directory. The child prints one
//! `NQBENCH_RESULT` line; the parent collects them and prints the report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::Result;
use crate::peers::{self, Committer, EngineConfig, EngineKind, Pair};
use crate::report::Report;
use crate::system;
use crate::workload::{self, key_bytes, scrambled_key, value_for};

/// Prefix of the child's result line on stdout.
const RESULT_PREFIX: &str = "NQBENCH_RESULT";
/// Bits of a key index that count a thread's rows; the thread number sits above them.
const THREAD_SHIFT: u32 = 40;

/// Settings shared by the parent and the children it starts.
#[derive(Debug, Clone, clap::Args)]
pub struct CommitSettings {
    /// Seconds each (engine, committer count) pair commits for.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Rows inserted by each commit.
    #[arg(long, default_value_t = 1)]
    pub rows_per_commit: usize,
    /// Page size for ours and SQLite (redb's is fixed at 4 KiB).
    #[arg(long, default_value_t = 4096)]
    pub page_size: usize,
    /// Page cache budget in MiB, the same for every engine (SQLite: per connection).
    #[arg(long, default_value_t = 64)]
    pub pool_mb: usize,
    /// Directory for the engines' temporary databases [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seed of the key streams.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl CommitSettings {
    fn validate(&self) -> Result<()> {
        if !self.seconds.is_finite() || self.seconds <= 0.0 || self.rows_per_commit == 0 {
            return Err("--seconds and --rows-per-commit must be positive".into());
        }
        Ok(())
    }

    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    fn to_args(&self) -> Vec<String> {
        vec![
            format!("--seconds={}", self.seconds),
            format!("--rows-per-commit={}", self.rows_per_commit),
            format!("--page-size={}", self.page_size),
            format!("--pool-mb={}", self.pool_mb),
            format!("--dir={}", self.dir().display()),
            format!("--seed={}", self.seed),
        ]
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommitArgs {
    /// Concurrent committer thread counts, one measurement each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    pub committers: Vec<usize>,
    /// Rounds of every measurement; each figure is the median over rounds, so one noisy fsync
    /// on a shared machine does not decide a comparison.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    #[command(flatten)]
    pub settings: CommitSettings,
}

/// Arguments of the hidden per-engine child.
#[derive(Debug, Clone, clap::Args)]
pub struct CommitEngineArgs {
    #[arg(long, value_enum)]
    pub engine: EngineKind,
    /// Committer threads.
    #[arg(long)]
    pub committers: usize,
    #[command(flatten)]
    pub settings: CommitSettings,
}

/// What one child measured.
#[derive(Debug, Clone, Copy)]
struct Figures {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    commits: f64,
    /// Log syncs issued and log bytes appended during the run, for engines that count them
    /// (ours).
    syncs: Option<f64>,
    log_bytes: Option<f64>,
}

/// Parent: one child per (round, committer count, engine); prints the report.
pub fn run(args: &CommitArgs) -> Result<()> {
    args.settings.validate()?;
    if args.committers.is_empty() || args.committers.contains(&0) || args.repeat == 0 {
        return Err("--committers needs positive thread counts, --repeat must be positive".into());
    }
    // figures[(n, e)]: one entry per round.
    let mut figures: HashMap<(usize, usize), Vec<Figures>> = HashMap::new();
    for round in 1..=args.repeat {
        for &n in &args.committers {
            // Engines alternate within a committer count, so slow phases of a shared machine
            // hit all of them alike.
            for (e, kind) in EngineKind::ALL.iter().enumerate() {
                eprintln!(
                    "[{}] round {round}/{}: {n} committers, starting child process",
                    kind.name(),
                    args.repeat
                );
                let mut child_args = vec![format!("--committers={n}")];
                child_args.extend(args.settings.to_args());
                let stdout = crate::child::run("commit-engine", kind.name(), &child_args)?;
                let parsed = parse_result(*kind, &stdout)?;
                figures.entry((n, e)).or_default().push(parsed);
            }
        }
    }

    let median = |n: usize, e: usize, field: fn(&Figures) -> f64| {
        let mut values: Vec<f64> = figures[&(n, e)].iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let columns: Vec<&'static str> = EngineKind::ALL.iter().map(|k| k.name()).collect();
    let mut report = Report::new(columns, true);
    let mut group_commit = Vec::new();
    for &n in &args.committers {
        let engines = 0..EngineKind::ALL.len();
        report.push(
            format!("commit_c{n}_per_s"),
            engines.clone().map(|e| median(n, e, |f| f.per_s)).collect(),
            0,
        );
        report.push(
            format!("commit_c{n}_p50_ms"),
            engines
                .clone()
                .map(|e| median(n, e, |f| f.p50_ms))
                .collect(),
            2,
        );
        report.push(
            format!("commit_c{n}_p99_ms"),
            engines
                .clone()
                .map(|e| median(n, e, |f| f.p99_ms))
                .collect(),
            2,
        );
        report.push(
            format!("commit_c{n}_p999_ms"),
            engines.map(|e| median(n, e, |f| f.p999_ms)).collect(),
            2,
        );
        let ours = figures[&(n, 0)].last().expect("one round at least");
        if let (Some(syncs), Some(bytes)) = (ours.syncs, ours.log_bytes) {
            group_commit.push(format!(
                "c{n}: {:.0} commits, {syncs:.0} fsyncs ({:.2} commits per fsync), {:.0} log \
                 bytes per commit",
                ours.commits,
                ours.commits / syncs.max(1.0),
                bytes / ours.commits.max(1.0)
            ));
        }
    }

    let s = &args.settings;
    println!("{}", system::machine_line());
    println!(
        "workload: committers={} threads, {} s each, {} row(s) per commit (random distinct \
         8-byte keys, 100-byte values), a fresh database per (engine, committers) in its own \
         process, page_size={} pool_mb={} seed={}; each figure is the median of {} round(s)",
        args.committers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        s.seconds,
        s.rows_per_commit,
        s.page_size,
        s.pool_mb,
        s.seed,
        args.repeat
    );
    println!(
        "notes: every commit is durable (fsynced) before it returns: ours an MVCC transaction \
         (MvccStore::begin, put, commit: snapshot, first-committer-wins check and versioned \
         write in one batch; concurrent commits share fsyncs through group commit), redb \
         Durability::Immediate (write transactions are serialised: threads wait in \
         begin_write), SQLite journal_mode=WAL, synchronous=FULL, one connection per thread, \
         BEGIN IMMEDIATE, busy_timeout=600 s. per_s counts commits of all threads over the wall \
         time until the last thread finished; latencies time each commit alone, lock waits \
         included, as nearest-rank percentiles over the commits of all threads (SQLite's busy \
         handler sleeps and retries, so a few commits may wait long while most do not: watch \
         p999). After the run each child checks that the table holds exactly the \
         acknowledged rows and reads back each thread's first and last key. Ratios are \
         ours/peer: above 1 is better for per_s, below 1 for latencies."
    );
    if !group_commit.is_empty() {
        println!(
            "notes: ours group commit (last round): {}",
            group_commit.join("; ")
        );
    }
    println!();
    print!("{}", report.markdown());
    println!();
    print!("{}", report.machine_lines());
    Ok(())
}

fn parse_result(kind: EngineKind, stdout: &str) -> Result<Figures> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .ok_or_else(|| format!("{} child printed no {RESULT_PREFIX} line", kind.name()))?;
    let mut fields = HashMap::new();
    for field in line.split_whitespace() {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("{} child: malformed field {field:?}", kind.name()))?;
        fields.insert(key, value);
    }
    let number = |key: &str| -> Result<f64> {
        let value = fields
            .get(key)
            .ok_or_else(|| format!("{} child did not report {key}", kind.name()))?;
        Ok(value.parse::<f64>()?)
    };
    Ok(Figures {
        per_s: number("per_s")?,
        p50_ms: number("p50_ms")?,
        p99_ms: number("p99_ms")?,
        p999_ms: number("p999_ms")?,
        commits: number("commits")?,
        syncs: fields.get("syncs").map(|v| v.parse()).transpose()?,
        log_bytes: fields.get("log_bytes").map(|v| v.parse()).transpose()?,
    })
}

/// The key of row `row` written by thread `thread`.
fn key_of(thread: usize, row: u64, seed: u64) -> u64 {
    scrambled_key(((thread as u64) << THREAD_SHIFT) | row, seed)
}

/// What one committer thread did.
struct ThreadRun {
    /// Nanoseconds of each acknowledged commit.
    samples: Vec<u64>,
    /// Rows acknowledged (commits times rows per commit).
    rows: u64,
}

/// Child: runs one engine with `committers` threads and prints its result line.
pub fn run_engine(args: &CommitEngineArgs) -> Result<()> {
    let s = &args.settings;
    s.validate()?;
    let name = args.engine.name();
    let threads = args.committers;
    let dir = tempfile::Builder::new()
        .prefix(&format!("nq-bench-commit-{name}-"))
        .tempdir_in(s.dir())?;
    let config = EngineConfig {
        page_size: s.page_size,
        cache_bytes: s.pool_mb << 20,
        durable_commits: true,
    };
    let shared = peers::create_shared(args.engine, dir.path(), config)?;
    let committers = (0..threads)
        .map(|_| shared.committer())
        .collect::<Result<Vec<_>>>()?;
    let log_before = shared.log_counters();
    let duration = Duration::from_secs_f64(s.seconds);
    let rows_per_commit = s.rows_per_commit;
    let seed = s.seed;
    let barrier = Barrier::new(threads + 1);

    let (runs, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = committers
            .into_iter()
            .enumerate()
            .map(|(thread, committer)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    commit_loop(committer, thread, rows_per_commit, seed, duration, barrier)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let runs: Vec<Result<ThreadRun>> = handles
            .into_iter()
            .map(|h| h.join().expect("committer thread panicked"))
            .collect();
        (runs, start.elapsed())
    });
    let runs = runs.into_iter().collect::<Result<Vec<_>>>()?;
    let log = shared
        .log_counters()
        .zip(log_before)
        .map(|(after, before)| (after.0 - before.0, after.1 - before.1));

    // Check: exactly the acknowledged rows are there, and each thread's first and last.
    let acknowledged: u64 = runs.iter().map(|r| r.rows).sum();
    let count = shared.count()?;
    assert!(
        count == acknowledged,
        "{name}: the table holds {count} rows, {acknowledged} were acknowledged"
    );
    let mut value = Vec::with_capacity(workload::VALUE_LEN);
    for (thread, run) in runs.iter().enumerate() {
        for row in [0, run.rows - 1] {
            let key = key_of(thread, row, seed);
            let found = shared.get(&key_bytes(key), &mut value)?;
            assert!(
                found && value == value_for(key),
                "{name}: thread {thread} row {row} is missing or wrong"
            );
        }
    }

    let mut samples: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.samples.iter().copied())
        .collect();
    let commits = samples.len();
    let per_s = commits as f64 / elapsed.as_secs_f64();
    let p50_ms = workload::percentile_ns(&mut samples, 0.50) as f64 / 1e6;
    let p99_ms = workload::percentile_ns(&mut samples, 0.99) as f64 / 1e6;
    let p999_ms = workload::percentile_ns(&mut samples, 0.999) as f64 / 1e6;
    eprintln!(
        "[{name}] {threads} committers: {commits} commits in {:.2} s, {per_s:.0}/s, \
         p99 {p99_ms:.2} ms",
        elapsed.as_secs_f64()
    );
    let log = log.map_or_else(String::new, |(syncs, bytes)| {
        format!(" syncs={syncs} log_bytes={bytes}")
    });
    println!(
        "{RESULT_PREFIX} engine={name} committers={threads} commits={commits} \
         seconds={} per_s={per_s} p50_ms={p50_ms} p99_ms={p99_ms} p999_ms={p999_ms}{log}",
        elapsed.as_secs_f64()
    );
    drop(shared);
    Ok(())
}

/// One committer thread: commits until `duration` has passed since the barrier released it.
fn commit_loop(
    mut committer: Box<dyn Committer>,
    thread: usize,
    rows_per_commit: usize,
    seed: u64,
    duration: Duration,
    barrier: &Barrier,
) -> Result<ThreadRun> {
    let mut pairs: Vec<Pair> = Vec::with_capacity(rows_per_commit);
    let mut samples = Vec::with_capacity(4096);
    let mut rows = 0u64;
    barrier.wait();
    let deadline = Instant::now() + duration;
    loop {
        pairs.clear();
        pairs.extend((0..rows_per_commit as u64).map(|r| {
            let key = key_of(thread, rows + r, seed);
            (key_bytes(key), value_for(key))
        }));
        let start = Instant::now();
        committer.commit(&pairs)?;
        let end = Instant::now();
        samples.push((end - start).as_nanos() as u64);
        rows += rows_per_commit as u64;
        if end >= deadline {
            break;
        }
    }
    Ok(ThreadRun { samples, rows })
}
