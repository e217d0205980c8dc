//! Importer: SecSip rules (the paper's rule lines, or the manager's VeTo XML) to the
//! secsip TOML rule language described in `rules/README.md`.
//!
//! [`import`] converts one file's worth of SecSip text into one TOML file's worth of
//! `[[object]]`, `[[definition]]` and `[[rule]]` tables, headed by a comment naming the
//! source; [`detect`] tells the two SecSip syntaxes apart. Errors carry the 1-based line
//! and column of the offending SecSip text ([`ImportError`]).
//!
//! # Rule lines (Lahmadi & Festor 2010, Figures 3, 6, 7, 8)
//!
//! ```text
//! [LABEL:] SecSip|SecSipRule|SecSipaction  [VAR OP {&& VAR OP}]  {ACTION}
//! ```
//!
//! - The keyword is matched case-insensitively; a leading label such as `R1:` is skipped.
//!   Blank lines and `#` comment lines are skipped; a line ending in `\` continues on the
//!   next one.
//! - Tokens are whitespace-separated words or `"quoted strings"` (`\"` inside a quoted string
//!   is a quote; every other backslash is kept, so regexes pass through untouched). The
//!   paper's Figure 3 typo `""INVITE"` (a doubled opening quote glued to a word) is read
//!   as `"INVITE"` and a comment in the output says so.
//! - Conditions are `VARIABLE OPERATOR` pairs joined by `&&`; actions follow (several may
//!   share a token, comma-separated).
//!
//! **Variables** (the collection prefix is case-insensitive, field names are lowercased):
//!
//! | SecSip | secsip |
//! |---|---|
//! | `FIELDS:x`, `MESSAGE_HEADERS:x`, `SIP:x`, `BODY:x` | the field `x`, mapped as below |
//! | `sip.method`, `request.method` | `sip.method` |
//! | `sip.uri`, `request.uri` | `sip.ruri` |
//! | `sip.from.addr` / `sip.to.addr` | `ip.src` / `ip.dst` (the packet's addresses) |
//! | `headers.NAME`, `sip.headers.NAME` | `sip.headers.name` |
//! | `BODY:` alone, `BODY:body` | `sip.body` |
//! | any other `x` | `sip.x` (`sip.from`, `sip.via.branch`... are kept) |
//! | a bare `sip.x` / `ip.x` word | the same mapping |
//! | a bare name (`rate`, `tr.count`) | the object of that id |
//! | `&field` / `&object` | `len(field)` / `count(object)` |
//!
//! **Operators** (the second string; a leading `!` negates; names are case-insensitive):
//!
//! | SecSip | secsip |
//! |---|---|
//! | `@eq V`, `@ne V` (`@streq`) | `== V`, `!= V` (`!@eq` gives `!=`, `!@ne` gives `==`) |
//! | `@gt N`, `@ge N`, `@lt N`, `@le N` | `> N`, `>= N`, `< N`, `<= N` (`N` must be a number) |
//! | `@match RE` (`@rx`), or a bare `RE` | `matches "RE"` (checked with the `regex` crate) |
//! | `@contains S`, `@beginsWith S`, `@endsWith S` | `contains "S"`, `startswith "S"`, `endswith "S"` |
//! | `@in OBJECT` (or `@in list.ID`) | `in OBJECT` |
//! | `@normalize N` | no condition: sets `normalize = N` on the object named, or on every object holding the field; a comment when there is none |
//!
//! Other negations become `!(...)`. A value is written as a number when the left side is
//! numeric (`len`, `count`, an object, or a numeric field such as `sip.status`) and as an
//! expression string otherwise. Expression strings escape `\` and `"` (`"^a\\d"`), and a
//! `when` is a TOML literal string (`'...'`) unless it contains `'`, then a basic string.
//!
//! **Actions**: `drop` (`deny`) → `action = "drop"`; `accept`/`allow` → `"accept"`;
//! `reject` → `"reject"`; `log` → `"log"` (folded into a disruptive action on the same
//! line, with a comment); no verdict → `"none"`.
//! `hold:NAME=set|list|bag[VARIABLE]` defines `[[object]]` `NAME` of that `kind` with
//! `value` the mapped field, in scope `transaction` when the value is `sip.via.branch` and
//! `dialog` otherwise, and puts `NAME` in the rule's `hold`.
//! `declare:NAME=counter[DEC;PERIOD]` defines a `kind = "counter"` object with
//! `decrement = DEC`, `period = "PERIODs"` (a period may also carry its own `s`/`m`/`h`),
//! in scope `global`, and puts `NAME` in the rule's `count`. A dotted child `X.Y` takes its
//! parent's scope (the parent must be held or declared in the same file). An object held
//! or declared twice must agree with itself.
//!
//! Each line with conditions or actions becomes one `[[rule]]` with `id = "secsip-LINE"`
//! (the source line number), `description` = the original line. A line with holds but no
//! condition gets `when` = the held fields (true when present); a line with neither has no
//! `when` (it applies to every message) and a comment saying so.
//!
//! # VeTo XML (SecSip user documentation, chapters 4 and 5)
//!
//! Element and attribute names are matched case-insensitively (`-` = `_`), namespaces are
//! ignored, and the root may be `<rules>`, `<config>`, anything else, or a block itself.
//!
//! - `<definition_block id=ID><conditional><assertion>...</assertion>...<event_definition>EV`
//!   → `[[definition]]` `id = ID`, `event = EV`, `when` = the assertions ANDed. Several
//!   conditionals (or events) give `ID-2`, `ID-3`... for the later ones. A block without
//!   `<conditional>` may hold the assertions and event directly.
//! - `<assertion>` has `<variable>`, `<operator>`, `<value>` children (or attributes),
//!   translated as above (`@` optional on the operator).
//! - `<veto_block id=ID><definition>DEF</definition><rule><event>EV</event><assertion>...`
//!   `<drop/></rule></veto_block>` → `[[rule]]` `id = ID`, `definition = DEF`,
//!   `when = 'event.EV && <assertions>'`, `action`. The action is an empty element
//!   (`<drop/>`, `<accept/>`, `<allow/>`, `<reject/>`, `<log/>`) or `<action>drop</action>`.
//!   Several `<rule>`s give `ID-2`...; a block without `<rule>` may hold the rule's
//!   elements directly. When `DEF` names a block of this file that produced several
//!   definitions, the one raising the rule's event is used.
//!
//! Unknown elements inside a conditional, assertion or rule are errors (nothing is
//! silently dropped); unknown elements between blocks are ignored.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Which SecSip syntax a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecSipFormat {
    /// The paper's rule lines (`SecSip "FIELDS:sip.method" "^BYE$" drop`).
    Lines,
    /// The manager's VeTo XML (`<definition_block>`, `<veto_block>`).
    VetoXml,
}

/// Tells the syntax of a SecSip file: XML when the first non-space character is `<`
/// (a UTF-8 byte-order mark is skipped), rule lines otherwise.
pub fn detect(text: &str) -> SecSipFormat {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<') {
        SecSipFormat::VetoXml
    } else {
        SecSipFormat::Lines
    }
}

/// Converts SecSip rules (either syntax, see [`detect`]) into secsip TOML text, one file's
/// worth, headed by a comment naming `source_name`.
///
/// `source_name` is used in that comment and in errors only.
pub fn import(text: &str, source_name: &str) -> Result<String, ImportError> {
    let res = match detect(text) {
        SecSipFormat::Lines => lines::import(text, source_name),
        SecSipFormat::VetoXml => xml::import(text, source_name),
    };
    res.map_err(|f| ImportError {
        source_name: source_name.to_string(),
        line: f.pos.line,
        col: f.pos.col,
        message: f.message,
    })
}

/// A SecSip construct the importer cannot convert, with its place in the SecSip source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}:{col}: {message}")]
pub struct ImportError {
    /// The `source_name` given to [`import`].
    pub source_name: String,
    /// 1-based line in the SecSip source.
    pub line: usize,
    /// 1-based column (in characters) in the SecSip source.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

// ---------------------------------------------------------------------------------------
// Shared: positions, located strings, variables, operators, TOML output

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    col: usize,
}

/// An error before the source name is attached.
#[derive(Debug)]
struct Fail {
    pos: Pos,
    message: String,
}

type R<T> = Result<T, Fail>;

fn fail<T>(pos: Pos, message: impl Into<String>) -> R<T> {
    Err(Fail {
        pos,
        message: message.into(),
    })
}

/// A string with the source position of each of its characters.
#[derive(Debug, Clone)]
struct LStr {
    text: String,
    /// One position per `char` of `text`.
    pos: Vec<Pos>,
    /// Where the string (or its token) starts; used when `text` is empty.
    start: Pos,
}

impl LStr {
    fn at(&self, char_idx: usize) -> Pos {
        self.pos
            .get(char_idx)
            .copied()
            .unwrap_or_else(|| self.pos.last().copied().unwrap_or(self.start))
    }

    /// The substring of chars `a..b`.
    fn slice(&self, a: usize, b: usize) -> LStr {
        let text: String = self
            .text
            .chars()
            .skip(a)
            .take(b.saturating_sub(a))
            .collect();
        LStr {
            text,
            pos: self
                .pos
                .get(a..b.min(self.pos.len()))
                .unwrap_or(&[])
                .to_vec(),
            start: self.at(a),
        }
    }

