//! secsip: a transparent, stateful SIP firewall.
//!
//! The data path, in the order a frame crosses it:
//!
//! 1. [`wire`] decodes Ethernet / VLAN / IPv4 / IPv6 / UDP / TCP as zero-copy views and
//!    [`wire::reasm`] reassembles fragmented SIP datagrams in a bounded buffer;
//! 2. [`hash`] keys the Call-ID once (the shard and the dialog table use the same key);
//! 3. [`sip`] parses the message lazily: an index of header lines, typed values on demand,
//!    validation reasons kept with the message rather than raised;
//! 4. [`engine`] (sans-IO) tracks transactions and dialogs in bounded tables with a timer
//!    wheel and returns a [`verdict::Verdict`] for every frame;
//! 5. [`check`] drives the same engine from a pcap file (`secsip check --pcap`).
//!
//! Nothing below [`check`] touches a socket, a thread or the clock: time is passed in.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod config;
pub mod ctl;
// The only module with unsafe code: syscalls (poll, eventfd, getsockopt) and the afxdp/aya
// boundary. Every block carries a SAFETY note.
#[allow(unsafe_code)]
pub mod dataplane;
pub mod engine;
pub mod eve;
pub mod fixtures;
pub mod fuzz;
pub mod hash;
pub mod hosttable;
pub mod mgmt;
pub mod rules;
pub mod sip;
pub mod stream;
pub mod verdict;
pub mod wire;
