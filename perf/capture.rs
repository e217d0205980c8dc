//! One-way latency through the middle: tcpdump on the client's and the server's veth, and
//! every message matched between the two captures. Both timestamps come from the same kernel
//! clock (the packet tap on transmit and on receive), so their difference is the time from
//! leaving one end host to reaching the other: the middle plus two veth hops, the same for
//! every middle.
//!
//! Captures sample by IP identification (`ip[5] & mask == 0`): the field crosses a bridge
//! and the appliance unchanged, so both ends keep the same messages, and at high rates the
//! tap costs a fraction of what capturing everything would.

use crate::model::Percentiles;
use crate::sys;
use crate::testbed::{Side, Testbed};
use anyhow::{bail, Context, Result};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Bytes kept of each frame: headers plus the SIP start line, Via, From, To and Call-ID,
/// enough to tell messages apart.
const SNAPLEN: &str = "400";

/// A capture running on one side.
pub struct Capture {
    child: Child,
    path: PathBuf,
    stderr: std::sync::mpsc::Receiver<String>,
}

/// The sampling mask for a message rate: about `target` captured per second at most.
pub fn sample_mask(msgs_per_s: f64, target: f64) -> u8 {
    let mut m = 0u8;
    while (msgs_per_s / (m as f64 + 1.0)) > target && m < 127 {
        m = m * 2 + 1;
    }
    m
}

impl Capture {
    /// Starts tcpdump on `side`'s eth0 for SIP over UDP, keeping messages whose IP id has
    /// `id & mask == 0`; returns once it is capturing.
    pub fn start(tb: &Testbed, side: Side, path: &Path, mask: u8) -> Result<Capture> {
        let filter = if mask == 0 { "udp port 5060".to_string() } else { format!("udp port 5060 and ip[5] & {mask} == 0") };
        let mut child = tb
            .cmd(side, "tcpdump")
            .args(["-i", "eth0", "-n", "-s", SNAPLEN, "-B", "32768", "--time-stamp-precision", "nano", "-U", "-w"])
            .arg(path)
            .arg(&filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start tcpdump (make deps installs it)")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().context("tcpdump stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(l) if l.contains("listening on") => break,
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => bail!("tcpdump on {side:?} exited at start"),
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("tcpdump on {side:?} did not start capturing in 5 s");
            }
        }
        Ok(Capture { child, path: path.to_path_buf(), stderr: rx })
    }

    /// Stops the capture; the file and how many packets the kernel dropped on the tap.
    pub fn stop(mut self) -> Result<(PathBuf, u64)> {
        sys::signal(self.child.id(), libc::SIGINT);
        sys::wait_child(&mut self.child, Duration::from_secs(10))?;
        let mut dropped = 0;
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            if let Some(n) = l.strip_suffix(" packets dropped by kernel") {
                dropped = n.trim().parse().unwrap_or(0);
            }
        }
        Ok((self.path, dropped))
    }
}

/// A message as seen at one end: direction, and a hash of what was captured of it.
type Key = (IpAddr, IpAddr, u64);

/// Reads a capture: (key, timestamp in ns) per UDP/IP frame.
fn read_pcap(path: &Path) -> Result<Vec<(Key, u64)>> {
    let data = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for (ts, frame) in pcap_records(&data).with_context(|| format!("{}", path.display()))? {
        let Ok(s) = SlicedPacket::from_ethernet(frame) else { continue };
        let (src, dst) = match &s.net {
            Some(NetSlice::Ipv4(v4)) => (IpAddr::V4(v4.header().source_addr()), IpAddr::V4(v4.header().destination_addr())),
            Some(NetSlice::Ipv6(v6)) => (IpAddr::V6(v6.header().source_addr()), IpAddr::V6(v6.header().destination_addr())),
            _ => continue,
        };
        let Some(TransportSlice::Udp(u)) = &s.transport else { continue };
        // The UDP length tells apart messages whose captured prefix is the same.
        let h = fnv1a(u.payload(), u.length() as u64);
        out.push(((src, dst, h), ts));
    }
    Ok(out)
}

