//! TSPLIB symmetric TSP files with node coordinates.
//!
//! Supported: the `NAME`, `TYPE` (`TSP`), `COMMENT`, `DIMENSION` and `EDGE_WEIGHT_TYPE`
//! (`EUC_2D`, `CEIL_2D`, `GEO`, `ATT`) keywords, `NODE_COORD_TYPE`, `DISPLAY_DATA_TYPE` and
//! `EDGE_WEIGHT_FORMAT: FUNCTION` (ignored),
//! a `NODE_COORD_SECTION` with one `i x y` line per node (1-based, each node once), and an
//! optional `EOF`. Distances follow the TSPLIB95 integer rounding rules, so tour lengths agree
//! with published optima.

use std::path::Path;

use nalgebra::DMatrix;

use super::read_text;
use crate::error::QuantumError;
use crate::error::Result;

const FORMAT: &str = "tsplib";

/// Largest accepted `DIMENSION`: the dense distance matrix of 100 000 cities is already 80 GB,
/// so anything larger is a corrupt header, refused before allocating.
pub const MAX_DIMENSION: usize = 100_000;

/// How TSPLIB turns coordinates into integer distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeWeightType {
    /// Euclidean distance rounded to the nearest integer.
    Euc2d,
    /// Euclidean distance rounded up.
    Ceil2d,
    /// Great-circle distance on the TSPLIB sphere; coordinates are `DDD.MM` degrees and
    /// minutes of latitude (x) and longitude (y).
    Geo,
    /// The "pseudo-Euclidean" distance of the att48/att532 instances.
    Att,
}

impl EdgeWeightType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "EUC_2D" => Some(Self::Euc2d),
            "CEIL_2D" => Some(Self::Ceil2d),
            "GEO" => Some(Self::Geo),
            "ATT" => Some(Self::Att),
            _ => None,
        }
    }

    /// The TSPLIB distance between two coordinate pairs.
    #[must_use]
    pub fn distance(self, a: (f64, f64), b: (f64, f64)) -> f64 {
        let (dx, dy) = (a.0 - b.0, a.1 - b.1);
        match self {
            Self::Euc2d => nint(dx.hypot(dy)),
            Self::Ceil2d => dx.hypot(dy).ceil(),
            Self::Att => {
                let r = ((dx * dx + dy * dy) / 10.0).sqrt();
                let t = nint(r);
                if t < r { t + 1.0 } else { t }
            }
            Self::Geo => {
                const RRR: f64 = 6378.388;
                let (lat_a, lon_a) = (geo_radians(a.0), geo_radians(a.1));
                let (lat_b, lon_b) = (geo_radians(b.0), geo_radians(b.1));
                let q1 = (lon_a - lon_b).cos();
                let q2 = (lat_a - lat_b).cos();
                let q3 = (lat_a + lat_b).cos();
                (RRR * (0.5 * ((1.0 + q1) * q2 - (1.0 - q1) * q3)).acos() + 1.0).trunc()
            }
        }
    }
}

/// TSPLIB's `nint`: `(int)(x + 0.5)`.
fn nint(x: f64) -> f64 {
    (x + 0.5).trunc()
}

/// `DDD.MM` to radians, with TSPLIB's truncated degrees and its 3.141592 for π (the published
/// optima were computed with exactly this constant).
fn geo_radians(x: f64) -> f64 {
    #[allow(clippy::approx_constant)]
    const PI: f64 = 3.141_592;
    let degrees = x.trunc();
    let minutes = x - degrees;
    PI * (degrees + 5.0 * minutes / 3.0) / 180.0
}

/// A TSPLIB instance with coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct TspInstance {
    /// The `NAME` field (empty if absent).
    pub name: String,
    /// How coordinates become distances.
    pub edge_weight_type: EdgeWeightType,
    /// Node coordinates, node `i` (0-based) at index `i`.
    pub coordinates: Vec<(f64, f64)>,
}

impl TspInstance {
    /// Number of cities.
    #[must_use]
    pub fn num_cities(&self) -> usize {
        self.coordinates.len()
    }

    /// The full distance matrix (zero diagonal).
    #[must_use]
    pub fn distances(&self) -> DMatrix<f64> {
        let n = self.num_cities();
        DMatrix::from_fn(n, n, |i, j| {
            if i == j {
                0.0
            } else {
                self.edge_weight_type
                    .distance(self.coordinates[i], self.coordinates[j])
            }
        })
    }
}

#[derive(Default)]
struct Header {
    name: String,
    dimension: Option<usize>,
    weight_type: Option<EdgeWeightType>,
}

