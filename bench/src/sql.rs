//! `nq-bench sql`: our SQL engine (nq-node) against SQLite, running the same SQL text.
//!
//! The workload: a durable bulk load of `items` (primary key, one secondary index) in
//! transactions of 1,000 rows made of multi-row INSERT statements, then random point selects
//! by primary key, range selects through the secondary index, a two-table join and a GROUP BY
//! over all rows. Every result is checked against what the harness wrote (a wrong answer aborts
//! the run), and the parent also checks that both engines returned the same totals.
//!
//! Each engine runs in its own child process (this binary re-executed with the hidden
//! `sql-engine` subcommand), so its peak RSS is its own. The child prints one `NQBENCH_RESULT`
//! line of `key=value` figures and, for the report's notes, `NQBENCH_PLAN` lines with the query
//! plans the engine chose.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nq_node::engine::EngineOptions;
use nq_node::{SqlExecutor, Value};
use nq_storage::{BufferPoolConfig, Options};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::Result;
use crate::report::Report;
use crate::system;
use crate::system::{dir_size, log_size};
use crate::workload::scrambled_key;

/// Rows per transaction of the load; one durable commit each.
const TXN_ROWS: usize = 1_000;
/// Rows per multi-row INSERT statement (so a transaction is 10 statements).
const STATEMENT_ROWS: usize = 100;
/// Rows per category: `category = id % (rows / ROWS_PER_CATEGORY)`.
const ROWS_PER_CATEGORY: usize = 1_000;
/// `cats` has one row per this many `items` rows.
const ITEMS_PER_CAT: usize = 10;
/// Parses of the point select timed to show what parsing costs ours.
const PARSE_RUNS: usize = 10_000;
/// Prefix of the child's result line on stdout.
const RESULT_PREFIX: &str = "NQBENCH_RESULT";
/// Prefix of the child's query plan lines on stdout.
const PLAN_PREFIX: &str = "NQBENCH_PLAN";

const CREATE_ITEMS: &str =
    "CREATE TABLE items (id BIGINT PRIMARY KEY, category INTEGER, price INTEGER, name TEXT)";
const CREATE_INDEX: &str = "CREATE INDEX items_category ON items (category)";
const CREATE_CATS: &str = "CREATE TABLE cats (id INTEGER PRIMARY KEY, label TEXT)";
const POINT: &str = "SELECT * FROM items WHERE id = $1";
const RANGE: &str = "SELECT * FROM items WHERE category = $1";
const JOIN: &str = "SELECT count(*), sum(items.price), sum(cats.id) FROM items \
                    JOIN cats ON cats.id = items.category";
const GROUP_BY: &str = "SELECT category, count(*), sum(price) FROM items GROUP BY category";
const TOTALS: &str = "SELECT count(*), sum(price) FROM items";

/// The figures a child reports, in report order, with the decimals each is printed with.
const METRICS: [(&str, usize); 10] = [
    ("sql_insert_per_s", 0),
    ("sql_point_p50_us", 2),
    ("sql_point_p99_us", 2),
    ("sql_range_p50_ms", 2),
    ("sql_range_p99_ms", 2),
    ("sql_join_ms", 1),
    ("sql_groupby_ms", 1),
    ("sql_file_mb", 1),
    ("sql_log_mb", 1),
    ("sql_rss_mb", 1),
];
/// Result checksums a child reports; the parent requires them equal for both engines.
const CHECKS: [&str; 4] = ["check_rows", "check_price", "check_join", "check_groupby"];

/// The engines compared, in run and column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqlEngineKind {
    /// nq-node (QSQL on the MVCC store).
    Ours,
    /// SQLite through rusqlite, bundled build.
    Sqlite,
}

impl SqlEngineKind {
    const ALL: [SqlEngineKind; 2] = [SqlEngineKind::Ours, SqlEngineKind::Sqlite];

    fn name(self) -> &'static str {
        match self {
            SqlEngineKind::Ours => "ours",
            SqlEngineKind::Sqlite => "sqlite",
        }
    }
}

