//! The embedded database: one data directory, one storage engine and MVCC store, any number
//! of sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nq_storage::mvcc::{MvccConfig, MvccStore};
use nq_storage::{Database, Options};

use crate::dml::RowIds;
use crate::error::{Result, SqlError};
use crate::session::Session;
use crate::stats::EngineStats;

/// Settings of an embedded database.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Storage settings (page size, buffer pool, log).
    pub storage: Options,
    /// Statements slower than this are logged (target `nq_node::slow_query`); `None` logs none.
    pub slow_query: Option<std::time::Duration>,
    /// Default statement timeout of new sessions; `None` means none.
    pub statement_timeout: Option<std::time::Duration>,
    /// Bytes one statement's sorts, hash tables and buffers may hold; 0 = unlimited.
    pub memory_limit_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            storage: Options::default(),
            slow_query: Some(std::time::Duration::from_secs(1)),
            statement_timeout: None,
            memory_limit_bytes: 256 << 20,
        }
    }
}

/// File name of the data file inside the data directory.
pub const DATA_FILE: &str = "data.nqdb";

pub(crate) struct EngineInner {
    pub dir: PathBuf,
    pub db: Database,
    pub store: MvccStore,
    pub rowids: RowIds,
    pub stats: EngineStats,
    pub options: EngineOptions,
    /// Change capture, once a listener is set (the server's change feeds).
    pub capture: std::sync::OnceLock<crate::changes::ChangeCapture>,
    /// Parsed statements and their plans, shared by every session.
    pub plans: crate::plan::PlanCache,
    /// Orders catalog changes, so cached plans are used only where they are still right.
    pub catalog_clock: Arc<crate::catalog::CatalogClock>,
}

