//! The compiled rule set: what the compiler produces and the evaluator runs.

use super::expr::{CmpOp, Quant, Wrap};
use super::fields::Field;
use super::lists::List;
use aho_corasick::AhoCorasick;
use regex::bytes::RegexSet;
use std::path::PathBuf;

/// Index of a field slot (each distinct field read by the rule set has one).
pub type Slot = u32;

/// Where an object's containers live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One container per transaction (per engine).
    Transaction,
    /// One container per dialog (per engine).
    Dialog,
    /// One per address, aggregated to these prefix lengths (shared host table).
    Source {
        /// IPv4 prefix length.
        v4: u8,
        /// IPv6 prefix length.
        v6: u8,
        /// Which address of the message.
        addr: AddrSel,
    },
    /// One per value of a field, e.g. per user (shared host table).
    Key {
        /// The field.
        slot: Slot,
    },
    /// One for everything (shared host table).
    Global,
}

/// Which address keys a `source` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrSel {
    /// `ip.src`.
    Src,
    /// `ip.dst`.
    Dst,
    /// The SIP client: `ip.src` of requests, `ip.dst` of responses.
    Client,
    /// The SIP server: `ip.dst` of requests, `ip.src` of responses.
    Server,
}

impl Scope {
    /// True for scopes kept in the shared host table.
    pub fn is_shared(&self) -> bool {
        matches!(self, Scope::Source { .. } | Scope::Key { .. } | Scope::Global)
    }
    /// Name as written in rule files.
    pub fn name(&self) -> &'static str {
        match self {
            Scope::Transaction => "transaction",
            Scope::Dialog => "dialog",
            Scope::Source { .. } => "source",
            Scope::Key { .. } => "key",
            Scope::Global => "global",
        }
    }
}

/// What an object holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjKind {
    /// Distinct values.
    Set,
    /// Values in order, repeats kept.
    List,
    /// Values with counts.
    Bag,
    /// A leaky counter.
    Counter {
        /// Subtracted every period.
        decrement: u32,
        /// Period in nanoseconds.
        period_ns: u64,
        /// The value never exceeds this (so a rate limit passes `decrement` per period
        /// once exceeded instead of dropping everything while the excess lasts).
        cap: u32,
    },
    /// Approximate distinct count, reset every window.
    Distinct {
        /// Window in nanoseconds.
        window_ns: u64,
    },
}

impl ObjKind {
    /// Name as written in rule files.
    pub fn name(&self) -> &'static str {
        match self {
            ObjKind::Set => "set",
            ObjKind::List => "list",
            ObjKind::Bag => "bag",
            ObjKind::Counter { .. } => "counter",
            ObjKind::Distinct { .. } => "distinct",
        }
    }
    /// True for containers of values (set, list, bag).
    pub fn is_container(&self) -> bool {
        matches!(self, ObjKind::Set | ObjKind::List | ObjKind::Bag)
    }
}

/// A stateful object.
#[derive(Clone, Debug)]
pub struct Object {
    /// Its id (`from_list`, `tr.count`).
    pub id: String,
    /// Where its containers live.
    pub scope: Scope,
    /// What it holds.
    pub kind: ObjKind,
    /// The field whose value `hold` stores.
    pub value: Option<Slot>,
    /// Parent object, for dotted ids.
    pub parent: Option<u32>,
    /// Values per container.
    pub max_entries: usize,
    /// Bytes of a value kept.
    pub normalize: usize,
    /// Hash of the definition: state is keyed by it, so a changed definition starts fresh
    /// after a reload while an unchanged one keeps its state.
    pub fingerprint: u64,
    /// Counter or distinct slot in the host table (shared scopes only).
    pub host_slot: usize,
}

/// What a firing rule does to the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing (updates objects only).
    None,
    /// Forward and stop evaluating (allow lists).
    Accept,
    /// Discard.
    Drop,
    /// Discard and answer with a SIP response.
    Reject {
        /// Status code.
        status: u16,
    },
    /// Discard and ban the source.
    Ban {
        /// Ban length in nanoseconds.
        duration_ns: u64,
    },
    /// Forward and emit an event.
    Log,
}

