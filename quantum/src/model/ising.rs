//! Ising model: minimise `c + Σ h_i s_i + Σ_{i<j} J_ij s_i s_j` over `s ∈ {-1,+1}^n`.
//!
//! The samplers work on this form: flipping spin `i` changes the energy by `-2 s_i f_i`, where
//! `f_i = h_i + Σ_j J_ij s_j` is the local field, which they cache and update incrementally.

use super::Adjacency;
use super::Qubo;
use super::QuboBuilder;
use super::check_len;
use super::terms::TermBuffer;
use super::terms::Terms;
use crate::error::Result;

/// An Ising model in sparse form.
#[derive(Debug, Clone, PartialEq)]
pub struct Ising {
    terms: Terms,
}

/// Collects Ising terms in any order; repeated terms add up.
#[derive(Debug)]
pub struct IsingBuilder {
    buffer: TermBuffer,
}

impl IsingBuilder {
    pub(crate) fn new(num_variables: usize) -> Self {
        Self {
            buffer: TermBuffer::new(num_variables),
        }
    }

    /// Adds `h * s_i`.
    pub fn add_field(&mut self, i: usize, h: f64) -> &mut Self {
        self.buffer.add_linear(i, h);
        self
    }

    /// Adds `j * s_a * s_b`. For `a == b` this is the constant `j`, because `s² = 1`.
    pub fn add_coupling(&mut self, a: usize, b: usize, j: f64) -> &mut Self {
        if a == b {
            self.buffer.add_offset(j);
        } else {
            self.buffer.add_pair(a, b, j);
        }
        self
    }

    /// Adds a constant to every energy.
    pub fn add_offset(&mut self, c: f64) -> &mut Self {
        self.buffer.add_offset(c);
        self
    }

    /// Merges the terms into an [`Ising`] model.
    ///
    /// # Errors
    /// The first out-of-range index or non-finite coefficient that was added.
    pub fn build(self) -> Result<Ising> {
        Ok(Ising {
            terms: self.buffer.finish()?,
        })
    }
}

impl Ising {
    /// Starts an Ising model over `num_variables` spins with every coefficient zero.
    #[must_use]
    pub fn builder(num_variables: usize) -> IsingBuilder {
        IsingBuilder::new(num_variables)
    }

    /// Number of spins.
    #[must_use]
    pub fn num_variables(&self) -> usize {
        self.terms.linear.len()
    }

    /// Fields `h_i`.
    #[must_use]
    pub fn fields(&self) -> &[f64] {
        &self.terms.linear
    }

    /// Couplings `J_ij`.
    #[must_use]
    pub fn couplings(&self) -> &Adjacency {
        &self.terms.quadratic
    }

    /// The constant `c`.
    #[must_use]
    pub fn offset(&self) -> f64 {
        self.terms.offset
    }

    /// Energy of a spin vector (negative entries are -1, others +1).
    ///
    /// # Errors
    /// [`SampleLength`](crate::QuantumError::SampleLength) if `spins` has the wrong length.
    pub fn energy(&self, spins: &[i8]) -> Result<f64> {
        check_len(self.num_variables(), spins.len())?;
        Ok(self.energy_of(&spin_values(spins)))
    }

    /// Energy of the spins encoded as bits (bit 1 is spin +1), which equals the energy of the
    /// QUBO this model was converted from.
    ///
    /// # Errors
    /// [`SampleLength`](crate::QuantumError::SampleLength) if `bits` has the wrong length.
    pub fn energy_of_bits(&self, bits: &[u8]) -> Result<f64> {
        check_len(self.num_variables(), bits.len())?;
        let values: Vec<f64> = bits
            .iter()
            .map(|&b| if b == 0 { -1.0 } else { 1.0 })
            .collect();
        Ok(self.energy_of(&values))
    }

    /// Energy of spins given as `±1.0`; the samplers' internal form.
    pub(crate) fn energy_of(&self, spins: &[f64]) -> f64 {
        self.terms.evaluate(spins)
    }

    /// Local field `h_i + Σ_j J_ij s_j` for spins given as `±1.0`.
    pub(crate) fn local_field(&self, spins: &[f64], i: usize) -> f64 {
        self.terms.local_field(spins, i)
    }

    /// Energy change from flipping spin `i`, in O(degree of `i`).
    ///
    /// # Panics
    /// If `i` or a neighbour of `i` is outside `spins`.
    #[must_use]
    pub fn flip_delta(&self, spins: &[i8], i: usize) -> f64 {
        let (cols, ws) = self.terms.quadratic.row(i);
        let mut field = self.terms.linear[i];
        for (&j, &w) in cols.iter().zip(ws) {
            field += w * spin_value(spins[j as usize]);
        }
        -2.0 * spin_value(spins[i]) * field
    }

