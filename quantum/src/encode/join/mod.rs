//! Join ordering for left-deep plans, as a classical problem and as a QUBO.
//!
//! [`JoinOrderProblem`] holds relation cardinalities and predicate selectivities and scores a
//! left-deep order with the classic `C_out` cost. It offers three classical planners to compare
//! the annealer against: the exact dynamic programme ([`JoinOrderProblem::optimal`]), a greedy
//! heuristic ([`JoinOrderProblem::greedy`]) and a local search that improves any order
//! ([`JoinOrderProblem::improve`]). [`JoinOrderQubo`] is the annealer's encoding, and
//! [`JoinOrderProblem::plan_with`] runs the whole pipeline with any sampler.

mod generate;
mod plan;
pub(crate) mod problem;
mod qubo;
mod search;

pub use generate::QueryShape;
pub use plan::AnnealedPlan;
pub use plan::POLISH_STARTS;
pub use plan::Polish;
pub use problem::JoinOrder;
pub use problem::JoinOrderProblem;
pub use problem::JoinPredicate;
pub use problem::MAX_DP_RELATIONS;
pub use qubo::JoinOrderQubo;
pub use search::PolishEffort;
