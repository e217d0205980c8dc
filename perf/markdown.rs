//! `report.md` (to be written).

use crate::model::Report;

/// The Markdown report.
pub fn render(_report: &Report) -> String {
    String::new()
}
