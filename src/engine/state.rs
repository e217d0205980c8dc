//! Transaction and dialog tracking (RFC 3261 §17 and §12), in bounded tables.
//!
//! Keys are 128-bit keyed hashes (see [`crate::hash`]), so entries have a fixed size:
//! - a transaction is (top Via branch, Via sent-by, CSeq method), with ACK mapped to INVITE so
//!   that the ACK of a non-2xx response joins its INVITE transaction (§17.2.3) while the ACK of
//!   a 2xx, which carries a fresh branch, is a transaction of its own; requests without an
//!   RFC 3261 branch fall back to (Call-ID, From tag, CSeq number, method), as §17.2.3 does;
//! - a dialog is (Call-ID, the From tag of the request that created it). A request from the
//!   callee carries that tag in its To header, so in-dialog requests are looked up under both
//!   of their tags.

use super::table::{Table, TableLimits, TableStats};
use crate::config::EngineConfig;
use crate::hash::{Key, Keyer};
use crate::rules::fields::StateView;
use crate::rules::objects::ScopeKeys;
use crate::sip::{Message, Method};
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;

/// Where a dialog stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DialogState {
    /// Created by a request, no 2xx yet.
    Early,
    /// A 2xx answered the creating request.
    Confirmed,
    /// Ended by BYE or by a final failure; kept a short while for retransmissions.
    Terminated,
}

/// One tracked dialog.
#[derive(Clone, Copy, Debug)]
pub struct Dialog {
    /// State.
    pub state: DialogState,
    /// Method that created it (INVITE or SUBSCRIBE).
    pub method: Method,
    /// Address the creating request came from.
    pub caller: IpAddr,
    /// Keyed hash of the callee's tag, once a response carried one (0 before).
    pub to_tag: u64,
    /// When it was created (ns).
    pub created: u64,
    /// Messages seen in it.
    pub messages: u32,
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TxState {
    /// Request seen, no response.
    Trying,
    /// A provisional response seen.
    Proceeding,
    /// A final response seen.
    Completed,
}

/// One tracked transaction.
#[derive(Clone, Copy, Debug)]
pub struct Transaction {
    /// State.
    pub state: TxState,
    /// The request's method.
    pub method: Method,
    /// Address the request came from.
    pub client: IpAddr,
    /// Last status code seen (0 before any response).
    pub last_status: u16,
    /// Copies of the request seen after the first (retransmissions).
    pub retransmissions: u16,
    /// When it was created (ns).
    pub created: u64,
}

/// Tracking counters.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct StateStats {
    /// Transactions created.
    pub transactions: u64,
    /// Request retransmissions absorbed by a live transaction.
    pub retransmissions: u64,
    /// Responses that matched no live transaction.
    pub stray_responses: u64,
    /// Dialogs created (early).
    pub dialogs: u64,
    /// Dialogs confirmed by a 2xx.
    pub dialogs_confirmed: u64,
    /// Dialogs ended by BYE or a final failure.
    pub dialogs_terminated: u64,
    /// In-dialog requests (To tag present) that matched no live dialog.
    pub unknown_dialog_requests: u64,
    /// Transaction table counters.
    pub transaction_table: TableStats,
    /// Dialog table counters.
    pub dialog_table: TableStats,
}

/// What [`StateTracker::lookup`] found, and the keys [`StateTracker::track`] reuses.
#[derive(Clone, Copy, Debug)]
pub struct Lookup {
    /// Scope keys for the rules.
    pub keys: ScopeKeys,
    /// Existence of the transaction and dialog.
    pub view: StateView,
    /// The dialog keys under the From tag and the To tag.
    dialog_keys: Option<(Key, Option<Key>)>,
}

/// The transaction and dialog tables of one engine, and how long entries live.
pub struct StateTracker {
    keyer: Keyer,
    /// Live transactions.
    pub transactions: Table<Transaction>,
    /// Live dialogs.
    pub dialogs: Table<Dialog>,
    stats: StateStats,
    tx_ttl: u64,
    early_ttl: u64,
    confirmed_ttl: u64,
    terminated_ttl: u64,
}

