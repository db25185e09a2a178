//! Problem encoders: each turns a combinatorial problem into a [`Qubo`] and decodes sampler
//! output back into a solution.
//!
//! Every encoder implements [`Encoding`]. `decode` always returns a valid solution (repairing
//! bit vectors that break a constraint, deterministically), and `is_feasible` says whether the
//! bits were a valid encoding before any repair. Each module's docs state its variables, its
//! energy function and why its penalty weight makes the QUBO's minimisers feasible.

mod colouring;
mod graph;
pub mod join;
mod maxcut;
mod partition;
pub mod tour;
mod tsp;

pub use colouring::Colouring;
pub use colouring::GraphColouring;
pub use graph::Edge;
pub use graph::Graph;
pub use join::JoinOrder;
pub use join::JoinOrderProblem;
pub use join::JoinOrderQubo;
pub use join::JoinPredicate;
pub use maxcut::Cut;
pub use maxcut::MaxCut;
pub use partition::NumberPartition;
pub use partition::Partition;
pub use tour::Tour;
pub use tsp::Tsp;

use crate::error::Result;
use crate::model::Qubo;

/// A problem encoded as a QUBO.
pub trait Encoding {
    /// What a bit vector decodes to.
    type Solution;

    /// The QUBO whose minimisers are the problem's optimal solutions.
    fn qubo(&self) -> &Qubo;

    /// Decodes (and if needed repairs) a bit vector into a valid solution.
    ///
    /// # Errors
    /// [`SampleLength`](crate::QuantumError::SampleLength) if `bits` has the wrong length.
    fn decode(&self, bits: &[u8]) -> Result<Self::Solution>;

    /// Whether `bits` satisfies every constraint of the encoding as it stands.
    fn is_feasible(&self, bits: &[u8]) -> bool;
}
