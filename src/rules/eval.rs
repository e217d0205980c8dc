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

use super::expr::{CmpOp, Wrap};
use super::fields::{MsgCtx, Value};
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

/// A field value cached for the message, by offset into the message buffer where possible.
#[derive(Clone, Copy, Debug)]
enum Cached {
    Unknown,
    /// Computed each time (values outside the message buffer).
    Volatile,
    Absent,
    Span(u32, u32),
    Num(i64),
    Bool(bool),
    Ip(std::net::IpAddr),
}

/// Scratch reused across messages: nothing here allocates per message once warm.
#[derive(Default)]
pub struct Evaluator {
    cache: Vec<Cached>,
    pre: Vec<u64>,
    cand: Vec<u64>,
    events: Vec<u64>,
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

    fn value<'a>(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, 'a>, slot: Slot) -> Value<'a> {
        let s = slot as usize;
        let buf = ctx.msg.buf();
        match self.cache[s] {
            Cached::Unknown => {}
            Cached::Volatile => return ctx.get(&rs.fields[s]),
            Cached::Absent => return Value::Absent,
            Cached::Span(a, b) => return Value::Str(&buf[a as usize..b as usize]),
            Cached::Num(n) => return Value::Num(n),
            Cached::Bool(b) => return Value::Bool(b),
            Cached::Ip(ip) => return Value::Ip(ip),
        }
        let v = ctx.get(&rs.fields[s]);
        self.cache[s] = match v {
            Value::Absent => Cached::Absent,
            Value::Num(n) => Cached::Num(n),
            Value::Bool(b) => Cached::Bool(b),
            Value::Ip(ip) => Cached::Ip(ip),
            Value::Str(b) => {
                let start = (b.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
                if start <= buf.len() && start + b.len() <= buf.len() {
                    Cached::Span(start as u32, (start + b.len()) as u32)
                } else {
                    Cached::Volatile
                }
            }
        };
        v
    }

    fn numeric(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, slot: Slot, wrap: Wrap) -> Option<i64> {
        match wrap {
            Wrap::Count => Some(ctx.count(&rs.fields[slot as usize])),
            Wrap::Len => Some(match self.value(rs, ctx, slot) {
                Value::Str(b) => b.len() as i64,
                Value::Absent => 0,
                Value::Num(n) => n.to_string().len() as i64,
                _ => 1,
            }),
            _ => match self.value(rs, ctx, slot) {
                Value::Num(n) => Some(n),
                Value::Bool(b) => Some(b as i64),
                _ => None,
            },
        }
    }

    /// Hash of the key field's value, for `key`-scoped objects.
    fn key_value(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &Env<'_>, obj: &Object) -> Option<u64> {
        let Scope::Key { slot } = obj.scope else { return None };
        let v = self.value(rs, ctx, slot);
        env.objects.value_hash(&v, obj.normalize)
    }

    fn parent_value(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &Env<'_>, obj: &Object) -> Option<u64> {
        let p = &rs.objects[obj.parent? as usize];
        let v = self.value(rs, ctx, p.value?);
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
            self.mark(rs, atom, member);
        }
    }

    fn atom(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>, a: u32) -> bool {
        match &rs.atoms[a as usize] {
            Atom::Pre => bit(&self.pre, a as usize),
            Atom::Truthy { slot, wrap } => match wrap {
                Wrap::None | Wrap::Lower => self.value(rs, ctx, *slot).truthy(),
                w => self.numeric(rs, ctx, *slot, *w).is_some_and(|n| n > 0),
            },
            Atom::Num { slot, wrap, op, value } => self.numeric(rs, ctx, *slot, *wrap).is_some_and(|n| cmp(n, *op, *value)),
            Atom::Ip { slot, nets } => match self.value(rs, ctx, *slot) {
                Value::Ip(ip) => nets.contains(ip),
                _ => false,
            },
            Atom::InList { slot, list } => {
                let l = &rs.lists[*list as usize];
                match self.value(rs, ctx, *slot) {
                    Value::Ip(ip) => l.contains_ip(ip),
                    Value::Str(b) => l.contains_bytes(b),
                    _ => false,
                }
            }
            Atom::InObject { slot, object } => {
                let obj = &rs.objects[*object as usize];
                let v = self.value(rs, ctx, *slot);
                let pv = self.parent_value(rs, ctx, env, obj);
                match env.objects.value_hash(&v, obj.normalize) {
                    Some(h) => env.objects.contains(obj, &env.keys, pv, h),
                    None => false,
                }
            }
            Atom::ObjNum { object, op, value } => cmp(self.object_value(rs, ctx, env, *object), *op, *value),
            Atom::Event(e) => bit(&self.events, *e as usize),
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
        self.cache.clear();
        self.cache.resize(rs.fields.len(), Cached::Unknown);
        self.pre.clear();
        self.pre.resize(aw, 0);
        self.cand.clear();
        self.cand.resize(rw, 0);
        self.events.clear();
        self.events.resize(ew, 0);
        self.fired.clear();
    }

    fn mark(&mut self, rs: &RuleSet, atom: u32, member: &[u64]) {
        set(&mut self.pre, atom as usize);
        for &r in &rs.triggers[atom as usize] {
            if bit(member, r as usize) {
                set(&mut self.cand, r as usize);
            }
        }
    }

    /// Runs the rule set on a message. Returns the index of the deciding rule and its decision,
    /// if a rule decided; [`Evaluator::fired`] lists every rule that fired.
    pub fn eval(&mut self, rs: &RuleSet, ctx: &MsgCtx<'_, '_>, env: &mut Env<'_>) -> Option<(u32, Decision)> {
        self.prepare(rs);
        if rs.rules.is_empty() {
            return None;
        }
        let b = bucket_of(ctx.msg.method());
        self.cand.copy_from_slice(&rs.always[b]);
        let member = &rs.member[b];

        // The lower-case scratch leaves `self` for the loops so `mark` can borrow `self`.
        let mut lower = std::mem::take(&mut self.lower);
        for m in &rs.literal_matchers {
            let Value::Str(v) = self.value(rs, ctx, m.slot) else { continue };
            let hay = lowered(m.lower, v, &mut lower);
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
                    self.mark(rs, atom, member);
                }
            }
        }
        for m in &rs.regex_matchers {
            let Value::Str(v) = self.value(rs, ctx, m.slot) else { continue };
            let hay = lowered(m.lower, v, &mut lower);
            for i in m.set.matches(hay).iter() {
                self.mark(rs, m.atoms[i], member);
            }
        }
        self.lower = lower;
        for g in &rs.num_index {
            let Some(v) = self.numeric(rs, ctx, g.slot, g.wrap) else { continue };
            for atom in g.tests.holding(v) {
                self.mark(rs, atom, member);
            }
        }
        for g in &rs.ip_index {
            let Value::Ip(ip) = self.value(rs, ctx, g.slot) else { continue };
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
                            self.mark(rs, atom, member);
                        }
                    }
                }
                (None, std::net::IpAddr::V6(a)) => {
                    let a = u128::from(a);
                    for (len, nets) in &g.v6 {
                        let net = a & mask6(*len);
                        let start = nets.partition_point(|&(n, _)| n < net);
                        for &(_, atom) in nets[start..].iter().take_while(|(n, _)| *n == net) {
                            self.mark(rs, atom, member);
                        }
                    }
                }
                _ => {}
            }
        }

        for g in &rs.obj_index {
            if g.buckets & (1 << b) != 0 {
                self.mark_object(rs, ctx, env, g, member);
            }
        }

        let mut decision = None;
        for w in 0..self.cand.len() {
            let mut word = self.cand[w];
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let r = &rs.rules[i];
                if !self.node(rs, ctx, env, &r.when) {
                    continue;
                }
                if let Some(e) = r.event {
                    set(&mut self.events, e as usize);
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
                    word |= self.cand[w] & rest;
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
            let v = self.value(rs, ctx, slot);
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
                    Outcome::Held => panic!("held"),
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
