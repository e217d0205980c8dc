//! The `when` expression syntax: text to an AST with byte offsets (grammar in rules/README.md).
//!
//! Offsets are byte positions in the expression string; the compiler adds the position of the
//! string in its TOML file so every error reads `file:line:col`.

use std::fmt;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `matches` (regex)
    Matches,
    /// `contains`
    Contains,
    /// `startswith`
    StartsWith,
    /// `endswith`
    EndsWith,
    /// `in` (list or object membership)
    In,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(&self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Matches => "matches",
            CmpOp::Contains => "contains",
            CmpOp::StartsWith => "startswith",
            CmpOp::EndsWith => "endswith",
            CmpOp::In => "in",
        }
    }
}

/// What a name is wrapped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wrap {
    /// The value itself.
    None,
    /// `len(x)` / `&x`: byte length.
    Len,
    /// `count(x)` / `#x`: number of values or entries.
    Count,
    /// `lower(x)`: ASCII lower case.
    Lower,
}

/// Which values of a multi-valued field a test must hold for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Quant {
    /// At least one (the default, and `any(x)`).
    #[default]
    Any,
    /// Every one, and there is at least one (`all(x)`).
    All,
}

/// One side of a test.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A dotted name (field, object, `list.X`, `event.X`), possibly wrapped.
    Name {
        /// The name as written.
        name: String,
        /// Wrapping function.
        wrap: Wrap,
        /// `any(...)` / `all(...)`.
        quant: Quant,
        /// Offset of the name.
        at: usize,
    },
    /// A string literal (escapes resolved).
    Str {
        /// The value.
        value: String,
        /// Offset of the opening quote.
        at: usize,
    },
    /// An integer literal.
    Num {
        /// The value.
        value: i64,
        /// Offset.
        at: usize,
    },
}

impl Operand {
    /// Offset of the operand in the expression.
    pub fn at(&self) -> usize {
        match self {
            Operand::Name { at, .. } | Operand::Str { at, .. } | Operand::Num { at, .. } => *at,
        }
    }
}

/// An expression tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// One must hold.
    Or(Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// `left` alone (true when present / non-zero), or `left op right`.
    Test {
        /// Left operand.
        left: Operand,
        /// Operator and right operand.
        cmp: Option<(CmpOp, Operand)>,
    },
}

/// A syntax error at a byte offset of the expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the expression.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Num(i64),
    LParen,
    RParen,
    And,
    Or,
    Not,
    Amp,
    Hash,
    Op(CmpOp),
    End,
}

