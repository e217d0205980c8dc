//! Rule files to a [`RuleSet`], in passes, each in its own file and each taking and
//! handing on explicit data (a `Builder`, in `builder`, carries what accumulates):
//!
//! 1. `parse`: TOML text to tables, per file;
//! 2. `declare`: lists and events, across all files;
//! 3. `objects`: objects, parents before children;
//! 4. `rules`: definition and rule tables to pending rules, per file, each `when` then
//!    compiled by `resolve` (names resolved, type-checked, atoms built);
//! 5. `schedule`: writers before readers;
//! 6. `index`: triggers, method buckets, numeric, address and object indexes;
//! 7. `emit`: matchers built and the [`RuleSet`] assembled.
//!
//! Every error names the file, line and column, the rule and the key, and, for a misspelt
//! name, the closest valid one. All errors of a load are reported, not just the first: the
//! declaring passes go on after an error, and the set is refused before it is scheduled.

mod builder;
mod declare;
mod emit;
mod index;
mod objects;
mod parse;
mod resolve;
mod rules;
mod schedule;

use super::lists::ListKind;
use super::model::RuleSet;
use builder::{Builder, SeenIds};
use parse::FileDef;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use index::{mask4, mask6};

/// One compile error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// File.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Rule, definition, object or list id, when known.
    pub id: Option<String>,
    /// Key of the table (`when`, `action`...), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if let Some(id) = &self.id {
            write!(f, "'{id}': ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// All errors of a compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileErrors(pub Vec<CompileError>);

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileErrors {}

/// Options that come from the appliance configuration.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// MaxMind DB for country lists.
    pub geoip_db: Option<PathBuf>,
    /// Host-table counter slots available to source/global counters.
    pub host_counters: usize,
    /// Host-table distinct slots available to source/global distinct objects.
    pub host_distincts: usize,
    /// Entries added on top of the rule files' own (the management API's), by list id. They
    /// apply only while the list still has the kind they were checked for.
    pub extra_entries: BTreeMap<String, (ListKind, Vec<String>)>,
}

impl CompileOptions {
    /// Defaults matching the default host table.
    pub fn standard() -> CompileOptions {
        CompileOptions { geoip_db: None, host_counters: 16, host_distincts: 8, extra_entries: BTreeMap::new() }
    }
}

/// Parses a duration such as `90s`, `5m`, `1h`, `500ms`, `2d`.
pub fn parse_duration_ns(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mul: u64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(mul).filter(|&v| v > 0)
}

/// A rule source: a file's name and text.
pub struct Source {
    /// Path shown in errors.
    pub path: PathBuf,
    /// Contents.
    pub text: String,
}

/// Reads every `*.toml` of `dir` in file-name order.
pub fn read_dir(dir: &Path) -> Result<Vec<Source>, CompileErrors> {
    let err = |message: String| {
        CompileErrors(vec![CompileError { file: dir.to_owned(), line: 1, col: 1, id: None, key: None, message }])
    };
    let rd = std::fs::read_dir(dir).map_err(|e| err(format!("cannot read rules directory: {e}")))?;
    let mut paths: Vec<PathBuf> =
        rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Source { path, text }),
            Err(e) => Err(err(format!("{}: {e}", path.display()))),
        })
        .collect()
}

/// Compiles a rules directory.
pub fn compile_dir(dir: &Path, opts: &CompileOptions) -> Result<RuleSet, CompileErrors> {
    let sources = read_dir(dir)?;
    compile(&sources, dir, opts)
}

/// Compiles rule sources (already read) into a rule set. `base` resolves list files.
pub fn compile(sources: &[Source], base: &Path, opts: &CompileOptions) -> Result<RuleSet, CompileErrors> {
    let read = |file: &str| {
        let p = base.join(file);
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    compile_with(sources, base, &read, opts)
}

/// Compiles rule sources whose list files (`file = "lists/x.txt"`) are in memory, keyed by
/// the path as written in the rule file (a leading `./` ignored). Errors name the sources'
/// own paths, so a rule set held as a file map reports paths relative to it.
pub fn compile_files(sources: &[Source], list_files: &BTreeMap<String, String>, opts: &CompileOptions) -> Result<RuleSet, CompileErrors> {
    let read = |file: &str| {
        let key = file.strip_prefix("./").unwrap_or(file);
        list_files.get(key).cloned().ok_or_else(|| format!("cannot read {file}: no such file in the rule set"))
    };
    compile_with(sources, Path::new(""), &read, opts)
}

/// A MaxMind DB, shared by the country lists.
type Geoip = Option<Arc<maxminddb::Reader<Vec<u8>>>>;

/// Reads a list file: the path as written to its text, or the error message.
type ReadList<'r> = &'r dyn Fn(&str) -> Result<String, String>;

/// What the passes after parsing read: the sources, their tables, their newlines' offsets.
struct Input<'s> {
    sources: &'s [Source],
    parsed: Vec<FileDef>,
    newlines: Vec<Vec<usize>>,
}

/// Compiles rule sources, reading list files through `read_list` (the path as written to its
/// text, or the error message). `base` names the whole set in errors that belong to no file.
pub fn compile_with(
    sources: &[Source],
    base: &Path,
    read_list: &dyn Fn(&str) -> Result<String, String>,
    opts: &CompileOptions,
) -> Result<RuleSet, CompileErrors> {
    let mut errors = Vec::new();
    let geoip = open_geoip(opts, &mut errors);
    let (parsed, parse_errors) = parse::parse(sources);
    errors.extend(parse_errors);
    let input = Input { sources, parsed, newlines: parse::newlines(sources) };
    let mut b = Builder::default();
    let mut seen = SeenIds::new();
    errors.extend(declare::declare(&mut b, &mut seen, &input, read_list, opts, &geoip));
    errors.extend(objects::declare(&mut b, &mut seen, &input, opts, base));
    let (pending, rule_errors) = rules::rules(&mut b, &mut seen, &input);
    errors.extend(rule_errors);
    if !errors.is_empty() {
        return Err(CompileErrors(errors));
    }
    let mut rules = schedule::schedule(&pending, sources)?;
    index::set_triggers(&b, &mut rules);
    emit::emit(b, rules, sources)
}

/// The MaxMind DB of the options, if any; an error if it cannot be opened.
fn open_geoip(opts: &CompileOptions, errors: &mut Vec<CompileError>) -> Geoip {
    let p = opts.geoip_db.as_ref()?;
    match maxminddb::Reader::open_readfile(p) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            errors.push(CompileError { file: p.clone(), line: 1, col: 1, id: None, key: Some("geoip_db".into()), message: format!("cannot open MaxMind DB: {e}") });
            None
        }
    }
}
