//! Parse: each source's TOML text to its tables ([`FileDef`]), with spans kept.
//!
//! A pass of its own because every later pass needs all files' tables at once: ids resolve
//! across files whatever their order. A file that does not parse is reported (file:line:col
//! of the TOML error) and stands as an empty file, so the other files are still checked.

use super::{CompileError, Source};
use crate::config::line_col;
use serde::Deserialize;
use toml::Spanned;

/// Parses every source; a file that does not parse is reported and counts as empty.
pub(super) fn parse(sources: &[Source]) -> (Vec<FileDef>, Vec<CompileError>) {
    let mut errors = Vec::new();
    let mut parsed: Vec<FileDef> = Vec::new();
    for src in sources {
        match toml::from_str::<FileDef>(&src.text) {
            Ok(f) => parsed.push(f),
            Err(e) => {
                let (line, col) = e.span().map(|s| line_col(&src.text, s.start)).unwrap_or((1, 1));
                let mut message = e.message().trim().to_string();
                if message.contains("unknown field") {
                    message.push_str(" (tables: [[list]], [[definition]], [[object]], [[rule]]; keys are listed in rules/README.md)");
                }
                errors.push(CompileError { file: src.path.clone(), line, col, id: None, key: None, message });
                parsed.push(FileDef::default());
            }
        }
    }
    (parsed, errors)
}

/// Offsets of each source's newlines, for [`super::builder::line_at`]: line numbers of ids by binary
/// search (a scan from the start of the file per id would make large generated files
/// quadratic to compile).
pub(super) fn newlines(sources: &[Source]) -> Vec<Vec<usize>> {
    sources.iter().map(|s| memchr::memchr_iter(b'\n', s.text.as_bytes()).collect()).collect()
}

/// One rule file's tables, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDef {
    #[serde(default)]
    pub(super) list: Vec<Spanned<ListDef>>,
    #[serde(default)]
    pub(super) definition: Vec<Spanned<DefinitionDef>>,
    #[serde(default)]
    pub(super) object: Vec<Spanned<ObjectDef>>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<RuleDef>>,
}

/// A `[[list]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListDef {
    pub(super) id: Spanned<String>,
    pub(super) kind: Spanned<String>,
    #[serde(default)]
    pub(super) entries: Vec<String>,
    pub(super) file: Option<Spanned<String>>,
    pub(super) international_prefixes: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub(super) description: String,
}

/// A `[[definition]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefinitionDef {
    pub(super) id: Spanned<String>,
    pub(super) event: Spanned<String>,
    pub(super) when: Spanned<String>,
    #[serde(default)]
    pub(super) description: String,
}

/// An `[[object]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ObjectDef {
    pub(super) id: Spanned<String>,
    pub(super) scope: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) value: Option<Spanned<String>>,
    pub(super) max_entries: Option<Spanned<i64>>,
    pub(super) normalize: Option<Spanned<i64>>,
    pub(super) decrement: Option<Spanned<i64>>,
    pub(super) period: Option<Spanned<String>>,
    pub(super) window: Option<Spanned<String>>,
    pub(super) cap: Option<Spanned<i64>>,
    pub(super) source_prefix_v4: Option<Spanned<i64>>,
    pub(super) source_prefix_v6: Option<Spanned<i64>>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) key: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) description: String,
}

/// A `[[rule]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDef {
    pub(super) id: Spanned<String>,
    pub(super) when: Spanned<String>,
    #[serde(default)]
    pub(super) description: String,
    pub(super) action: Option<Spanned<String>>,
    pub(super) status: Option<Spanned<i64>>,
    pub(super) reason: Option<String>,
    pub(super) ban: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) hold: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) count: Vec<Spanned<String>>,
    pub(super) tag: Option<String>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) severity: Option<Spanned<i64>>,
    pub(super) definition: Option<Spanned<String>>,
    pub(super) log: Option<bool>,
}

/// Offset of the content of a TOML string whose span is `span`: past the opening quote(s).
pub(super) fn string_content_start(text: &str, span: &std::ops::Range<usize>) -> usize {
    let raw = text.get(span.clone()).unwrap_or("");
    let q = if raw.starts_with("'''") || raw.starts_with("\"\"\"") { 3 } else { 1 };
    // A multi-line string drops a newline right after its opening quotes.
    let nl = raw.get(q..).is_some_and(|r| r.starts_with('\n')) as usize;
    span.start + q + nl
}
