//! Crash test of the whole engine: a child process runs four writer threads that commit atomic
//! batches spanning two trees and acknowledge each batch on stdout only after `Database::batch`
//! returned; the parent kills it with SIGKILL at a random moment, reopens the database and checks
//! that every acknowledged batch is there in full in both trees, that no batch is there in part,
//! that the integrity check passes and that the database keeps working. The same directory is
//! used in every round, so each recovery runs on top of the previous ones.
//!
//! Rounds vary the buffer pool (a small one evicts pages mid-batch, so the write-ahead rule is
//! exercised), automatic and explicit checkpoints while writers run, small log segments, and
//! kills during start-up (during recovery or the checkpoint that follows it).
//!
//! Reproduce a failing run with `NQ_ENGINE_CRASH_SEED=<seed>` (the seed is printed); soak with
//! `NQ_ENGINE_CRASH_ROUNDS=<n>`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nq_storage::wal::WalConfig;
use nq_storage::{Database, Options, StorageError, Tree};
use rand::{Rng, SeedableRng};

const TEST_NAME: &str = "test_acknowledged_batches_survive_sigkill_of_the_engine";
const CHILD_DIR_ENV: &str = "NQ_ENGINE_CRASH_CHILD_DIR";
const CHILD_RUN_ENV: &str = "NQ_ENGINE_CRASH_RUN";
const SEED_ENV: &str = "NQ_ENGINE_CRASH_SEED";
const ROUNDS_ENV: &str = "NQ_ENGINE_CRASH_ROUNDS";

/// Rounds by default; more for a soak run with `NQ_ENGINE_CRASH_ROUNDS`.
const ROUNDS: u32 = 25;
/// Writer threads in the child; the parent writes as writer `WRITERS` after each recovery.
const WRITERS: u8 = 4;
const PARENT_WRITER: u8 = WRITERS;
/// Batch `s` deletes batch `s - LAG` of the same writer and run (unless `s % 3 == 0`).
const LAG: u32 = 5;

/// The options of round `round`, for the child and for the parent's reopening.
fn options(round: u32) -> Options {
    let mut options = if round.is_multiple_of(2) {
        common::small_options(4096, 64)
    } else {
        Options::default()
    };
    options.checkpoint_wal_bytes = match round % 3 {
        0 => None,
        _ => Some(64 * 1024),
    };
    if round % 4 == 3 {
        options.wal = WalConfig {
            segment_bytes: 32 * 1024,
            ..WalConfig::default()
        };
    }
    options
}

/// Whether the child also runs a thread calling `Database::checkpoint` in a loop.
fn explicit_checkpoints(round: u32) -> bool {
    round % 3 == 2
}

/// Whether the kill comes at a random moment after start (possibly during recovery) instead of
/// a random moment after the child reported it is writing.
fn kill_during_startup(round: u32) -> bool {
    round % 6 == 5
}

// ---------------------------------------------------------------------------------------------
// The batches
// ---------------------------------------------------------------------------------------------

/// One batch's identity: writer, run (round), sequence number within the writer and run.
type BatchId = (u8, u32, u32);

fn batch_key(id: BatchId) -> Vec<u8> {
    let (w, r, s) = id;
    let mut k = vec![b'b', w];
    k.extend_from_slice(&r.to_be_bytes());
    k.extend_from_slice(&s.to_be_bytes());
    k
}

fn data_key(id: BatchId, j: u8) -> Vec<u8> {
    let mut k = batch_key(id);
    k.push(j);
    k
}

fn counter_key(w: u8) -> Vec<u8> {
    vec![b'c', w]
}

fn counter_value(r: u32, s: u32) -> Vec<u8> {
    let mut v = r.to_be_bytes().to_vec();
    v.extend_from_slice(&s.to_be_bytes());
    v
}

/// Number of data keys batch `s` inserts.
fn keys_in(s: u32) -> u8 {
    1 + (s % 4) as u8
}

/// Whether batch `s` deletes batch `s - LAG`.
fn deletes_lagging(s: u32) -> bool {
    s >= LAG && !s.is_multiple_of(3)
}

