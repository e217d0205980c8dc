//! Resolve: each definition's and rule's `when` parsed and compiled to a condition
//! tree over atoms, its names resolved (fields, objects, lists, events) and type-checked;
//! its `hold`, `count` and `definition` resolved to objects and definitions.
//!
//! A pass of its own because it needs every list, object and event of the whole set
//! declared first (the earlier passes), and because what it records (the objects and
//! events each rule reads) is what the schedule orders by.

use super::builder::{Builder, Ctx, PendingRule};
use super::parse::{string_content_start, FileDef};
use crate::rules::expr::{self, CmpOp, Expr, Operand, Quant, Wrap};
use crate::rules::fields::{self, Field, Kind};
use crate::rules::lists::{self, ListKind};
use crate::rules::model::*;
use crate::sip::Method;
use std::collections::BTreeSet;

/// Compiles `p`'s `when` and resolves its `hold`, `count` and `definition`; errors go to `cx`.
pub(super) fn resolve(b: &mut Builder, cx: &mut Ctx<'_>, parsed: &[FileDef], p: &mut PendingRule) {
    when(b, cx, p);
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
        let ok = parsed.iter().any(|f| f.definition.iter().any(|x| x.get_ref().id.get_ref() == d.get_ref()));
        if !ok {
            cx.err(d.span(), Some(&p.rule.id), Some("definition"), format!("no definition with id '{}'", d.get_ref()));
        }
    }
}

/// Parses and compiles `p`'s `when` into its condition, methods and reads.
fn when(b: &mut Builder, cx: &mut Ctx<'_>, p: &mut PendingRule) {
    let text = p.rule.when_text.clone();
    let base_off = string_content_start(&cx.src.text, &p.when_span);
    match expr::parse(&text) {
        Err(e) => {
            let s = base_off + e.at;
            cx.err(s..s, Some(&p.rule.id), Some("when"), e.message);
        }
        Ok(e) => {
            let mut reads_objects = BTreeSet::new();
            let mut reads_events = BTreeSet::new();
            let mut ec = ExprCx { b: &mut *b, cx: &mut *cx, base: base_off, id: &p.rule.id.clone(), reads_objects: &mut reads_objects, reads_events: &mut reads_events };
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
}

/// A resolved operand name.
enum Named {
    Field(Field, Kind),
    Object(u32),
    List(u32),
    Event(u32),
}

/// The left side of a field test: the field, its kind and name, and how it is read.
struct Left<'n> {
    f: Field,
    k: Kind,
    name: &'n str,
    wrap: Wrap,
    quant: Quant,
    at: usize,
}

/// One `when` expression being compiled: atoms and slots go to the builder, errors to the
/// source's context, reads of objects and events to the pending rule.
struct ExprCx<'a, 'b> {
    b: &'a mut Builder,
    cx: &'a mut Ctx<'b>,
    base: usize,
    id: &'a str,
    reads_objects: &'a mut BTreeSet<u32>,
    reads_events: &'a mut BTreeSet<u32>,
}

impl ExprCx<'_, '_> {
    /// Reports `message` at offset `at` of the expression.
    fn fail(&mut self, at: usize, message: impl Into<String>) {
        let s = self.base + at;
        self.cx.err(s..s, Some(self.id), Some("when"), message);
    }

    /// What `name` (at offset `at`) names, recording reads of objects and events.
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

    /// The condition tree of `e`.
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

    /// One test: an event, an object, or a field alone or compared.
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
            (Named::Field(f, k), Some((op, right))) => self.field_test(Left { f, k, name, wrap: *wrap, quant: *quant, at: *at }, *op, right),
        }
    }

    /// An object alone (non-zero) or compared with a number.
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

    /// A field compared with an operand, by the field's kind and how it is read.
    fn field_test(&mut self, l: Left<'_>, op: CmpOp, right: &Operand) -> Node {
        // `a != b` is `!(a == b)` for every kind, so it reads "no value equals b" (and
        // `all(a) != b` "not every value equals b").
        if op == CmpOp::Ne {
            return Node::Not(Box::new(self.field_test(l, CmpOp::Eq, right)));
        }
        // Numbers: the field itself if numeric, or its length / count.
        let numeric = matches!(l.wrap, Wrap::Len | Wrap::Count) || l.k == Kind::Num;
        if op == CmpOp::In {
            return self.in_test(l, right);
        }
        if l.k == Kind::Ip && l.wrap == Wrap::None {
            return self.ip_test(l, op, right);
        }
        if numeric {
            return self.num_test(l, op, right);
        }
        if l.k == Kind::Bool {
            self.fail(l.at, format!("'{}' is true or false: use it alone or negated", l.name));
            return self.dud();
        }
        self.str_test(l, op, right)
    }

    /// `FIELD in list.NAME` or `FIELD in OBJECT`.
    fn in_test(&mut self, l: Left<'_>, right: &Operand) -> Node {
        let Left { f, k, name, quant, at, .. } = l;
        let Operand::Name { name: rname, at: rat, .. } = right else {
            self.fail(right.at(), "`in` takes a list (`list.NAME`) or an object on its right");
            return self.dud();
        };
        let slot = self.b.slot(f, name);
        match self.resolve(rname, *rat) {
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
        }
    }

    /// An address field against a quoted address or CIDR.
    fn ip_test(&mut self, l: Left<'_>, op: CmpOp, right: &Operand) -> Node {
        let Left { f, name, quant, at, .. } = l;
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
        match op {
            CmpOp::Eq => a,
            _ => {
                self.fail(at, format!("addresses take ==, != or in, not {}", op.as_str()));
                a
            }
        }
    }

    /// A numeric field, or a field's length or count, against a number.
    fn num_test(&mut self, l: Left<'_>, op: CmpOp, right: &Operand) -> Node {
        let Left { f, name, wrap, quant, at, .. } = l;
        let Operand::Num { value, .. } = right else {
            self.fail(right.at(), format!("'{name}' is numeric here: compare it with a number"));
            return self.dud();
        };
        if matches!(op, CmpOp::Matches | CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith) {
            self.fail(at, format!("{} is for strings; '{name}' is numeric here", op.as_str()));
        }
        let slot = self.b.slot(f, name);
        Node::Atom(self.b.atom(Atom::Num { slot, wrap, op, value: *value, quant }))
    }

    /// A string field against a quoted literal or regex.
    fn str_test(&mut self, l: Left<'_>, op: CmpOp, right: &Operand) -> Node {
        let Left { f, name, wrap, quant, at, .. } = l;
        let lower = wrap == Wrap::Lower;
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
