//! The offline engine benchmark (to be written).

use clap::Args;
use std::path::PathBuf;

/// Options of `secsip-perf engine`.
#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Fewer rule counts and shorter measurements.
    #[arg(long)]
    pub quick: bool,
    /// Where engine.json and engine.md go (default perf/out/<timestamp>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(_args: &EngineArgs) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}

/// `YYYYMMDDTHHMMSSZ` for now (placeholder until the engine benchmark lands).
pub fn utc_stamp() -> String {
    format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}
