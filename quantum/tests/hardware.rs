//! The hardware clients against a local mock HTTP server (never a real service).
#![cfg(feature = "hardware")]

use std::io::BufRead;
use std::io::BufReader;
use std::io::Read;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use nq_quantum::QuantumError;
use nq_quantum::hardware::DWaveClient;
use nq_quantum::hardware::Endpoint;
use nq_quantum::hardware::QuEraClient;
use nq_quantum::model::Ising;
use nq_quantum::solve::Sampler;

/// One request as the mock saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    body: String,
}

/// Serves `responses` in order, one per connection, and records the requests.
fn mock_server(responses: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (status, body) in responses {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let mut length = 0;
            let mut auth = None;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "x-auth-token" | "authorization" => auth = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut request_body = vec![0; length];
            reader.read_exact(&mut request_body).unwrap();
            log.lock().unwrap().push(Seen {
                method,
                path,
                auth,
                body: String::from_utf8(request_body).unwrap(),
            });
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    (url, seen)
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        poll_interval: Duration::from_millis(1),
        timeout: Duration::from_secs(10),
        ..Endpoint::new(url, "secret-token")
    }
}

/// Two spins that want to disagree: ground states (+1, -1) and (-1, +1), energy -1.
fn model() -> Ising {
    let mut builder = Ising::builder(2);
    builder.add_coupling(0, 1, 1.0);
    builder.build().unwrap()
}

#[test]
fn test_dwave_client_submits_polls_and_rescores() {
    let (url, seen) = mock_server(vec![
        (200, r#"{"id": "p1", "status": "PENDING"}"#.into()),
        (200, r#"{"id": "p1", "status": "IN_PROGRESS"}"#.into()),
        (
            200,
            r#"{"id": "p1", "status": "COMPLETED", "answer": {"solutions": [[1, 1], [1, -1]], "energies": [-99, -99]}}"#.into(),
        ),
    ]);
    let client = DWaveClient::new(endpoint(&url), "Advantage_test");
    let result = client.sample_ising(&model()).unwrap();
    // Energies come from our model, not from the service's claims.
    assert_eq!(result.energies, vec![1.0, -1.0]);
    assert_eq!(result.best.bits, vec![1, 0]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/problems")
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", "/problems/p1")
    );
    assert!(
        seen.iter()
            .all(|s| s.auth.as_deref() == Some("secret-token"))
    );
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["solver"], "Advantage_test");
    assert_eq!(body["data"]["quad"], serde_json::json!([[0, 1, 1.0]]));
}

#[test]
fn test_quera_client_uses_bearer_auth_and_qubo_program() {
    let (url, seen) = mock_server(vec![(
        200,
        r#"{"id": "t9", "status": "COMPLETED", "measurements": [[0, 1], [0, 0]]}"#.into(),
    )]);
    let client = QuEraClient::new(endpoint(&url), "Aquila");
    let result = client.sample_ising(&model()).unwrap();
    assert_eq!(result.best.bits, vec![0, 1]);
    assert_eq!(result.best.energy, -1.0);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].path, "/tasks");
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer secret-token"));
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["program"]["type"], "qubo");
}

#[test]
fn test_failures_are_typed_errors() {
    let (url, _) = mock_server(vec![(
        200,
        r#"{"id": "p2", "status": "FAILED", "error_message": "no such solver"}"#.into(),
    )]);
    let error = DWaveClient::new(endpoint(&url), "nope")
        .sample_ising(&model())
        .unwrap_err();
    assert!(
        matches!(
            error,
            QuantumError::Hardware {
                backend: "dwave",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("no such solver"));

    let (url, _) = mock_server(vec![(401, r#"{"error": "bad token"}"#.into())]);
    let error = QuEraClient::new(endpoint(&url), "Aquila")
        .sample_ising(&model())
        .unwrap_err();
    assert!(
        matches!(
            error,
            QuantumError::Hardware {
                backend: "quera",
                ..
            }
        ),
        "{error}"
    );

    let (url, _) = mock_server(vec![(
        200,
        r#"{"id": "p3", "status": "COMPLETED", "answer": {"solutions": [[1, 7]]}}"#.into(),
    )]);
    assert!(
        DWaveClient::new(endpoint(&url), "x")
            .sample_ising(&model())
            .is_err()
    );
}

#[test]
fn test_unconfigured_endpoints_are_never_contacted() {
    let unconfigured = Endpoint::new("", "");
    let error = DWaveClient::new(unconfigured, "x")
        .sample_ising(&model())
        .unwrap_err();
    assert!(matches!(error, QuantumError::InvalidParameter { .. }));
    assert!(Endpoint::from_env("NQ_TEST_SURELY_UNSET_BACKEND").is_none());
    assert!(!format!("{:?}", endpoint("http://x")).contains("secret-token"));
}
