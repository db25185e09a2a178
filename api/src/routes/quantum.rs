//! `POST /quantum/solve`: a QUBO, Max-Cut or TSP problem in JSON, solved by one of the
//! `nq-quantum` samplers within a bounded budget.
//!
//! The work is CPU-bound, so it runs on the blocking pool, and every request is checked
//! against [`MAX_VARIABLES`], [`MAX_READS`], [`MAX_SWEEPS`] and the configured work budget
//! (`limits.quantum_max_work`) before it starts: a request the server would spend minutes on
//! is refused with 413, not queued.

use axum::extract::State;
use axum::http::StatusCode;
use nq_quantum::QuantumError;
use nq_quantum::encode::{Edge, Encoding, Graph, MaxCut, Tsp};
use nq_quantum::model::Qubo;
use nq_quantum::solve::{
    Descent, ParallelTempering, SampleSet, Sampler, SimulatedAnnealing, SimulatedQuantumAnnealing,
    descend, polish_tour,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiJson, AppState};

/// Most QUBO variables in one request (a 100-city TSP).
pub const MAX_VARIABLES: usize = 10_000;
/// Most independent reads.
pub const MAX_READS: usize = 256;
/// Most sweeps per read.
pub const MAX_SWEEPS: usize = 100_000;

/// A problem and how to solve it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SolveRequest {
    /// The problem.
    pub problem: Problem,
    /// The sampler.
    #[serde(default)]
    pub solver: SolverKind,
    /// Independent reads (default 16).
    #[schema(minimum = 1, maximum = 256)]
    #[serde(default)]
    pub reads: Option<usize>,
    /// Sweeps per read (default 1,000).
    #[schema(minimum = 1, maximum = 100000)]
    #[serde(default)]
    pub sweeps: Option<usize>,
    /// Seed; the same request with the same seed gives the same answer.
    #[schema(minimum = 0, maximum = 18446744073709551615_u64)]
    #[serde(default)]
    pub seed: u64,
    /// Also return the best sample improved by local search (one-flip descent; 2-opt and
    /// Or-opt for tours), reported beside the raw result.
    #[serde(default)]
    pub polish: bool,
}

/// A problem, tagged by `type`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Problem {
    /// Minimise `offset + Σ linear_i x_i + Σ quadratic_ij x_i x_j` over bits.
    Qubo {
        /// Number of variables.
        #[schema(minimum = 1, maximum = 10000)]
        variables: usize,
        /// `[i, weight]` pairs.
        #[serde(default)]
        #[schema(value_type = Vec<Vec<f64>>)]
        linear: Vec<(usize, f64)>,
        /// `[i, j, weight]` triples; repeated pairs add up, and `[i, i, w]` is `w·x_i`.
        #[serde(default)]
        #[schema(value_type = Vec<Vec<f64>>)]
        quadratic: Vec<(usize, usize, f64)>,
        /// Constant added to every energy.
        #[serde(default)]
        offset: f64,
    },
    /// Weighted Max-Cut: split the nodes in two to maximise the weight of edges across.
    Maxcut {
        /// Number of nodes.
        #[schema(minimum = 1, maximum = 10000)]
        nodes: usize,
        /// `[u, v, weight]` triples.
        #[schema(value_type = Vec<Vec<f64>>)]
        edges: Vec<(usize, usize, f64)>,
    },
    /// Travelling salesman: the shortest closed tour through every city.
    Tsp {
        /// City coordinates `[x, y]`; distances are Euclidean. Give these or `distances`.
        #[serde(default)]
        #[schema(value_type = Option<Vec<Vec<f64>>>)]
        cities: Option<Vec<(f64, f64)>>,
        /// A symmetric distance matrix, row by row.
        #[serde(default)]
        distances: Option<Vec<Vec<f64>>>,
    },
}

/// The samplers.
#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SolverKind {
    /// Simulated annealing.
    #[default]
    Sa,
    /// Simulated quantum annealing (path-integral Monte Carlo, 16 Trotter slices).
    Sqa,
    /// Parallel tempering (16 replicas per read).
    Pt,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SolveResponse {
    /// Which sampler ran (`simulated-annealing`, `sqa`, `parallel-tempering`).
    pub solver: String,
    /// The lowest QUBO energy found.
    pub energy: f64,
    /// The bits of that sample.
    pub bits: Vec<u8>,
    /// Whether those bits satisfy the encoding's constraints as they stand (always true for
    /// QUBO and Max-Cut; for TSP, whether they were a permutation before repair).
    pub feasible: bool,
    /// The decoded solution.
    pub solution: Solution,
    /// The best sample after local search, when `polish` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polished: Option<Polished>,
    /// QUBO variables.
    pub variables: usize,
    /// Reads performed.
    pub reads: usize,
    /// Sweeps per read.
    pub sweeps: usize,
    /// Fraction of proposed moves accepted.
    pub acceptance_rate: f64,
    /// Sampling time in milliseconds.
    pub elapsed_ms: f64,
}