    fn chars(&self) -> Vec<char> {
        self.text.chars().collect()
    }

    /// Trims whitespace at both ends.
    fn trim(&self) -> LStr {
        let cs = self.chars();
        let mut a = 0;
        let mut b = cs.len();
        while a < b && cs[a].is_whitespace() {
            a += 1;
        }
        while b > a && cs[b - 1].is_whitespace() {
            b -= 1;
        }
        self.slice(a, b)
    }
}

/// The left side of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Field(String),
    Len(String),
    Count(String),
    Object(String),
}

impl Operand {
    fn expr(&self) -> String {
        match self {
            Operand::Field(f) | Operand::Object(f) => f.clone(),
            Operand::Len(f) => format!("len({f})"),
            Operand::Count(o) => format!("count({o})"),
        }
    }

    fn numeric(&self) -> bool {
        match self {
            Operand::Len(_) | Operand::Count(_) | Operand::Object(_) => true,
            Operand::Field(f) => NUMERIC_FIELDS.contains(&f.as_str()),
        }
    }
}

/// Fields of `rules/README.md` whose type is a number.
const NUMERIC_FIELDS: &[&str] = &[
    "sip.status",
    "sip.ruri.port",
    "sip.contact.expires",
    "sip.cseq.number",
    "sip.via.port",
    "sip.max_forwards",
    "sip.expires",
    "sip.content_length",
    "sip.length",
    "l4.srcport",
    "l4.dstport",
    "transaction.retransmissions",
];

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An object id: identifiers joined by dots.
fn is_object_id(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_ident)
}

/// Maps a SecSip field name (after its collection prefix) to a secsip field.
fn map_field(collection: &str, name: &LStr) -> R<String> {
    let raw = name.text.trim().to_ascii_lowercase();
    if raw.starts_with("ip.") || raw.starts_with("l4.") {
        return check_field(raw, name);
    }
    let rest = raw.strip_prefix("sip.").unwrap_or(&raw);
    if collection == "BODY" && (rest.is_empty() || rest == "body") {
        return Ok("sip.body".into());
    }
    if rest.is_empty() {
        return fail(
            name.start,
            format!("{collection}: needs a field name (e.g. {collection}:sip.from)"),
        );
    }
    let mapped = match rest {
        "request.method" | "method" => "sip.method".to_string(),
        "uri" | "request.uri" | "request_uri" | "ruri" => "sip.ruri".to_string(),
        "from.addr" => "ip.src".to_string(),
        "to.addr" => "ip.dst".to_string(),
        "response.status" | "response.code" | "status" => "sip.status".to_string(),
        "call-id" | "callid" | "call_id" => "sip.call_id".to_string(),
        "user-agent" | "user_agent" | "useragent" => "sip.ua".to_string(),
        _ => match rest.strip_prefix("headers.") {
            Some(h) => format!("sip.headers.{h}"),
            None => format!("sip.{rest}"),
        },
    };
    check_field(mapped, name)
}

