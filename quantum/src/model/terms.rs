//! The storage and builder shared by [`Qubo`](super::Qubo) and [`Ising`](super::Ising).
//!
//! Both are "offset + linear + pairwise" polynomials over `n` variables; they differ only in
//! whether a variable takes values {0, 1} or {-1, +1}. The builders accumulate terms in any
//! order (repeats add up), and `finish` sorts, merges and validates them once.

use super::Adjacency;
use crate::error::QuantumError;
use crate::error::Result;

/// Linear coefficients, pairwise coefficients and a constant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Terms {
    pub(crate) linear: Vec<f64>,
    pub(crate) quadratic: Adjacency,
    pub(crate) offset: f64,
}

impl Terms {
    /// Evaluates the polynomial with variable `i` taking the value `value[i]`.
    pub(crate) fn evaluate(&self, value: &[f64]) -> f64 {
        let mut energy = self.offset;
        for (i, (&a, &v)) in self.linear.iter().zip(value).enumerate() {
            let (cols, ws) = self.quadratic.row(i);
            let mut field = 0.0;
            for (&j, &w) in cols.iter().zip(ws) {
                // Each pair is stored twice; count it from its lower end only.
                if j as usize > i {
                    field += w * value[j as usize];
                }
            }
            energy += v * (a + field);
        }
        energy
    }

    /// `linear[i] + Σ_j w_ij value[j]`: the coefficient multiplying variable `i`.
    pub(crate) fn local_field(&self, value: &[f64], i: usize) -> f64 {
        let (cols, ws) = self.quadratic.row(i);
        let mut field = self.linear[i];
        for (&j, &w) in cols.iter().zip(ws) {
            field += w * value[j as usize];
        }
        field
    }
}

/// Accumulates terms; duplicates are summed when the model is built.
#[derive(Debug)]
pub(crate) struct TermBuffer {
    linear: Vec<f64>,
    pairs: Vec<(u32, u32, f64)>,
    offset: f64,
    error: Option<QuantumError>,
}

impl TermBuffer {
    pub(crate) fn new(num_variables: usize) -> Self {
        Self {
            linear: vec![0.0; num_variables],
            pairs: Vec::new(),
            offset: 0.0,
            error: None,
        }
    }

    pub(crate) fn num_variables(&self) -> usize {
        self.linear.len()
    }

    fn check_index(&mut self, index: usize) -> bool {
        if index < self.linear.len() && u32::try_from(index).is_ok() {
            return true;
        }
        self.error.get_or_insert(QuantumError::VariableOutOfRange {
            index,
            num_variables: self.linear.len(),
        });
        false
    }

    fn check_finite(&mut self, term: impl FnOnce() -> String, value: f64) -> bool {
        if value.is_finite() {
            return true;
        }
        self.error
            .get_or_insert_with(|| QuantumError::NonFiniteCoefficient {
                term: term(),
                value,
            });
        false
    }

    pub(crate) fn add_linear(&mut self, i: usize, w: f64) {
        if self.check_index(i) && self.check_finite(|| format!("x{i}"), w) {
            self.linear[i] += w;
        }
    }

    /// Adds `w * v_i * v_j` for `i != j`; callers handle the diagonal, whose meaning differs
    /// between binary and spin variables.
    pub(crate) fn add_pair(&mut self, i: usize, j: usize, w: f64) {
        debug_assert_ne!(i, j);
        if self.check_index(i)
            && self.check_index(j)
            && self.check_finite(|| format!("x{i}*x{j}"), w)
        {
            let (lo, hi) = if i < j { (i, j) } else { (j, i) };
            // check_index proved both fit in u32.
            self.pairs.push((lo as u32, hi as u32, w));
        }
    }

    pub(crate) fn add_offset(&mut self, w: f64) {
        if self.check_finite(|| "the offset".to_owned(), w) {
            self.offset += w;
        }
    }

    pub(crate) fn finish(mut self) -> Result<Terms> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.pairs.sort_unstable_by_key(|&(i, j, _)| (i, j));
        let mut merged: Vec<(u32, u32, f64)> = Vec::with_capacity(self.pairs.len());
        for (i, j, w) in self.pairs {
            match merged.last_mut() {
                Some(last) if last.0 == i && last.1 == j => last.2 += w,
                _ => merged.push((i, j, w)),
            }
        }
        // Pairs that cancelled exactly carry no information and only slow the samplers.
        merged.retain(|&(_, _, w)| w != 0.0);
        let n = self.linear.len();
        Ok(Terms {
            linear: self.linear,
            quadratic: Adjacency::from_upper(n, &merged),
            offset: self.offset,
        })
    }
}