impl Action {
    /// True when the action ends evaluation.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Action::Accept | Action::Drop | Action::Reject { .. } | Action::Ban { .. })
    }
    /// Name as written in rule files.
    pub fn name(&self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Accept => "accept",
            Action::Drop => "drop",
            Action::Reject { .. } => "reject",
            Action::Ban { .. } => "ban",
            Action::Log => "log",
        }
    }
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Node {
    /// All hold.
    And(Box<[Node]>),
    /// One holds.
    Or(Box<[Node]>),
    /// Negation.
    Not(Box<Node>),
    /// One test.
    Atom(u32),
}

/// One test, the leaves of conditions.
#[derive(Clone, Debug)]
pub enum Atom {
    /// A string test answered by a multi-pattern matcher before rules run.
    Pre,
    /// A lone field: present / non-zero / true.
    Truthy {
        /// The field.
        slot: Slot,
        /// `len`/`count` wrapper.
        wrap: Wrap,
        /// Which values.
        quant: Quant,
    },
    /// A numeric comparison of a field, its length or its count with a constant.
    Num {
        /// The field.
        slot: Slot,
        /// `None`, `Len` or `Count`.
        wrap: Wrap,
        /// Comparison.
        op: CmpOp,
        /// Constant.
        value: i64,
        /// Which values.
        quant: Quant,
    },
    /// Address equality or CIDR membership.
    Ip {
        /// The field.
        slot: Slot,
        /// Networks.
        nets: super::lists::IpRanges,
        /// Which values.
        quant: Quant,
    },
    /// Membership of a field's value in a list.
    InList {
        /// The field.
        slot: Slot,
        /// The list.
        list: u32,
        /// Which values.
        quant: Quant,
    },
    /// Membership of a field's value in an object's container.
    InObject {
        /// The field.
        slot: Slot,
        /// The object.
        object: u32,
        /// Which values.
        quant: Quant,
    },
    /// A string test that must hold for every value (`all(...)`): answered when the rule
    /// runs, not by the multi-pattern matchers, which say only whether some value matched.
    StrAll {
        /// The field.
        slot: Slot,
        /// Lower-case each value first.
        lower: bool,
        /// The test.
        test: StrTest,
    },
    /// A counter's value, a container's entry count or a distinct estimate, compared.
    ObjNum {
        /// The object.
        object: u32,
        /// Comparison.
        op: CmpOp,
        /// Constant.
        value: i64,
    },
    /// An event raised by a definition.
    Event(u32),
}

/// One string test on one value.
#[derive(Clone, Debug)]
pub enum StrTest {
    /// A literal, anchored.
    Literal(Vec<u8>, Anchor),
    /// A regex.
    Regex(regex::bytes::Regex),
}

impl StrTest {
    /// True when `v` passes.
    pub fn holds(&self, v: &[u8]) -> bool {
        match self {
            StrTest::Literal(l, Anchor::Whole) => v == l.as_slice(),
            StrTest::Literal(l, Anchor::Start) => v.starts_with(l),
            StrTest::Literal(l, Anchor::End) => v.ends_with(l),
            StrTest::Literal(l, Anchor::Anywhere) => memchr::memmem::find(v, l).is_some(),
            StrTest::Regex(r) => r.is_match(v),
        }
    }
}

/// What a pre-matched string test checks about where a literal matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The whole value.
    Whole,
    /// At the start.
    Start,
    /// At the end.
    End,
    /// Anywhere.
    Anywhere,
}

/// One Aho-Corasick automaton over every literal tested on one field.
#[derive(Debug)]
pub struct LiteralMatcher {
    /// The field.
    pub slot: Slot,
    /// Lower-case the value first (`lower(field)`).
    pub lower: bool,
    /// The automaton.
    pub ac: AhoCorasick,
    /// Per pattern: (atom, anchor).
    pub patterns: Vec<(u32, Anchor)>,
}

/// One regex set over every regex tested on one field.
#[derive(Debug)]
pub struct RegexMatcher {
    /// The field.
    pub slot: Slot,
    /// Lower-case the value first.
    pub lower: bool,
    /// The set.
    pub set: RegexSet,
    /// Per regex: its atom.
    pub atoms: Vec<u32>,
}

