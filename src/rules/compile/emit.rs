//! Emit: the builder and the scheduled rules to the immutable [`RuleSet`]: the literal
//! automata and regex sets built per (field, case), the indexes attached, the host-table
//! slots counted.
//!
//! The last pass: matchers are built once every literal and regex of the set is known, so
//! each field is scanned once per message whatever the number of rules testing it.

use super::builder::{Builder, Literal};
use super::index::{self, Buckets};
use super::{CompileError, CompileErrors, Source};
use crate::rules::model::*;
use aho_corasick::{AhoCorasickBuilder, MatchKind};
use regex::bytes::RegexSetBuilder;
use std::collections::HashMap;

/// The rule set of builder `b` and the scheduled `rules` (triggers set).
pub(super) fn emit(b: Builder, rules: Vec<Rule>, sources: &[Source]) -> Result<RuleSet, CompileErrors> {
    let Buckets { always, member, triggers } = index::buckets(&rules, b.atoms.len());
    let err = |m: String| CompileErrors(vec![CompileError { file: sources.first().map(|s| s.path.clone()).unwrap_or_default(), line: 1, col: 1, id: None, key: None, message: m }]);
    let literal_matchers = literal_matchers(b.literals).map_err(&err)?;
    let regex_matchers = regex_matchers(b.regexes).map_err(&err)?;
    let num_index = index::num_index(&b.atoms);
    let ip_index = index::ip_index(&b.ip_tests);
    let obj_index = index::obj_index(&b.atoms, &rules, &member);
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

/// One Aho-Corasick automaton per (field, case), in slot order.
fn literal_matchers(literals: HashMap<(Slot, bool), Vec<Literal>>) -> Result<Vec<LiteralMatcher>, String> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = literals.into_iter().collect();
    keys.sort_by_key(|((s, l), _)| (*s, *l));
    for ((slot, lower), pats) in keys {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(pats.iter().map(|(p, _, _)| p.as_slice()))
            .map_err(|e| format!("building the literal automaton: {e}"))?;
        out.push(LiteralMatcher { slot, lower, ac, patterns: pats.iter().map(|(_, a, k)| (*a, *k)).collect() });
    }
    Ok(out)
}

/// One regex set per (field, case), in slot order.
fn regex_matchers(regexes: HashMap<(Slot, bool), Vec<(String, u32)>>) -> Result<Vec<RegexMatcher>, String> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = regexes.into_iter().collect();
    keys.sort_by_key(|((s, l), _)| (*s, *l));
    for ((slot, lower), pats) in keys {
        let set = RegexSetBuilder::new(pats.iter().map(|(p, _)| p.as_str()))
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| format!("building the regex set: {e}"))?;
        out.push(RegexMatcher { slot, lower, set, atoms: pats.iter().map(|(_, a)| *a).collect() });
    }
    Ok(out)
}
