//! The crate's one error type.
//!
//! Every fallible function in `nq-quantum` returns [`QuantumError`]. Variants carry the data a
//! caller needs to fix the input (the line of a malformed file, the index that was out of range,
//! the memory a simulation would need) rather than a pre-formatted sentence.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = QuantumError> = std::result::Result<T, E>;

/// What went wrong in model building, encoding, file loading, solving or simulation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantumError {
    /// A term referred to a variable the model does not have.
    #[error("variable {index} is out of range for a model with {num_variables} variables")]
    VariableOutOfRange {
        /// The offending index.
        index: usize,
        /// The model's size.
        num_variables: usize,
    },

    /// A coefficient was NaN or infinite; samplers cannot order such energies.
    #[error("coefficient of {term} is {value}; use finite weights")]
    NonFiniteCoefficient {
        /// Which term, e.g. `x3` or `x3*x7`.
        term: String,
        /// The value supplied.
        value: f64,
    },

    /// A bit vector (or spin vector) did not match the model's number of variables.
    #[error("sample has {got} variables but the model has {expected}")]
    SampleLength {
        /// Variables in the model.
        expected: usize,
        /// Variables in the sample.
        got: usize,
    },

    /// A problem file was malformed. `line` is 1-based; 0 means "end of file".
    #[error("{format} line {line}: {message}")]
    Parse {
        /// The file format being read (`gset`, `tsplib`).
        format: &'static str,
        /// 1-based line number of the problem, or 0 when the file ended too early.
        line: usize,
        /// What is wrong with that line.
        message: String,
    },

    /// Reading or writing a problem file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },

    /// A solver, encoder or generator parameter is outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name as it appears in the API.
        name: &'static str,
        /// Why the value was refused and what range is accepted.
        reason: String,
    },

    /// An exact method was asked to solve an instance beyond the size it can enumerate.
    #[error("{method} handles at most {limit} {unit}, got {size}; use a heuristic solver instead")]
    TooLarge {
        /// The exact method (e.g. `brute force`, `join-order dp`).
        method: &'static str,
        /// The instance size requested.
        size: usize,
        /// The largest size supported.
        limit: usize,
        /// What is being counted (`variables`, `relations`, `cities`).
        unit: &'static str,
    },

    /// A Grover simulation would not fit in memory.
    #[error(
        "simulating {qubits} qubits needs {bytes} bytes of amplitudes; at most {max_qubits} qubits are simulated"
    )]
    TooManyQubits {
        /// Qubits the request needs.
        qubits: u32,
        /// Bytes the state vector would occupy (16 bytes per amplitude).
        bytes: u128,
        /// The simulator's limit.
        max_qubits: u32,
    },

    /// A remote hardware back-end failed or answered something unexpected.
    #[cfg(feature = "hardware")]
    #[error("{backend} back-end: {message}")]
    Hardware {
        /// `dwave` or `quera`.
        backend: &'static str,
        /// What failed: HTTP status, a missing field, a solver-reported error.
        message: String,
    },
}

impl QuantumError {
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn parse(format: &'static str, line: usize, message: impl Into<String>) -> Self {
        Self::Parse {
            format,
            line,
            message: message.into(),
        }
    }
}
