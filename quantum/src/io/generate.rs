//! Seeded generators following the recipes behind the G-set Max-Cut benchmark.
//!
//! The G-set graphs were made with Rinaldi's `rudy` generator; these functions reproduce its
//! recipes (graph family, size, density, weight distribution), not its random number stream,
//! so the graphs are statistically like G-set instances but not identical to them. The same
//! arguments and seed always give the same graph.
//!
//! | G-set     | recipe                                                        |
//! |-----------|---------------------------------------------------------------|
//! | G1–G5     | `random_graph(800, 0.06, Unit, seed)`                         |
//! | G6–G10    | `random_graph(800, 0.06, PlusMinusOne, seed)`                 |
//! | G11–G13   | `toroidal_grid(8, 100, PlusMinusOne, seed)`                   |
//! | G14–G17   | `planar_union(800, 0.99, Unit, seed)`                         |
//! | G18–G21   | `planar_union(800, 0.99, PlusMinusOne, seed)`                 |
//! | G22–G31   | `random_graph(2000, 0.01, …)`                                 |

use std::collections::HashSet;

use crate::encode::Edge;
use crate::encode::Graph;
use crate::error::QuantumError;
use crate::error::Result;
use crate::rng::Rng;

/// Edge weights of a generated graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightKind {
    /// Every weight is 1.
    Unit,
    /// Each weight is -1 or +1 with equal probability.
    PlusMinusOne,
}

impl WeightKind {
    fn draw(self, rng: &mut Rng) -> f64 {
        match self {
            Self::Unit => 1.0,
            Self::PlusMinusOne => {
                if rng.coin() {
                    1.0
                } else {
                    -1.0
                }
            }
        }
    }
}

fn check_density(density: f64) -> Result<()> {
    if (0.0..=1.0).contains(&density) {
        Ok(())
    } else {
        Err(QuantumError::invalid(
            "density",
            format!("need a fraction in [0, 1], got {density}"),
        ))
    }
}

/// Shuffles `items` with Fisher–Yates on our generator (stable across `rand` releases).
fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// A uniformly random graph with exactly `round(density · n(n-1)/2)` distinct edges, like
/// `rudy -rnd_graph n 100·density seed`.
///
/// # Errors
/// [`InvalidParameter`](QuantumError::InvalidParameter) if `density` is outside `[0, 1]`.
pub fn random_graph(nodes: usize, density: f64, weights: WeightKind, seed: u64) -> Result<Graph> {
    check_density(density)?;
    let mut rng = Rng::new(seed);
    let pairs = nodes * nodes.saturating_sub(1) / 2;
    // Sizes here are far below 2^53, so the float round trip is exact.
    let target = ((pairs as f64) * density).round() as usize;
    let mut chosen: Vec<(usize, usize)> = if target * 2 <= pairs {
        let mut seen = HashSet::with_capacity(target);
        let mut chosen = Vec::with_capacity(target);
        while chosen.len() < target {
            let u = rng.below(nodes);
            let v = rng.below(nodes);
            let pair = (u.min(v), u.max(v));
            if u != v && seen.insert(pair) {
                chosen.push(pair);
            }
        }
        chosen
    } else {
        let mut all: Vec<(usize, usize)> = (0..nodes)
            .flat_map(|u| (u + 1..nodes).map(move |v| (u, v)))
            .collect();
        shuffle(&mut all, &mut rng);
        all.truncate(target);
        all
    };
    chosen.sort_unstable();
    let edges = chosen
        .into_iter()
        .map(|(u, v)| Edge {
            u,
            v,
            weight: weights.draw(&mut rng),
        })
        .collect();
    Graph::new(nodes, edges)
}

/// A `rows × cols` grid with wrap-around in both directions (every node has degree 4 when
/// both sides exceed 2), like `rudy -toroidal_grid_2D rows cols`.
///
/// # Errors
/// [`InvalidParameter`](QuantumError::InvalidParameter) if a side is below 3 (the wrap-around
/// would create self-loops or parallel edges).
pub fn toroidal_grid(rows: usize, cols: usize, weights: WeightKind, seed: u64) -> Result<Graph> {
    if rows < 3 || cols < 3 {
        return Err(QuantumError::invalid(
            "rows/cols",
            format!("a torus needs both sides at least 3, got {rows}x{cols}"),
        ));
    }
    let mut rng = Rng::new(seed);
    let node = |r: usize, c: usize| r * cols + c;
    let mut edges = Vec::with_capacity(2 * rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            for (u, v) in [
                (node(r, c), node(r, (c + 1) % cols)),
                (node(r, c), node((r + 1) % rows, c)),
            ] {
                edges.push(Edge {
                    u,
                    v,
                    weight: weights.draw(&mut rng),
                });
            }
        }
    }
    Graph::new(rows * cols, edges)
}