fn check_field(f: String, name: &LStr) -> R<String> {
    let ok = f.split('.').all(|seg| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if ok {
        Ok(f)
    } else {
        fail(
            name.start,
            format!("`{}` is not a field name", name.text.trim()),
        )
    }
}

/// Parses a SecSip variable: `FIELDS:sip.from`, `&SIP:headers.date`, `rate`, `tr.count`.
fn parse_variable(v: &LStr) -> R<Operand> {
    let v = v.trim();
    let cs = v.chars();
    if cs.is_empty() {
        return fail(v.start, "empty variable");
    }
    let (amp, body) = if cs[0] == '&' {
        (true, v.slice(1, cs.len()))
    } else {
        (false, v.clone())
    };
    let bc = body.chars();
    let field = if let Some(colon) = bc.iter().position(|&c| c == ':') {
        let prefix: String = bc[..colon].iter().collect::<String>().to_ascii_uppercase();
        let collection = match prefix.as_str() {
            "FIELDS" | "FIELD" => "FIELDS",
            "MESSAGE_HEADERS" | "HEADERS" => "MESSAGE_HEADERS",
            "SIP" => "SIP",
            "BODY" => "BODY",
            _ => {
                return fail(
                    body.start,
                    format!(
                        "unknown variable collection `{}` (expected FIELDS, MESSAGE_HEADERS, SIP or BODY)",
                        bc[..colon].iter().collect::<String>()
                    ),
                )
            }
        };
        Some(map_field(collection, &body.slice(colon + 1, bc.len()))?)
    } else {
        let lower = body.text.to_ascii_lowercase();
        if lower.starts_with("sip.") || lower.starts_with("ip.") {
            Some(map_field("FIELDS", &body)?)
        } else {
            None
        }
    };
    Ok(match (field, amp) {
        (Some(f), false) => Operand::Field(f),
        (Some(f), true) => Operand::Len(f),
        (None, _) if !is_object_id(&body.text) => {
            return fail(
                body.start,
                format!(
                    "`{}` is neither a field (COLLECTION:name) nor an object name",
                    body.text
                ),
            )
        }
        (None, false) => Operand::Object(body.text.clone()),
        (None, true) => Operand::Count(body.text.clone()),
    })
}

/// A translated condition.
#[derive(Debug, Clone)]
enum Cond {
    Expr(String),
    /// `@normalize N` on the operand.
    Normalize(Operand, u64, Pos),
}

fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let mut parts = s.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// An expression string literal: `"` + the text with `\` and `"` escaped + `"`.
fn expr_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Translates `variable OPERATOR` where `op` is the operator string as written
/// (`"@eq 80"`, `"!^BYE$"`, `"!@in from_list"`).
fn translate_op(var: &Operand, var_pos: Pos, op: &LStr) -> R<Cond> {
    let cs = op.chars();
    let mut i = 0;
    while i < cs.len() && cs[i].is_whitespace() {
        i += 1;
    }
    let negate = i < cs.len() && cs[i] == '!';
    if negate {
        i += 1;
    }
    if i >= cs.len() {
        return fail(
            op.at(i.min(cs.len().saturating_sub(1))),
            "empty operator: expected @eq, @match... or a regex",
        );
    }
    if cs[i] == '@' {
        let name_start = i;
        let mut j = i + 1;
        while j < cs.len() && !cs[j].is_whitespace() {
            j += 1;
        }
        let name = op.slice(name_start, j);
        let arg = op.slice(j, cs.len()).trim();
        translate(var, var_pos, negate, &name, &arg)
    } else {
        // A bare regex: kept exactly as written after the `!`.
        let re = op.slice(i, cs.len());
        let name = LStr {
            text: "@match".into(),
            pos: vec![],
            start: op.at(i),
        };
        translate(var, var_pos, negate, &name, &re)
    }
}

/// Translates one condition; `name` is the operator with or without its `@`.
fn translate(var: &Operand, var_pos: Pos, negate: bool, name: &LStr, arg: &LStr) -> R<Cond> {
    let lname = name
        .text
        .trim()
        .trim_start_matches('@')
        .to_ascii_lowercase();
    let lhs = var.expr();
    let need_arg = |what: &str| -> R<()> {
        if arg.text.is_empty() {
            fail(name.start, format!("operator @{lname} needs {what}"))
        } else {
            Ok(())
        }
    };
    let neg = |e: String| if negate { format!("!({e})") } else { e };
    let cmp = |sym: &str| -> R<String> {
        need_arg("a value")?;
        let v = arg.text.as_str();
        let numeric_cmp = !matches!(sym, "==" | "!=");
        if (var.numeric() || numeric_cmp) && !is_number(v) {
            return fail(
                arg.start,
                format!("operator @{lname} on `{lhs}` compares numbers; `{v}` is not a number"),
            );
        }
        let rhs = if var.numeric() || (numeric_cmp && is_number(v)) {
            v.to_string()
        } else {
            expr_str(v)
        };
        Ok(format!("{lhs} {sym} {rhs}"))
    };
    let e = match lname.as_str() {
        "eq" | "streq" => cmp(if negate { "!=" } else { "==" })?,
        "ne" => cmp(if negate { "==" } else { "!=" })?,
        "gt" => neg(cmp(">")?),
        "ge" => neg(cmp(">=")?),
        "lt" => neg(cmp("<")?),
        "le" => neg(cmp("<=")?),
        "match" | "rx" | "regex" => {
            need_arg("a regex")?;
            if let Err(e) = regex::bytes::Regex::new(&arg.text) {
                let msg = e.to_string().lines().last().unwrap_or("").trim().to_string();
                return fail(arg.start, format!("bad regex `{}`: {msg}", arg.text));
            }
            neg(format!("{lhs} matches {}", expr_str(&arg.text)))
        }
        "contains" => {
            need_arg("a string")?;
            neg(format!("{lhs} contains {}", expr_str(&arg.text)))
        }
        "beginswith" | "startswith" => {
            need_arg("a string")?;
            neg(format!("{lhs} startswith {}", expr_str(&arg.text)))
        }
        "endswith" => {
            need_arg("a string")?;
            neg(format!("{lhs} endswith {}", expr_str(&arg.text)))
        }
        "in" => {
            need_arg("an object or list.ID")?;
            if !is_object_id(&arg.text) {
                return fail(arg.start, format!("operator @in takes an object name or list.ID, not `{}`", arg.text));
            }
            neg(format!("{lhs} in {}", arg.text))
        }
        "normalize" => {
            need_arg("a size in bytes")?;
            if negate {
                return fail(name.start, "@normalize cannot be negated");
            }
            let n: u64 = match arg.text.parse() {
                Ok(n) if n > 0 => n,
                _ => return fail(arg.start, format!("@normalize takes a size in bytes, not `{}`", arg.text)),
            };
            if matches!(var, Operand::Len(_) | Operand::Count(_)) {
                return fail(var_pos, "@normalize applies to a field or an object, not to a length (&)");
            }
            return Ok(Cond::Normalize(var.clone(), n, var_pos));
        }
        _ => {
            return fail(
                name.start,
                format!(
                    "unknown operator `{}` (expected @eq, @ne, @gt, @ge, @lt, @le, @match, @contains, @beginsWith, @endsWith, @in, @normalize, or a regex)",
                    name.text.trim()
                ),
            )
        }
    };
    Ok(Cond::Expr(e))
}

/// A TOML basic string.
fn toml_basic(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML literal string (`'...'`) when the text allows one, else a basic string.
fn toml_lit(s: &str) -> String {
    if s.chars()
        .any(|c| c == '\'' || ((c as u32) < 0x20 && c != '\t') || c == '\u{7f}')
    {
        toml_basic(s)
    } else {
        format!("'{s}'")
    }
}

fn toml_array(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| toml_basic(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// A comment line (control characters flattened).
fn comment(out: &mut String, text: &str) {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "# {}", flat.trim_end());
}

fn header(out: &mut String, source_name: &str, syntax: &str) {
    comment(
        out,
        &format!("Imported from {source_name} ({syntax}) by `secsip rules import`."),
    );
}

// ---------------------------------------------------------------------------------------
// Rule lines

mod lines {
    use super::*;

    #[derive(Debug, Clone)]
    struct Tok {
        s: LStr,
        quoted: bool,
        /// The `""WORD"` typo of the paper's Figure 3.
        doubled_quote: bool,
    }

    /// A logical line: physical lines joined at trailing backslashes.
    struct Logical {
        line: usize,
        text: String,
        chars: LStr,
    }

    fn logical_lines(text: &str) -> Vec<Logical> {
        let mut out = Vec::new();
        let mut cur: Option<Logical> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let raw = if line == 1 {
                raw.trim_start_matches('\u{feff}')
            } else {
                raw
            };
            let trimmed_end = raw.trim_end();
            let continues = trimmed_end.ends_with('\\');
            let body = if continues {
                &trimmed_end[..trimmed_end.len() - 1]
            } else {
                raw
            };
            if cur.is_none() {
                let t = body.trim_start();
                if !continues && (t.is_empty() || t.starts_with('#')) {
                    continue;
                }
                cur = Some(Logical {
                    line,
                    text: String::new(),
                    chars: LStr {
                        text: String::new(),
                        pos: vec![],
                        start: Pos { line, col: 1 },
                    },
                });
            }
            let l = cur.as_mut().expect("set above");
            if !l.text.is_empty() {
                l.text.push(' ');
                l.chars.text.push(' ');
                l.chars.pos.push(Pos { line, col: 1 });
            }
            l.text.push_str(body.trim());
            for (col, c) in body.chars().enumerate() {
                l.chars.text.push(c);
                l.chars.pos.push(Pos { line, col: col + 1 });
            }
            if !continues {
                out.push(cur.take().expect("set above"));
            }
        }
        if let Some(l) = cur {
            out.push(l);
        }
        out
    }

    fn tokenize(l: &LStr) -> R<Vec<Tok>> {
        let cs = l.chars();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < cs.len() {
            if cs[i].is_whitespace() {
                i += 1;
                continue;
            }
            if cs[i] == '"' {
                let open = i;
                let doubled = cs.get(i + 1) == Some(&'"')
                    && cs.get(i + 2).is_some_and(|c| !c.is_whitespace());
                i += if doubled { 2 } else { 1 };
                let mut s = LStr {
                    text: String::new(),
                    pos: vec![],
                    start: l.at(i),
                };
                loop {
                    match cs.get(i) {
                        None => {
                            return fail(l.at(open), "unterminated quoted string (no closing \")")
                        }
                        Some('"') => break,
                        Some('\\') if cs.get(i + 1) == Some(&'"') => {
                            s.text.push('"');
                            s.pos.push(l.at(i));
                            i += 2;
                        }
                        Some(&c) => {
                            s.text.push(c);
                            s.pos.push(l.at(i));
                            i += 1;
                        }
                    }
                }
                i += 1;
                toks.push(Tok {
                    s,
                    quoted: true,
                    doubled_quote: doubled,
                });
            } else {
                let a = i;
                while i < cs.len() && !cs[i].is_whitespace() {
                    i += 1;
                }
                toks.push(Tok {
                    s: l.slice(a, i),
                    quoted: false,
                    doubled_quote: false,
                });
            }
        }
        Ok(toks)
    }

    /// One `hold:` or `declare:`.
    #[derive(Debug, Clone)]
    pub(super) struct ObjDecl {
        pub id: String,
        pub kind: String,
        pub value: Option<String>,
        pub decrement: Option<u64>,
        pub period: Option<String>,
        pub pos: Pos,
    }

    #[derive(Debug, Clone)]
    enum Action {
        Verdict(&'static str, Pos),
        Hold(ObjDecl),
        Declare(ObjDecl),
    }

    fn is_action_word(t: &Tok) -> bool {
        let first =
            t.s.text
                .split(',')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
        matches!(
            first.as_str(),
            "drop" | "deny" | "accept" | "allow" | "reject" | "log"
        ) || first.starts_with("hold:")
            || first.starts_with("declare:")
    }

    /// Splits an action token at commas outside brackets.
    fn split_actions(t: &LStr) -> Vec<LStr> {
        let cs = t.chars();
        let mut out = Vec::new();
        let mut depth = 0i32;
        let mut a = 0;
        for (i, &c) in cs.iter().enumerate() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ',' if depth <= 0 => {
                    out.push(t.slice(a, i));
                    a = i + 1;
                }
                _ => {}
            }
        }
        out.push(t.slice(a, cs.len()));
        out.into_iter().filter(|s| !s.text.is_empty()).collect()
    }

    /// `NAME=CONTAINER[INNER]` after `hold:` / `declare:`; returns (name, container, inner).
    fn split_decl(s: &LStr, prefix_len: usize, what: &str) -> R<(LStr, LStr, LStr)> {
        let cs = s.chars();
        let syntax = if what == "hold" {
            "hold:NAME=set|list|bag[VARIABLE]"
        } else {
            "declare:NAME=counter[DECREMENT;PERIOD]"
        };
        let Some(eq) = cs.iter().position(|&c| c == '=') else {
            return fail(s.start, format!("expected {syntax}"));
        };
        let name = s.slice(prefix_len, eq);
        if !is_object_id(&name.text) {
            return fail(
                name.start,
                format!(
                    "`{}` is not an object name (letters, digits, _ and dots)",
                    name.text
                ),
            );
        }
        let Some(open) = cs[eq..].iter().position(|&c| c == '[').map(|p| p + eq) else {
            return fail(s.at(eq + 1), format!("expected {syntax}: no `[`"));
        };
        if cs.last() != Some(&']') {
            return fail(
                s.at(cs.len() - 1),
                format!("expected {syntax}: no closing `]`"),
            );
        }
        Ok((name, s.slice(eq + 1, open), s.slice(open + 1, cs.len() - 1)))
    }

    fn parse_action(a: &LStr) -> R<Action> {
        let lower = a.text.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "drop" | "deny" => Action::Verdict("drop", a.start),
            "accept" | "allow" => Action::Verdict("accept", a.start),
            "reject" => Action::Verdict("reject", a.start),
            "log" => Action::Verdict("log", a.start),
            _ if lower.starts_with("hold:") => {
                let (name, container, inner) = split_decl(a, 5, "hold")?;
                let kind = container.text.to_ascii_lowercase();
                if !matches!(kind.as_str(), "set" | "list" | "bag") {
                    let hint = if kind == "counter" { " (counters are declared with declare:NAME=counter[DEC;PERIOD])" } else { "" };
                    return fail(
                        container.start,
                        format!("bad container `{}`: hold takes set, list or bag{hint}", container.text),
                    );
                }
                let value = match parse_variable(&inner)? {
                    Operand::Field(f) => f,
                    _ => return fail(inner.start, format!("hold stores a message field (FIELDS:...), not `{}`", inner.text)),
                };
                Action::Hold(ObjDecl { id: name.text, kind, value: Some(value), decrement: None, period: None, pos: a.start })
            }
            _ if lower.starts_with("declare:") => {
                let (name, container, inner) = split_decl(a, 8, "declare")?;
                if !container.text.eq_ignore_ascii_case("counter") {
                    let hint = if matches!(container.text.to_ascii_lowercase().as_str(), "set" | "list" | "bag") {
                        " (containers are held with hold:NAME=CONTAINER[VARIABLE])"
                    } else {
                        ""
                    };
                    return fail(container.start, format!("bad container `{}`: declare takes counter[DECREMENT;PERIOD]{hint}", container.text));
                }
                let ic = inner.chars();
                let Some(semi) = ic.iter().position(|&c| c == ';' || c == ',') else {
                    return fail(inner.start, "counter takes [DECREMENT;PERIOD], e.g. counter[10;60]");
                };
                let dec = inner.slice(0, semi).trim();
                let per = inner.slice(semi + 1, ic.len()).trim();
                let Ok(decrement) = dec.text.parse::<u64>() else {
                    return fail(dec.start, format!("counter decrement `{}` is not a whole number", dec.text));
                };
                let period = match per.text.parse::<u64>() {
                    Ok(p) if p > 0 => format!("{p}s"),
                    _ => {
                        let t = per.text.to_ascii_lowercase();
                        let ok = t.len() > 1
                            && matches!(t.as_bytes()[t.len() - 1], b's' | b'm' | b'h')
                            && t[..t.len() - 1].parse::<u64>().is_ok_and(|p| p > 0);
                        if !ok {
                            return fail(per.start, format!("counter period `{}` is not a number of seconds", per.text));
                        }
                        t
                    }
                };
                Action::Declare(ObjDecl { id: name.text, kind: "counter".into(), value: None, decrement: Some(decrement), period: Some(period), pos: a.start })
            }
            _ => return fail(a.start, format!("unknown action `{}` (expected drop, accept, allow, reject, log, hold:..., declare:...)", a.text)),
        })
    }

    /// One parsed SecSip line.
    struct Line {
        line: usize,
        text: String,
        conds: Vec<Cond>,
        actions: Vec<Action>,
        doubled_quote: bool,
    }

    fn parse_line(l: &Logical) -> R<Line> {
        let mut toks = tokenize(&l.chars)?;
        let mut k = 0;
        // Optional label `R1:`.
        if let Some(t) = toks.first() {
            if !t.quoted
                && t.s.text.ends_with(':')
                && t.s.text.len() > 1
                && is_ident(&t.s.text[..t.s.text.len() - 1])
            {
                k = 1;
            }
        }
        match toks.get(k) {
            Some(t)
                if !t.quoted
                    && matches!(
                        t.s.text.to_ascii_lowercase().as_str(),
                        "secsip" | "secsiprule" | "secsipaction"
                    ) =>
            {
                k += 1
            }
            Some(t) => {
                return fail(
                    t.s.start,
                    format!(
                        "expected SecSip, SecSipRule or SecSipaction, found `{}`",
                        t.s.text
                    ),
                )
            }
            None => return fail(l.chars.start, "empty rule"),
        }
        let toks: Vec<Tok> = toks.drain(k..).collect();
        let mut line = Line {
            line: l.line,
            text: l.text.clone(),
            conds: vec![],
            actions: vec![],
            doubled_quote: false,
        };
        let mut i = 0;
        // Conditions.
        let mut after_and = false;
        while i < toks.len() {
            let t = &toks[i];
            if !t.quoted && is_action_word(t) {
                if after_and {
                    return fail(
                        t.s.start,
                        format!(
                            "expected a variable after `&&`, found the action `{}`",
                            t.s.text
                        ),
                    );
                }
                break;
            }
            if !t.quoted && t.s.text == "&&" {
                return fail(t.s.start, "`&&` without a condition before it");
            }
            let var = parse_variable(&t.s)?;
            let Some(op) = toks.get(i + 1) else {
                return fail(
                    t.s.start,
                    format!("variable `{}` has no operator after it", t.s.text),
                );
            };
            if !op.quoted && (op.s.text == "&&" || is_action_word(op)) {
                return fail(
                    op.s.start,
                    format!("variable `{}` has no operator after it", t.s.text),
                );
            }
            line.doubled_quote |= t.doubled_quote || op.doubled_quote;
            line.conds.push(translate_op(&var, t.s.start, &op.s)?);
            i += 2;
            after_and = false;
            match toks.get(i) {
                Some(n) if !n.quoted && n.s.text == "&&" => {
                    after_and = true;
                    i += 1;
                    if i == toks.len() {
                        return fail(n.s.start, "`&&` at the end of the line");
                    }
                }
                Some(n) if !n.quoted && is_action_word(n) => {}
                Some(n) => {
                    return fail(
                        n.s.start,
                        format!("expected `&&` or an action, found `{}`", n.s.text),
                    )
                }
                None => {}
            }
        }
        // Actions.
        for t in &toks[i..] {
            if !t.quoted && t.s.text == "&&" {
                return fail(t.s.start, "`&&` among the actions");
            }
            for a in split_actions(&t.s) {
                line.actions.push(parse_action(&a)?);
            }
        }
        Ok(line)
    }

    #[derive(Debug)]
    struct Obj {
        d: ObjDecl,
        normalize: Option<u64>,
        scope: Option<&'static str>,
    }

    fn describe(d: &ObjDecl) -> String {
        match (&d.value, &d.decrement, &d.period) {
            (Some(v), _, _) => format!("a {} of {v}", d.kind),
            (None, Some(dec), Some(p)) => format!("a counter[{dec};{p}]"),
            _ => d.kind.clone(),
        }
    }

    fn scope_of(id: &str, objs: &mut HashMap<String, Obj>) -> R<&'static str> {
        let (pos, parent, is_counter, value) = {
            let o = &objs[id];
            if let Some(s) = o.scope {
                return Ok(s);
            }
            (
                o.d.pos,
                id.rfind('.').map(|p| id[..p].to_string()),
                o.d.kind == "counter",
                o.d.value.clone(),
            )
        };
        let s = match parent {
            Some(p) => {
                if !objs.contains_key(&p) {
                    return fail(pos, format!("`{id}` is a child of `{p}`, which no hold: or declare: in this file defines"));
                }
                scope_of(&p, objs)?
            }
            None if is_counter => "global",
            None if value.as_deref() == Some("sip.via.branch") => "transaction",
            None => "dialog",
        };
        objs.get_mut(id).expect("present").scope = Some(s);
        Ok(s)
    }

    pub(super) fn import(text: &str, source_name: &str) -> R<String> {
        let mut parsed = Vec::new();
        for l in logical_lines(text) {
            parsed.push(parse_line(&l)?);
        }
        // Objects, in order of first appearance.
        let mut order: Vec<String> = Vec::new();
        let mut objs: HashMap<String, Obj> = HashMap::new();
        for line in &parsed {
            for a in &line.actions {
                let (Action::Hold(d) | Action::Declare(d)) = a else {
                    continue;
                };
                match objs.get(&d.id) {
                    Some(o) => {
                        if o.d.kind != d.kind
                            || o.d.value != d.value
                            || o.d.decrement != d.decrement
                            || o.d.period != d.period
                        {
                            return fail(
                                d.pos,
                                format!(
                                    "object `{}` is {} here but {} at line {}",
                                    d.id,
                                    describe(d),
                                    describe(&o.d),
                                    o.d.pos.line
                                ),
                            );
                        }
                    }
                    None => {
                        order.push(d.id.clone());
                        objs.insert(
                            d.id.clone(),
                            Obj {
                                d: d.clone(),
                                normalize: None,
                                scope: None,
                            },
                        );
                    }
                }
            }
        }
        for id in &order {
            scope_of(id, &mut objs)?;
        }
        // @normalize: set on objects, or remember a comment.
        let mut notes: HashMap<usize, Vec<String>> = HashMap::new();
        for line in &parsed {
            for c in &line.conds {
                let Cond::Normalize(target, n, pos) = c else {
                    continue;
                };
                let hit: Vec<String> = match target {
                    Operand::Object(o) => order.iter().filter(|id| *id == o).cloned().collect(),
                    Operand::Field(f) => order
                        .iter()
                        .filter(|id| objs[*id].d.value.as_deref() == Some(f.as_str()))
                        .cloned()
                        .collect(),
                    _ => unreachable!("rejected by translate"),
                };
                let what = target.expr();
                if hit.is_empty() {
                    notes.entry(line.line).or_default().push(format!(
                        "line {}: `@normalize {n}` on {what}: no object of this file holds it, so there is nothing to set \
                         (secsip bounds stored values per object with `normalize`, default 256)",
                        pos.line
                    ));
                } else {
                    for id in &hit {
                        objs.get_mut(id).expect("present").normalize = Some(*n);
                    }
                    notes.entry(line.line).or_default().push(format!(
                        "line {}: `@normalize {n}` on {what}: set as `normalize = {n}` on object(s) {}",
                        pos.line,
                        hit.join(", ")
                    ));
                }
            }
        }

        let mut out = String::new();
        header(&mut out, source_name, "SecSip rule lines");
        comment(
            &mut out,
            "Rule ids are secsip-<line of the SecSip rule>; each description quotes that line.",
        );
        for id in &order {
            let o = &objs[id];
            out.push('\n');
            let _ = writeln!(out, "[[object]]");
            let _ = writeln!(out, "id = {}", toml_basic(id));
            let _ = writeln!(out, "scope = {}", toml_basic(o.scope.expect("computed")));
            let _ = writeln!(out, "kind = {}", toml_basic(&o.d.kind));
            if let Some(v) = &o.d.value {
                let _ = writeln!(out, "value = {}", toml_basic(v));
            }
            if let Some(d) = o.d.decrement {
                let _ = writeln!(out, "decrement = {d}");
            }
            if let Some(p) = &o.d.period {
                let _ = writeln!(out, "period = {}", toml_basic(p));
            }
            if let Some(n) = o.normalize {
                let _ = writeln!(out, "normalize = {n}");
            }
        }
        for line in &parsed {
            let exprs: Vec<&str> = line
                .conds
                .iter()
                .filter_map(|c| {
                    if let Cond::Expr(e) = c {
                        Some(e.as_str())
                    } else {
                        None
                    }
                })
                .collect();
            let mut hold = Vec::new();
            let mut count = Vec::new();
            let mut held_fields: Vec<String> = Vec::new();
            let mut verdicts: Vec<(&'static str, Pos)> = Vec::new();
            for a in &line.actions {
                match a {
                    Action::Verdict(v, p) => verdicts.push((v, *p)),
                    Action::Hold(d) => {
                        if !hold.contains(&d.id) {
                            hold.push(d.id.clone());
                        }
                        let f = d.value.clone().expect("hold has a value");
                        if !held_fields.contains(&f) {
                            held_fields.push(f);
                        }
                    }
                    Action::Declare(d) => {
                        if !count.contains(&d.id) {
                            count.push(d.id.clone());
                        }
                    }
                }
            }
            let line_notes = notes.remove(&line.line).unwrap_or_default();
            if exprs.is_empty() && line.actions.is_empty() {
                // Only @normalize: no rule.
                out.push('\n');
                for n in &line_notes {
                    comment(&mut out, n);
                }
                continue;
            }
            let mut action = "none";
            let mut folded_log = false;
            for (v, p) in &verdicts {
                match (action, *v) {
                    ("none", v) => action = v,
                    (a, "log") if a != "log" => folded_log = true,
                    ("log", v) => {
                        folded_log = true;
                        action = v;
                    }
                    (a, v) if a == v => {}
                    (a, v) => {
                        return fail(
                            *p,
                            format!("conflicting actions `{a}` and `{v}` on one rule"),
                        )
                    }
                }
            }
            out.push('\n');
            for n in &line_notes {
                comment(&mut out, n);
            }
            if line.doubled_quote {
                comment(
                    &mut out,
                    "The source has a doubled opening quote (\"\"INVITE\", the typo of the SecSip paper's Figure 3); read as one quote.",
                );
            }
            if folded_log {
                comment(
                    &mut out,
                    &format!(
                        "The source also asks to `log`; a secsip rule has one action: `{action}`."
                    ),
                );
            }
            let when = if !exprs.is_empty() {
                Some(exprs.join(" && "))
            } else if !held_fields.is_empty() {
                comment(&mut out, "No condition in the source: the rule fires whenever the held field is present.");
                Some(held_fields.join(" && "))
            } else {
                comment(
                    &mut out,
                    "No condition in the source: the rule applies to every message.",
                );
                None
            };
            if verdicts.is_empty() && hold.is_empty() && count.is_empty() {
                comment(&mut out, "The source line has no action.");
            }
            let _ = writeln!(out, "[[rule]]");
            let _ = writeln!(out, "id = {}", toml_basic(&format!("secsip-{}", line.line)));
            let _ = writeln!(out, "description = {}", toml_lit(&line.text));
            if let Some(w) = when {
                let _ = writeln!(out, "when = {}", toml_lit(&w));
            }
            let _ = writeln!(out, "action = {}", toml_basic(action));
            if !hold.is_empty() {
                let _ = writeln!(out, "hold = {}", toml_array(&hold));
            }
            if !count.is_empty() {
                let _ = writeln!(out, "count = {}", toml_array(&count));
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// VeTo XML

mod xml {
    use super::*;
    use roxmltree::{Document, Node};

    fn name(n: Node) -> String {
        n.tag_name().name().to_ascii_lowercase().replace('-', "_")
    }

    fn pos_at(doc: &Document, byte: usize) -> Pos {
        let p = doc.text_pos_at(byte);
        Pos {
            line: p.row as usize,
            col: p.col as usize,
        }
    }

    fn node_pos(doc: &Document, n: Node) -> Pos {
        pos_at(doc, n.range().start)
    }

    fn elements<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
        n.children().filter(|c| c.is_element())
    }

    /// The trimmed text of an element, with character positions when the source text has
    /// no entities (else every character maps to the start of the text).
    fn text_of(doc: &Document, n: Node) -> LStr {
        let mut out = LStr {
            text: String::new(),
            pos: vec![],
            start: node_pos(doc, n),
        };
        let src = doc.input_text();
        for c in n.children().filter(|c| c.is_text()) {
            let t = c.text().unwrap_or("");
            let r = c.range();
            let raw = src.get(r.clone()).unwrap_or("");
            if out.text.is_empty() {
                out.start = pos_at(doc, r.start);
            }
            if raw == t {
                for (off, ch) in t.char_indices() {
                    out.text.push(ch);
                    out.pos.push(pos_at(doc, r.start + off));
                }
            } else {
                let p = pos_at(doc, r.start);
                for ch in t.chars() {
                    out.text.push(ch);
                    out.pos.push(p);
                }
            }
        }
        let t = out.trim();
        if t.pos.is_empty() {
            LStr {
                start: out.start,
                ..t
            }
        } else {
            t
        }
    }

    /// An attribute (case-insensitive name) or else a child element's text.
    fn attr_or_child(doc: &Document, n: Node, key: &str) -> Option<LStr> {
        for a in n.attributes() {
            if a.name().eq_ignore_ascii_case(key) {
                let r = a.range_value();
                let raw = doc.input_text().get(r.clone()).unwrap_or("");
                let p0 = pos_at(doc, r.start);
                let pos = if raw == a.value() {
                    a.value()
                        .char_indices()
                        .map(|(o, _)| pos_at(doc, r.start + o))
                        .collect()
                } else {
                    vec![p0; a.value().chars().count()]
                };
                return Some(
                    LStr {
                        text: a.value().to_string(),
                        pos,
                        start: p0,
                    }
                    .trim(),
                );
            }
        }
        elements(n)
            .find(|c| name(*c) == key)
            .map(|c| text_of(doc, c))
    }

    fn assertion(doc: &Document, a: Node) -> R<Cond> {
        let apos = node_pos(doc, a);
        for c in elements(a) {
            if !matches!(name(c).as_str(), "variable" | "operator" | "value") {
                return fail(node_pos(doc, c), format!("unsupported element <{}> in an assertion (expected variable, operator, value)", c.tag_name().name()));
            }
        }
        let Some(var) = attr_or_child(doc, a, "variable") else {
            return fail(apos, "assertion without a <variable>");
        };
        let Some(op) = attr_or_child(doc, a, "operator") else {
            return fail(apos, "assertion without an <operator>");
        };
        let value = attr_or_child(doc, a, "value").unwrap_or(LStr {
            text: String::new(),
            pos: vec![],
            start: apos,
        });
        let operand = parse_variable(&var)?;
        let oc = op.chars();
        let negate = oc.first() == Some(&'!');
        let name = if negate {
            op.slice(1, oc.len())
        } else {
            op.clone()
        };
        if name.text.is_empty() {
            return fail(op.start, "empty <operator>");
        }
        let cond = translate(&operand, var.start, negate, &name, &value)?;
        if let Cond::Normalize(..) = cond {
            return fail(name.start, "@normalize has no meaning in a VeTo assertion");
        }
        Ok(cond)
    }

    fn exprs(conds: Vec<Cond>) -> Vec<String> {
        conds
            .into_iter()
            .filter_map(|c| if let Cond::Expr(e) = c { Some(e) } else { None })
            .collect()
    }

    struct Def {
        id: String,
        event: String,
        when: String,
    }

    struct Rule {
        id: String,
        block: String,
        /// The `<definition>` named, and the rule's first event (to pick among several).
        definition: Option<(String, String)>,
        when: String,
        action: &'static str,
        line: usize,
    }

    fn block_id(doc: &Document, b: Node, prefix: &str) -> String {
        match attr_or_child(doc, b, "id").or_else(|| attr_or_child(doc, b, "name")) {
            Some(s) if !s.text.is_empty() => s.text,
            _ => format!("{prefix}{}", node_pos(doc, b).line),
        }
    }

    fn definition_block(
        doc: &Document,
        b: Node,
        defs: &mut Vec<Def>,
        by_block: &mut HashMap<String, Vec<(String, String)>>,
    ) -> R<()> {
        let id = block_id(doc, b, "secsip-def-");
        let conditionals: Vec<Node> = elements(b).filter(|c| name(*c) == "conditional").collect();
        let conditionals = if conditionals.is_empty() {
            vec![b]
        } else {
            conditionals
        };
        let mut made = Vec::new();
        for c in conditionals {
            let mut conds = Vec::new();
            let mut events = Vec::new();
            for e in elements(c) {
                match name(e).as_str() {
                    "assertion" => conds.push(assertion(doc, e)?),
                    "event_definition" | "event" => {
                        let t = text_of(doc, e);
                        if !is_object_id(&t.text) {
                            return fail(t.start, format!("`{}` is not an event name", t.text));
                        }
                        events.push(t.text);
                    }
                    "conditional" | "id" | "name" | "description" | "comment" if c == b => {}
                    "description" | "comment" => {}
                    _ => return fail(node_pos(doc, e), format!("unsupported element <{}> in a definition's conditional (expected assertion, event_definition)", e.tag_name().name())),
                }
            }
            if events.is_empty() {
                return fail(
                    node_pos(doc, c),
                    "conditional without an <event_definition>",
                );
            }
            if conds.is_empty() {
                return fail(node_pos(doc, c), "conditional without an <assertion>");
            }
            let when = exprs(conds).join(" && ");
            for ev in events {
                made.push((ev, when.clone()));
            }
        }
        for (k, (event, when)) in made.into_iter().enumerate() {
            let did = if k == 0 {
                id.clone()
            } else {
                format!("{id}-{}", k + 1)
            };
            by_block
                .entry(id.clone())
                .or_default()
                .push((did.clone(), event.clone()));
            defs.push(Def {
                id: did,
                event,
                when,
            });
        }
        Ok(())
    }

    fn verdict(word: &LStr) -> R<&'static str> {
        Ok(match word.text.to_ascii_lowercase().as_str() {
            "drop" | "deny" => "drop",
            "accept" | "allow" => "accept",
            "reject" => "reject",
            "log" => "log",
            "none" => "none",
            _ => {
                return fail(
                    word.start,
                    format!(
                        "unknown action `{}` (expected drop, accept, allow, reject, log)",
                        word.text
                    ),
                )
            }
        })
    }

    fn veto_block(doc: &Document, b: Node, rules: &mut Vec<Rule>) -> R<()> {
        let id = block_id(doc, b, "secsip-");
        let definition = attr_or_child(doc, b, "definition")
            .map(|d| d.text)
            .filter(|d| !d.is_empty());
        let rule_nodes: Vec<Node> = elements(b).filter(|c| name(*c) == "rule").collect();
        let rule_nodes = if rule_nodes.is_empty() {
            vec![b]
        } else {
            rule_nodes
        };
        for (k, r) in rule_nodes.into_iter().enumerate() {
            let rpos = node_pos(doc, r);
            let mut events = Vec::new();
            let mut conds = Vec::new();
            let mut action: Option<(&'static str, Pos)> = None;
            for e in elements(r) {
                let en = name(e);
                let this = match en.as_str() {
                    "event" | "event_definition" => {
                        let t = text_of(doc, e);
                        if !is_object_id(&t.text) {
                            return fail(t.start, format!("`{}` is not an event name", t.text));
                        }
                        events.push(t.text);
                        None
                    }
                    "assertion" => {
                        conds.push(assertion(doc, e)?);
                        None
                    }
                    "action" => {
                        let t = text_of(doc, e);
                        Some((verdict(&t)?, t.start))
                    }
                    "drop" | "deny" | "accept" | "allow" | "reject" | "log" => {
                        let p = node_pos(doc, e);
                        Some((verdict(&LStr { text: en.clone(), pos: vec![], start: p })?, p))
                    }
                    "definition" | "id" | "name" | "rule" if r == b => None,
                    "description" | "comment" => None,
                    _ => return fail(node_pos(doc, e), format!("unsupported element <{}> in a veto rule (expected event, assertion, drop, accept, log, action)", e.tag_name().name())),
                };
                if let Some((v, p)) = this {
                    match action {
                        Some((a, _)) if a != v => {
                            return fail(
                                p,
                                format!("conflicting actions `{a}` and `{v}` in one veto rule"),
                            )
                        }
                        _ => action = Some((v, p)),
                    }
                }
            }
            if events.is_empty() && conds.is_empty() {
                return fail(rpos, "veto rule without an <event> or an <assertion>");
            }
            let mut parts: Vec<String> = events.iter().map(|e| format!("event.{e}")).collect();
            parts.extend(exprs(conds));
            rules.push(Rule {
                id: if k == 0 {
                    id.clone()
                } else {
                    format!("{id}-{}", k + 1)
                },
                block: id.clone(),
                definition: definition
                    .clone()
                    .map(|d| (d, events.first().cloned().unwrap_or_default())),
                when: parts.join(" && "),
                action: action.map(|a| a.0).unwrap_or("none"),
                line: rpos.line,
            });
        }
        Ok(())
    }

    pub(super) fn import(text: &str, source_name: &str) -> R<String> {
        let doc = match Document::parse(text) {
            Ok(d) => d,
            Err(e) => {
                let p = e.pos();
                let msg = e.to_string();
                let msg = msg
                    .strip_suffix(&format!(" at {p}"))
                    .unwrap_or(&msg)
                    .to_string();
                return fail(
                    Pos {
                        line: p.row as usize,
                        col: p.col as usize,
                    },
                    format!("malformed XML: {msg}"),
                );
            }
        };
        let mut defs = Vec::new();
        let mut by_block: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut rules = Vec::new();
        for n in doc.descendants().filter(|n| n.is_element()) {
            // Blocks nested in blocks are not blocks of their own.
            let nested = n.ancestors().skip(1).any(|a| {
                a.is_element()
                    && matches!(
                        name(a).as_str(),
                        "definition_block" | "veto_block" | "vetoblock"
                    )
            });
            if nested {
                continue;
            }
            match name(n).as_str() {
                "definition_block" => definition_block(&doc, n, &mut defs, &mut by_block)?,
                "veto_block" | "vetoblock" => veto_block(&doc, n, &mut rules)?,
                _ => {}
            }
        }
        if defs.is_empty() && rules.is_empty() {
            return fail(
                node_pos(&doc, doc.root_element()),
                "no <definition_block> or <veto_block> in this XML",
            );
        }
        let mut out = String::new();
        header(&mut out, source_name, "SecSip VeTo XML");
        for d in &defs {
            out.push('\n');
            let _ = writeln!(out, "[[definition]]");
            let _ = writeln!(out, "id = {}", toml_basic(&d.id));
            let _ = writeln!(out, "event = {}", toml_basic(&d.event));
            let _ = writeln!(out, "when = {}", toml_lit(&d.when));
        }
        for r in &rules {
            out.push('\n');
            let _ = writeln!(out, "[[rule]]");
            let _ = writeln!(out, "id = {}", toml_basic(&r.id));
            let _ = writeln!(
                out,
                "description = {}",
                toml_lit(&format!(
                    "VeTo block {} ({source_name} line {})",
                    r.block, r.line
                ))
            );
            if let Some((d, ev)) = &r.definition {
                let resolved = match by_block.get(d) {
                    Some(list) => list
                        .iter()
                        .find(|(_, e)| e == ev)
                        .or(list.first())
                        .map(|(id, _)| id.clone())
                        .unwrap_or_else(|| d.to_string()),
                    None => d.to_string(),
                };
                let _ = writeln!(out, "definition = {}", toml_basic(&resolved));
            }
            let _ = writeln!(out, "when = {}", toml_lit(&r.when));
            let _ = writeln!(out, "action = {}", toml_basic(r.action));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIG3: &str = include_str!("../../tests/secsip/fig3.rules");
    const FIG6: &str = include_str!("../../tests/secsip/fig6.rules");
    const FIG7: &str = include_str!("../../tests/secsip/fig7.rules");
    const FIG8: &str = include_str!("../../tests/secsip/fig8.rules");
    const OPTIONS_DATE: &str = include_str!("../../tests/secsip/options-date.xml");

    fn conv(text: &str, name: &str) -> (String, toml::Value) {
        let out = import(text, name).unwrap_or_else(|e| panic!("{e}"));
        let v: toml::Value =
            toml::from_str(&out).unwrap_or_else(|e| panic!("not TOML: {e}\n{out}"));
        (out, v)
    }

    fn table<'a>(v: &'a toml::Value, key: &str) -> &'a Vec<toml::Value> {
        v.get(key)
            .and_then(|t| t.as_array())
            .unwrap_or_else(|| panic!("no [[{key}]]"))
    }

    fn s<'a>(t: &'a toml::Value, key: &str) -> &'a str {
        t.get(key)
            .and_then(|x| x.as_str())
            .unwrap_or_else(|| panic!("no string {key} in {t:?}"))
    }

    fn arr(t: &toml::Value, key: &str) -> Vec<String> {
        t.get(key)
            .and_then(|x| x.as_array())
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }

    fn err(text: &str) -> ImportError {
        match import(text, "t.rules") {
            Ok(out) => panic!("expected an error, got:\n{out}"),
            Err(e) => e,
        }
    }

    #[test]
    fn detects_format() {
        assert_eq!(detect("  \n<rules/>"), SecSipFormat::VetoXml);
        assert_eq!(
            detect("\u{feff}<?xml version='1.0'?><a/>"),
            SecSipFormat::VetoXml
        );
        assert_eq!(detect("SecSip rate \"@gt 1\" drop"), SecSipFormat::Lines);
        assert_eq!(detect(""), SecSipFormat::Lines);
    }

    #[test]
    fn figure3_counter_and_typo() {
        let (out, v) = conv(FIG3, "fig3.rules");
        assert!(
            out.starts_with("# Imported from fig3.rules (SecSip rule lines)"),
            "{out}"
        );
        assert!(out.contains("doubled opening quote"), "{out}");
        let objs = table(&v, "object");
        assert_eq!(objs.len(), 1);
        assert_eq!(s(&objs[0], "id"), "rate");
        assert_eq!(s(&objs[0], "scope"), "global");
        assert_eq!(s(&objs[0], "kind"), "counter");
        assert_eq!(objs[0]["decrement"].as_integer(), Some(10));
        assert_eq!(s(&objs[0], "period"), "60s");
        let rules = table(&v, "rule");
        assert_eq!(rules.len(), 2);
        assert_eq!(s(&rules[0], "id"), "secsip-5");
        assert_eq!(
            s(&rules[0], "description"),
            r#"R1: secsip "FIELDS:sip.method" ""INVITE" declare:rate=counter[10;60]"#
        );
        assert_eq!(s(&rules[0], "when"), r#"sip.method matches "INVITE""#);
        assert_eq!(s(&rules[0], "action"), "none");
        assert_eq!(arr(&rules[0], "count"), ["rate"]);
        assert!(rules[0].get("hold").is_none());
        assert_eq!(s(&rules[1], "id"), "secsip-6");
        assert_eq!(s(&rules[1], "when"), "rate == 80");
        assert_eq!(s(&rules[1], "action"), "drop");
    }

    #[test]
    fn figure6_declarations() {
        let (_, v) = conv(FIG6, "fig6.rules");
        let objs = table(&v, "object");
        assert_eq!(objs.len(), 2);
        assert_eq!(
            (
                s(&objs[0], "id"),
                s(&objs[0], "scope"),
                s(&objs[0], "kind"),
                s(&objs[0], "value")
            ),
            ("from_list", "dialog", "list", "sip.from")
        );
        assert_eq!(
            (
                s(&objs[1], "id"),
                s(&objs[1], "scope"),
                s(&objs[1], "kind"),
                s(&objs[1], "value")
            ),
            ("from_list.ip_addr", "dialog", "list", "ip.src")
        );
        let rules = table(&v, "rule");
        assert_eq!(s(&rules[0], "when"), "sip.from");
        assert_eq!(arr(&rules[0], "hold"), ["from_list"]);
        assert_eq!(s(&rules[1], "when"), "ip.src");
        assert_eq!(arr(&rules[1], "hold"), ["from_list.ip_addr"]);
        assert_eq!(s(&rules[1], "action"), "none");
    }

    #[test]
    fn figure7_bye_attack() {
        let (_, v) = conv(FIG7, "fig7.rules");
        let objs = table(&v, "object");
        assert_eq!(objs.len(), 1);
        assert_eq!(
            (
                s(&objs[0], "id"),
                s(&objs[0], "scope"),
                s(&objs[0], "kind"),
                s(&objs[0], "value")
            ),
            ("from_list", "dialog", "set", "sip.from")
        );
        let rules = table(&v, "rule");
        assert_eq!(rules.len(), 2);
        assert_eq!(s(&rules[0], "id"), "secsip-9");
        assert_eq!(s(&rules[0], "when"), r#"!(sip.method matches "^BYE$")"#);
        assert_eq!(s(&rules[0], "action"), "none");
        assert_eq!(arr(&rules[0], "hold"), ["from_list"]);
        assert_eq!(s(&rules[1], "id"), "secsip-10");
        assert_eq!(
            s(&rules[1], "when"),
            r#"sip.method matches "^BYE$" && !(sip.from in from_list)"#
        );
        assert_eq!(s(&rules[1], "action"), "drop");
        assert_eq!(
            s(&rules[1], "description"),
            r#"SecSipRule "FIELDS:sip.method" "^BYE$" && "FIELDS:sip.from" "!@in from_list" drop"#
        );
    }

    #[test]
    fn figure8_invite_flood() {
        let (_, v) = conv(FIG8, "fig8.rules");
        let objs = table(&v, "object");
        assert_eq!(objs.len(), 2);
        assert_eq!(
            (
                s(&objs[0], "id"),
                s(&objs[0], "scope"),
                s(&objs[0], "kind"),
                s(&objs[0], "value")
            ),
            ("tr", "transaction", "set", "sip.via.branch")
        );
        assert_eq!(
            (s(&objs[1], "id"), s(&objs[1], "scope"), s(&objs[1], "kind")),
            ("tr.count", "transaction", "counter")
        );
        assert_eq!(objs[1]["decrement"].as_integer(), Some(10));
        assert_eq!(s(&objs[1], "period"), "60s");
        assert!(objs[1].get("value").is_none());
        let rules = table(&v, "rule");
        assert_eq!(rules.len(), 3);
        assert_eq!(s(&rules[0], "when"), "sip.via.branch");
        assert_eq!(arr(&rules[0], "hold"), ["tr"]);
        assert_eq!(s(&rules[1], "when"), r#"sip.method matches "^INVITE$""#);
        assert_eq!(arr(&rules[1], "count"), ["tr.count"]);
        assert_eq!(s(&rules[1], "action"), "none");
        assert_eq!(s(&rules[2], "when"), "tr.count > 15");
        assert_eq!(s(&rules[2], "action"), "drop");
    }

    #[test]
    fn veto_xml_options_date() {
        let (out, v) = conv(OPTIONS_DATE, "options-date.xml");
        assert!(
            out.starts_with("# Imported from options-date.xml (SecSip VeTo XML)"),
            "{out}"
        );
        let defs = table(&v, "definition");
        assert_eq!(defs.len(), 1);
        assert_eq!(s(&defs[0], "id"), "Options_Def");
        assert_eq!(s(&defs[0], "event"), "ev_Options");
        assert_eq!(s(&defs[0], "when"), r#"sip.method matches "^OPTIONS""#);
        let rules = table(&v, "rule");
        assert_eq!(rules.len(), 1);
        assert_eq!(s(&rules[0], "id"), "Date_BufferOverflow");
        assert_eq!(s(&rules[0], "definition"), "Options_Def");
        assert_eq!(
            s(&rules[0], "when"),
            "event.ev_Options && len(sip.headers.date) >= 120"
        );
        assert_eq!(s(&rules[0], "action"), "drop");
        assert!(v.get("object").is_none());
    }

    #[test]
    fn veto_xml_variants() {
        let xml = r#"<Config>
  <Definition_Block>
    <id>Inv</id>
    <Conditional>
      <assertion variable="SIP:request.method" operator="@match" value="INVITE"/>
      <assertion><variable>FIELDS:sip.ua</variable><operator>!@beginsWith</operator><value>good</value></assertion>
      <Event_Definition global="true">ev_Inv</Event_Definition>
    </Conditional>
    <conditional>
      <assertion><variable>SIP:request.method</variable><operator>eq</operator><value>BYE</value></assertion>
      <event_definition>ev_Bye</event_definition>
    </conditional>
  </Definition_Block>
  <VETO_BLOCK id="a"><definition>Inv</definition>
    <rule><event>ev_Bye</event><action>DROP</action></rule>
    <rule><event>ev_Inv</event><assertion><variable>FIELDS:sip.max_forwards</variable><operator>@lt</operator><value>3</value></assertion><log/></rule>
  </VETO_BLOCK>
  <veto_block id="b"><event>ev_Inv</event><accept/></veto_block>
</Config>"#;
        let (_, v) = conv(xml, "v.xml");
        let defs = table(&v, "definition");
        assert_eq!(defs.len(), 2);
        assert_eq!(s(&defs[0], "id"), "Inv");
        assert_eq!(
            s(&defs[0], "when"),
            r#"sip.method matches "INVITE" && !(sip.ua startswith "good")"#
        );
        assert_eq!(s(&defs[1], "id"), "Inv-2");
        assert_eq!(s(&defs[1], "event"), "ev_Bye");
        assert_eq!(s(&defs[1], "when"), r#"sip.method == "BYE""#);
        let rules = table(&v, "rule");
        assert_eq!(rules.len(), 3);
        assert_eq!(
            (
                s(&rules[0], "id"),
                s(&rules[0], "definition"),
                s(&rules[0], "when"),
                s(&rules[0], "action")
            ),
            ("a", "Inv-2", "event.ev_Bye", "drop")
        );
        assert_eq!(
            (
                s(&rules[1], "id"),
                s(&rules[1], "definition"),
                s(&rules[1], "when"),
                s(&rules[1], "action")
            ),
            ("a-2", "Inv", "event.ev_Inv && sip.max_forwards < 3", "log")
        );
        assert_eq!(
            (
                s(&rules[2], "id"),
                s(&rules[2], "when"),
                s(&rules[2], "action")
            ),
            ("b", "event.ev_Inv", "accept")
        );
        assert!(rules[2].get("definition").is_none());
        // A bare block as the root.
        let (_, v) = conv(
            r#"<veto_block id="x"><rule><event>e</event><drop/></rule></veto_block>"#,
            "x.xml",
        );
        assert_eq!(s(&table(&v, "rule")[0], "when"), "event.e");
    }

    #[test]
    fn operators_and_variables() {
        let cases: &[(&str, &str)] = &[
            (
                r#"SecSip "FIELDS:sip.status" "@ge 500" drop"#,
                "sip.status >= 500",
            ),
            (
                r#"SecSip "FIELDS:sip.method" "@eq INVITE" drop"#,
                r#"sip.method == "INVITE""#,
            ),
            (
                r#"SecSip "FIELDS:sip.ruri.user" "@eq 1234" drop"#,
                r#"sip.ruri.user == "1234""#,
            ),
            (
                r#"SecSip "FIELDS:sip.method" "!@eq INVITE" drop"#,
                r#"sip.method != "INVITE""#,
            ),
            (
                r#"SecSip "FIELDS:sip.method" "@ne ACK" drop"#,
                r#"sip.method != "ACK""#,
            ),
            (r#"SecSip rate "!@gt 5" drop"#, "!(rate > 5)"),
            (
                r#"SecSip "SIP:request.uri" "@contains %00" drop"#,
                r#"sip.ruri contains "%00""#,
            ),
            (
                r#"SecSip "FIELDS:sip.uri" "@beginsWith sips:" drop"#,
                r#"sip.ruri startswith "sips:""#,
            ),
            (
                r#"SecSip "MESSAGE_HEADERS:sip.ua" "@endsWith x" drop"#,
                r#"sip.ua endswith "x""#,
            ),
            (
                r#"SecSip "FIELDS:sip.from.addr" "@in list.blocked" drop"#,
                "ip.src in list.blocked",
            ),
            (
                r#"SecSip "SIP:headers.X-Foo" "@match a\"b" drop"#,
                r#"sip.headers.x-foo matches "a\"b""#,
            ),
            (
                r#"SecSip "FIELDS:sip.from" "^sip:\d+@[^']+$" drop"#,
                r#"sip.from matches "^sip:\\d+@[^']+$""#,
            ),
            (
                r#"SecSip "&FIELDS:sip.via" "@gt 200" drop"#,
                "len(sip.via) > 200",
            ),
            (r#"SecSip &from_list "@gt 3" drop"#, "count(from_list) > 3"),
            (
                r#"SecSip "BODY:" "@contains <script" drop"#,
                r#"sip.body contains "<script""#,
            ),
            (
                r#"SecSip sip.call-id "@eq x" && "FIELDS:sip.to.addr" "@eq 10.0.0.1" drop"#,
                r#"sip.call_id == "x" && ip.dst == "10.0.0.1""#,
            ),
        ];
        for (line, want) in cases {
            let (out, v) = conv(line, "t.rules");
            assert_eq!(s(&table(&v, "rule")[0], "when"), *want, "{line}\n{out}");
        }
    }

    #[test]
    fn actions_and_lines() {
        // Label, keyword case, continuation, comma-separated actions, log folded into drop.
        let text = "# c\n\nr9: SECSIPRULE \"FIELDS:sip.method\" \"^REGISTER$\" \\\n   drop,log\nSecSip sip.method \"^OPTIONS$\" allow\n";
        let (out, v) = conv(text, "t.rules");
        let rules = table(&v, "rule");
        assert_eq!(s(&rules[0], "id"), "secsip-3");
        assert_eq!(s(&rules[0], "action"), "drop");
        assert_eq!(
            s(&rules[0], "description"),
            r#"r9: SECSIPRULE "FIELDS:sip.method" "^REGISTER$" drop,log"#
        );
        assert!(out.contains("also asks to `log`"), "{out}");
        assert_eq!(s(&rules[1], "action"), "accept");
        assert_eq!(s(&rules[1], "when"), r#"sip.method matches "^OPTIONS$""#);
        // A description with a single quote goes out as a basic string.
        let (_, v) = conv(r#"SecSip "FIELDS:sip.ua" "it's" log"#, "t.rules");
        assert_eq!(
            s(&table(&v, "rule")[0], "description"),
            r#"SecSip "FIELDS:sip.ua" "it's" log"#
        );
        assert_eq!(s(&table(&v, "rule")[0], "when"), r#"sip.ua matches "it's""#);
        // Unconditional drop has no `when`.
        let (out, v) = conv("SecSip drop", "t.rules");
        assert!(table(&v, "rule")[0].get("when").is_none());
        assert!(out.contains("every message"), "{out}");
    }

    #[test]
    fn normalize() {
        let text = "SecSip FIELDS:sip.uri \"@normalize 1024\"\n";
        let (out, v) = conv(text, "n.rules");
        assert!(
            v.get("rule").is_none() && v.get("object").is_none(),
            "{out}"
        );
        assert!(
            out.contains("# line 1: `@normalize 1024` on sip.ruri: no object"),
            "{out}"
        );
        let text = "SecSip hold:uris=set[FIELDS:sip.uri]\nSecSip FIELDS:sip.uri \"@normalize 1024\"\nSecSip hold:f=bag[FIELDS:sip.from]\nSecSip f \"@normalize 64\"\n";
        let (out, v) = conv(text, "n.rules");
        let objs = table(&v, "object");
        assert_eq!(objs[0]["normalize"].as_integer(), Some(1024), "{out}");
        assert_eq!(objs[1]["normalize"].as_integer(), Some(64), "{out}");
        assert_eq!(s(&objs[1], "kind"), "bag");
        assert_eq!(table(&v, "rule").len(), 2);
    }

    #[test]
    fn errors_lines() {
        let e = err("SecSip rate \"@foo 3\" drop");
        assert_eq!((e.line, e.col), (1, 14), "{e}");
        assert!(e.message.contains("unknown operator `@foo`"), "{e}");
        assert_eq!(e.to_string(), format!("t.rules:1:14: {}", e.message));

        let e = err("# x\nSecSip \"FIELDS:sip.method \"^BYE$\" drop\nSecSip \"FIELDS:sip.ua");
        assert_eq!((e.line, e.col), (3, 8), "{e}");
        assert!(e.message.contains("unterminated"), "{e}");

        let e = err("SecSip hold:x=stack[FIELDS:sip.from]");
        assert_eq!((e.line, e.col), (1, 15), "{e}");
        assert!(e.message.contains("bad container `stack`"), "{e}");

        let e = err("SecSip declare:c=set[1;2]");
        assert_eq!((e.line, e.col), (1, 18), "{e}");

        let e = err("SecSip \"FIELDS:sip.method\" \"^(BYE\" drop");
        assert_eq!((e.line, e.col), (1, 29), "{e}");
        assert!(e.message.contains("bad regex"), "{e}");

        let e = err("SecSip \"FOO:sip.method\" \"^BYE$\" drop");
        assert_eq!((e.line, e.col), (1, 9), "{e}");

        let e = err("SecSip rate \"@gt many\" drop");
        assert_eq!((e.line, e.col), (1, 18), "{e}");

        let e = err("SecSip rate \"@gt 1\" explode");
        assert_eq!((e.line, e.col), (1, 21), "{e}");
        assert!(e.message.contains("expected `&&` or an action"), "{e}");

        let e = err("Rule rate \"@gt 1\" drop");
        assert_eq!((e.line, e.col), (1, 1), "{e}");

        let e = err("SecSip rate drop");
        assert_eq!((e.line, e.col), (1, 13), "{e}");

        let e = err("SecSip hold:a.b=set[FIELDS:sip.from]");
        assert!(e.message.contains("child of `a`"), "{e}");

        let e = err("SecSip hold:a=list[FIELDS:sip.from]\nSecSip rate \"@gt 1\" hold:a=set[FIELDS:sip.from]");
        assert_eq!((e.line, e.col), (2, 21), "{e}");
        assert!(e.message.contains("at line 1"), "{e}");

        let e = err("SecSip rate \"@gt 1\" drop accept");
        assert_eq!((e.line, e.col), (1, 26), "{e}");
    }

    #[test]
    fn errors_xml() {
        let e = err("<rules>\n  <veto_block id=\"a\">\n  </rules>");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.starts_with("malformed XML"), "{e}");
        assert!(!e.message.contains(" at 3:"), "{e}");

        let xml = "<rules>\n <definition_block id=\"d\">\n  <conditional>\n   <assertion>\n    <variable>SIP:request.method</variable>\n    <operator>@like</operator>\n    <value>x</value>\n   </assertion>\n   <event_definition>e</event_definition>\n  </conditional>\n </definition_block>\n</rules>";
        let e = err(xml);
        assert_eq!((e.line, e.col), (6, 15), "{e}");
        assert!(e.message.contains("unknown operator `@like`"), "{e}");

        let e = err("<rules><definition_block id=\"d\"><conditional><assertion><variable>SIP:request.method</variable><operator>@eq</operator><value>x</value></assertion></conditional></definition_block></rules>");
        assert!(e.message.contains("event_definition"), "{e}");

        let e = err("<rules>\n<veto_block id=\"v\"><rule><event>e</event><explode/></rule></veto_block></rules>");
        assert_eq!((e.line, e.col), (2, 42), "{e}");

        let e = err("<rules><nothing/></rules>");
        assert!(e.message.contains("no <definition_block>"), "{e}");
    }

    #[test]
    fn toml_strings_roundtrip() {
        for x in ["plain", "it's", "a\"b\\c", "tab\there", "nl\nx", "\u{1}"] {
            for enc in [toml_basic(x), toml_lit(x)] {
                let v: toml::Value =
                    toml::from_str(&format!("k = {enc}")).unwrap_or_else(|e| panic!("{enc}: {e}"));
                assert_eq!(v["k"].as_str(), Some(x));
            }
        }
        assert_eq!(expr_str(r#"a\"b"#), r#""a\\\"b""#);
    }
}
