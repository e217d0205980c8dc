//! `/api/stats`: the report with its counters taken since a reset (a window), where the
//! daemon's own counters only grow.
//!
//! A minimal version (verdicts and rule hits); the full one replaces it.

use serde_json::{json, Map, Value};

/// The window's start and the counters at that moment.
#[derive(Clone, Debug)]
pub struct StatsView {
    since_unix: f64,
    base: Map<String, Value>,
}

/// The report's maps of counters whose deltas are shown.
const DELTAS: [&str; 2] = ["verdicts", "rule_hits"];

impl Default for StatsView {
    fn default() -> Self {
        StatsView::new()
    }
}

impl StatsView {
    /// A window that starts now, from zero (the daemon's start).
    pub fn new() -> StatsView {
        StatsView { since_unix: crate::dataplane::control::unix_now(), base: Map::new() }
    }

    /// Starts a new window at the report's counters; returns its start (Unix seconds).
    pub fn reset(&mut self, report: &Value) -> f64 {
        self.base = DELTAS.iter().map(|k| (k.to_string(), report[*k].clone())).collect();
        self.since_unix = crate::dataplane::control::unix_now();
        self.since_unix
    }

    /// The report with the windowed counters as deltas and `since_unix`.
    pub fn view(&self, mut report: Value) -> Value {
        for k in DELTAS {
            let Some(m) = report.get_mut(k).and_then(Value::as_object_mut) else { continue };
            for (name, v) in m.iter_mut() {
                let base = self.base.get(k).and_then(|b| b[name].as_u64()).unwrap_or(0);
                if let Some(n) = v.as_u64() {
                    // Saturating: a counter below its base means the daemon restarted them.
                    *v = json!(n.saturating_sub(base));
                }
            }
        }
        if let Some(o) = report.as_object_mut() {
            o.insert("since_unix".into(), json!(self.since_unix));
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_since_reset() {
        let mut s = StatsView::new();
        let r1 = json!({"verdicts": {"rule.drop": 5}, "rule_hits": {"a": 3}, "other": 1});
        assert_eq!(s.view(r1.clone())["rule_hits"]["a"], 3, "from zero before any reset");
        let since = s.reset(&r1);
        let v = s.view(json!({"verdicts": {"rule.drop": 9}, "rule_hits": {"a": 3, "b": 2}, "other": 1}));
        assert_eq!((v["verdicts"]["rule.drop"].as_u64(), v["rule_hits"]["a"].as_u64(), v["rule_hits"]["b"].as_u64()), (Some(4), Some(0), Some(2)));
        assert_eq!((v["other"].as_u64(), v["since_unix"].as_f64()), (Some(1), Some(since)));
    }
}
