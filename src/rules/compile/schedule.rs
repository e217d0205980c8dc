//! Schedule: definitions and rules in evaluation order. Writers of an object (`hold`,
//! `count`) and raisers of an event run before their readers; otherwise file order.
//!
//! A pass of its own because the order depends on what every rule reads and writes, known
//! only once all `when`s are resolved; a cycle is an error of the whole set.

use super::builder::PendingRule;
use super::{CompileError, CompileErrors, Source};
use crate::config::line_col;
use crate::rules::model::Rule;
use std::collections::{BTreeSet, HashMap};

/// The rules of `pending` in evaluation order, or the cycle that leaves none to run first.
///
/// Kahn's algorithm picking the earliest ready rule keeps file order stable.
pub(super) fn schedule(pending: &[PendingRule], sources: &[Source]) -> Result<Vec<Rule>, CompileErrors> {
    let n = pending.len();
    let (succ, mut indeg) = edges(pending);
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
        return Err(cycle(&stuck, sources));
    }
    Ok(order.into_iter().map(|i| pending[i].rule.clone()).collect())
}

/// The successors of each pending rule (the readers of what it writes) and the number of
/// rules each must wait for.
fn edges(pending: &[PendingRule]) -> (Vec<BTreeSet<usize>>, Vec<usize>) {
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
    (succ, indeg)
}

/// The error naming the rules of a cycle (`stuck`, in file order), placed at the first.
fn cycle(stuck: &[&PendingRule], sources: &[Source]) -> CompileErrors {
    let names: Vec<String> = stuck.iter().map(|p| format!("'{}' ({}:{})", p.rule.id, p.rule.file.display(), p.rule.line)).collect();
    let first = stuck[0];
    let src = &sources[first.src];
    let (line, col) = line_col(&src.text, first.when_span.start);
    CompileErrors(vec![CompileError {
        file: src.path.clone(),
        line,
        col,
        id: Some(first.rule.id.clone()),
        key: Some("when".into()),
        message: format!("cycle: each of these rules reads an object or event another of them writes, so none can run first: {}", names.join(", ")),
    }])
}
