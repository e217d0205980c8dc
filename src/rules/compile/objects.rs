//! Objects: every `[[object]]` table to an [`Object`] (scope, kind, the field it holds,
//! bounds), parents before children whatever the order written, and source/global objects
//! given their slots in the shared host table.
//!
//! A pass of its own, after lists and before any `when`, because rules read and write
//! objects by name, and a child object needs its parent built to check its scope and kind.

use super::builder::{claim_id, line_at, Builder, Ctx, SeenIds};
use super::parse::ObjectDef;
use super::{parse_duration_ns, CompileError, CompileOptions, Input};
use crate::rules::fields::{self, Field};
use crate::rules::model::*;
use std::hash::{Hash, Hasher};
use std::path::Path;
use toml::Spanned;

/// Slots of the shared host table given so far: (counters, distincts).
#[derive(Default)]
struct HostSlots {
    counters: usize,
    distincts: usize,
}

impl HostSlots {
    /// The host-table slot of a `scope`, `kind` object: the next counter or distinct slot
    /// for source and global objects, 0 (unused) for the others.
    fn take(&mut self, scope: Scope, kind: ObjKind) -> usize {
        match (scope.is_shared(), kind) {
            (true, ObjKind::Counter { .. }) => {
                self.counters += 1;
                self.counters - 1
            }
            (true, ObjKind::Distinct { .. }) => {
                self.distincts += 1;
                self.distincts - 1
            }
            _ => 0,
        }
    }
}

/// Declares all objects of `input` into `b`; returns the errors. `base` names the set in the
/// error that the host table is too small.
pub(super) fn declare(b: &mut Builder, seen: &mut SeenIds, input: &Input<'_>, opts: &CompileOptions, base: &Path) -> Vec<CompileError> {
    let mut errors = Vec::new();
    let mut defs: Vec<(usize, &ObjectDef)> = input.parsed.iter().enumerate().flat_map(|(i, f)| f.object.iter().map(move |o| (i, o.get_ref()))).collect();
    defs.sort_by_key(|(_, o)| o.id.get_ref().matches('.').count());
    let mut host = HostSlots::default();
    for (si, o) in defs {
        let mut cx = Ctx { errors: vec![], src: &input.sources[si] };
        let line = line_at(&input.newlines[si], o.id.span().start);
        if let Some(object) = object(b, seen, &mut cx, o, line, &mut host) {
            b.object_ids.insert(object.id.clone(), b.objects.len() as u32);
            b.objects.push(object);
        }
        errors.append(&mut cx.errors);
    }
    if host.counters > opts.host_counters || host.distincts > opts.host_distincts {
        errors.push(CompileError {
            file: base.to_owned(),
            line: 1,
            col: 1,
            id: None,
            key: None,
            message: format!(
                "source/global objects need {} counter and {} distinct slots; the host table has {} and {} (raise [hosts] counters/distincts in the configuration)",
                host.counters, host.distincts, opts.host_counters, opts.host_distincts
            ),
        });
    }
    errors
}

/// The object of table `o`, or `None` when its id cannot be taken (malformed, duplicate, or
/// a child of an undeclared parent). Other errors are reported and the object still built,
/// so that rules using it are checked too.
fn object(b: &mut Builder, seen: &mut SeenIds, cx: &mut Ctx<'_>, o: &ObjectDef, line: usize, host: &mut HostSlots) -> Option<Object> {
    let id = o.id.get_ref();
    if id.starts_with("sip.") || id.starts_with("ip.") || id.starts_with("l4.") || id.starts_with("list.") || id.starts_with("event.") || id.starts_with("dialog.") || id.starts_with("transaction.") || Field::lookup(id).is_some() {
        cx.err(o.id.span(), Some(id), Some("id"), "object ids must not look like field names (sip., ip., l4., list., event., dialog., transaction.)");
        return None;
    }
    if !claim_id(seen, cx, &o.id, line, "object") {
        return None;
    }
    let parent = match id.rsplit_once('.') {
        Some((p, _)) => match b.object_ids.get(p) {
            Some(&pi) => Some(pi),
            None => {
                cx.err(o.id.span(), Some(id), Some("id"), format!("child object of '{p}', which is not declared"));
                return None;
            }
        },
        None => None,
    };
    let mut scope = scope(b, cx, o);
    if let Some(pi) = parent {
        scope = parent_scope(b, cx, o, pi, scope);
    }
    let kind = kind(cx, o);
    if scope.is_shared() && kind.is_container() {
        cx.err(o.kind.span(), Some(id), Some("kind"), format!("{} objects are shared by all engines and must be a counter or distinct; sets, lists and bags live in a transaction or dialog", scope.name()));
    }
    if let (Some(c), false) = (&o.cap, matches!(kind, ObjKind::Counter { .. })) {
        cx.err(c.span(), Some(id), Some("cap"), "cap goes with kind = \"counter\"");
    }
    let value = value(b, cx, o, kind);
    let max_entries = o.max_entries.as_ref().map(|m| *m.get_ref()).unwrap_or(32);
    if !(1..=4096).contains(&max_entries) {
        cx.err(o.max_entries.as_ref().map(|m| m.span()).unwrap_or(o.id.span()), Some(id), Some("max_entries"), "must be 1..=4096");
    }
    let normalize = o.normalize.as_ref().map(|m| *m.get_ref()).unwrap_or(256);
    if !(1..=65535).contains(&normalize) {
        cx.err(o.normalize.as_ref().map(|m| m.span()).unwrap_or(o.id.span()), Some(id), Some("normalize"), "must be 1..=65535");
    }
    let host_slot = host.take(scope, kind);
    let fp = fingerprint(o, scope, kind, max_entries, normalize);
    let _ = &o.description;
    Some(Object {
        id: id.clone(),
        scope,
        kind,
        value,
        parent,
        max_entries: max_entries.clamp(1, 4096) as usize,
        normalize: normalize.clamp(1, 65535) as usize,
        fingerprint: fp,
        host_slot,
    })
}

