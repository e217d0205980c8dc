//! The rule language: TOML files compiled into a [`RuleSet`] that engines evaluate per message.
//!
//! `expr` parses `when` expressions, `fields` names what rules can read, `lists` holds allow
//! and block lists, `compile` turns files into a scheduled [`RuleSet`] (`model`), `eval` runs
//! it, `objects` keeps the per-engine stateful containers, `import` converts SecSip rules, `slots` keeps shared objects' host-table slots across reloads.

pub mod compile;
pub mod eval;
pub mod expr;
pub mod fields;
pub mod gen;
pub mod import;
pub mod lists;
pub mod model;
pub mod objects;
pub mod slots;

pub use compile::{compile, compile_dir, compile_files, compile_with, CompileError, CompileErrors, CompileOptions};
pub use model::RuleSet;
#[cfg(test)]
mod tests;