/// Workload settings, shared by the parent and the children it starts.
#[derive(Debug, Clone, clap::Args)]
pub struct SqlArgs {
    /// Rows of `items` (a multiple of 1000; categories = rows / 1000, cats = rows / 10).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Page size for both engines.
    #[arg(long, default_value_t = 4096)]
    pub page_size: usize,
    /// Page cache budget in MiB, the same for both engines.
    #[arg(long, default_value_t = 64)]
    pub pool_mb: usize,
    /// Directory for the engines' temporary databases [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Point selects by primary key.
    #[arg(long, default_value_t = 10_000)]
    pub points: usize,
    /// Range selects through the secondary index (1,000 rows each). A p99 needs at least
    /// 1,000 samples to rest on more than the few slowest: with 200, it is the second slowest
    /// select, which is one of the first after the load (warming the cache) or a scheduler
    /// hiccup.
    #[arg(long, default_value_t = 1000)]
    pub ranges: usize,
    /// Runs of the join and of the GROUP BY; each figure is their median.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seed for the insertion order, prices, names and the lookups.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rounds of (ours, sqlite) children; each figure is the median over rounds.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

impl SqlArgs {
    fn validate(&self) -> Result<()> {
        if self.rows == 0 || !self.rows.is_multiple_of(ROWS_PER_CATEGORY) {
            return Err(
                format!("--rows must be a positive multiple of {ROWS_PER_CATEGORY}").into(),
            );
        }
        if self.points == 0 || self.ranges == 0 || self.runs == 0 || self.repeat == 0 {
            return Err("--points, --ranges, --runs and --repeat must be positive".into());
        }
        Ok(())
    }

    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    fn categories(&self) -> usize {
        self.rows / ROWS_PER_CATEGORY
    }