/// Bytes that may appear in a dotted name: fields, object ids, list ids (`scanner-ua`).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, m: &str| SyntaxError { at, message: m.to_string() };
    while i < b.len() {
        let c = b[i];
        let start = i;
        let two = b.get(i..i + 2);
        let tok = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'#' => {
                i += 1;
                Tok::Hash
            }
            b'&' if two == Some(b"&&") => {
                i += 2;
                Tok::And
            }
            b'&' => {
                i += 1;
                Tok::Amp
            }
            b'|' if two == Some(b"||") => {
                i += 2;
                Tok::Or
            }
            b'=' if two == Some(b"==") => {
                i += 2;
                Tok::Op(CmpOp::Eq)
            }
            b'!' if two == Some(b"!=") => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            b'!' => {
                i += 1;
                Tok::Not
            }
            b'>' | b'<' => {
                let eq = b.get(i + 1) == Some(&b'=');
                i += 1 + eq as usize;
                Tok::Op(match (c, eq) {
                    (b'>', false) => CmpOp::Gt,
                    (b'>', true) => CmpOp::Ge,
                    (b'<', false) => CmpOp::Lt,
                    _ => CmpOp::Le,
                })
            }
            b'"' => {
                i += 1;
                let mut s = Vec::new();
                loop {
                    match b.get(i) {
                        None => return Err(err(start, "unterminated string: add the closing \"")),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            match b.get(i + 1) {
                                Some(&e @ (b'"' | b'\\')) => s.push(e),
                                // Regexes need their backslashes: keep unknown escapes as written.
                                Some(&e) => {
                                    s.push(b'\\');
                                    s.push(e);
                                }
                                None => return Err(err(start, "unterminated string: add the closing \"")),
                            }
                            i += 2;
                        }
                        Some(&x) => {
                            s.push(x);
                            i += 1;
                        }
                    }
                }
                Tok::Str(String::from_utf8_lossy(&s).into_owned())
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i < b.len() && is_name_byte(b[i]) && b[i] != b'-' {
                    return Err(err(start, "a number must not run into letters (quote strings: \"...\")"));
                }
                let v = src[start..i].parse::<i64>().map_err(|_| err(start, "number too large"))?;
                Tok::Num(v)
            }
            b'-' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let v = src[start..i].parse::<i64>().map_err(|_| err(start, "number too large"))?;
                Tok::Num(v)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && is_name_byte(b[i]) {
                    i += 1;
                }
                let word = &src[start..i];
                match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "matches" => Tok::Op(CmpOp::Matches),
                    "contains" => Tok::Op(CmpOp::Contains),
                    "startswith" => Tok::Op(CmpOp::StartsWith),
                    "endswith" => Tok::Op(CmpOp::EndsWith),
                    "in" => Tok::Op(CmpOp::In),
                    _ => Tok::Name(word.trim_end_matches('.').to_string()),
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(start, &format!("unexpected character '{ch}'")));
            }
        };
        out.push((tok, start));
    }
    out.push((Tok::End, src.len()));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Nesting deeper than this is refused: rule files are input too.
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn at(&self) -> usize {
        self.toks[self.pos].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError { at: self.at(), message: message.into() })
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.and()?];
        while *self.peek() == Tok::Or {
            self.bump();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.pop().expect("one item") } else { Expr::Or(items) })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.unary()?];
        while *self.peek() == Tok::And {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 { items.pop().expect("one item") } else { Expr::And(items) })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        let r = match self.peek() {
            Tok::Not => {
                self.bump();
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Tok::LParen => {
                self.bump();
                let e = self.or()?;
                if *self.peek() != Tok::RParen {
                    return self.err("expected ')'");
                }
                self.bump();
                Ok(e)
            }
            _ => self.test(),
        };
        self.depth -= 1;
        r
    }

    fn test(&mut self) -> Result<Expr, SyntaxError> {
        let left = self.operand()?;
        if let Tok::Op(op) = *self.peek() {
            self.bump();
            let right = self.operand()?;
            return Ok(Expr::Test { left, cmp: Some((op, right)) });
        }
        Ok(Expr::Test { left, cmp: None })
    }

    fn name(&mut self, wrap: Wrap) -> Result<Operand, SyntaxError> {
        match self.bump() {
            (Tok::Name(name), at) => Ok(Operand::Name { name, wrap, quant: Quant::Any, at }),
            (_, at) => Err(SyntaxError { at, message: "expected a field or object name".into() }),
        }
    }

    fn operand(&mut self) -> Result<Operand, SyntaxError> {
        let (tok, at) = self.bump();
        match tok {
            Tok::Str(value) => Ok(Operand::Str { value, at }),
            Tok::Num(value) => Ok(Operand::Num { value, at }),
            Tok::Amp => self.name(Wrap::Len),
            Tok::Hash => self.name(Wrap::Count),
            Tok::Name(name) if matches!(name.as_str(), "any" | "all") && *self.peek() == Tok::LParen => {
                self.bump();
                let inner = self.operand()?;
                if *self.peek() != Tok::RParen {
                    return self.err(format!("expected ')' to close {name}("));
                }
                self.bump();
                let quant = if name == "all" { Quant::All } else { Quant::Any };
                match inner {
                    Operand::Name { wrap: Wrap::Count, at, .. } => {
                        Err(SyntaxError { at, message: format!("count(...) is one number per message: {name}(...) does not apply to it") })
                    }
                    Operand::Name { name, wrap, quant: Quant::Any, at } => Ok(Operand::Name { name, wrap, quant, at }),
                    other => Err(SyntaxError { at: other.at(), message: format!("{name}(...) takes a field, len(field) or lower(field)") }),
                }
            }
            Tok::Name(name) => {
                let wrap = match name.as_str() {
                    "len" => Some(Wrap::Len),
                    "count" => Some(Wrap::Count),
                    "lower" => Some(Wrap::Lower),
                    _ => None,
                };
                match (wrap, self.peek()) {
                    (Some(w), Tok::LParen) => {
                        self.bump();
                        let o = self.name(w)?;
                        if *self.peek() != Tok::RParen {
                            return self.err(format!("expected ')' to close {name}("));
                        }
                        self.bump();
                        Ok(o)
                    }
                    _ => Ok(Operand::Name { name, wrap: Wrap::None, quant: Quant::Any, at }),
                }
            }
            Tok::End => Err(SyntaxError { at, message: "expression ends where a value was expected".into() }),
            other => Err(SyntaxError { at, message: format!("expected a value, found {}", describe(&other)) }),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Name(n) => format!("'{n}'"),
        Tok::Str(_) => "a string".into(),
        Tok::Num(n) => n.to_string(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::And => "'&&'".into(),
        Tok::Or => "'||'".into(),
        Tok::Not => "'!'".into(),
        Tok::Amp => "'&'".into(),
        Tok::Hash => "'#'".into(),
        Tok::Op(o) => format!("'{}'", o.as_str()),
        Tok::End => "the end".into(),
    }
}

/// Parses one `when` expression.
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0, depth: 0 };
    if *p.peek() == Tok::End {
        return p.err("empty expression");
    }
    let e = p.or()?;
    if *p.peek() != Tok::End {
        let what = describe(p.peek());
        return p.err(format!("unexpected {what} after a complete expression (missing '&&' or '||'?)"));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, at: usize) -> Operand {
        Operand::Name { name: n.into(), wrap: Wrap::None, quant: Quant::Any, at }
    }

    #[test]
    fn any_and_all() {
        let e = parse(r#"all(lower(sip.contact.host)) == "a""#).unwrap();
        assert!(matches!(e, Expr::Test { left: Operand::Name { wrap: Wrap::Lower, quant: Quant::All, at: 10, .. }, .. }), "{e:?}");
        let e = parse("any(len(sip.headers.ANY)) > 3").unwrap();
        assert!(matches!(e, Expr::Test { left: Operand::Name { wrap: Wrap::Len, quant: Quant::Any, .. }, .. }), "{e:?}");
        assert!(parse("all(count(sip.via)) > 3").unwrap_err().message.contains("one number"));
        assert!(parse("all(all(sip.via)) > 3").unwrap_err().message.contains("takes a field"));
        assert!(parse("all(\"x\")").unwrap_err().message.contains("takes a field"));
        // A field may be called `all` as long as no parenthesis follows.
        assert!(matches!(parse("all").unwrap(), Expr::Test { left: Operand::Name { .. }, cmp: None }));
    }

    #[test]
    fn precedence_not_and_or() {
        let e = parse(r#"!a || b && c == "x""#).unwrap();
        match e {
            Expr::Or(v) => {
                assert!(matches!(&v[0], Expr::Not(_)));
                match &v[1] {
                    Expr::And(w) => assert_eq!(w.len(), 2),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn operands_and_wrappers() {
        let e = parse(r#"len(sip.headers.date) >= 120"#).unwrap();
        assert_eq!(
            e,
            Expr::Test {
                left: Operand::Name { name: "sip.headers.date".into(), wrap: Wrap::Len, quant: Quant::Any, at: 4 },
                cmp: Some((CmpOp::Ge, Operand::Num { value: 120, at: 25 }))
            }
        );
        let e = parse("&sip.headers.date >= 120").unwrap();
        assert!(matches!(e, Expr::Test { left: Operand::Name { wrap: Wrap::Len, .. }, .. }));
        let e = parse("#sip.via > 3").unwrap();
        assert!(matches!(e, Expr::Test { left: Operand::Name { wrap: Wrap::Count, .. }, .. }));
        let e = parse(r#"lower(sip.ua) startswith "friendly""#).unwrap();
        assert!(matches!(e, Expr::Test { left: Operand::Name { wrap: Wrap::Lower, .. }, cmp: Some((CmpOp::StartsWith, _)) }));
        let e = parse("sip.ua in list.scanner-ua").unwrap();
        assert_eq!(e, Expr::Test { left: name("sip.ua", 0), cmp: Some((CmpOp::In, name("list.scanner-ua", 10))) });
        let e = parse("tr.count > -1").unwrap();
        assert!(matches!(e, Expr::Test { cmp: Some((CmpOp::Gt, Operand::Num { value: -1, .. })), .. }));
    }

    #[test]
    fn words_and_symbols_are_the_same_operators() {
        for src in ["a and not b or c", "a && !b || c"] {
            match parse(src).unwrap() {
                Expr::Or(v) => {
                    assert!(matches!(&v[0], Expr::And(w) if w.len() == 2 && matches!(w[1], Expr::Not(_))), "{src}");
                    assert!(matches!(&v[1], Expr::Test { .. }), "{src}");
                }
                other => panic!("{src}: {other:?}"),
            }
        }
    }

    #[test]
    fn strings_keep_regex_escapes() {
        let e = parse(r#"sip.ua matches "^a\.b \"q\" \\""#).unwrap();
        match e {
            Expr::Test { cmp: Some((_, Operand::Str { value, .. })), .. } => assert_eq!(value, r#"^a\.b "q" \"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "empty"),
            ("sip.method ==", 13, "ends where a value"),
            (r#"sip.method == "INVITE"#, 14, "unterminated"),
            ("(a && b", 7, "expected ')'"),
            ("a b", 2, "after a complete expression"),
            ("a == == b", 5, "expected a value"),
            ("a $ b", 2, "unexpected character '$'"),
            ("len(3)", 4, "expected a field"),
            ("12ab", 0, "must not run into letters"),
        ];
        for (src, at, msg) in cases {
            let e = parse(src).unwrap_err();
            assert_eq!(e.at, *at, "{src}: {e:?}");
            assert!(e.message.contains(msg), "{src}: {}", e.message);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let src = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&src).unwrap_err().message.contains("nested too deeply"));
        let src = format!("{}a", "!".repeat(10_000));
        assert!(parse(&src).is_err());
    }

    #[test]
    fn arbitrary_text_never_panics() {
        use proptest::prelude::*;
        proptest!(|(s in "[ -~]{0,80}")| { let _ = parse(&s); });
    }
}
