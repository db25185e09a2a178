//! `nq-bench recovery`: how long opening a crashed database takes, with a given amount of log
//! written since its last checkpoint.
//!
//! A child process (this binary re-executed with the hidden `recovery-writer` subcommand)
//! creates a database with automatic checkpoints off, inserts random rows in durable batches
//! until `--wal-mb` MiB of log were written, syncs, prints a ready line and waits. The parent
//! kills it with SIGKILL (a real crash: no close, no flush, no checkpoint), then times
//! `Database::open`, which replays the log, and checks the recovered rows.

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nq_storage::{BufferPoolConfig, Database, Options, Tree, wal_dir_for};

use crate::Result;
use crate::report::Report;
use crate::system;
use crate::system::dir_size;
use crate::workload::{self, key_bytes, scrambled_key, value_for};

/// Prefix of the writer's line once its last batch is durable.
const READY_PREFIX: &str = "NQBENCH_READY";
/// Rows checked by lookup after recovery, spread evenly over everything written.
const SAMPLE_ROWS: u64 = 10_000;
const MIB: f64 = 1048576.0;

#[derive(Debug, Clone, clap::Args)]
pub struct RecoveryArgs {
    /// MiB of log to write after the last checkpoint before the crash.
    #[arg(long, default_value_t = 1024)]
    pub wal_mb: u64,
    /// Rows per durable batch (random distinct 8-byte keys, 100-byte values).
    #[arg(long, default_value_t = 1_000)]
    pub batch_rows: usize,
    /// Buffer pool budget in MiB, for the writer and for the recovering open.
    #[arg(long, default_value_t = 64)]
    pub pool_mb: usize,
    /// Page size of the database.
    #[arg(long, default_value_t = 4096)]
    pub page_size: usize,
    /// Directory for the temporary database [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seed of the key stream.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl RecoveryArgs {
    fn validate(&self) -> Result<()> {
        if self.wal_mb == 0 || self.batch_rows == 0 {
            return Err("--wal-mb and --batch-rows must be positive".into());
        }
        Ok(())
    }

    fn options(&self) -> Options {
        Options {
            page_size: self.page_size,
            buffer_pool: BufferPoolConfig {
                budget_bytes: self.pool_mb << 20,
                ..BufferPoolConfig::default()
            },
            checkpoint_wal_bytes: None,
            ..Options::default()
        }
    }
}

/// Arguments of the hidden writer child.
#[derive(Debug, Clone, clap::Args)]
pub struct RecoveryWriterArgs {
    /// The database file to create.
    #[arg(long)]
    pub path: PathBuf,
    #[command(flatten)]
    pub settings: RecoveryArgs,
}

/// The key of the `row`-th row written.
fn key_of(row: u64, seed: u64) -> u64 {
    scrambled_key(row, seed)
}

/// What the writer reported before it was killed.
#[derive(Debug)]
struct Written {
    rows: u64,
    batches: u64,
    wal_bytes: u64,
    seconds: f64,
}

