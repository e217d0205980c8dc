//! Rule files to a [`RuleSet`]: parse, resolve names, type-check, build the matchers and the
//! method index, schedule writers before readers.
//!
//! Every error names the file, line and column, the rule and the key, and, for a misspelt
//! name, the closest valid one. All errors of a load are reported, not just the first.

use super::expr::{self, CmpOp, Expr, Operand, Quant, Wrap};
use super::fields::{self, Field, Kind};
use super::lists::{self, List, ListKind};
use super::model::*;
use crate::config::line_col;
use crate::sip::Method;
use aho_corasick::{AhoCorasickBuilder, MatchKind};
use regex::bytes::RegexSetBuilder;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    list: Vec<Spanned<ListDef>>,
    #[serde(default)]
    definition: Vec<Spanned<DefinitionDef>>,
    #[serde(default)]
    object: Vec<Spanned<ObjectDef>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDef {
    id: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    entries: Vec<String>,
    file: Option<Spanned<String>>,
    international_prefixes: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionDef {
    id: Spanned<String>,
    event: Spanned<String>,
    when: Spanned<String>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectDef {
    id: Spanned<String>,
    scope: Spanned<String>,
    kind: Spanned<String>,
    value: Option<Spanned<String>>,
    max_entries: Option<Spanned<i64>>,
    normalize: Option<Spanned<i64>>,
    decrement: Option<Spanned<i64>>,
    period: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    cap: Option<Spanned<i64>>,
    source_prefix_v4: Option<Spanned<i64>>,
    source_prefix_v6: Option<Spanned<i64>>,
    address: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: Spanned<String>,
    when: Spanned<String>,
    #[serde(default)]
    description: String,
    action: Option<Spanned<String>>,
    status: Option<Spanned<i64>>,
    reason: Option<String>,
    ban: Option<Spanned<String>>,
    #[serde(default)]
    hold: Vec<Spanned<String>>,
    #[serde(default)]
    count: Vec<Spanned<String>>,
    tag: Option<String>,
    mode: Option<Spanned<String>>,
    severity: Option<Spanned<i64>>,
    definition: Option<Spanned<String>>,
    log: Option<bool>,
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

struct Ctx<'s> {
    errors: Vec<CompileError>,
    src: &'s Source,
}

impl Ctx<'_> {
    fn err(&mut self, span: std::ops::Range<usize>, id: Option<&str>, key: Option<&str>, message: impl Into<String>) {
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

/// Offset of the content of a TOML string whose span is `span`: past the opening quote(s).
fn string_content_start(text: &str, span: &std::ops::Range<usize>) -> usize {
    let raw = text.get(span.clone()).unwrap_or("");
    let q = if raw.starts_with("'''") || raw.starts_with("\"\"\"") { 3 } else { 1 };
    // A multi-line string drops a newline right after its opening quotes.
    let nl = raw.get(q..).is_some_and(|r| r.starts_with('\n')) as usize;
    span.start + q + nl
}

struct PendingRule {
    rule: Rule,
    expr: Expr,
    when_span: std::ops::Range<usize>,
    src: usize,
    reads_objects: BTreeSet<u32>,
    reads_events: BTreeSet<u32>,
    hold_spans: Vec<(String, std::ops::Range<usize>)>,
    count_spans: Vec<(String, std::ops::Range<usize>)>,
    definition_ref: Option<Spanned<String>>,
}

/// A literal to find in a field: its bytes, its atom, where it must match.
type Literal = (Vec<u8>, u32, Anchor);

/// Takes `id` for this file and line, or reports it as malformed or already used elsewhere.
fn claim_id(seen: &mut HashMap<String, (PathBuf, usize)>, cx: &mut Ctx<'_>, id: &Spanned<String>, line: usize, what: &str) -> bool {
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

impl PendingRule {
    fn new(rule: Rule, when_span: std::ops::Range<usize>, src: usize) -> PendingRule {
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

/// The compiler's working state across files.
struct Builder {
    fields: Vec<Field>,
    field_names: Vec<String>,
    field_slots: HashMap<Field, Slot>,
    atoms: Vec<Atom>,
    /// (slot, lower) -> literals: (bytes, atom, anchor).
    literals: HashMap<(Slot, bool), Vec<Literal>>,
    /// (slot, lower) -> regexes: (pattern, atom).
    regexes: HashMap<(Slot, bool), Vec<(String, u32)>>,
    /// Dedup of identical tests.
    pre_dedup: HashMap<(Slot, bool, Vec<u8>, u8), u32>,
    /// Address tests of fields: (slot, network, prefix length, atom), for the address index.
    ip_tests: Vec<(Slot, std::net::IpAddr, u8, u32)>,
    lists: Vec<List>,
    list_ids: HashMap<String, u32>,
    objects: Vec<Object>,
    object_ids: HashMap<String, u32>,
    events: Vec<String>,
    event_ids: HashMap<String, u32>,
}

impl Builder {
    fn slot(&mut self, f: Field, name: &str) -> Slot {
        if let Some(&s) = self.field_slots.get(&f) {
            return s;
        }
        let s = self.fields.len() as Slot;
        self.fields.push(f.clone());
        self.field_names.push(name.to_string());
        self.field_slots.insert(f, s);
        s
    }

    fn atom(&mut self, a: Atom) -> u32 {
        self.atoms.push(a);
        (self.atoms.len() - 1) as u32
    }

    fn literal(&mut self, slot: Slot, lower: bool, lit: Vec<u8>, anchor: Anchor) -> u32 {
        let key = (slot, lower, lit.clone(), anchor as u8);
        if let Some(&a) = self.pre_dedup.get(&key) {
            return a;
        }
        let a = self.atom(Atom::Pre);
        self.literals.entry((slot, lower)).or_default().push((lit, a, anchor));
        self.pre_dedup.insert(key, a);
        a
    }

    fn regex(&mut self, slot: Slot, lower: bool, pat: String) -> u32 {
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

/// A resolved operand name.
enum Named {
    Field(Field, Kind),
    Object(u32),
    List(u32),
    Event(u32),
}

struct ExprCx<'a, 'b> {
    b: &'a mut Builder,
    cx: &'a mut Ctx<'b>,
    base: usize,
    id: &'a str,
    reads_objects: &'a mut BTreeSet<u32>,
    reads_events: &'a mut BTreeSet<u32>,
    /// Set when the rule is a definition: the events it raises are known later, so event
    /// reads are resolved against all definitions of the whole set.
    ok: bool,
}

impl ExprCx<'_, '_> {
    fn fail(&mut self, at: usize, message: impl Into<String>) {
        self.ok = false;
        let s = self.base + at;
        self.cx.err(s..s, Some(self.id), Some("when"), message);
    }

    fn resolve(&mut self, name: &str, at: usize) -> Option<Named> {
        if let Some(l) = name.strip_prefix("list.") {
            return match self.b.list_ids.get(l) {
                Some(&i) => Some(Named::List(i)),
                None => {
                    let hint = fields::suggest(l, self.b.list_ids.keys().map(String::as_str))
                        .map(|s| format!(" (did you mean 'list.{s}'?)"))
                        .unwrap_or_default();
                    self.fail(at, format!("unknown list '{l}'{hint}; lists must be declared before use, in this or an earlier file"));
                    None
                }
            };
        }
        if let Some(e) = name.strip_prefix("event.") {
            return match self.b.event_ids.get(e) {
                Some(&i) => {
                    self.reads_events.insert(i);
                    Some(Named::Event(i))
                }
                None => {
                    let hint = fields::suggest(e, self.b.event_ids.keys().map(String::as_str))
                        .map(|s| format!(" (did you mean 'event.{s}'?)"))
                        .unwrap_or_default();
                    self.fail(at, format!("unknown event '{e}'{hint}: no definition raises it"));
                    None
                }
            };
        }
        if let Some((f, k)) = Field::lookup(name) {
            return Some(Named::Field(f, k));
        }
        if let Some(&o) = self.b.object_ids.get(name) {
            self.reads_objects.insert(o);
            return Some(Named::Object(o));
        }
        let extra: Vec<&str> = self.b.object_ids.keys().map(String::as_str).collect();
        let hint = fields::suggest(name, extra.into_iter()).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
        let family = if name.starts_with("sip.headers") {
            " (any header: sip.headers.NAME)"
        } else if name.starts_with("sip.malformed.") {
            " (reasons are listed by `secsip rules check --fields`)"
        } else {
            ""
        };
        self.fail(at, format!("unknown field or object '{name}'{hint}{family}"));
        None
    }

    fn node(&mut self, e: &Expr) -> Node {
        match e {
            Expr::And(v) => Node::And(v.iter().map(|x| self.node(x)).collect()),
            Expr::Or(v) => Node::Or(v.iter().map(|x| self.node(x)).collect()),
            Expr::Not(x) => Node::Not(Box::new(self.node(x))),
            Expr::Test { left, cmp } => self.test(left, cmp.as_ref()),
        }
    }

    /// A harmless placeholder after an error, so compilation goes on to find more errors.
    fn dud(&mut self) -> Node {
        Node::Atom(self.b.atom(Atom::Pre))
    }

    fn test(&mut self, left: &Operand, cmp: Option<&(CmpOp, Operand)>) -> Node {
        let Operand::Name { name, wrap, quant, at } = left else {
            self.fail(left.at(), "a test starts with a field, an object or an event, not a constant");
            return self.dud();
        };
        let Some(named) = self.resolve(name, *at) else { return self.dud() };
        match (named, cmp) {
            (Named::Event(ev), None) => Node::Atom(self.b.atom(Atom::Event(ev))),
            (Named::Event(_), Some(_)) => {
                self.fail(*at, "an event is true or false: use it alone (`event.NAME`) or negated");
                self.dud()
            }
            (Named::List(_), _) => {
                self.fail(*at, "a list goes on the right of `in`: `FIELD in list.NAME`");
                self.dud()
            }
            (Named::Object(_), _) if *quant == Quant::All => {
                self.fail(*at, "an object has one value: all(...) is for fields");
                self.dud()
            }
            (Named::Object(o), cmp) => self.object_test(o, *wrap, *at, cmp),
            (Named::Field(f, _), None) => {
                let slot = self.b.slot(f, name);
                if *wrap == Wrap::Lower {
                    self.fail(*at, "lower(...) goes with a string comparison");
                }
                Node::Atom(self.b.atom(Atom::Truthy { slot, wrap: *wrap, quant: *quant }))
            }
            (Named::Field(f, k), Some((op, right))) => self.field_test(f, k, name, (*wrap, *quant), *at, *op, right),
        }
    }

    fn object_test(&mut self, o: u32, wrap: Wrap, at: usize, cmp: Option<&(CmpOp, Operand)>) -> Node {
        if wrap == Wrap::Len || wrap == Wrap::Lower {
            self.fail(at, "objects take count(...) or nothing: len() and lower() are for fields");
            return self.dud();
        }
        match cmp {
            None => Node::Atom(self.b.atom(Atom::ObjNum { object: o, op: CmpOp::Gt, value: 0 })),
            Some((op @ (CmpOp::Eq | CmpOp::Ne | CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le), Operand::Num { value, .. })) => {
                Node::Atom(self.b.atom(Atom::ObjNum { object: o, op: *op, value: *value }))
            }
            Some((op, r)) => {
                self.fail(r.at(), format!("an object compares with a number (`{} > 10`), not with `{}` and this operand", self.b.objects[o as usize].id, op.as_str()));
                self.dud()
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn field_test(&mut self, f: Field, k: Kind, name: &str, (wrap, quant): (Wrap, Quant), at: usize, op: CmpOp, right: &Operand) -> Node {
        let lower = wrap == Wrap::Lower;
        // `a != b` is `!(a == b)` for every kind, so it reads "no value equals b" (and
        // `all(a) != b` "not every value equals b").
        if op == CmpOp::Ne {
            return Node::Not(Box::new(self.field_test(f, k, name, (wrap, quant), at, CmpOp::Eq, right)));
        }
        // Numbers: the field itself if numeric, or its length / count.
        let numeric = matches!(wrap, Wrap::Len | Wrap::Count) || k == Kind::Num;
        if op == CmpOp::In {
            let Operand::Name { name: rname, at: rat, .. } = right else {
                self.fail(right.at(), "`in` takes a list (`list.NAME`) or an object on its right");
                return self.dud();
            };
            let slot = self.b.slot(f, name);
            return match self.resolve(rname, *rat) {
                Some(Named::List(l)) => {
                    let kind = self.b.lists[l as usize].kind;
                    let fits = match kind {
                        ListKind::Ip => k == Kind::Ip || k == Kind::Str,
                        ListKind::Country => k == Kind::Ip,
                        _ => k == Kind::Str,
                    };
                    if !fits {
                        let want = if kind.matches_addresses() { "an address field such as ip.src" } else { "a string field" };
                        self.fail(at, format!("list '{}' is of kind {:?}: its left side must be {want}", self.b.lists[l as usize].id, kind));
                    }
                    Node::Atom(self.b.atom(Atom::InList { slot, list: l, quant }))
                }
                Some(Named::Object(o)) => {
                    if !self.b.objects[o as usize].kind.is_container() {
                        self.fail(*rat, format!("'{rname}' is a {}: `in` needs a set, list or bag", self.b.objects[o as usize].kind.name()));
                    }
                    Node::Atom(self.b.atom(Atom::InObject { slot, object: o, quant }))
                }
                Some(_) => {
                    self.fail(*rat, "`in` takes a list (`list.NAME`) or an object on its right");
                    self.dud()
                }
                None => self.dud(),
            };
        }
        if k == Kind::Ip && wrap == Wrap::None {
            let Operand::Str { value, .. } = right else {
                self.fail(right.at(), "an address compares with a quoted address or CIDR: ip.src == \"192.0.2.0/24\"");
                return self.dud();
            };
            let Some(net) = lists::parse_net(value) else {
                self.fail(right.at(), format!("'{value}' is not an address or CIDR"));
                return self.dud();
            };
            let slot = self.b.slot(f, name);
            let atom = self.b.atom(Atom::Ip { slot, nets: lists::IpRanges::new(&[net]), quant });
            if quant == Quant::Any {
                self.b.ip_tests.push((slot, net.0, net.1, atom));
            }
            let a = Node::Atom(atom);
            return match op {
                CmpOp::Eq => a,
                _ => {
                    self.fail(at, format!("addresses take ==, != or in, not {}", op.as_str()));
                    a
                }
            };
        }
        if numeric {
            let Operand::Num { value, .. } = right else {
                self.fail(right.at(), format!("'{name}' is numeric here: compare it with a number"));
                return self.dud();
            };
            if matches!(op, CmpOp::Matches | CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith) {
                self.fail(at, format!("{} is for strings; '{name}' is numeric here", op.as_str()));
            }
            let slot = self.b.slot(f, name);
            return Node::Atom(self.b.atom(Atom::Num { slot, wrap, op, value: *value, quant }));
        }
        if k == Kind::Bool {
            self.fail(at, format!("'{name}' is true or false: use it alone or negated"));
            return self.dud();
        }
        // Strings.
        if matches!(op, CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le) {
            self.fail(at, format!("'{name}' is a string: {} needs a number (use len({name}) to compare its length)", op.as_str()));
            return self.dud();
        }
        let Operand::Str { value, at: rat } = right else {
            self.fail(right.at(), format!("'{name}' is a string: compare it with a quoted string"));
            return self.dud();
        };
        let slot = self.b.slot(f, name);
        if lower && op != CmpOp::Matches && value.bytes().any(|b| b.is_ascii_uppercase()) {
            self.fail(*rat, "lower(...) compares with a lower-case literal: this one has capitals and can never match");
        }
        let lit = value.as_bytes().to_vec();
        let pre = |s: &mut Self, anchor| match quant {
            Quant::Any => Node::Atom(s.b.literal(slot, lower, lit.clone(), anchor)),
            Quant::All => Node::Atom(s.b.atom(Atom::StrAll { slot, lower, test: StrTest::Literal(lit.clone(), anchor) })),
        };
        match op {
            CmpOp::Eq => pre(self, Anchor::Whole),
            CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith if lit.is_empty() => {
                self.fail(*rat, "an empty literal matches everything");
                self.dud()
            }
            CmpOp::Contains => pre(self, Anchor::Anywhere),
            CmpOp::StartsWith => pre(self, Anchor::Start),
            CmpOp::EndsWith => pre(self, Anchor::End),
            CmpOp::Matches => match regex::bytes::RegexBuilder::new(value).size_limit(1 << 20).build() {
                Err(e) => {
                    let msg = e.to_string().lines().last().unwrap_or("invalid regex").trim().to_string();
                    self.fail(*rat, format!("invalid regex: {msg}"));
                    self.dud()
                }
                Ok(re) if quant == Quant::All => Node::Atom(self.b.atom(Atom::StrAll { slot, lower, test: StrTest::Regex(re) })),
                Ok(_) => Node::Atom(self.b.regex(slot, lower, value.clone())),
            },
            _ => {
                self.fail(at, format!("'{name}' is a string: {} needs a number (use len({name}) to compare its length)", op.as_str()));
                self.dud()
            }
        }
    }
}

/// Which methods (or responses) a condition can hold for, from its top-level conjuncts.
fn method_constraint(e: &Expr) -> (Option<Vec<Method>>, bool, bool) {
    let conj: Vec<&Expr> = match e {
        Expr::And(v) => v.iter().collect(),
        other => vec![other],
    };
    let mut methods: Option<Vec<Method>> = None;
    let (mut responses, mut requests) = (false, false);
    for c in conj {
        match c {
            Expr::Test { left: Operand::Name { name, wrap: Wrap::None, .. }, cmp: Some((CmpOp::Eq, Operand::Str { value, .. })) }
                if name == "sip.method" =>
            {
                let m = Method::parse(value.as_bytes());
                methods = Some(match methods {
                    Some(prev) => prev.into_iter().filter(|p| *p == m).collect(),
                    None => vec![m],
                });
            }
            Expr::Or(alts) => {
                let mut ms = vec![];
                let all = alts.iter().all(|a| match a {
                    Expr::Test { left: Operand::Name { name, wrap: Wrap::None, .. }, cmp: Some((CmpOp::Eq, Operand::Str { value, .. })) }
                        if name == "sip.method" =>
                    {
                        ms.push(Method::parse(value.as_bytes()));
                        true
                    }
                    _ => false,
                });
                if all && methods.is_none() {
                    methods = Some(ms);
                }
            }
            Expr::Test { left: Operand::Name { name, .. }, .. } if name == "sip.status" || name == "sip.is_response" => responses = true,
            Expr::Test { left: Operand::Name { name, .. }, cmp: None } if name == "sip.is_request" => requests = true,
            _ => {}
        }
    }
    (methods, responses, requests)
}

/// True for atoms the evaluator answers before rules run: string tests (literal automata,
/// regex sets), ordered comparisons of fields (numeric index) and address tests (address
/// index), comparisons of objects (object index: read before rules run and again whenever a
/// rule updates the object).
fn pre_answered(a: &Atom) -> bool {
    match a {
        Atom::Pre | Atom::Ip { quant: Quant::Any, .. } => true,
        Atom::Num { op, quant: Quant::Any, .. } | Atom::ObjNum { op, .. } => matches!(op, CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le | CmpOp::Eq),
        _ => false,
    }
}

/// An atom answered before rules run that must hold for the whole condition to hold.
///
/// A method test (`sip.method == "INVITE"`) is the trigger only when there is no other:
/// the method bucket already selects by method, so as a trigger it would make the rule a
/// candidate for every message of the method, whatever else the rule asks for.
fn trigger_of(n: &Node, atoms: &[Atom], method_atoms: &BTreeSet<u32>) -> Option<u32> {
    let mut method = None;
    let one = |a: u32| pre_answered(&atoms[a as usize]).then_some(a);
    let conj: &[Node] = match n {
        Node::And(v) => v,
        other => std::slice::from_ref(other),
    };
    for x in conj {
        let found = match x {
            Node::Atom(a) => one(*a),
            Node::And(_) => trigger_of(x, atoms, method_atoms),
            _ => None,
        };
        match found {
            Some(a) if method_atoms.contains(&a) => {
                method.get_or_insert(a);
            }
            Some(a) => return Some(a),
            None => {}
        }
    }
    method
}

fn fingerprint(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
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

/// Compiles rule sources, reading list files through `read_list` (the path as written to its
/// text, or the error message). `base` names the whole set in errors that belong to no file.
pub fn compile_with(
    sources: &[Source],
    base: &Path,
    read_list: &dyn Fn(&str) -> Result<String, String>,
    opts: &CompileOptions,
) -> Result<RuleSet, CompileErrors> {
    let mut all_errors = Vec::new();
    let mut b = Builder {
        fields: vec![],
        field_names: vec![],
        field_slots: HashMap::new(),
        atoms: vec![],
        literals: HashMap::new(),
        regexes: HashMap::new(),
        pre_dedup: HashMap::new(),
        ip_tests: vec![],
        lists: vec![],
        list_ids: HashMap::new(),
        objects: vec![],
        object_ids: HashMap::new(),
        events: vec![],
        event_ids: HashMap::new(),
    };
    let geoip = match &opts.geoip_db {
        Some(p) => match maxminddb::Reader::open_readfile(p) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                all_errors.push(CompileError { file: p.clone(), line: 1, col: 1, id: None, key: Some("geoip_db".into()), message: format!("cannot open MaxMind DB: {e}") });
                None
            }
        },
        None => None,
    };
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
                all_errors.push(CompileError { file: src.path.clone(), line, col, id: None, key: None, message });
                parsed.push(FileDef::default());
            }
        }
    }

    // Line numbers of ids, by binary search (a scan from the start of the file per id would
    // make large generated files quadratic to compile).
    let newlines: Vec<Vec<usize>> = sources.iter().map(|s| memchr::memchr_iter(b'\n', s.text.as_bytes()).collect()).collect();

    // Pass 1: ids of lists, objects and events across all files, so order of files does not
    // matter for references (the schedule decides evaluation order).
    let mut seen_ids: HashMap<String, (PathBuf, usize)> = HashMap::new();
    let mut pending: Vec<PendingRule> = Vec::new();
    for (si, (src, f)) in sources.iter().zip(&parsed).enumerate() {
        let mut cx = Ctx { errors: vec![], src };
        for l in &f.list {
            let l = l.get_ref();
            if !claim_id(&mut seen_ids, &mut cx, &l.id, line_at(&newlines[si], l.id.span().start), "list") {
                continue;
            }
            let Some(kind) = ListKind::parse(l.kind.get_ref()) else {
                cx.err(l.kind.span(), Some(l.id.get_ref()), Some("kind"), format!("unknown list kind '{}' (kinds: {})", l.kind.get_ref(), ListKind::NAMES));
                continue;
            };
            let mut entries = l.entries.clone();
            if let Some(file) = &l.file {
                match read_list(file.get_ref()) {
                    Ok(t) => entries.extend(lists::read_entries(&t)),
                    Err(e) => {
                        cx.err(file.span(), Some(l.id.get_ref()), Some("file"), e);
                        continue;
                    }
                }
            }
            let from_rules = entries.len();
            if let Some((k, extra)) = opts.extra_entries.get(l.id.get_ref()) {
                if *k == kind {
                    entries.extend(extra.iter().cloned());
                }
            }
            if kind == ListKind::Country && opts.geoip_db.is_none() {
                cx.err(l.kind.span(), Some(l.id.get_ref()), Some("kind"), "country lists need a MaxMind DB: set geoip_db in the configuration");
            }
            let intl = match &l.international_prefixes {
                Some(p) if !matches!(kind, ListKind::Number | ListKind::NumberPrefix) => {
                    cx.err(p.span(), Some(l.id.get_ref()), Some("international_prefixes"), "only number and number_prefix lists read international prefixes");
                    continue;
                }
                Some(p) if p.get_ref().iter().any(|x| x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit())) => {
                    cx.err(p.span(), Some(l.id.get_ref()), Some("international_prefixes"), "an international prefix is one or more digits (`+` is always one)");
                    continue;
                }
                Some(p) => p.get_ref().clone(),
                None => lists::DEFAULT_INTERNATIONAL_PREFIXES.iter().map(|s| s.to_string()).collect(),
            };
            match List::with_prefixes(l.id.get_ref(), kind, entries, geoip.clone(), &intl) {
                Ok(list) => {
                    let _ = &l.description;
                    b.list_ids.insert(l.id.get_ref().clone(), b.lists.len() as u32);
                    b.lists.push(list);
                }
                Err(e) if e.index >= from_rules => cx.err(l.id.span(), Some(l.id.get_ref()), Some("entries"), format!("entry added through the API: {}", e.message)),
                Err(e) => cx.err(l.id.span(), Some(l.id.get_ref()), Some("entries"), format!("entry {}: {}", e.index + 1, e.message)),
            }
        }
        for d in &f.definition {
            let d = d.get_ref();
            let ev = d.event.get_ref().clone();
            if !b.event_ids.contains_key(&ev) {
                b.event_ids.insert(ev.clone(), b.events.len() as u32);
                b.events.push(ev);
            }
        }
        all_errors.append(&mut cx.errors);
        let _ = si;
    }

    // Objects (parents before children, whatever the order written).
    let mut obj_defs: Vec<(usize, &ObjectDef)> = parsed.iter().enumerate().flat_map(|(i, f)| f.object.iter().map(move |o| (i, o.get_ref()))).collect();
    obj_defs.sort_by_key(|(_, o)| o.id.get_ref().matches('.').count());
    let mut host_counter = 0usize;
    let mut host_distinct = 0usize;
    for (si, o) in obj_defs {
        let src = &sources[si];
        let mut cx = Ctx { errors: vec![], src };
        let id = o.id.get_ref();
        if id.starts_with("sip.") || id.starts_with("ip.") || id.starts_with("l4.") || id.starts_with("list.") || id.starts_with("event.") || id.starts_with("dialog.") || id.starts_with("transaction.") || Field::lookup(id).is_some() {
            cx.err(o.id.span(), Some(id), Some("id"), "object ids must not look like field names (sip., ip., l4., list., event., dialog., transaction.)");
            all_errors.append(&mut cx.errors);
            continue;
        }
        if !claim_id(&mut seen_ids, &mut cx, &o.id, line_at(&newlines[si], o.id.span().start), "object") {
            all_errors.append(&mut cx.errors);
            continue;
        }
        let parent = match id.rsplit_once('.') {
            Some((p, _)) => match b.object_ids.get(p) {
                Some(&pi) => Some(pi),
                None => {
                    cx.err(o.id.span(), Some(id), Some("id"), format!("child object of '{p}', which is not declared"));
                    all_errors.append(&mut cx.errors);
                    continue;
                }
            },
            None => None,
        };
        let mut scope = match o.scope.get_ref().as_str() {
            "transaction" => Scope::Transaction,
            "dialog" => Scope::Dialog,
            "source" => {
                let addr = match o.address.as_ref().map(|a| a.get_ref().as_str()) {
                    None | Some("src") => AddrSel::Src,
                    Some("dst") => AddrSel::Dst,
                    Some("client") => AddrSel::Client,
                    Some("server") => AddrSel::Server,
                    Some(other) => {
                        cx.err(o.address.as_ref().expect("some").span(), Some(id), Some("address"), format!("unknown address '{other}': src, dst, client (the requester: ip.src of requests, ip.dst of responses) or server"));
                        AddrSel::Src
                    }
                };
                Scope::Source { v4: 32, v6: 64, addr }
            }
            "key" => match &o.key {
                Some(k) => match Field::lookup(k.get_ref()) {
                    Some((f, _)) => Scope::Key { slot: b.slot(f, k.get_ref()) },
                    None => {
                        let hint = fields::suggest(k.get_ref(), std::iter::empty()).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
                        cx.err(k.span(), Some(id), Some("key"), format!("unknown field '{}'{hint}", k.get_ref()));
                        Scope::Global
                    }
                },
                None => {
                    cx.err(o.scope.span(), Some(id), Some("key"), "scope = \"key\" needs key = \"FIELD\": one counter per value of that field, e.g. key = \"sip.to.user\"");
                    Scope::Global
                }
            },
            "global" => Scope::Global,
            other => {
                cx.err(o.scope.span(), Some(id), Some("scope"), format!("unknown scope '{other}' (transaction, dialog, source, key, global)"));
                Scope::Dialog
            }
        };
        if let (Some(a), false) = (&o.address, matches!(scope, Scope::Source { .. })) {
            cx.err(a.span(), Some(id), Some("address"), "address goes with scope = \"source\"");
        }
        if let (Some(k), false) = (&o.key, matches!(scope, Scope::Key { .. })) {
            cx.err(k.span(), Some(id), Some("key"), "key goes with scope = \"key\"");
        }
        if let Scope::Source { v4, v6, .. } = &mut scope {
            if let Some(p) = &o.source_prefix_v4 {
                match u8::try_from(*p.get_ref()).ok().filter(|&x| (1..=32).contains(&x)) {
                    Some(x) => *v4 = x,
                    None => cx.err(p.span(), Some(id), Some("source_prefix_v4"), "must be 1..=32"),
                }
            }
            if let Some(p) = &o.source_prefix_v6 {
                match u8::try_from(*p.get_ref()).ok().filter(|&x| (1..=128).contains(&x)) {
                    Some(x) => *v6 = x,
                    None => cx.err(p.span(), Some(id), Some("source_prefix_v6"), "must be 1..=128"),
                }
            }
        }
        if let Some(pi) = parent {
            let ps = b.objects[pi as usize].scope;
            if ps.is_shared() {
                cx.err(o.id.span(), Some(id), Some("id"), "source and global objects have no children: the shared host table keeps one value per address");
            }
            if ps != scope {
                cx.err(o.scope.span(), Some(id), Some("scope"), format!("a child object lives in its parent's scope ({})", ps.name()));
                scope = ps;
            }
            if !b.objects[pi as usize].kind.is_container() && b.objects[pi as usize].kind.name() != "distinct" {
                cx.err(o.id.span(), Some(id), Some("id"), "only sets, lists, bags and distinct objects have children (one per value)");
            }
        }
        let dur = |cx: &mut Ctx, s: &Option<Spanned<String>>, key: &str| -> Option<u64> {
            let s = s.as_ref()?;
            let d = parse_duration_ns(s.get_ref());
            if d.is_none() {
                cx.err(s.span(), Some(id), Some(key), format!("'{}' is not a duration (90s, 5m, 1h, 500ms)", s.get_ref()));
            }
            d
        };
        let kind = match o.kind.get_ref().as_str() {
            "set" => ObjKind::Set,
            "list" => ObjKind::List,
            "bag" => ObjKind::Bag,
            "counter" => {
                let decrement = o.decrement.as_ref().map(|d| *d.get_ref()).unwrap_or(1);
                if !(0..=u32::MAX as i64).contains(&decrement) {
                    cx.err(o.decrement.as_ref().map(|d| d.span()).unwrap_or(o.kind.span()), Some(id), Some("decrement"), "must be 0..=4294967295");
                }
                let period_ns = dur(&mut cx, &o.period, "period").unwrap_or(60_000_000_000);
                if o.period.is_none() {
                    cx.err(o.kind.span(), Some(id), Some("period"), "a counter needs `period` (SecSip counter[decrement; period]), e.g. period = \"60s\"");
                }
                let cap = match &o.cap {
                    Some(c) if (1..=16_000_000).contains(c.get_ref()) => *c.get_ref() as u32,
                    Some(c) => {
                        cx.err(c.span(), Some(id), Some("cap"), "must be 1..=16000000");
                        16_000_000
                    }
                    None => 16_000_000,
                };
                ObjKind::Counter { decrement: decrement.clamp(0, u32::MAX as i64) as u32, period_ns, cap }
            }
            "distinct" => ObjKind::Distinct { window_ns: dur(&mut cx, &o.window, "window").unwrap_or(60_000_000_000) },
            other => {
                cx.err(o.kind.span(), Some(id), Some("kind"), format!("unknown kind '{other}' (set, list, bag, counter, distinct)"));
                ObjKind::Set
            }
        };
        if scope.is_shared() && kind.is_container() {
            cx.err(o.kind.span(), Some(id), Some("kind"), format!("{} objects are shared by all engines and must be a counter or distinct; sets, lists and bags live in a transaction or dialog", scope.name()));
        }
        if let (Some(c), false) = (&o.cap, matches!(kind, ObjKind::Counter { .. })) {
            cx.err(c.span(), Some(id), Some("cap"), "cap goes with kind = \"counter\"");
        }
        let value = match (&o.value, kind) {
            (Some(v), ObjKind::Counter { .. }) => {
                cx.err(v.span(), Some(id), Some("value"), "a counter counts rule firings and holds no value");
                None
            }
            (Some(v), _) => match Field::lookup(v.get_ref()) {
                Some((f, _)) => Some(b.slot(f, v.get_ref())),
                None => {
                    let hint = fields::suggest(v.get_ref(), std::iter::empty()).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
                    cx.err(v.span(), Some(id), Some("value"), format!("unknown field '{}'{hint}", v.get_ref()));
                    None
                }
            },
            (None, ObjKind::Counter { .. }) => None,
            (None, _) => {
                cx.err(o.id.span(), Some(id), Some("value"), "set, list, bag and distinct objects need `value`: the field they hold");
                None
            }
        };
        let max_entries = o.max_entries.as_ref().map(|m| *m.get_ref()).unwrap_or(32);
        if !(1..=4096).contains(&max_entries) {
            cx.err(o.max_entries.as_ref().map(|m| m.span()).unwrap_or(o.id.span()), Some(id), Some("max_entries"), "must be 1..=4096");
        }
        let normalize = o.normalize.as_ref().map(|m| *m.get_ref()).unwrap_or(256);
        if !(1..=65535).contains(&normalize) {
            cx.err(o.normalize.as_ref().map(|m| m.span()).unwrap_or(o.id.span()), Some(id), Some("normalize"), "must be 1..=65535");
        }
        let host_slot = match (scope.is_shared(), kind) {
            (true, ObjKind::Counter { .. }) => {
                host_counter += 1;
                host_counter - 1
            }
            (true, ObjKind::Distinct { .. }) => {
                host_distinct += 1;
                host_distinct - 1
            }
            _ => 0,
        };
        // By names, never by compiler-assigned numbers (field slots follow declaration order):
        // live state is found again by this after a reload that reorders the files.
        let scope_def = match scope {
            Scope::Key { .. } => format!("key={}", o.key.as_ref().map(|k| k.get_ref().as_str()).unwrap_or("")),
            other => format!("{other:?}"),
        };
        let fp = fingerprint(&[id, o.scope.get_ref(), o.kind.get_ref(), o.value.as_ref().map(|v| v.get_ref().as_str()).unwrap_or(""), &format!("{kind:?}{max_entries}{normalize}{scope_def}")]);
        let _ = &o.description;
        b.object_ids.insert(id.clone(), b.objects.len() as u32);
        b.objects.push(Object {
            id: id.clone(),
            scope,
            kind,
            value,
            parent,
            max_entries: max_entries.clamp(1, 4096) as usize,
            normalize: normalize.clamp(1, 65535) as usize,
            fingerprint: fp,
            host_slot,
        });
        all_errors.append(&mut cx.errors);
    }
    if host_counter > opts.host_counters || host_distinct > opts.host_distincts {
        all_errors.push(CompileError {
            file: base.to_owned(),
            line: 1,
            col: 1,
            id: None,
            key: None,
            message: format!(
                "source/global objects need {host_counter} counter and {host_distinct} distinct slots; the host table has {} and {} (raise [hosts] counters/distincts in the configuration)",
                opts.host_counters, opts.host_distincts
            ),
        });
    }

    // Pass 2: definitions and rules.
    for (si, (src, f)) in sources.iter().zip(&parsed).enumerate() {
        let mut cx = Ctx { errors: vec![], src };
        let mut items: Vec<(usize, PendingRule)> = Vec::new();
        for d in &f.definition {
            let d = d.get_ref();
            let id = d.id.get_ref();
            let line = line_at(&newlines[si], d.id.span().start);
            if !claim_id(&mut seen_ids, &mut cx, &d.id, line, "definition") {
                continue;
            }
            let rule = Rule {
                is_definition: true,
                event: b.event_ids.get(d.event.get_ref()).copied(),
                description: d.description.clone(),
                ..Rule::new(id, d.when.get_ref(), src.path.clone(), line)
            };
            items.push((d.id.span().start, PendingRule::new(rule, d.when.span(), si)));
        }
        for r in &f.rule {
            let r = r.get_ref();
            let id = r.id.get_ref();
            let line = line_at(&newlines[si], r.id.span().start);
            if !claim_id(&mut seen_ids, &mut cx, &r.id, line, "rule") {
                continue;
            }
            let status = r.status.as_ref().map(|s| *s.get_ref());
            let action = match r.action.as_ref().map(|a| a.get_ref().as_str()).unwrap_or("none") {
                "none" => Action::None,
                "accept" | "allow" => Action::Accept,
                "drop" => Action::Drop,
                "reject" => {
                    let st = status.unwrap_or(403);
                    if !(300..=699).contains(&st) {
                        cx.err(r.status.as_ref().map(|s| s.span()).unwrap_or(r.id.span()), Some(id), Some("status"), "a reject answers with a final status 300..=699");
                    }
                    Action::Reject { status: st.clamp(300, 699) as u16 }
                }
                "ban" => {
                    let d = match &r.ban {
                        Some(b) => parse_duration_ns(b.get_ref()).unwrap_or_else(|| {
                            cx.err(b.span(), Some(id), Some("ban"), format!("'{}' is not a duration (90s, 10m, 1h)", b.get_ref()));
                            0
                        }),
                        None => {
                            cx.err(r.action.as_ref().map(|a| a.span()).unwrap_or(r.id.span()), Some(id), Some("ban"), "action = \"ban\" needs ban = \"DURATION\", e.g. ban = \"10m\"");
                            0
                        }
                    };
                    Action::Ban { duration_ns: d }
                }
                "log" => Action::Log,
                other => {
                    let a = r.action.as_ref().expect("checked above");
                    let hint = fields::suggest(other, ["none", "accept", "drop", "reject", "ban", "log"].into_iter()).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
                    cx.err(a.span(), Some(id), Some("action"), format!("unknown action '{other}'{hint}: none, accept, drop, reject, ban, log"));
                    Action::None
                }
            };
            if status.is_some() && !matches!(action, Action::Reject { .. }) {
                cx.err(r.status.as_ref().expect("some").span(), Some(id), Some("status"), "status goes with action = \"reject\"");
            }
            if let (Some(b), false) = (&r.ban, matches!(action, Action::Ban { .. })) {
                cx.err(b.span(), Some(id), Some("ban"), "ban goes with action = \"ban\"");
            }
            let monitor = match r.mode.as_ref().map(|m| m.get_ref().as_str()) {
                None | Some("enforce") => false,
                Some("monitor") => true,
                Some(other) => {
                    cx.err(r.mode.as_ref().expect("some").span(), Some(id), Some("mode"), format!("unknown mode '{other}': enforce or monitor"));
                    false
                }
            };
            let severity = r.severity.as_ref().map(|s| *s.get_ref()).unwrap_or(2);
            if !(1..=3).contains(&severity) {
                cx.err(r.severity.as_ref().expect("checked").span(), Some(id), Some("severity"), "1 (high) to 3 (low)");
            }
            let reason = r.reason.clone().unwrap_or_else(|| match action {
                Action::Reject { status } => default_reason(status).to_string(),
                _ => String::new(),
            });
            let log = r.log.unwrap_or(matches!(action, Action::Drop | Action::Reject { .. } | Action::Ban { .. } | Action::Log) || monitor);
            let rule = Rule {
                action,
                reason,
                monitor,
                log,
                tag: r.tag.clone(),
                severity: severity.clamp(1, 3) as u8,
                description: r.description.clone(),
                ..Rule::new(id, r.when.get_ref(), src.path.clone(), line)
            };
            let hold_spans = r.hold.iter().map(|h| (h.get_ref().clone(), h.span())).collect();
            let count_spans = r.count.iter().map(|h| (h.get_ref().clone(), h.span())).collect();
            items.push((r.id.span().start, PendingRule { hold_spans, count_spans, definition_ref: r.definition.clone(), ..PendingRule::new(rule, r.when.span(), si) }));
        }
        // File order is the order the tables appear in, whatever their kind.
        items.sort_by_key(|(pos, _)| *pos);
        for (_, mut p) in items {
            let text = p.rule.when_text.clone();
            let base_off = string_content_start(&src.text, &p.when_span);
            match expr::parse(&text) {
                Err(e) => {
                    let s = base_off + e.at;
                    cx.err(s..s, Some(&p.rule.id), Some("when"), e.message);
                }
                Ok(e) => {
                    let mut reads_objects = BTreeSet::new();
                    let mut reads_events = BTreeSet::new();
                    let mut ec = ExprCx { b: &mut b, cx: &mut cx, base: base_off, id: &p.rule.id.clone(), reads_objects: &mut reads_objects, reads_events: &mut reads_events, ok: true };
                    let node = ec.node(&e);
                    p.rule.when = node;
                    let (methods, resp, req) = method_constraint(&e);
                    p.rule.methods = methods;
                    p.rule.responses_only = resp;
                    p.rule.requests_only = req;
                    p.reads_objects = reads_objects;
                    p.reads_events = reads_events;
                    p.expr = e;
                }
            }
            for (name, span) in p.hold_spans.clone() {
                match b.object_ids.get(&name) {
                    Some(&o) if b.objects[o as usize].kind.is_container() || matches!(b.objects[o as usize].kind, ObjKind::Distinct { .. }) => p.rule.hold.push(o),
                    Some(&o) => cx.err(span, Some(&p.rule.id), Some("hold"), format!("'{name}' is a {}: use count = [\"{name}\"]", b.objects[o as usize].kind.name())),
                    None => {
                        let hint = fields::suggest(&name, b.object_ids.keys().map(String::as_str)).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
                        cx.err(span, Some(&p.rule.id), Some("hold"), format!("unknown object '{name}'{hint}"));
                    }
                }
            }
            for (name, span) in p.count_spans.clone() {
                match b.object_ids.get(&name) {
                    Some(&o) if matches!(b.objects[o as usize].kind, ObjKind::Counter { .. }) => p.rule.count.push(o),
                    Some(&o) => cx.err(span, Some(&p.rule.id), Some("count"), format!("'{name}' is a {}: use hold = [\"{name}\"]", b.objects[o as usize].kind.name())),
                    None => {
                        let hint = fields::suggest(&name, b.object_ids.keys().map(String::as_str)).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
                        cx.err(span, Some(&p.rule.id), Some("count"), format!("unknown object '{name}'{hint}"));
                    }
                }
            }
            if let Some(d) = &p.definition_ref {
                let ok = sources.iter().zip(&parsed).any(|(_, f)| f.definition.iter().any(|x| x.get_ref().id.get_ref() == d.get_ref()));
                if !ok {
                    cx.err(d.span(), Some(&p.rule.id), Some("definition"), format!("no definition with id '{}'", d.get_ref()));
                }
            }
            pending.push(p);
        }
        all_errors.append(&mut cx.errors);
    }
    if !all_errors.is_empty() {
        return Err(CompileErrors(all_errors));
    }

    // Schedule: writers of an object / raisers of an event before its readers; otherwise file
    // order. Kahn's algorithm picking the earliest ready rule keeps file order stable.
    let n = pending.len();
    let mut writers_obj: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut writers_ev: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, p) in pending.iter().enumerate() {
        for &o in p.rule.hold.iter().chain(&p.rule.count) {
            writers_obj.entry(o).or_default().push(i);
        }
        if let Some(e) = p.rule.event {
            writers_ev.entry(e).or_default().push(i);
        }
    }
    let mut succ: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    let mut indeg = vec![0usize; n];
    for (i, p) in pending.iter().enumerate() {
        let ws = p.reads_objects.iter().flat_map(|o| writers_obj.get(o).into_iter().flatten()).chain(p.reads_events.iter().flat_map(|e| writers_ev.get(e).into_iter().flatten()));
        for &w in ws {
            if w != i && succ[w].insert(i) {
                indeg[i] += 1;
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(&i) = ready.iter().next() {
        ready.remove(&i);
        order.push(i);
        for &s in &succ[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.insert(s);
            }
        }
    }
    if order.len() < n {
        let stuck: Vec<&PendingRule> = (0..n).filter(|i| indeg[*i] > 0).map(|i| &pending[i]).collect();
        let names: Vec<String> = stuck.iter().map(|p| format!("'{}' ({}:{})", p.rule.id, p.rule.file.display(), p.rule.line)).collect();
        let first = stuck[0];
        let src = &sources[first.src];
        let (line, col) = line_col(&src.text, first.when_span.start);
        return Err(CompileErrors(vec![CompileError {
            file: src.path.clone(),
            line,
            col,
            id: Some(first.rule.id.clone()),
            key: Some("when".into()),
            message: format!("cycle: each of these rules reads an object or event another of them writes, so none can run first: {}", names.join(", ")),
        }]));
    }

    let mut rules: Vec<Rule> = order.into_iter().map(|i| pending[i].rule.clone()).collect();
    let method_atoms: BTreeSet<u32> = match b.field_slots.get(&Field::Method) {
        Some(&slot) => b.literals.get(&(slot, false)).into_iter().flatten().map(|(_, a, _)| *a).collect(),
        None => BTreeSet::new(),
    };
    for r in &mut rules {
        r.trigger = trigger_of(&r.when, &b.atoms, &method_atoms);
    }
    finish(b, rules, sources)
}

fn default_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Rejected",
    }
}

fn set_bit(v: &mut [u64], i: usize) {
    v[i / 64] |= 1 << (i % 64);
}

/// Builds matchers and the method index.
fn finish(b: Builder, rules: Vec<Rule>, sources: &[Source]) -> Result<RuleSet, CompileErrors> {
    let words = rules.len().div_ceil(64);
    let mut always = vec![vec![0u64; words]; BUCKETS];
    let mut member = vec![vec![0u64; words]; BUCKETS];
    let mut triggers = vec![Vec::new(); b.atoms.len()];
    for (i, r) in rules.iter().enumerate() {
        for (k, (a, m)) in always.iter_mut().zip(member.iter_mut()).enumerate() {
            let applies = if k == RESPONSE_BUCKET {
                !r.requests_only && r.methods.is_none()
            } else {
                !r.responses_only && r.methods.as_ref().is_none_or(|ms| ms.iter().any(|&mm| mm as usize == k))
            };
            if applies {
                set_bit(m, i);
                if r.trigger.is_none() {
                    set_bit(a, i);
                }
            }
        }
        if let Some(t) = r.trigger {
            triggers[t as usize].push(i as u32);
        }
    }
    let err = |m: String| CompileErrors(vec![CompileError { file: sources.first().map(|s| s.path.clone()).unwrap_or_default(), line: 1, col: 1, id: None, key: None, message: m }]);
    let mut literal_matchers = Vec::new();
    let mut lit_keys: Vec<_> = b.literals.into_iter().collect();
    lit_keys.sort_by_key(|((s, l), _)| (*s, *l));
    for ((slot, lower), pats) in lit_keys {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(pats.iter().map(|(p, _, _)| p.as_slice()))
            .map_err(|e| err(format!("building the literal automaton: {e}")))?;
        literal_matchers.push(LiteralMatcher { slot, lower, ac, patterns: pats.iter().map(|(_, a, k)| (*a, *k)).collect() });
    }
    let mut regex_matchers = Vec::new();
    let mut rx_keys: Vec<_> = b.regexes.into_iter().collect();
    rx_keys.sort_by_key(|((s, l), _)| (*s, *l));
    for ((slot, lower), pats) in rx_keys {
        let set = RegexSetBuilder::new(pats.iter().map(|(p, _)| p.as_str()))
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| err(format!("building the regex set: {e}")))?;
        regex_matchers.push(RegexMatcher { slot, lower, set, atoms: pats.iter().map(|(_, a)| *a).collect() });
    }
    let num_index = num_index(&b.atoms);
    let ip_index = ip_index(&b.ip_tests);
    let obj_index = obj_index(&b.atoms, &rules, &member);
    let host_counters = b.objects.iter().filter(|o| o.scope.is_shared() && matches!(o.kind, ObjKind::Counter { .. })).count();
    let host_distincts = b.objects.iter().filter(|o| o.scope.is_shared() && matches!(o.kind, ObjKind::Distinct { .. })).count();
    let ban_ids = (0..rules.len() as u32).collect();
    Ok(RuleSet {
        rules,
        lists: b.lists,
        objects: b.objects,
        events: b.events,
        fields: b.fields,
        field_names: b.field_names,
        atoms: b.atoms,
        literal_matchers,
        regex_matchers,
        num_index,
        ip_index,
        obj_index,
        always,
        member,
        triggers,
        files: sources.iter().map(|s| s.path.clone()).collect(),
        host_counters,
        host_distincts,
        ban_ids,
    })
}

/// The numeric index: every ordered comparison of a field with a constant, by (field, wrap).
fn num_index(atoms: &[Atom]) -> Vec<NumIndex> {
    let mut out: Vec<NumIndex> = Vec::new();
    for (a, atom) in atoms.iter().enumerate() {
        let Atom::Num { slot, wrap, op, value, quant: Quant::Any } = *atom else { continue };
        let i = match out.iter().position(|g| g.slot == slot && g.wrap == wrap) {
            Some(i) => i,
            None => {
                out.push(NumIndex { slot, wrap, tests: Thresholds::default() });
                out.len() - 1
            }
        };
        out[i].tests.push(op, value, a as u32);
    }
    out.retain(|g| !(g.tests.gt.is_empty() && g.tests.lt.is_empty() && g.tests.eq.is_empty()));
    for g in &mut out {
        g.tests.sort();
    }
    out
}

/// The object index: every comparison of an object that triggers a rule, by object.
fn obj_index(atoms: &[Atom], rules: &[Rule], member: &[Vec<u64>]) -> Vec<ObjIndex> {
    let mut out: Vec<ObjIndex> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let Some(t) = r.trigger else { continue };
        let Atom::ObjNum { object, op, value } = atoms[t as usize] else { continue };
        let g = match out.iter().position(|g| g.object == object) {
            Some(g) => g,
            None => {
                out.push(ObjIndex { object, buckets: 0, tests: Thresholds::default() });
                out.len() - 1
            }
        };
        let g = &mut out[g];
        let dup = g.tests.gt.iter().chain(&g.tests.lt).chain(&g.tests.eq).any(|&(_, a)| a == t);
        if !dup {
            g.tests.push(op, value, t);
        }
        for (k, m) in member.iter().enumerate() {
            if m[i / 64] & (1 << (i % 64)) != 0 {
                g.buckets |= 1 << k;
            }
        }
    }
    for g in &mut out {
        g.tests.sort();
    }
    out
}

/// The address index: every address test of a field, by field, family and prefix length.
fn ip_index(tests: &[(Slot, std::net::IpAddr, u8, u32)]) -> Vec<IpIndex> {
    use std::net::IpAddr;
    let mut out: Vec<IpIndex> = Vec::new();
    for &(slot, ip, len, atom) in tests {
        let i = match out.iter().position(|g| g.slot == slot) {
            Some(i) => i,
            None => {
                out.push(IpIndex { slot, ..IpIndex::default() });
                out.len() - 1
            }
        };
        let g = &mut out[i];
        match ip {
            IpAddr::V4(a) => {
                let len = len.min(32);
                let net = u32::from(a) & mask4(len);
                match g.v4.iter_mut().find(|(l, _)| *l == len) {
                    Some((_, v)) => v.push((net, atom)),
                    None => g.v4.push((len, vec![(net, atom)])),
                }
            }
            IpAddr::V6(a) => {
                let len = len.min(128);
                let net = u128::from(a) & mask6(len);
                match g.v6.iter_mut().find(|(l, _)| *l == len) {
                    Some((_, v)) => v.push((net, atom)),
                    None => g.v6.push((len, vec![(net, atom)])),
                }
            }
        }
    }
    for g in &mut out {
        for (_, v) in g.v4.iter_mut() {
            v.sort_unstable();
        }
        for (_, v) in g.v6.iter_mut() {
            v.sort_unstable();
        }
    }
    out
}

/// The IPv4 netmask of a prefix length (0..=32).
pub(crate) fn mask4(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len.min(32) as u32) }
}

/// The IPv6 netmask of a prefix length (0..=128).
pub(crate) fn mask6(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128 - len.min(128) as u32) }
}

/// The 1-based line of byte `offset`, given the offsets of the text's newlines (as
/// `config::line_col`).
fn line_at(newlines: &[usize], offset: usize) -> usize {
    newlines.partition_point(|&p| p < offset) + 1
}