/// The union of two random planar graphs on the same nodes (with independent node labels),
/// each keeping a `density` fraction of a maximal-ish planar triangulation — the construction
/// of the "planar" G-set instances G14–G21, which are unions of two planar graphs.
///
/// Each planar part is a triangulated grid: nodes on a `⌈√n⌉`-wide grid, linked to their right
/// and lower neighbours and across each cell by one randomly oriented diagonal (about `3n`
/// edges, close to the `3n - 6` maximum). Edges present in both parts appear once.
///
/// # Errors
/// [`InvalidParameter`](QuantumError::InvalidParameter) if `density` is outside `[0, 1]`.
pub fn planar_union(nodes: usize, density: f64, weights: WeightKind, seed: u64) -> Result<Graph> {
    check_density(density)?;
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    for _ in 0..2 {
        let mut labels: Vec<usize> = (0..nodes).collect();
        shuffle(&mut labels, &mut rng);
        let mut part = triangulated_grid(nodes, &mut rng);
        shuffle(&mut part, &mut rng);
        let keep = ((part.len() as f64) * density).round() as usize;
        for (u, v) in part.into_iter().take(keep) {
            let (a, b) = (labels[u], labels[v]);
            let pair = (a.min(b), a.max(b));
            if seen.insert(pair) {
                pairs.push(pair);
            }
        }
    }
    pairs.sort_unstable();
    let edges = pairs
        .into_iter()
        .map(|(u, v)| Edge {
            u,
            v,
            weight: weights.draw(&mut rng),
        })
        .collect();
    Graph::new(nodes, edges)
}

/// Edges of a planar triangulated grid over `nodes` nodes laid out row by row.
fn triangulated_grid(nodes: usize, rng: &mut Rng) -> Vec<(usize, usize)> {
    let width = (nodes as f64).sqrt().ceil().max(1.0) as usize;
    let exists = |r: usize, c: usize| c < width && r * width + c < nodes;
    let id = |r: usize, c: usize| r * width + c;
    let rows = nodes.div_ceil(width);
    let mut edges = Vec::with_capacity(3 * nodes);
    for r in 0..rows {
        for c in 0..width {
            if !exists(r, c) {
                continue;
            }
            if exists(r, c + 1) {
                edges.push((id(r, c), id(r, c + 1)));
            }
            if exists(r + 1, c) {
                edges.push((id(r, c), id(r + 1, c)));
            }
            // One diagonal per grid cell keeps the drawing crossing-free.
            let cell = exists(r, c + 1) && exists(r + 1, c);
            if cell && rng.coin() && exists(r + 1, c + 1) {
                edges.push((id(r, c), id(r + 1, c + 1)));
            } else if cell {
                edges.push((id(r, c + 1), id(r + 1, c)));
            }
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_random_graph_has_exact_edge_count_and_is_deterministic() {
        let g = random_graph(800, 0.06, WeightKind::Unit, 1).unwrap();
        assert_eq!(g.edges().len(), 19176); // G1's edge count
        assert_eq!(g, random_graph(800, 0.06, WeightKind::Unit, 1).unwrap());
        assert_ne!(g, random_graph(800, 0.06, WeightKind::Unit, 2).unwrap());
        let dense = random_graph(30, 0.9, WeightKind::PlusMinusOne, 3).unwrap();
        assert_eq!(dense.edges().len(), 392);
        let distinct: HashSet<(usize, usize)> = dense.edges().iter().map(|e| (e.u, e.v)).collect();
        assert_eq!(distinct.len(), 392);
        assert!(
            dense
                .edges()
                .iter()
                .all(|e| e.weight == 1.0 || e.weight == -1.0)
        );
        assert!(dense.edges().iter().any(|e| e.weight < 0.0));
    }

    #[test]
    fn test_torus_matches_g11_shape() {
        let g = toroidal_grid(8, 100, WeightKind::PlusMinusOne, 11).unwrap();
        assert_eq!((g.num_nodes(), g.edges().len()), (800, 1600));
        assert!(g.degrees().iter().all(|&d| d == 4));
        assert!(toroidal_grid(2, 5, WeightKind::Unit, 0).is_err());
    }

    #[test]
    fn test_planar_union_is_close_to_g14_size() {
        let g = planar_union(800, 0.99, WeightKind::Unit, 14).unwrap();
        // G14 has 4694 edges; each part here has about 0.99 · 3n edges.
        let m = g.edges().len();
        assert!((4400..=4800).contains(&m), "{m} edges");
        // A single planar part obeys Euler's bound m ≤ 3n - 6.
        let mut rng = Rng::new(0);
        let part = triangulated_grid(800, &mut rng);
        assert!(part.len() <= 3 * 800 - 6);
        assert!(planar_union(10, 1.5, WeightKind::Unit, 0).is_err());
    }
}
