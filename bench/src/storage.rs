//! `nq-bench storage`: the same load, point-lookup and scan workload on ours, redb and SQLite.
//!
//! Each engine runs in its own child process (this binary re-executed with the hidden
//! `storage-engine` subcommand), so its peak RSS is its own and no engine inherits another's
//! allocator state. The child prints one `NQBENCH_RESULT` line of `key=value` figures; the
//! parent collects the three and prints the report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Result;
use crate::peers::{self, Batch, EngineConfig, EngineKind};
use crate::report::Report;
use crate::system::{self, dir_size, log_size};
use crate::workload::{self, key_bytes, value_for};

/// Rows per insert batch; one commit per batch (durable unless `--fast-commits`).
const BATCH_ROWS: usize = 1_000;
/// Rows read by each scan; the `scan10k_*` metric names depend on it.
const SCAN_ROWS: usize = 10_000;
/// Prefix of the child's result line on stdout.
const RESULT_PREFIX: &str = "NQBENCH_RESULT";

/// The figures a child reports, in report order, with the decimals each is printed with.
const METRICS: [(&str, usize); 8] = [
    ("insert_per_s", 0),
    ("get_p50_us", 2),
    ("get_p99_us", 2),
    ("scan10k_p50_ms", 2),
    ("scan10k_p99_ms", 2),
    ("file_mb", 1),
    ("log_mb", 1),
    ("rss_mb", 1),
];

/// Workload settings, shared by the parent and the children it starts.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Rows to load (distinct random u64 keys, 100-byte values).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Page size for ours and SQLite (redb's is fixed at 4 KiB).
    #[arg(long, default_value_t = 4096)]
    pub page_size: usize,
    /// Page cache budget in MiB, the same for every engine.
    #[arg(long, default_value_t = 64)]
    pub pool_mb: usize,
    /// Directory for the engines' temporary databases [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Point lookups in the get phase.
    #[arg(long, default_value_t = 100_000)]
    pub gets: usize,
    /// 10,000-row scans in the scan phase.
    #[arg(long, default_value_t = 1_000)]
    pub scans: usize,
    /// Seed for keys, lookup order and scan starts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rounds of (ours, redb, sqlite) children; each figure is the median over rounds, so one
    /// noisy run on a shared machine does not decide a comparison.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Per-batch commits in a non-durable mode (ours SyncPolicy::Relaxed, redb
    /// Durability::None, SQLite synchronous=OFF) with one durable step at the end of the load,
    /// instead of a durable (fsynced) commit per batch.
    #[arg(long)]
    pub fast_commits: bool,
}

impl StorageArgs {
    fn validate(&self) -> Result<()> {
        if self.rows <= SCAN_ROWS {
            return Err(format!("--rows must exceed {SCAN_ROWS} (the scan length)").into());
        }
        if self.gets == 0 || self.scans == 0 || self.repeat == 0 {
            return Err("--gets, --scans and --repeat must be positive".into());
        }
        Ok(())
    }

    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// The same settings as command-line arguments, for a child process.
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--rows={}", self.rows),
            format!("--page-size={}", self.page_size),
            format!("--pool-mb={}", self.pool_mb),
            format!("--dir={}", self.dir().display()),
            format!("--gets={}", self.gets),
            format!("--scans={}", self.scans),
            format!("--seed={}", self.seed),
        ];
        if self.fast_commits {
            args.push("--fast-commits".to_owned());
        }
        args
    }
}

/// Arguments of the hidden per-engine child.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    #[arg(long, value_enum)]
    pub engine: EngineKind,
    #[command(flatten)]
    pub settings: StorageArgs,
}

