//! Quantum-inspired optimisation for NeuroQuantumDB (classical simulation, see `docs/quantum.md`).
