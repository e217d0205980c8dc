//! Evaluating a [`RuleSet`] on one message.
//!
//! Per message, in this order:
//! 1. every literal of every rule is searched for with one Aho-Corasick pass per field, and
//!    every regex with one `RegexSet` pass per field; every numeric comparison of a field with
//!    a constant is answered by binary search in the field's sorted constants, and every
//!    address test by lookups per prefix length: this gives the set of field tests that hold;
//! 2. candidate rules are the rules of the message's method bucket that have no trigger, plus
//!    those whose trigger test held in step 1 (a rule whose condition requires a literal
//!    that is not in the message, or a length the message does not reach, is never looked
//!    at; a method test is a trigger only for rules with no other);
//! 3. candidates run in schedule order; object updates apply as rules fire; the first
//!    terminal action decides.
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
            Atom::ObjNum { object, op, value } => {
                let obj = &rs.objects[*object as usize];
                let n = if obj.scope.is_shared() {
                    let kv = self.key_value(rs, ctx, env, obj);
                    objects::host_value(env.hosts, obj, &env.keys, kv, env.now) as i64
                } else {
                    let pv = self.parent_value(rs, ctx, env, obj);
                    match obj.kind {
                        ObjKind::Counter { .. } => env.objects.counter(obj, &env.keys, pv, env.now) as i64,
                        _ => env.objects.entries(obj, &env.keys, pv),
                    }
                };
                cmp(n, *op, *value)
            }
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
            let hay: &[u8] = if m.lower {
                lower.clear();
                lower.extend(v.iter().map(u8::to_ascii_lowercase));
                &lower
            } else {
                v
            };
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
            let hay: &[u8] = if m.lower {
                lower.clear();
                lower.extend(v.iter().map(u8::to_ascii_lowercase));
                &lower
            } else {
                v
            };
            for i in m.set.matches(hay).iter() {
                self.mark(rs, m.atoms[i], member);
            }
        }
        self.lower = lower;
        for g in &rs.num_index {
            let Some(v) = self.numeric(rs, ctx, g.slot, g.wrap) else { continue };
            // gt: c < v holds, a prefix; lt: v < c holds, a suffix; eq: c == v, a run.
            let end = g.gt.partition_point(|&(c, _)| c < v);
            for &(_, atom) in &g.gt[..end] {
                self.mark(rs, atom, member);
            }
            let start = g.lt.partition_point(|&(c, _)| c <= v);
            for &(_, atom) in &g.lt[start..] {
                self.mark(rs, atom, member);
            }
            let start = g.eq.partition_point(|&(c, _)| c < v);
            for &(c, atom) in &g.eq[start..] {
                if c != v {
                    break;
                }
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
