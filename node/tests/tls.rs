//! TLS: the server speaks HTTPS with a certificate from files, offers HTTP/2 and HTTP/1.1
//! through ALPN, and refuses a key that does not fit the certificate at start. HTTP/2 carries
//! real API requests, multiplexed on one connection, over TLS (ALPN `h2`) and over plain TCP
//! (h2c with prior knowledge).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nq_api::ServerConfig;
use nq_api::config::TlsConfig;
use nq_node::engine::Engine;
use nq_node::server::EngineBackend;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate for localhost, made with the openssl command.
fn certificate(dir: &Path, name: &str) -> TlsConfig {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl command runs");
    assert!(status.success());
    TlsConfig { cert, key }
}

fn client(cert: &Path, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_alpn_and_bad_keys_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tls = certificate(dir.path(), "a");
    let other = certificate(dir.path(), "b");
    let engine = Engine::open(&dir.path().join("data")).unwrap();
    let backend = Arc::new(EngineBackend::new(engine));

    // A key of another certificate is refused at start, naming the problem.
    let mismatched = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsConfig {
            cert: tls.cert.clone(),
            key: other.key.clone(),
        }),
        ..ServerConfig::default()
    };
    let err = nq_api::start(mismatched, dir.path(), backend.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");

    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(tls.clone()),
        ..ServerConfig::default()
    };
    let server = nq_api::start(config, dir.path(), backend).await.unwrap();
    assert!(server.base_url().starts_with("https://"));
    let addr = server.addr();
    let name = ServerName::try_from("localhost").unwrap();

    // ALPN: a client offering h2 gets h2.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = client(&tls.cert, &[b"h2", b"http/1.1"])
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(stream);

    // HTTP/1.1 over TLS answers.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut stream = client(&tls.cert, &[b"http/1.1"])
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    stream
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("{\"status\":\"ok\"}"), "{answer}");

    // A client that does not trust the certificate is refused by its own TLS stack.
    let untrusting = client(&other.cert, &[b"http/1.1"]);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(untrusting.connect(name, tcp).await.is_err());
    server.shutdown().await.unwrap();
}

/// A TCP forwarder to `target` on port 0 that counts the connections it accepts.
async fn counting_proxy(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, connections)
}

/// Requests over `http`, which must all travel as HTTP/2: statements, the table list, and
/// 24 concurrent queries sharing one connection (the proxy in front of the server counts).
async fn speak_http2(http: &reqwest::Client, base: &str, key: &str, connections: &AtomicUsize) {
    let query = |sql: &str, params: Value| {
        http.post(format!("{base}/api/v1/query"))
            .bearer_auth(key)
            .json(&json!({"sql": sql, "params": params}))
            .send()
    };
    let response = query(
        "CREATE TABLE h2_rows (id INT PRIMARY KEY, name TEXT NOT NULL)",
        json!([]),
    )
    .await
    .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let response = query(
        "INSERT INTO h2_rows VALUES ($1, 'one'), (2, 'two')",
        json!([1]),
    )
    .await
    .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let response = query("SELECT name FROM h2_rows ORDER BY id", json!([]))
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rows"], json!([["one"], ["two"]]), "{body}");

    let response = http
        .get(format!("{base}/api/v1/tables"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let tables: Value = response.json().await.unwrap();
    assert_eq!(tables[0]["name"], "h2_rows", "{tables}");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "one connection so far"
    );

    // Concurrent requests are streams of the one connection, not connections of their own.
    let answers = futures_util::future::join_all((0..24).map(|i| {
        let request = query("SELECT $1 * 2, count(*) FROM h2_rows", json!([i]));
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            (i, body)
        }
    }))
    .await;
    for (i, body) in answers {
        assert_eq!(body["rows"], json!([[i * 2, 2]]), "{body}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "HTTP/2 multiplexes the concurrent requests on one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_and_over_plain_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let tls = certificate(dir.path(), "h2");

    // TLS: the client negotiates h2 through ALPN.
    let data = dir.path().join("tls");
    let key = nq_node::server::init(&data).unwrap().1;
    let engine = Engine::open(&data).unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(tls.clone()),
        ..ServerConfig::default()
    };
    let server = nq_api::start(config, &data, Arc::new(EngineBackend::new(engine)))
        .await
        .unwrap();
    let (proxy, connections) = counting_proxy(server.addr()).await;
    let pem = std::fs::read(&tls.cert).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    speak_http2(&http, &format!("https://{proxy}"), &key, &connections).await;
    drop(http);
    server.shutdown().await.unwrap();

    // Plain TCP: h2c, the client starting with the HTTP/2 preface (no upgrade dance).
    let data = dir.path().join("plain");
    let key = nq_node::server::init(&data).unwrap().1;
    let engine = Engine::open(&data).unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let server = nq_api::start(config, &data, Arc::new(EngineBackend::new(engine)))
        .await
        .unwrap();
    let (proxy, connections) = counting_proxy(server.addr()).await;
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    speak_http2(&http, &format!("http://{proxy}"), &key, &connections).await;
    drop(http);
    server.shutdown().await.unwrap();
}