/// A decoded solution.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Solution {
    /// A QUBO's answer is its bits and energy.
    Qubo {
        /// Energy including the offset.
        energy: f64,
    },
    /// A cut.
    Maxcut {
        /// Total weight of cut edges.
        cut: f64,
        /// Side of each node (0 or 1).
        side: Vec<u8>,
    },
    /// A tour.
    Tsp {
        /// Cities in visiting order.
        tour: Vec<usize>,
        /// Closed tour length.
        length: f64,
    },
}

/// The polished result.
#[derive(Debug, Serialize, ToSchema)]
pub struct Polished {
    /// QUBO energy after one-flip descent (for TSP, of the polished tour's encoding).
    pub energy: f64,
    /// The polished solution.
    pub solution: Solution,
}

/// Solves a QUBO, Max-Cut or TSP instance with simulated annealing, simulated quantum
/// annealing or parallel tempering. A classical simulation: see docs/quantum.md.
#[utoipa::path(
    post,
    path = "/quantum/solve",
    tag = "quantum",
    request_body = SolveRequest,
    responses(
        (status = 200, description = "The best sample, decoded", body = SolveResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 413, description = "The problem or budget is beyond the server's limits", body = ErrorBody),
        (status = 422, description = "An invalid problem (index out of range, non-finite weight, ...)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn solve(
    State(state): State<AppState>,
    _principal: Principal,
    ApiJson(request): ApiJson<SolveRequest>,
) -> Result<axum::Json<SolveResponse>, ApiError> {
    let max_work = state.inner.config.limits.quantum_max_work;
    tokio::task::spawn_blocking(move || run(request, max_work))
        .await
        .map_err(|e| ApiError::internal(format!("solver failed: {e}")))?
        .map(axum::Json)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_problem", message)
}

fn too_large(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "problem_too_large", message)
}

fn quantum_error(e: QuantumError) -> ApiError {
    match e {
        QuantumError::TooLarge { .. } => too_large(e.to_string()),
        other => invalid(other.to_string()),
    }
}

/// A problem built into its encoding.
enum Encoded {
    Qubo(Qubo),
    Maxcut(MaxCut),
    Tsp(Tsp),
}

impl Encoded {
    fn qubo(&self) -> &Qubo {
        match self {
            Encoded::Qubo(q) => q,
            Encoded::Maxcut(m) => m.qubo(),
            Encoded::Tsp(t) => t.qubo(),
        }
    }

    fn feasible(&self, bits: &[u8]) -> bool {
        match self {
            Encoded::Qubo(_) => true,
            Encoded::Maxcut(m) => m.is_feasible(bits),
            Encoded::Tsp(t) => t.is_feasible(bits),
        }
    }

    fn decode(&self, bits: &[u8], energy: f64) -> Result<Solution, ApiError> {
        Ok(match self {
            Encoded::Qubo(_) => Solution::Qubo { energy },
            Encoded::Maxcut(m) => {
                let cut = m.decode(bits).map_err(quantum_error)?;
                Solution::Maxcut {
                    // + 0.0 turns the -0.0 of an empty cut into 0.
                    cut: cut.value + 0.0,
                    side: cut.side.iter().map(|&s| u8::from(s)).collect(),
                }
            }
            Encoded::Tsp(t) => {
                let tour = t.decode(bits).map_err(quantum_error)?;
                Solution::Tsp {
                    tour: tour.order,
                    length: tour.length,
                }
            }
        })
    }
}

fn check_variables(n: usize) -> Result<(), ApiError> {
    if n > MAX_VARIABLES {
        // 422, not 413: the documented schema already caps `variables` and `nodes`.
        return Err(invalid(format!(
            "the problem needs {n} QUBO variables; the server solves at most {MAX_VARIABLES}"
        )));
    }
    Ok(())
}

fn encode(problem: Problem) -> Result<Encoded, ApiError> {
    match problem {
        Problem::Qubo {
            variables,
            linear,
            quadratic,
            offset,
        } => {
            if variables == 0 {
                return Err(invalid("a QUBO needs at least one variable"));
            }
            check_variables(variables)?;
            let mut builder = Qubo::builder(variables);
            for (i, w) in linear {
                builder.add_linear(i, w);
            }
            for (i, j, w) in quadratic {
                builder.add_quadratic(i, j, w);
            }
            builder.add_offset(offset);
            Ok(Encoded::Qubo(builder.build().map_err(quantum_error)?))
        }
        Problem::Maxcut { nodes, edges } => {
            if nodes == 0 {
                return Err(invalid("a graph needs at least one node"));
            }
            check_variables(nodes)?;
            let edges = edges
                .into_iter()
                .map(|(u, v, weight)| Edge { u, v, weight })
                .collect();
            let graph = Graph::new(nodes, edges).map_err(quantum_error)?;
            Ok(Encoded::Maxcut(MaxCut::new(graph)))
        }
        Problem::Tsp { cities, distances } => {
            let matrix = match (cities, distances) {
                (Some(cities), None) => {
                    let n = cities.len();
                    nalgebra::DMatrix::from_fn(n, n, |a, b| {
                        let (dx, dy) = (cities[a].0 - cities[b].0, cities[a].1 - cities[b].1);
                        (dx * dx + dy * dy).sqrt()
                    })
                }
                (None, Some(rows)) => {
                    let n = rows.len();
                    if let Some(bad) = rows.iter().position(|r| r.len() != n) {
                        return Err(invalid(format!(
                            "distances must be a square matrix: row {bad} has {} entries, not {n}",
                            rows[bad].len()
                        )));
                    }
                    nalgebra::DMatrix::from_fn(n, n, |a, b| rows[a][b])
                }
                _ => {
                    return Err(invalid(
                        "a TSP problem needs exactly one of `cities` and `distances`",
                    ));
                }
            };
            // City 0 is fixed first: (n-1)² bits.
            let free = matrix.nrows().saturating_sub(1);
            check_variables(free.saturating_mul(free))?;
            Ok(Encoded::Tsp(Tsp::new(matrix).map_err(quantum_error)?))
        }
    }
}

