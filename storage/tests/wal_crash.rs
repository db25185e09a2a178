//! Crash test for the write-ahead log: a child process appends records from several threads and
//! acknowledges each one on stdout only after `flush` returned; the parent kills it with SIGKILL
//! at a random moment, reopens the log and checks that every acknowledged record is there, in
//! order, with exactly the bytes written, and that nothing else is.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nq_storage::wal::{SyncPolicy, Wal, WalConfig};

const CHILD_ENV: &str = "NQ_WAL_CRASH_CHILD_DIR";
const RUN_ENV: &str = "NQ_WAL_CRASH_RUN";

fn config() -> WalConfig {
    WalConfig {
        segment_bytes: 64 * 1024,
        sync: SyncPolicy::Fsync,
    }
}

/// The payload of record `id` written by thread `t` in child run `run`: its identity plus bytes
/// derived from it.
fn payload(run: u64, t: u64, id: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&run.to_le_bytes());
    p.extend_from_slice(&t.to_le_bytes());
    p.extend_from_slice(&id.to_le_bytes());
    p.resize(
        24 + ((run + t * 31 + id * 7) % 200) as usize,
        (id % 251) as u8,
    );
    p
}

/// Runs in the child: appends forever from four threads until killed.
fn child(dir: &str, run: u64) {
    let wal = Wal::open(dir, config()).expect("child opens the log");
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let wal = std::sync::Arc::clone(&wal);
            std::thread::spawn(move || {
                for id in 0.. {
                    let end = wal.append(t as u8, &payload(run, t, id)).unwrap();
                    wal.flush(end).unwrap();
                    // Acknowledged: durable before the line is printed.
                    println!("ack {t} {id}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn test_acknowledged_records_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let run = std::env::var(RUN_ENV).unwrap().parse().unwrap();
        child(&dir, run);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut acked_total = 0;
    let mut acked: HashSet<(u64, u64, u64)> = HashSet::new();
    for round in 0..12u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "test_acknowledged_records_survive_sigkill",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .env(RUN_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(50 + seed % 250);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ack ") {
                    let mut parts = rest.split(' ').map(|p| p.parse::<u64>().unwrap());
                    lines.push((parts.next().unwrap(), parts.next().unwrap()));
                }
            }
            lines
        });
        let began = Instant::now();
        while began.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let new_acks = reader.join().unwrap();
        acked_total += new_acks.len();
        acked.extend(new_acks.into_iter().map(|(t, id)| (round, t, id)));

        // Reopen: every record acknowledged in any run so far is present with its exact bytes,
        // and each thread's records of each run appear in write order without gaps.
        let wal = Wal::open(dir.path(), config()).unwrap();
        let mut present: HashSet<(u64, u64, u64)> = HashSet::new();
        let mut last: std::collections::HashMap<(u64, u64), u64> = Default::default();
        for rec in wal.read_from(0).unwrap() {
            let rec = rec.unwrap();
            let field =
                |i: usize| u64::from_le_bytes(rec.payload[i * 8..i * 8 + 8].try_into().unwrap());
            let (run, t, id) = (field(0), field(1), field(2));
            assert!(
                run <= round && t < 4,
                "round {round}: a record nobody wrote"
            );
            assert_eq!(
                rec.payload,
                payload(run, t, id),
                "round {round}: record bytes changed"
            );
            assert_eq!(u64::from(rec.kind), t);
            let expected = last.get(&(run, t)).map_or(0, |prev| prev + 1);
            assert_eq!(
                id, expected,
                "round {round}: run {run} thread {t} out of order or gapped"
            );
            last.insert((run, t), id);
            assert!(
                present.insert((run, t, id)),
                "round {round}: record repeated"
            );
        }
        for key in &acked {
            assert!(
                present.contains(key),
                "round {round}: acknowledged {key:?} lost"
            );
        }
        drop(wal);
    }
    assert!(
        acked_total > 100,
        "the children acknowledged only {acked_total} records"
    );
}
