//! Statistics windows for `GET /api/stats` and `POST /api/stats/reset`.
//!
//! The daemon's counters only grow (Prometheus reads them as they are); an operator's
//! "since I reset" view is the report minus a baseline taken at reset. Only the counters the
//! API documents as windowed (`verdicts`, `rule_hits`, `top_drop_sources`) are subtracted; the
//! rest of the report passes through untouched.
//!
//! `top_drop_sources` holds only the report's top 20, so a source that was below the top 20
//! at reset and climbs into it later shows its whole count as its delta: the list answers
//! "who is dropped most now", the exact per-source history is not kept.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use crate::dataplane::control::unix_now;

/// The sections of the report that are shown as deltas since the window began.
const WINDOWED: [&str; 2] = ["verdicts", "rule_hits"];

/// A stats window: a baseline of the windowed counters and when it was taken.
#[derive(Clone, Debug, Default)]
pub struct StatsView {
    /// Per windowed section, counter name → value at reset.
    base: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// Source IP → drops at reset.
    base_drops: BTreeMap<String, u64>,
    /// Unix time of the last reset; `None` until the first one (the window is the daemon's life).
    since_unix: Option<f64>,
}

impl StatsView {
    /// A window that begins at daemon start.
    pub fn new() -> StatsView {
        StatsView::default()
    }

    /// Starts a new window at the counters of `report`; returns its start (Unix seconds).
    pub fn reset(&mut self, report: &Value) -> f64 {
        for sec in WINDOWED {
            self.base.insert(sec, counters(&report[sec]));
        }
        self.base_drops = drop_sources(&report["top_drop_sources"]);
        let now = unix_now();
        self.since_unix = Some(now);
        now
    }

    /// `report` with the windowed counters as deltas since the window began and `since_unix`.
    pub fn view(&self, mut report: Value) -> Value {
        // The daemon's fixed start time when it reports one: now - uptime jitters between polls,
        // and clients compare since_unix to tell a new window from the same one.
        let since = self.since_unix.or_else(|| report["started_unix"].as_f64()).unwrap_or_else(|| (unix_now() - report["uptime_s"].as_f64().unwrap_or(0.0)).floor());
        if let Some(obj) = report.as_object_mut() {
            for sec in WINDOWED {
                let now = obj.get(sec).map(counters).unwrap_or_default();
                let empty = BTreeMap::new();
                let base = self.base.get(sec).unwrap_or(&empty);
                // Zero deltas are left out, like the report leaves out zero counters.
                let d: Map<String, Value> = now
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let dv = delta(v, base.get(&k).copied());
                        (dv > 0).then(|| (k, json!(dv)))
                    })
                    .collect();
                obj.insert(sec.to_string(), Value::Object(d));
            }
            let now = obj.get("top_drop_sources").map(drop_sources).unwrap_or_default();
            let mut d: Vec<(String, u64)> = now
                .into_iter()
                .map(|(ip, v)| {
                    let dv = delta(v, self.base_drops.get(&ip).copied());
                    (ip, dv)
                })
                .filter(|(_, dv)| *dv > 0)
                .collect();
            d.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            obj.insert("top_drop_sources".into(), d.into_iter().map(|(ip, drops)| json!({"ip": ip, "drops": drops})).collect());
            obj.insert("since_unix".into(), json!(since));
        }
        report
    }
}

/// The growth of a counter from `base` to `now`. A counter below its baseline was restarted
/// (a reload resets rule hits; a source evicted from a top-K list comes back counting from
/// the smallest count): all of it is new.
fn delta(now: u64, base: Option<u64>) -> u64 {
    match base {
        Some(b) if b <= now => now - b,
        _ => now,
    }
}

fn counters(v: &Value) -> BTreeMap<String, u64> {
    v.as_object().into_iter().flatten().filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n))).collect()
}

fn drop_sources(v: &Value) -> BTreeMap<String, u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["ip"].as_str()?.to_string(), e["drops"].as_u64()?)))
        .collect()
}


#[cfg(test)]
mod tests {
    use super::*;

    fn report(uptime: f64, verdicts: Value, hits: Value, drops: Value) -> Value {
        json!({"version": "0.1.0", "uptime_s": uptime, "verdicts": verdicts, "rule_hits": hits,
               "top_drop_sources": drops, "bans": {"active": 2, "in_xdp": 2}})
    }