fn sampler(
    kind: SolverKind,
    reads: usize,
    sweeps: usize,
    seed: u64,
    variables: usize,
    max_work: u64,
) -> Result<Box<dyn Sampler>, ApiError> {
    if !(1..=MAX_READS).contains(&reads) {
        return Err(invalid(format!(
            "reads must be between 1 and {MAX_READS}, got {reads}"
        )));
    }
    if !(1..=MAX_SWEEPS).contains(&sweeps) {
        return Err(invalid(format!(
            "sweeps must be between 1 and {MAX_SWEEPS}, got {sweeps}"
        )));
    }
    let copies = match kind {
        SolverKind::Sa => 1,
        SolverKind::Sqa => SimulatedQuantumAnnealing::default().trotter_slices,
        SolverKind::Pt => ParallelTempering::default().num_replicas,
    };
    let work = [reads, sweeps, variables, copies]
        .iter()
        .fold(1u64, |w, &x| w.saturating_mul(x as u64));
    if work > max_work {
        return Err(too_large(format!(
            "reads x sweeps x variables{} = {work} spin updates; the server allows {max_work} per request (limits.quantum_max_work)",
            match kind {
                SolverKind::Sa => "",
                SolverKind::Sqa => " x trotter slices",
                SolverKind::Pt => " x replicas",
            }
        )));
    }
    Ok(match kind {
        SolverKind::Sa => Box::new(SimulatedAnnealing {
            num_reads: reads,
            num_sweeps: sweeps,
            seed,
            ..SimulatedAnnealing::default()
        }),
        SolverKind::Sqa => Box::new(SimulatedQuantumAnnealing {
            num_reads: reads,
            num_sweeps: sweeps,
            seed,
            ..SimulatedQuantumAnnealing::default()
        }),
        SolverKind::Pt => Box::new(ParallelTempering {
            num_reads: reads,
            num_sweeps: sweeps,
            seed,
            ..ParallelTempering::default()
        }),
    })
}

fn run(request: SolveRequest, max_work: u64) -> Result<SolveResponse, ApiError> {
    let encoded = encode(request.problem)?;
    let qubo = encoded.qubo();
    let variables = qubo.num_variables();
    let sampler = sampler(
        request.solver,
        request.reads.unwrap_or(16),
        request.sweeps.unwrap_or(1_000),
        request.seed,
        variables,
        max_work,
    )?;
    let samples: SampleSet = sampler.sample_qubo(qubo).map_err(quantum_error)?;
    let best = &samples.best;
    let solution = encoded.decode(&best.bits, best.energy)?;
    let polished = if request.polish {
        Some(polish(&encoded, &best.bits)?)
    } else {
        None
    };
    Ok(SolveResponse {
        solver: samples.solver.to_string(),
        energy: best.energy,
        bits: best.bits.clone(),
        feasible: encoded.feasible(&best.bits),
        solution,
        polished,
        variables,
        reads: samples.stats.reads,
        sweeps: samples.stats.sweeps_per_read,
        acceptance_rate: samples.stats.acceptance_rate(),
        elapsed_ms: samples.stats.wall_time.as_secs_f64() * 1000.0,
    })
}

fn polish(encoded: &Encoded, bits: &[u8]) -> Result<Polished, ApiError> {
    match encoded {
        Encoded::Tsp(tsp) => {
            let tour = tsp.decode(bits).map_err(quantum_error)?;
            let better = polish_tour(tsp.distances(), &tour);
            let bits = tsp.encode_tour(&better.order).map_err(quantum_error)?;
            Ok(Polished {
                energy: tsp.qubo().energy(&bits).map_err(quantum_error)?,
                solution: Solution::Tsp {
                    tour: better.order,
                    length: better.length,
                },
            })
        }
        _ => {
            let sample = descend(&encoded.qubo().to_ising(), bits, Descent::Steepest)
                .map_err(quantum_error)?;
            Ok(Polished {
                energy: sample.energy,
                solution: encoded.decode(&sample.bits, sample.energy)?,
            })
        }
    }
}
