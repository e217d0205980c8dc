//! Consults between engine threads: a TCP message is framed by the engine that owns its
//! connection (connections shard by endpoints) but judged by the engine that owns its
//! Call-ID (where its dialog lives, as for UDP). The framing engine copies the message into
//! a buffer of its bounded pool and asks the owner; the owner judges it and answers with the
//! verdict and the buffer. Channels are bounded and only `try_send` is used: two engines
//! never wait on each other, and a consult that cannot be made resets its connection.

use crate::engine::ConsultTicket;
use crate::verdict::Verdict;
use crossbeam_channel::{Sender, TrySendError};
use std::net::SocketAddr;

/// A message from one engine thread to another.
pub enum Cross {
    /// Judge this message for engine `from`.
    Ask(Ask),
    /// The verdict on a message this engine asked about, with its buffer.
    Answer {
        /// The ask's ticket.
        ticket: ConsultTicket,
        /// The owner's verdict.
        verdict: Verdict,
        /// NIC the message came in on.
        nic: u8,
        /// The pool buffer, going home.
        msg: Vec<u8>,
    },
}

/// A message to judge for another engine.
pub struct Ask {
    /// The asking engine.
    pub from: u16,
    /// What to answer with.
    pub ticket: ConsultTicket,
    /// Source of the message.
    pub src: SocketAddr,
    /// Destination of the message.
    pub dst: SocketAddr,
    /// NIC the message came in on (for its event).
    pub nic: u8,
    /// The message (a buffer of the asker's pool).
    pub msg: Vec<u8>,
}

/// An engine's side of the consult channels.
pub struct Peers {
    index: u16,
    /// Each engine's inbox, by engine index.
    senders: Vec<Sender<Cross>>,
    /// Free message buffers: at most `consults` asks are out at once.
    pool: Vec<Vec<u8>>,
}

/// Most slots of an engine's inbox (a channel allocates them up front: ~200 bytes each).
pub const MAX_INBOX: usize = 16384;

/// Bytes each pool buffer starts with; a larger message grows it once, and it stays grown.
const BUF_START: usize = 2048;

impl Peers {
    /// Engine `index`'s side, with `consults` buffers.
    pub fn new(index: usize, senders: Vec<Sender<Cross>>, consults: usize) -> Peers {
        Peers { index: index as u16, senders, pool: (0..consults).map(|_| Vec::with_capacity(BUF_START)).collect() }
    }

    /// An inbox for each of `engines` engines, each deep enough for every ask and answer
    /// that can be out at once (`consults` per engine), so a send does not fail — up to
    /// [`MAX_INBOX`] slots, past which a full inbox is a refused consult (or a lost answer).
    pub fn channels(engines: usize, consults: usize) -> (Vec<Sender<Cross>>, Vec<crossbeam_channel::Receiver<Cross>>) {
        let depth = engines.saturating_mul(consults).clamp(1, MAX_INBOX);
        (0..engines).map(|_| crossbeam_channel::bounded(depth)).unzip()
    }

    /// Sends `msg` to engine `to` for judging; false (nothing sent, the buffer kept) when no
    /// buffer is free or the inbox is full.
    pub fn ask(&mut self, to: usize, ticket: ConsultTicket, src: SocketAddr, dst: SocketAddr, nic: u8, msg: &[u8]) -> bool {
        let (Some(mut buf), Some(tx)) = (self.pool.pop(), self.senders.get(to)) else { return false };
        buf.clear();
        buf.extend_from_slice(msg);
        match tx.try_send(Cross::Ask(Ask { from: self.index, ticket, src, dst, nic, msg: buf })) {
            Ok(()) => true,
            Err(TrySendError::Full(c) | TrySendError::Disconnected(c)) => {
                if let Cross::Ask(a) = c {
                    self.pool.push(a.msg);
                }
                false
            }
        }
    }

    /// Answers `ask` with `verdict`; false when the asker's inbox refused it (the buffer is
    /// lost to its pool).
    pub fn answer(&mut self, ask: Ask, verdict: Verdict) -> bool {
        let Some(tx) = self.senders.get(ask.from as usize) else { return false };
        tx.try_send(Cross::Answer { ticket: ask.ticket, verdict, nic: ask.nic, msg: ask.msg }).is_ok()
    }

    /// Takes back a buffer an answer brought home.
    pub fn give_back(&mut self, msg: Vec<u8>) {
        self.pool.push(msg);
    }
}