/// Parses TSPLIB text.
///
/// # Errors
/// [`Parse`](QuantumError::Parse) naming the line of an unknown or unsupported keyword, a
/// malformed value, a missing `DIMENSION`/`EDGE_WEIGHT_TYPE` before the coordinates, a bad
/// or repeated node line, or missing nodes (line 0 when the file ends early).
pub fn parse_tsplib(text: &str) -> Result<TspInstance> {
    let mut header = Header::default();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()));
    let mut coordinates: Option<Vec<Option<(f64, f64)>>> = None;
    while let Some((line_number, line)) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (key, value) = match line.split_once(':') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => (line, ""),
        };
        match key {
            "NAME" => header.name = value.to_owned(),
            "COMMENT" | "NODE_COORD_TYPE" | "DISPLAY_DATA_TYPE" => {}
            // Coordinate instances may state that weights come from a function of the coordinates.
            "EDGE_WEIGHT_FORMAT" if value == "FUNCTION" => {}
            "TYPE" => {
                if value != "TSP" {
                    return Err(QuantumError::parse(
                        FORMAT,
                        line_number,
                        format!("TYPE {value} is not supported; only symmetric TSP"),
                    ));
                }
            }
            "DIMENSION" => {
                let n: usize = value.parse().map_err(|_| {
                    QuantumError::parse(
                        FORMAT,
                        line_number,
                        format!("DIMENSION `{value}` is not a count"),
                    )
                })?;
                if n == 0 || n > MAX_DIMENSION {
                    return Err(QuantumError::parse(
                        FORMAT,
                        line_number,
                        format!("DIMENSION must be in 1..={MAX_DIMENSION}, got {n}"),
                    ));
                }
                header.dimension = Some(n);
            }
            "EDGE_WEIGHT_TYPE" => {
                let kind = EdgeWeightType::parse(value).ok_or_else(|| {
                    QuantumError::parse(
                        FORMAT,
                        line_number,
                        format!("EDGE_WEIGHT_TYPE {value} is not supported; use EUC_2D, CEIL_2D, GEO or ATT"),
                    )
                })?;
                header.weight_type = Some(kind);
            }
            "NODE_COORD_SECTION" => {
                let Some(n) = header.dimension else {
                    return Err(QuantumError::parse(
                        FORMAT,
                        line_number,
                        "NODE_COORD_SECTION before DIMENSION",
                    ));
                };
                coordinates = Some(parse_nodes(&mut lines, n)?);
            }
            "EOF" => break,
            _ => {
                return Err(QuantumError::parse(
                    FORMAT,
                    line_number,
                    format!("unknown or unsupported keyword `{key}`"),
                ));
            }
        }
    }
    let Some(nodes) = coordinates else {
        return Err(QuantumError::parse(FORMAT, 0, "no NODE_COORD_SECTION"));
    };
    let Some(edge_weight_type) = header.weight_type else {
        return Err(QuantumError::parse(FORMAT, 0, "no EDGE_WEIGHT_TYPE"));
    };
    let coordinates = nodes
        .into_iter()
        .map(|c| c.expect("parse_nodes fills every node"))
        .collect();
    Ok(TspInstance {
        name: header.name,
        edge_weight_type,
        coordinates,
    })
}

/// Reads exactly `n` node lines, each `i x y` with a distinct `i` in `1..=n`.
fn parse_nodes<'a>(
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    n: usize,
) -> Result<Vec<Option<(f64, f64)>>> {
    let mut nodes = vec![None; n];
    let mut seen = 0;
    while seen < n {
        let Some((line_number, line)) = lines.next() else {
            return Err(QuantumError::parse(
                FORMAT,
                0,
                format!("file ends after {seen} of {n} nodes"),
            ));
        };
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [index, x, y] = fields.as_slice() else {
            return Err(QuantumError::parse(
                FORMAT,
                line_number,
                format!("a node line needs `i x y`, found {} fields", fields.len()),
            ));
        };
        let bad = |what: &str, text: &str| {
            QuantumError::parse(
                FORMAT,
                line_number,
                format!("{what} `{text}` is not a number"),
            )
        };
        let index: usize = index.parse().map_err(|_| bad("node number", index))?;
        let x: f64 = x.parse().map_err(|_| bad("x coordinate", x))?;
        let y: f64 = y.parse().map_err(|_| bad("y coordinate", y))?;
        if index == 0 || index > n {
            return Err(QuantumError::parse(
                FORMAT,
                line_number,
                format!("node {index} is outside 1..={n}"),
            ));
        }
        if !(x.is_finite() && y.is_finite()) {
            return Err(QuantumError::parse(
                FORMAT,
                line_number,
                "coordinates must be finite",
            ));
        }
        if nodes[index - 1].replace((x, y)).is_some() {
            return Err(QuantumError::parse(
                FORMAT,
                line_number,
                format!("node {index} appears twice"),
            ));
        }
        seen += 1;
    }
    Ok(nodes)
}

