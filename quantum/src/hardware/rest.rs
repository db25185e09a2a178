//! The submit-then-poll HTTP flow both clients share.

use std::time::Instant;

use serde_json::Value;

use super::Endpoint;
use crate::error::QuantumError;
use crate::error::Result;

/// How a back-end authenticates and names its resources.
pub(crate) struct Dialect {
    pub(crate) backend: &'static str,
    /// Header carrying the token, and a prefix for its value (`Bearer ` or nothing).
    pub(crate) auth_header: &'static str,
    pub(crate) auth_prefix: &'static str,
    /// Collection path problems are posted to, e.g. `/problems`.
    pub(crate) collection: &'static str,
}

impl Dialect {
    fn error(&self, message: impl Into<String>) -> QuantumError {
        QuantumError::Hardware {
            backend: self.backend,
            message: message.into(),
        }
    }

    /// Posts `body`, then polls until the service reports completion; returns the final
    /// status document.
    pub(crate) fn submit_and_wait(&self, endpoint: &Endpoint, body: &Value) -> Result<Value> {
        if endpoint.url.is_empty() {
            return Err(QuantumError::invalid("endpoint", "no URL configured"));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(endpoint.timeout))
            .build()
            .into();
        let auth = format!("{}{}", self.auth_prefix, endpoint.token);
        let submit_url = format!("{}{}", endpoint.url, self.collection);
        let mut response = agent
            .post(&submit_url)
            .header(self.auth_header, &auth)
            .send_json(body)
            .map_err(|e| self.error(format!("submit failed: {e}")))?;
        let mut status: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| self.error(format!("submit answer is not JSON: {e}")))?;
        let id = status
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| self.error("submit answer has no `id`"))?
            .to_owned();
        let started = Instant::now();
        loop {
            match status.get("status").and_then(Value::as_str) {
                Some("COMPLETED") => return Ok(status),
                Some("FAILED" | "CANCELLED") => {
                    let reason = status
                        .get("error_message")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given");
                    return Err(self.error(format!("problem {id} failed: {reason}")));
                }
                Some(_) => {}
                None => return Err(self.error(format!("status of problem {id} is missing"))),
            }
            if started.elapsed() > endpoint.timeout {
                return Err(self.error(format!("problem {id} did not complete in time")));
            }
            std::thread::sleep(endpoint.poll_interval);
            let poll_url = format!("{submit_url}/{id}");
            status = agent
                .get(&poll_url)
                .header(self.auth_header, &auth)
                .call()
                .map_err(|e| self.error(format!("poll failed: {e}")))?
                .body_mut()
                .read_json()
                .map_err(|e| self.error(format!("poll answer is not JSON: {e}")))?;
        }
    }

    /// Reads an array of arrays of numbers, mapping each entry through `value`.
    pub(crate) fn rows<T>(
        &self,
        document: &Value,
        field: &str,
        value: impl Fn(f64) -> Option<T>,
    ) -> Result<Vec<Vec<T>>> {
        let rows = document
            .get(field)
            .and_then(Value::as_array)
            .ok_or_else(|| self.error(format!("answer has no `{field}` array")))?;
        rows.iter()
            .map(|row| {
                row.as_array()
                    .ok_or_else(|| self.error(format!("`{field}` entries must be arrays")))?
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .and_then(&value)
                            .ok_or_else(|| self.error(format!("bad value {x} in `{field}`")))
                    })
                    .collect()
            })
            .collect()
    }
}
