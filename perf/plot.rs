//! SVG plots of a report (to be written).

use crate::model::Report;
use std::path::{Path, PathBuf};

/// Writes every plot of `report` into `dir`; returns the files written.
pub fn write_all(_report: &Report, _dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(Vec::new())
}