/// Parent: runs every engine in its own child process and prints the report.
pub fn run(args: &StorageArgs) -> Result<()> {
    args.validate()?;
    // rounds[r][e]: the figures of engine e in round r. Engines alternate within a round so
    // slow phases of a shared machine hit all of them alike.
    let mut rounds = Vec::with_capacity(args.repeat);
    for round in 1..=args.repeat {
        let mut results = Vec::new();
        for kind in EngineKind::ALL {
            eprintln!(
                "[{}] round {round}/{}: starting child process",
                kind.name(),
                args.repeat
            );
            let stdout = crate::child::run("storage-engine", kind.name(), &args.to_args())?;
            results.push(parse_result(kind, &stdout)?);
        }
        rounds.push(results);
    }
    let results: Vec<HashMap<String, f64>> = (0..EngineKind::ALL.len())
        .map(|e| {
            METRICS
                .iter()
                .map(|(metric, _)| {
                    let mut values: Vec<f64> = rounds.iter().map(|r| r[e][*metric]).collect();
                    values.sort_by(f64::total_cmp);
                    ((*metric).to_owned(), values[values.len() / 2])
                })
                .collect()
        })
        .collect();

    let mut report = Report::new(EngineKind::ALL.iter().map(|k| k.name()).collect(), true);
    for (metric, decimals) in METRICS {
        report.push(
            metric,
            results.iter().map(|r| r[metric]).collect(),
            decimals,
        );
    }
    println!("{}", system::machine_line());
    println!(
        "workload: rows={} (random distinct u64 keys, 8-byte big-endian; 100-byte values), \
         insert batches of {BATCH_ROWS} rows with one {} commit each, gets={}, \
         scans={}x{SCAN_ROWS} rows, page_size={} pool_mb={} seed={}; each figure is the median \
         of {} rounds",
        args.rows,
        if args.fast_commits {
            "non-durable"
        } else {
            "durable"
        },
        args.gets,
        args.scans,
        args.page_size,
        args.pool_mb,
        args.seed,
        args.repeat
    );
    if args.fast_commits {
        println!(
            "notes: --fast-commits: per-batch commits are non-durable for all engines: ours \
             runs each batch in db.batch(..) with SyncPolicy::Relaxed (log written to the OS, \
             background fsync every second), redb commits with Durability::None, SQLite runs \
             journal_mode=WAL, synchronous=OFF. Each engine is made durable once at \
             the end of the insert phase, timed as part of it: ours db.flush() (a checkpoint), \
             redb an empty commit with Durability::Immediate, SQLite synchronous=FULL then \
             wal_checkpoint(FULL)."
        );
    } else {
        println!(
            "notes: every per-batch commit is durable (fsynced before it returns) for all \
             engines: ours runs each batch in db.batch(..) (write-ahead log flushed and \
             fdatasync'd, default checkpoint_wal_bytes=128 MiB), redb commits with \
             Durability::Immediate, SQLite runs journal_mode=WAL, synchronous=FULL. \
             --fast-commits measures the old non-durable mode."
        );
    }
    println!(
        "notes: every engine gets a {} MiB page cache (ours buffer pool, redb set_cache_size, \
         SQLite cache_size). redb and SQLite read inside one read transaction per run; ours has \
         none. Each engine runs in its own process; rss_mb is that process's peak (VmHWM), \
         including the harness's own arrays (keys, lookup order, timings: {:.1} MiB). file_mb is the disk space (allocated blocks) of every file the engine \
         left in its directory after the load, logs included (ours: data file and -wal \
         segments; SQLite: db, -wal, -shm); log_mb is the part of it taken by write-ahead logs \
         (ours data.nqdb-wal/, kept until a checkpoint; SQLite -wal; redb has none). MiB = \
         2^20 bytes. \
         Ratios are ours/peer: above 1 is better for insert_per_s, below 1 for the rest.",
        args.pool_mb,
        ((args.rows + 2 * args.gets + 2 * args.scans) * 8) as f64 / MIB
    );
    println!();
    print!("{}", report.markdown());
    println!();
    print!("{}", report.machine_lines());
    Ok(())
}

const MIB: f64 = 1048576.0;

fn parse_result(kind: EngineKind, stdout: &str) -> Result<HashMap<String, f64>> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .ok_or_else(|| format!("{} child printed no {RESULT_PREFIX} line", kind.name()))?;
    let mut figures = HashMap::new();
    for field in line.split_whitespace() {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("{} child: malformed field {field:?}", kind.name()))?;
        if key != "engine" {
            figures.insert(key.to_owned(), value.parse::<f64>()?);
        }
    }
    for (metric, _) in METRICS {
        if !figures.contains_key(metric) {
            return Err(format!("{} child did not report {metric}", kind.name()).into());
        }
    }
    Ok(figures)
}

