//! A state-vector simulator for Grover's search, run classically.
//!
//! **Honesty note.** This simulates a quantum computer on a classical one. The state of `n`
//! qubits is `2^n` complex amplitudes (16 bytes each), and every Grover iteration touches all of
//! them, so a search over `N` items costs `O(N)` memory and `O(N·√N)` time: slower than a plain
//! scan. It exists to demonstrate and test the algorithm (and to report the oracle calls a
//! real device would make), not to speed anything up.
//!
//! Items `0..N` are padded to `2^n` basis states. The search starts in the uniform superposition
//! over the `N` real items (padding amplitudes are zero), and the diffusion step reflects about
//! that state, so the textbook analysis holds exactly with `sin θ = √(M/N)` for `M` marked items:
//! after `k` iterations the probability of measuring a marked item is `sin²((2k+1)θ)`.

mod bbht;
mod search;
mod state;

pub use bbht::ExponentialSearch;
pub use bbht::ExponentialSearchOutcome;
pub use search::GroverOutcome;
pub use search::GroverSearch;
pub use search::Oracle;
pub use search::optimal_iterations;
pub use state::StateVector;

use crate::error::QuantumError;
use crate::error::Result;

/// Most qubits simulated: 2^26 amplitudes take 1 GiB.
pub const MAX_QUBITS: u32 = 26;

/// Bytes of one amplitude (`Complex<f64>`).
const AMPLITUDE_BYTES: u128 = 16;

/// Qubits needed to index `items` items (at least 1), or an error if that exceeds
/// [`MAX_QUBITS`], stating the memory the state vector would need.
///
/// # Errors
/// [`InvalidParameter`](QuantumError::InvalidParameter) for zero items,
/// [`TooManyQubits`](QuantumError::TooManyQubits) beyond the limit.
pub fn qubits_for(items: usize) -> Result<u32> {
    if items == 0 {
        return Err(QuantumError::invalid(
            "items",
            "need at least one item to search",
        ));
    }
    let qubits = items.next_power_of_two().trailing_zeros().max(1);
    if qubits > MAX_QUBITS {
        return Err(QuantumError::TooManyQubits {
            qubits,
            bytes: AMPLITUDE_BYTES << qubits,
            max_qubits: MAX_QUBITS,
        });
    }
    Ok(qubits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_qubit_count_and_memory_error() {
        assert_eq!(qubits_for(1).unwrap(), 1);
        assert_eq!(qubits_for(2).unwrap(), 1);
        assert_eq!(qubits_for(3).unwrap(), 2);
        assert_eq!(qubits_for(1024).unwrap(), 10);
        assert_eq!(qubits_for(1025).unwrap(), 11);
        assert_eq!(qubits_for(1 << 26).unwrap(), 26);
        match qubits_for((1 << 26) + 1) {
            Err(QuantumError::TooManyQubits {
                qubits: 27, bytes, ..
            }) => {
                assert_eq!(bytes, 2u128 << 30); // 2 GiB
                let message = qubits_for((1 << 26) + 1).unwrap_err().to_string();
                assert!(message.contains("2147483648 bytes"), "{message}");
            }
            other => panic!("expected TooManyQubits, got {other:?}"),
        }
        assert!(qubits_for(0).is_err());
    }
}
