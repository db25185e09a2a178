//! The transaction interface the executor reaches data through.
//!
//! The local implementation is the MVCC store's [`Transaction`]; the cluster layer will
//! implement the same trait by routing each call to the shard owning the key, so the planner and
//! executor never change.

use std::any::Any;

use nq_storage::mvcc::{ScanKey, Transaction};

use crate::error::Result;
use crate::exec::{Row, RowIter};

/// A key-value pair.
pub type KvPair = (Vec<u8>, Vec<u8>);
/// A streaming range scan.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<KvPair>> + 'a>;
/// Turns a stored value into a row, given its key in the form the scan holds it (decoded
/// only if the decoder needs it; see [`KvTxn::scan_values`]).
pub type ValueDecoder<'a> = Box<dyn FnMut(ScanKey<'_>, &[u8]) -> Result<Row> + 'a>;

/// Reads at the transaction's snapshot plus its own writes; writes are buffered until commit.
pub trait KvTxn: Send + std::fmt::Debug {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The values under `keys`, in the same order (`None` where a key has no value); the same
    /// answers as [`KvTxn::get`] per key, own writes included. Implementations read the keys
    /// in one pass (the local store sorts them and walks its tree once; a cluster groups them
    /// by shard), so callers with many keys at hand should prefer this to a loop of `get`s.
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    /// [`KvTxn::multi_get`] without handing values out: `found(i, value)` is called with the
    /// value of each `keys[i]` that has one, in no particular order (keys without a value are
    /// skipped). The local store passes each value where it lies in the page, so a caller that
    /// decodes values (rows behind an index) copies none of them.
    fn multi_get_with(&self, keys: &[&[u8]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        for (i, value) in self.multi_get(&keys)?.into_iter().enumerate() {
            if let Some(value) = value {
                found(i, &value);
            }
        }
        Ok(())
    }
    /// The keys of `[start, end)` in order (`end = None`: to the end of the key space).
    fn scan<'a>(&'a self, start: &[u8], end: Option<&[u8]>) -> Result<KvIter<'a>>;
    /// The values of `[start, end)` in key order through `decode`, without their keys. The
    /// local store hands `decode` each value where it lies, so a full-table scan copies
    /// neither keys nor values.
    fn scan_values<'a>(
        &'a self,
        start: &[u8],
        end: Option<&[u8]>,
        mut decode: ValueDecoder<'a>,
    ) -> Result<RowIter<'a>> {
        Ok(Box::new(self.scan(start, end)?.map(move |r| {
            r.and_then(|(k, v)| decode(ScanKey::plain(&k), &v))
        })))
    }
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

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(Transaction::get_many(self, keys)?)
    }

    fn multi_get_with(&self, keys: &[&[u8]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        Ok(Transaction::get_many_with(self, keys, |i, v| {
            found(i, v);
            Ok(())
        })?)
    }

    fn scan<'a>(&'a self, start: &[u8], end: Option<&[u8]>) -> Result<KvIter<'a>> {
        let it = self.scan_iter(start, end)?;
        Ok(Box::new(it.map(|r| r.map_err(Into::into))))
    }

    fn scan_values<'a>(
        &'a self,
        start: &[u8],
        end: Option<&[u8]>,
        decode: ValueDecoder<'a>,
    ) -> Result<RowIter<'a>> {
        let it = Transaction::scan_values(self, start, end, decode)?;
        Ok(Box::new(
            it.map(|r| r.map_err(Into::into).and_then(|row| row)),
        ))
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

#[cfg(test)]
mod tests {
    use nq_storage::mvcc::{MvccConfig, MvccStore};
    use nq_storage::{Database, Options};

    use super::KvTxn;

    /// A transaction that only has `get`: exercises the trait's default `multi_get`.
    #[derive(Debug)]
    struct GetOnly(Box<dyn KvTxn>);

