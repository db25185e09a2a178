//! Optional trace export over OpenTelemetry OTLP, configured by `[telemetry]`.
//!
//! When `telemetry.otlp_endpoint` is set, the spans `tracing` already records (one per HTTP
//! request, named after its method and route and carrying its request id, and the spans and
//! events inside it) are also sent to an OpenTelemetry collector: OTLP over HTTP with protobuf
//! bodies, batched by a task on the tokio runtime and posted with reqwest. When it is not set,
//! nothing here runs: no exporter, no task, no connection.
//!
//! [`init_logging`](super::init_logging) installs the process's subscriber with an empty slot
//! for the exporter's layer, before any runtime exists; [`Telemetry::start`], called inside the
//! runtime, builds the exporter and fills the slot. [`Telemetry::shutdown`] empties it again and
//! sends what is still queued, so spans of the last requests are not lost at a graceful stop.

use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracerProvider, Tracer};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::filter::{EnvFilter, FilterFn, Filtered};
use tracing_subscriber::layer::Layered;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry, reload};

use super::config::TelemetryConfig;

/// The subscriber below the exporter's layer in [`init_logging`](super::init_logging)'s stack.
pub(crate) type Base = Layered<EnvFilter, Registry>;
type Slot = Option<OpenTelemetryLayer<Base, Tracer>>;
/// The slot as a layer of the stack, with the filter that keeps the exporter's own HTTP
/// traffic out of what it exports.
pub(crate) type SlotLayer = Filtered<reload::Layer<Slot, Base>, FilterFn, Base>;

/// The slot of the installed subscriber, once `init_logging` has installed one.
static SLOT: Mutex<Option<reload::Handle<Slot, Base>>> = Mutex::new(None);

/// An empty slot for `init_logging`'s stack, and its handle, to be [`register`]ed once the
/// subscriber is installed.
pub(crate) fn slot() -> (SlotLayer, reload::Handle<Slot, Base>) {
    let (layer, handle) = reload::Layer::new(None);
    let filter: fn(&tracing::Metadata<'_>) -> bool = not_exporter_traffic;
    (layer.with_filter(FilterFn::new(filter)), handle)
}

/// Makes `handle` the slot [`Telemetry::start`] fills.
pub(crate) fn register(handle: reload::Handle<Slot, Base>) {
    *SLOT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
}

/// Spans of the HTTP client and of the exporter itself would be exported by the export they
/// describe, which would make more of them: they stay in the logs only.
fn not_exporter_traffic(meta: &tracing::Metadata<'_>) -> bool {
    const SKIP: &[&str] = &["opentelemetry", "reqwest", "hyper", "h2", "rustls"];
    let target = meta.target();
    !SKIP.iter().any(|skip| {
        target
            .strip_prefix(skip)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
    })
}

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting is not usable.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// The exporter could not be built.
    #[error("the OTLP exporter: {0}")]
    Exporter(String),
}

/// A running trace export. Call [`Telemetry::shutdown`] before the runtime goes away.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    attached: bool,
}

impl Telemetry {
    /// Starts exporting when `config.otlp_endpoint` is set (`Ok(None)` otherwise) and plugs
    /// the exporter into the subscriber of [`init_logging`](super::init_logging). Must run
    /// inside a tokio runtime: the batches are sent by a task on it.
    pub fn start(config: &TelemetryConfig) -> Result<Option<Telemetry>, TelemetryError> {
        let Some(telemetry) = Telemetry::new(config)? else {
            return Ok(None);
        };
        let layer = telemetry.layer::<Base>();
        let attached = match SLOT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            Some(handle) => handle.reload(Some(layer)).is_ok(),
            None => false,
        };
        if attached {
            tracing::info!(
                endpoint = config.traces_url().ok().flatten().unwrap_or_default(),
                service = %config.service_name,
                sample_ratio = config.sample_ratio,
                "exporting traces over OTLP"
            );
        } else {
            tracing::warn!(
                "telemetry.otlp_endpoint is set but the log subscriber is not nqdb's own: no spans are exported"
            );
        }
        Ok(Some(Telemetry {
            attached,
            ..telemetry
        }))
    }

    /// Builds the exporter without plugging it in anywhere (`Ok(None)` when
    /// `config.otlp_endpoint` is not set): for a subscriber of one's own, with
    /// [`Telemetry::layer`]. Must run inside a tokio runtime.
    pub fn new(config: &TelemetryConfig) -> Result<Option<Telemetry>, TelemetryError> {
        config.validate()?;
        let Some(url) = config.traces_url()? else {
            return Ok(None);
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(timeout)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let batches = BatchConfigBuilder::default()
            .with_max_export_timeout(timeout)
            .build();
        let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio)
            .with_batch_config(batches)
            .build();
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        // A trace is kept or dropped whole: spans inside a request follow the request's span.
        let sampler =
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        Ok(Some(Telemetry {
            provider,
            attached: false,
        }))
    }

    /// A `tracing` layer that hands spans to this exporter.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, Tracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("nqdb"))
            // Spans are built when they end (or get a child), not when first entered, so a name
            // recorded after entry (`otel.name`, once the request's route is known) still
            // counts. Nothing here reads the OpenTelemetry context of the running span.
            .with_context_activation(false)
    }

    /// Stops exporting: unplugs the layer, sends the spans still queued (waiting at most
    /// `timeout_ms`), and stops the batch task. Blocks: call it from a blocking thread
    /// (`tokio::task::spawn_blocking`), not from an async task, while the runtime still runs.
    pub fn shutdown(self) {
        if self.attached
            && let Some(handle) = SLOT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
        {
            let _ = handle.reload(None);
        }
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("flushing the last spans to the OTLP collector: {e}");
        }
    }
}