    /// The same settings as command-line arguments, for a child process.
    fn to_args(&self) -> Vec<String> {
        vec![
            format!("--rows={}", self.rows),
            format!("--page-size={}", self.page_size),
            format!("--pool-mb={}", self.pool_mb),
            format!("--dir={}", self.dir().display()),
            format!("--points={}", self.points),
            format!("--ranges={}", self.ranges),
            format!("--runs={}", self.runs),
            format!("--seed={}", self.seed),
        ]
    }
}

/// Arguments of the hidden per-engine child.
#[derive(Debug, Clone, clap::Args)]
pub struct SqlEngineArgs {
    #[arg(long, value_enum)]
    pub engine: SqlEngineKind,
    #[command(flatten)]
    pub settings: SqlArgs,
    /// Keeps the database directory and prints its path (to profile queries on loaded data)
    #[arg(long)]
    pub keep: bool,
    /// Prints one line per range select of our engine to stderr: `range_trace category=C
    /// ms=T misses=M prefetched=P written=W dirty=D` (buffer-pool misses during it, how many of
    /// those the read-ahead helper loaded, pages written back during it, dirty pages after it),
    /// to see which selects miss the cache and whether write-back competes with them
    #[arg(long)]
    pub trace_ranges: bool,
}

/// What one child printed.
struct ChildResult {
    figures: HashMap<String, f64>,
    checks: HashMap<String, String>,
    /// (query name, plan text).
    plans: Vec<(String, String)>,
}

/// Parent: runs both engines in child processes, compares their results, prints the report.
pub fn run(args: &SqlArgs) -> Result<()> {
    args.validate()?;
    let mut rounds: Vec<Vec<ChildResult>> = Vec::with_capacity(args.repeat);
    for round in 1..=args.repeat {
        let mut results = Vec::new();
        for kind in SqlEngineKind::ALL {
            eprintln!(
                "[{}] round {round}/{}: starting child process",
                kind.name(),
                args.repeat
            );
            let stdout = crate::child::run("sql-engine", kind.name(), &args.to_args())?;
            results.push(parse_result(kind, &stdout)?);
        }
        // Both engines must have computed the same answers.
        for check in CHECKS {
            let (ours, sqlite) = (&results[0].checks[check], &results[1].checks[check]);
            if ours != sqlite {
                return Err(format!(
                    "round {round}: engines disagree on {check}: ours={ours} sqlite={sqlite}"
                )
                .into());
            }
        }
        rounds.push(results);
    }

    let median = |e: usize, metric: &str| {
        let mut values: Vec<f64> = rounds.iter().map(|r| r[e].figures[metric]).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mut report = Report::new(SqlEngineKind::ALL.iter().map(|k| k.name()).collect(), true);
    for (metric, decimals) in METRICS {
        report.push(
            metric,
            (0..SqlEngineKind::ALL.len())
                .map(|e| median(e, metric))
                .collect(),
            decimals,
        );
    }

    let categories = args.categories();
    println!("{}", system::machine_line());
    println!(
        "workload: items rows={} (ids 0..rows inserted in random order; category = id % {categories}, \
         {ROWS_PER_CATEGORY} rows per category; price 1..=10000; name ~23 chars), index \
         items_category, cats rows={}; load in transactions of {TXN_ROWS} rows (BEGIN, {} \
         INSERT statements of {STATEMENT_ROWS} rows, durable COMMIT); points={} ranges={}x{} \
         rows, join and group by {} runs each, page_size={} pool_mb={} seed={}; each figure \
         is the median of {} rounds",
        args.rows,
        args.rows / ITEMS_PER_CAT,
        TXN_ROWS / STATEMENT_ROWS,
        args.points,
        args.ranges,
        ROWS_PER_CATEGORY,
        args.runs,
        args.page_size,
        args.pool_mb,
        args.seed,
        args.repeat
    );
    println!(
        "notes: both engines get the same SQL text: {CREATE_ITEMS}; {CREATE_INDEX}; \
         {CREATE_CATS}; load INSERT INTO items (id, category, price, name) VALUES (..), .. with \
         literal values; point {POINT}; range {RANGE}; join {JOIN}; group by {GROUP_BY}. Every \
         COMMIT of the load is durable (fsynced before it returns): ours always (write-ahead \
         log fdatasync'd per commit), SQLite journal_mode=WAL, synchronous=FULL. The load's \
         time covers BEGIN, the INSERT statements (parsing included) and COMMIT; the SQL text \
         is built before the timer starts. cats is loaded afterwards, untimed."
    );
    println!(
        "notes: reads run in autocommit, one statement at a time, on one connection. Ours: one \
         Session; each call passes the statement text and the $1 value; ours looks the text \
         up in its engine-wide plan cache (parsed and planned once per text and catalog \
         version, $1 stays a parameter of the cached plan), so repeated selects skip parsing \
         and planning. SQLite: prepare_cached statements with bound parameters (parsed and \
         planned once). No ANALYZE on either engine. Point and \
         range selects are timed alone (materialising every column of every row); join and \
         group by are the median of {} runs. Every result is checked against what was \
         written (row contents for points; count, sum of ids and prices for ranges; count and \
         sums for the join; every group for GROUP BY), and both engines' checksums must agree \
         (check_rows={}, check_price={}, check_join={}, check_groupby={}). Both engines get a \
         {} MiB page cache; sql_file_mb is the disk space (allocated blocks) of the engine's \
         directory after the load, logs included, sql_log_mb the part taken by write-ahead logs \
         (ours data.nqdb-wal/, SQLite -wal), sql_rss_mb the child's peak RSS (VmHWM), \
         including the harness's own arrays. MiB = 2^20 bytes. Ratios are ours/sqlite: above 1 \
         is better for sql_insert_per_s, below 1 for the rest.",
        args.runs,
        rounds[0][0].checks["check_rows"],
        rounds[0][0].checks["check_price"],
        rounds[0][0].checks["check_join"],
        rounds[0][0].checks["check_groupby"],
        args.pool_mb
    );
    for (e, kind) in SqlEngineKind::ALL.iter().enumerate() {
        let label = match kind {
            SqlEngineKind::Ours => "EXPLAIN",
            SqlEngineKind::Sqlite => "EXPLAIN QUERY PLAN",
        };
        let plans: Vec<String> = rounds[0][e]
            .plans
            .iter()
            .map(|(query, plan)| format!("{query}: {plan}"))
            .collect();
        println!("notes: {} {label}: {}", kind.name(), plans.join("; "));
    }
    if let Some(parse_us) = rounds[0][0].checks.get("note_parse_point_us") {
        println!(
            "notes: sqlparser takes {parse_us} us (median of {PARSE_RUNS}) to parse the point \
             select's text; ours' plan cache skips that (and planning) for every repeat of a \
             text, so it is not part of the sql_point figures. The bulk INSERT texts are all \
             different and are parsed every time."
        );
    }
    println!();
    print!("{}", report.markdown());
    println!();
    print!("{}", report.machine_lines());
    Ok(())
}

fn parse_result(kind: SqlEngineKind, stdout: &str) -> Result<ChildResult> {
    let name = kind.name();
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .ok_or_else(|| format!("{name} child printed no {RESULT_PREFIX} line"))?;
    let mut figures = HashMap::new();
    let mut checks = HashMap::new();
    for field in line.split_whitespace() {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("{name} child: malformed field {field:?}"))?;
        if key.starts_with("check_") || key.starts_with("note_") {
            checks.insert(key.to_owned(), value.to_owned());
        } else if key != "engine" {
            figures.insert(key.to_owned(), value.parse::<f64>()?);
        }
    }
    for (metric, _) in METRICS {
        if !figures.contains_key(metric) {
            return Err(format!("{name} child did not report {metric}").into());
        }
    }
    for check in CHECKS {
        if !checks.contains_key(check) {
            return Err(format!("{name} child did not report {check}").into());
        }
    }
    let plans = stdout
        .lines()
        .filter_map(|line| line.strip_prefix(PLAN_PREFIX))
        .filter_map(|rest| rest.trim().split_once(' '))
        .map(|(query, plan)| (query.to_owned(), plan.to_owned()))
        .collect();
    Ok(ChildResult {
        figures,
        checks,
        plans,
    })
}

// ---------------------------------------------------------------------------------------------
// The workload's data: every value is derived from the row id, so reads can be checked.

/// Price of item `id`: 1..=10000.
fn price_of(id: i64, seed: u64) -> i64 {
    (scrambled_key(id as u64, seed) % 10_000) as i64 + 1
}

/// Name of item `id`.
fn name_of(id: i64, seed: u64) -> String {
    format!(
        "item {id:09} {:08x}",
        scrambled_key(id as u64, seed ^ 0x6e61_6d65) as u32
    )
}

/// One `items` row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    id: i64,
    category: i64,
    price: i64,
    name: String,
}