/// An open database. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens (creating if needed) the database in `dir`, recovering after a crash.
    pub fn open(dir: &Path) -> Result<Engine> {
        Engine::open_with(dir, &EngineOptions::default())
    }

    /// Like [`Engine::open`] with options.
    pub fn open_with(dir: &Path, options: &EngineOptions) -> Result<Engine> {
        std::fs::create_dir_all(dir).map_err(|e| {
            SqlError::Storage(nq_storage::StorageError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        })?;
        let db = Database::open_or_create(dir.join(DATA_FILE), &options.storage)?;
        let store = MvccStore::open(&db, MvccConfig::default())?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                dir: dir.to_path_buf(),
                db,
                store,
                rowids: RowIds::default(),
                stats: EngineStats::default(),
                options: options.clone(),
                capture: std::sync::OnceLock::new(),
                plans: crate::plan::PlanCache::default(),
                catalog_clock: Arc::default(),
            }),
        })
    }

    /// A new session (its own transaction state).
    pub fn session(&self) -> Session {
        Session::new(self.clone())
    }

    /// Delivers every later commit's row changes to `listener`, in commit order. Only one
    /// listener can be set; false if one was already.
    pub fn set_change_listener(&self, listener: Arc<dyn crate::changes::ChangeListener>) -> bool {
        self.inner
            .capture
            .set(crate::changes::ChangeCapture::new(listener))
            .is_ok()
    }

    /// Commits `txn`, capturing its changes if a listener is set.
    pub(crate) fn commit(&self, txn: Box<dyn crate::kv::KvTxn>) -> Result<u64> {
        match self.inner.capture.get() {
            Some(capture) => capture.commit(&self.inner.store, txn),
            None => txn.commit(),
        }
    }

    /// The buffer pool's counters.
    pub fn buffer_pool_stats(&self) -> nq_storage::BufferPoolStats {
        self.inner.db.stats()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Checkpoints and closes the storage (other clones keep it open until dropped).
    pub fn close(self) -> Result<()> {
        let inner = self.inner;
        let db = inner.db.clone();
        drop(inner);
        db.close().map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::Engine;
    use crate::catalog;
    use crate::encoding::{self, KeyFormat, RowFormat};
    use crate::kv::KvTxn;
    use crate::result::SqlExecutor;
    use crate::types::Value;

    fn rows(engine: &Engine, sql: &str) -> Vec<Vec<Value>> {
        let mut results = engine.session().execute(sql, &[]).expect(sql);
        results.pop().expect("a result").rows
    }

    /// Tables whose catalog entries predate key formats keep eight-byte integer keys, and every
    /// access path (primary key, secondary index, index-only scan, row ids, ranges) still
    /// answers right on them, across a reopen.
    #[test]
    fn test_tables_in_the_fixed_key_format_keep_working() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let mut s = engine.session();
        s.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, c INTEGER, s TEXT); \
             CREATE INDEX t_c ON t (c); CREATE TABLE r (x INTEGER)",
            &[],
        )
        .unwrap();
        drop(s);
        let mut txn: Box<dyn KvTxn> = Box::new(engine.inner.store.begin().unwrap());
        for name in ["t", "r"] {
            let mut def = catalog::table(&*txn, name).unwrap();
            assert_eq!(def.key_format, KeyFormat::Compact, "new tables are compact");
            def.key_format = KeyFormat::Fixed;
            catalog::put_table(&mut *txn, &def).unwrap();
        }
        txn.commit().unwrap();
        engine.close().unwrap();

        let engine = Engine::open(dir.path()).unwrap();
        let ids = -300i64..=300;
        let c_of = |id: i64| id % 7 - 3;
        let values: Vec<String> = ids
            .clone()
            .map(|id| format!("({id}, {}, 'n{id}')", c_of(id)))
            .collect();
        rows(
            &engine,
            &format!("INSERT INTO t VALUES {}", values.join(", ")),
        );
        rows(&engine, "INSERT INTO r VALUES (10), (20), (30)");
        let txn = engine.inner.store.begin().unwrap();
        let t = catalog::table(&txn, "t").unwrap();
        assert_eq!(t.key_format, KeyFormat::Fixed);
        // The stored keys really are eight-byte ones (tag 0x20), for rows and index entries.
        // A row key holds the id; an index entry c and the id.
        let index = encoding::index_prefix(t.id, t.indexes[0].id);
        for (prefix, ints) in [(encoding::row_prefix(t.id), 1), (index, 2)] {
            let end = encoding::prefix_end(&prefix);
            let keys: Vec<Vec<u8>> = KvTxn::scan(&txn, &prefix, end.as_deref())
                .unwrap()
                .map(|r| r.unwrap().0)
                .collect();
            assert_eq!(keys.len(), 601);
            for k in keys {
                assert_eq!(k[prefix.len()], 0x20, "{k:x?}");
                assert_eq!(k.len(), prefix.len() + 9 * ints, "{k:x?}");
            }
        }
        drop(txn);
        assert_eq!(
            rows(&engine, "SELECT s FROM t WHERE id = -257"),
            [[Value::Text("n-257".into())]]
        );
        assert_eq!(
            rows(
                &engine,
                "SELECT count(*), min(id), max(id) FROM t WHERE id BETWEEN -5 AND 260"
            ),
            [[Value::Int(266), Value::Int(-5), Value::Int(260)]]
        );
        let of_c = |pick: &dyn Fn(i64) -> bool| {
            let picked: Vec<i64> = ids.clone().filter(|&id| pick(c_of(id))).collect();
            (picked.len() as i64, picked.iter().sum::<i64>())
        };
        let (n, sum) = of_c(&|c| c == -3);
        assert_eq!(
            rows(
                &engine,
                "SELECT count(*), CAST(sum(id) AS BIGINT) FROM t WHERE c = -3"
            ),
            [[Value::Int(n), Value::Int(sum)]]
        );
        // An index-only range (the index holds c and the key).
        let (n, sum) = of_c(&|c| c > 1);
        assert_eq!(
            rows(
                &engine,
                "SELECT count(*), CAST(sum(id) AS BIGINT) FROM t WHERE c > 1"
            ),
            [[Value::Int(n), Value::Int(sum)]]
        );
        engine.close().unwrap();
        // Row ids continue after the largest stored one.
        let engine = Engine::open(dir.path()).unwrap();
        rows(&engine, "INSERT INTO r VALUES (40)");
        assert_eq!(
            rows(&engine, "SELECT count(*), CAST(sum(x) AS BIGINT) FROM r"),
            [[Value::Int(4), Value::Int(100)]]
        );
    }

    /// Tables whose catalog entries predate row formats keep counted rows: reads, writes,
    /// added columns and text of every length work on them, across a reopen, and new tables
    /// get bare rows (no count, short text with the length in its tag).
    #[test]
    fn test_tables_with_counted_rows_keep_working() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let create = "CREATE TABLE t (id BIGINT PRIMARY KEY, c INTEGER, s TEXT); \
                      CREATE INDEX t_c ON t (c)";
        rows(&engine, create);
        let mut txn: Box<dyn KvTxn> = Box::new(engine.inner.store.begin().unwrap());
        let mut def = catalog::table(&*txn, "t").unwrap();
        assert_eq!(def.row_format, RowFormat::Bare, "new tables are bare");
        def.row_format = RowFormat::Counted;
        catalog::put_table(&mut *txn, &def).unwrap();
        txn.commit().unwrap();
        engine.close().unwrap();

        let engine = Engine::open(dir.path()).unwrap();
        rows(
            &engine,
            "CREATE TABLE b (id BIGINT PRIMARY KEY, c INTEGER, s TEXT)",
        );
        let text = |id: i64| "x".repeat((id * 37 % 300) as usize);
        for table in ["t", "b"] {
            let values: Vec<String> = (0..50)
                .map(|id| format!("({id}, {}, '{}')", id % 3, text(id)))
                .collect();
            rows(
                &engine,
                &format!("INSERT INTO {table} VALUES {}", values.join(", ")),
            );
        }
        // The stored rows: counted ones start with the slot count (3), bare ones with the
        // first slot's tag (the id's reference into the key), and are three bytes shorter
        // with text under 128 bytes (the count, and the text length in the tag).
        let txn = engine.inner.store.begin().unwrap();
        let raw_of = |table: &str, id: i64| {
            let def = catalog::table(&txn, table).unwrap();
            let mut key = encoding::row_prefix(def.id);
            encoding::encode_key(&[Value::Int(id)], def.key_format, &mut key);
            KvTxn::get(&txn, &key).unwrap().expect("row stored")
        };
        for id in [1, 3, 4] {
            let (counted, bare) = (raw_of("t", id), raw_of("b", id));
            assert_eq!(counted[..2], 3u16.to_le_bytes(), "id {id}");
            assert_eq!(bare[0], 0x01, "id {id}");
            let tiny = usize::from(text(id).len() < 128);
            assert_eq!(counted.len(), bare.len() + 2 + tiny, "id {id}");
        }
        drop(txn);
        for table in ["t", "b"] {
            rows(
                &engine,
                &format!("ALTER TABLE {table} ADD COLUMN d INTEGER DEFAULT 7"),
            );
            rows(
                &engine,
                &format!("UPDATE {table} SET d = id WHERE id % 2 = 0"),
            );
            rows(&engine, &format!("DELETE FROM {table} WHERE id >= 45"));
        }
        engine.close().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let expected: Vec<Vec<Value>> = (0..45)
            .filter(|id| id % 3 == 1)
            .map(|id| {
                let d = if id % 2 == 0 { id } else { 7 };
                vec![Value::Int(id), Value::Text(text(id)), Value::Int(d)]
            })
            .collect();
        for table in ["t", "b"] {
            assert_eq!(
                rows(
                    &engine,
                    &format!("SELECT id, s, d FROM {table} WHERE c = 1 ORDER BY id")
                ),
                expected,
                "{table}"
            );
        }
    }
}
