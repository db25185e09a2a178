//! The WebSocket API over a real connection: change feeds (exactly once, in order, filtered,
//! nothing from rollbacks, lagged and resumable), channels, streamed queries, limits.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nq_api::config::WebSocketConfig;
use nq_api::{RunningServer, ServerConfig};
use nq_node::engine::Engine;
use nq_node::server::EngineBackend;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    running: Option<RunningServer>,
    engine: Engine,
    key: String,
    _dir: tempfile::TempDir,
}

async fn start(ws: WebSocketConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let key = nq_node::server::init(dir.path()).unwrap().1;
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        websocket: ws,
        ..ServerConfig::default()
    };
    let running = nq_api::start(
        config,
        dir.path(),
        Arc::new(EngineBackend::new(engine.clone())),
    )
    .await
    .unwrap();
    Server {
        running: Some(running),
        engine,
        key,
        _dir: dir,
    }
}

impl Server {
    fn url(&self) -> String {
        format!("ws://{}/api/v1/ws", self.running.as_ref().unwrap().addr())
    }

    async fn connect_with(&self, key: &str) -> Ws {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?token={key}", self.url()))
            .await
            .unwrap();
        let welcome = recv(&mut ws).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws
    }

    async fn connect(&self) -> Ws {
        self.connect_with(&self.key.clone()).await
    }

    /// Runs SQL through an embedded session of the same engine (the writer side).
    fn sql(&self, sql: &str) {
        let mut session = self.engine.session();
        nq_node::SqlExecutor::execute(&mut session, sql, &[]).unwrap();
    }