/// What a range select read.
#[derive(Debug, Default, PartialEq, Eq)]
struct RangeSummary {
    rows: i64,
    id_sum: i64,
    price_sum: i64,
    /// Rows whose category is not the one asked for.
    wrong_category: i64,
    name_bytes: usize,
}

/// One `(category, count(*), sum(price))` row of the GROUP BY.
type Group = (i64, i64, i64);

/// An engine under test, behind the calls the workload makes.
trait SqlDb {
    /// Runs a statement without parameters whose result is not needed (DDL, BEGIN, INSERT...).
    fn exec(&mut self, sql: &str) -> Result<()>;
    /// `POINT` for `id`: the rows it returned.
    fn point(&mut self, id: i64) -> Result<Vec<Item>>;
    /// `RANGE` for `category`.
    fn range(&mut self, category: i64) -> Result<RangeSummary>;
    /// `JOIN`: count, sum of prices, sum of cats ids.
    fn join(&mut self) -> Result<(i64, i64, i64)>;
    /// `GROUP_BY`, in whatever order the engine returns it.
    fn group_by(&mut self) -> Result<Vec<Group>>;
    /// `TOTALS`: count and sum of prices.
    fn totals(&mut self) -> Result<(i64, i64)>;
    /// The plan of `sql` with `param` for `$1`, as one line.
    fn plan(&mut self, sql: &str, param: Option<i64>) -> Result<String>;
    /// Closes the database cleanly.
    fn close(self: Box<Self>) -> Result<()>;
}

// ---------------------------------------------------------------------------------------------
// Ours.

struct Ours {
    engine: nq_node::Engine,
    session: nq_node::Session,
    /// `--trace-ranges`.
    trace: bool,
}

impl Ours {
    fn open(dir: &Path, settings: &SqlArgs) -> Result<Ours> {
        let options = EngineOptions {
            storage: Options {
                page_size: settings.page_size,
                buffer_pool: BufferPoolConfig {
                    budget_bytes: settings.pool_mb << 20,
                    ..BufferPoolConfig::default()
                },
                ..Options::default()
            },
            // No slow-query log lines in the middle of the benchmark's output.
            slow_query: None,
            ..EngineOptions::default()
        };
        let engine = nq_node::Engine::open_with(dir, &options)?;
        let session = engine.session();
        Ok(Ours {
            engine,
            session,
            trace: false,
        })
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        let mut results = self.session.execute(sql, params)?;
        let last = results.pop().ok_or("ours: no statement result")?;
        Ok(last.rows)
    }
}

