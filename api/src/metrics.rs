//! Prometheus metrics: the server's own (requests, latency, connections, messages) plus the
//! engine's counters, read from the backend on each scrape.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::backend::Backend;

/// Labels of request metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/api/v1/tables/{name}`), not the concrete path, so that the label
    /// set stays small.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Labels of request latency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route pattern.
    pub route: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by route, seconds.
    pub request_seconds: Family<RouteLabels, Histogram>,
    /// Statement latency, seconds.
    pub query_seconds: Histogram,
    /// Open WebSocket connections.
    pub ws_connections: Gauge,
    /// Active subscriptions (channels and change feeds).
    pub ws_subscriptions: Gauge,
    /// WebSocket messages sent.
    pub ws_messages_sent: Counter,
    /// WebSocket messages dropped (a lagging consumer's events, replaced by a `lagged` notice).
    pub ws_messages_dropped: Counter,
    /// Open HTTP transactions.
    pub open_transactions: Gauge,
    /// Requests refused by a rate limit.
    pub rate_limited: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~27 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
    /// Metrics that also report `backend`'s engine counters.
    pub fn new(backend: Arc<dyn Backend>) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let query_seconds = latency_histogram();
        let ws_connections = Gauge::default();
        let ws_subscriptions = Gauge::default();
        let ws_messages_sent = Counter::default();
        let ws_messages_dropped = Counter::default();
        let open_transactions = Gauge::default();
        let rate_limited = Counter::default();
        registry.register(
            "nqdb_http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "nqdb_http_request_seconds",
            "HTTP request latency by route",
            request_seconds.clone(),
        );
        registry.register(
            "nqdb_query_seconds",
            "SQL statement latency",
            query_seconds.clone(),
        );
        registry.register(
            "nqdb_ws_connections",
            "Open WebSocket connections",
            ws_connections.clone(),
        );
        registry.register(
            "nqdb_ws_subscriptions",
            "Active WebSocket subscriptions",
            ws_subscriptions.clone(),
        );
        registry.register(
            "nqdb_ws_messages_sent",
            "WebSocket messages sent",
            ws_messages_sent.clone(),
        );
        registry.register(
            "nqdb_ws_messages_dropped",
            "WebSocket messages not delivered to lagging consumers",
            ws_messages_dropped.clone(),
        );
        registry.register(
            "nqdb_http_transactions_open",
            "Open HTTP transactions",
            open_transactions.clone(),
        );
        registry.register(
            "nqdb_rate_limited",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
        registry.register_collector(Box::new(EngineCollector { backend }));
        Metrics {
            registry,
            requests,
            request_seconds,
            query_seconds,
            ws_connections,
            ws_subscriptions,
            ws_messages_sent,
            ws_messages_dropped,
            open_transactions,
            rate_limited,
        }
    }

    /// The text exposition (OpenMetrics, which Prometheus reads).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

struct EngineCollector {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for EngineCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.backend.metrics();
        let lookups = m.buffer_hits + m.buffer_misses;
        let hit_rate = if lookups == 0 {
            1.0
        } else {
            m.buffer_hits as f64 / lookups as f64
        };
        counter(
            &mut e,
            "nqdb_buffer_pool_hits",
            "Buffer pool page hits",
            m.buffer_hits,
        )?;
        counter(
            &mut e,
            "nqdb_buffer_pool_misses",
            "Buffer pool page misses",
            m.buffer_misses,
        )?;
        counter(
            &mut e,
            "nqdb_buffer_pool_prefetched",
            "Pages loaded ahead of their reader (read-ahead, prefetch advice), also counted as misses",
            m.buffer_prefetched,
        )?;
        gauge(
            &mut e,
            "nqdb_buffer_pool_hit_ratio",
            "Buffer pool hits over lookups since start",
            hit_rate,
        )?;
        gauge(
            &mut e,
            "nqdb_buffer_pool_bytes",
            "Memory of the buffer pool's frames",
            m.buffer_bytes as f64,
        )?;
        gauge(
            &mut e,
            "nqdb_buffer_pool_frames",
            "Frames in the buffer pool",
            m.buffer_frames as f64,
        )?;
        counter(&mut e, "nqdb_wal_syncs", "WAL fsyncs", m.wal_syncs)?;
        let sync = ConstCounter::new(m.wal_sync_seconds);
        sync.encode(e.encode_descriptor(
            "nqdb_wal_sync_seconds",
            "Time spent in WAL fsyncs",
            None,
            sync.metric_type(),
        )?)?;
        counter(&mut e, "nqdb_wal_bytes", "WAL bytes written", m.wal_bytes)?;
        counter(
            &mut e,
            "nqdb_txn_commits",
            "Committed transactions",
            m.commits,
        )?;
        counter(&mut e, "nqdb_txn_aborts", "Aborted transactions", m.aborts)?;
        counter(
            &mut e,
            "nqdb_txn_conflicts",
            "Write-write conflicts",
            m.conflicts,
        )?;
        counter(&mut e, "nqdb_lock_waits", "Lock waits", m.lock_waits)?;
        counter(&mut e, "nqdb_deadlocks", "Deadlocks detected", m.deadlocks)?;
        counter(
            &mut e,
            "nqdb_checkpoints",
            "Checkpoints taken",
            m.checkpoints,
        )?;
        Ok(())
    }
}