    async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next JSON message (skipping pings), failing after 10 s.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("connection closed")
            .unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn subscribe(ws: &mut Ws, request: Value) -> Value {
    send(ws, request).await;
    let answer = recv(ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_feeds_deliver_every_commit_once_in_order() {
    let s = start(WebSocketConfig::default()).await;
    s.sql("CREATE TABLE items (id INT PRIMARY KEY, qty INT, tag TEXT)");
    let mut all = Vec::new();
    for _ in 0..4 {
        let mut ws = s.connect().await;
        subscribe(&mut ws, json!({"type": "subscribe", "table": "items"})).await;
        all.push(ws);
    }
    let mut filtered = s.connect().await;
    subscribe(
        &mut filtered,
        json!({"type": "subscribe", "table": "items", "where": "qty >= 10"}),
    )
    .await;
    let mut other = s.connect().await;
    s.sql("CREATE TABLE other (a INT)");
    subscribe(&mut other, json!({"type": "subscribe", "table": "other"})).await;

    // Writers: four threads committing concurrently, plus updates, deletes and a rollback.
    let engine = s.engine.clone();
    tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let engine = engine.clone();
                std::thread::spawn(move || {
                    let mut session = engine.session();
                    for i in 0..25 {
                        let id = t * 100 + i;
                        nq_node::SqlExecutor::execute(
                            &mut session,
                            &format!("INSERT INTO items VALUES ({id}, {i}, 't{t}')"),
                            &[],
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut session = engine.session();
        let run = |session: &mut nq_node::Session, sql: &str| {
            nq_node::SqlExecutor::execute(session, sql, &[]).unwrap();
        };
        run(&mut session, "BEGIN");
        run(&mut session, "INSERT INTO items VALUES (999, 50, 'gone')");
        run(&mut session, "ROLLBACK");
        run(
            &mut session,
            "UPDATE items SET qty = qty + 100 WHERE id = 0",
        );
        run(&mut session, "DELETE FROM items WHERE id = 301");
        run(&mut session, "BEGIN");
        run(&mut session, "INSERT INTO items VALUES (500, 1, 'x')");
        run(&mut session, "DELETE FROM items WHERE id = 500");
        run(&mut session, "COMMIT");
    })
    .await
    .unwrap();

    // 100 inserts, 1 update, 1 delete; the rollback and the insert-then-delete leave nothing.
    for ws in &mut all {
        let mut seqs = Vec::new();
        let mut inserted = std::collections::BTreeSet::new();
        let mut ops = Vec::new();
        for _ in 0..102 {
            let e = recv(ws).await;
            assert_eq!(e["type"], "change", "{e}");
            assert_eq!(e["table"], "items");
            seqs.push(e["seq"].as_u64().unwrap());
            if e["op"] == "insert" {
                assert!(
                    inserted.insert(e["row"]["id"].as_i64().unwrap()),
                    "duplicate {e}"
                );
                assert_eq!(e["old"], Value::Null);
            }
            ops.push(e);
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
        assert_eq!(inserted.len(), 100);
        assert_eq!(ops[100]["op"], "update");
        assert_eq!(ops[100]["old"]["qty"], 0);
        assert_eq!(ops[100]["row"]["qty"], 100);
        assert_eq!(ops[101]["op"], "delete");
        assert_eq!(ops[101]["old"]["id"], 301);
        assert_eq!(ops[101]["row"], Value::Null);
        // Nothing more: the ping answers first.
        send(ws, json!({"type": "ping", "data": 1})).await;
        assert_eq!(recv(ws).await["type"], "pong");
    }
    // The filter: inserts with qty >= 10 (15 per thread) plus the update (0 -> 100).
    let mut n = 0;
    loop {
        let e = recv(&mut filtered).await;
        if e["op"] == "update" {
            break;
        }
        assert!(e["row"]["qty"].as_i64().unwrap() >= 10, "{e}");
        n += 1;
    }
    assert_eq!(n, 60);
    // The other table's feed got nothing.
    send(&mut other, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut other).await["type"], "pong");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_is_told_and_can_resume() {
    let s = start(WebSocketConfig {
        max_lag: 20,
        change_retention: 1000,
        queue_len: 8,
        ..WebSocketConfig::default()
    })
    .await;
    s.sql("CREATE TABLE t (id INT PRIMARY KEY)");
    let mut ws = s.connect().await;
    let sub = subscribe(&mut ws, json!({"type": "subscribe", "table": "t"})).await;
    let id = sub["subscription"].as_u64().unwrap();
    let first = sub["from_seq"].as_u64().unwrap();
    send(&mut ws, json!({"type": "pause", "subscription": id})).await;
    assert_eq!(recv(&mut ws).await["type"], "paused");
    for i in 0..50 {
        s.sql(&format!("INSERT INTO t VALUES ({i})"));
    }
    send(&mut ws, json!({"type": "resume", "subscription": id})).await;
    assert_eq!(recv(&mut ws).await["type"], "resumed");
    let lagged = recv(&mut ws).await;
    assert_eq!(lagged["type"], "lagged", "{lagged}");
    assert_eq!(lagged["missed"], 50);
    assert_eq!(lagged["resume_from"].as_u64().unwrap(), first);
    // Resuming from there delivers all 50, in order.
    send(
        &mut ws,
        json!({"type": "subscribe", "table": "t", "resume_from": first}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "subscribed");
    for i in 0..50 {
        let mut e = recv(&mut ws).await;
        // With an 8-message queue, catching up may bring slow_down notices between events.
        while e["type"] == "slow_down" {
            assert_eq!(e["subscription"], 2);
            e = recv(&mut ws).await;
        }
        assert_eq!(e["row"]["id"], i, "{e}");
        assert_eq!(e["seq"].as_u64().unwrap(), first + i);
    }
    // A resume point that is no longer retained is an error naming the oldest.
    send(
        &mut ws,
        json!({"type": "subscribe", "table": "t", "resume_from": 0}),
    )
    .await;
    let e = recv(&mut ws).await;
    assert_eq!(e["code"], "resume_gap", "{e}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_queries_and_protocol_errors() {
    let s = start(WebSocketConfig {
        channel_history: 2,
        ..WebSocketConfig::default()
    })
    .await;
    let mut a = s.connect().await;
    for i in 0..3 {
        send(
            &mut a,
            json!({"type": "publish", "channel": "news", "payload": {"n": i}}),
        )
        .await;
        let ack = recv(&mut a).await;
        assert_eq!(
            (ack["type"].as_str(), ack["seq"].as_u64()),
            (Some("published"), Some(i + 1))
        );
    }
    // A new subscriber gets the last two as history, then live messages.
    let mut b = s.connect().await;
    subscribe(&mut b, json!({"type": "subscribe", "channel": "news"})).await;
    assert_eq!(recv(&mut b).await["payload"]["n"], 1);
    assert_eq!(recv(&mut b).await["payload"]["n"], 2);
    send(
        &mut a,
        json!({"type": "publish", "channel": "news", "payload": "live"}),
    )
    .await;
    assert_eq!(recv(&mut a).await["type"], "published");
    let m = recv(&mut b).await;
    assert_eq!(
        (m["type"].as_str(), m["payload"].as_str()),
        (Some("message"), Some("live"))
    );

    // Access control: readonly keys read but do not publish; admin. channels are admin-only.
    let auth = nq_api::auth::KeyStore::open(s._dir.path()).unwrap();
    let (_, reader) = auth
        .create("r", nq_api::auth::Role::Readonly, None)
        .unwrap();
    let mut r = s.connect_with(&reader).await;
    send(
        &mut r,
        json!({"type": "publish", "channel": "news", "payload": 1}),
    )
    .await;
    assert_eq!(recv(&mut r).await["code"], "forbidden");
    send(&mut r, json!({"type": "subscribe", "channel": "admin.ops"})).await;
    assert_eq!(recv(&mut r).await["code"], "forbidden");
    send(
        &mut r,
        json!({"type": "query", "id": "w", "sql": "CREATE TABLE z (a INT)"}),
    )
    .await;
    assert_eq!(recv(&mut r).await["code"], "permission_denied");

    // Streamed query in batches.
    s.sql("CREATE TABLE n (i INT PRIMARY KEY)");
    let values: Vec<String> = (0..25).map(|i| format!("({i})")).collect();
    s.sql(&format!("INSERT INTO n VALUES {}", values.join(",")));
    send(
        &mut a,
        json!({"type": "query", "id": "q1", "sql": "SELECT i FROM n ORDER BY i", "batch_rows": 10}),
    )
    .await;
    assert_eq!(recv(&mut a).await["type"], "columns");
    let mut got = Vec::new();
    loop {
        let m = recv(&mut a).await;
        match m["type"].as_str().unwrap() {
            "rows" => got.extend(
                m["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r[0].as_i64().unwrap()),
            ),
            "done" => {
                assert_eq!(m["row_count"], 25);
                break;
            }
            other => panic!("unexpected {other}: {m}"),
        }
    }
    assert_eq!(got, (0..25).collect::<Vec<_>>());
    // Bad SQL, bad messages, unknown subscriptions: errors, and the connection lives on.
    send(
        &mut a,
        json!({"type": "query", "id": "q2", "sql": "SELEC 1"}),
    )
    .await;
    let e = recv(&mut a).await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_str()),
        (Some("syntax_error"), Some("q2"))
    );
    a.send(Message::text("{not json")).await.unwrap();
    assert_eq!(recv(&mut a).await["code"], "bad_message");
    send(&mut a, json!({"type": "fly"})).await;
    assert_eq!(recv(&mut a).await["code"], "bad_message");
    send(&mut a, json!({"type": "unsubscribe", "subscription": 99})).await;
    assert_eq!(recv(&mut a).await["code"], "unknown_subscription");
    send(&mut a, json!({"type": "subscribe", "table": "nope"})).await;
    assert_eq!(recv(&mut a).await["code"], "undefined_table");
    send(
        &mut a,
        json!({"type": "subscribe", "table": "n", "where": "nosuch > 1"}),
    )
    .await;
    assert_eq!(recv(&mut a).await["code"], "undefined_column");
    send(&mut a, json!({"type": "ping", "data": "still here"})).await;
    assert_eq!(recv(&mut a).await["data"], "still here");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_auth_connection_limit_and_idle_timeout() {
    let s = start(WebSocketConfig {
        max_connections: 2,
        heartbeat_ms: 100,
        idle_timeout_ms: 400,
        ..WebSocketConfig::default()
    })
    .await;
    // Without credentials the upgrade is refused with 401.
    let err = tokio_tungstenite::connect_async(s.url()).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 401),
        other => panic!("{other:?}"),
    }
    let mut a = s.connect().await;
    // A long query, cancelled.
    s.sql("CREATE TABLE n (i INT PRIMARY KEY)");
    let values: Vec<String> = (0..400).map(|i| format!("({i})")).collect();
    s.sql(&format!("INSERT INTO n VALUES {}", values.join(",")));
    send(
        &mut a,
        json!({"type": "query", "id": "slow", "sql": "SELECT count(*) FROM n x, n y, n z"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut a, json!({"type": "cancel", "id": "slow"})).await;
    loop {
        let m = recv(&mut a).await;
        if m["type"] == "columns" {
            continue;
        }
        assert_eq!(m["type"], "cancelled", "{m}");
        break;
    }
    // The limit: a third connection is refused while two are open.
    let _b = s.connect().await;
    let err = tokio_tungstenite::connect_async(format!("{}?token={}", s.url(), s.key))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 503),
        other => panic!("{other:?}"),
    }
    // Connections that stop answering (no pongs: nobody reads them) are closed.
    drop(a);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let c = s.connect().await;
    drop(c);
    s.stop().await;
}
