//! The dwave-samplers peer of `nq-bench maxcut`: runs `bench/peers/dwave_maxcut.py` (D-Wave's
//! `SimulatedAnnealingSampler`) in a Python child process and reads the JSON it prints.
//!
//! The script reports the best read's sides; the caller of [`Peer::run`] recomputes that cut itself, so a
//! figure from the peer is only printed if the peer's solution really has that value.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::Result;

/// Exit status the script uses when dwave-samplers cannot be imported.
const NOT_INSTALLED: i32 = 3;

/// How to start the peer.
#[derive(Debug, Clone)]
pub struct Peer {
    pub python: String,
    pub script: PathBuf,
    /// `dwave-samplers` version reported by the script.
    pub version: String,
}

/// One run of the peer on one graph.
#[derive(Debug, Clone)]
pub struct PeerRun {
    /// Wall time of the `sample` call alone.
    pub seconds: f64,
    /// The sampler's own account of the time spent annealing (excludes its pre- and
    /// post-processing).
    pub sampling_seconds: f64,
    pub best_cut: f64,
    pub mean_cut: f64,
    /// Side of every node in the best read (`true` = spin +1).
    pub best_sides: Vec<bool>,
}

/// The script shipped beside this crate.
pub fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/dwave_maxcut.py")
}

/// Checks that `python` can import dwave-samplers. `Ok(Err(reason))` means the peer is
/// unavailable and should be skipped; `Err` is anything else going wrong.
pub fn probe(python: &str, script: &Path) -> Result<std::result::Result<Peer, String>> {
    let output = match Command::new(python)
        .arg(script)
        .arg("--probe")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(err) => return Ok(Err(format!("cannot start {python}: {err}"))),
    };
    if output.status.code() == Some(NOT_INSTALLED) {
        let reason = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Ok(Err(reason));
    }
    if !output.status.success() {
        return Err(format!(
            "{} --probe failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let json: Value = serde_json::from_slice(&output.stdout)?;
    let version = json["version"]
        .as_str()
        .ok_or("probe printed no version")?
        .to_owned();
    Ok(Ok(Peer {
        python: python.to_owned(),
        script: script.to_owned(),
        version,
    }))
}

impl Peer {
    /// Runs `SimulatedAnnealingSampler` on the G-set file `graph`, with its default β range
    /// unless `beta_range` is given.
    pub fn run(
        &self,
        graph: &Path,
        reads: usize,
        sweeps: usize,
        seed: u64,
        beta_range: Option<(f64, f64)>,
    ) -> Result<PeerRun> {
        let mut command = Command::new(&self.python);
        command
            .arg(&self.script)
            .arg(graph)
            .arg(reads.to_string())
            .arg(sweeps.to_string())
            .arg(seed.to_string());
        if let Some((hot, cold)) = beta_range {
            // `{:?}` prints f64 with enough digits to round-trip.
            command.arg(format!("{hot:?}")).arg(format!("{cold:?}"));
        }
        let output = command
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "dwave peer failed on {}: {}",
                graph.display(),
                output.status
            )
            .into());
        }
        let json: Value = serde_json::from_slice(&output.stdout)?;
        let number = |key: &str| -> Result<f64> {
            json[key]
                .as_f64()
                .ok_or_else(|| format!("dwave peer printed no number {key}").into())
        };
        let sides = json["best_sides"]
            .as_str()
            .ok_or("dwave peer printed no best_sides")?;
        Ok(PeerRun {
            seconds: number("seconds")?,
            sampling_seconds: number("sampling_seconds")?,
            best_cut: number("best_cut")?,
            mean_cut: number("mean_cut")?,
            best_sides: sides.bytes().map(|b| b == b'1').collect(),
        })
    }
}
