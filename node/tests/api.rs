//! The HTTP API over real HTTP: a server on port 0 over a real engine in a temporary
//! directory, driven with reqwest. Every bad request must get a clean 4xx JSON error, and the
//! server must keep serving.

use std::sync::Arc;
use std::time::Duration;

use nq_api::{RunningServer, ServerConfig};
use nq_node::engine::Engine;
use nq_node::server::EngineBackend;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Server {
    running: Option<RunningServer>,
    engine: Engine,
    url: String,
    key: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn start_with(config: ServerConfig, init: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let key = if init {
        nq_node::server::init(dir.path()).unwrap().1
    } else {
        String::new()
    };
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    };
    let running = nq_api::start(
        config,
        dir.path(),
        Arc::new(EngineBackend::new(engine.clone())),
    )
    .await
    .unwrap();
    Server {
        url: format!("{}/api/v1", running.base_url()),
        running: Some(running),
        engine,
        key,
        http: reqwest::Client::new(),
        dir,
    }
}

async fn start() -> Server {
    start_with(ServerConfig::default(), true).await
}

impl Server {
    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn delete(&self, path: &str, key: &str) -> StatusCode {
        self.http
            .delete(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn sql(&self, sql: &str, params: Value) -> (StatusCode, Value) {
        self.post(
            "/query",
            &self.key.clone(),
            json!({"sql": sql, "params": params}),
        )
        .await
    }

    /// Fails the test unless the server still answers.
    async fn assert_alive(&self) {
        let (status, body) = self.sql("SELECT 1 + 1", json!([])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rows"], json!([[2]]));
    }

    async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_init_everything_but_health_says_run_init() {
    let s = start_with(ServerConfig::default(), false).await;
    let (status, body) = s.get("/health", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    for path in ["/ready", "/tables", "/metrics"] {
        let (status, body) = s.get(path, "anything").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(code(&body), "not_initialized");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nqdb init")
        );
    }
    let (status, body) = s.post("/query", "x", json!({"sql": "SELECT 1"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "not_initialized");
    // `nqdb init` beside the running server: the key works at once.
    let key = nq_node::server::init(s.dir.path()).unwrap().1;
    let (status, body) = s.post("/query", &key, json!({"sql": "SELECT 1"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.get("/ready", "").await.0, StatusCode::OK);
    // A second init refuses.
    assert!(nq_node::server::init(s.dir.path()).is_err());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_parameters_scripts_and_errors() {
    let s = start().await;
    let (status, body) = s
        .sql(
            "CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL, score DECIMAL(5,2)); \
             INSERT INTO users VALUES (1, 'ada', 1.50), (2, 'bob', NULL)",
            json!([]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["tag"], "CREATE TABLE");
    assert_eq!(body["results"][1]["rows_affected"], 2);

    let (status, body) = s
        .sql(
            "SELECT id, name, score FROM users WHERE id >= $1 ORDER BY id",
            json!([1]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["columns"][2],
        json!({"name": "score", "type": "DECIMAL(5,2)"})
    );
    assert_eq!(body["rows"], json!([[1, "ada", "1.50"], [2, "bob", null]]));

    let (status, body) = s
        .sql(
            "INSERT INTO users VALUES ($1, $2, $3) RETURNING id",
            json!([3, "cy", 2.5]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], json!([[3]]));

    // Syntax error: 400 with the position.
    let (status, body) = s.sql("SELECT * FORM users", json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "syntax_error");
    assert_eq!(body["error"]["position"], json!({"line": 1, "column": 10}));
    // Unknown table, wrong parameter type, missing parameter.
    let (status, body) = s.sql("SELECT * FROM nope", json!([])).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "undefined_table")
    );
    let (status, body) = s
        .sql("SELECT * FROM users WHERE id = $1", json!(["abc"]))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_value")
    );
    let (status, body) = s.sql("SELECT * FROM users WHERE id = $2", json!([1])).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameter")
    );
    // Constraint violations are conflicts naming the constraint.
    let (status, body) = s
        .sql("INSERT INTO users VALUES (1, 'again', NULL)", json!([]))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "unique_violation")
    );
    let (status, body) = s
        .sql("INSERT INTO users VALUES (9, NULL, NULL)", json!([]))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "not_null_violation")
    );
    // Bodies that are not the request.
    let (status, body) = s.post("/query", &s.key, json!({"sql": 5})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    let (status, body) = s
        .post("/query", &s.key, json!({"sql": "SELECT 1", "bogus": 1}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    let r = s
        .http
        .post(format!("{}/query", s.url))
        .bearer_auth(&s.key)
        .body("{\"sql\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.json().await.unwrap()), "malformed_json");
    // max_rows truncates and says so.
    let (status, body) = s
        .post(
            "/query",
            &s.key,
            json!({"sql": "SELECT id FROM users ORDER BY id", "max_rows": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["rows"], json!([[1], [2]]));
    assert_eq!(body["truncated"], true);
    s.assert_alive().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_tokens_revocation_and_roles() {
    let config = ServerConfig {
        auth: nq_api::config::AuthConfig {
            token_ttl_seconds: 1,
        },
        ..ServerConfig::default()
    };
    let s = start_with(config, true).await;
    // Missing, malformed and wrong credentials.
    let r = s
        .http
        .get(format!("{}/tables", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&r.json().await.unwrap()), "unauthorized");
    let r = s
        .http
        .get(format!("{}/tables", s.url))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/tables", "nqk_0000_wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut wrong = s.key.clone();
    wrong.pop();
    wrong.push(if s.key.ends_with('x') { 'y' } else { 'x' });
    assert_eq!(s.get("/tables", &wrong).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/tables", "not.a.jwt").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Keys with roles.
    let (status, created) = s
        .post(
            "/keys",
            &s.key,
            json!({"name": "reader", "role": "readonly"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let reader = created["key"].as_str().unwrap().to_string();
    let reader_id = created["id"].as_str().unwrap().to_string();
    let (status, body) = s
        .post("/keys", &s.key, json!({"name": "x", "role": "god"}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    let (status, _) = s.sql("CREATE TABLE t (a INT)", json!([])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .post("/query", &reader, json!({"sql": "SELECT count(*) FROM t"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .post(
            "/query",
            &reader,
            json!({"sql": "INSERT INTO t VALUES (1)"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    let (status, body) = s
        .post("/keys", &reader, json!({"name": "y", "role": "admin"}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, keys) = s.get("/keys", &s.key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        !keys.to_string().contains(&reader[10..]),
        "secrets are never listed"
    );

    // Tokens: issued for a key, usable, and they expire.
    let (status, token) = s.post("/auth/token", "", json!({"api_key": reader})).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let jwt = token["token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/tables", &jwt).await.0, StatusCode::OK);
    let (status, _) = s
        .post("/auth/token", "", json!({"api_key": "nqk_1_2"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = s.get("/tables", &jwt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    // Revocation: the key and its tokens stop working at once.
    let (_, token) = s.post("/auth/token", "", json!({"api_key": reader})).await;
    let jwt = token["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.delete(&format!("/keys/{reader_id}"), &s.key).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get("/tables", &reader).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = s.get("/tables", &jwt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
    // The last admin key cannot be deleted; unknown keys are 404.
    let admin_id = s.key.split('_').nth(1).unwrap().to_string();
    assert_eq!(
        s.delete(&format!("/keys/{admin_id}"), &s.key).await,
        StatusCode::CONFLICT
    );
    assert_eq!(s.delete("/keys/nope", &s.key).await, StatusCode::NOT_FOUND);
    s.assert_alive().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_across_requests() {
    let config = ServerConfig {
        transactions: nq_api::config::TransactionsConfig {
            idle_timeout_ms: 300,
            max_open: 3,
        },
        ..ServerConfig::default()
    };
    let s = start_with(config, true).await;
    s.sql("CREATE TABLE acct (id INT PRIMARY KEY, bal INT)", json!([]))
        .await;
    let open = |s: &Server| {
        let key = s.key.clone();
        let http = s.http.clone();
        let url = s.url.clone();
        async move {
            let r = http
                .post(format!("{url}/transactions"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    // Commit: invisible before, visible after.
    let id = open(&s).await;
    let (status, body) = s
        .post(
            &format!("/transactions/{id}/query"),
            &s.key,
            json!({"sql": "INSERT INTO acct VALUES (1, 100)"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = s.sql("SELECT count(*) FROM acct", json!([])).await;
    assert_eq!(body["rows"], json!([[0]]));
    let (status, body) = s
        .post(&format!("/transactions/{id}/commit"), &s.key, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "COMMIT");
    let (_, body) = s.sql("SELECT count(*) FROM acct", json!([])).await;
    assert_eq!(body["rows"], json!([[1]]));
    let (status, _) = s
        .post(&format!("/transactions/{id}/commit"), &s.key, json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a finished transaction is gone"
    );

    // Rollback discards.
    let id = open(&s).await;
    s.post(
        &format!("/transactions/{id}/query"),
        &s.key,
        json!({"sql": "INSERT INTO acct VALUES (2, 5)"}),
    )
    .await;
    let (status, body) = s
        .post(&format!("/transactions/{id}/rollback"), &s.key, json!({}))
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("ROLLBACK"))
    );
    let (_, body) = s.sql("SELECT count(*) FROM acct", json!([])).await;
    assert_eq!(body["rows"], json!([[1]]));

    // A failed statement dooms the transaction: commit answers 409 and nothing lands.
    let id = open(&s).await;
    s.post(
        &format!("/transactions/{id}/query"),
        &s.key,
        json!({"sql": "INSERT INTO acct VALUES (3, 1)"}),
    )
    .await;
    let (status, _) = s
        .post(
            &format!("/transactions/{id}/query"),
            &s.key,
            json!({"sql": "INSERT INTO acct VALUES (1, 1)"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = s
        .post(&format!("/transactions/{id}/commit"), &s.key, json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "transaction_rolled_back")
    );
    let (_, body) = s.sql("SELECT count(*) FROM acct", json!([])).await;
    assert_eq!(body["rows"], json!([[1]]));

    // Another key cannot see it; an idle one is rolled back.
    let (_, other) = s
        .post("/keys", &s.key, json!({"name": "o", "role": "readwrite"}))
        .await;
    let other = other["key"].as_str().unwrap().to_string();
    let id = open(&s).await;
    s.post(
        &format!("/transactions/{id}/query"),
        &s.key,
        json!({"sql": "INSERT INTO acct VALUES (4, 1)"}),
    )
    .await;
    let (status, _) = s
        .post(
            &format!("/transactions/{id}/query"),
            &other,
            json!({"sql": "SELECT 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, _) = s
        .post(&format!("/transactions/{id}/commit"), &s.key, json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the idle transaction was rolled back"
    );
    let (_, body) = s
        .sql("SELECT count(*) FROM acct WHERE id = 4", json!([]))
        .await;
    assert_eq!(body["rows"], json!([[0]]));

    // At most max_open at once.
    let _a = open(&s).await;
    let _b = open(&s).await;
    let _c = open(&s).await;
    let r = s
        .http
        .post(format!("{}/transactions", s.url))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    s.assert_alive().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_timeouts_and_unknown_routes() {
    let config = ServerConfig {
        limits: nq_api::config::LimitsConfig {
            max_body_bytes: 4096,
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let s = start_with(config, true).await;
    // Oversized body.
    let big = "x".repeat(10_000);
    let (status, body) = s.post("/query", &s.key, json!({"sql": big})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    // Statement timeout from the request.
    s.sql("CREATE TABLE n (i INT PRIMARY KEY)", json!([])).await;
    let values: Vec<String> = (0..300).map(|i| format!("({i})")).collect();
    s.sql(
        &format!("INSERT INTO n VALUES {}", values.join(",")),
        json!([]),
    )
    .await;
    let (status, body) = s
        .post(
            "/query",
            &s.key,
            json!({"sql": "SELECT count(*) FROM n a, n b, n c", "timeout_ms": 20}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::REQUEST_TIMEOUT, "query_canceled")
    );
    // Unknown routes and methods are JSON too.
    let (status, body) = s.get("/nope", &s.key).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = s.get("/query", &s.key).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (status, body) = s.get("/tables/missing", &s.key).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    s.assert_alive().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429() {
    let config = ServerConfig {
        rate_limit: nq_api::config::RateLimitConfig {
            per_key_per_second: 1,
            per_key_burst: 3,
            per_ip_per_second: 0,
            per_ip_burst: 0,
        },
        ..ServerConfig::default()
    };
    let s = start_with(config, true).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(s.get("/tables", &s.key).await.0);
    }
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3]);
    assert!(
        statuses[3..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let (_, body) = s.get("/tables", &s.key).await;
    assert_eq!(code(&body), "rate_limited");
    // Health is not rate limited per key.
    assert_eq!(s.get("/health", "").await.0, StatusCode::OK);
    s.stop().await;

    // Per client address: counts every request, with or without credentials.
    let config = ServerConfig {
        rate_limit: nq_api::config::RateLimitConfig {
            per_key_per_second: 0,
            per_key_burst: 0,
            per_ip_per_second: 1,
            per_ip_burst: 2,
        },
        ..ServerConfig::default()
    };
    let s = start_with(config, true).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(s.get("/health", "").await.0);
    }
    assert_eq!(&statuses[..2], &[StatusCode::OK; 2]);
    assert!(
        statuses[2..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_schema_metrics_openapi_and_shutdown() {
    let s = start().await;
    s.sql(
        "CREATE TABLE big (i INT PRIMARY KEY, s TEXT); CREATE INDEX big_s ON big (s)",
        json!([]),
    )
    .await;
    let values: Vec<String> = (0..2000).map(|i| format!("({i}, 'v{i}')")).collect();
    let (status, _) = s
        .sql(
            &format!("INSERT INTO big VALUES {}", values.join(",")),
            json!([]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // NDJSON stream.
    let r = s
        .http
        .post(format!("{}/query", s.url))
        .bearer_auth(&s.key)
        .json(&json!({"sql": "SELECT i, s FROM big ORDER BY i", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2002);
    assert_eq!(lines[0]["columns"][0]["name"], "i");
    assert_eq!(lines[1]["row"], json!([0, "v0"]));
    assert_eq!(lines[2000]["row"], json!([1999, "v1999"]));
    assert_eq!(lines[2001]["row_count"], 2000);
    // A failing streamed query is a plain error.
    let (status, body) = s
        .post(
            "/query",
            &s.key,
            json!({"sql": "SELECT nope FROM big", "stream": true}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "undefined_column")
    );

    // Schema.
    let (status, tables) = s.get("/tables", &s.key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tables[0]["name"], "big");
    let (_, table) = s.get("/tables/big", &s.key).await;
    assert_eq!(
        table["indexes"],
        json!([{"name": "big_s", "columns": ["s"], "unique": false}])
    );
    assert_eq!(table["columns"][0]["primary_key"], true);

    // Metrics.
    let (status, text) = s.get("/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for name in [
        "nqdb_http_requests_total{route=\"/api/v1/query\",method=\"POST\",status=\"200\"}",
        "nqdb_http_request_seconds_bucket",
        "nqdb_query_seconds_count",
        "nqdb_txn_commits_total",
        "nqdb_buffer_pool_hit_ratio",
        "nqdb_buffer_pool_prefetched_total",
        "nqdb_wal_sync_seconds_total",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }

    // The OpenAPI document lists exactly the routes.
    let doc: Value = s
        .http
        .get(format!("{}/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/auth/token",
            "/connections",
            "/health",
            "/keys",
            "/keys/{id}",
            "/metrics",
            "/quantum/solve",
            "/query",
            "/ready",
            "/tables",
            "/tables/{name}",
            "/transactions",
            "/transactions/{id}/commit",
            "/transactions/{id}/query",
            "/transactions/{id}/rollback",
            "/ws",
        ]
    );
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let ui = s
        .http
        .get(s.url.replace("/api/v1", "/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), StatusCode::OK);

    // Graceful shutdown flushes; the data is there after reopening.
    let dir = s.dir.path().to_path_buf();
    let Server {
        running,
        dir: tmp,
        engine,
        http,
        ..
    } = s;
    drop(http);
    running.unwrap().shutdown().await.unwrap();
    engine.close().unwrap();
    let engine = Engine::open(&dir).unwrap();
    let mut session = engine.session();
    let r = nq_node::SqlExecutor::execute(&mut session, "SELECT count(*) FROM big", &[]).unwrap();
    assert_eq!(r[0].rows[0][0], nq_node::Value::Int(2000));
    drop(tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantum_solve_qubo_maxcut_and_tsp() {
    let s = start().await;
    let key = s.key.clone();

    // x0 + x1 - 3·x0·x1 + 2: the minimum is both bits set, energy 1.
    let (status, body) = s
        .post(
            "/quantum/solve",
            &key,
            json!({"problem": {"type": "qubo", "variables": 2, "linear": [[0, 1.0], [1, 1.0]],
                   "quadratic": [[0, 1, -3.0]], "offset": 2.0}, "reads": 4, "sweeps": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bits"], json!([1, 1]));
    assert_eq!(body["energy"], json!(1.0));
    assert_eq!(body["solution"], json!({"type": "qubo", "energy": 1.0}));
    assert_eq!(body["solver"], json!("simulated-annealing"));

    // A 5-cycle: the best cut has 4 of its 5 edges, with every solver.
    let cycle: Vec<Value> = (0..5).map(|i| json!([i, (i + 1) % 5, 1.0])).collect();
    for solver in ["sa", "sqa", "pt"] {
        let (status, body) = s
            .post(
                "/quantum/solve",
                &key,
                json!({"problem": {"type": "maxcut", "nodes": 5, "edges": cycle},
                       "solver": solver, "reads": 8, "sweeps": 200, "seed": 3, "polish": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{solver}: {body}");
        assert_eq!(body["solution"]["cut"], json!(4.0), "{solver}: {body}");
        assert_eq!(body["energy"], json!(-4.0), "{solver}: {body}");
        assert_eq!(body["polished"]["solution"]["cut"], json!(4.0), "{body}");
        let side = body["solution"]["side"].as_array().unwrap();
        let crossing = (0..5).filter(|&i| side[i] != side[(i + 1) % 5]).count();
        assert_eq!(crossing, 4, "{body}");
    }

    // Four corners of a square: the best tour walks the perimeter, length 4.
    let (status, body) = s
        .post(
            "/quantum/solve",
            &key,
            json!({"problem": {"type": "tsp", "cities": [[0, 0], [1, 0], [1, 1], [0, 1]]},
                   "reads": 16, "sweeps": 1000, "polish": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // City 0 is fixed first, so (n-1)² bits.
    assert_eq!(body["variables"], json!(9));
    let mut tour: Vec<u64> = body["polished"]["solution"]["tour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert!((body["polished"]["solution"]["length"].as_f64().unwrap() - 4.0).abs() < 1e-9);
    tour.sort_unstable();
    assert_eq!(tour, vec![0, 1, 2, 3], "{body}");

    // Bad problems are 422, budgets beyond the limits 413, garbage 400, no key 401.
    for (problem, extra, want) in [
        (
            json!({"type": "maxcut", "nodes": 2, "edges": [[0, 5, 1.0]]}),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "qubo", "variables": 0}),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "tsp", "distances": [[0, 1], [1]]}),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "tsp", "cities": [[0, 0], [1, 1]], "distances": [[0, 1], [1, 0]]}),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "qubo", "variables": 2}),
            json!({"reads": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "qubo", "variables": 20000}),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "tsp", "cities": vec![[0.0, 0.0]; 102]}),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "qubo", "variables": 5000}),
            json!({"reads": 256, "sweeps": 100000}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            json!({"type": "knapsack"}),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let mut request = json!({"problem": problem});
        for (k, v) in extra.as_object().unwrap() {
            request[k] = v.clone();
        }
        let (status, body) = s.post("/quantum/solve", &key, request.clone()).await;
        assert_eq!(status, want, "{request}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    let (status, _) = s
        .post(
            "/quantum/solve",
            "wrong",
            json!({"problem": {"type": "qubo", "variables": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.assert_alive().await;
    s.stop().await;
}
