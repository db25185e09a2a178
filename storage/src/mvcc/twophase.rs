//! Percolator-style primitives for transactions that span shards.
//!
//! The coordinator (the cluster layer) picks one key as the *primary*. Phase one,
//! [`MvccStore::prewrite`], writes a durable lock (with the value) on every key of the
//! transaction, on every shard, after checking for conflicts. Phase two commits the primary
//! first ([`MvccStore::commit_keys`]); that single write is the commit point of the whole
//! transaction. Secondaries are committed afterwards, or, if the coordinator dies, by whoever
//! meets their locks: [`MvccStore::resolve_lock`] asks the primary
//! ([`MvccStore::check_txn_status`]) and commits or rolls back the secondary to match. A lock
//! whose TTL ran out while its primary is still locked is rolled back, so an abandoned
//! transaction never blocks others for longer than its TTL.
//!
//! Every step is idempotent, because the coordinator retries after timeouts.

use crate::error::{Result, StorageError};

use super::keys::{self, LockRecord, WriteKind, WriteRecord, version_key, versions_prefix};
use super::{LOCAL_TTL, MvccStore, now_ms};

/// One key's change in a two-phase transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Write a value.
    Put(Vec<u8>, Vec<u8>),
    /// Delete the key.
    Delete(Vec<u8>),
    /// Lock the key without changing it.
    Lock(Vec<u8>),
}

impl Mutation {
    fn key(&self) -> &[u8] {
        match self {
            Mutation::Put(k, _) | Mutation::Delete(k) | Mutation::Lock(k) => k,
        }
    }
}

/// What a transaction's primary key says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// Committed at this timestamp.
    Committed(u64),
    /// Rolled back (or never prewritten, and now marked rolled back).
    RolledBack,
    /// Still prewritten and within its TTL: the coordinator may yet commit it.
    Locked {
        /// Milliseconds until the lock expires.
        ttl_left_ms: u64,
    },
}

impl MvccStore {
    /// Phase one: locks every key for the transaction starting at `start_ts` with `primary` as
    /// its primary key. Fails without writing anything if a key is locked by another
    /// transaction ([`StorageError::KeyLocked`]), has a version committed after `start_ts`
    /// ([`StorageError::WriteConflict`]), or the transaction was already rolled back.
    /// Prewriting the same key twice for the same transaction is a no-op.
    pub fn prewrite(
        &self,
        mutations: &[Mutation],
        primary: &[u8],
        start_ts: u64,
        ttl_ms: u64,
    ) -> Result<()> {
        self.observe_timestamp(start_ts);
        let shared = &self.shared;
        let created_ms = now_ms();
        shared.db.batch(|| {
            for m in mutations {
                let key = m.key();
                if let Some(raw) = shared.lock.get(key)? {
                    let lock = LockRecord::decode(&raw)?;
                    if lock.start_ts == start_ts {
                        continue;
                    }
                    return Err(StorageError::KeyLocked {
                        key: key.to_vec(),
                        lock_ts: lock.start_ts,
                        primary: lock.primary,
                    });
                }
                if let Some(found) = self.record_of(key, start_ts)? {
                    return Err(StorageError::TxnState {
                        start_ts,
                        reason: match found.1 {
                            WriteKind::Rollback => "already rolled back".into(),
                            _ => format!("already committed at {}", found.0),
                        },
                    });
                }
                if let Some(ts) = self.latest_commit_ts(key)?
                    && ts >= start_ts
                {
                    return Err(StorageError::WriteConflict {
                        key: key.to_vec(),
                        start_ts,
                        conflict_ts: ts,
                    });
                }
                let (kind, value) = match m {
                    Mutation::Put(_, v) => (WriteKind::Put, v.clone()),
                    Mutation::Delete(_) => (WriteKind::Delete, Vec::new()),
                    Mutation::Lock(_) => (WriteKind::Lock, Vec::new()),
                };
                let lock = LockRecord {
                    kind,
                    start_ts,
                    ttl_ms,
                    created_ms,
                    primary: primary.to_vec(),
                    value,
                };
                shared.lock.insert(key, &lock.encode())?;
            }
            Ok(())
        })
    }

