//! Declare: every file's lists (entries read, parsed and indexed) and the events its
//! definitions raise, with the lists' ids claimed.
//!
//! A pass of its own, before any `when` is compiled, so that a rule may use a list or an
//! event of any file whatever the order of the files (the schedule decides evaluation order).

use super::builder::{claim_id, line_at, Builder, Ctx, SeenIds};
use super::parse::ListDef;
use super::{CompileError, CompileOptions, Geoip, Input, ReadList};
use crate::rules::lists::{self, List, ListKind};

/// Declares all lists and events of `input` into `b`; returns the errors, in file order.
pub(super) fn declare(b: &mut Builder, seen: &mut SeenIds, input: &Input<'_>, read_list: ReadList<'_>, opts: &CompileOptions, geoip: &Geoip) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for (si, (src, f)) in input.sources.iter().zip(&input.parsed).enumerate() {
        let mut cx = Ctx { errors: vec![], src };
        for l in &f.list {
            let l = l.get_ref();
            if !claim_id(seen, &mut cx, &l.id, line_at(&input.newlines[si], l.id.span().start), "list") {
                continue;
            }
            if let Some(list) = list(&mut cx, l, read_list, opts, geoip) {
                b.list_ids.insert(l.id.get_ref().clone(), b.lists.len() as u32);
                b.lists.push(list);
            }
        }
        for d in &f.definition {
            let ev = d.get_ref().event.get_ref().clone();
            if !b.event_ids.contains_key(&ev) {
                b.event_ids.insert(ev.clone(), b.events.len() as u32);
                b.events.push(ev);
            }
        }
        errors.append(&mut cx.errors);
    }
    errors
}

/// The list of table `l`: its own entries, its file's, the management API's; or `None` after
/// reporting why it cannot be built.
fn list(cx: &mut Ctx<'_>, l: &ListDef, read_list: ReadList<'_>, opts: &CompileOptions, geoip: &Geoip) -> Option<List> {
    let Some(kind) = ListKind::parse(l.kind.get_ref()) else {
        cx.err(l.kind.span(), Some(l.id.get_ref()), Some("kind"), format!("unknown list kind '{}' (kinds: {})", l.kind.get_ref(), ListKind::NAMES));
        return None;
    };
    let mut entries = l.entries.clone();
    if let Some(file) = &l.file {
        match read_list(file.get_ref()) {
            Ok(t) => entries.extend(lists::read_entries(&t)),
            Err(e) => {
                cx.err(file.span(), Some(l.id.get_ref()), Some("file"), e);
                return None;
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
            return None;
        }
        Some(p) if p.get_ref().iter().any(|x| x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit())) => {
            cx.err(p.span(), Some(l.id.get_ref()), Some("international_prefixes"), "an international prefix is one or more digits (`+` is always one)");
            return None;
        }
        Some(p) => p.get_ref().clone(),
        None => lists::DEFAULT_INTERNATIONAL_PREFIXES.iter().map(|s| s.to_string()).collect(),
    };
    match List::with_prefixes(l.id.get_ref(), kind, entries, geoip.clone(), &intl) {
        Ok(list) => {
            let _ = &l.description;
            Some(list)
        }
        Err(e) if e.index >= from_rules => {
            cx.err(l.id.span(), Some(l.id.get_ref()), Some("entries"), format!("entry added through the API: {}", e.message));
            None
        }
        Err(e) => {
            cx.err(l.id.span(), Some(l.id.get_ref()), Some("entries"), format!("entry {}: {}", e.index + 1, e.message));
            None
        }
    }
}
