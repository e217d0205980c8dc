//! Evaluating a [`RuleSet`] on one message.
//!
//! Per message, in this order:
//! 1. every literal of every rule is searched for with one Aho-Corasick pass per field, and
//!    every regex with one `RegexSet` pass per field; every numeric comparison of a field with
//!    a constant is answered by binary search in the field's sorted constants, every address
//!    test by lookups per prefix length, and every comparison of an object that triggers a
//!    rule by reading the object once: this gives the set of tests that hold;
//! 2. candidate rules are the rules of the message's method bucket that have no trigger, plus
//!    those whose trigger test held in step 1 (a rule whose condition requires a literal
//!    that is not in the message, or a length the message does not reach, is never looked
//!    at; a method test is a trigger only for rules with no other);
//! 3. candidates run in schedule order; object updates apply as rules fire (and the objects
//!    a firing rule updated are read again, which may add later rules as candidates); the
//!    first terminal action decides.
//!
//! So the cost per message grows with the bytes of the fields read and with the rules that
//! can actually match, not with the number of rules loaded.

use super::expr::{CmpOp, Quant, Wrap};
use super::fields::{MsgCtx, Value, Values};
use super::compile::{mask4, mask6};
use super::model::*;
use super::objects::{self, ObjectStore, ScopeKeys};
use crate::hosttable::HostTable;
use crate::sip::Method;

/// What a terminal rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward, skip the remaining rules.
    Accept,
    /// Discard.
    Drop,
    /// Discard and answer.
    Reject {
        /// Status code.
        status: u16,
    },
    /// Discard and ban the source.
    Ban {
        /// Ban length.
        duration_ns: u64,
    },
}

/// A rule that fired on the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    /// Index in the rule set.
    pub rule: u32,
    /// It is in monitor mode: its action was not taken.
    pub monitor: bool,
}

/// Where the evaluator reads and writes state.
pub struct Env<'x> {
    /// This engine's containers.
    pub objects: &'x mut ObjectStore,
    /// The shared host table.
    pub hosts: &'x HostTable,
    /// Scope keys of the message.
    pub keys: ScopeKeys,
    /// Now (ns).
    pub now: u64,
}

/// The values of every field read so far for the message: per slot, a range of `values`
/// (`UNKNOWN` until first read).
#[derive(Default)]
struct FieldCache {
    ranges: Vec<(u32, u32)>,
    values: Values,
}

const UNKNOWN: (u32, u32) = (u32::MAX, u32::MAX);

impl FieldCache {
    fn clear(&mut self, slots: usize) {
        self.ranges.clear();
        self.ranges.resize(slots, UNKNOWN);
        self.values.clear();
    }

    /// The range of the slot's values, collecting them on first use.
    fn fill(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, slot: Slot) -> std::ops::Range<usize> {
        let s = slot as usize;
        if self.ranges[s] == UNKNOWN {
            let start = self.values.len();
            ctx.collect(&rs.fields[s], &mut self.values);
            self.ranges[s] = (start as u32, self.values.len() as u32);
        }
        let (a, b) = self.ranges[s];
        a as usize..b as usize
    }

    /// The first value (objects store and key on it: the top Via, the first Contact).
    fn first<'v>(&'v mut self, rs: &RuleSet, ctx: &'v MsgCtx<'_, '_>, slot: Slot) -> Value<'v> {
        let r = self.fill(rs, ctx, slot);
        if r.is_empty() {
            return Value::Absent;
        }
        self.values.get(r.start, ctx.msg.buf())
    }

    /// The numbers a numeric test of `slot` under `wrap` sees: the count; each value's length
    /// (an absent field has one length, 0); each numeric value.
    fn numbers<'v>(&'v mut self, rs: &RuleSet, ctx: &'v MsgCtx<'_, '_>, slot: Slot, wrap: Wrap) -> Numbers<'v> {
        let r = self.fill(rs, ctx, slot);
        let buf = ctx.msg.buf();
        match wrap {
            Wrap::Count => Numbers::One(Some(r.len() as i64)),
            Wrap::Len if r.is_empty() => Numbers::One(Some(0)),
            _ => Numbers::Each { values: &self.values, buf, r, len: wrap == Wrap::Len },
        }
    }
}