/// Parent: starts the writer, kills it, times the recovering open and checks the rows.
pub fn run(args: &RecoveryArgs) -> Result<()> {
    args.validate()?;
    let exe = std::env::current_exe()?;
    let dir = tempfile::Builder::new()
        .prefix("nq-bench-recovery-")
        .tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let path = dir.path().join("data.nqdb");

    eprintln!(
        "[ours] writing {} MiB of log in a child process",
        args.wal_mb
    );
    let mut child = Command::new(&exe)
        .arg("recovery-writer")
        .arg(format!("--path={}", path.display()))
        .arg(format!("--wal-mb={}", args.wal_mb))
        .arg(format!("--batch-rows={}", args.batch_rows))
        .arg(format!("--pool-mb={}", args.pool_mb))
        .arg(format!("--page-size={}", args.page_size))
        .arg(format!("--seed={}", args.seed))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("writer has no stdout")?;
    let mut written = None;
    for line in BufReader::new(stdout).lines() {
        if let Some(fields) = line?.strip_prefix(READY_PREFIX) {
            written = Some(parse_ready(fields)?);
            break;
        }
    }
    let Some(written) = written else {
        let status = child.wait()?;
        return Err(format!("writer exited without a ready line: {status}").into());
    };
    // Child::kill sends SIGKILL on Unix.
    child.kill()?;
    let status = child.wait()?;
    if status.signal() != Some(9) {
        return Err(format!("writer was not killed by SIGKILL: {status}").into());
    }
    let data_bytes = file_disk_size(&path)?;
    let wal_bytes_on_disk = dir_size(&wal_dir_for(&path))?;
    eprintln!(
        "[ours] writer killed after {} rows in {} batches ({:.1} MiB of log, {:.1} s); \
         data file {:.1} MiB, log {:.1} MiB on disk",
        written.rows,
        written.batches,
        written.wal_bytes as f64 / MIB,
        written.seconds,
        data_bytes as f64 / MIB,
        wal_bytes_on_disk as f64 / MIB
    );

    let start = Instant::now();
    let db = Database::open(&path, &args.options())?;
    let open_time = start.elapsed();
    let recovery = db.recovery_report();
    eprintln!(
        "[ours] open: {:.3} s ({} records replayed in {:.3} s)",
        open_time.as_secs_f64(),
        recovery.records,
        recovery.duration.as_secs_f64()
    );

    let tree = db.open_tree("kv")?;
    let verify_start = Instant::now();
    let checked = verify(&tree, &written, args)?;
    eprintln!(
        "[ours] verified {checked} lookups and a full count in {:.1} s",
        verify_start.elapsed().as_secs_f64()
    );
    drop(tree);
    db.close()?;

    let replayed_bytes = recovery.to_lsn.saturating_sub(recovery.from_lsn);
    let mut report = Report::new(vec!["ours"], false);
    report.push("recovery_s", vec![open_time.as_secs_f64()], 3);
    report.push("replay_s", vec![recovery.duration.as_secs_f64()], 3);
    report.push("log_replayed_mb", vec![replayed_bytes as f64 / MIB], 1);
    report.push("records", vec![recovery.records as f64], 0);
    report.push("pages_applied", vec![recovery.pages_applied as f64], 0);
    report.push("pages_skipped", vec![recovery.pages_skipped as f64], 0);
    report.push("rows", vec![written.rows as f64], 0);

    println!("{}", system::machine_line());
    println!(
        "workload: a child creates a database (checkpoint_wal_bytes=None, page_size={} \
         pool_mb={}) and inserts random distinct 8-byte keys with 100-byte values in durable \
         batches of {} rows (db.batch) until {} MiB of log were written: {} rows in {} batches, \
         {:.1} MiB of log (wal_stats().bytes) in {:.1} s; then db.sync(), a ready line, and \
         SIGKILL from the parent. At the crash: data file {:.1} MiB, log {:.1} MiB on disk. \
         seed={}",
        args.page_size,
        args.pool_mb,
        args.batch_rows,
        args.wal_mb,
        written.rows,
        written.batches,
        written.wal_bytes as f64 / MIB,
        written.seconds,
        data_bytes as f64 / MIB,
        wal_bytes_on_disk as f64 / MIB,
        args.seed
    );
    println!(
        "notes: recovery_s is the wall time of Database::open on the crashed files: it replays \
         the log from the last checkpoint (replay_s = recovery_report().duration; the rest is \
         opening the files and the log's tail check; the replayed pages stay dirty for the \
         background checkpointer). records/pages_applied/pages_skipped \
         come from recovery_report(); log_replayed_mb is to_lsn - from_lsn. After the open, all \
         {} rows were counted by a full scan, the last acknowledged key, the whole last batch \
         and {SAMPLE_ROWS} evenly spaced rows were read back with their values, and the next, \
         never-written key is absent. A process crash leaves the OS page cache warm, so the log \
         is read from memory, as after any process crash (a power loss would add reading it \
         from disk). Floor: recover 1 GiB of log in under 10 s; goal: under 2 s.",
        written.rows
    );
    println!();
    print!("{}", report.markdown());
    println!();
    print!("{}", report.machine_lines());
    Ok(())
}

