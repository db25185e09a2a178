//! `nq-bench`: measures NeuroQuantumDB's storage engine against embedded peers (redb, SQLite)
//! (load, reads, durable commits), its SQL engine against SQLite, its crash recovery time, its
//! buffer pool's eviction policies against each other, and its quantum-inspired solvers
//! (nq-quantum) against dwave-samplers, local-search tours and exact join ordering. Every printed figure is measured
//! in the run that prints it; reads are checked against what was written, and a run that reads
//! wrong data fails instead of reporting.

mod bufferpool;
mod child;
mod commit;
mod dwave;
mod gset_best;
mod joinorder;
mod maxcut;
mod peers;
mod recovery;
mod report;
mod server;
mod sql;
mod storage;
mod system;
mod tsp;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Errors are only reported, never matched on, so any error type will do.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(name = "nq-bench", about = "NeuroQuantumDB benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ours vs redb vs SQLite: batched load, point lookups, 10k-row scans, file size, peak RSS.
    Storage(storage::StorageArgs),
    /// Ours vs redb vs SQLite: durable (fsync) commits per second and latency, 1 to many threads.
    Commit(commit::CommitArgs),
    /// Ours: time to reopen a crashed (SIGKILLed) database with a large log to replay.
    Recovery(recovery::RecoveryArgs),
    /// Ours (nq-node) vs SQLite: durable bulk INSERT, point and index range selects, a join and
    /// a GROUP BY, on the same SQL.
    Sql(sql::SqlArgs),
    /// CLOCK vs SIEVE eviction: Zipf lookups with periodic sequential scans on a small pool.
    Bufferpool(bufferpool::BufferpoolArgs),
    /// Ours (SA, SQA, PT) vs dwave-samplers' simulated annealing: Max-Cut on G-set files.
    Maxcut(maxcut::MaxcutArgs),
    /// TSPLIB tours through the QUBO path (raw and polished) vs a 2-opt + Or-opt tour.
    Tsp(tsp::TspArgs),
    /// Annealed join orders vs the DP optimum (4-12 relations) and the greedy plan (20-50).
    Joinorder(joinorder::JoinorderArgs),
    /// The HTTP API: idle RSS and point-select queries per second at 1 and 64 clients.
    Rest(server::RestArgs),
    /// WebSocket change feeds: N subscribers while one writer commits single-row inserts.
    Ws(server::WsArgs),
    /// Runs `nqdb serve` in this process (started by `rest` and `ws`).
    #[command(hide = true)]
    ServeChild(server::ServeChildArgs),
    /// Runs one engine's `storage` workload in this process (started by `storage`).
    #[command(hide = true)]
    StorageEngine(storage::EngineArgs),
    /// Runs one engine's `commit` workload in this process (started by `commit`).
    #[command(hide = true)]
    CommitEngine(commit::CommitEngineArgs),
    /// Runs one engine's `sql` workload in this process (started by `sql`).
    #[command(hide = true)]
    SqlEngine(sql::SqlEngineArgs),
    /// Writes log until killed (started by `recovery`).
    #[command(hide = true)]
    RecoveryWriter(recovery::RecoveryWriterArgs),
}

/// Sizes rayon's global pool, used by nq-quantum's samplers (0: rayon's default, one thread
/// per core).
pub fn set_threads(threads: usize) -> Result<()> {
    if threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Storage(args) => storage::run(args),
        Command::Rest(args) => server::run_rest(args),
        Command::Ws(args) => server::run_ws(args),
        Command::ServeChild(args) => server::run_child(args),
        Command::Bufferpool(args) => bufferpool::run(args),
        Command::Maxcut(args) => maxcut::run(args),
        Command::Tsp(args) => tsp::run(args),
        Command::Joinorder(args) => joinorder::run(args),
        Command::StorageEngine(args) => storage::run_engine(args),
        Command::Commit(args) => commit::run(args),
        Command::CommitEngine(args) => commit::run_engine(args),
        Command::Sql(args) => sql::run(args),
        Command::SqlEngine(args) => sql::run_engine(args),
        Command::Recovery(args) => recovery::run(args),
        Command::RecoveryWriter(args) => recovery::run_writer(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nq-bench: {err}");
            ExitCode::FAILURE
        }
    }
}