    #[test]
    fn the_window_origin_is_the_same_on_every_poll() {
        // Clients tell a new window from the same one by since_unix: it must not jitter.
        let v = StatsView::new();
        let mut r = report(10.0, json!({}), json!({}), json!([]));
        r["started_unix"] = json!(1_700_000_000.25);
        let a = v.view(r.clone())["since_unix"].clone();
        r["uptime_s"] = json!(12.5);
        assert_eq!(v.view(r)["since_unix"], a);
        assert_eq!(a, json!(1_700_000_000.25));
    }

    #[test]
    fn before_any_reset_the_window_is_the_daemons_life() {
        let v = StatsView::new();
        let r = report(100.0, json!({"valid.accept": 5}), json!({"r1": 3}), json!([{"ip": "10.0.0.1", "drops": 4}]));
        let out = v.view(r.clone());
        assert_eq!(out["verdicts"], r["verdicts"]);
        assert_eq!(out["rule_hits"], r["rule_hits"]);
        assert_eq!(out["top_drop_sources"], r["top_drop_sources"]);
        let since = out["since_unix"].as_f64().unwrap();
        assert!((unix_now() - 100.0 - since).abs() < 5.0, "{since}");
        assert_eq!(out["bans"], r["bans"], "other sections pass through");
    }

    #[test]
    fn deltas_since_reset() {
        let mut v = StatsView::new();
        let before = unix_now();
        let r0 = report(
            10.0,
            json!({"valid.accept": 5, "rule.drop": 2}),
            json!({"r1": 3, "r2": 1}),
            json!([{"ip": "10.0.0.1", "drops": 4}, {"ip": "10.0.0.2", "drops": 1}]),
        );
        let since = v.reset(&r0);
        assert!(since >= before && since <= unix_now());
        // Nothing happened yet: every delta is zero and left out.
        let same = v.view(r0.clone());
        assert_eq!(same["verdicts"], json!({}));
        assert_eq!(same["rule_hits"], json!({}));
        assert_eq!(same["top_drop_sources"], json!([]));
        assert_eq!(same["since_unix"], json!(since));
        let r1 = report(
            20.0,
            json!({"valid.accept": 9, "rule.drop": 2, "malformed.drop": 7}),
            json!({"r1": 4, "r2": 1, "r3": 6}),
            json!([{"ip": "10.0.0.2", "drops": 11}, {"ip": "10.0.0.1", "drops": 6}, {"ip": "2001:db8::1", "drops": 3}]),
        );
        let out = v.view(r1);
        assert_eq!(out["verdicts"], json!({"valid.accept": 4, "malformed.drop": 7}));
        assert_eq!(out["rule_hits"], json!({"r1": 1, "r3": 6}));
        assert_eq!(
            out["top_drop_sources"],
            json!([{"ip": "10.0.0.2", "drops": 10}, {"ip": "2001:db8::1", "drops": 3}, {"ip": "10.0.0.1", "drops": 2}])
        );
        assert_eq!(out["uptime_s"], json!(20.0));
    }

    #[test]
    fn counters_that_went_backwards_restarted() {
        let mut v = StatsView::new();
        v.reset(&report(10.0, json!({"rule.drop": 50}), json!({"r1": 100}), json!([{"ip": "10.0.0.9", "drops": 40}])));
        // A reload reset the rule hits; the source left the top-K and came back lower.
        let out = v.view(report(11.0, json!({"rule.drop": 53}), json!({"r1": 7}), json!([{"ip": "10.0.0.9", "drops": 12}])));
        assert_eq!(out["verdicts"], json!({"rule.drop": 3}));
        assert_eq!(out["rule_hits"], json!({"r1": 7}));
        assert_eq!(out["top_drop_sources"], json!([{"ip": "10.0.0.9", "drops": 12}]));
    }

    #[test]
    fn a_second_reset_moves_the_baseline() {
        let mut v = StatsView::new();
        v.reset(&report(1.0, json!({"valid.accept": 1}), json!({}), json!([])));
        let r = report(2.0, json!({"valid.accept": 10}), json!({}), json!([]));
        assert_eq!(v.view(r.clone())["verdicts"], json!({"valid.accept": 9}));
        v.reset(&r);
        assert_eq!(v.view(report(3.0, json!({"valid.accept": 12}), json!({}), json!([])))["verdicts"], json!({"valid.accept": 2}));
    }

    #[test]
    fn a_report_missing_sections_gets_empty_ones() {
        let out = StatsView::new().view(json!({}));
        assert_eq!(out["verdicts"], json!({}));
        assert_eq!(out["top_drop_sources"], json!([]));
        assert!(out["since_unix"].is_f64());
    }
}
