//! Zero-copy, lazy SIP (RFC 3261) parsing and validation.
//!
//! [`Parser::parse`] indexes the header lines of one datagram and returns a [`Message`] that
//! borrows the buffer; typed values are parsed on demand by its accessors. Malformed input
//! never panics or errors: it yields a [`Message`] whose [`Message::reasons`] say what is
//! wrong, and rules decide what to do with it (as Kamailio `sanity` / OpenSIPS
//! `sipmsg_validate` do).
//!
//! No `unsafe`, no indexing that can fail, no allocation per message: the header index is a
//! `Vec` allocated once per [`Parser`].

pub mod addr;
/// Digest credentials and challenges (Authorization, WWW-Authenticate, ...).
pub mod auth;
pub mod chars;
pub mod header;
pub mod message;
pub mod method;
pub mod normal;
pub mod params;
/// SDP bodies.
pub mod sdp;
/// SIP, SIPS and tel URIs.
pub mod uri;
pub mod validate;
pub mod via;

pub use addr::NameAddr;
pub use header::HeaderName;
pub use message::{CSeq, Contacts, Elements, Header, HeaderValues, Message, NameAddrs, Parser, Span};
pub use method::Method;
pub use params::Params;
pub use validate::{Limits, Reason, Reasons};
pub use via::Via;
#[cfg(test)]
mod rfc4475_tests;