/// The records of a classic pcap file written on this host: (timestamp ns, captured bytes).
/// Read by hand because frames cut at the snap length (orig_len > snaplen, which tcpdump
/// writes on purpose) are refused by pcap-file's reader.
fn pcap_records(data: &[u8]) -> Result<Vec<(u64, &[u8])>> {
    let u32_at = |o: usize| -> Option<u32> { data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) };
    let frac_ns = match u32_at(0) {
        Some(0xa1b2_3c4d) => 1,
        Some(0xa1b2_c3d4) => 1000,
        Some(m) => bail!("not a little-endian pcap file (magic {m:#010x})"),
        None => bail!("shorter than a pcap header"),
    };
    let mut out = Vec::new();
    let mut o = 24;
    while o + 16 <= data.len() {
        let (sec, frac, incl) = (u32_at(o).unwrap_or(0) as u64, u32_at(o + 4).unwrap_or(0) as u64, u32_at(o + 8).unwrap_or(0) as usize);
        let Some(frame) = data.get(o + 16..o + 16 + incl) else { break };
        out.push((sec * 1_000_000_000 + frac * frac_ns, frame));
        o += 16 + incl;
    }
    Ok(out)
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Latencies (ns) of every message sent at one end and received at the other, in both
/// directions. Copies of one message (retransmissions) pair in order.
pub fn match_latencies(a: &[(Key, u64)], b: &[(Key, u64)]) -> Vec<u64> {
    let mut pending: HashMap<Key, VecDeque<u64>> = HashMap::new();
    let mut all: Vec<(u64, bool, Key)> = a.iter().map(|&(k, t)| (t, true, k)).chain(b.iter().map(|&(k, t)| (t, false, k))).collect();
    all.sort_by_key(|&(t, _, _)| t);
    // Which capture saw a message first decides its direction: the sender's tap always
    // fires before the receiver's.
    let mut first_side: HashMap<Key, bool> = HashMap::new();
    let mut out = Vec::new();
    for (t, side, k) in all {
        let origin = *first_side.entry(k).or_insert(side);
        if side == origin {
            pending.entry(k).or_default().push_back(t);
        } else if let Some(t0) = pending.get_mut(&k).and_then(|q| q.pop_front()) {
            out.push(t - t0);
        }
    }
    out
}

/// The one-way latency percentiles (µs) of two captures, and how many messages matched.
pub fn one_way_latency(client: &Path, server: &Path) -> Result<Option<Percentiles>> {
    let a = read_pcap(client)?;
    let b = read_pcap(server)?;
    let ns = match_latencies(&a, &b);
    Ok(crate::sipp::percentiles(ns.into_iter().map(|v| v as f64 / 1000.0).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn k(n: u64, fwd: bool) -> Key {
        let (c, s) = (IpAddr::V4(Ipv4Addr::new(10, 100, 1, 1)), IpAddr::V4(Ipv4Addr::new(10, 100, 0, 2)));
        if fwd {
            (c, s, n)
        } else {
            (s, c, n)
        }
    }

    #[test]
    fn requests_and_responses_pair_across_captures() {
        // Client sends 1 at 100, server receives at 130; server answers 2 at 200, client
        // receives at 260; a message only one side saw (lost) pairs with nothing.
        let client = vec![(k(1, true), 100), (k(2, false), 260), (k(3, true), 300)];
        let server = vec![(k(1, true), 130), (k(2, false), 200)];
        let mut l = match_latencies(&client, &server);
        l.sort();
        assert_eq!(l, vec![30, 60]);
    }

    #[test]
    fn copies_pair_in_order() {
        let client = vec![(k(1, true), 100), (k(1, true), 600)];
        let server = vec![(k(1, true), 110), (k(1, true), 615)];
        assert_eq!(match_latencies(&client, &server), vec![10, 15]);
    }

    #[test]
    fn pcap_records_keep_cut_frames_and_nanoseconds() {
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        f.extend_from_slice(&[0; 20]);
        for (sec, ns, bytes, orig) in [(5u32, 7u32, &b"abc"[..], 3u32), (6, 9, &b"defg"[..], 1500)] {
            for v in [sec, ns, bytes.len() as u32, orig] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend_from_slice(bytes);
        }
        // A record cut short by a capture that was stopped mid-write is left out.
        f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 99, 0, 0, 0, 1]);
        let r = pcap_records(&f).unwrap();
        assert_eq!(r, vec![(5_000_000_007, &b"abc"[..]), (6_000_000_009, &b"defg"[..])]);
        assert!(pcap_records(b"nope").is_err());
    }

    #[test]
    fn sampling_mask_is_a_power_of_two_minus_one() {
        assert_eq!(sample_mask(60.0, 5000.0), 0);
        assert_eq!(sample_mask(9000.0, 5000.0), 1);
        assert_eq!(sample_mask(80_000.0, 5000.0), 15);
        assert_eq!(sample_mask(1e9, 5000.0), 127);
    }
}