fn mix(id: BatchId, j: u8) -> u64 {
    let (w, r, s) = id;
    let mut h = (u64::from(w) << 56) ^ (u64::from(r) << 32) ^ u64::from(s) ^ (u64::from(j) << 48);
    h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// The value of data key `j` of batch `id`: mostly small, sometimes larger than a page (an
/// overflow chain).
fn data_value(id: BatchId, j: u8) -> Vec<u8> {
    let h = mix(id, j);
    let len = if h.is_multiple_of(29) {
        5_000 + (h % 3_000) as usize
    } else {
        16 + (h % 200) as usize
    };
    (0..len)
        .map(|i| (h >> (i % 8 * 8)) as u8 ^ i as u8)
        .collect()
}

fn index_value(id: BatchId) -> Vec<u8> {
    let mut v = vec![keys_in(id.2)];
    v.extend_from_slice(&mix(id, 255).to_le_bytes());
    v
}

/// Writes batch `id` (to be run inside `Database::batch`): its data keys, its index entry, the
/// writer's counter in both trees, and the deletion of an earlier batch in both trees.
fn write_batch(data: &Tree, index: &Tree, id: BatchId) -> nq_storage::Result<()> {
    let (w, r, s) = id;
    for j in 0..keys_in(s) {
        data.insert(&data_key(id, j), &data_value(id, j))?;
    }
    index.insert(&batch_key(id), &index_value(id))?;
    data.insert(&counter_key(w), &counter_value(r, s))?;
    index.insert(&counter_key(w), &counter_value(r, s))?;
    if deletes_lagging(s) {
        let old = (w, r, s - LAG);
        for j in 0..keys_in(old.2) {
            if !data.delete(&data_key(old, j))? {
                return Err(StorageError::Integrity(format!(
                    "batch {id:?}: data key {j} of batch {old:?} is missing"
                )));
            }
        }
        if !index.delete(&batch_key(old))? {
            return Err(StorageError::Integrity(format!(
                "batch {id:?}: index entry of batch {old:?} is missing"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------------------------

/// Reports an error to the parent and dies; the parent fails on any `error` line.
fn die(what: &str, err: impl std::fmt::Display) -> ! {
    println!("error {what}: {err}");
    std::process::abort();
}

fn open_trees(db: &Database) -> nq_storage::Result<(Tree, Tree)> {
    db.batch(|| Ok((db.tree("data")?, db.tree("index")?)))
}

/// Runs in the child: writes until killed.
fn child(dir: &Path, run: u32) {
    let db = Database::open_or_create(common::db_path(dir), &options(run))
        .unwrap_or_else(|e| die("open", e));
    let (data, index) = open_trees(&db).unwrap_or_else(|e| die("trees", e));
    println!("ready");
    let mut threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, data, index) = (db.clone(), data.clone(), index.clone());
            std::thread::spawn(move || {
                for s in 0.. {
                    db.batch(|| write_batch(&data, &index, (w, run, s)))
                        .unwrap_or_else(|e| die(&format!("batch {:?}", (w, run, s)), e));
                    // Acknowledged: durable before the line is printed.
                    println!("ack {w} {s}");
                }
            })
        })
        .collect();
    if explicit_checkpoints(run) {
        let db = db.clone();
        threads.push(std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(run));
            loop {
                std::thread::sleep(Duration::from_millis(rng.random_range(2..30)));
                db.checkpoint().unwrap_or_else(|e| die("checkpoint", e));
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------------------------

enum Line {
    Ready,
    Ack(u8, u32),
    Error(String),
}

/// The child process, killed when dropped (also when the parent panics).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(exe: &Path, dir: &Path, run: u32) -> (KillOnDrop, mpsc::Receiver<Line>) {
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_RUN_ENV, run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The test harness may print its "test <name> ... " on the same line.
            let parsed = if line.ends_with("ready") {
                Line::Ready
            } else if let Some(rest) = line.strip_prefix("ack ") {
                let (w, s) = rest.split_once(' ').unwrap();
                Line::Ack(w.parse().unwrap(), s.parse().unwrap())
            } else if line.starts_with("error") {
                Line::Error(line)
            } else {
                continue;
            };
            if tx.send(parsed).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// What the parent knows of the history: per (writer, run), how many batches the writer
/// committed, once established by a verification; and the acknowledgements of the current run.
#[derive(Default)]
struct History {
    /// Established batch counts of finished runs (and of the parent's writes).
    known: BTreeMap<(u8, u32), u32>,
}

/// The batches of (writer, run) present after the first `n` were committed.
fn expected_present(n: u32) -> BTreeSet<u32> {
    let mut present: BTreeSet<u32> = (0..n).collect();
    for s in 0..n {
        if deletes_lagging(s) {
            present.remove(&(s - LAG));
        }
    }
    present
}

fn parse_batch_key(key: &[u8]) -> Option<(BatchId, Option<u8>)> {
    if key.first() != Some(&b'b') || !(key.len() == 10 || key.len() == 11) {
        return None;
    }
    let w = key[1];
    let r = u32::from_be_bytes(key[2..6].try_into().unwrap());
    let s = u32::from_be_bytes(key[6..10].try_into().unwrap());
    Some(((w, r, s), key.get(10).copied()))
}

/// A writer's counter as found in the data tree and in the index tree.
type Counters = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What is in the two trees, checked entry by entry against the values batches write.
struct Contents {
    /// Batches with an index entry.
    indexed: BTreeMap<(u8, u32), BTreeSet<u32>>,
    /// Data keys present, per batch.
    data: BTreeMap<BatchId, BTreeSet<u8>>,
    /// Counters per writer: (data tree, index tree).
    counters: BTreeMap<u8, Counters>,
}

fn read_contents(ctx: &str, data: &Tree, index: &Tree) -> Contents {
    let mut contents = Contents {
        indexed: BTreeMap::new(),
        data: BTreeMap::new(),
        counters: BTreeMap::new(),
    };
    for entry in index.iter() {
        let (key, value) = entry.unwrap_or_else(|e| panic!("{ctx}: reading the index: {e}"));
        if let [b'c', w] = key[..] {
            contents.counters.entry(w).or_default().1 = Some(value);
            continue;
        }
        let Some((id, None)) = parse_batch_key(&key) else {
            panic!("{ctx}: unexpected index key {key:?}");
        };
        assert_eq!(value, index_value(id), "{ctx}: index value of {id:?}");
        contents
            .indexed
            .entry((id.0, id.1))
            .or_default()
            .insert(id.2);
    }
    for entry in data.iter() {
        let (key, value) = entry.unwrap_or_else(|e| panic!("{ctx}: reading the data: {e}"));
        if let [b'c', w] = key[..] {
            contents.counters.entry(w).or_default().0 = Some(value);
            continue;
        }
        let Some((id, Some(j))) = parse_batch_key(&key) else {
            panic!("{ctx}: unexpected data key {key:?}");
        };
        assert!(
            value == data_value(id, j),
            "{ctx}: data value {j} of {id:?} differs ({} bytes)",
            value.len()
        );
        contents.data.entry(id).or_default().insert(j);
    }
    contents
}

/// Checks the database against the history. `current` is the run just crashed with its
/// acknowledged batch counts per writer (`None` when only re-checking established counts).
/// Returns the batch counts found for the current run.
fn verify(
    ctx: &str,
    db: &Database,
    history: &History,
    current: Option<(u32, &HashMap<u8, u32>)>,
) -> BTreeMap<(u8, u32), u32> {
    let trees = (db.open_tree("data"), db.open_tree("index"));
    let (data, index) = match trees {
        (Ok(data), Ok(index)) => (data, index),
        (Err(StorageError::TreeNotFound(_)), _) | (_, Err(StorageError::TreeNotFound(_))) => {
            let acked = current.is_some_and(|(_, acks)| acks.values().any(|&n| n > 0));
            assert!(
                history.known.values().all(|&n| n == 0) && !acked,
                "{ctx}: the trees are missing although batches were acknowledged"
            );
            db.check_integrity()
                .unwrap_or_else(|e| panic!("{ctx}: integrity: {e}"));
            return BTreeMap::new();
        }
        (Err(e), _) | (_, Err(e)) => panic!("{ctx}: opening the trees: {e}"),
    };
    let contents = read_contents(ctx, &data, &index);

    // The number of batches each (writer, run) committed: one past the highest present (the
    // last batch is never deleted), the same in both trees.
    let mut found: BTreeMap<(u8, u32), u32> = BTreeMap::new();
    for (&wr, seqs) in &contents.indexed {
        found.insert(wr, seqs.last().unwrap() + 1);
    }
    let mut found_data: BTreeMap<(u8, u32), u32> = BTreeMap::new();
    for &(w, r, s) in contents.data.keys() {
        let n = found_data.entry((w, r)).or_default();
        *n = (*n).max(s + 1);
    }
    assert_eq!(
        found, found_data,
        "{ctx}: the trees disagree on the last batch of some writer"
    );

    // Established counts do not change; the current run lies between what was acknowledged
    // and one more (the batch in flight).
    let mut all: BTreeSet<(u8, u32)> = found.keys().copied().collect();
    all.extend(history.known.keys().copied());
    let mut current_counts = BTreeMap::new();
    for &(w, r) in &all {
        let n = found.get(&(w, r)).copied().unwrap_or(0);
        match (history.known.get(&(w, r)), current) {
            (Some(&known), _) => assert_eq!(
                n, known,
                "{ctx}: writer {w} run {r} had {known} batches, now {n}"
            ),
            (None, Some((run, acks))) if r == run && w < WRITERS => {
                let acked = acks.get(&w).copied().unwrap_or(0);
                assert!(
                    n == acked || n == acked + 1,
                    "{ctx}: writer {w} run {r}: {acked} batches acknowledged, {n} present"
                );
                current_counts.insert((w, r), n);
            }
            (None, _) => panic!("{ctx}: batches of writer {w} run {r} nobody wrote ({n})"),
        }
    }
    if let Some((run, acks)) = current {
        for w in 0..WRITERS {
            current_counts.entry((w, run)).or_insert_with(|| {
                assert_eq!(
                    acks.get(&w).copied().unwrap_or(0),
                    0,
                    "{ctx}: writer {w} lost"
                );
                0
            });
        }
    }

    // Exactly the batches that should be there, each one whole in both trees.
    for (&(w, r), &n) in history.known.iter().chain(current_counts.iter()) {
        let present = expected_present(n);
        let indexed = contents.indexed.get(&(w, r)).cloned().unwrap_or_default();
        assert_eq!(
            indexed, present,
            "{ctx}: writer {w} run {r} ({n} batches): index entries differ"
        );
        for s in 0..n {
            let keys = contents.data.get(&(w, r, s)).cloned().unwrap_or_default();
            let expected: BTreeSet<u8> = if present.contains(&s) {
                (0..keys_in(s)).collect()
            } else {
                BTreeSet::new()
            };
            assert_eq!(
                keys, expected,
                "{ctx}: writer {w} run {r} batch {s}: partial or stale data keys"
            );
        }
    }

    // Each writer's counter names its last batch, identically in both trees.
    let counts: BTreeMap<(u8, u32), u32> = history
        .known
        .iter()
        .chain(current_counts.iter())
        .map(|(&k, &v)| (k, v))
        .collect();
    for w in 0..=PARENT_WRITER {
        let last = counts
            .iter()
            .filter(|&(&(cw, _), &n)| cw == w && n > 0)
            .map(|(&(_, r), &n)| (r, n - 1))
            .max();
        let expected = last.map(|(r, s)| counter_value(r, s));
        let (in_data, in_index) = contents.counters.get(&w).cloned().unwrap_or_default();
        assert_eq!(in_data, expected, "{ctx}: writer {w}'s counter in data");
        assert_eq!(in_index, expected, "{ctx}: writer {w}'s counter in index");
    }

    let report = db
        .check_integrity()
        .unwrap_or_else(|e| panic!("{ctx}: integrity: {e}"));
    let entries: usize = contents.data.values().map(BTreeSet::len).sum::<usize>()
        + contents.indexed.values().map(BTreeSet::len).sum::<usize>()
        + contents
            .counters
            .values()
            .map(|(d, i)| usize::from(d.is_some()) + usize::from(i.is_some()))
            .sum::<usize>();
    assert_eq!(
        (report.trees, report.entries),
        (2, entries as u64),
        "{ctx}: integrity check counted other trees or entries"
    );
    current_counts
}

/// Collects lines until the child is killed; returns the acknowledged batch count per writer.
fn drain(ctx: &str, rx: &mpsc::Receiver<Line>) -> HashMap<u8, u32> {
    let mut acks: HashMap<u8, u32> = HashMap::new();
    for line in rx.iter() {
        match line {
            Line::Ready => {}
            Line::Ack(w, s) => {
                let n = acks.entry(w).or_default();
                assert_eq!(s, *n, "{ctx}: writer {w} acknowledged out of order");
                *n += 1;
            }
            Line::Error(e) => panic!("{ctx}: the child failed: {e}"),
        }
    }
    acks
}

#[test]
fn test_acknowledged_batches_survive_sigkill_of_the_engine() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        let run = std::env::var(CHILD_RUN_ENV).unwrap().parse().unwrap();
        child(Path::new(&dir), run);
        return;
    }
    let seed: u64 = std::env::var(SEED_ENV)
        .map(|s| s.parse().expect("seed is a number"))
        .unwrap_or(0x5EED_CAFE);
    let rounds: u32 = std::env::var(ROUNDS_ENV)
        .map(|s| s.parse().expect("rounds is a number"))
        .unwrap_or(ROUNDS);
    println!("engine crash test seed {seed}, {rounds} rounds (set {SEED_ENV}, {ROUNDS_ENV})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let began = Instant::now();
    let mut history = History::default();
    let mut acked_total = 0u64;
    let mut in_flight_survived = 0;
    let mut replayed_rounds = 0;
    for round in 0..rounds {
        let (mut child, rx) = spawn_child(&exe, dir.path(), round);
        let startup_kill = kill_during_startup(round);
        let delay = if startup_kill {
            Duration::from_millis(rng.random_range(0..80))
        } else {
            // Wait until the child has opened (and recovered) the database.
            let ready = Instant::now();
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Line::Ready) => {}
                Ok(Line::Error(e)) => panic!("round {round}: the child failed: {e}"),
                Ok(Line::Ack(..)) => unreachable!("acknowledgement before ready"),
                Err(e) => panic!(
                    "round {round}: the child did not get ready in {:?}: {e}",
                    ready.elapsed()
                ),
            }
            Duration::from_millis(rng.random_range(20..=300))
        };
        std::thread::sleep(delay);
        if let Some(status) = child.0.try_wait().unwrap() {
            let acks = drain(&format!("round {round}"), &rx);
            panic!("round {round}: the child exited by itself ({status}) after {acks:?}");
        }
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        let ctx = format!(
            "seed {seed} round {round} ({} kill after {delay:?})",
            if startup_kill { "start-up" } else { "load" }
        );
        let acks = drain(&ctx, &rx);
        acked_total += acks.values().map(|&n| u64::from(n)).sum::<u64>();

        // Recover with this round's options and check.
        let opts = options(round + 1);
        let db = Database::open(common::db_path(dir.path()), &opts)
            .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        replayed_rounds += usize::from(db.recovery_report().records > 0);
        let counts = verify(&ctx, &db, &history, Some((round, &acks)));
        for (&(w, r), &n) in &counts {
            let acked = acks.get(&w).copied().unwrap_or(0);
            in_flight_survived += usize::from(n > acked);
            history.known.insert((w, r), n);
        }

        // The database keeps working: write more, close, reopen, check again.
        let (data, index) = open_trees(&db).unwrap_or_else(|e| panic!("{ctx}: trees: {e}"));
        let more = rng.random_range(1..=12);
        for s in 0..more {
            db.batch(|| write_batch(&data, &index, (PARENT_WRITER, round, s)))
                .unwrap_or_else(|e| panic!("{ctx}: writing after recovery: {e}"));
        }
        history.known.insert((PARENT_WRITER, round), more);
        drop((data, index));
        db.check_integrity()
            .unwrap_or_else(|e| panic!("{ctx}: integrity after writing: {e}"));
        db.close()
            .unwrap_or_else(|e| panic!("{ctx}: close after writing: {e}"));
        let db = Database::open(common::db_path(dir.path()), &opts)
            .unwrap_or_else(|e| panic!("{ctx}: reopening after writing: {e}"));
        verify(&format!("{ctx}, reopened"), &db, &history, None);
        db.close().unwrap();
    }
    println!(
        "{rounds} rounds in {:?}: {acked_total} batches acknowledged, {in_flight_survived} \
         unacknowledged batches survived, {replayed_rounds} recoveries replayed the log",
        began.elapsed()
    );
    assert!(
        acked_total > 200,
        "the children acknowledged only {acked_total} batches"
    );
}
