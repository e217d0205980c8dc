//! The rule language: TOML files compiled into a rule set (work in progress).
#![allow(missing_docs)]
pub mod import;