/// Keyed hash of a dialog tag; never 0, which means "no tag yet".
fn tag_hash(keyer: &Keyer, tag: &[u8]) -> u64 {
    (keyer.key(&[b"tag", tag]) as u64) | 1
}

fn creates_dialog(m: Method) -> bool {
    matches!(m, Method::Invite | Method::Subscribe)
}

impl StateTracker {
    /// Tables sized and timed from the configuration.
    pub fn new(cfg: &EngineConfig, keyer: Keyer) -> StateTracker {
        let tick_ns = cfg.timer_tick_ms.max(1) * 1_000_000;
        let t = &cfg.transactions;
        let d = &cfg.dialogs;
        StateTracker {
            keyer,
            transactions: Table::new(TableLimits { max_entries: t.max_entries, max_bytes: t.max_bytes, tick_ns }),
            dialogs: Table::new(TableLimits { max_entries: d.max_entries, max_bytes: d.max_bytes, tick_ns }),
            stats: StateStats::default(),
            tx_ttl: t.timeout_s * SEC,
            early_ttl: d.early_timeout_s * SEC,
            confirmed_ttl: d.confirmed_timeout_s * SEC,
            terminated_ttl: d.terminated_linger_s * SEC,
        }
    }

    /// Counters, with the tables' own.
    pub fn stats(&self) -> StateStats {
        StateStats {
            transaction_table: self.transactions.stats(),
            dialog_table: self.dialogs.stats(),
            ..self.stats
        }
    }

    /// Expires entries whose lifetime ended.
    pub fn expire(&mut self, now: u64) {
        self.transactions.expire(now, |_, _| {});
        self.dialogs.expire(now, |_, _| {});
    }

    /// What rules need before they judge the message: its scope keys and whether its
    /// transaction and dialog exist. Reads only; [`StateTracker::track`] updates afterwards,
    /// and only for forwarded messages, so dropped messages create no state.
    pub fn lookup(&self, msg: &Message<'_>, src: IpAddr) -> Lookup {
        let mut keys = ScopeKeys { src: Some(src), is_request: msg.is_request(), ..Default::default() };
        let mut view = StateView::default();
        let mut dialog_keys = None;
        if let Some(k) = self.transaction_key(msg) {
            keys.transaction = Some(k);
            if let Some(tx) = self.transactions.get(k) {
                view.transaction_exists = true;
                view.retransmissions = tx.retransmissions;
            }
        }
        if let Some(call_id) = msg.call_id() {
            let from_tag = msg.from().and_then(|f| f.tag()).unwrap_or(b"");
            let from_key = self.keyer.key(&[b"dlg", call_id, from_tag]);
            let to_key = msg.to().and_then(|t| t.tag()).map(|t| self.keyer.key(&[b"dlg", call_id, t]));
            dialog_keys = Some((from_key, to_key));
            let found = match self.dialogs.get(from_key) {
                Some(d) => Some((from_key, d)),
                None => to_key.and_then(|k| self.dialogs.get(k).map(|d| (k, d))),
            };
            match found {
                Some((k, d)) => {
                    keys.dialog = Some(k);
                    view.dialog_exists = true;
                    view.dialog_confirmed = d.state == DialogState::Confirmed;
                }
                // A message that would create the dialog uses the key the dialog will get.
                None => keys.dialog = Some(from_key),
            }
        }
        Lookup { keys, view, dialog_keys }
    }

    /// Updates state from a valid message, with the keys [`StateTracker::lookup`] computed for
    /// it (each key is hashed once per message).
    pub fn track(&mut self, now: u64, msg: &Message<'_>, src: IpAddr, look: &Lookup) {
        if let Some(key) = look.keys.transaction {
            self.track_transaction(now, msg, src, key);
        }
        if let Some((from_key, to_key)) = look.dialog_keys {
            self.track_dialog(now, msg, src, from_key, to_key);
        }
    }