/// Ordered comparisons of one value with constants, sorted so that the comparisons that
/// hold for a value are found by binary search.
#[derive(Clone, Debug, Default)]
pub struct Thresholds {
    /// (c, atom), sorted: the atom holds when the value is greater than c.
    pub gt: Vec<(i64, u32)>,
    /// (c, atom), sorted: the atom holds when the value is less than c.
    pub lt: Vec<(i64, u32)>,
    /// (c, atom), sorted: the atom holds when the value equals c.
    pub eq: Vec<(i64, u32)>,
}

impl Thresholds {
    /// Adds `value OP c` answered by `atom`; false (nothing added) for `!=` and non-comparisons.
    pub fn push(&mut self, op: CmpOp, c: i64, atom: u32) -> bool {
        // v >= c is v > c - 1 and v <= c is v < c + 1.
        match op {
            CmpOp::Gt => self.gt.push((c, atom)),
            CmpOp::Ge if c == i64::MIN => self.lt.push((i64::MAX, atom)),
            CmpOp::Ge => self.gt.push((c - 1, atom)),
            CmpOp::Lt => self.lt.push((c, atom)),
            CmpOp::Le if c == i64::MAX => self.gt.push((i64::MIN, atom)),
            CmpOp::Le => self.lt.push((c + 1, atom)),
            CmpOp::Eq => self.eq.push((c, atom)),
            _ => return false,
        }
        true
    }

    /// Sorts; call once after the last push.
    pub fn sort(&mut self) {
        self.gt.sort_unstable();
        self.lt.sort_unstable();
        self.eq.sort_unstable();
    }

    /// The atoms that hold for value `v` (`Ge i64::MIN` and `Le i64::MAX` are off by one at
    /// the extreme value, which no field or object takes).
    pub fn holding(&self, v: i64) -> impl Iterator<Item = u32> + '_ {
        // Usually nothing holds (thresholds are far from ordinary values): say so in O(1).
        let gt = match self.gt.first() {
            Some(&(c, _)) if c < v => &self.gt[..self.gt.partition_point(|&(c, _)| c < v)],
            _ => &[],
        };
        let lt = match self.lt.last() {
            Some(&(c, _)) if c > v => &self.lt[self.lt.partition_point(|&(c, _)| c <= v)..],
            _ => &[],
        };
        let eq = match (self.eq.first(), self.eq.last()) {
            (Some(&(lo, _)), Some(&(hi, _))) if lo <= v && v <= hi => &self.eq[self.eq.partition_point(|&(c, _)| c < v)..],
            _ => &[],
        };
        gt.iter().chain(lt).map(|&(_, a)| a).chain(eq.iter().take_while(move |&&(c, _)| c == v).map(|&(_, a)| a))
    }
}

/// Every ordered comparison of one field (or its length or count) with a constant: the
/// field is read once per message.
#[derive(Clone, Debug)]
pub struct NumIndex {
    /// The field.
    pub slot: Slot,
    /// `None`, `Len` or `Count`.
    pub wrap: Wrap,
    /// The comparisons.
    pub tests: Thresholds,
}

/// Every comparison of one object's value (counter, entries, distinct estimate) with a
/// constant. The value is read once per message before rules run, and again after each
/// rule that updates the object, so the comparisons that trigger rules are always known.
#[derive(Clone, Debug)]
pub struct ObjIndex {
    /// The object.
    pub object: u32,
    /// Bit k: a rule of bucket k has one of these comparisons as its trigger (the value is
    /// read only for messages of those buckets).
    pub buckets: u32,
    /// The comparisons.
    pub tests: Thresholds,
}

/// Every address test of one field (`ip.src == "198.51.100.7"`, `== "2001:db8::/48"`).
#[derive(Clone, Debug, Default)]
pub struct IpIndex {
    /// The field.
    pub slot: Slot,
    /// Per IPv4 prefix length: (network, atom), sorted.
    pub v4: Vec<(u8, Vec<(u32, u32)>)>,
    /// Per IPv6 prefix length: (network, atom), sorted.
    pub v6: Vec<(u8, Vec<(u128, u32)>)>,
}

