//! `rest` and `ws`: the HTTP/WebSocket server (`nqdb serve`) in a child process, driven over
//! loopback by clients in this process.
//!
//! - `rest`: idle RSS of the server after start-up, then point selects by primary key over
//!   `POST /api/v1/query` at 1 and 64 concurrent clients.
//! - `ws`: N WebSocket clients subscribed to one table's change feed while one writer commits
//!   single-row inserts over REST; every client must receive every insert. Latency is measured
//!   from just before the writer sends the INSERT to the event's arrival (the row carries the
//!   send time), so it includes the HTTP request and the commit: an upper bound on
//!   commit-to-delivery.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::Result;
use crate::report::Report;

/// `nq-bench rest`.
#[derive(Debug, Args)]
pub struct RestArgs {
    /// Rows in the table.
    #[arg(long, default_value_t = 10_000)]
    rows: u64,
    /// Seconds per concurrency level.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

/// `nq-bench ws`.
#[derive(Debug, Args)]
pub struct WsArgs {
    /// Subscribed WebSocket clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Single-row inserts the writer commits.
    #[arg(long, default_value_t = 100_000)]
    inserts: u64,
}

/// The hidden child: serves `--data-dir` on `--listen`.
#[derive(Debug, Args)]
pub struct ServeChildArgs {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    listen: SocketAddr,
}

pub fn run_child(args: &ServeChildArgs) -> Result<()> {
    let mut config = nq_node::server::NodeConfig {
        data_dir: args.data_dir.clone(),
        ..Default::default()
    };
    config.server.listen = args.listen;
    config.server.rate_limit.per_key_per_second = 0;
    config.server.rate_limit.per_ip_per_second = 0;
    config.server.websocket.max_connections = 100_000;
    config.log.level = "warn".into();
    nq_node::server::init_logging(&config.log);
    nq_node::server::serve(config)?;
    Ok(())
}

/// A server child process with its first API key.
struct ServerChild {
    child: Child,
    base: String,
    ws: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

async fn spawn_server() -> Result<ServerChild> {
    let dir = tempfile::tempdir()?;
    let (_, key) = nq_node::server::init(dir.path())?;
    let addr = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .arg("serve-child")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let server = ServerChild {
        child,
        base: format!("http://{addr}/api/v1"),
        ws: format!("ws://{addr}/api/v1/ws"),
        key,
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{}/ready", server.base))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the server child did not come up in 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(server)
}

fn rss_mb(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmRSS")?;
    Ok(kib / 1024.0)
}

async fn query(
    http: &reqwest::Client,
    server: &ServerChild,
    sql: &str,
    params: Value,
) -> Result<Value> {
    let r = http
        .post(format!("{}/query", server.base))
        .bearer_auth(&server.key)
        .json(&json!({"sql": sql, "params": params}))
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    if !status.is_success() {
        return Err(format!("{sql}: {status} {body}").into());
    }
    Ok(body)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run_rest(args: &RestArgs) -> Result<()> {
    runtime()?.block_on(async {
        let server = spawn_server().await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = rss_mb(server.child.id())?;
        let http = reqwest::Client::new();
        query(
            &http,
            &server,
            "CREATE TABLE kv (id BIGINT PRIMARY KEY, v TEXT)",
            json!([]),
        )
        .await?;
        let mut id = 0;
        while id < args.rows {
            let end = (id + 1000).min(args.rows);
            let values: Vec<String> = (id..end).map(|i| format!("({i}, 'value {i}')")).collect();
            query(
                &http,
                &server,
                &format!("INSERT INTO kv VALUES {}", values.join(",")),
                json!([]),
            )
            .await?;
            id = end;
        }
        let mut report = Report::new(vec!["ours"], false);
        report.push("idle_rss_mb", vec![idle], 1);
        for clients in [1usize, 64] {
            let done = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
            let started = Instant::now();
            let mut tasks = Vec::new();
            for c in 0..clients {
                let http = http.clone();
                let (base, key) = (server.base.clone(), server.key.clone());
                let done = Arc::clone(&done);
                let rows = args.rows;
                tasks.push(tokio::spawn(async move {
                    let mut i = c as u64 * 7919;
                    while Instant::now() < deadline {
                        i = (i * 6364136223846793005 + 1442695040888963407) % rows.max(1);
                        let r = http
                            .post(format!("{base}/query"))
                            .bearer_auth(&key)
                            .json(&json!({"sql": "SELECT v FROM kv WHERE id = $1", "params": [i]}))
                            .send()
                            .await
                            .map_err(|e| e.to_string())?;
                        let body: Value = r.json().await.map_err(|e| e.to_string())?;
                        if body["rows"][0][0] != json!(format!("value {i}")) {
                            return Err(format!("wrong answer for {i}: {body}"));
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), String>(())
                }));
            }
            for t in tasks {
                t.await??;
            }
            let qps = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
            report.push(format!("rest_point_qps_c{clients}"), vec![qps], 0);
        }
        report.push("loaded_rss_mb", vec![rss_mb(server.child.id())?], 1);
        print!("{}", report.markdown());
        print!("{}", report.machine_lines());
        Ok(())
    })
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub fn run_ws(args: &WsArgs) -> Result<()> {
    runtime()?.block_on(async {
        let server = spawn_server().await?;
        let http = reqwest::Client::new();
        query(
            &http,
            &server,
            "CREATE TABLE feed (id BIGINT PRIMARY KEY, sent BIGINT)",
            json!([]),
        )
        .await?;
        // Connect and subscribe every client before writing.
        let mut clients = Vec::with_capacity(args.clients);
        for _ in 0..args.clients {
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("{}?token={}", server.ws, server.key))
                    .await?;
            use futures_util::SinkExt;
            ws.next().await.ok_or("closed")??; // welcome
            ws.send(tokio_tungstenite::tungstenite::Message::text(
                json!({"type": "subscribe", "table": "feed"}).to_string(),
            ))
            .await?;
            let answer = ws.next().await.ok_or("closed")??;
            if !answer.to_text()?.contains("subscribed") {
                return Err(format!("subscribe failed: {answer}").into());
            }
            clients.push(ws);
        }
        let subscribed_rss = rss_mb(server.child.id())?;
        // Peak RSS, sampled while the run goes on.
        let pid = server.child.id();
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                loop {
                    if let Ok(mb) = rss_mb(pid) {
                        peak.fetch_max((mb * 1024.0) as u64, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let inserts = args.inserts;
        let latencies = Arc::new(parking_lot::Mutex::new(Vec::with_capacity(
            args.clients * inserts as usize,
        )));
        let lagged = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for mut ws in clients {
            let latencies = Arc::clone(&latencies);
            let lagged = Arc::clone(&lagged);
            readers.push(tokio::spawn(async move {
                let mut got = 0u64;
                let mut mine = Vec::with_capacity(inserts as usize);
                while got < inserts {
                    let Some(Ok(message)) = ws.next().await else {
                        break;
                    };
                    let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
                        continue;
                    };
                    let arrived = now_micros();
                    // Parsing only the field needed keeps the client side cheap.
                    if let Some(at) = text.find("\"sent\":") {
                        let digits: String = text[at + 7..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        if let Ok(sent) = digits.parse::<u64>() {
                            mine.push(arrived.saturating_sub(sent));
                            got += 1;
                        }
                    } else if text.contains("\"lagged\"") {
                        lagged.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                latencies.lock().extend(mine);
                got
            }));
        }
        let writer_start = Instant::now();
        for i in 0..inserts {
            query(
                &http,
                &server,
                "INSERT INTO feed VALUES ($1, $2)",
                json!([i, now_micros()]),
            )
            .await?;
        }
        let write_s = writer_start.elapsed().as_secs_f64();
        let mut delivered = 0u64;
        for r in readers {
            match tokio::time::timeout(Duration::from_secs(120), r).await {
                Ok(got) => delivered += got?,
                Err(_) => {
                    return Err(
                        "a client did not receive every event within 120 s after the last insert"
                            .into(),
                    );
                }
            }
        }
        let total_s = writer_start.elapsed().as_secs_f64();
        sampler.abort();
        let peak_rss = peak.load(Ordering::Relaxed) as f64 / 1024.0;
        let mut lat = std::mem::take(&mut *latencies.lock());
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        let expected = args.clients as u64 * inserts;
        let mut report = Report::new(vec!["ours"], false);
        report.push(
            "ws_delivered_ratio",
            vec![delivered as f64 / expected as f64],
            4,
        );
        report.push("ws_p50_ms", vec![pct(0.50)], 2);
        report.push("ws_p99_ms", vec![pct(0.99)], 2);
        report.push(
            "ws_lagged_clients",
            vec![lagged.load(Ordering::Relaxed) as f64],
            0,
        );
        report.push("writer_commits_per_s", vec![inserts as f64 / write_s], 0);
        report.push("events_per_s", vec![delivered as f64 / total_s], 0);
        report.push("server_rss_mb_subscribed", vec![subscribed_rss], 1);
        report.push("server_rss_mb", vec![peak_rss], 1);
        println!("clients={} inserts={}", args.clients, inserts);
        print!("{}", report.markdown());
        print!("{}", report.machine_lines());
        Ok(())
    })
}
