//! The state the passes share: the [`Builder`] that accumulates fields, atoms, the matchers'
//! inputs, lists, objects and events; the ids claimed so far; a source's error context.
//!
//! Not a pass: each pass takes these explicitly and hands them on.

use super::{CompileError, Source};
use crate::config::line_col;
use crate::rules::expr::Expr;
use crate::rules::fields::Field;
use crate::rules::lists::List;
use crate::rules::model::*;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use toml::Spanned;

/// Ids claimed so far, across all kinds of table: where each was first declared (file, line).
pub(super) type SeenIds = HashMap<String, (PathBuf, usize)>;

/// One source's errors as a pass finds them, placed by span in that source.
pub(super) struct Ctx<'s> {
    pub(super) errors: Vec<CompileError>,
    pub(super) src: &'s Source,
}

impl Ctx<'_> {
    /// Reports `message` at `span` of this source.
    pub(super) fn err(&mut self, span: std::ops::Range<usize>, id: Option<&str>, key: Option<&str>, message: impl Into<String>) {
        let (line, col) = line_col(&self.src.text, span.start);
        self.errors.push(CompileError {
            file: self.src.path.clone(),
            line,
            col,
            id: id.map(str::to_string),
            key: key.map(str::to_string),
            message: message.into(),
        });
    }
}

/// Takes `id` for this file and line, or reports it as malformed or already used elsewhere.
pub(super) fn claim_id(seen: &mut SeenIds, cx: &mut Ctx<'_>, id: &Spanned<String>, line: usize, what: &str) -> bool {
    let name = id.get_ref();
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) {
        cx.err(id.span(), Some(name), Some("id"), format!("{what} ids use letters, digits, '_', '-' and '.'"));
        return false;
    }
    if let Some((file, l)) = seen.get(name) {
        cx.err(id.span(), Some(name), Some("id"), format!("duplicate id: already used at {}:{l}", file.display()));
        return false;
    }
    seen.insert(name.clone(), (cx.src.path.clone(), line));
    true
}

/// [`crate::config::line_col`]).
pub(super) fn line_at(newlines: &[usize], offset: usize) -> usize {
    newlines.partition_point(|&p| p < offset) + 1
}

/// A literal to find in a field: its bytes, its atom, where it must match.
pub(super) type Literal = (Vec<u8>, u32, Anchor);

/// The compiler's working state across files.
#[derive(Default)]
pub(super) struct Builder {
    pub(super) fields: Vec<Field>,
    pub(super) field_names: Vec<String>,
    pub(super) field_slots: HashMap<Field, Slot>,
    pub(super) atoms: Vec<Atom>,
    /// (slot, lower) -> literals: (bytes, atom, anchor).
    pub(super) literals: HashMap<(Slot, bool), Vec<Literal>>,
    /// (slot, lower) -> regexes: (pattern, atom).
    pub(super) regexes: HashMap<(Slot, bool), Vec<(String, u32)>>,
    /// Dedup of identical tests.
    pub(super) pre_dedup: HashMap<(Slot, bool, Vec<u8>, u8), u32>,
    /// Address tests of fields: (slot, network, prefix length, atom), for the address index.
    pub(super) ip_tests: Vec<(Slot, std::net::IpAddr, u8, u32)>,
    pub(super) lists: Vec<List>,
    pub(super) list_ids: HashMap<String, u32>,
    pub(super) objects: Vec<Object>,
    pub(super) object_ids: HashMap<String, u32>,
    pub(super) events: Vec<String>,
    pub(super) event_ids: HashMap<String, u32>,
}

impl Builder {
    /// The slot of field `f` (named `name`), given on first use.
    pub(super) fn slot(&mut self, f: Field, name: &str) -> Slot {
        if let Some(&s) = self.field_slots.get(&f) {
            return s;
        }
        let s = self.fields.len() as Slot;
        self.fields.push(f.clone());
        self.field_names.push(name.to_string());
        self.field_slots.insert(f, s);
        s
    }

    /// A new atom.
    pub(super) fn atom(&mut self, a: Atom) -> u32 {
        self.atoms.push(a);
        (self.atoms.len() - 1) as u32
    }

    /// The atom of a literal test, shared by identical tests.
    pub(super) fn literal(&mut self, slot: Slot, lower: bool, lit: Vec<u8>, anchor: Anchor) -> u32 {
        let key = (slot, lower, lit.clone(), anchor as u8);
        if let Some(&a) = self.pre_dedup.get(&key) {
            return a;
        }
        let a = self.atom(Atom::Pre);
        self.literals.entry((slot, lower)).or_default().push((lit, a, anchor));
        self.pre_dedup.insert(key, a);
        a
    }

    /// The atom of a regex test (any value), shared by identical tests.
    pub(super) fn regex(&mut self, slot: Slot, lower: bool, pat: String) -> u32 {
        let key = (slot, lower, pat.clone().into_bytes(), 255);
        if let Some(&a) = self.pre_dedup.get(&key) {
            return a;
        }
        let a = self.atom(Atom::Pre);
        self.regexes.entry((slot, lower)).or_default().push((pat, a));
        self.pre_dedup.insert(key, a);
        a
    }
}

/// A definition or rule between its table and its place in the schedule.
pub(super) struct PendingRule {
    pub(super) rule: Rule,
    pub(super) expr: Expr,
    pub(super) when_span: std::ops::Range<usize>,
    pub(super) src: usize,
    pub(super) reads_objects: BTreeSet<u32>,
    pub(super) reads_events: BTreeSet<u32>,
    pub(super) hold_spans: Vec<(String, std::ops::Range<usize>)>,
    pub(super) count_spans: Vec<(String, std::ops::Range<usize>)>,
    pub(super) definition_ref: Option<Spanned<String>>,
}

impl PendingRule {
    /// A pending rule whose `when` is not compiled yet.
    pub(super) fn new(rule: Rule, when_span: std::ops::Range<usize>, src: usize) -> PendingRule {
        PendingRule {
            rule,
            expr: Expr::And(vec![]),
            when_span,
            src,
            reads_objects: BTreeSet::new(),
            reads_events: BTreeSet::new(),
            hold_spans: vec![],
            count_spans: vec![],
            definition_ref: None,
        }
    }
}
