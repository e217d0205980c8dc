//! The appliance's data path: AF_XDP workers, engine threads, the XDP program, control.
//!
//! ```text
//!  NIC rx ─ XDP ─┬─ proven not SIP ───────────────────────► peer NIC (kernel devmap)
//!                ├─ unclassified, appliance.unclassified = drop ─► dropped (counted)
//!                └─ SIP, unclassified ─► xsk rx ─ worker ─ shard(Call-ID) ─► engine k ─ verdict ─┐
//!                            peer NIC tx ◄── forward ── worker ◄─────────────────────────────────┘
//!                            same NIC tx ◄── reject answer
//! ```
//!
//! Layout: [`xdp`] loads and pins the kernel program, [`xsk`] owns the AF_XDP sockets and
//! frames, [`admit`] sheds floods per source before the engines, [`shard`] picks the engine, [`worker`] runs the rings, [`engines`] the engine
//! threads around a [`judge::Judge`], [`stats`] the counters, [`control`] the pid file,
//! control socket and reloads, and [`run`] wires them together for `secsip run`.

pub mod admit;
pub mod consult;
pub mod control;
pub mod engines;
pub mod judge;
pub mod run;
pub mod shard;
pub mod stats;
pub mod worker;
pub mod xdp;
pub mod xsk;
