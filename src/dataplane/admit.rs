//! Per-source admission: a flood is cut in the worker, before it reaches the engines, so that
//! inspection keeps up for everyone else (DESIGN §9, "load is shed, not waved through").
//!
//! Each worker counts the SIP frames it sees per source prefix (IPv4 and IPv6 addresses
//! masked to configurable prefix lengths, so that a flood spread over a /24 is one talker) in
//! a two-row count-min sketch of windowed counters: fixed memory, no keys stored, no
//! allocation or lock per frame. The estimate of a source is its count in the current window
//! plus the part of the previous window that the sliding window still covers; it overestimates
//! (collisions) and never underestimates. Frames are counted whether admitted or not, so a
//! flooder stays heavy while it is being shed.
//!
//! Two limits, each a [`Shed`] cause:
//! - a hard cap per source (`max_rate`), always on;
//! - under congestion (the fullest engine queue above `high_water_pct`), a threshold that starts
//!   at half the heaviest source's rate and halves every window while the queue stays high,
//!   down to `min_shed_rate`: the largest talkers are cut first, sources at or below the floor
//!   never. At or below `low_water_pct` it doubles back every window until it is above every
//!   source, then it is off.
//!
//! A frame that still finds its engine's queue full is dropped too ([`Shed::QueueFull`]):
//! while the daemon lives, SIP is never forwarded uninspected.

use crate::config::AdmissionConfig;
use crate::hash::Keyer;
use std::net::IpAddr;

/// Why a SIP frame was dropped before an engine judged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// Its source is over the hard per-source cap (`max_rate`).
    Rate,
    /// An engine queue is congested and its source is among the heaviest.
    Congestion,
    /// Its engine's queue was full.
    QueueFull,
    /// Its engine thread is gone and `failure = "fail_closed"`.
    EngineGone,
}

impl Shed {
    /// Every cause, in counter order.
    pub const ALL: [Shed; 4] = [Shed::Rate, Shed::Congestion, Shed::QueueFull, Shed::EngineGone];

