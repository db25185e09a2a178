//! A client for a QuEra-style task endpoint.
//!
//! Flow: `POST {url}/tasks` with `Authorization: Bearer TOKEN`, body
//! `{"device": NAME, "shots": S, "program": {"type": "qubo", "num_variables": n,
//! "linear": [a_0, …], "quadratic": [[i, j, b_ij], …], "offset": c}}`; the answer carries an
//! `id` and a `status`; `GET {url}/tasks/{id}` polls; a completed status holds
//! `{"measurements": [[0/1, …], …]}`. Mapping the QUBO onto atom positions and pulse
//! schedules is the service's job.

use std::time::Instant;

use serde_json::Value;
use serde_json::json;

use super::Endpoint;
use super::dwave::stats;
use super::rest::Dialect;
use crate::error::QuantumError;
use crate::error::Result;
use crate::model::Ising;
use crate::solve::SampleSet;
use crate::solve::Sampler;

const DIALECT: Dialect = Dialect {
    backend: "quera",
    auth_header: "Authorization",
    auth_prefix: "Bearer ",
    collection: "/tasks",
};

/// Submits QUBO tasks to a QuEra-style REST service.
#[derive(Debug, Clone)]
pub struct QuEraClient {
    /// Where to send tasks.
    pub endpoint: Endpoint,
    /// Device name, e.g. `Aquila`.
    pub device: String,
    /// Shots requested per task.
    pub shots: usize,
}

impl QuEraClient {
    /// A client for `device` at `endpoint`, asking for 100 shots.
    #[must_use]
    pub fn new(endpoint: Endpoint, device: impl Into<String>) -> Self {
        Self {
            endpoint,
            device: device.into(),
            shots: 100,
        }
    }
}

impl Sampler for QuEraClient {
    fn name(&self) -> &'static str {
        "quera"
    }

    fn sample_ising(&self, model: &Ising) -> Result<SampleSet> {
        let started = Instant::now();
        let qubo = model.to_qubo();
        let quadratic: Vec<Value> = qubo
            .quadratic()
            .upper()
            .map(|(i, j, w)| json!([i, j, w]))
            .collect();
        let body = json!({
            "device": self.device,
            "shots": self.shots,
            "program": {
                "type": "qubo",
                "num_variables": qubo.num_variables(),
                "linear": qubo.linear(),
                "quadratic": quadratic,
                "offset": qubo.offset(),
            },
        });
        let status = DIALECT.submit_and_wait(&self.endpoint, &body)?;
        let bits = DIALECT.rows(&status, "measurements", |x| {
            (x == 0.0 || x == 1.0).then_some(u8::from(x > 0.0))
        })?;
        scored(self.name(), model, bits, started)
    }
}

/// Scores every returned bit vector against `model` (bit 1 is spin +1) and builds the set.
pub(crate) fn scored(
    solver: &'static str,
    model: &Ising,
    reads: Vec<Vec<u8>>,
    started: Instant,
) -> Result<SampleSet> {
    if reads.is_empty() {
        return Err(QuantumError::Hardware {
            backend: solver,
            message: "the service returned no samples".to_owned(),
        });
    }
    let count = reads.len();
    let scored = reads
        .into_iter()
        .map(|bits| {
            let energy = model.energy_of_bits(&bits)?;
            Ok((bits, energy, 0))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::solve::collect_samples(
        solver,
        scored.into_iter(),
        stats(count, started),
    ))
}