/// An integer result value; SUM may come back as a DECIMAL or a float.
fn int_of(value: &Value) -> Result<i64> {
    if let Value::Int(i) = value {
        return Ok(*i);
    }
    let text = value.to_string();
    if let Ok(i) = text.parse::<i64>() {
        return Ok(i);
    }
    match text.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(f as i64),
        _ => Err(format!("ours: expected an integer, got {value:?}").into()),
    }
}

fn text_of(value: &Value) -> Result<&str> {
    match value {
        Value::Text(s) => Ok(s),
        other => Err(format!("ours: expected text, got {other:?}").into()),
    }
}

/// The item in a result row, taking its text rather than copying it (as the SQLite side
/// builds its item from the column it reads).
fn item_of(row: Vec<Value>) -> Result<Item> {
    let Ok::<[Value; 4], _>([id, category, price, name]) = row.try_into() else {
        return Err("ours: expected 4 columns".into());
    };
    let Value::Text(name) = name else {
        return Err(format!("ours: expected text, got {name:?}").into());
    };
    Ok(Item {
        id: int_of(&id)?,
        category: int_of(&category)?,
        price: int_of(&price)?,
        name,
    })
}

fn three_ints(row: &[Value]) -> Result<(i64, i64, i64)> {
    let [a, b, c] = row else {
        return Err(format!("ours: expected 3 columns, got {}", row.len()).into());
    };
    Ok((int_of(a)?, int_of(b)?, int_of(c)?))
}

impl SqlDb for Ours {
    fn exec(&mut self, sql: &str) -> Result<()> {
        self.session.execute(sql, &[])?;
        Ok(())
    }

    fn point(&mut self, id: i64) -> Result<Vec<Item>> {
        self.query(POINT, &[Value::Int(id)])?
            .into_iter()
            .map(item_of)
            .collect()
    }

    fn range(&mut self, category: i64) -> Result<RangeSummary> {
        let before = self.trace.then(|| self.engine.buffer_pool_stats());
        let started = Instant::now();
        let rows = self.query(RANGE, &[Value::Int(category)])?;
        if let Some(before) = before {
            let after = self.engine.buffer_pool_stats();
            eprintln!(
                "range_trace category={category} ms={:.3} misses={} prefetched={} written={} \
                 dirty={}",
                started.elapsed().as_secs_f64() * 1e3,
                after.misses - before.misses,
                after.prefetched - before.prefetched,
                after.page_writes - before.page_writes,
                after.dirty_pages
            );
        }
        let mut summary = RangeSummary::default();
        for row in rows {
            let item = item_of(row)?;
            summary.rows += 1;
            summary.id_sum += item.id;
            summary.price_sum += item.price;
            summary.wrong_category += i64::from(item.category != category);
            summary.name_bytes += item.name.len();
        }
        Ok(summary)
    }

    fn join(&mut self) -> Result<(i64, i64, i64)> {
        let rows = self.query(JOIN, &[])?;
        three_ints(rows.first().ok_or("ours: join returned no row")?)
    }

    fn group_by(&mut self) -> Result<Vec<Group>> {
        self.query(GROUP_BY, &[])?
            .iter()
            .map(|row| three_ints(row))
            .collect()
    }

    fn totals(&mut self) -> Result<(i64, i64)> {
        let rows = self.query(TOTALS, &[])?;
        match rows.first().map(Vec::as_slice) {
            Some([count, sum]) => Ok((int_of(count)?, int_of(sum)?)),
            other => Err(format!("ours: totals returned {other:?}").into()),
        }
    }

    fn plan(&mut self, sql: &str, param: Option<i64>) -> Result<String> {
        let params: Vec<Value> = param.into_iter().map(Value::Int).collect();
        let rows = self.query(&format!("EXPLAIN {sql}"), &params)?;
        let lines = rows
            .iter()
            .map(|row| row.first().map(|v| text_of(v).map(str::trim)))
            .collect::<Option<Result<Vec<&str>>>>()
            .ok_or("ours: empty EXPLAIN row")??;
        Ok(lines.join(" / "))
    }