    /// Name in counters, reports and the metrics' `cause` label.
    pub fn name(self) -> &'static str {
        match self {
            Shed::Rate => "rate",
            Shed::Congestion => "congestion",
            Shed::QueueFull => "queue_full",
            Shed::EngineGone => "engine_gone",
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Cell {
    window: u32,
    cur: u32,
    prev: u32,
}

const ROWS: usize = 2;

/// One worker's admission state.
pub struct Admission {
    cells: Box<[Cell]>,
    mask: usize,
    keyer: Keyer,
    prefix_v4: u32,
    prefix_v6: u32,
    window_ns: u64,
    window: u32,
    window_start: u64,
    /// Frames per window per source: the hard cap, and the congestion floor.
    cap: u32,
    floor: u32,
    /// Congestion threshold (frames per window); `u32::MAX` when not shedding for congestion.
    limit: u32,
    heavy_cur: u32,
    heavy_prev: u32,
    high: usize,
    low: usize,
    congested: bool,
}

impl Admission {
    /// Admission for a worker whose engines each queue at most `engine_queue` frames.
    pub fn new(cfg: &AdmissionConfig, engine_queue: usize, keyer: Keyer, now: u64) -> Admission {
        let width = (cfg.sketch_width as usize).next_power_of_two().max(1);
        let per_window = |rate: u32| ((rate as u64 * cfg.window_ms as u64).div_ceil(1000)).clamp(1, u32::MAX as u64) as u32;
        let high = (engine_queue * cfg.high_water_pct as usize / 100).max(1);
        Admission {
            cells: vec![Cell::default(); width * ROWS].into_boxed_slice(),
            mask: width - 1,
            keyer,
            prefix_v4: cfg.prefix_v4 as u32,
            prefix_v6: cfg.prefix_v6 as u32,
            window_ns: cfg.window_ms as u64 * 1_000_000,
            window: 1,
            window_start: now,
            cap: per_window(cfg.max_rate),
            floor: per_window(cfg.min_shed_rate),
            limit: u32::MAX,
            heavy_cur: 0,
            heavy_prev: 0,
            high,
            low: (engine_queue * cfg.low_water_pct as usize / 100).min(high - 1),
            congested: false,
        }
    }

    /// Tells admission how full the fullest engine queue is (once per burst).
    pub fn pressure(&mut self, now: u64, depth: usize) {
        self.roll(now);
        if depth >= self.high && !self.congested {
            self.congested = true;
            // React now, not at the end of the window: cut the heaviest talker at once.
            self.limit = self.limit.min((self.heavy_prev.max(self.heavy_cur) / 2).max(self.floor));
        } else if depth <= self.low {
            self.congested = false;
        }
    }

    /// True while the congestion threshold is on.
    pub fn shedding(&self) -> bool {
        self.limit != u32::MAX
    }

    /// Counts a SIP frame from `src` (`None`: not decodable as IP) and says whether it may go on
    /// to an engine.
    pub fn admit(&mut self, now: u64, src: Option<IpAddr>) -> Result<(), Shed> {
        self.roll(now);
        let key = self.key(src);
        let into = now.saturating_sub(self.window_start).min(self.window_ns);
        let left = self.window_ns - into;
        let mut est = u32::MAX;
        for row in 0..ROWS {
            let i = row * (self.mask + 1) + ((key >> (32 * row)) as usize & self.mask);
            let c = &mut self.cells[i];
            if c.window != self.window {
                c.prev = if c.window.wrapping_add(1) == self.window { c.cur } else { 0 };
                c.cur = 0;
                c.window = self.window;
            }
            c.cur = c.cur.saturating_add(1);
            let carried = (c.prev as u64 * left / self.window_ns.max(1)) as u32;
            est = est.min(c.cur.saturating_add(carried));
        }
        self.heavy_cur = self.heavy_cur.max(est);
        if est > self.cap {
            Err(Shed::Rate)
        } else if est > self.limit {
            Err(Shed::Congestion)
        } else {
            Ok(())
        }
    }

    fn key(&self, src: Option<IpAddr>) -> u128 {
        let mut b = [0u8; 17];
        let n = match src {
            Some(IpAddr::V4(a)) => {
                let m = if self.prefix_v4 == 0 { 0 } else { u32::MAX << (32 - self.prefix_v4) };
                b[0] = 4;
                b[1..5].copy_from_slice(&(u32::from(a) & m).to_be_bytes());
                5
            }
            Some(IpAddr::V6(a)) => {
                let m = if self.prefix_v6 == 0 { 0 } else { u128::MAX << (128 - self.prefix_v6) };
                b[0] = 6;
                b[1..17].copy_from_slice(&(u128::from(a) & m).to_be_bytes());
                17
            }
            None => 1,
        };
        self.keyer.key(&[&b[..n]])
    }

    fn roll(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.window_start);
        if elapsed < self.window_ns {
            return;
        }
        let n = elapsed / self.window_ns;
        self.window = self.window.wrapping_add(n.min(u32::MAX as u64) as u32);
        self.window_start += n * self.window_ns;
        self.heavy_prev = if n == 1 { self.heavy_cur } else { 0 };
        self.heavy_cur = 0;
        if self.congested {
            let from = if self.limit == u32::MAX { self.heavy_prev } else { self.limit };
            self.limit = (from / 2).max(self.floor);
        } else if self.limit != u32::MAX {
            self.limit = self.limit.saturating_mul(2);
            if self.limit > self.heavy_prev.max(self.floor) {
                self.limit = u32::MAX;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn cfg() -> AdmissionConfig {
        AdmissionConfig { max_rate: 1000, min_shed_rate: 50, window_ms: 100, ..AdmissionConfig::default() }
    }

    fn adm(c: &AdmissionConfig) -> Admission {
        Admission::new(c, 100, Keyer::with_keys(3, 4), 0)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// Sends `per_window` frames from each source, spread evenly over `windows` windows
    /// starting at `t`; returns (admitted, shed by rate, shed by congestion) per source.
    fn offer(a: &mut Admission, t: &mut u64, windows: u64, sources: &[(&str, u32)], depth: usize) -> Vec<[u32; 3]> {
        let mut out = vec![[0u32; 3]; sources.len()];
        for _ in 0..windows {
            let steps = sources.iter().map(|s| s.1).max().unwrap_or(1).max(1);
            for k in 0..steps {
                let now = *t + 100 * MS * k as u64 / steps as u64;
                a.pressure(now, depth);
                for (i, &(src, per)) in sources.iter().enumerate() {
                    // Source i sends `per` frames in this window, evenly.
                    if (k as u64 * per as u64 / steps as u64) != ((k as u64 + 1) * per as u64 / steps as u64) {
                        let slot = match a.admit(now, ip(src)) {
                            Ok(()) => 0,
                            Err(Shed::Rate) => 1,
                            Err(Shed::Congestion) => 2,
                            Err(e) => panic!("{e:?}"),
                        };
                        out[i][slot] += 1;
                    }
                }
            }
            *t += 100 * MS;
        }
        out
    }

    #[test]
    fn a_source_over_the_cap_is_shed_and_a_quiet_one_passes() {
        let c = cfg();
        let mut a = adm(&c);
        let mut t = 0;
        // 1000/s cap = 100 per window; the flooder sends 2000 per window, the honest one 5.
        let r = offer(&mut a, &mut t, 10, &[("192.0.2.1", 2000), ("198.51.100.7", 5)], 0);
        assert_eq!(r[1], [50, 0, 0], "the honest source is never shed");
        assert!(r[0][1] >= 10 * 1900 - 200, "the flooder is shed by rate: {:?}", r[0]);
        assert!(r[0][0] <= 10 * 100 + 100, "it gets about its cap through: {:?}", r[0]);
        assert_eq!(r[0][2], 0, "no congestion: nothing is shed for it");
        assert!(!a.shedding());
    }

    #[test]
    fn sources_of_one_prefix_add_up() {
        let c = cfg();
        let mut a = adm(&c);
        let mut t = 0;
        // 50 addresses of one /24, 10 per window each: 500 per window for the prefix.
        let many: Vec<String> = (1..=50).map(|i| format!("203.0.113.{i}")).collect();
        let mut srcs: Vec<(&str, u32)> = many.iter().map(|s| (s.as_str(), 10)).collect();
        srcs.push(("203.0.114.1", 10));
        let r = offer(&mut a, &mut t, 5, &srcs, 0);
        let shed: u32 = r[..50].iter().map(|x| x[1]).sum();
        assert!(shed > 5 * 300, "the /24 is one talker over its cap: {shed}");
        assert_eq!(r[50], [50, 0, 0], "the neighbouring /24 is its own talker");
        // With /32 prefixes every address is its own talker, far below the cap.
        let mut a = adm(&AdmissionConfig { prefix_v4: 32, ..c });
        let r = offer(&mut a, &mut t, 5, &srcs, 0);
        assert!(r.iter().all(|x| x[1] == 0), "{r:?}");
    }

    #[test]
    fn ipv6_sources_are_grouped_by_their_prefix() {
        let c = cfg();
        let mut a = adm(&c);
        let mut t = 0;
        let r = offer(&mut a, &mut t, 3, &[("2001:db8:1:1::1", 60), ("2001:db8:1:1::2", 60), ("2001:db8:1:2::1", 60)], 0);
        assert!(r[0][1] + r[1][1] > 0, "one /64 over the cap: {r:?}");
        assert_eq!(r[2][1], 0, "another /64 is under it: {r:?}");
    }

    #[test]
    fn congestion_sheds_the_heaviest_first_and_never_the_quiet() {
        let c = cfg();
        let mut a = adm(&c);
        let mut t = 0;
        let srcs = [("192.0.2.1", 90), ("198.51.100.1", 30), ("203.0.113.1", 4)];
        // Everyone under the cap, no pressure: all pass.
        let r = offer(&mut a, &mut t, 2, &srcs, 0);
        assert!(r.iter().all(|x| x[1] == 0 && x[2] == 0), "{r:?}");
        // The queue passes high water: the 90/window source is cut at once (threshold 45).
        let r = offer(&mut a, &mut t, 1, &srcs, 60);
        assert!(r[0][2] > 0 && r[1][2] == 0 && r[2][2] == 0, "heaviest first: {r:?}");
        // Still congested: the threshold halves each window down to the floor (5 per window),
        // which cuts the 30/window source too, but never the one at 4.
        let r = offer(&mut a, &mut t, 4, &srcs, 60);
        assert!(r[1][2] > 0, "the next heaviest follows: {r:?}");
        assert_eq!(r[2], [16, 0, 0], "a source under the floor is never shed: {r:?}");
        assert!(a.shedding());
        // Between the marks the threshold holds; at low water it relaxes and then turns off.
        let _ = offer(&mut a, &mut t, 2, &srcs, 40);
        assert!(a.shedding());
        let _ = offer(&mut a, &mut t, 8, &srcs, 10);
        assert!(!a.shedding());
        let r = offer(&mut a, &mut t, 1, &srcs, 10);
        assert!(r.iter().all(|x| x[2] == 0), "{r:?}");
    }

    #[test]
    fn undecodable_frames_are_one_talker() {
        let c = cfg();
        let mut a = adm(&c);
        let shed = (0..500).filter(|i| a.admit(*i as u64 * 1000, None).is_err()).count();
        assert_eq!(shed, 400);
    }

    #[test]
    fn an_idle_gap_forgets_old_counts() {
        let c = cfg();
        let mut a = adm(&c);
        for i in 0..100 {
            assert!(a.admit(i * MS / 2, ip("192.0.2.1")).is_ok());
        }
        assert_eq!(a.admit(60 * MS, ip("192.0.2.1")), Err(Shed::Rate));
        // Two windows later nothing of it is carried.
        assert!(a.admit(300 * MS, ip("192.0.2.1")).is_ok());
    }
}
