//! A QUBO as a dense upper-triangular `nalgebra` matrix.
//!
//! For small problems where most pairs interact (a 100-variable fully connected QUBO has 4,950
//! pairs) a contiguous matrix is both smaller than CSR and lets many samples be scored with
//! one matrix product ([`DenseQubo::energies`]).

use nalgebra::DMatrix;
use nalgebra::DVector;

use super::Qubo;
use super::check_len;
use crate::error::QuantumError;
use crate::error::Result;

/// `E(x) = offset + xᵀ Q x` with `Q` upper triangular; the diagonal holds the linear terms.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseQubo {
    matrix: DMatrix<f64>,
    offset: f64,
}

impl DenseQubo {
    /// Wraps any square matrix `Q` as `offset + xᵀ Q x`; entries below the diagonal are folded
    /// into the upper triangle (`Q_ij + Q_ji`), which leaves every energy unchanged.
    ///
    /// # Errors
    /// [`InvalidParameter`](QuantumError::InvalidParameter) if `matrix` is not square, or
    /// [`NonFiniteCoefficient`](QuantumError::NonFiniteCoefficient) if an entry is NaN/infinite.
    pub fn from_matrix(matrix: &DMatrix<f64>, offset: f64) -> Result<Self> {
        if !matrix.is_square() {
            return Err(QuantumError::invalid(
                "matrix",
                format!(
                    "a QUBO matrix must be square, got {}x{}",
                    matrix.nrows(),
                    matrix.ncols()
                ),
            ));
        }
        if let Some((index, &value)) = matrix.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(QuantumError::NonFiniteCoefficient {
                term: format!("matrix entry {index} (column-major)"),
                value,
            });
        }
        let n = matrix.nrows();
        let upper = DMatrix::from_fn(n, n, |i, j| match i.cmp(&j) {
            std::cmp::Ordering::Less => matrix[(i, j)] + matrix[(j, i)],
            std::cmp::Ordering::Equal => matrix[(i, i)],
            std::cmp::Ordering::Greater => 0.0,
        });
        Ok(Self {
            matrix: upper,
            offset,
        })
    }

    pub(crate) fn from_qubo(qubo: &Qubo) -> Self {
        let n = qubo.num_variables();
        let mut matrix = DMatrix::from_diagonal(&DVector::from_column_slice(qubo.linear()));
        for (i, j, w) in qubo.quadratic().upper() {
            matrix[(i, j)] = w;
        }
        debug_assert_eq!(matrix.nrows(), n);
        Self {
            matrix,
            offset: qubo.offset(),
        }
    }

    /// Number of binary variables.
    #[must_use]
    pub fn num_variables(&self) -> usize {
        self.matrix.nrows()
    }

    /// The upper-triangular matrix `Q`.
    #[must_use]
    pub fn matrix(&self) -> &DMatrix<f64> {
        &self.matrix
    }

    /// The constant term.
    #[must_use]
    pub fn offset(&self) -> f64 {
        self.offset
    }

    /// Energy of one bit vector.
    ///
    /// # Errors
    /// [`SampleLength`](QuantumError::SampleLength) if `bits` has the wrong length.
    pub fn energy(&self, bits: &[u8]) -> Result<f64> {
        check_len(self.num_variables(), bits.len())?;
        let x = DVector::from_iterator(
            bits.len(),
            bits.iter().map(|&b| f64::from(u8::from(b != 0))),
        );
        Ok(self.offset + x.dot(&(&self.matrix * &x)))
    }

    /// Energies of many samples at once: row `r` of `samples` is one bit vector (0.0 / 1.0).
    ///
    /// # Errors
    /// [`SampleLength`](QuantumError::SampleLength) if the column count is not `n`.
    pub fn energies(&self, samples: &DMatrix<f64>) -> Result<DVector<f64>> {
        check_len(self.num_variables(), samples.ncols())?;
        let xq = samples * &self.matrix;
        let quadratic = xq.component_mul(samples).column_sum();
        Ok(quadratic.add_scalar(self.offset))
    }

    /// Energy change from flipping bit `i`, in O(n).
    ///
    /// # Panics
    /// If `i` or `bits` is shorter than the model.
    #[must_use]
    pub fn flip_delta(&self, bits: &[u8], i: usize) -> f64 {
        let mut field = self.matrix[(i, i)];
        for (j, &bit) in bits.iter().enumerate() {
            if bit != 0 && j != i {
                field += if j > i {
                    self.matrix[(i, j)]
                } else {
                    self.matrix[(j, i)]
                };
            }
        }
        if bits[i] == 0 { field } else { -field }
    }

    /// The same model in sparse form.
    #[must_use]
    pub fn to_sparse(&self) -> Qubo {
        let n = self.num_variables();
        let mut builder = Qubo::builder(n);
        builder.add_offset(self.offset);
        for j in 0..n {
            for i in 0..=j {
                let w = self.matrix[(i, j)];
                if w != 0.0 {
                    builder.add_quadratic(i, j, w);
                }
            }
        }
        builder
            .build()
            .expect("a validated dense matrix has finite, in-range terms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_batched_energies_match_single_energies() {
        let q = DMatrix::from_row_slice(3, 3, &[1.0, -2.0, 0.5, 1.0, -1.0, 0.0, 2.0, 0.0, 3.0]);
        let dense = DenseQubo::from_matrix(&q, 0.25).unwrap();
        let samples =
            DMatrix::from_row_slice(4, 3, &[0., 0., 0., 1., 0., 1., 1., 1., 1., 0., 1., 1.]);
        let batch = dense.energies(&samples).unwrap();
        for r in 0..4 {
            let bits: Vec<u8> = (0..3).map(|c| u8::from(samples[(r, c)] > 0.5)).collect();
            let x = DVector::from_iterator(3, bits.iter().map(|&b| f64::from(b)));
            let direct = 0.25 + x.dot(&(&q * &x));
            assert!((batch[r] - direct).abs() < 1e-12);
            assert!((dense.energy(&bits).unwrap() - direct).abs() < 1e-12);
            assert!((dense.to_sparse().energy(&bits).unwrap() - direct).abs() < 1e-12);
        }
    }

    #[test]
    fn test_non_square_matrix_is_rejected() {
        let q = DMatrix::<f64>::zeros(2, 3);
        assert!(DenseQubo::from_matrix(&q, 0.0).is_err());
    }
}