/// See [`FieldCache::numbers`].
enum Numbers<'v> {
    One(Option<i64>),
    Each { values: &'v Values, buf: &'v [u8], r: std::ops::Range<usize>, len: bool },
}

impl Iterator for Numbers<'_> {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        match self {
            Numbers::One(n) => n.take(),
            Numbers::Each { values, buf, r, len } => loop {
                let v = values.get(r.next()?, buf);
                let n = match (v, *len) {
                    (Value::Str(b), true) => Some(b.len() as i64),
                    (Value::Num(n), true) => Some(n.to_string().len() as i64),
                    (_, true) => Some(1),
                    (Value::Num(n), false) => Some(n),
                    (Value::Bool(b), false) => Some(b as i64),
                    _ => None,
                };
                if n.is_some() {
                    return n;
                }
            },
        }
    }
}

/// Tests that hold (pre-answered), candidate rules, events raised.
#[derive(Default)]
struct Marks {
    pre: Vec<u64>,
    cand: Vec<u64>,
    events: Vec<u64>,
}

impl Marks {
    fn mark(&mut self, rs: &RuleSet, atom: u32, member: &[u64]) {
        set(&mut self.pre, atom as usize);
        for &r in &rs.triggers[atom as usize] {
            if bit(member, r as usize) {
                set(&mut self.cand, r as usize);
            }
        }
    }
}

/// Scratch reused across messages: nothing here allocates per message once warm.
#[derive(Default)]
pub struct Evaluator {
    fields: FieldCache,
    marks: Marks,
    lower: Vec<u8>,
    /// Rules that fired on the last message, in order.
    pub fired: Vec<Fired>,
}

/// `v`, or its ASCII lower-case copy in `buf` for `lower(...)` matchers.
fn lowered<'h>(lower: bool, v: &'h [u8], buf: &'h mut Vec<u8>) -> &'h [u8] {
    if !lower {
        return v;
    }
    buf.clear();
    buf.extend(v.iter().map(u8::to_ascii_lowercase));
    buf
}

/// `pred` over the values `r` under `q`: some value, or every value and at least one.
fn quantified(q: Quant, r: std::ops::Range<usize>, mut pred: impl FnMut(usize) -> bool) -> bool {
    match q {
        Quant::Any => r.into_iter().any(pred),
        Quant::All => !r.is_empty() && r.into_iter().all(&mut pred),
    }
}

