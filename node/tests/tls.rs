//! TLS: the server speaks HTTPS with a certificate from files, offers HTTP/2 and HTTP/1.1
//! through ALPN, and refuses a key that does not fit the certificate at start.

use std::path::Path;
use std::sync::Arc;

use nq_api::ServerConfig;
use nq_api::config::TlsConfig;
use nq_node::engine::Engine;
use nq_node::server::EngineBackend;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
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
