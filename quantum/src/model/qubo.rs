//! Quadratic unconstrained binary optimisation: minimise `c + Σ a_i x_i + Σ_{i<j} b_ij x_i x_j`
//! over `x ∈ {0,1}^n`.

use super::Adjacency;
use super::DenseQubo;
use super::Ising;
use super::IsingBuilder;
use super::check_len;
use super::terms::TermBuffer;
use super::terms::Terms;
use crate::error::Result;

/// A QUBO in sparse form.
#[derive(Debug, Clone, PartialEq)]
pub struct Qubo {
    terms: Terms,
}

/// Collects QUBO terms in any order; repeated terms add up.
#[derive(Debug)]
pub struct QuboBuilder {
    buffer: TermBuffer,
}

impl QuboBuilder {
    /// Adds `w * x_i`.
    pub fn add_linear(&mut self, i: usize, w: f64) -> &mut Self {
        self.buffer.add_linear(i, w);
        self
    }

    /// Adds `w * x_i * x_j`. For `i == j` this is `w * x_i`, because `x² = x` for bits.
    pub fn add_quadratic(&mut self, i: usize, j: usize, w: f64) -> &mut Self {
        if i == j {
            self.buffer.add_linear(i, w);
        } else {
            self.buffer.add_pair(i, j, w);
        }
        self
    }

    /// Adds a constant to every energy.
    pub fn add_offset(&mut self, w: f64) -> &mut Self {
        self.buffer.add_offset(w);
        self
    }

    /// Number of variables the model will have.
    #[must_use]
    pub fn num_variables(&self) -> usize {
        self.buffer.num_variables()
    }

    /// Merges the terms into a [`Qubo`].
    ///
    /// # Errors
    /// The first out-of-range index or non-finite coefficient that was added.
    pub fn build(self) -> Result<Qubo> {
        Ok(Qubo {
            terms: self.buffer.finish()?,
        })
    }
}

impl Qubo {
    /// Starts a QUBO over `num_variables` bits with every coefficient zero.
    #[must_use]
    pub fn builder(num_variables: usize) -> QuboBuilder {
        QuboBuilder {
            buffer: TermBuffer::new(num_variables),
        }
    }

    /// Number of binary variables.
    #[must_use]
    pub fn num_variables(&self) -> usize {
        self.terms.linear.len()
    }

    /// Linear coefficients `a_i`.
    #[must_use]
    pub fn linear(&self) -> &[f64] {
        &self.terms.linear
    }

    /// Pairwise coefficients `b_ij`.
    #[must_use]
    pub fn quadratic(&self) -> &Adjacency {
        &self.terms.quadratic
    }

    /// The constant `c`.
    #[must_use]
    pub fn offset(&self) -> f64 {
        self.terms.offset
    }

    /// Energy of a bit vector (entries 0 or nonzero).
    ///
    /// # Errors
    /// [`SampleLength`](crate::QuantumError::SampleLength) if `bits` has the wrong length.
    pub fn energy(&self, bits: &[u8]) -> Result<f64> {
        check_len(self.num_variables(), bits.len())?;
        let values: Vec<f64> = bits.iter().map(|&b| f64::from(u8::from(b != 0))).collect();
        Ok(self.terms.evaluate(&values))
    }

    /// Energy change from flipping bit `i` of `bits`, in O(degree of `i`).
    ///
    /// # Panics
    /// If `i` or a neighbour of `i` is outside `bits`.
    #[must_use]
    pub fn flip_delta(&self, bits: &[u8], i: usize) -> f64 {
        let (cols, ws) = self.terms.quadratic.row(i);
        let mut field = self.terms.linear[i];
        for (&j, &w) in cols.iter().zip(ws) {
            if bits[j as usize] != 0 {
                field += w;
            }
        }
        if bits[i] == 0 { field } else { -field }
    }

    /// The equivalent Ising model under `x = (1 + s) / 2`, with energies equal sample by sample.
    ///
    /// `a x_i` becomes `a/2 + (a/2) s_i` and `b x_i x_j` becomes `b/4 (1 + s_i + s_j + s_i s_j)`.
    #[must_use]
    pub fn to_ising(&self) -> Ising {
        let n = self.num_variables();
        let mut builder = IsingBuilder::new(n);
        builder.add_offset(self.terms.offset);
        for (i, &a) in self.terms.linear.iter().enumerate() {
            builder.add_field(i, a / 2.0);
            builder.add_offset(a / 2.0);
        }
        for (i, j, b) in self.terms.quadratic.upper() {
            let quarter = b / 4.0;
            builder.add_coupling(i, j, quarter);
            builder.add_field(i, quarter);
            builder.add_field(j, quarter);
            builder.add_offset(quarter);
        }
        builder
            .build()
            .expect("terms of a valid QUBO are finite and in range")
    }

    /// The same QUBO as an upper-triangular dense matrix (diagonal = linear terms).
    #[must_use]
    pub fn to_dense(&self) -> DenseQubo {
        DenseQubo::from_qubo(self)
    }
}
