//! Weighted Max-Cut: split the nodes in two so the weight of edges crossing the split is
//! maximal.
//!
//! Bit `x_v` says which side node `v` is on. An edge `(u, v, w)` is cut exactly when
//! `x_u + x_v - 2 x_u x_v = 1`, so the QUBO `E(x) = -Σ w (x_u + x_v - 2 x_u x_v)` has energy
//! `-cut(x)` for every `x`: every bit vector is a feasible cut and the minimum energy is minus
//! the maximum cut. (As an Ising model this is `J_uv = w/2`, offset `-W/2`.)

use super::Encoding;
use super::Graph;
use crate::error::Result;
use crate::model::Qubo;
use crate::model::check_len;

/// A Max-Cut instance and its QUBO.
#[derive(Debug, Clone)]
pub struct MaxCut {
    graph: Graph,
    qubo: Qubo,
}

/// A decoded cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    /// `true` for nodes on side 1.
    pub side: Vec<bool>,
    /// Total weight of the edges between the sides.
    pub value: f64,
}

impl MaxCut {
    /// Encodes `graph`.
    #[must_use]
    pub fn new(graph: Graph) -> Self {
        let mut builder = Qubo::builder(graph.num_nodes());
        for edge in graph.edges() {
            builder.add_linear(edge.u, -edge.weight);
            builder.add_linear(edge.v, -edge.weight);
            builder.add_quadratic(edge.u, edge.v, 2.0 * edge.weight);
        }
        let qubo = builder
            .build()
            .expect("a validated graph yields in-range, finite terms");
        Self { graph, qubo }
    }

    /// The graph being cut.
    #[must_use]
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Weight of the edges cut by `side`.
    ///
    /// # Errors
    /// [`SampleLength`](crate::QuantumError::SampleLength) if `side` has the wrong length.
    pub fn cut_value(&self, side: &[bool]) -> Result<f64> {
        check_len(self.graph.num_nodes(), side.len())?;
        Ok(self
            .graph
            .edges()
            .iter()
            .filter(|e| side[e.u] != side[e.v])
            .map(|e| e.weight)
            .sum())
    }
}

impl Encoding for MaxCut {
    type Solution = Cut;

    fn qubo(&self) -> &Qubo {
        &self.qubo
    }

    fn decode(&self, bits: &[u8]) -> Result<Cut> {
        check_len(self.graph.num_nodes(), bits.len())?;
        let side: Vec<bool> = bits.iter().map(|&b| b != 0).collect();
        let value = self.cut_value(&side)?;
        Ok(Cut { side, value })
    }

    fn is_feasible(&self, bits: &[u8]) -> bool {
        bits.len() == self.graph.num_nodes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Edge;
    use crate::solve::ExactSolver;
    use crate::solve::Sampler;

    fn brute_force_max_cut(graph: &Graph) -> f64 {
        let n = graph.num_nodes();
        (0..1u32 << n)
            .map(|mask| {
                graph
                    .edges()
                    .iter()
                    .filter(|e| (mask >> e.u & 1) != (mask >> e.v & 1))
                    .map(|e| e.weight)
                    .sum::<f64>()
            })
            .fold(f64::NEG_INFINITY, f64::max)
    }

    #[test]
    fn test_energy_is_minus_cut_and_optimum_matches_brute_force() {
        let edges = [
            (0, 1, 2.0),
            (1, 2, -1.0),
            (2, 3, 3.0),
            (3, 0, 1.5),
            (0, 2, 0.5),
            (1, 4, 2.5),
            (4, 3, -0.5),
        ]
        .iter()
        .map(|&(u, v, weight)| Edge { u, v, weight })
        .collect();
        let problem = MaxCut::new(Graph::new(5, edges).unwrap());
        for mask in 0..32u8 {
            let bits: Vec<u8> = (0..5).map(|i| mask >> i & 1).collect();
            let cut = problem.decode(&bits).unwrap();
            let energy = problem.qubo().energy(&bits).unwrap();
            assert!((energy + cut.value).abs() < 1e-12);
        }
        let best = ExactSolver.sample_qubo(problem.qubo()).unwrap();
        let optimum = brute_force_max_cut(problem.graph());
        assert!((-best.best.energy - optimum).abs() < 1e-9);
    }
}
