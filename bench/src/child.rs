//! Running one engine in a child process: every comparative subcommand re-executes this binary
//! with a hidden `*-engine` subcommand per engine, so each engine's memory and allocator state
//! are its own.

use std::process::{Command, Stdio};

use crate::Result;

/// Runs `nq-bench <subcommand> --engine=<engine> <args>`, its stderr shown as it runs, and
/// returns its stdout. A child that fails is an error naming the engine.
pub fn run(subcommand: &str, engine: &str, args: &[String]) -> Result<String> {
    let exe = std::env::current_exe()?;
    let output = Command::new(&exe)
        .arg(subcommand)
        .arg(format!("--engine={engine}"))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("{engine} child failed: {}", output.status).into());
    }
    Ok(String::from_utf8(output.stdout)?)
}
