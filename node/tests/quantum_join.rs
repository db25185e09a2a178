//! QUANTUM_JOIN end to end: EXPLAIN reports the annealer's work beside the exact optimum, the
//! annealed plan returns the same rows as the DP plan, and joins beyond the DP limit are
//! planned by annealing-or-greedy.

use nq_node::{Engine, Session, SqlExecutor, Value};

fn run(session: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    session
        .execute(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .pop()
        .unwrap()
        .rows
}

fn lines(rows: Vec<Vec<Value>>) -> Vec<String> {
    rows.into_iter()
        .map(|r| match &r[0] {
            Value::Text(s) => s.clone(),
            other => panic!("EXPLAIN row {other:?}"),
        })
        .collect()
}

/// `n` tables t0..t{n-1}, t{i}.prev referencing t{i-1}.id, of sizes that grow along the chain.
fn chain(session: &mut Session, n: usize) {
    for i in 0..n {
        run(
            session,
            &format!("CREATE TABLE t{i} (id INT PRIMARY KEY, prev INT)"),
        );
        let rows = 3 + (i * 7) % 11;
        let values: Vec<String> = (0..rows)
            .map(|k| format!("({k}, {})", k % (3 + ((i + 10) * 7) % 11)))
            .collect();
        run(
            session,
            &format!("INSERT INTO t{i} VALUES {}", values.join(", ")),
        );
    }
    run(session, "ANALYZE");
}

fn chain_query(n: usize, join: &str) -> String {
    let mut sql = "SELECT count(*) FROM t0".to_string();
    for i in 1..n {
        sql.push_str(&format!(" {join} t{i} ON t{i}.prev = t{}.id", i - 1));
    }
    sql
}

fn estimated_cost(line: &str, marker: &str) -> f64 {
    let at = line
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {line}"))
        + marker.len();
    line[at..]
        .trim_end_matches(')')
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn test_explain_shows_the_annealer_and_the_exact_optimum() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut session = engine.session();
    chain(&mut session, 6);
    let plain = run(&mut session, &chain_query(6, "JOIN"));
    let annealed = run(&mut session, &chain_query(6, "QUANTUM_JOIN"));
    assert_eq!(plain, annealed);
    let explain = lines(run(
        &mut session,
        &format!("EXPLAIN {}", chain_query(6, "QUANTUM_JOIN")),
    ));
    let order = explain
        .iter()
        .position(|l| l.starts_with("Join order (quantum annealing): "))
        .unwrap_or_else(|| panic!("{explain:#?}"));
    assert!(
        explain[order + 1].contains("permutation-annealing, QUBO of 36 variables"),
        "{explain:#?}"
    );
    assert!(
        explain[order + 2].starts_with("  Best energy "),
        "{explain:#?}"
    );
    let annealed_cost = estimated_cost(&explain[order], "(estimated cost ");
    let dp_cost = estimated_cost(
        &explain[order + 3],
        "Dynamic programming (exact): estimated cost ",
    );
    assert!(annealed_cost > 0.0 && dp_cost > 0.0, "{explain:#?}");
    // Every relation appears once in the order.
    let names = explain[order]["Join order (quantum annealing): ".len()..]
        .split(" (")
        .next()
        .unwrap()
        .split(", ")
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names.len(), 6, "{explain:#?}");

    let sqa = lines(run(
        &mut session,
        &format!(
            "EXPLAIN SELECT /*+ QUANTUM_JOIN(sqa) */ {}",
            &chain_query(6, "JOIN")["SELECT ".len()..]
        ),
    ));
    assert!(sqa.iter().any(|l| l.contains("Annealer: sqa")), "{sqa:#?}");
}

#[test]
fn test_joins_beyond_the_dp_limit_are_annealed_or_greedy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut session = engine.session();
    let n = nq_node::join_order::DP_LIMIT + 2;
    chain(&mut session, n);
    let explain = lines(run(
        &mut session,
        &format!("EXPLAIN {}", chain_query(n, "JOIN")),
    ));
    let order = explain
        .iter()
        .position(|l| l.starts_with("Join order (annealing or greedy): "))
        .unwrap_or_else(|| panic!("{explain:#?}"));
    assert!(
        explain[order + 1].starts_with("  Kept the "),
        "{explain:#?}"
    );
    assert!(
        explain[order + 2].contains(&format!("QUBO of {} variables", n * n)),
        "{explain:#?}"
    );
    // Same rows as the query planned with a forced annealer.
    assert_eq!(
        run(&mut session, &chain_query(n, "JOIN")),
        run(&mut session, &chain_query(n, "QUANTUM_JOIN"))
    );
}

/// The number after `key=` in an EXPLAIN ANALYZE annotation.
fn counter(line: &str, key: &str) -> u64 {
    let at = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    line[at + key.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn test_grover_search_reports_oracle_calls_and_qubits() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut session = engine.session();
    run(&mut session, "CREATE TABLE t (id INT PRIMARY KEY, v INT)");
    run(&mut session, "CREATE INDEX t_v ON t (v)");
    let values: Vec<String> = (0..1000)
        .map(|i| format!("({i}, {})", (i * 7) % 1000))
        .collect();
    run(
        &mut session,
        &format!("INSERT INTO t VALUES {}", values.join(", ")),
    );
    let found = run(
        &mut session,
        "SELECT id FROM grover_search('t', 'v', 'id = 777')",
    );
    assert_eq!(found, vec![vec![Value::Int(777)]]);
    let explain = lines(run(
        &mut session,
        "EXPLAIN ANALYZE SELECT id FROM grover_search('t', 'v', 'id = 777')",
    ));
    let grover = explain
        .iter()
        .find(|l| l.contains("Grover Search (simulated)"))
        .unwrap_or_else(|| panic!("{explain:#?}"));
    assert_eq!(counter(grover, "items"), 1000, "{grover}");
    assert_eq!(counter(grover, "marked"), 1, "{grover}");
    assert_eq!(counter(grover, "qubits"), 10, "{grover}");
    assert_eq!(counter(grover, "searches"), 1, "{grover}");
    let calls = counter(grover, "oracle_calls");
    // Exponential search gives up after ⌈9·√N⌉ + 1 calls plus its last round (< √N), far
    // below the N checks of a scan; it found the item, so it made at least one measurement.
    assert!(calls <= 9 * 32 + 1 + 32, "{grover}");
    assert!(counter(grover, "measurements") >= 1, "{grover}");
    assert!(
        explain.iter().any(|l| l.contains("on t using t_v")),
        "{explain:#?}"
    );
}
