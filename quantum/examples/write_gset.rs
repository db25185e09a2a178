//! Writes a generated G-set-style graph: `write_gset KIND NODES SEED FILE` with KIND one of
//! `random` (6% density, unit weights), `random-pm` (±1), `torus` (8 × NODES/8, ±1) or
//! `planar` (union of two planar graphs, unit weights).

use std::fs::File;
use std::io::BufWriter;

use nq_quantum::io::WeightKind;
use nq_quantum::io::planar_union;
use nq_quantum::io::random_graph;
use nq_quantum::io::toroidal_grid;
use nq_quantum::io::write_gset;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, nodes, seed, path] = args.as_slice() else {
        return Err("usage: write_gset KIND NODES SEED FILE".into());
    };
    let nodes: usize = nodes.parse()?;
    let seed: u64 = seed.parse()?;
    let graph = match kind.as_str() {
        "random" => random_graph(nodes, 0.06, WeightKind::Unit, seed)?,
        "random-pm" => random_graph(nodes, 0.06, WeightKind::PlusMinusOne, seed)?,
        "torus" => toroidal_grid(8, nodes / 8, WeightKind::PlusMinusOne, seed)?,
        "planar" => planar_union(nodes, 0.99, WeightKind::Unit, seed)?,
        other => return Err(format!("unknown kind {other}").into()),
    };
    write_gset(&graph, BufWriter::new(File::create(path)?))?;
    Ok(())
}
