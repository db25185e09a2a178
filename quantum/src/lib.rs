//! Quantum-inspired optimisation for NeuroQuantumDB, simulated classically.
//!
//! The crate turns combinatorial problems into QUBO/Ising models, samples them with classical
//! Monte Carlo methods, and simulates Grover's search on a state vector. Nothing here runs on
//! quantum hardware unless the `hardware` feature is enabled *and* a client is configured with
//! a URL and token; `docs/quantum.md` explains the models, the algorithms and their limits.
//!
//! ```
//! use nq_quantum::encode::{Edge, Encoding, Graph, MaxCut};
//! use nq_quantum::solve::{Sampler, SimulatedAnnealing};
//!
//! // A 4-cycle: the best cut separates alternate nodes and cuts all 4 edges.
//! let edges = [(0, 1), (1, 2), (2, 3), (3, 0)]
//!     .into_iter()
//!     .map(|(u, v)| Edge { u, v, weight: 1.0 })
//!     .collect();
//! let problem = MaxCut::new(Graph::new(4, edges)?);
//! let sampler = SimulatedAnnealing { num_reads: 8, num_sweeps: 100, seed: 7, ..Default::default() };
//! let result = sampler.sample_qubo(problem.qubo())?;
//! assert_eq!(problem.decode(&result.best.bits)?.value, 4.0);
//! assert_eq!(result.best.energy, -4.0);
//! # Ok::<(), nq_quantum::QuantumError>(())
//! ```
//!
//! Modules, in dependency order:
//!
//! * [`model`]: [`Qubo`](model::Qubo), [`Ising`](model::Ising), [`DenseQubo`](model::DenseQubo)
//!   and exact conversions between them.
//! * [`encode`]: Max-Cut, colouring, TSP, number partitioning and join ordering as QUBOs,
//!   with decoders and feasibility checks.
//! * [`io`]: G-set and TSPLIB readers, a G-set writer, and G-set-style graph generators.
//! * [`solve`]: the [`Sampler`](solve::Sampler) trait, simulated annealing, simulated quantum
//!   annealing, parallel tempering, exhaustive search and local-search polish.
//! * [`grover`]: the Grover state-vector simulator and exponential search.
//! * `hardware` (feature `hardware`): REST clients for D-Wave SAPI-style and QuEra endpoints.
//!
//! **Architecture invariant:** this crate depends on no other NeuroQuantumDB crate and does
//! no I/O except reading or writing the problem files it is handed and, with the `hardware`
//! feature, HTTP requests to an endpoint the caller configured.

pub mod encode;
pub mod error;
pub mod grover;
#[cfg(feature = "hardware")]
pub mod hardware;
pub mod io;
pub mod model;
pub mod rng;
pub mod solve;

pub use error::QuantumError;
pub use error::Result;