/// Child: runs the whole workload on one engine and prints its result line.
pub fn run_engine(args: &EngineArgs) -> Result<()> {
    let settings = &args.settings;
    settings.validate()?;
    let name = args.engine.name();
    let dir = tempfile::Builder::new()
        .prefix(&format!("nq-bench-{name}-"))
        .tempdir_in(settings.dir())?;
    let config = EngineConfig {
        page_size: settings.page_size,
        cache_bytes: settings.pool_mb << 20,
        durable_commits: !settings.fast_commits,
    };

    let mut keys = workload::generate_keys(settings.rows, settings.seed);
    let mut engine = peers::create(args.engine, dir.path(), config)?;

    // Insert phase: batches are encoded before their timed insert+commit.
    let mut batch = Batch::default();
    let mut insert_time = Duration::ZERO;
    for chunk in keys.chunks(BATCH_ROWS) {
        batch.pairs.clear();
        batch
            .pairs
            .extend(chunk.iter().map(|&k| (key_bytes(k), value_for(k))));
        let start = Instant::now();
        engine.insert_batch(&batch)?;
        insert_time += start.elapsed();
    }
    if settings.fast_commits {
        let start = Instant::now();
        engine.make_durable()?;
        insert_time += start.elapsed();
    }
    let insert_per_s = keys.len() as f64 / insert_time.as_secs_f64();
    let file_bytes = dir_size(dir.path())?;
    let log_bytes = log_size(dir.path())?;
    eprintln!(
        "[{name}] insert: {} rows in {:.2} s",
        keys.len(),
        insert_time.as_secs_f64()
    );

    // Read phases work on the sorted keys: lookups pick random indices, scans random starts.
    keys.sort_unstable();
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x6765_7473);
    engine.begin_reads()?;

    let lookups: Vec<usize> = (0..settings.gets)
        .map(|_| rng.random_range(0..keys.len()))
        .collect();
    let mut samples = Vec::with_capacity(lookups.len());
    let mut value = Vec::with_capacity(workload::VALUE_LEN);
    let mut wrong = 0usize;
    for &i in &lookups {
        let key = key_bytes(keys[i]);
        let start = Instant::now();
        let found = engine.get(&key, &mut value)?;
        samples.push(start.elapsed().as_nanos() as u64);
        if !found || value != value_for(keys[i]) {
            wrong += 1;
        }
    }
    assert!(
        wrong == 0,
        "{name}: {wrong} of {} lookups returned a wrong or missing value",
        lookups.len()
    );
    let get_p50_us = workload::percentile_ns(&mut samples, 0.50) as f64 / 1e3;
    let get_p99_us = workload::percentile_ns(&mut samples, 0.99) as f64 / 1e3;
    eprintln!(
        "[{name}] get: {} lookups, p50 {get_p50_us:.2} us",
        lookups.len()
    );

    let starts: Vec<usize> = (0..settings.scans)
        .map(|_| rng.random_range(0..keys.len() - SCAN_ROWS))
        .collect();
    let mut samples = Vec::with_capacity(starts.len());
    for &i in &starts {
        let key = key_bytes(keys[i]);
        let start = Instant::now();
        let summary = engine.scan(&key, SCAN_ROWS)?;
        samples.push(start.elapsed().as_nanos() as u64);
        let expected_bytes = (SCAN_ROWS * (8 + workload::VALUE_LEN)) as u64;
        assert!(
            summary.count == SCAN_ROWS
                && summary.first_key == key
                && summary.last_key == key_bytes(keys[i + SCAN_ROWS - 1])
                && summary.bytes == expected_bytes,
            "{name}: scan from row {i} read {} rows ({} bytes), first {:?}, last {:?}",
            summary.count,
            summary.bytes,
            summary.first_key,
            summary.last_key
        );
    }
    let scan_p50_ms = workload::percentile_ns(&mut samples, 0.50) as f64 / 1e6;
    let scan_p99_ms = workload::percentile_ns(&mut samples, 0.99) as f64 / 1e6;
    eprintln!(
        "[{name}] scan: {} scans, p50 {scan_p50_ms:.2} ms",
        starts.len()
    );

    engine.close()?;
    let rss = system::peak_rss_bytes().ok_or("cannot read VmHWM from /proc/self/status")?;
    println!(
        "{RESULT_PREFIX} engine={name} insert_per_s={insert_per_s} get_p50_us={get_p50_us} \
         get_p99_us={get_p99_us} scan10k_p50_ms={scan_p50_ms} scan10k_p99_ms={scan_p99_ms} \
         file_mb={} log_mb={} rss_mb={}",
        file_bytes as f64 / MIB,
        log_bytes as f64 / MIB,
        rss as f64 / MIB
    );
    Ok(())
}