    /// Phase two: turns the locks of `start_ts` on `keys` into versions committed at
    /// `commit_ts`. Committing a key already committed by this transaction is a no-op;
    /// committing one whose lock is gone without a commit (rolled back) is an error.
    pub fn commit_keys(&self, keys: &[Vec<u8>], start_ts: u64, commit_ts: u64) -> Result<()> {
        if commit_ts <= start_ts {
            return Err(StorageError::TxnState {
                start_ts,
                reason: format!("commit timestamp {commit_ts} is not after the start"),
            });
        }
        self.observe_timestamp(commit_ts);
        let shared = &self.shared;
        shared.db.batch(|| {
            for key in keys {
                self.commit_one(key, start_ts, commit_ts)?;
            }
            self.persist_ts(commit_ts)
        })?;
        self.publish(commit_ts);
        Ok(())
    }

    fn commit_one(&self, key: &[u8], start_ts: u64, commit_ts: u64) -> Result<()> {
        let shared = &self.shared;
        if let Some(raw) = shared.lock.get(key)? {
            let lock = LockRecord::decode(&raw)?;
            if lock.start_ts == start_ts {
                // A lock-only key gets a `Lock` record: no data change, but proof that the
                // transaction committed, for retries and status checks.
                let record = WriteRecord::encode(lock.kind, start_ts, commit_ts, &lock.value)?;
                shared.write.insert(&version_key(key, commit_ts), &record)?;
                shared.lock.delete(key)?;
                return Ok(());
            }
        }
        match self.record_of(key, start_ts)? {
            Some((_, kind)) if kind != WriteKind::Rollback => Ok(()),
            Some(_) => Err(StorageError::TxnState {
                start_ts,
                reason: "cannot commit: the transaction was rolled back".into(),
            }),
            None => Err(StorageError::TxnState {
                start_ts,
                reason:
                    "cannot commit: no lock and no record of this transaction (never prewritten)"
                        .into(),
            }),
        }
    }

    /// Rolls back the transaction `start_ts` on `keys`: removes its locks and leaves a rollback
    /// marker so a delayed prewrite cannot resurrect it. Fails if a key was already committed.
    pub fn rollback_keys(&self, keys: &[Vec<u8>], start_ts: u64) -> Result<()> {
        self.shared.db.batch(|| {
            for key in keys {
                self.rollback_one(key, start_ts)?;
            }
            Ok(())
        })
    }

    fn rollback_one(&self, key: &[u8], start_ts: u64) -> Result<()> {
        let shared = &self.shared;
        if let Some(raw) = shared.lock.get(key)? {
            let lock = LockRecord::decode(&raw)?;
            if lock.start_ts == start_ts {
                shared.lock.delete(key)?;
            }
        }
        match self.record_of(key, start_ts)? {
            Some((commit_ts, kind)) if kind != WriteKind::Rollback => Err(StorageError::TxnState {
                start_ts,
                reason: format!("already committed at {commit_ts}, cannot roll back"),
            }),
            Some(_) => Ok(()),
            None => {
                let marker = WriteRecord::encode(WriteKind::Rollback, start_ts, start_ts, &[])?;
                shared
                    .write
                    .insert(&version_key(key, start_ts), &marker)
                    .map(|_| ())
            }
        }
    }

