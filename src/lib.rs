//! secsip: a transparent, stateful SIP firewall.
//!
//! The data path, in the order a frame crosses it (`secsip run`):
//!
//! 1. [`dataplane`]'s XDP program bridges in the kernel only what it proves is not SIP; the
//!    rest reaches an RX worker over AF_XDP, whose per-source admission sheds floods;
//! 2. [`wire`] decodes Ethernet / VLAN / IPv4 / IPv6 (extension chains, AH) / UDP / TCP as
//!    zero-copy views and [`wire::reasm`] reassembles fragmented SIP datagrams;
//! 3. [`hash`] keys the Call-ID once: the worker shards UDP SIP by it to an engine thread
//!    (TCP by its connection), and the dialog tables use the same key;
//! 4. [`stream`] reassembles TCP connections and frames SIP (and WebSocket) messages out of
//!    them, holding segments until their messages are judged;
//! 5. [`sip`] parses each message lazily: an index of header lines, typed and normalised
//!    values on demand, validation reasons kept with the message rather than raised;
//! 6. [`engine`] (sans-IO) tracks transactions and dialogs in bounded tables, runs the
//!    compiled [`rules`] (sharing per-source state through [`hosttable`]) and returns a
//!    [`verdict::Verdict`] for every frame; a TCP message whose Call-ID another engine owns
//!    is judged there (a consult);
//! 7. the verdict goes back to the worker, which forwards, drops, answers or resets on TX.
//!
//! [`check`] drives the same engine from a pcap file (`secsip check --pcap`), and [`fuzz`]
//! holds the fuzz targets' bodies. Nothing in steps 2 to 6 touches a socket, a thread or the
//! clock: time is passed in.
//!
//! The control plane, beside it and off the data path: [`config`] (the TOML, checked with
//! file, line and field), [`rules`]' compiler (hot-swapped into the engines on reload),
//! [`mgmt`] (the management API, web manager and Prometheus text), [`ctl`] (`secsip ctl`,
//! its client) and [`eve`] (the event log).

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
