//! Rules: every file's `[[definition]]` and `[[rule]]` tables to pending rules (id claimed,
//! action, status, ban, mode, severity, reason, log checked), in the order the tables appear
//! in the file, each then handed to [`resolve`](super::resolve) for its `when`.
//!
//! A pass of its own, after lists, events and objects are declared, because a `when` may
//! use any of them; it runs file by file so that a file's errors stay together and in order.

use super::builder::{claim_id, line_at, Builder, Ctx, PendingRule, SeenIds};
use super::parse::{DefinitionDef, RuleDef};
use super::{parse_duration_ns, resolve, CompileError, Input};
use crate::rules::fields;
use crate::rules::model::*;

/// The pending definitions and rules of all files, in file order, with their `when`
/// compiled; and the errors.
pub(super) fn rules(b: &mut Builder, seen: &mut SeenIds, input: &Input<'_>) -> (Vec<PendingRule>, Vec<CompileError>) {
    let mut pending: Vec<PendingRule> = Vec::new();
    let mut errors = Vec::new();
    for (si, (src, f)) in input.sources.iter().zip(&input.parsed).enumerate() {
        let mut cx = Ctx { errors: vec![], src };
        let mut items: Vec<(usize, PendingRule)> = Vec::new();
        for d in &f.definition {
            let d = d.get_ref();
            let line = line_at(&input.newlines[si], d.id.span().start);
            if claim_id(seen, &mut cx, &d.id, line, "definition") {
                items.push((d.id.span().start, definition(b, &cx, d, line, si)));
            }
        }
        for r in &f.rule {
            let r = r.get_ref();
            let line = line_at(&input.newlines[si], r.id.span().start);
            if claim_id(seen, &mut cx, &r.id, line, "rule") {
                items.push((r.id.span().start, rule(&mut cx, r, line, si)));
            }
        }
        // File order is the order the tables appear in, whatever their kind.
        items.sort_by_key(|(pos, _)| *pos);
        for (_, mut p) in items {
            resolve::resolve(b, &mut cx, &input.parsed, &mut p);
            pending.push(p);
        }
        errors.append(&mut cx.errors);
    }
    (pending, errors)
}

/// The pending rule of definition `d` (source `si`, at `line`), raising its event.
fn definition(b: &Builder, cx: &Ctx<'_>, d: &DefinitionDef, line: usize, si: usize) -> PendingRule {
    let rule = Rule {
        is_definition: true,
        event: b.event_ids.get(d.event.get_ref()).copied(),
        description: d.description.clone(),
        ..Rule::new(d.id.get_ref(), d.when.get_ref(), cx.src.path.clone(), line)
    };
    PendingRule::new(rule, d.when.span(), si)
}

/// The pending rule of rule table `r` (source `si`, at `line`), its keys checked.
fn rule(cx: &mut Ctx<'_>, r: &RuleDef, line: usize, si: usize) -> PendingRule {
    let id = r.id.get_ref();
    let status = r.status.as_ref().map(|s| *s.get_ref());
    let action = action(cx, r, status);
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
        ..Rule::new(id, r.when.get_ref(), cx.src.path.clone(), line)
    };
    let hold_spans = r.hold.iter().map(|h| (h.get_ref().clone(), h.span())).collect();
    let count_spans = r.count.iter().map(|h| (h.get_ref().clone(), h.span())).collect();
    PendingRule { hold_spans, count_spans, definition_ref: r.definition.clone(), ..PendingRule::new(rule, r.when.span(), si) }
}

/// The action of `r`, with a reject's status (`status`) and a ban's duration.
fn action(cx: &mut Ctx<'_>, r: &RuleDef, status: Option<i64>) -> Action {
    let id = r.id.get_ref();
    match r.action.as_ref().map(|a| a.get_ref().as_str()).unwrap_or("none") {
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
    }
}

/// The reason phrase a reject sends when the rule gives none.
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