    /// The fate of the transaction `start_ts` according to its primary key. An expired lock is
    /// rolled back here; a primary with neither lock nor record gets a rollback marker (the
    /// prewrite never arrived, and now never will).
    pub fn check_txn_status(&self, primary: &[u8], start_ts: u64) -> Result<TxnStatus> {
        let shared = &self.shared;
        if let Some(raw) = shared.lock.get(primary)? {
            let lock = LockRecord::decode(&raw)?;
            if lock.start_ts == start_ts {
                let expires = lock.created_ms.saturating_add(lock.ttl_ms);
                let now = now_ms();
                if now < expires {
                    return Ok(TxnStatus::Locked {
                        ttl_left_ms: expires - now,
                    });
                }
                self.rollback_keys(&[primary.to_vec()], start_ts)?;
                return Ok(TxnStatus::RolledBack);
            }
        }
        match self.record_of(primary, start_ts)? {
            Some((_, WriteKind::Rollback)) => Ok(TxnStatus::RolledBack),
            Some((commit_ts, _)) => Ok(TxnStatus::Committed(commit_ts)),
            None => {
                self.rollback_keys(&[primary.to_vec()], start_ts)?;
                Ok(TxnStatus::RolledBack)
            }
        }
    }

    /// Resolves the prewrite lock on `key` (left by a coordinator that may have died): commits
    /// or rolls it back to match its primary. Returns the status found, or `None` if the key is
    /// not locked. A lock whose primary is still alive is left alone.
    pub fn resolve_lock(&self, key: &[u8]) -> Result<Option<TxnStatus>> {
        let Some(raw) = self.shared.lock.get(key)? else {
            return Ok(None);
        };
        let lock = LockRecord::decode(&raw)?;
        let status = self.check_txn_status(&lock.primary, lock.start_ts)?;
        match status {
            TxnStatus::Committed(commit_ts) => {
                self.commit_keys(&[key.to_vec()], lock.start_ts, commit_ts)?;
            }
            TxnStatus::RolledBack => self.rollback_keys(&[key.to_vec()], lock.start_ts)?,
            TxnStatus::Locked { .. } => {}
        }
        Ok(Some(status))
    }

    /// The commit timestamp of transaction `start_ts` if its record on `key` says committed.
    pub(super) fn committed_at(&self, key: &[u8], start_ts: u64) -> Result<Option<u64>> {
        Ok(match self.record_of(key, start_ts)? {
            Some((commit_ts, kind)) if kind != WriteKind::Rollback => Some(commit_ts),
            _ => None,
        })
    }

    /// The undo pass after a restart: every lock of a large local transaction belongs to a
    /// process that is gone. Keys of transactions whose primary committed are committed; the
    /// rest (the crash came before the commit point) are rolled back.
    pub(super) fn recover_local_locks(&self) -> Result<()> {
        let mut orphans = Vec::new();
        for entry in self.shared.lock.iter() {
            let (key, raw) = entry?;
            let lock = LockRecord::decode(&raw)?;
            if lock.ttl_ms == LOCAL_TTL {
                orphans.push((key, lock));
            }
        }
        if !orphans.is_empty() {
            tracing::info!(
                locks = orphans.len(),
                "resolving locks of interrupted transactions"
            );
        }
        for (key, lock) in orphans {
            match self.committed_at(&lock.primary, lock.start_ts)? {
                Some(commit_ts) => self.commit_keys(&[key], lock.start_ts, commit_ts)?,
                None => self.rollback_keys(&[key], lock.start_ts)?,
            }
        }
        Ok(())
    }

    /// The commit timestamp and kind of the write record the transaction `start_ts` left on
    /// `key` (its commit, or its rollback marker). Scans the key's versions newer than
    /// `start_ts`, decoding only their headers.
    fn record_of(&self, key: &[u8], start_ts: u64) -> Result<Option<(u64, WriteKind)>> {
        let prefix = versions_prefix(key);
        let mut range = self.shared.write.prefix(&prefix);
        while let Some(entry) = range.next_ref() {
            let (k, v) = entry?;
            let commit_ts = keys::version_ts(k)?;
            if commit_ts < start_ts {
                break;
            }
            let (kind, record_start) = keys::record_start(v, commit_ts)?;
            if record_start == start_ts {
                return Ok(Some((commit_ts, kind)));
            }
        }
        Ok(None)
    }
}
