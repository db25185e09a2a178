//! Trace export over OTLP/HTTP: with `telemetry.otlp_endpoint` set, the spans of requests reach
//! a collector as protobuf POSTs to `/v1/traces`, flushed at shutdown; a bad `[telemetry]`
//! value stops `nqdb serve` with exit status 2, naming the key.
//!
//! The collector is a stand-in that records what it is sent. The exporter is plugged into the
//! process's subscriber the way `nqdb serve` does it (`init_logging`, then `Telemetry::start`),
//! which happens once per process: this file has one test that does it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use nq_api::ServerConfig;
use nq_node::engine::Engine;
use nq_node::server::config::{LogConfig, TelemetryConfig};
use nq_node::server::{EngineBackend, Telemetry};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Post {
    method: Method,
    path: String,
    content_type: String,
    body: Bytes,
}

/// An OTLP/HTTP collector on port 0 that answers every request with an empty success and
/// keeps it.
async fn collector() -> (SocketAddr, Arc<Mutex<Vec<Post>>>) {
    let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
    let seen = posts.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push(Post {
                    method,
                    path: uri.path().to_string(),
                    content_type,
                    body,
                });
                // An empty ExportTraceServiceResponse: everything accepted.
                (
                    StatusCode::OK,
                    [("content-type", "application/x-protobuf")],
                    Bytes::new(),
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, posts)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_otlp_collector_by_shutdown() {
    let (collector_addr, posts) = collector().await;
    nq_node::server::init_logging(&LogConfig {
        level: "warn,nq_api=info".into(),
        ..LogConfig::default()
    });
    // Off unless configured: nothing is built, so nothing can connect anywhere.
    assert!(
        Telemetry::start(&TelemetryConfig::default())
            .unwrap()
            .is_none()
    );
    let telemetry = Telemetry::start(&TelemetryConfig {
        otlp_endpoint: Some(format!("http://{collector_addr}")),
        service_name: "nqdb-otlp-test".into(),
        ..TelemetryConfig::default()
    })
    .unwrap()
    .expect("an endpoint turns export on");

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let key = nq_node::server::init(dir.path()).unwrap().1;
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let server = nq_api::start(config, dir.path(), Arc::new(EngineBackend::new(engine)))
        .await
        .unwrap();
    let api = format!("{}/api/v1", server.base_url());
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{api}/query"))
        .bearer_auth(&key)
        .json(&json!({"sql": "SELECT 41 + 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rows"], json!([[42]]));
    let response = http
        .get(format!("{api}/tables"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    server.shutdown().await.unwrap();
    // The batch task would send these within seconds; shutting down sends them now.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();

    let posts = posts.lock().unwrap().clone();
    assert!(!posts.is_empty(), "the collector received nothing");
    for post in &posts {
        assert_eq!(post.method, Method::POST);
        assert_eq!(post.path, "/v1/traces");
        assert_eq!(post.content_type, "application/x-protobuf");
    }
    let sent: Vec<u8> = posts.iter().flat_map(|p| p.body.to_vec()).collect();
    for expected in [
        "nqdb-otlp-test",     // resource: service.name
        "POST /api/v1/query", // span names: method and route
        "GET /api/v1/tables", //
        request_id.as_str(),  // the request id, an attribute of the request's span
        "/api/v1/query",      // the path attribute
    ] {
        assert!(contains(&sent, expected), "{expected:?} was not exported");
    }
}

/// A `[telemetry]` value that cannot work fails start-up like any other bad setting.
#[test]
fn bad_telemetry_settings_stop_the_server_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value, key) in [
        (
            "NQDB_TELEMETRY__OTLP_ENDPOINT",
            "localhost:4318",
            "telemetry.otlp_endpoint",
        ),
        (
            "NQDB_TELEMETRY__SAMPLE_RATIO",
            "2",
            "telemetry.sample_ratio",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_nqdb"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(key), "{stderr}");
    }
}