fn bit(v: &[u64], i: usize) -> bool {
    v.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set(v: &mut [u64], i: usize) {
    if let Some(w) = v.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

fn cmp(a: i64, op: CmpOp, b: i64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        _ => false,
    }
}

/// Bucket of a message: its method, or the responses bucket.
pub fn bucket_of(method: Option<Method>) -> usize {
    match method {
        Some(m) => (m as usize).min(RESPONSE_BUCKET - 1),
        None => RESPONSE_BUCKET,
    }
}

impl Evaluator {
    /// A fresh evaluator.
    pub fn new() -> Evaluator {
        Evaluator::default()
    }

    /// Hash of the key field's value, for `key`-scoped objects.
    fn key_value(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &Env<'_>, obj: &Object) -> Option<u64> {
        let Scope::Key { slot } = obj.scope else { return None };
        let v = self.fields.first(rs, ctx, slot);
        env.objects.value_hash(&v, obj.normalize)
    }

    fn parent_value(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &Env<'_>, obj: &Object) -> Option<u64> {
        let p = &rs.objects[obj.parent? as usize];
        let v = self.fields.first(rs, ctx, p.value?);
        env.objects.value_hash(&v, p.normalize)
    }

    /// A counter's value, a container's entry count or a distinct estimate.
    fn object_value(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>, object: u32) -> i64 {
        let obj = &rs.objects[object as usize];
        if obj.scope.is_shared() {
            let kv = self.key_value(rs, ctx, env, obj);
            objects::host_value(env.hosts, obj, &env.keys, kv, env.now) as i64
        } else {
            let pv = self.parent_value(rs, ctx, env, obj);
            match obj.kind {
                ObjKind::Counter { .. } => env.objects.counter(obj, &env.keys, pv, env.now) as i64,
                _ => env.objects.entries(obj, &env.keys, pv),
            }
        }
    }

    /// Reads an object of the object index and marks the comparisons that hold.
    fn mark_object(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>, g: &ObjIndex, member: &[u64]) {
        let v = self.object_value(rs, ctx, env, g.object);
        for atom in g.tests.holding(v) {
            self.marks.mark(rs, atom, member);
        }
    }

    fn atom(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>, a: u32) -> bool {
        let buf = ctx.msg.buf();
        match &rs.atoms[a as usize] {
            Atom::Pre => bit(&self.marks.pre, a as usize),
            Atom::Truthy { slot, wrap: Wrap::None | Wrap::Lower, quant } => {
                let r = self.fields.fill(rs, ctx, *slot);
                let vals = &self.fields.values;
                quantified(*quant, r, |i| vals.get(i, buf).truthy())
            }
            Atom::Truthy { slot, wrap, quant } => match quant {
                Quant::Any => self.fields.numbers(rs, ctx, *slot, *wrap).any(|n| n > 0),
                Quant::All => all_numbers(self.fields.numbers(rs, ctx, *slot, *wrap), |n| n > 0),
            },
            Atom::Num { slot, wrap, op, value, quant } => match quant {
                Quant::Any => self.fields.numbers(rs, ctx, *slot, *wrap).any(|n| cmp(n, *op, *value)),
                Quant::All => all_numbers(self.fields.numbers(rs, ctx, *slot, *wrap), |n| cmp(n, *op, *value)),
            },
            Atom::Ip { slot, nets, quant } => {
                let r = self.fields.fill(rs, ctx, *slot);
                let vals = &self.fields.values;
                quantified(*quant, r, |i| matches!(vals.get(i, buf), Value::Ip(ip) if nets.contains(ip)))
            }
            Atom::InList { slot, list, quant } => {
                let l = &rs.lists[*list as usize];
                let r = self.fields.fill(rs, ctx, *slot);
                let vals = &self.fields.values;
                quantified(*quant, r, |i| match vals.get(i, buf) {
                    Value::Ip(ip) => l.contains_ip(ip),
                    Value::Str(b) => l.contains_bytes(b),
                    _ => false,
                })
            }
            Atom::InObject { slot, object, quant } => {
                let obj = &rs.objects[*object as usize];
                let pv = self.parent_value(rs, ctx, env, obj);
                let r = self.fields.fill(rs, ctx, *slot);
                let vals = &self.fields.values;
                quantified(*quant, r, |i| match env.objects.value_hash(&vals.get(i, buf), obj.normalize) {
                    Some(h) => env.objects.contains(obj, &env.keys, pv, h),
                    None => false,
                })
            }
            Atom::StrAll { slot, lower, test } => {
                let r = self.fields.fill(rs, ctx, *slot);
                let vals = &self.fields.values;
                let scratch = &mut self.lower;
                quantified(Quant::All, r, |i| match vals.get(i, buf) {
                    Value::Str(b) => test.holds(lowered(*lower, b, scratch)),
                    _ => false,
                })
            }
            Atom::ObjNum { object, op, value } => cmp(self.object_value(rs, ctx, env, *object), *op, *value),
            Atom::Event(e) => bit(&self.marks.events, *e as usize),
        }
    }

    fn node(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>, n: &Node) -> bool {
        match n {
            Node::And(v) => v.iter().all(|x| self.node(rs, ctx, env, x)),
            Node::Or(v) => v.iter().any(|x| self.node(rs, ctx, env, x)),
            Node::Not(x) => !self.node(rs, ctx, env, x),
            Node::Atom(a) => self.atom(rs, ctx, env, *a),
        }
    }

    fn prepare(&mut self, rs: &RuleSet) {
        let aw = rs.atoms.len().div_ceil(64);
        let rw = rs.rules.len().div_ceil(64);
        let ew = rs.events.len().div_ceil(64);
        self.fields.clear(rs.fields.len());
        let m = &mut self.marks;
        m.pre.clear();
        m.pre.resize(aw, 0);
        m.cand.clear();
        m.cand.resize(rw, 0);
        m.events.clear();
        m.events.resize(ew, 0);
        self.fired.clear();
    }

    /// Runs the rule set on a message. Returns the index of the deciding rule and its decision,
    /// if a rule decided; [`Evaluator::fired`] lists every rule that fired.
    pub fn eval(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>) -> Option<(u32, Decision)> {
        self.prepare(rs);
        if rs.rules.is_empty() {
            return None;
        }
        let b = bucket_of(ctx.msg.method());
        self.marks.cand.copy_from_slice(&rs.always[b]);
        let member = &rs.member[b];
        let buf = ctx.msg.buf();

        // Every value of a field is searched: a test holds when some value passes (`any`,
        // the default; `all(...)` tests are answered when their rule runs).
        for m in &rs.literal_matchers {
            let r = self.fields.fill(rs, ctx, m.slot);
            for i in r {
                let Value::Str(v) = self.fields.values.get(i, buf) else { continue };
                let hay = lowered(m.lower, v, &mut self.lower);
                let len = hay.len();
                for hit in m.ac.find_overlapping_iter(hay) {
                    let (atom, anchor) = m.patterns[hit.pattern().as_usize()];
                    let ok = match anchor {
                        Anchor::Whole => hit.start() == 0 && hit.end() == len,
                        Anchor::Start => hit.start() == 0,
                        Anchor::End => hit.end() == len,
                        Anchor::Anywhere => true,
                    };
                    if ok {
                        self.marks.mark(rs, atom, member);
                    }
                }
            }
        }
        for m in &rs.regex_matchers {
            let r = self.fields.fill(rs, ctx, m.slot);
            for i in r {
                let Value::Str(v) = self.fields.values.get(i, buf) else { continue };
                let hay = lowered(m.lower, v, &mut self.lower);
                // Most values match nothing: the early-exit test is far cheaper than
                // finding every pattern that matches.
                if !m.set.is_match(hay) {
                    continue;
                }
                for k in m.set.matches(hay).iter() {
                    self.marks.mark(rs, m.atoms[k], member);
                }
            }
        }
        for g in &rs.num_index {
            for v in self.fields.numbers(rs, ctx, g.slot, g.wrap) {
                for atom in g.tests.holding(v) {
                    self.marks.mark(rs, atom, member);
                }
            }
        }
        for g in &rs.ip_index {
            let r = self.fields.fill(rs, ctx, g.slot);
            for i in r {
                let Value::Ip(ip) = self.fields.values.get(i, buf) else { continue };
                mark_ip(&mut self.marks, rs, g, ip, member);
            }
        }

        for g in &rs.obj_index {
            if g.buckets & (1 << b) != 0 {
                self.mark_object(rs, ctx, env, g, member);
            }
        }

        let mut decision = None;
        for w in 0..self.marks.cand.len() {
            let mut word = self.marks.cand[w];
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let r = &rs.rules[i];
                if !self.node(rs, ctx, env, &r.when) {
                    continue;
                }
                if let Some(e) = r.event {
                    set(&mut self.marks.events, e as usize);
                }
                self.apply_updates(rs, ctx, env, r);
                if !rs.obj_index.is_empty() && (!r.hold.is_empty() || !r.count.is_empty()) {
                    // Rules reading what this one updated run after it: re-read, and pick
                    // up the candidates added to the rest of this word.
                    for &o in r.hold.iter().chain(&r.count) {
                        if let Some(g) = rs.obj_index.iter().find(|g| g.object == o && g.buckets & (1 << b) != 0) {
                            self.mark_object(rs, ctx, env, g, member);
                        }
                    }
                    let rest = (!0u64).checked_shl((i % 64) as u32 + 1).unwrap_or(0);
                    word |= self.marks.cand[w] & rest;
                }
                self.fired.push(Fired { rule: i as u32, monitor: r.monitor });
                if r.monitor {
                    continue;
                }
                let d = match r.action {
                    Action::Accept => Decision::Accept,
                    Action::Drop => Decision::Drop,
                    Action::Reject { status } => Decision::Reject { status },
                    Action::Ban { duration_ns } => Decision::Ban { duration_ns },
                    Action::None | Action::Log => continue,
                };
                decision = Some((i as u32, d));
                break;
            }
            if decision.is_some() {
                break;
            }
        }
        decision
    }

    fn apply_updates(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>, r: &Rule) {
        for &o in &r.hold {
            let obj = &rs.objects[o as usize];
            let Some(slot) = obj.value else { continue };
            let v = self.fields.first(rs, ctx, slot);
            let Some(h) = env.objects.value_hash(&v, obj.normalize) else { continue };
            if obj.scope.is_shared() {
                let kv = self.key_value(rs, ctx, env, obj);
                objects::host_distinct_add(env.hosts, obj, &env.keys, kv, env.now, h);
            } else {
                let pv = self.parent_value(rs, ctx, env, obj);
                env.objects.hold(obj, &env.keys, pv, h, env.now);
            }
        }
        for &o in &r.count {
            let obj = &rs.objects[o as usize];
            if obj.scope.is_shared() {
                let kv = self.key_value(rs, ctx, env, obj);
                objects::host_count(env.hosts, obj, &env.keys, kv, env.now);
            } else {
                let pv = self.parent_value(rs, ctx, env, obj);
                env.objects.count(obj, &env.keys, pv, env.now);
            }
        }
    }
}

