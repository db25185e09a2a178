//! A client for a D-Wave SAPI-style endpoint.
//!
//! Flow: `POST {url}/problems` with header `X-Auth-Token`, body
//! `{"solver": NAME, "type": "ising", "data": {"format": "coo", "num_variables": n,
//! "lin": [h_0, …], "quad": [[i, j, J_ij], …], "offset": c}, "params": {"num_reads": R}}`;
//! the answer carries an `id` and a `status` (`PENDING`, `IN_PROGRESS`, `COMPLETED`,
//! `FAILED`, `CANCELLED`); `GET {url}/problems/{id}` polls. A completed status holds
//! `{"answer": {"solutions": [[±1, …], …]}}`. (Production SAPI encodes `lin`/`quad` as base64
//! over a QPU's active qubits; a proxy that embeds the problem is expected in front of it.)

use std::time::Instant;

use serde_json::Value;
use serde_json::json;

use super::Endpoint;
use super::rest::Dialect;
use crate::error::Result;
use crate::model::Ising;
use crate::solve::RunStats;
use crate::solve::SampleSet;
use crate::solve::Sampler;

const DIALECT: Dialect = Dialect {
    backend: "dwave",
    auth_header: "X-Auth-Token",
    auth_prefix: "",
    collection: "/problems",
};

/// Submits Ising problems to a SAPI-style REST service.
#[derive(Debug, Clone)]
pub struct DWaveClient {
    /// Where to send problems.
    pub endpoint: Endpoint,
    /// Solver name, e.g. `Advantage_system4.1`.
    pub solver: String,
    /// Reads requested per problem.
    pub num_reads: usize,
}

impl DWaveClient {
    /// A client for `solver` at `endpoint`, asking for 100 reads.
    #[must_use]
    pub fn new(endpoint: Endpoint, solver: impl Into<String>) -> Self {
        Self {
            endpoint,
            solver: solver.into(),
            num_reads: 100,
        }
    }
}

impl Sampler for DWaveClient {
    fn name(&self) -> &'static str {
        "dwave"
    }

    fn sample_ising(&self, model: &Ising) -> Result<SampleSet> {
        let started = Instant::now();
        let quad: Vec<Value> = model
            .couplings()
            .upper()
            .map(|(i, j, w)| json!([i, j, w]))
            .collect();
        let body = json!({
            "solver": self.solver,
            "type": "ising",
            "data": {
                "format": "coo",
                "num_variables": model.num_variables(),
                "lin": model.fields(),
                "quad": quad,
                "offset": model.offset(),
            },
            "params": { "num_reads": self.num_reads },
        });
        let status = DIALECT.submit_and_wait(&self.endpoint, &body)?;
        let answer = status.get("answer").unwrap_or(&Value::Null);
        let spins = DIALECT.rows(answer, "solutions", |x| {
            (x == 1.0 || x == -1.0).then_some(u8::from(x > 0.0))
        })?;
        super::quera::scored(self.name(), model, spins, started)
    }
}

/// Reads reported by a service, before local scoring.
pub(crate) fn stats(reads: usize, started: Instant) -> RunStats {
    RunStats {
        wall_time: started.elapsed(),
        reads,
        ..RunStats::default()
    }
}
