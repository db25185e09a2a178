//! The G-set / rudy graph format.
//!
//! The first line is `n m` (nodes, edges); each of the next `m` lines is `i j w` with 1-based
//! endpoints and a weight (a missing weight means 1). Blank lines are ignored.

use std::io::Write;
use std::path::Path;

use super::read_text;
use crate::encode::Edge;
use crate::encode::Graph;
use crate::error::QuantumError;
use crate::error::Result;

const FORMAT: &str = "gset";

/// Largest accepted node count. Models index variables with `u32` and allocate per node, so a
/// header beyond this is refused before any allocation (G-set's largest graph has 20 000 nodes).
pub const MAX_NODES: usize = 1 << 24;

/// Parses G-set text into a graph.
///
/// # Errors
/// [`Parse`](QuantumError::Parse) naming the line of a missing or malformed header, a
/// malformed edge, an endpoint outside `1..=n`, a self-loop, or an edge count that differs
/// from the header's (line 0 when the file ends early).
pub fn parse_gset(text: &str) -> Result<Graph> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(QuantumError::parse(
            FORMAT,
            0,
            "empty file; expected a header `n m`",
        ));
    };
    let fields: Vec<&str> = header.split_whitespace().collect();
    let [nodes, edges] = fields.as_slice() else {
        return Err(QuantumError::parse(
            FORMAT,
            header_line,
            format!("header needs 2 fields `n m`, found {}", fields.len()),
        ));
    };
    let num_nodes: usize = parse_field(nodes, header_line, "node count")?;
    let num_edges: usize = parse_field(edges, header_line, "edge count")?;
    if num_nodes > MAX_NODES {
        return Err(QuantumError::parse(
            FORMAT,
            header_line,
            format!("node count {num_nodes} exceeds the supported {MAX_NODES}"),
        ));
    }
    let mut edge_list = Vec::with_capacity(num_edges.min(1 << 24));
    for (line_number, line) in lines {
        if edge_list.len() == num_edges {
            return Err(QuantumError::parse(
                FORMAT,
                line_number,
                format!("more edges than the {num_edges} the header declares"),
            ));
        }
        edge_list.push(parse_edge(line, line_number, num_nodes)?);
    }
    if edge_list.len() < num_edges {
        return Err(QuantumError::parse(
            FORMAT,
            0,
            format!("file ends after {} of {num_edges} edges", edge_list.len()),
        ));
    }
    Graph::new(num_nodes, edge_list).map_err(|e| QuantumError::parse(FORMAT, 0, e.to_string()))
}

fn parse_edge(line: &str, line_number: usize, num_nodes: usize) -> Result<Edge> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (u, v, weight) = match fields.as_slice() {
        [u, v] => (*u, *v, None),
        [u, v, w] => (*u, *v, Some(*w)),
        _ => {
            return Err(QuantumError::parse(
                FORMAT,
                line_number,
                format!("an edge needs `i j w`, found {} fields", fields.len()),
            ));
        }
    };
    let u: usize = parse_field(u, line_number, "first endpoint")?;
    let v: usize = parse_field(v, line_number, "second endpoint")?;
    for endpoint in [u, v] {
        if endpoint == 0 || endpoint > num_nodes {
            return Err(QuantumError::parse(
                FORMAT,
                line_number,
                format!("endpoint {endpoint} is outside 1..={num_nodes}"),
            ));
        }
    }
    if u == v {
        return Err(QuantumError::parse(
            FORMAT,
            line_number,
            format!("self-loop on node {u}"),
        ));
    }
    let weight = match weight {
        Some(text) => {
            let w: f64 = parse_field(text, line_number, "weight")?;
            if !w.is_finite() {
                return Err(QuantumError::parse(
                    FORMAT,
                    line_number,
                    format!("weight {w} is not finite"),
                ));
            }
            w
        }
        None => 1.0,
    };
    Ok(Edge {
        u: u - 1,
        v: v - 1,
        weight,
    })
}

fn parse_field<T: std::str::FromStr>(text: &str, line: usize, what: &str) -> Result<T> {
    text.parse().map_err(|_| {
        QuantumError::parse(
            FORMAT,
            line,
            format!("{what} `{text}` is not a valid number"),
        )
    })
}

/// Reads a G-set file.
///
/// # Errors
/// [`Io`](QuantumError::Io) if the file cannot be read, else as [`parse_gset`].
pub fn read_gset(path: impl AsRef<Path>) -> Result<Graph> {
    parse_gset(&read_text(path.as_ref())?)
}

/// Writes `graph` in G-set format (integral weights without a decimal point, as rudy does).
///
/// # Errors
/// [`Io`](QuantumError::Io) (with an empty path) if writing fails.
pub fn write_gset(graph: &Graph, mut out: impl Write) -> Result<()> {
    let io = |source| QuantumError::Io {
        path: std::path::PathBuf::new(),
        source,
    };
    writeln!(out, "{} {}", graph.num_nodes(), graph.edges().len()).map_err(io)?;
    for edge in graph.edges() {
        writeln!(out, "{} {} {}", edge.u + 1, edge.v + 1, edge.weight).map_err(io)?;
    }
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error_line(text: &str) -> usize {
        match parse_gset(text) {
            Err(QuantumError::Parse { line, .. }) => line,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn test_round_trip_through_writer() {
        let graph = parse_gset("4 3\n1 2 1\n2 3 -1\n\n4 1 2.5\n").unwrap();
        assert_eq!(graph.num_nodes(), 4);
        assert_eq!(
            graph.edges()[1],
            Edge {
                u: 1,
                v: 2,
                weight: -1.0
            }
        );
        let mut text = Vec::new();
        write_gset(&graph, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text, "4 3\n1 2 1\n2 3 -1\n4 1 2.5\n");
        assert_eq!(parse_gset(&text).unwrap(), graph);
    }

    #[test]
    fn test_malformed_files_name_the_line() {
        assert_eq!(parse_error_line(""), 0);
        assert_eq!(parse_error_line("4\n1 2 1\n"), 1);
        assert_eq!(parse_error_line("4 x\n"), 1);
        assert_eq!(parse_error_line("99999999999 0\n"), 1);
        assert_eq!(parse_error_line("4 2\n1 2 1\n1 5 1\n"), 3);
        assert_eq!(parse_error_line("4 2\n1 2 1\n\n0 3 1\n"), 4);
        assert_eq!(parse_error_line("4 2\n1 2 1\n3 3 1\n"), 3);
        assert_eq!(parse_error_line("4 2\n1 2 one\n"), 2);
        assert_eq!(parse_error_line("4 2\n1 2 1 7\n"), 2);
        assert_eq!(parse_error_line("4 1\n1 2 1\n2 3 1\n"), 3);
        assert_eq!(parse_error_line("4 3\n1 2 1\n2 3 1\n"), 0);
        assert_eq!(parse_error_line("4 1\n1 2 NaN\n"), 2);
    }

    #[test]
    fn test_read_reports_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("G99");
        assert!(matches!(read_gset(&missing), Err(QuantumError::Io { .. })));
        std::fs::write(&missing, "2 1\n1 2 3\n").unwrap();
        assert_eq!(read_gset(&missing).unwrap().total_weight(), 3.0);
    }
}