/// Marks the address tests of `g` that hold for `ip`.
fn mark_ip(marks: &mut Marks, rs: &RuleSet, g: &IpIndex, ip: std::net::IpAddr, member: &[u64]) {
    // As `IpRanges::contains`: IPv4-mapped IPv6 addresses are looked up as IPv4.
    let v4 = match ip {
        std::net::IpAddr::V4(a) => Some(u32::from(a)),
        std::net::IpAddr::V6(a) => a.to_ipv4_mapped().map(u32::from),
    };
    match (v4, ip) {
        (Some(a), _) => {
            for (len, nets) in &g.v4 {
                let net = a & mask4(*len);
                let start = nets.partition_point(|&(n, _)| n < net);
                for &(_, atom) in nets[start..].iter().take_while(|(n, _)| *n == net) {
                    marks.mark(rs, atom, member);
                }
            }
        }
        (None, std::net::IpAddr::V6(a)) => {
            let a = u128::from(a);
            for (len, nets) in &g.v6 {
                let net = a & mask6(*len);
                let start = nets.partition_point(|&(n, _)| n < net);
                for &(_, atom) in nets[start..].iter().take_while(|(n, _)| *n == net) {
                    marks.mark(rs, atom, member);
                }
            }
        }
        _ => {}
    }
}

