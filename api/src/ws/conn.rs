//! One WebSocket connection: a reader loop that dispatches client messages, a writer task that
//! drains the bounded outbound queue (and pings), and one task per subscription.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::log::{EventLog, Gap};
use super::protocol::{ClientMessage, ServerMessage};
use super::{ConnStats, check_channel};
use crate::auth::Principal;
use crate::backend::{ChangeFilter, ExecOptions, StreamItem};
use crate::state::AppState;

/// What the writer sends.
#[derive(Debug)]
enum Out {
    Text(Utf8Bytes),
    Close(u16, String),
}

/// Queries one connection may run at once.
const MAX_QUERIES: usize = 4;
/// Events a subscription task reads from its log at a time.
const READ_BATCH: usize = 256;

struct Subscription {
    task: JoinHandle<()>,
    paused: watch::Sender<bool>,
}

struct Conn {
    state: AppState,
    principal: Principal,
    stats: Arc<ConnStats>,
    tx: mpsc::Sender<Out>,
    subscriptions: HashMap<u64, Subscription>,
    next_subscription: u64,
    queries: HashMap<String, Arc<AtomicBool>>,
    /// Finished queries report their id here so the map stays small.
    finished_tx: mpsc::UnboundedSender<String>,
}

/// Serves one upgraded connection until it closes.
pub(crate) async fn run(
    socket: WebSocket,
    state: AppState,
    principal: Principal,
    id: u64,
    stats: Arc<ConnStats>,
) {
    let hub = Arc::clone(&state.inner.ws);
    let config = hub.config.clone();
    let metrics = &state.inner.metrics;
    metrics.ws_connections.inc();
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel::<Out>(config.queue_len);
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        Arc::clone(&stats),
        state.clone(),
        config.heartbeat_ms,
    ));
    let (finished_tx, mut finished_rx) = mpsc::unbounded_channel();
    let mut conn = Conn {
        state: state.clone(),
        principal,
        stats: Arc::clone(&stats),
        tx,
        subscriptions: HashMap::new(),
        next_subscription: 1,
        queries: HashMap::new(),
        finished_tx,
    };
    conn.send(&ServerMessage::Welcome {
        connection: id,
        role: conn.principal.role.to_string(),
        heartbeat_ms: config.heartbeat_ms,
        idle_timeout_ms: config.idle_timeout_ms,
    })
    .await;
    let idle = Duration::from_millis(config.idle_timeout_ms);
    loop {
        tokio::select! {
            next = tokio::time::timeout(idle, stream.next()) => match next {
                Err(_) => {
                    let _ = conn.tx.send(Out::Close(1001, "idle timeout".into())).await;
                    break;
                }
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(message))) => {
                    stats.received.fetch_add(1, Ordering::Relaxed);
                    match message {
                        Message::Text(text) => conn.handle(text.as_str()).await,
                        Message::Binary(_) => {
                            conn.send(&ServerMessage::error(None, "bad_message", "messages are JSON text")).await;
                        }
                        Message::Close(_) => break,
                        // Pings are answered by the library; pongs only prove liveness.
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
            },
            Some(done) = finished_rx.recv() => {
                conn.queries.remove(&done);
            }
        }
    }
    for (_, sub) in conn.subscriptions.drain() {
        sub.task.abort();
    }
    for (_, cancel) in conn.queries.drain() {
        cancel.store(true, Ordering::Relaxed);
    }
    drop(conn);
    // The writer ends once every sender (the connection and its subscription tasks) is gone.
    let _ = writer.await;
    hub.unregister(id);
    metrics.ws_connections.dec();
    metrics
        .ws_subscriptions
        .dec_by(stats.subscriptions.swap(0, Ordering::Relaxed) as i64);
}

/// Sends queued messages, batching them into one flush, and pings every heartbeat.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Out>,
    stats: Arc<ConnStats>,
    state: AppState,
    heartbeat_ms: u64,
) {
    let mut ping = tokio::time::interval(Duration::from_millis(heartbeat_ms));
    ping.tick().await;
    let sent = &state.inner.metrics.ws_messages_sent;
    loop {
        let first = tokio::select! {
            out = rx.recv() => match out {
                Some(out) => out,
                None => break,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let mut next = Some(first);
        let mut n = 0u64;
        while let Some(out) = next.take() {
            let result = match out {
                Out::Text(text) => sink.feed(Message::Text(text)).await,
                Out::Close(code, reason) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    return;
                }
            };
            if result.is_err() {
                return;
            }
            n += 1;
            if n < 256 {
                next = rx.try_recv().ok();
            }
        }
        stats.sent.fetch_add(n, Ordering::Relaxed);
        sent.inc_by(n);
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}

/// Keeps the subscription gauge and the connection's count right however a feed task ends.
struct SubscriptionGuard {
    stats: Arc<ConnStats>,
    state: AppState,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        // The connection may have zeroed the count already when it closed.
        if self
            .stats
            .subscriptions
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            self.state.inner.metrics.ws_subscriptions.dec();
        }
    }
}