    impl KvTxn for GetOnly {
        fn get(&self, key: &[u8]) -> crate::error::Result<Option<Vec<u8>>> {
            self.0.get(key)
        }
        fn scan<'a>(
            &'a self,
            start: &[u8],
            end: Option<&[u8]>,
        ) -> crate::error::Result<super::KvIter<'a>> {
            self.0.scan(start, end)
        }
        fn put(&mut self, _: &[u8], _: &[u8]) -> crate::error::Result<()> {
            unreachable!()
        }
        fn delete(&mut self, _: &[u8]) -> crate::error::Result<()> {
            unreachable!()
        }
        fn lock_for_update(&mut self, _: &[u8]) -> crate::error::Result<()> {
            unreachable!()
        }
        fn start_ts(&self) -> u64 {
            self.0.start_ts()
        }
        fn savepoint(&self) -> Box<dyn std::any::Any + Send> {
            unreachable!()
        }
        fn rollback_to(&mut self, _: &(dyn std::any::Any + Send)) -> crate::error::Result<()> {
            unreachable!()
        }
        fn commit(self: Box<Self>) -> crate::error::Result<u64> {
            unreachable!()
        }
        fn rollback(self: Box<Self>) {}
    }

    /// `multi_get` of the MVCC transaction answers like `get` per key, in the order asked:
    /// own writes and own deletes over the snapshot, commits after the snapshot unseen, deleted
    /// and absent keys `None`.
    #[test]
    fn test_multi_get_matches_get_with_own_writes_deletes_and_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            Database::open_or_create(dir.path().join("data.nqdb"), &Options::default()).unwrap();
        let store = MvccStore::open(
            &db,
            MvccConfig {
                gc_interval: None,
                ..MvccConfig::default()
            },
        )
        .unwrap();
        let key = |i: u32| format!("row/{i:04}").into_bytes();
        let mut t: Box<dyn KvTxn> = Box::new(store.begin().unwrap());
        for i in 0..1_000 {
            t.put(&key(i), format!("a{i}").as_bytes()).unwrap();
        }
        t.commit().unwrap();
        let mut t: Box<dyn KvTxn> = Box::new(store.begin().unwrap());
        for i in (0..1_000).step_by(3) {
            t.delete(&key(i)).unwrap();
        }
        t.commit().unwrap();

        let snapshot: Box<dyn KvTxn> = Box::new(store.begin().unwrap());
        let mut later: Box<dyn KvTxn> = Box::new(store.begin().unwrap());
        later.put(&key(1), b"later").unwrap();
        later.delete(&key(2)).unwrap();
        later.commit().unwrap();

        let mut own: Box<dyn KvTxn> = Box::new(store.begin().unwrap());
        own.put(&key(4), b"own").unwrap();
        own.delete(&key(5)).unwrap();
        own.put(&key(3), b"revived").unwrap();
        own.put(&key(2_000), b"new").unwrap();

        let mut asked: Vec<Vec<u8>> = (0..1_010).rev().map(key).collect();
        asked.extend([key(2_000), key(4), b"other".to_vec(), Vec::new()]);
        let check = |txn: Box<dyn KvTxn>| -> Box<dyn KvTxn> {
            let per_key: Vec<Option<Vec<u8>>> = asked.iter().map(|k| txn.get(k).unwrap()).collect();
            assert!(txn.multi_get(&asked).unwrap() == per_key);
            // Each found value once, under its own index.
            let with = |t: &dyn KvTxn| {
                let mut seen: Vec<Option<Vec<u8>>> = vec![None; asked.len()];
                let asked: Vec<&[u8]> = asked.iter().map(Vec::as_slice).collect();
                t.multi_get_with(&asked, &mut |i, v| {
                    assert!(
                        seen[i].replace(v.to_vec()).is_none(),
                        "key {i} reported twice"
                    );
                })
                .unwrap();
                seen
            };
            assert!(with(&*txn) == per_key);
            let plain = GetOnly(txn);
            assert!(plain.multi_get(&asked).unwrap() == per_key);
            assert!(with(&plain) == per_key);
            plain.0
        };
        let snapshot = check(snapshot);
        let own = check(own);
        let got = snapshot
            .multi_get(&[key(1), key(2), key(3), key(4)])
            .unwrap();
        let text = |s: &str| Some(s.as_bytes().to_vec());
        assert_eq!(got, vec![text("a1"), text("a2"), None, text("a4")]);
        let got = own
            .multi_get(&[key(5), key(4), key(3), key(2), key(1), key(2_000)])
            .unwrap();
        assert_eq!(
            got,
            vec![
                None,
                text("own"),
                text("revived"),
                None,
                text("later"),
                text("new")
            ]
        );
        assert!(own.multi_get(&[]).unwrap().is_empty());
    }
}