/// Checks the recovered tree against what the writer acknowledged; returns the lookups made.
fn verify(tree: &Tree, written: &Written, args: &RecoveryArgs) -> Result<u64> {
    let rows = written.rows;
    let seed = args.seed;
    let mut value = Vec::with_capacity(workload::VALUE_LEN);
    let mut check = |row: u64| -> Result<()> {
        let key = key_of(row, seed);
        let found = tree.get_into(&key_bytes(key), &mut value)?;
        if !found || value != value_for(key) {
            return Err(format!(
                "recovered database lacks acknowledged row {row} of {rows} (or its value is wrong)"
            )
            .into());
        }
        Ok(())
    };
    let last_batch_start = rows.saturating_sub(args.batch_rows as u64);
    let step = (rows / SAMPLE_ROWS).max(1);
    let mut checked = 0;
    // The last acknowledged key first, then the rest of its batch, then the sample.
    for row in std::iter::once(rows - 1)
        .chain(last_batch_start..rows)
        .chain((0..rows).step_by(step as usize))
    {
        check(row)?;
        checked += 1;
    }
    if tree.contains_key(&key_bytes(key_of(rows, seed)))? {
        return Err(format!("row {rows} was never written but is present").into());
    }
    let mut count = 0u64;
    let mut range = tree.iter();
    while let Some(item) = range.next_ref() {
        item?;
        count += 1;
    }
    if count != rows {
        return Err(format!("recovered {count} rows, {rows} were acknowledged").into());
    }
    Ok(checked)
}

fn parse_ready(fields: &str) -> Result<Written> {
    let mut rows = None;
    let mut batches = None;
    let mut wal_bytes = None;
    let mut seconds = None;
    for field in fields.split_whitespace() {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("writer: malformed field {field:?}"))?;
        match key {
            "rows" => rows = Some(value.parse()?),
            "batches" => batches = Some(value.parse()?),
            "wal_bytes" => wal_bytes = Some(value.parse()?),
            "seconds" => seconds = Some(value.parse()?),
            _ => {}
        }
    }
    match (rows, batches, wal_bytes, seconds) {
        (Some(rows), Some(batches), Some(wal_bytes), Some(seconds)) if rows > 0 => Ok(Written {
            rows,
            batches,
            wal_bytes,
            seconds,
        }),
        _ => Err(format!("writer: incomplete ready line {fields:?}").into()),
    }
}

/// Disk space (allocated blocks) of one file.
fn file_disk_size(path: &Path) -> Result<u64> {
    Ok(std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(path)?) * 512)
}

/// Child: writes until enough log exists, makes it durable, says so, and waits to be killed.
pub fn run_writer(args: &RecoveryWriterArgs) -> Result<()> {
    let s = &args.settings;
    s.validate()?;
    let db = Database::create(&args.path, &s.options())?;
    let tree = db.create_tree("kv")?;
    let target = s.wal_mb << 20;
    let mut rows = 0u64;
    let mut batches = 0u64;
    let mut pairs = Vec::with_capacity(s.batch_rows);
    let start = Instant::now();
    let mut next_report = Duration::from_secs(10);
    while db.wal_stats().bytes < target {
        pairs.clear();
        pairs.extend((rows..rows + s.batch_rows as u64).map(|row| {
            let key = key_of(row, s.seed);
            (key_bytes(key), value_for(key))
        }));
        db.batch(|| {
            for (key, value) in &pairs {
                tree.insert(key, value)?;
            }
            Ok(())
        })?;
        rows += s.batch_rows as u64;
        batches += 1;
        if start.elapsed() >= next_report {
            eprintln!(
                "[ours] writer: {rows} rows, {:.0} MiB of log after {:.0} s",
                db.wal_stats().bytes as f64 / MIB,
                start.elapsed().as_secs_f64()
            );
            next_report += Duration::from_secs(10);
        }
    }
    db.sync()?;
    let seconds = start.elapsed().as_secs_f64();
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{READY_PREFIX} rows={rows} batches={batches} wal_bytes={} seconds={seconds}",
        db.wal_stats().bytes
    )?;
    stdout.flush()?;
    drop(stdout);
    // The parent kills this process now. Should it not, crash anyway rather than close.
    std::thread::sleep(Duration::from_secs(600));
    std::process::abort();
}