/// The scope of `o` as written, with its `address`, `key` and source prefixes checked.
fn scope(b: &mut Builder, cx: &mut Ctx<'_>, o: &ObjectDef) -> Scope {
    let id = o.id.get_ref();
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
    scope
}

/// The scope of child `o` of object `pi`: its parent's (reported if written otherwise).
fn parent_scope(b: &Builder, cx: &mut Ctx<'_>, o: &ObjectDef, pi: u32, scope: Scope) -> Scope {
    let id = o.id.get_ref();
    let parent = &b.objects[pi as usize];
    let ps = parent.scope;
    if ps.is_shared() {
        cx.err(o.id.span(), Some(id), Some("id"), "source and global objects have no children: the shared host table keeps one value per address");
    }
    let scope = if ps != scope {
        cx.err(o.scope.span(), Some(id), Some("scope"), format!("a child object lives in its parent's scope ({})", ps.name()));
        ps
    } else {
        scope
    };
    if !parent.kind.is_container() && parent.kind.name() != "distinct" {
        cx.err(o.id.span(), Some(id), Some("id"), "only sets, lists, bags and distinct objects have children (one per value)");
    }
    scope
}

/// The kind of `o`, with a counter's decrement, period and cap and a distinct's window.
fn kind(cx: &mut Ctx<'_>, o: &ObjectDef) -> ObjKind {
    let id = o.id.get_ref();
    match o.kind.get_ref().as_str() {
        "set" => ObjKind::Set,
        "list" => ObjKind::List,
        "bag" => ObjKind::Bag,
        "counter" => {
            let decrement = o.decrement.as_ref().map(|d| *d.get_ref()).unwrap_or(1);
            if !(0..=u32::MAX as i64).contains(&decrement) {
                cx.err(o.decrement.as_ref().map(|d| d.span()).unwrap_or(o.kind.span()), Some(id), Some("decrement"), "must be 0..=4294967295");
            }
            let period_ns = duration(cx, id, &o.period, "period").unwrap_or(60_000_000_000);
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
        "distinct" => ObjKind::Distinct { window_ns: duration(cx, id, &o.window, "window").unwrap_or(60_000_000_000) },
        other => {
            cx.err(o.kind.span(), Some(id), Some("kind"), format!("unknown kind '{other}' (set, list, bag, counter, distinct)"));
            ObjKind::Set
        }
    }
}

/// The duration under `key`, if written; reported if it is not one.
fn duration(cx: &mut Ctx<'_>, id: &str, s: &Option<Spanned<String>>, key: &str) -> Option<u64> {
    let s = s.as_ref()?;
    let d = parse_duration_ns(s.get_ref());
    if d.is_none() {
        cx.err(s.span(), Some(id), Some(key), format!("'{}' is not a duration (90s, 5m, 1h, 500ms)", s.get_ref()));
    }
    d
}

/// The slot of the field `o` holds: required for containers and distincts, refused for counters.
fn value(b: &mut Builder, cx: &mut Ctx<'_>, o: &ObjectDef, kind: ObjKind) -> Option<Slot> {
    let id = o.id.get_ref();
    match (&o.value, kind) {
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
    }
}

/// A hash of object `o`'s definition, by which its live state survives a reload.
fn fingerprint(o: &ObjectDef, scope: Scope, kind: ObjKind, max_entries: i64, normalize: i64) -> u64 {
    // By names, never by compiler-assigned numbers (field slots follow declaration order):
    // live state is found again by this after a reload that reorders the files.
    let scope_def = match scope {
        Scope::Key { .. } => format!("key={}", o.key.as_ref().map(|k| k.get_ref().as_str()).unwrap_or("")),
        other => format!("{other:?}"),
    };
    let parts: &[&str] = &[o.id.get_ref(), o.scope.get_ref(), o.kind.get_ref(), o.value.as_ref().map(|v| v.get_ref().as_str()).unwrap_or(""), &format!("{kind:?}{max_entries}{normalize}{scope_def}")];
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}