/// Every number passes `pred`, and there is at least one.
fn all_numbers(mut it: impl Iterator<Item = i64>, mut pred: impl FnMut(i64) -> bool) -> bool {
    match it.next() {
        None => false,
        Some(first) => pred(first) && it.all(pred),
    }
}

#[cfg(test)]
mod index_tests {
    //! The numeric, address and object indexes find exactly what evaluating every rule would.
    use crate::config::EngineConfig;
    use crate::engine::{Engine, Outcome};
    use crate::fixtures::{self, CallParams};
    use crate::hash::Keyer;
    use crate::hosttable::{HostLimits, HostTable};
    use crate::rules::compile::{compile, CompileOptions, Source};
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::sync::Arc;

    /// Fires of each message of `msgs` (REGISTERs from the default client) under `text`.
    fn fired(text: &str, msgs: usize) -> Vec<BTreeSet<String>> {
        let src = [Source { path: "t.toml".into(), text: text.to_string() }];
        let rs = Arc::new(compile(&src, Path::new("."), &CompileOptions::standard()).unwrap_or_else(|e| panic!("{e}")));
        let hosts = Arc::new(HostTable::new(HostLimits::default()));
        let mut e = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(1, 2), rs.clone(), hosts);
        (0..msgs)
            .map(|i| {
                let p = CallParams::numbered(i as u32);
                let f = fixtures::udp_frame(p.client_addr(), p.server_addr(), &fixtures::register(&p, 1));
                match e.handle(1_000_000_000 + i as u64 * 1_000_000, &f, i as u64) {
                    Outcome::Judged(j) => j.fired.iter().map(|f| rs.rules[f.rule as usize].id.clone()).collect(),
                    _ => panic!("held"),
                }
            })
            .collect()
    }

    fn rule(id: &str, when: &str, extra: &str) -> String {
        format!("[[rule]]\nid = \"{id}\"\nwhen = '{when}'\naction = \"log\"\n{extra}\n")
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn numeric_and_address_comparisons_trigger_exactly_when_they_hold() {
        // User-Agent "secsip-fixtures/0.1" (19 bytes), Max-Forwards 70, from 10.77.0.1.
        let tests = [
            ("ua-gt-5", "len(sip.ua) > 5", true),
            ("ua-ge-19", "len(sip.ua) >= 19", true),
            ("ua-ge-20", "len(sip.ua) >= 20", false),
            ("ua-gt-19", "len(sip.ua) > 19", false),
            ("ua-le-19", "len(sip.ua) <= 19", true),
            ("ua-lt-19", "len(sip.ua) < 19", false),
            ("ua-eq-19", "len(sip.ua) == 19", true),
            ("ua-eq-18", "len(sip.ua) == 18", false),
            ("mf-le-70", "sip.max_forwards <= 70", true),
            ("mf-lt-70", "sip.max_forwards < 70", false),
            ("mf-eq-70-register", "sip.method == \"REGISTER\" && sip.max_forwards == 70", true),
            ("mf-eq-70-invite", "sip.method == \"INVITE\" && sip.max_forwards == 70", false),
            ("mf-ne-70", "sip.max_forwards != 70", false),
            ("mf-ne-71", "sip.max_forwards != 71", true),
            ("via-count", "count(sip.via) == 1", true),
            ("absent-len", "len(sip.headers.x-nothing) < 1", true),
            ("src-net", "ip.src == \"10.77.0.0/16\"", true),
            ("src-host", "ip.src == \"10.77.0.1\"", true),
            ("src-other", "ip.src == \"10.77.0.2\"", false),
            ("src-not-other", "ip.src != \"10.77.0.2\"", true),
            ("dst-host", "ip.dst == \"10.77.0.2/32\" && len(sip.ua) > 3", true),
            ("src-v6", "ip.src == \"fd77::/16\"", false),
        ];
        let text: String = tests.iter().map(|(id, w, _)| rule(id, w, "")).collect();
        let want: BTreeSet<String> = tests.iter().filter(|t| t.2).map(|t| t.0.to_string()).collect();
        assert_eq!(fired(&text, 1)[0], want);
    }

    #[test]
    fn object_comparisons_see_updates_made_earlier_in_the_same_message() {
        let mut text = String::from("[[object]]\nid = \"c\"\nscope = \"source\"\nkind = \"counter\"\ndecrement = 1\nperiod = \"1h\"\n\n");
        text += &rule("count", "sip.method == \"REGISTER\"", "count = [\"c\"]");
        // Same 64-rule word as the counting rule.
        text += &rule("c-ge-1", "c >= 1", "");
        text += &rule("c-eq-1", "c == 1", "");
        text += &rule("c-gt-1", "c > 1", "");
        text += &rule("c-lt-2", "sip.method == \"REGISTER\" && c < 2", "");
        for i in 0..70 {
            text += &rule(&format!("filler-{i}"), &format!("sip.ua == \"nope-{i}\""), "");
        }
        // A later word.
        text += &rule("late-c-ge-2", "c >= 2", "");
        text += &rule("late-c-eq-1", "c == 1", "");
        let f = fired(&text, 2);
        assert_eq!(f[0], set(&["count", "c-ge-1", "c-eq-1", "c-lt-2", "late-c-eq-1"]));
        assert_eq!(f[1], set(&["count", "c-ge-1", "c-gt-1", "late-c-ge-2"]));
    }
}
