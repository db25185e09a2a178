//! Pessimistic key locks with waiting, timeouts and deadlock detection.
//!
//! Locks live in memory only: they protect transactions that are running on this node, and a
//! crash ends those transactions anyway. A transaction that finds a key locked records the edge
//! "waiter -> holder" in a wait-for graph and sleeps until the holder releases its locks or the
//! timeout passes. Before it waits it follows the holder's own edges; if the chain leads back to
//! itself, waiting would never end, so the requester becomes the victim and gets
//! [`StorageError::Deadlock`]. Each transaction waits for at most one lock at a time, so the
//! graph is a set of chains and the walk is linear.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Result, StorageError};

#[derive(Default)]
struct State {
    /// Key -> holding transaction.
    owners: HashMap<Vec<u8>, u64>,
    /// Transaction -> keys it holds.
    held: HashMap<u64, Vec<Vec<u8>>>,
    /// Waiting transaction -> transaction it waits for.
    waits_for: HashMap<u64, u64>,
}

/// How an acquisition went, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    /// Time spent waiting (zero if the lock was free).
    pub waited: Duration,
}

/// The lock table.
#[derive(Default)]
pub struct LockManager {
    state: Mutex<State>,
    released: Condvar,
}

impl LockManager {
    /// Locks `key` for transaction `txn`, waiting up to `timeout` for its holder.
    pub fn acquire(&self, key: &[u8], txn: u64, timeout: Duration) -> Result<Acquired> {
        let began = Instant::now();
        let deadline = began + timeout;
        let mut st = self.state.lock();
        loop {
            let holder = match st.owners.get(key) {
                None => {
                    st.owners.insert(key.to_vec(), txn);
                    st.held.entry(txn).or_default().push(key.to_vec());
                    st.waits_for.remove(&txn);
                    return Ok(Acquired {
                        waited: began.elapsed(),
                    });
                }
                Some(&holder) if holder == txn => {
                    return Ok(Acquired {
                        waited: began.elapsed(),
                    });
                }
                Some(&holder) => holder,
            };
            if closes_cycle(&st.waits_for, txn, holder) {
                st.waits_for.remove(&txn);
                return Err(StorageError::Deadlock {
                    txn,
                    holder,
                    key: key.to_vec(),
                });
            }
            st.waits_for.insert(txn, holder);
            if self.released.wait_until(&mut st, deadline).timed_out()
                && st.owners.get(key).is_some_and(|&h| h != txn)
            {
                st.waits_for.remove(&txn);
                return Err(StorageError::LockTimeout {
                    key: key.to_vec(),
                    holder,
                    waited_ms: began.elapsed().as_millis() as u64,
                });
            }
        }
    }

    /// Releases every lock of `txn` and wakes the waiters.
    pub fn release_all(&self, txn: u64) {
        let mut st = self.state.lock();
        st.waits_for.remove(&txn);
        if let Some(keys) = st.held.remove(&txn) {
            for key in keys {
                st.owners.remove(&key);
            }
            drop(st);
            self.released.notify_all();
        }
    }

    /// The transaction holding `key`, if any.
    #[cfg(test)]
    pub fn holder(&self, key: &[u8]) -> Option<u64> {
        self.state.lock().owners.get(key).copied()
    }
}

/// True if `holder` (transitively) waits for `txn`.
fn closes_cycle(waits_for: &HashMap<u64, u64>, txn: u64, holder: u64) -> bool {
    let mut at = holder;
    for _ in 0..=waits_for.len() {
        if at == txn {
            return true;
        }
        match waits_for.get(&at) {
            Some(&next) => at = next,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn test_two_transactions_crossing_locks_deadlock_and_one_is_the_victim() {
        let locks = Arc::new(LockManager::default());
        let t = Duration::from_secs(5);
        locks.acquire(b"a", 1, t).unwrap();
        locks.acquire(b"b", 2, t).unwrap();
        let l2 = Arc::clone(&locks);
        let waiter = std::thread::spawn(move || {
            let r = l2.acquire(b"a", 2, t);
            l2.release_all(2);
            r
        });
        // Give transaction 2 time to start waiting for "a".
        while locks.state.lock().waits_for.get(&2) != Some(&1) {
            std::thread::yield_now();
        }
        let err = locks.acquire(b"b", 1, t).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Deadlock {
                    txn: 1,
                    holder: 2,
                    ..
                }
            ),
            "{err}"
        );
        locks.release_all(1);
        assert!(waiter.join().unwrap().unwrap().waited > Duration::ZERO);
    }

    #[test]
    fn test_wait_times_out_with_a_clear_error() {
        let locks = LockManager::default();
        locks.acquire(b"k", 1, Duration::from_secs(1)).unwrap();
        let err = locks
            .acquire(b"k", 2, Duration::from_millis(30))
            .unwrap_err();
        assert!(
            matches!(err, StorageError::LockTimeout { holder: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("lock wait timeout"), "{err}");
        locks.release_all(1);
        locks.acquire(b"k", 2, Duration::from_millis(30)).unwrap();
        assert_eq!(locks.holder(b"k"), Some(2));
    }
}