    fn transaction_key(&self, msg: &Message<'_>) -> Option<Key> {
        let cseq = msg.cseq()?;
        let mname = cseq.method_bytes;
        let mname: &[u8] = if cseq.method == Method::Ack { b"INVITE" } else { mname };
        let via = msg.top_via();
        match via.as_ref().and_then(|v| v.branch()) {
            Some(b) if b.starts_with(b"z9hG4bK") => {
                let v = via.as_ref()?;
                let port = v.port.unwrap_or(0).to_be_bytes();
                Some(self.keyer.key(&[b"tx", b, v.host, &port, mname]))
            }
            _ => {
                // RFC 2543 peers: no magic cookie, match on the dialog and CSeq instead.
                let from_tag = msg.from().and_then(|f| f.tag()).unwrap_or(b"");
                let num = cseq.number.to_be_bytes();
                Some(self.keyer.key(&[b"tx2543", msg.call_id()?, from_tag, &num, mname]))
            }
        }
    }

    fn track_transaction(&mut self, now: u64, msg: &Message<'_>, src: IpAddr, key: Key) {
        let deadline = now + self.tx_ttl;
        if msg.is_request() {
            let req_method = msg.method().unwrap_or(Method::Other);
            // An ACK for a non-2xx joins the INVITE transaction and is not a retransmission.
            if let Some(tx) = self.transactions.touch(key, deadline) {
                if req_method != Method::Ack {
                    tx.retransmissions = tx.retransmissions.saturating_add(1);
                    self.stats.retransmissions += 1;
                }
                return;
            }
            let tx = Transaction {
                state: TxState::Trying,
                method: req_method,
                client: src,
                last_status: 0,
                retransmissions: 0,
                created: now,
            };
            self.transactions.insert(key, tx, deadline);
            self.stats.transactions += 1;
        } else if let Some(tx) = self.transactions.touch(key, deadline) {
            let code = msg.status().unwrap_or(0);
            tx.last_status = code;
            tx.state = if code >= 200 { TxState::Completed } else { TxState::Proceeding };
        } else {
            self.stats.stray_responses += 1;
        }
    }

    fn track_dialog(&mut self, now: u64, msg: &Message<'_>, src: IpAddr, from_key: Key, to_key: Option<Key>) {
        let Some(cseq) = msg.cseq() else { return };
        let to_tag = msg.to().and_then(|t| t.tag());
        // The creator's tag is in From (messages from the creator's side) or in To (the other
        // side's requests, and responses to them).
        let existing = if self.dialogs.get(from_key).is_some() {
            Some(from_key)
        } else {
            to_key.filter(|k| self.dialogs.get(*k).is_some())
        };
        let Some(key) = existing else {
            if msg.is_request() {
                let method = msg.method().unwrap_or(Method::Other);
                if to_tag.is_none() && creates_dialog(method) {
                    let d = Dialog { state: DialogState::Early, method, caller: src, to_tag: 0, created: now, messages: 1 };
                    self.dialogs.insert(from_key, d, now + self.early_ttl);
                    self.stats.dialogs += 1;
                } else if to_tag.is_some() && method != Method::Ack {
                    self.stats.unknown_dialog_requests += 1;
                }
            }
            return;
        };
        let keyer = self.keyer;
        let Some(d) = self.dialogs.get_mut(key) else { return };
        d.messages = d.messages.saturating_add(1);
        let code = msg.status().unwrap_or(0);
        if !msg.is_request() && key == from_key {
            if d.to_tag == 0 && (101..300).contains(&code) {
                d.to_tag = to_tag.map_or(0, |t| tag_hash(&keyer, t));
            }
            if cseq.method == d.method && d.state == DialogState::Early {
                if (200..300).contains(&code) {
                    d.state = DialogState::Confirmed;
                    self.stats.dialogs_confirmed += 1;
                } else if code >= 300 {
                    d.state = DialogState::Terminated;
                    self.stats.dialogs_terminated += 1;
                }
            }
        }
        if !msg.is_request() && cseq.method == Method::Bye && (200..300).contains(&code) && d.state != DialogState::Terminated {
            d.state = DialogState::Terminated;
            self.stats.dialogs_terminated += 1;
        }
        let state = d.state;
        let ttl = self.ttl_for(state);
        self.dialogs.touch(key, now + ttl);
    }

    fn ttl_for(&self, s: DialogState) -> u64 {
        match s {
            DialogState::Early => self.early_ttl,
            DialogState::Confirmed => self.confirmed_ttl,
            DialogState::Terminated => self.terminated_ttl,
        }
    }
}
