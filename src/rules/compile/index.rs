//! Index: what lets the evaluator skip rules. Each rule's trigger (an atom answered before
//! rules run that the rule needs), the method buckets (which rules apply to each method and
//! to responses), and the numeric, address and object indexes over the atoms.
//!
//! A pass of its own because it reads the whole scheduled set: buckets and triggers are
//! bitmaps and lists over rule positions, which only the schedule fixes.

use crate::rules::expr::{CmpOp, Quant};
use crate::rules::fields::Field;
use crate::rules::model::*;
use super::builder::Builder;
use std::collections::BTreeSet;

/// Sets each rule's trigger; a method test is one only when the rule has no other.
pub(super) fn set_triggers(b: &Builder, rules: &mut [Rule]) {
    let method_atoms: BTreeSet<u32> = match b.field_slots.get(&Field::Method) {
        Some(&slot) => b.literals.get(&(slot, false)).into_iter().flatten().map(|(_, a, _)| *a).collect(),
        None => BTreeSet::new(),
    };
    for r in rules {
        r.trigger = trigger_of(&r.when, &b.atoms, &method_atoms);
    }
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

/// The method buckets and triggers of the scheduled rules.
pub(super) struct Buckets {
    /// By bucket: rules that apply and have no trigger (always candidates).
    pub(super) always: Vec<Vec<u64>>,
    /// By bucket: rules that apply.
    pub(super) member: Vec<Vec<u64>>,
    /// By atom: the rules it triggers.
    pub(super) triggers: Vec<Vec<u32>>,
}

/// Which rules apply to each method bucket and the response bucket, and which atom
/// triggers which rules.
pub(super) fn buckets(rules: &[Rule], atoms: usize) -> Buckets {
    let words = rules.len().div_ceil(64);
    let mut always = vec![vec![0u64; words]; BUCKETS];
    let mut member = vec![vec![0u64; words]; BUCKETS];
    let mut triggers = vec![Vec::new(); atoms];
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
    Buckets { always, member, triggers }
}

fn set_bit(v: &mut [u64], i: usize) {
    v[i / 64] |= 1 << (i % 64);
}

/// The numeric index: every ordered comparison of a field with a constant, by (field, wrap).
pub(super) fn num_index(atoms: &[Atom]) -> Vec<NumIndex> {
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
pub(super) fn obj_index(atoms: &[Atom], rules: &[Rule], member: &[Vec<u64>]) -> Vec<ObjIndex> {
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
pub(super) fn ip_index(tests: &[(Slot, std::net::IpAddr, u8, u32)]) -> Vec<IpIndex> {
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