    fn close(self: Box<Self>) -> Result<()> {
        let Ours {
            engine, session, ..
        } = *self;
        drop(session);
        engine.close()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite.

struct Sqlite {
    conn: rusqlite::Connection,
}

impl Sqlite {
    fn open(dir: &Path, settings: &SqlArgs) -> Result<Sqlite> {
        let conn = rusqlite::Connection::open(dir.join("data.sqlite"))?;
        // page_size must be set before the first table exists (and before WAL is enabled).
        conn.pragma_update(None, "page_size", settings.page_size as i64)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("sqlite: journal_mode is {mode}, not wal").into());
        }
        // Durable commits, like ours: the WAL is fsynced at every commit.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A negative cache_size is in KiB.
        conn.pragma_update(None, "cache_size", -((settings.pool_mb << 10) as i64))?;
        Ok(Sqlite { conn })
    }
}

fn sqlite_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        id: row.get(0)?,
        category: row.get(1)?,
        price: row.get(2)?,
        name: row.get(3)?,
    })
}

impl SqlDb for Sqlite {
    fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql)?;
        Ok(())
    }

    fn point(&mut self, id: i64) -> Result<Vec<Item>> {
        let mut stmt = self.conn.prepare_cached(POINT)?;
        let rows = stmt.query_map([id], sqlite_item)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn range(&mut self, category: i64) -> Result<RangeSummary> {
        let mut stmt = self.conn.prepare_cached(RANGE)?;
        let mut rows = stmt.query([category])?;
        let mut summary = RangeSummary::default();
        while let Some(row) = rows.next()? {
            let item = sqlite_item(row)?;
            summary.rows += 1;
            summary.id_sum += item.id;
            summary.price_sum += item.price;
            summary.wrong_category += i64::from(item.category != category);
            summary.name_bytes += item.name.len();
        }
        Ok(summary)
    }

    fn join(&mut self) -> Result<(i64, i64, i64)> {
        let mut stmt = self.conn.prepare_cached(JOIN)?;
        Ok(stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?)
    }

    fn group_by(&mut self) -> Result<Vec<Group>> {
        let mut stmt = self.conn.prepare_cached(GROUP_BY)?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn totals(&mut self) -> Result<(i64, i64)> {
        Ok(self
            .conn
            .query_row(TOTALS, [], |row| Ok((row.get(0)?, row.get(1)?)))?)
    }

    fn plan(&mut self, sql: &str, param: Option<i64>) -> Result<String> {
        let mut stmt = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let params: Vec<i64> = param.into_iter().collect();
        let details = stmt.query_map(rusqlite::params_from_iter(params), |row| {
            row.get::<_, String>(3)
        })?;
        Ok(details.collect::<rusqlite::Result<Vec<_>>>()?.join(" / "))
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.conn.close().map_err(|(_conn, err)| err)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The child.

/// `INSERT INTO items` statements for `ids`, `STATEMENT_ROWS` rows each.
fn item_inserts(ids: &[i64], categories: i64, seed: u64) -> Vec<String> {
    ids.chunks(STATEMENT_ROWS)
        .map(|chunk| {
            let mut sql = String::from("INSERT INTO items (id, category, price, name) VALUES ");
            for (i, &id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let _ = write!(
                    sql,
                    "({id}, {}, {}, '{}')",
                    id % categories,
                    price_of(id, seed),
                    name_of(id, seed)
                );
            }
            sql
        })
        .collect()
}

/// `INSERT INTO cats` statements for `ids`, `STATEMENT_ROWS` rows each.
fn cat_inserts(ids: std::ops::Range<i64>) -> Vec<String> {
    let ids: Vec<i64> = ids.collect();
    ids.chunks(STATEMENT_ROWS)
        .map(|chunk| {
            let values: Vec<String> = chunk
                .iter()
                .map(|id| format!("({id}, 'category {id}')"))
                .collect();
            format!("INSERT INTO cats (id, label) VALUES {}", values.join(", "))
        })
        .collect()
}

/// Runs `statements` in one transaction.
fn transaction(db: &mut dyn SqlDb, statements: &[String]) -> Result<()> {
    db.exec("BEGIN")?;
    for sql in statements {
        db.exec(sql)?;
    }
    db.exec("COMMIT")
}

/// A digest of the GROUP BY's rows in category order (FNV-1a over their values).
fn digest(groups: &[Group]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &(a, b, c) in groups {
        for word in [a, b, c] {
            for byte in word.to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    hash
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    ms(samples[samples.len() / 2])
}

/// Child: runs the whole workload on one engine and prints its result line.
pub fn run_engine(args: &SqlEngineArgs) -> Result<()> {
    let s = &args.settings;
    s.validate()?;
    let kind = args.engine;
    let name = kind.name();
    let dir = tempfile::Builder::new()
        .prefix(&format!("nq-bench-sql-{name}-"))
        .tempdir_in(s.dir())?;
    let mut db: Box<dyn SqlDb> = match kind {
        SqlEngineKind::Ours => {
            let mut ours = Ours::open(dir.path(), s)?;
            ours.trace = args.trace_ranges;
            Box::new(ours)
        }
        SqlEngineKind::Sqlite => Box::new(Sqlite::open(dir.path(), s)?),
    };
    let rows = s.rows as i64;
    let categories = s.categories() as i64;
    let per_category = ROWS_PER_CATEGORY as i64;
    let seed = s.seed;

    // What the reads must find: prices summed per category and in all.
    let mut category_price = vec![0i64; s.categories()];
    for id in 0..rows {
        category_price[(id % categories) as usize] += price_of(id, seed);
    }
    let total_price: i64 = category_price.iter().sum();

    for ddl in [CREATE_ITEMS, CREATE_INDEX, CREATE_CATS] {
        db.exec(ddl)?;
    }

    // Load: ids 0..rows in random order; each transaction's SQL is built before its timer.
    let mut ids: Vec<i64> = (0..rows).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    ids.shuffle(&mut rng);
    let mut insert_time = Duration::ZERO;
    for (n, chunk) in ids.chunks(TXN_ROWS).enumerate() {
        let statements = item_inserts(chunk, categories, seed);
        let start = Instant::now();
        transaction(db.as_mut(), &statements)?;
        insert_time += start.elapsed();
        if (n + 1) % 100 == 0 {
            eprintln!(
                "[{name}] insert: {} rows, {:.0} rows/s so far",
                (n + 1) * TXN_ROWS,
                ((n + 1) * TXN_ROWS) as f64 / insert_time.as_secs_f64()
            );
        }
    }
    drop(ids);
    let insert_per_s = rows as f64 / insert_time.as_secs_f64();
    eprintln!(
        "[{name}] insert: {rows} rows in {:.2} s, {insert_per_s:.0} rows/s",
        insert_time.as_secs_f64()
    );
    let cat_rows = rows / ITEMS_PER_CAT as i64;
    let mut start = 0;
    while start < cat_rows {
        let end = (start + TXN_ROWS as i64).min(cat_rows);
        transaction(db.as_mut(), &cat_inserts(start..end))?;
        start = end;
    }
    let (count, price_sum) = db.totals()?;
    if (count, price_sum) != (rows, total_price) {
        return Err(format!(
            "{name}: after the load items holds {count} rows with sum(price)={price_sum}, \
             expected {rows} and {total_price}"
        )
        .into());
    }
    let file_bytes = dir_size(dir.path())?;
    let log_bytes = log_size(dir.path())?;

    // Plans, printed in the report's notes; ours must use the primary key and the index.
    let plans = [
        ("point", POINT, Some(0)),
        ("range", RANGE, Some(0)),
        ("join", JOIN, None),
        ("group_by", GROUP_BY, None),
    ];
    for (query, sql, param) in plans {
        let plan = db.plan(sql, param)?;
        let expected = match (kind, query) {
            (SqlEngineKind::Ours, "point") => Some("Primary Key Lookup on items"),
            (SqlEngineKind::Ours, "range") => Some("using items_category"),
            _ => None,
        };
        if let Some(expected) = expected
            && !plan.contains(expected)
        {
            return Err(
                format!("{name}: the {query} select's plan lacks {expected:?}: {plan}").into(),
            );
        }
        println!("{PLAN_PREFIX} {query} {plan}");
    }

    // Point selects of random ids.
    let mut samples = Vec::with_capacity(s.points);
    for _ in 0..s.points {
        let id = rng.random_range(0..rows);
        let start = Instant::now();
        let found = db.point(id)?;
        samples.push(start.elapsed().as_nanos() as u64);
        let expected = Item {
            id,
            category: id % categories,
            price: price_of(id, seed),
            name: name_of(id, seed),
        };
        if found != [expected] {
            return Err(format!("{name}: point select of id {id} returned {found:?}").into());
        }
    }
    let point_p50_us = crate::workload::percentile_ns(&mut samples, 0.50) as f64 / 1e3;
    let point_p99_us = crate::workload::percentile_ns(&mut samples, 0.99) as f64 / 1e3;
    eprintln!(
        "[{name}] point: {} selects, p50 {point_p50_us:.2} us",
        s.points
    );

    // Range selects of random categories through the index.
    let mut samples = Vec::with_capacity(s.ranges);
    for _ in 0..s.ranges {
        let category = rng.random_range(0..categories);
        let start = Instant::now();
        let found = db.range(category)?;
        samples.push(start.elapsed().as_nanos() as u64);
        let expected_ids =
            per_category * category + categories * per_category * (per_category - 1) / 2;
        if found.rows != per_category
            || found.id_sum != expected_ids
            || found.price_sum != category_price[category as usize]
            || found.wrong_category != 0
        {
            return Err(format!(
                "{name}: range select of category {category} read {found:?}, expected \
                 {per_category} rows, id sum {expected_ids}, price sum {}",
                category_price[category as usize]
            )
            .into());
        }
    }
    let range_p50_ms = crate::workload::percentile_ns(&mut samples, 0.50) as f64 / 1e6;
    let range_p99_ms = crate::workload::percentile_ns(&mut samples, 0.99) as f64 / 1e6;
    eprintln!(
        "[{name}] range: {} selects, p50 {range_p50_ms:.2} ms",
        s.ranges
    );

    // The join: every item matches one cat (categories < cat rows).
    let expected_join = (
        rows,
        total_price,
        per_category * categories * (categories - 1) / 2,
    );
    let mut samples = Vec::with_capacity(s.runs);
    let mut join = (0, 0, 0);
    for _ in 0..s.runs {
        let start = Instant::now();
        let found = db.join()?;
        samples.push(start.elapsed());
        join = found;
        if found != expected_join {
            return Err(
                format!("{name}: join returned {found:?}, expected {expected_join:?}").into(),
            );
        }
    }
    let join_ms = median_ms(samples);
    eprintln!("[{name}] join: {join_ms:.1} ms");

    let expected_groups: Vec<Group> = (0..categories)
        .map(|c| (c, per_category, category_price[c as usize]))
        .collect();
    let mut samples = Vec::with_capacity(s.runs);
    let mut groups = Vec::new();
    for _ in 0..s.runs {
        let start = Instant::now();
        groups = db.group_by()?;
        samples.push(start.elapsed());
        groups.sort_unstable();
        if groups != expected_groups {
            let wrong = groups
                .iter()
                .zip(&expected_groups)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{a:?} instead of {b:?}"))
                .unwrap_or_default();
            return Err(format!(
                "{name}: GROUP BY returned {} groups, expected {categories}; {wrong}",
                groups.len()
            )
            .into());
        }
    }
    let groupby_ms = median_ms(samples);
    eprintln!("[{name}] group by: {groupby_ms:.1} ms");

    let parse_note = if kind == SqlEngineKind::Ours {
        let mut samples = Vec::with_capacity(PARSE_RUNS);
        for _ in 0..PARSE_RUNS {
            let start = Instant::now();
            let parsed = nq_node::parse::parse(POINT)?;
            samples.push(start.elapsed().as_nanos() as u64);
            drop(std::hint::black_box(parsed));
        }
        let p50_us = crate::workload::percentile_ns(&mut samples, 0.50) as f64 / 1e3;
        format!(" note_parse_point_us={p50_us:.2}")
    } else {
        String::new()
    };

    db.close()?;
    let rss = system::peak_rss_bytes().ok_or("cannot read VmHWM from /proc/self/status")?;
    println!(
        "{RESULT_PREFIX} engine={name} sql_insert_per_s={insert_per_s} \
         sql_point_p50_us={point_p50_us} sql_point_p99_us={point_p99_us} \
         sql_range_p50_ms={range_p50_ms} sql_range_p99_ms={range_p99_ms} sql_join_ms={join_ms} \
         sql_groupby_ms={groupby_ms} sql_file_mb={} sql_log_mb={} sql_rss_mb={} \
         check_rows={count} check_price={price_sum} check_join={}/{}/{} \
         check_groupby={:016x}{parse_note}",
        file_bytes as f64 / MIB,
        log_bytes as f64 / MIB,
        rss as f64 / MIB,
        join.0,
        join.1,
        join.2,
        digest(&groups)
    );
    if args.keep {
        eprintln!("[{name}] kept {}", dir.keep().display());
    }
    Ok(())
}

const MIB: f64 = 1048576.0;
