//! Problem files: the G-set/rudy graph format and TSPLIB, plus seeded generators for the
//! G-set recipes.
//!
//! Parsers take text and never panic: a malformed file is a
//! [`Parse`](crate::QuantumError::Parse) error naming the 1-based line and what is wrong with
//! it. The `read_*` functions add file access on top.

mod generate;
mod gset;
mod tsplib;

pub use generate::WeightKind;
pub use generate::planar_union;
pub use generate::random_graph;
pub use generate::toroidal_grid;
pub use gset::MAX_NODES;
pub use gset::parse_gset;
pub use gset::read_gset;
pub use gset::write_gset;
pub use tsplib::EdgeWeightType;
pub use tsplib::MAX_DIMENSION;
pub use tsplib::TspInstance;
pub use tsplib::parse_tsplib;
pub use tsplib::read_tsplib;

use std::path::Path;

use crate::error::QuantumError;
use crate::error::Result;

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| QuantumError::Io {
        path: path.to_owned(),
        source,
    })
}
