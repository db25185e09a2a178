//! Graph colouring with `k` colours as a QUBO with one-hot penalties.
//!
//! Bit `x_{v,c}` (index `v·k + c`) says node `v` has colour `c`. The energy is
//!
//! `A Σ_v (1 - Σ_c x_{v,c})²  +  Σ_{(u,v) ∈ E} Σ_c x_{u,c} x_{v,c}`,
//!
//! one-hot penalty plus the number of monochromatic edges. A proper colouring has energy 0.
//!
//! **Penalty choice.** With `A = ⌊Δ/k⌋ + 1` (Δ the maximum degree) every minimum-energy state
//! is one-hot, so the QUBO optimum is always a colouring with fewest conflicts: switching off
//! a surplus bit in a row with `r ≥ 2` bits lowers the penalty by `A(2r - 3) ≥ A` and cannot add
//! conflicts; once no row has surplus bits, giving an empty row its least-used colour among
//! its neighbours lowers the penalty by `A` and adds at most `⌊deg(v)/k⌋ < A` conflicts.

use super::Encoding;
use super::Graph;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Qubo;
use crate::model::check_len;

/// A `k`-colouring instance and its QUBO.
#[derive(Debug, Clone)]
pub struct GraphColouring {
    graph: Graph,
    neighbours: Vec<Vec<usize>>,
    colours: usize,
    penalty: f64,
    qubo: Qubo,
}

/// A decoded colouring; every node has exactly one colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colouring {
    /// Colour of each node, in `0..k`.
    pub colour: Vec<usize>,
    /// Edges whose endpoints share a colour (0 for a proper colouring).
    pub conflicts: usize,
}

impl GraphColouring {
    /// Encodes colouring `graph` with `colours` colours and the default penalty.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) if `colours` is 0.
    pub fn new(graph: Graph, colours: usize) -> Result<Self> {
        if colours == 0 {
            return Err(QuantumError::invalid("colours", "need at least one colour"));
        }
        let max_degree = graph.degrees().into_iter().max().unwrap_or(0);
        let penalty = (max_degree / colours) as f64 + 1.0;
        let mut builder = Qubo::builder(graph.num_nodes() * colours);
        for v in 0..graph.num_nodes() {
            // A (1 - Σ x)² = A - A Σ x + 2A Σ_{c<d} x_c x_d, using x² = x.
            builder.add_offset(penalty);
            for c in 0..colours {
                builder.add_linear(v * colours + c, -penalty);
                for d in c + 1..colours {
                    builder.add_quadratic(v * colours + c, v * colours + d, 2.0 * penalty);
                }
            }
        }
        for edge in graph.edges() {
            for c in 0..colours {
                builder.add_quadratic(edge.u * colours + c, edge.v * colours + c, 1.0);
            }
        }
        let qubo = builder.build()?;
        let neighbours = graph.neighbours();
        Ok(Self {
            graph,
            neighbours,
            colours,
            penalty,
            qubo,
        })
    }

    /// The one-hot penalty weight `A`.
    #[must_use]
    pub fn penalty(&self) -> f64 {
        self.penalty
    }

    /// Number of colours `k`.
    #[must_use]
    pub fn colours(&self) -> usize {
        self.colours
    }

    /// Number of monochromatic edges of a colouring.
    #[must_use]
    pub fn conflicts(&self, colour: &[usize]) -> usize {
        self.graph
            .edges()
            .iter()
            .filter(|e| colour[e.u] == colour[e.v])
            .count()
    }

    fn row(&self, bits: &[u8], v: usize) -> Vec<usize> {
        (0..self.colours)
            .filter(|&c| bits[v * self.colours + c] != 0)
            .collect()
    }
}

impl Encoding for GraphColouring {
    type Solution = Colouring;

    fn qubo(&self) -> &Qubo {
        &self.qubo
    }

    /// Reads each node's colour; a node whose row is not one-hot gets, among its set colours
    /// (or all colours if none is set), the one used least by already-coloured neighbours
    /// (lowest colour on ties). Nodes are processed in index order, so repair is deterministic.
    fn decode(&self, bits: &[u8]) -> Result<Colouring> {
        check_len(self.qubo.num_variables(), bits.len())?;
        let n = self.graph.num_nodes();
        let mut colour: Vec<Option<usize>> = (0..n)
            .map(|v| match self.row(bits, v).as_slice() {
                [only] => Some(*only),
                _ => None,
            })
            .collect();
        for v in 0..n {
            if colour[v].is_some() {
                continue;
            }
            let set = self.row(bits, v);
            let candidates: Vec<usize> = if set.is_empty() {
                (0..self.colours).collect()
            } else {
                set
            };
            let clashes = |c: usize| {
                self.neighbours[v]
                    .iter()
                    .filter(|&&u| colour[u] == Some(c))
                    .count()
            };
            colour[v] = candidates.into_iter().min_by_key(|&c| (clashes(c), c));
        }
        let colour: Vec<usize> = colour.into_iter().map(|c| c.unwrap_or(0)).collect();
        let conflicts = self.conflicts(&colour);
        Ok(Colouring { colour, conflicts })
    }

    fn is_feasible(&self, bits: &[u8]) -> bool {
        if bits.len() != self.qubo.num_variables() {
            return false;
        }
        let n = self.graph.num_nodes();
        let one_hot = (0..n).all(|v| self.row(bits, v).len() == 1);
        one_hot && self.decode(bits).is_ok_and(|c| c.conflicts == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Edge;
    use crate::solve::ExactSolver;
    use crate::solve::Sampler;

    fn graph(n: usize, pairs: &[(usize, usize)]) -> Graph {
        let edges = pairs
            .iter()
            .map(|&(u, v)| Edge { u, v, weight: 1.0 })
            .collect();
        Graph::new(n, edges).unwrap()
    }

    #[test]
    fn test_optimum_is_a_proper_colouring_when_one_exists() {
        // A 5-cycle with a chord needs 3 colours.
        let g = graph(5, &[(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2)]);
        let problem = GraphColouring::new(g, 3).unwrap();
        let best = ExactSolver.sample_qubo(problem.qubo()).unwrap();
        assert!(best.best.energy.abs() < 1e-9);
        assert!(problem.is_feasible(&best.best.bits));
        assert_eq!(problem.decode(&best.best.bits).unwrap().conflicts, 0);
    }

    #[test]
    fn test_optimum_is_one_hot_with_fewest_conflicts_when_too_few_colours() {
        // K4 with 2 colours: the best colourings have 2 conflicting edges.
        let g = graph(4, &[(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]);
        let problem = GraphColouring::new(g, 2).unwrap();
        let best = ExactSolver.sample_qubo(problem.qubo()).unwrap();
        assert!((best.best.energy - 2.0).abs() < 1e-9);
        let bits = &best.best.bits;
        assert!((0..4).all(|v| problem.row(bits, v).len() == 1));
        assert!(!problem.is_feasible(bits));
    }

    #[test]
    fn test_decode_repairs_empty_and_double_rows() {
        let g = graph(3, &[(0, 1), (1, 2)]);
        let problem = GraphColouring::new(g, 2).unwrap();
        // Node 0: colour 0; node 1: none; node 2: both.
        let bits = [1, 0, 0, 0, 1, 1];
        assert!(!problem.is_feasible(&bits));
        let colouring = problem.decode(&bits).unwrap();
        assert_eq!(colouring.colour, vec![0, 1, 0]);
        assert_eq!(colouring.conflicts, 0);
    }
}