    /// The equivalent QUBO under `s = 2x - 1`, with energies equal sample by sample.
    ///
    /// `h s_i` becomes `2h x_i - h` and `J s_i s_j` becomes `J (4 x_i x_j - 2 x_i - 2 x_j + 1)`.
    #[must_use]
    pub fn to_qubo(&self) -> Qubo {
        let mut builder: QuboBuilder = Qubo::builder(self.num_variables());
        builder.add_offset(self.terms.offset);
        for (i, &h) in self.terms.linear.iter().enumerate() {
            builder.add_linear(i, 2.0 * h);
            builder.add_offset(-h);
        }
        for (i, j, coupling) in self.terms.quadratic.upper() {
            builder.add_quadratic(i, j, 4.0 * coupling);
            builder.add_linear(i, -2.0 * coupling);
            builder.add_linear(j, -2.0 * coupling);
            builder.add_offset(coupling);
        }
        builder
            .build()
            .expect("terms of a valid Ising model are finite and in range")
    }

    /// Largest `Σ |h_i| + Σ_j |J_ij|` over spins, an upper bound on half of any flip's energy
    /// change; the samplers use it to choose their hottest temperature.
    #[must_use]
    pub fn max_abs_field(&self) -> f64 {
        (0..self.num_variables())
            .map(|i| {
                let (_, ws) = self.terms.quadratic.row(i);
                self.terms.linear[i].abs() + ws.iter().map(|w| w.abs()).sum::<f64>()
            })
            .fold(0.0, f64::max)
    }
}

fn spin_value(s: i8) -> f64 {
    if s < 0 { -1.0 } else { 1.0 }
}

fn spin_values(spins: &[i8]) -> Vec<f64> {
    spins.iter().map(|&s| spin_value(s)).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn random_qubo(n: usize, terms: &[(usize, usize, f64)], offset: f64) -> Qubo {
        let mut builder = Qubo::builder(n);
        for &(i, j, w) in terms {
            builder.add_quadratic(i % n, j % n, w);
        }
        builder.add_offset(offset);
        builder.build().unwrap()
    }

    proptest! {
        #[test]
        fn test_qubo_to_ising_preserves_every_energy(
            n in 1usize..12,
            terms in proptest::collection::vec((0usize..64, 0usize..64, -10.0f64..10.0), 0..40),
            offset in -5.0f64..5.0,
            bits in proptest::collection::vec(0u8..2, 12),
        ) {
            let qubo = random_qubo(n, &terms, offset);
            let ising = qubo.to_ising();
            let bits = &bits[..n];
            let spins = crate::model::bits_to_spins(bits);
            let eq = qubo.energy(bits).unwrap();
            prop_assert!((eq - ising.energy(&spins).unwrap()).abs() < 1e-9);
            prop_assert!((eq - ising.energy_of_bits(bits).unwrap()).abs() < 1e-9);
            let back = ising.to_qubo();
            prop_assert!((eq - back.energy(bits).unwrap()).abs() < 1e-9);
            prop_assert!((eq - qubo.to_dense().energy(bits).unwrap()).abs() < 1e-9);
        }

        #[test]
        fn test_flip_deltas_match_energy_differences(
            n in 1usize..12,
            terms in proptest::collection::vec((0usize..64, 0usize..64, -10.0f64..10.0), 0..40),
            bits in proptest::collection::vec(0u8..2, 12),
            flip in 0usize..12,
        ) {
            let qubo = random_qubo(n, &terms, 0.0);
            let ising = qubo.to_ising();
            let mut bits = bits[..n].to_vec();
            let i = flip % n;
            let before = qubo.energy(&bits).unwrap();
            let delta_q = qubo.flip_delta(&bits, i);
            let spins = crate::model::bits_to_spins(&bits);
            let delta_s = ising.flip_delta(&spins, i);
            let delta_d = qubo.to_dense().flip_delta(&bits, i);
            bits[i] ^= 1;
            let after = qubo.energy(&bits).unwrap();
            prop_assert!((after - before - delta_q).abs() < 1e-9);
            prop_assert!((after - before - delta_s).abs() < 1e-9);
            prop_assert!((after - before - delta_d).abs() < 1e-9);
        }
    }

    #[test]
    fn test_builder_rejects_bad_terms() {
        let mut builder = Qubo::builder(3);
        builder.add_quadratic(0, 3, 1.0);
        assert!(matches!(
            builder.build(),
            Err(crate::QuantumError::VariableOutOfRange { index: 3, .. })
        ));
        let mut builder = Ising::builder(3);
        builder.add_coupling(0, 1, f64::NAN);
        assert!(matches!(
            builder.build(),
            Err(crate::QuantumError::NonFiniteCoefficient { .. })
        ));
    }

    #[test]
    fn test_duplicates_merge_and_cancelled_pairs_vanish() {
        let mut builder = Ising::builder(3);
        builder.add_coupling(0, 1, 1.5).add_coupling(1, 0, 0.5);
        builder.add_coupling(1, 2, 1.0).add_coupling(2, 1, -1.0);
        builder.add_coupling(2, 2, 3.0);
        let ising = builder.build().unwrap();
        assert_eq!(ising.couplings().num_interactions(), 1);
        assert_eq!(
            ising.couplings().upper().collect::<Vec<_>>(),
            vec![(0, 1, 2.0)]
        );
        assert!((ising.offset() - 3.0).abs() < 1e-12);
        assert!((ising.energy(&[1, -1, 1]).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn test_wrong_sample_length_is_an_error() {
        let ising = Ising::builder(2).build().unwrap();
        assert!(matches!(
            ising.energy(&[1]),
            Err(crate::QuantumError::SampleLength {
                expected: 2,
                got: 1
            })
        ));
    }
}