/// What a feed task reads and for whom.
struct Feed {
    log: Arc<EventLog>,
    cursor: u64,
    topic: String,
    filter: Option<ChangeFilter>,
    subscription: u64,
    tx: mpsc::Sender<Out>,
    paused: watch::Receiver<bool>,
    /// Events it may fall behind the newest before it is cut off with `lagged`.
    max_lag: u64,
    queue_len: usize,
    state: AppState,
    _guard: SubscriptionGuard,
}

impl Feed {
    async fn send(&self, message: &ServerMessage) -> bool {
        self.tx
            .send(Out::Text(message.to_text().into()))
            .await
            .is_ok()
    }

    async fn lagged(&self, missed: u64) {
        self.state.inner.metrics.ws_messages_dropped.inc_by(missed);
        self.send(&ServerMessage::Lagged {
            subscription: self.subscription,
            missed,
            resume_from: self.cursor,
        })
        .await;
    }

    async fn run(mut self) {
        let mut head = self.log.watch();
        let mut warned = false;
        loop {
            while *self.paused.borrow_and_update() {
                if self.paused.changed().await.is_err() {
                    return;
                }
            }
            let batch = match self.log.read(self.cursor, READ_BATCH) {
                Ok(batch) => batch,
                Err(Gap { oldest }) => return self.lagged(oldest - self.cursor).await,
            };
            if batch.is_empty() {
                head.borrow_and_update();
                if self.log.head() > self.cursor {
                    continue;
                }
                tokio::select! {
                    r = head.changed() => if r.is_err() { return },
                    r = self.paused.changed() => if r.is_err() { return },
                }
                continue;
            }
            for event in batch {
                let newest = self.log.head();
                if newest - event.seq > self.max_lag {
                    return self.lagged(newest - self.cursor).await;
                }
                self.cursor = event.seq + 1;
                if event.topic != self.topic || !self.filter.as_ref().is_none_or(|f| f(&event)) {
                    continue;
                }
                let queued = self.queue_len - self.tx.capacity();
                if !warned && queued * 2 >= self.queue_len {
                    warned = true;
                    let notice = ServerMessage::SlowDown {
                        subscription: self.subscription,
                        queued,
                        behind: newest - event.seq,
                    };
                    if !self.send(&notice).await {
                        return;
                    }
                } else if warned && queued * 4 < self.queue_len {
                    warned = false;
                }
                if self.tx.send(Out::Text(event.json.clone())).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Conn {
    async fn send(&self, message: &ServerMessage) {
        let _ = self.tx.send(Out::Text(message.to_text().into())).await;
    }

    async fn handle(&mut self, text: &str) {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                self.send(&ServerMessage::error(
                    None,
                    "bad_message",
                    format!("not a valid message: {e}"),
                ))
                .await;
                return;
            }
        };
        match message {
            ClientMessage::Ping { data } => self.send(&ServerMessage::Pong { data }).await,
            ClientMessage::Subscribe {
                id,
                channel,
                table,
                predicate,
                resume_from,
            } => match (channel, table) {
                (Some(channel), None) if predicate.is_none() => {
                    self.subscribe_channel(id, channel, resume_from).await;
                }
                (None, Some(table)) => {
                    self.subscribe_table(id, table, predicate, resume_from)
                        .await;
                }
                _ => {
                    self.send(&ServerMessage::error(
                        id,
                        "bad_message",
                        "subscribe takes either channel, or table with an optional where",
                    ))
                    .await;
                }
            },
            ClientMessage::Unsubscribe { subscription } => {
                match self.subscriptions.remove(&subscription) {
                    Some(sub) => {
                        sub.task.abort();
                        self.send(&ServerMessage::Unsubscribed { subscription })
                            .await;
                    }
                    None => self.unknown_subscription(subscription).await,
                }
            }
            ClientMessage::Pause { subscription } => self.set_paused(subscription, true).await,
            ClientMessage::Resume { subscription } => self.set_paused(subscription, false).await,
            ClientMessage::Publish {
                id,
                channel,
                payload,
            } => self.publish(id, channel, payload).await,
            ClientMessage::Query {
                id,
                sql,
                params,
                batch_rows,
            } => self.query(id, sql, params, batch_rows).await,
            ClientMessage::Cancel { id } => match self.queries.get(&id) {
                Some(flag) => flag.store(true, Ordering::Relaxed),
                None => {
                    self.send(&ServerMessage::error(
                        Some(id),
                        "unknown_query",
                        "no running query has this id",
                    ))
                    .await;
                }
            },
        }
    }

    async fn set_paused(&self, subscription: u64, pause: bool) {
        match self.subscriptions.get(&subscription) {
            Some(sub) => {
                sub.paused.send_replace(pause);
                let answer = if pause {
                    ServerMessage::Paused { subscription }
                } else {
                    ServerMessage::Resumed { subscription }
                };
                self.send(&answer).await;
            }
            None => self.unknown_subscription(subscription).await,
        }
    }

    async fn unknown_subscription(&self, subscription: u64) {
        self.send(&ServerMessage::error(
            None,
            "unknown_subscription",
            format!("no subscription {subscription} on this connection"),
        ))
        .await;
    }

    fn start_feed(
        &mut self,
        log: Arc<EventLog>,
        cursor: u64,
        topic: String,
        filter: Option<ChangeFilter>,
        max_lag: u64,
    ) -> u64 {
        let subscription = self.next_subscription;
        self.next_subscription += 1;
        let (paused_tx, paused) = watch::channel(false);
        self.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        self.state.inner.metrics.ws_subscriptions.inc();
        let feed = Feed {
            log,
            cursor,
            topic,
            filter,
            subscription,
            tx: self.tx.clone(),
            paused,
            max_lag,
            queue_len: self.state.inner.ws.config.queue_len,
            state: self.state.clone(),
            _guard: SubscriptionGuard {
                stats: Arc::clone(&self.stats),
                state: self.state.clone(),
            },
        };
        self.subscriptions.insert(
            subscription,
            Subscription {
                task: tokio::spawn(feed.run()),
                paused: paused_tx,
            },
        );
        subscription
    }

    /// Where a feed starts: `resume_from` if still retained, else an error naming the oldest.
    fn start_at(log: &EventLog, resume_from: Option<u64>, default: u64) -> Result<u64, String> {
        match resume_from {
            None => Ok(default),
            Some(seq) if seq > log.head() => Err(format!(
                "resume_from {seq} is ahead of the newest event ({})",
                log.head().saturating_sub(1)
            )),
            Some(seq) if seq < log.oldest() => Err(format!(
                "resume_from {seq} is no longer retained; the oldest retained event is {}",
                log.oldest()
            )),
            Some(seq) => Ok(seq),
        }
    }

    async fn subscribe_table(
        &mut self,
        id: Option<String>,
        table: String,
        predicate: Option<String>,
        resume_from: Option<u64>,
    ) {
        let backend = Arc::clone(&self.state.inner.backend);
        let (t, p) = (table.clone(), predicate.clone());
        let filter =
            tokio::task::spawn_blocking(move || backend.change_filter(&t, p.as_deref())).await;
        let filter = match filter {
            Ok(Ok(filter)) => filter,
            Ok(Err(failure)) => {
                self.send(&ServerMessage::Error {
                    id,
                    code: failure.code,
                    message: failure.message,
                    position: failure.position,
                })
                .await;
                return;
            }
            Err(e) => {
                self.send(&ServerMessage::error(id, "internal_error", e.to_string()))
                    .await;
                return;
            }
        };
        let log = Arc::clone(&self.state.inner.ws.changes);
        let cursor = match Self::start_at(&log, resume_from, log.head()) {
            Ok(c) => c,
            Err(message) => {
                self.send(&ServerMessage::error(id, "resume_gap", message))
                    .await;
                return;
            }
        };
        // A resumed feed starts behind on purpose: it may lag by that much more.
        let max_lag = self.state.inner.ws.config.max_lag + (log.head() - cursor);
        let subscription = self.start_feed(log, cursor, table.clone(), Some(filter), max_lag);
        self.send(&ServerMessage::Subscribed {
            id,
            subscription,
            channel: None,
            table: Some(table),
            from_seq: cursor,
        })
        .await;
    }

    async fn subscribe_channel(
        &mut self,
        id: Option<String>,
        channel: String,
        resume_from: Option<u64>,
    ) {
        if let Err((code, message)) = check_channel(&channel, self.principal.role, false) {
            self.send(&ServerMessage::error(id, code, message)).await;
            return;
        }
        let hub = Arc::clone(&self.state.inner.ws);
        let log = hub.channel(&channel);
        // A new subscriber first gets the channel's recent history.
        let cursor = match Self::start_at(&log, resume_from, log.oldest()) {
            Ok(c) => c,
            Err(message) => {
                self.send(&ServerMessage::error(id, "resume_gap", message))
                    .await;
                return;
            }
        };
        let max_lag = hub.config.channel_history as u64 + (log.head() - cursor);
        let subscription = self.start_feed(log, cursor, channel.clone(), None, max_lag);
        self.send(&ServerMessage::Subscribed {
            id,
            subscription,
            channel: Some(channel),
            table: None,
            from_seq: cursor,
        })
        .await;
    }

    async fn publish(&mut self, id: Option<String>, channel: String, payload: serde_json::Value) {
        if let Err((code, message)) = check_channel(&channel, self.principal.role, true) {
            self.send(&ServerMessage::error(id, code, message)).await;
            return;
        }
        let log = self.state.inner.ws.channel(&channel);
        let from = self.principal.key_id.clone();
        let seq = log.publish(
            &channel,
            |seq| {
                serde_json::json!({
                    "type": "message",
                    "channel": channel,
                    "seq": seq,
                    "from": from,
                    "payload": payload,
                })
                .to_string()
            },
            None,
        );
        self.send(&ServerMessage::Published { id, channel, seq })
            .await;
    }

    async fn query(
        &mut self,
        id: String,
        sql: String,
        params: Vec<serde_json::Value>,
        batch_rows: Option<usize>,
    ) {
        if self.queries.contains_key(&id) {
            self.send(&ServerMessage::error(
                Some(id),
                "duplicate_query",
                "a query with this id is running",
            ))
            .await;
            return;
        }
        if self.queries.len() >= MAX_QUERIES {
            self.send(&ServerMessage::error(
                Some(id),
                "too_many_queries",
                format!("at most {MAX_QUERIES} queries run at once per connection"),
            ))
            .await;
            return;
        }
        let config = &self.state.inner.config;
        let batch = batch_rows
            .unwrap_or(self.state.inner.ws.config.batch_rows)
            .clamp(1, 10_000);
        let options = ExecOptions {
            timeout: config.statement_timeout(),
            max_rows: None,
            read_only: self.principal.role < crate::auth::Role::Readwrite,
        };
        let mut session = self.state.inner.backend.session();
        let cancel = session.cancel_handle();
        self.queries.insert(id.clone(), Arc::clone(&cancel));
        let tx = self.tx.clone();
        let finished = self.finished_tx.clone();
        tokio::task::spawn_blocking(move || {
            let send = |m: &ServerMessage| tx.blocking_send(Out::Text(m.to_text().into())).is_ok();
            let mut rows = Vec::with_capacity(batch);
            let mut sent = 0u64;
            let mut batches = 0u64;
            let mut open = true;
            let result = session.stream(&sql, &params, &options, &mut |item| {
                open = match item {
                    StreamItem::Columns(columns) => send(&ServerMessage::Columns {
                        id: id.clone(),
                        columns,
                    }),
                    StreamItem::Row(row) => {
                        rows.push(row);
                        sent += 1;
                        if rows.len() < batch {
                            return true;
                        }
                        batches += 1;
                        let ok = send(&ServerMessage::Rows {
                            id: id.clone(),
                            rows: std::mem::replace(&mut rows, Vec::with_capacity(batch)),
                        });
                        ok && (!batches.is_multiple_of(10)
                            || send(&ServerMessage::Progress {
                                id: id.clone(),
                                rows_sent: sent,
                            }))
                    }
                };
                open
            });
            if open && !rows.is_empty() {
                send(&ServerMessage::Rows {
                    id: id.clone(),
                    rows,
                });
            }
            let answer = match result {
                Ok(outcome) => ServerMessage::Done {
                    id: id.clone(),
                    row_count: sent,
                    rows_affected: outcome.rows_affected,
                    tag: outcome.tag,
                    elapsed_ms: outcome.elapsed_ms,
                },
                Err(f) if f.code == "query_canceled" && cancel.load(Ordering::Relaxed) => {
                    ServerMessage::Cancelled { id: id.clone() }
                }
                Err(f) => ServerMessage::Error {
                    id: Some(id.clone()),
                    code: f.code,
                    message: f.message,
                    position: f.position,
                },
            };
            send(&answer);
            let _ = finished.send(id);
        });
    }
}