/// A definition or a rule, compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// True for definitions (they raise `event`).
    pub is_definition: bool,
    /// Event raised (definitions).
    pub event: Option<u32>,
    /// Condition.
    pub when: Node,
    /// The condition as written.
    pub when_text: String,
    /// Action.
    pub action: Action,
    /// Reason phrase of a reject.
    pub reason: String,
    /// Monitor mode: count and log, do not act.
    pub monitor: bool,
    /// Emit an event line when it fires.
    pub log: bool,
    /// Objects to hold the current value into.
    pub hold: Vec<u32>,
    /// Counters to increment.
    pub count: Vec<u32>,
    /// Label for event lines.
    pub tag: Option<String>,
    /// 1 (high) to 3 (low).
    pub severity: u8,
    /// What it stops.
    pub description: String,
    /// File it came from.
    pub file: PathBuf,
    /// Line of its table in that file.
    pub line: usize,
    /// Methods it can apply to (None: all messages); used by the method index.
    pub methods: Option<Vec<crate::sip::Method>>,
    /// Responses only.
    pub responses_only: bool,
    /// Requests only.
    pub requests_only: bool,
    /// An atom answered before rules run (a string test, or a numeric or address test of a
    /// field) that must hold for the rule to hold (the trigger), if any.
    pub trigger: Option<u32>,
}

impl Rule {
    /// A rule with no condition, no action and default settings, to be filled in.
    pub fn new(id: &str, when_text: &str, file: PathBuf, line: usize) -> Rule {
        Rule {
            id: id.to_string(),
            is_definition: false,
            event: None,
            when: Node::And(Box::new([])),
            when_text: when_text.to_string(),
            action: Action::None,
            reason: String::new(),
            monitor: false,
            log: false,
            hold: vec![],
            count: vec![],
            tag: None,
            severity: 2,
            description: String::new(),
            file,
            line,
            methods: None,
            responses_only: false,
            requests_only: false,
            trigger: None,
        }
    }
}

/// Number of method buckets: one per [`crate::sip::Method`] plus one for responses.
pub const BUCKETS: usize = 16;
/// The responses bucket.
pub const RESPONSE_BUCKET: usize = 15;

/// A compiled, validated, scheduled rule set. Immutable; engines share it through an `Arc`.
#[derive(Debug)]
pub struct RuleSet {
    /// Definitions and rules in schedule order.
    pub rules: Vec<Rule>,
    /// Lists.
    pub lists: Vec<List>,
    /// Objects.
    pub objects: Vec<Object>,
    /// Event names.
    pub events: Vec<String>,
    /// Fields read, by slot.
    pub fields: Vec<Field>,
    /// Field names, by slot.
    pub field_names: Vec<String>,
    /// Tests.
    pub atoms: Vec<Atom>,
    /// Literal automata.
    pub literal_matchers: Vec<LiteralMatcher>,
    /// Regex sets.
    pub regex_matchers: Vec<RegexMatcher>,
    /// Numeric comparisons, by field.
    pub num_index: Vec<NumIndex>,
    /// Address tests, by field.
    pub ip_index: Vec<IpIndex>,
    /// Comparisons of objects, by object.
    pub obj_index: Vec<ObjIndex>,
    /// Per bucket: bitset of rules evaluated whatever matched (no trigger).
    pub always: Vec<Vec<u64>>,
    /// Per bucket: bitset of rules that belong to it.
    pub member: Vec<Vec<u64>>,
    /// Per pre-matched atom: the rules it triggers.
    pub triggers: Vec<Vec<u32>>,
    /// Files compiled, in load order.
    pub files: Vec<PathBuf>,
    /// Counter slots used in the host table.
    pub host_counters: usize,
    /// Distinct slots used in the host table.
    pub host_distincts: usize,
    /// Per rule, the id its bans carry in the host table: the index, unless the management
    /// store gives ids that stay the same across rule sets (a ban outlives the set that set it).
    pub ban_ids: Vec<u32>,
}

impl RuleSet {
    /// An empty rule set: every message passes to the engine's own policies.
    pub fn empty() -> RuleSet {
        RuleSet {
            rules: vec![],
            lists: vec![],
            objects: vec![],
            events: vec![],
            fields: vec![],
            field_names: vec![],
            atoms: vec![],
            literal_matchers: vec![],
            regex_matchers: vec![],
            num_index: vec![],
            ip_index: vec![],
            obj_index: vec![],
            always: vec![vec![]; BUCKETS],
            member: vec![vec![]; BUCKETS],
            triggers: vec![],
            files: vec![],
            host_counters: 0,
            host_distincts: 0,
            ban_ids: vec![],
        }
    }

    /// Index of a rule by id.
    pub fn rule_index(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }
}
