//! A bounded, sequenced event log that subscribers read at their own pace.
//!
//! Both table change feeds and pub/sub channels are logs: publishing appends an event with
//! the next sequence number and drops the oldest beyond the retention; every subscriber owns
//! a cursor and reads forward from it. Nothing is queued per subscriber, so a slow consumer
//! costs no memory: it only falls behind, and once it is further behind than it may be (or
//! behind the retention) it is told so with the sequence number to resume from.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use parking_lot::RwLock;
use tokio::sync::watch;

/// One event.
pub struct Event {
    /// Sequence number, from 1, gap-free within its log.
    pub seq: u64,
    /// The table or channel it belongs to.
    pub topic: String,
    /// The message sent to subscribers, serialised once for all of them (cloning shares it).
    pub json: Utf8Bytes,
    /// What subscription filters look at (for change events, the engine's row change).
    pub payload: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("seq", &self.seq)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    events: VecDeque<Arc<Event>>,
    next_seq: u64,
}

/// The log.
#[derive(Debug)]
pub struct EventLog {
    /// Many subscriptions read at once; only publishing writes.
    inner: RwLock<Inner>,
    retention: usize,
    /// The next sequence number, published after every append: subscribers wait on it.
    head: watch::Sender<u64>,
}

/// Reading from before the oldest retained event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The oldest sequence number still retained.
    pub oldest: u64,
}

impl EventLog {
    /// A log keeping the last `retention` events.
    pub fn new(retention: usize) -> EventLog {
        EventLog {
            inner: RwLock::new(Inner {
                events: VecDeque::with_capacity(retention.min(4096)),
                next_seq: 1,
            }),
            retention: retention.max(1),
            head: watch::channel(1).0,
        }
    }

    /// Appends one event; `json` builds its message from its sequence number.
    pub fn publish(
        &self,
        topic: &str,
        json: impl FnOnce(u64) -> String,
        payload: Option<Arc<dyn Any + Send + Sync>>,
    ) -> u64 {
        let mut inner = self.inner.write();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.events.push_back(Arc::new(Event {
            seq,
            topic: topic.to_string(),
            json: json(seq).into(),
            payload,
        }));
        while inner.events.len() > self.retention {
            inner.events.pop_front();
        }
        let next = inner.next_seq;
        drop(inner);
        self.head.send_replace(next);
        seq
    }

    /// The sequence number the next event will get.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// The oldest retained sequence number (the head if the log is empty).
    pub fn oldest(&self) -> u64 {
        let inner = self.inner.read();
        inner.events.front().map_or(inner.next_seq, |e| e.seq)
    }

    /// A receiver that changes whenever an event is appended.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Up to `max` events from sequence number `from` on.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Arc<Event>>, Gap> {
        let inner = self.inner.read();
        let oldest = inner.events.front().map_or(inner.next_seq, |e| e.seq);
        if from < oldest {
            return Err(Gap { oldest });
        }
        let skip = (from - oldest) as usize;
        Ok(inner.events.iter().skip(skip).take(max).cloned().collect())
    }

    /// The last `n` events (a channel's history for a new subscriber).
    pub fn last(&self, n: usize) -> Vec<Arc<Event>> {
        let inner = self.inner.read();
        let skip = inner.events.len().saturating_sub(n);
        inner.events.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_retention_and_gaps() {
        let log = EventLog::new(3);
        for i in 0..5 {
            let seq = log.publish("t", |seq| format!("{{\"seq\":{seq},\"i\":{i}}}"), None);
            assert_eq!(seq, i + 1);
        }
        assert_eq!(log.head(), 6);
        assert_eq!(log.oldest(), 3);
        assert_eq!(log.read(2, 10).unwrap_err(), Gap { oldest: 3 });
        let got: Vec<u64> = log.read(3, 10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(got, [3, 4, 5]);
        let got: Vec<u64> = log.read(4, 1).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(got, [4]);
        assert!(log.read(6, 10).unwrap().is_empty());
        let last: Vec<u64> = log.last(2).iter().map(|e| e.seq).collect();
        assert_eq!(last, [4, 5]);
        assert_eq!(
            log.read(5, 1).unwrap()[0].json.as_str(),
            "{\"seq\":5,\"i\":4}"
        );
    }
}
