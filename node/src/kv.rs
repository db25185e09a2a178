//! The transaction interface the executor reaches data through.
//!
//! The local implementation is the MVCC store's [`Transaction`]; the cluster layer will
//! implement the same trait by routing each call to the shard owning the key, so the planner and
//! executor never change.

use std::any::Any;

use nq_storage::mvcc::Transaction;

use crate::error::Result;

/// A key-value pair.
pub type KvPair = (Vec<u8>, Vec<u8>);
/// A streaming range scan.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<KvPair>> + 'a>;

/// Reads at the transaction's snapshot plus its own writes; writes are buffered until commit.
pub trait KvTxn: Send + std::fmt::Debug {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The keys of `[start, end)` in order (`end = None`: to the end of the key space).
    fn scan<'a>(&'a self, start: &[u8], end: Option<&[u8]>) -> Result<KvIter<'a>>;
    /// Writes `value` under `key`.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Deletes `key`.
    fn delete(&mut self, key: &[u8]) -> Result<()>;
    /// Locks `key` for update (`SELECT ... FOR UPDATE`).
    fn lock_for_update(&mut self, key: &[u8]) -> Result<()>;
    /// The snapshot timestamp.
    fn start_ts(&self) -> u64;
    /// Captures the transaction's writes so far (`SAVEPOINT`).
    fn savepoint(&self) -> Box<dyn Any + Send>;
    /// Discards writes made after `savepoint` was taken.
    fn rollback_to(&mut self, savepoint: &(dyn Any + Send)) -> Result<()>;
    /// Commits; returns the commit timestamp.
    fn commit(self: Box<Self>) -> Result<u64>;
    /// Rolls back.
    fn rollback(self: Box<Self>);
    /// The buffered writes whose key `keep` accepts (value, or `None` for a delete), for
    /// change feeds. Transactions that cannot list them return none, and their commits
    /// produce no change events.
    fn writes(&self, keep: &dyn Fn(&[u8]) -> bool) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let _ = keep;
        Vec::new()
    }
    /// `key` at the snapshot, ignoring the transaction's own writes (the value a write
    /// replaces).
    fn get_snapshot(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(key)
    }
}

impl KvTxn for Transaction {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(Transaction::get(self, key)?)
    }

    fn scan<'a>(&'a self, start: &[u8], end: Option<&[u8]>) -> Result<KvIter<'a>> {
        let it = self.scan_iter(start, end)?;
        Ok(Box::new(it.map(|r| r.map_err(Into::into))))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(Transaction::put(self, key, value)?)
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        Ok(Transaction::delete(self, key)?)
    }

    fn lock_for_update(&mut self, key: &[u8]) -> Result<()> {
        Ok(Transaction::lock_for_update(self, key)?)
    }

    fn start_ts(&self) -> u64 {
        Transaction::start_ts(self)
    }

    fn savepoint(&self) -> Box<dyn Any + Send> {
        Box::new(Transaction::savepoint(self))
    }

    fn rollback_to(&mut self, savepoint: &(dyn Any + Send)) -> Result<()> {
        let sp = savepoint
            .downcast_ref::<nq_storage::mvcc::Savepoint>()
            .ok_or_else(|| {
                crate::SqlError::Transaction("savepoint of another transaction".into())
            })?;
        Ok(Transaction::rollback_to(self, sp)?)
    }

    fn commit(self: Box<Self>) -> Result<u64> {
        Ok(Transaction::commit(*self)?)
    }

    fn rollback(self: Box<Self>) {
        Transaction::rollback(*self);
    }

    fn writes(&self, keep: &dyn Fn(&[u8]) -> bool) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        Transaction::writes(self)
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect()
    }

    fn get_snapshot(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(Transaction::get_snapshot(self, key)?)
    }
}
