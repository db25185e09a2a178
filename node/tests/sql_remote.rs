//! `nqdb sql --url`: the real `nqdb` binary against a server on port 0 (as in tests/api.rs).
//! What it prints for a server must be what it prints for an embedded database with the same
//! data; errors, authentication, HTTP transactions and Ctrl-C are checked too.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nq_api::{RunningServer, ServerConfig};
use nq_node::engine::Engine;
use nq_node::server::EngineBackend;

const NQDB: &str = env!("CARGO_BIN_EXE_nqdb");

/// A server on port 0 over an engine in a temporary directory, with its first admin key.
struct Server {
    runtime: tokio::runtime::Runtime,
    running: Option<RunningServer>,
    url: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_with(ServerConfig::default())
    }

    fn start_with(config: ServerConfig) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let key = nq_node::server::init(dir.path()).unwrap().1;
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let running = runtime
            .block_on(nq_api::start(
                config,
                dir.path(),
                Arc::new(EngineBackend::new(engine)),
            ))
            .unwrap();
        Server {
            url: running.base_url(),
            running: Some(running),
            runtime,
            key,
            _dir: dir,
        }
    }

    /// Runs `nqdb sql --url` with the key and `args`, `stdin` piped in.
    fn sql(&self, args: &[&str], stdin: &str) -> Output {
        let mut full = vec!["--url", &self.url, "--key", &self.key];
        full.extend_from_slice(args);
        nqdb(&full, stdin, &[])
    }

    /// Runs the script `sql` on the server and returns standard output; fails the test if it
    /// fails.
    fn run(&self, sql: &str) -> String {
        let out = self.sql(&["-c", sql], "");
        assert_success(&out);
        stdout(&out)
    }

    /// `nqdb_http_transactions_open` from `/metrics`.
    fn open_transactions(&self) -> u64 {
        let text = self.runtime.block_on(async {
            reqwest::get(format!("{}/api/v1/metrics", self.url))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        text.lines()
            .find_map(|l| l.strip_prefix("nqdb_http_transactions_open "))
            .unwrap_or_else(|| panic!("no transaction gauge in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.runtime.block_on(running.shutdown());
        }
    }
}

/// Runs `nqdb sql` with `args` and `stdin`, without an API key from the environment unless
/// `env` sets one.
fn nqdb(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(NQDB);
    command
        .arg("sql")
        .args(args)
        .env_remove("NQDB_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs `nqdb sql --data-dir dir` with `args` and `stdin`.
fn embedded(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let dir = dir.to_str().unwrap();
    let mut full = vec!["--data-dir", dir];
    full.extend_from_slice(args);
    nqdb(&full, stdin, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Asserts that the remote and the embedded run printed the same, and succeeded alike.
fn assert_same(remote: &Output, local: &Output, what: &str) {
    assert_eq!(stdout(remote), stdout(local), "standard output of {what}");
    assert_eq!(stderr(remote), stderr(local), "standard error of {what}");
    assert_eq!(
        remote.status.code(),
        local.status.code(),
        "status of {what}"
    );
}

const SETUP: &str = r#"
CREATE TABLE items (
    id INT PRIMARY KEY,
    name VARCHAR(40) NOT NULL DEFAULT 'unnamed',
    price DECIMAL(10,2),
    weight DOUBLE PRECISION,
    ok BOOLEAN,
    born DATE,
    seen TIMESTAMP,
    doc JSON,
    raw BLOB
);
CREATE UNIQUE INDEX items_name ON items (name);
INSERT INTO items VALUES
    (1, 'apple', 1.50, 0.25, true, '2024-02-29', '2024-02-29 12:34:56.5', '{"tags": ["red", "fruit"], "n": 1}', '\x0aff'),
    (2, 'comma, "quoted"', 10, 2.0, false, '1999-12-31', '2000-01-01 00:00:00', '"just text"', NULL),
    (3, 'two
lines', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, '', 0.05, 1e20, true, '1970-01-01', '1970-01-01 00:00:01', '[1, 2.5, null]', '\x');
UPDATE items SET weight = weight * 2 WHERE id <= 2;
DELETE FROM items WHERE id = 4 RETURNING id, name;
INSERT INTO items (id, name) VALUES (5, 'ünïcödé');
"#;

const QUERIES: &str = r#"
SELECT * FROM items ORDER BY id;
SELECT id, price * 2 AS double_price, weight / 3 AS third, name || '!' AS shout FROM items ORDER BY id;
SELECT count(*) AS n, sum(price) AS total, avg(weight) AS mean, max(born) AS latest FROM items;
SELECT 1 AS one, 'x' AS x, NULL AS nothing, 2.5::DOUBLE PRECISION AS f, 7::BIGINT AS big;
SELECT name FROM items WHERE id > 100;
"#;

#[test]
fn output_matches_embedded_mode_in_every_format() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    let remote = server.sql(&["-f", "-"], SETUP);
    let local = embedded(dir.path(), &["-f", "-"], SETUP);
    assert_success(&remote);
    assert_same(&remote, &local, "the setup");
    assert!(
        stdout(&remote).contains("CREATE TABLE\nCREATE INDEX\nINSERT 0 4\nUPDATE 2\n"),
        "{}",
        stdout(&remote)
    );

    for format in ["table", "csv", "json"] {
        let remote = server.sql(&["--format", format], QUERIES);
        let local = embedded(dir.path(), &["--format", format], QUERIES);
        assert_success(&remote);
        assert_same(&remote, &local, format);
        let text = stdout(&remote);
        for expected in ["apple", "1.50", "ünïcödé", "2024-02-29"] {
            assert!(
                text.contains(expected),
                "{format}: no {expected} in\n{text}"
            );
        }
    }

    // Exact output, so that the comparison above cannot pass on two equally wrong outputs.
    let table = server.run("SELECT id, name, price, weight FROM items WHERE id <= 2 ORDER BY id");
    assert_eq!(
        table,
        " id |      name       | price | weight
----+-----------------+-------+--------
  1 | apple           |  1.50 |    0.5
  2 | comma, \"quoted\" | 10.00 |    4.0
(2 rows)

"
    );
    let out = server.sql(
        &[
            "--format",
            "csv",
            "-c",
            "SELECT id, name, raw FROM items ORDER BY id",
        ],
        "",
    );
    assert_eq!(
        stdout(&out),
        "id,name,raw\n1,apple,\\x0aff\n2,\"comma, \"\"quoted\"\"\",\n3,\"two\nlines\",\n5,ünïcödé,\n"
    );
    let out = server.sql(
        &[
            "--format",
            "json",
            "-c",
            "SELECT id, price, doc FROM items WHERE id = 1",
        ],
        "",
    );
    assert_eq!(
        stdout(&out),
        concat!(
            r#"{"columns":[{"name":"id","type":"INTEGER"},{"name":"price","type":"DECIMAL(10,2)"},"#,
            r#"{"name":"doc","type":"JSON"}],"rows":[[1,"1.50",{"n":1,"tags":["red","fruit"]}]],"#,
            r#""rows_affected":0}"#,
            "\n"
        )
    );
}

#[test]
fn describe_commands_match_embedded_mode() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let script = "CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                  email VARCHAR(80) DEFAULT 'none'); CREATE INDEX people_email ON people (email);\n\
                  CREATE TABLE \"Odd Name\" (x INT);\n\
                  \\d\n\\d people\n\\d \"Odd Name\"\n";
    let remote = server.sql(&[], script);
    let local = embedded(dir.path(), &[], script);
    assert_success(&remote);
    assert_same(&remote, &local, "\\d");
    let text = stdout(&remote);
    for line in [
        " people   |       3 |       1\n",
        " Odd Name |       1 |       0\n",
        " email              | VARCHAR(80) | true     | 'none'  | false\n",
        " index people_email | (email)     | NULL     | NULL    | false\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }

    let missing = server.sql(&["-c", "\\d nope"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing),
        "ERROR [undefined_table]: table \"nope\" does not exist\n"
    );
}

#[test]
fn sql_errors_print_as_embedded_ones_and_fail() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    for script in [
        "SELECT 1 AS before;\nSELECT *\n  FORM items;\nSELECT 2;",
        "SELECT * FROM nope",
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1);",
    ] {
        let remote = server.sql(&["-c", script], "");
        let local = embedded(dir.path(), &["-c", script], "");
        assert_eq!(remote.status.code(), Some(1), "{script}");
        assert_same(&remote, &local, script);
    }
    let out = server.sql(&["-c", "SELECT 1;\nSELECT *\n  FORM items;"], "");
    assert_eq!(
        stderr(&out),
        "ERROR [syntax_error] at line 3, column 3: Expected: end of statement, found: FORM\n\
         LINE 3:   FORM items;\n          ^\n"
    );
}

#[test]
fn keys_come_from_the_flag_or_the_environment_and_bad_ones_fail() {
    let server = Server::start();
    let bad = "nqk_0000000000000000_notthesecret";
    let out = nqdb(
        &["--url", &server.url, "--key", bad, "-c", "SELECT 1"],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("ERROR [unauthorized]: "), "{err}");
    assert!(
        !err.contains("notthesecret") && stdout(&out).is_empty(),
        "{err}"
    );

    let out = nqdb(&["--url", &server.url, "-c", "SELECT 1"], "", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("ERROR [unauthorized]: "));

    let out = nqdb(
        &["--url", &server.url, "-c", "SELECT 1 AS one"],
        "",
        &[("NQDB_API_KEY", &server.key)],
    );
    assert_success(&out);
    assert_eq!(stdout(&out), " one\n-----\n   1\n(1 row)\n\n");
}

#[test]
fn connection_failures_name_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = nqdb(&["--url", &url, "--key", "k", "-c", "SELECT 1"], "", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("ERROR [connection_failed]: "), "{err}");
    assert!(err.contains(&url), "{err}");

    let out = nqdb(&["--url", "localhost:8080", "-c", "SELECT 1"], "", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid --url"), "{}", stderr(&out));
}

#[test]
fn transactions_roll_back_commit_and_end_with_the_shell() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let setup = "CREATE TABLE t (id INT PRIMARY KEY)";
    server.run(setup);
    assert_success(&embedded(dir.path(), &["-c", setup], ""));

    // Inside the transaction its rows are visible; after ROLLBACK they are gone. The same
    // script prints the same embedded.
    let script = "BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); \
                  SELECT count(*) AS n FROM t; ROLLBACK; SELECT count(*) AS n FROM t;";
    let remote = server.sql(&["-c", script], "");
    assert_success(&remote);
    assert_same(&remote, &embedded(dir.path(), &["-c", script], ""), script);
    assert_eq!(
        stdout(&remote),
        "BEGIN\nINSERT 0 1\nINSERT 0 1\n n\n---\n 2\n(1 row)\n\nROLLBACK\n n\n---\n 0\n(1 row)\n\n"
    );

    let script = "START TRANSACTION; INSERT INTO t VALUES (3); COMMIT;";
    let remote = server.sql(&["-c", script], "");
    assert_same(&remote, &embedded(dir.path(), &["-c", script], ""), script);
    assert_eq!(stdout(&remote), "BEGIN\nINSERT 0 1\nCOMMIT\n");
    assert_eq!(
        server.run("SELECT id FROM t"),
        " id\n----\n  3\n(1 row)\n\n"
    );

    // \q with a transaction open: the shell rolls it back at exit.
    let out = server.sql(&[], "BEGIN;\nINSERT INTO t VALUES (4);\n\\q\nCOMMIT;\n");
    assert_success(&out);
    assert_eq!(
        server.run("SELECT count(*) AS n FROM t"),
        " n\n---\n 1\n(1 row)\n\n"
    );
    // ... at once, instead of leaving it open on the server until its idle timeout.
    assert_eq!(server.open_transactions(), 0);

    // A failed statement ends the script; the transaction is rolled back too.
    let out = server.sql(
        &[
            "-c",
            "BEGIN; INSERT INTO t VALUES (5); INSERT INTO t VALUES (3);",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("ERROR [unique_violation]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.open_transactions(), 0);
    assert_eq!(
        server.run("SELECT count(*) AS n FROM t"),
        " n\n---\n 1\n(1 row)\n\n"
    );

    // COMMIT and ROLLBACK without a transaction are the server's errors, as embedded.
    for script in ["COMMIT", "ROLLBACK", "BEGIN; BEGIN;"] {
        let remote = server.sql(&["-c", script], "");
        assert_eq!(remote.status.code(), Some(1), "{script}");
        assert_same(&remote, &embedded(dir.path(), &["-c", script], ""), script);
    }
}

#[test]
fn timing_prints_each_statements_time() {
    let server = Server::start();
    let out = server.sql(&["--timing", "-c", "SELECT 1 AS one"], "");
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.starts_with(" one\n-----\n   1\n(1 row)\n\nTime: "),
        "{text}"
    );
    assert!(text.ends_with(" ms\n"), "{text}");
    let out = server.sql(&["-c", "\\timing on\nSELECT 1 AS one"], "");
    assert!(
        stdout(&out).contains("Timing is on.\n one"),
        "{}",
        stdout(&out)
    );
}

/// A table whose three-way cross join takes minutes.
#[cfg(unix)]
fn big_table_script() -> String {
    let values: Vec<String> = (0..1500).map(|i| format!("({i})")).collect();
    format!(
        "CREATE TABLE big (n INT); INSERT INTO big VALUES {};",
        values.join(", ")
    )
}

#[cfg(unix)]
const SLOW_QUERY: &str = "SELECT count(*) FROM big a, big b, big c WHERE a.n + b.n + c.n = -1";

/// Starts `nqdb sql args`, waits until it runs its statement, sends it SIGINT, and returns
/// its output and how long it took to stop after the signal.
#[cfg(unix)]
fn interrupt(args: &[&str]) -> (Output, Duration) {
    let child = Command::new(NQDB)
        .arg("sql")
        .args(args)
        .env_remove("NQDB_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Start-up takes milliseconds; the statement runs for minutes.
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    (out, signalled.elapsed())
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_the_running_statement() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    server.run(&big_table_script());
    assert_success(&embedded(dir.path(), &["-c", &big_table_script()], ""));

    // Embedded: the engine's cancel flag.
    let (out, took) = interrupt(&["--data-dir", dir_arg, "-c", SLOW_QUERY]);
    assert_eq!(stderr(&out), "query cancelled\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Remote, in a transaction: the request is dropped, the server cancels the statement,
    // and the shell's ROLLBACK at exit finds the transaction free again.
    let script = format!("BEGIN; {SLOW_QUERY};");
    let (out, took) = interrupt(&["--url", &server.url, "--key", &server.key, "-c", &script]);
    assert_eq!(stderr(&out), "query cancelled\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "BEGIN\n");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(server.open_transactions(), 0);
    assert_eq!(
        server.run("SELECT 1 AS one"),
        " one\n-----\n   1\n(1 row)\n\n"
    );
}

/// A self-signed certificate for localhost, made with the openssl command (as in tls.rs).
fn certificate(dir: &Path) -> nq_api::config::TlsConfig {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("the openssl command runs");
    assert!(status.success());
    nq_api::config::TlsConfig { cert, key }
}

#[test]
fn https_with_a_trusted_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let tls = certificate(certs.path());
    let cert = tls.cert.clone();
    let server = Server::start_with(ServerConfig {
        tls: Some(tls),
        ..ServerConfig::default()
    });
    assert!(server.url.starts_with("https://"), "{}", server.url);

    let out = server.sql(
        &[
            "--ca-cert",
            cert.to_str().unwrap(),
            "-c",
            "SELECT 'secure' AS s",
        ],
        "",
    );
    assert_success(&out);
    assert_eq!(stdout(&out), "   s\n--------\n secure\n(1 row)\n\n");

    // Without --ca-cert the self-signed certificate is not trusted.
    let out = server.sql(&["-c", "SELECT 1"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("ERROR [connection_failed]: "), "{err}");
    assert!(err.contains(&server.url), "{err}");
}
