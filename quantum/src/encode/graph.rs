//! Weighted undirected graphs, the input of Max-Cut and colouring and the content of G-set
//! files.

use crate::error::QuantumError;
use crate::error::Result;

/// One undirected edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// One endpoint (0-based).
    pub u: usize,
    /// The other endpoint (0-based).
    pub v: usize,
    /// Edge weight (1.0 for unweighted graphs).
    pub weight: f64,
}

/// A weighted undirected graph on nodes `0..num_nodes`, without self-loops.
///
/// Parallel edges are allowed and act like one edge carrying the summed weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    num_nodes: usize,
    edges: Vec<Edge>,
}

impl Graph {
    /// Creates a graph, checking every edge.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) naming the first edge with an
    /// endpoint out of range, a self-loop, or a non-finite weight.
    pub fn new(num_nodes: usize, edges: Vec<Edge>) -> Result<Self> {
        for (index, edge) in edges.iter().enumerate() {
            let problem = if edge.u >= num_nodes || edge.v >= num_nodes {
                Some(format!("endpoint out of range for {num_nodes} nodes"))
            } else if edge.u == edge.v {
                Some("self-loops have no meaning in a cut or colouring".to_owned())
            } else if !edge.weight.is_finite() {
                Some(format!("weight {} is not finite", edge.weight))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(QuantumError::invalid(
                    "edges",
                    format!("edge {index} ({}, {}): {problem}", edge.u, edge.v),
                ));
            }
        }
        Ok(Self { num_nodes, edges })
    }

    /// Number of nodes.
    #[must_use]
    pub fn num_nodes(&self) -> usize {
        self.num_nodes
    }

    /// The edges, in the order given.
    #[must_use]
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Sum of all edge weights.
    #[must_use]
    pub fn total_weight(&self) -> f64 {
        self.edges.iter().map(|e| e.weight).sum()
    }

    /// Number of edges at each node.
    #[must_use]
    pub fn degrees(&self) -> Vec<usize> {
        let mut degree = vec![0; self.num_nodes];
        for edge in &self.edges {
            degree[edge.u] += 1;
            degree[edge.v] += 1;
        }
        degree
    }

    /// Neighbour lists (with repeats for parallel edges).
    #[must_use]
    pub fn neighbours(&self) -> Vec<Vec<usize>> {
        let mut lists = vec![Vec::new(); self.num_nodes];
        for edge in &self.edges {
            lists[edge.u].push(edge.v);
            lists[edge.v].push(edge.u);
        }
        lists
    }
}
