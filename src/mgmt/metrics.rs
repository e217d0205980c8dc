//! `/metrics`: the report in Prometheus text format 0.0.4.
//!
//! A minimal rendering (build info and uptime); the full one replaces it.

use serde_json::Value;
use std::fmt::Write;

/// Renders the report as Prometheus text.
pub fn render(report: &Value) -> String {
    let mut out = String::new();
    let version = report["version"].as_str().unwrap_or(env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "# HELP secsip_build_info Build of the running daemon.");
    let _ = writeln!(out, "# TYPE secsip_build_info gauge");
    let _ = writeln!(out, "secsip_build_info{{version=\"{}\"}} 1", escape(version));
    let _ = writeln!(out, "# HELP secsip_uptime_seconds Seconds since the daemon started.");
    let _ = writeln!(out, "# TYPE secsip_uptime_seconds gauge");
    let _ = writeln!(out, "secsip_uptime_seconds {}", report["uptime_s"].as_f64().unwrap_or(0.0));
    out
}

/// Escapes a label value (backslash, quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_info_and_uptime() {
        let t = super::render(&serde_json::json!({"version": "1.2\"3", "uptime_s": 4.25}));
        assert!(t.contains("secsip_build_info{version=\"1.2\\\"3\"} 1\n"), "{t}");
        assert!(t.contains("# TYPE secsip_uptime_seconds gauge\nsecsip_uptime_seconds 4.25\n"), "{t}");
    }
}
