//! The management API (API.md): rule datastores (running, startup, candidate), list entries,
//! bans, stats, metrics and the web manager, served by one thread off the data path.
//!
//! [`datastore`] holds a rule set as files, [`store`] the operations and their checks,
//! [`api`] maps requests to them (no sockets), [`server`] moves HTTP bytes.

pub mod api;
pub mod datastore;
pub mod metrics;
pub mod server;
pub mod stats;
pub mod store;