/// Reads a TSPLIB file.
///
/// # Errors
/// [`Io`](QuantumError::Io) if the file cannot be read, else as [`parse_tsplib`].
pub fn read_tsplib(path: impl AsRef<Path>) -> Result<TspInstance> {
    parse_tsplib(&read_text(path.as_ref())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::tour::optimal_tour;

    /// burma14 from TSPLIB; its published optimum is 3323.
    const BURMA14: &str = "NAME: burma14
TYPE: TSP
COMMENT: 14-Staedte in Burma (Zaw Win)
DIMENSION: 14
EDGE_WEIGHT_TYPE: GEO
EDGE_WEIGHT_FORMAT: FUNCTION
DISPLAY_DATA_TYPE: COORD_DISPLAY
NODE_COORD_SECTION
   1  16.47       96.10
   2  16.47       94.44
   3  20.09       92.54
   4  22.39       93.37
   5  25.23       97.24
   6  22.00       96.05
   7  20.47       97.02
   8  17.20       96.29
   9  16.30       97.38
  10  14.05       98.12
  11  16.53       97.38
  12  21.52       95.59
  13  19.41       97.13
  14  20.09       94.55
EOF
";

    fn parse_error_line(text: &str) -> usize {
        match parse_tsplib(text) {
            Err(QuantumError::Parse { line, .. }) => line,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn test_burma14_optimum_matches_published_value() {
        let instance = parse_tsplib(BURMA14).unwrap();
        assert_eq!(instance.name, "burma14");
        assert_eq!(instance.num_cities(), 14);
        let tour = optimal_tour(&instance.distances()).unwrap();
        assert!((tour.length - 3323.0).abs() < 1e-9, "{}", tour.length);
    }

    #[test]
    fn test_rounding_rules() {
        let d = |kind: EdgeWeightType, a, b| kind.distance(a, b);
        assert_eq!(d(EdgeWeightType::Euc2d, (0.0, 0.0), (3.0, 4.0)), 5.0);
        assert_eq!(d(EdgeWeightType::Euc2d, (0.0, 0.0), (1.0, 1.0)), 1.0);
        assert_eq!(d(EdgeWeightType::Euc2d, (0.0, 0.0), (1.5, 1.5)), 2.0);
        assert_eq!(d(EdgeWeightType::Ceil2d, (0.0, 0.0), (1.0, 1.0)), 2.0);
        // ATT: sqrt((30² + 40²) / 10) = sqrt(250) = 15.81, nint = 16 ≥ r, so 16.
        assert_eq!(d(EdgeWeightType::Att, (0.0, 0.0), (30.0, 40.0)), 16.0);
        // sqrt((10² + 10²) / 10) = 4.47, nint = 4 < r, so 5.
        assert_eq!(d(EdgeWeightType::Att, (0.0, 0.0), (10.0, 10.0)), 5.0);
    }

    #[test]
    fn test_malformed_files_name_the_line() {
        let base = "NAME: t\nTYPE: TSP\nDIMENSION: 3\nEDGE_WEIGHT_TYPE: EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 3 4\n3 6 8\nEOF\n";
        assert_eq!(parse_tsplib(base).unwrap().distances()[(0, 2)], 10.0);
        assert_eq!(
            parse_error_line(&base.replace("TYPE: TSP", "TYPE: ATSP")),
            2
        );
        assert_eq!(
            parse_error_line(&base.replace("DIMENSION: 3", "DIMENSION: three")),
            3
        );
        assert_eq!(
            parse_error_line(&base.replace("DIMENSION: 3", "DIMENSION: 99999999999")),
            3
        );
        assert_eq!(parse_error_line(&base.replace("EUC_2D", "EXPLICIT")), 4);
        assert_eq!(parse_error_line(&base.replace("2 3 4", "2 3")), 7);
        assert_eq!(parse_error_line(&base.replace("2 3 4", "2 x 4")), 7);
        assert_eq!(parse_error_line(&base.replace("2 3 4", "4 3 4")), 7);
        assert_eq!(parse_error_line(&base.replace("3 6 8", "1 6 8")), 8);
        assert_eq!(parse_error_line(&base.replace("3 6 8\nEOF\n", "")), 0);
        assert_eq!(parse_error_line(&base.replace("NAME: t", "CAPACITY: 5")), 1);
        assert_eq!(parse_error_line("NAME: t\nNODE_COORD_SECTION\n1 0 0\n"), 2);
        assert_eq!(
            parse_error_line(&base.replace("EDGE_WEIGHT_TYPE: EUC_2D\n", "")),
            0
        );
    }
}
