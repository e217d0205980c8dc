//! The management side: statistics windows and the Prometheus exposition.

pub mod metrics;
pub mod stats;
