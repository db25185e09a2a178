//! Compressed sparse row storage of symmetric pairwise interactions.
//!
//! Every interaction `(i, j, w)` with `i < j` is stored twice, once in row `i` and once in row
//! `j`, so a variable's neighbours are one contiguous slice. That is the layout the samplers'
//! inner loops want: flipping variable `i` touches exactly `neighbours(i)`.

/// Symmetric sparse interaction matrix with a zero diagonal.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjacency {
    offsets: Vec<usize>,
    neighbours: Vec<u32>,
    weights: Vec<f64>,
}

impl Adjacency {
    /// Builds the matrix from upper-triangle entries `(i, j, w)` with `i < j < n`, each pair at
    /// most once.
    pub(crate) fn from_upper(num_variables: usize, upper: &[(u32, u32, f64)]) -> Self {
        let mut degree = vec![0usize; num_variables];
        for &(i, j, _) in upper {
            debug_assert!(i < j);
            degree[i as usize] += 1;
            degree[j as usize] += 1;
        }
        let mut offsets = Vec::with_capacity(num_variables + 1);
        offsets.push(0);
        for d in &degree {
            offsets.push(offsets.last().copied().unwrap_or(0) + d);
        }
        let total = offsets[num_variables];
        let mut cursor: Vec<usize> = offsets[..num_variables].to_vec();
        let mut neighbours = vec![0u32; total];
        let mut weights = vec![0.0; total];
        // `upper` is sorted by (i, j), so rows come out sorted by neighbour index too: row i
        // first receives its lower neighbours (as the `j` of earlier pairs), then its upper ones.
        for &(i, j, w) in upper {
            let (iu, ju) = (i as usize, j as usize);
            neighbours[cursor[iu]] = j;
            weights[cursor[iu]] = w;
            cursor[iu] += 1;
            neighbours[cursor[ju]] = i;
            weights[cursor[ju]] = w;
            cursor[ju] += 1;
        }
        Self {
            offsets,
            neighbours,
            weights,
        }
    }

    /// Number of rows (variables).
    #[must_use]
    pub fn num_variables(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of distinct interacting pairs.
    #[must_use]
    pub fn num_interactions(&self) -> usize {
        self.neighbours.len() / 2
    }

    /// Neighbour indices and interaction weights of variable `i`.
    #[inline]
    #[must_use]
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let range = self.offsets[i]..self.offsets[i + 1];
        (&self.neighbours[range.clone()], &self.weights[range])
    }

    /// Number of neighbours of variable `i`.
    #[must_use]
    pub fn degree(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// Every interaction once, as `(i, j, w)` with `i < j`, in row-major order.
    pub fn upper(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        (0..self.num_variables()).flat_map(move |i| {
            let (cols, ws) = self.row(i);
            cols.iter()
                .zip(ws)
                .filter(move |&(&j, _)| j as usize > i)
                .map(move |(&j, &w)| (i, j as usize, w))
        })
    }

    /// The raw CSR arrays `(offsets, neighbours, weights)` for the samplers' inner loops.
    pub(crate) fn csr(&self) -> Csr<'_> {
        Csr {
            offsets: &self.offsets,
            neighbours: &self.neighbours,
            weights: &self.weights,
        }
    }

    /// Largest absolute interaction weight, 0 when there is none.
    #[must_use]
    pub fn max_abs_weight(&self) -> f64 {
        self.weights.iter().fold(0.0, |m, w| f64::max(m, w.abs()))
    }
}

/// Borrowed CSR arrays, copied into hot loops so they index plain slices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Csr<'a> {
    pub(crate) offsets: &'a [usize],
    pub(crate) neighbours: &'a [u32],
    pub(crate) weights: &'a [f64],
}
