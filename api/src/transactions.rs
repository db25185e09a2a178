//! Transactions that span HTTP requests: `POST /transactions` opens one, later requests run
//! statements in it by id, commit or rollback ends it, and one left idle is rolled back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::backend::BackendSession;
use crate::config::TransactionsConfig;

/// One open transaction: its session, owner and last use.
pub(crate) struct Slot {
    /// The key that opened it; no other key may use it.
    pub owner: String,
    /// The session holding the transaction. Locked while a statement runs; a second request
    /// arriving meanwhile is refused rather than queued.
    pub session: Mutex<Box<dyn BackendSession>>,
    last_used: Mutex<Instant>,
}

impl Slot {
    pub fn touch(&self) {
        *self.last_used.lock() = Instant::now();
    }
}

/// The registry of open transactions.
pub(crate) struct Transactions {
    config: TransactionsConfig,
    open: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Transactions {
    pub fn new(config: TransactionsConfig) -> Transactions {
        Transactions {
            config,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.config.idle_timeout_ms)
    }

    /// Registers a session that has begun a transaction; `None` if too many are open.
    pub fn insert(&self, owner: &str, session: Box<dyn BackendSession>) -> Option<String> {
        let mut open = self.open.lock();
        if open.len() >= self.config.max_open {
            return None;
        }
        let id = crate::auth::keys::random_bytes::<12>()
            .map(|b| crate::auth::keys::hex(&b))
            .ok()?;
        open.insert(
            id.clone(),
            Arc::new(Slot {
                owner: owner.to_string(),
                session: Mutex::new(session),
                last_used: Mutex::new(Instant::now()),
            }),
        );
        Some(id)
    }

    /// The transaction `id` if `owner` opened it.
    pub fn get(&self, id: &str, owner: &str) -> Option<Arc<Slot>> {
        self.open
            .lock()
            .get(id)
            .filter(|slot| slot.owner == owner)
            .cloned()
    }

    /// Removes `id` (after commit or rollback).
    pub fn remove(&self, id: &str) -> Option<Arc<Slot>> {
        self.open.lock().remove(id)
    }

    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Removes and returns transactions idle longer than the timeout and not running a
    /// statement; the caller rolls them back.
    pub fn take_idle(&self) -> Vec<Arc<Slot>> {
        let timeout = self.idle_timeout();
        let mut open = self.open.lock();
        let idle: Vec<String> = open
            .iter()
            .filter(|(_, slot)| {
                slot.last_used.lock().elapsed() >= timeout && !slot.session.is_locked()
            })
            .map(|(id, _)| id.clone())
            .collect();
        idle.iter().filter_map(|id| open.remove(id)).collect()
    }

    /// Removes every transaction (shutdown).
    pub fn take_all(&self) -> Vec<Arc<Slot>> {
        self.open.lock().drain().map(|(_, slot)| slot).collect()
    }
}
