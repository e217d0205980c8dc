//! `secsip-perf flood`: a UDP OPTIONS flood at the highest rate this machine can offer, from
//! one source address or from N, bounded in time and count.
//!
//! Frames are built once (Ethernet, IPv4 or IPv6, UDP, a SIP OPTIONS with its own Call-ID and
//! branch) and sent raw on an AF_PACKET socket with sendmmsg(2) bursts, bypassing the qdisc:
//! the source addresses need not be configured on the host and no socket or route lookup runs
//! per datagram, so the generator, not the stack, is what runs out first. Run it in the
//! client namespace (`ip netns exec NAME-client secsip-perf flood ...`); it prints one JSON
//! line with what it offered.

use anyhow::{bail, Context, Result};
use clap::Args;
use secsip::fixtures::{udp_frame_with, CLIENT_MAC, SERVER_MAC};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Options of `secsip-perf flood`.
#[derive(Args, Debug)]
pub struct FloodArgs {
    /// Interface to send on (in the current network namespace).
    #[arg(long, default_value = "eth0")]
    pub iface: String,
    /// First source address; source i is this plus i.
    #[arg(long, default_value = "10.66.0.1")]
    pub src: IpAddr,
    /// Number of source addresses.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sources: u32,
    /// Destination address and port.
    #[arg(long, default_value = "10.99.0.2:5060")]
    pub dst: SocketAddr,
    /// Destination MAC (default: the testbed server's).
    #[arg(long, value_parser = parse_mac)]
    pub dst_mac: Option<[u8; 6]>,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Most frames to send (0: no limit but time).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Frames per sendmmsg(2).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub burst: u32,
    /// Highest rate, frames/s (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<u8> = s.split(':').map(|p| u8::from_str_radix(p, 16)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    parts.try_into().map_err(|_| format!("{s}: not a MAC address"))
}

/// Distinct frames kept per source pool (Call-IDs cycle through them).
const VARIANTS: u32 = 1024;

fn source(base: IpAddr, i: u32) -> IpAddr {
    match base {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(i)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(i as u128)).into()),
    }
}

fn frames(a: &FloodArgs) -> Vec<Vec<u8>> {
    let n = a.sources.max(VARIANTS);
    (0..n)
        .map(|i| {
            let src = SocketAddr::new(source(a.src, i % a.sources), 5060);
            let msg = format!(
                "OPTIONS sip:{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bKfl{i}\r\nMax-Forwards: 70\r\n\
                 From: <sip:flood@{ip}>;tag={i}\r\nTo: <sip:{dst}>\r\nCall-ID: flood-{i}@{ip}\r\nCSeq: 1 OPTIONS\r\n\
                 User-Agent: secsip-perf flood\r\nContent-Length: 0\r\n\r\n",
                dst = a.dst.ip(),
                ip = src.ip(),
            );
            udp_frame_with((CLIENT_MAC, a.dst_mac.unwrap_or(SERVER_MAC)), None, src, a.dst, msg.as_bytes())
        })
        .collect()
}

fn packet_socket(iface: &str) -> Result<OwnedFd> {
    let name = std::ffi::CString::new(iface)?;
    // SAFETY: plain syscall with a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
    if ifindex == 0 {
        bail!("no interface {iface} here");
    }
    // Protocol 0: send only, the socket receives nothing.
    // SAFETY: plain syscall; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("AF_PACKET socket (root needed)");
    }
    // SAFETY: we own the new descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: zeroed sockaddr_ll is valid; the fields set are plain data.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex;
    // SAFETY: sll lives through the call, the size is its own.
    if unsafe { libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32) } != 0 {
        return Err(std::io::Error::last_os_error()).context("bind AF_PACKET");
    }
    let one: libc::c_int = 1;
    // SAFETY: an int option from a live int. Best effort: without it the qdisc is in the way.
    unsafe {
        libc::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, (&one as *const libc::c_int).cast(), 4);
    }
    Ok(fd)
}

/// Runs the flood and prints `{"sent", "seconds", "rate", "sources", "send_errors"}`.
pub fn run(a: &FloodArgs) -> Result<()> {
    if !(0.01..=3600.0).contains(&a.seconds) {
        bail!("--seconds must be 0.01..3600");
    }
    let frames = frames(a);
    let fd = packet_socket(&a.iface)?;
    let burst = a.burst as usize;
    let mut iov: Vec<libc::iovec> = frames.iter().map(|f| libc::iovec { iov_base: f.as_ptr() as *mut _, iov_len: f.len() }).collect();
    // SAFETY: zeroed mmsghdr is valid; each gets one iovec below.
    let mut msgs: Vec<libc::mmsghdr> = (0..frames.len()).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.seconds);
    let (mut sent, mut errors, mut at) = (0u64, 0u64, 0usize);
    loop {
        let now = Instant::now();
        if now >= end || (a.count > 0 && sent >= a.count) {
            break;
        }
        if a.rate > 0 && sent as f64 > a.rate as f64 * now.duration_since(start).as_secs_f64() {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        let mut n = burst.min(frames.len() - at);
        if a.count > 0 {
            n = n.min((a.count - sent) as usize);
        }
        // SAFETY: msgs[at..at + n] are live headers whose iovecs point into `frames`.
        let k = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs[at..].as_mut_ptr(), n as u32, 0) };
        if k < 0 {
            // A full device queue (ENOBUFS) or the like: offered, not sent; try again.
            errors += 1;
            std::thread::yield_now();
            continue;
        }
        sent += k as u64;
        at = (at + k as usize) % frames.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"sent": sent, "seconds": secs, "rate": sent as f64 / secs, "sources": a.sources, "send_errors": errors})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_count_up_from_the_first_and_frames_decode() {
        let a = FloodArgs {
            iface: "lo".into(),
            src: "10.66.0.250".parse().unwrap(),
            sources: 10,
            dst: "10.99.0.2:5060".parse().unwrap(),
            dst_mac: None,
            seconds: 1.0,
            count: 0,
            burst: 8,
            rate: 0,
        };
        let f = frames(&a);
        assert_eq!(f.len(), VARIANTS as usize);
        let srcs: std::collections::HashSet<IpAddr> = f
            .iter()
            .map(|fr| match secsip::wire::decode(fr) {
                Ok(secsip::wire::Frame::Ip(d)) => d.src,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(srcs.len(), 10);
        assert!(srcs.contains(&"10.66.1.3".parse::<IpAddr>().unwrap()));
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Ok([2, 0, 0, 0, 0, 10]));
        assert!(parse_mac("02:00").is_err());
    }
}
