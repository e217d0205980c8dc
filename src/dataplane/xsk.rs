//! AF_XDP sockets for one queue pair, behind the `afxdp` crate (kept to this module: the
//! crate pins an old libbpf and its API is the only place its quirks can leak from).
//!
//! One memory area per queue pair, registered as a UMEM on each NIC: a frame received on the
//! outside socket can be put on the inside socket's TX ring by address, with no copy.
//! Frame ownership is by value: a [`Buf`] is in exactly one place at a time (the free pool,
//! a fill ring, an RX batch, an engine, a TX ring), which is what the accounting counts.

use crate::config::ApplianceConfig;
use afxdp::buf_mmap::BufMmap;
use afxdp::mmap_area::{MmapArea, MmapAreaOptions};
use afxdp::socket::{Socket, SocketOptions, SocketRx, SocketTx};
use afxdp::umem::{Umem, UmemCompletionQueue, UmemFillQueue};
use anyhow::{anyhow, Context, Result};
use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::Arc;

/// What travels with a frame through the pipeline (in the buffer's user slot).
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta {
    /// CLOCK_MONOTONIC ns when the worker took it off the RX ring.
    pub rx_ns: u64,
    /// NIC it arrived on (0 outside, 1 inside).
    pub nic: u8,
    /// Engine that judged it (for the per-engine latency histogram).
    pub engine: u16,
}

/// A UMEM frame.
pub type Buf = BufMmap<'static, Meta>;
/// The memory area of a queue pair.
pub type Area = Arc<MmapArea<'static, Meta>>;
/// afxdp's batch deque (RX batches, TX backlogs).
pub type Deque = arraydeque::ArrayDeque<[Buf; afxdp::PENDING_LEN], arraydeque::Wrapping>;

/// Both rings pairs of one NIC's socket on this queue.
pub struct NicQueue {
    /// Interface name.
    pub name: String,
    /// Completion ring: frames the kernel finished sending.
    pub cq: UmemCompletionQueue<'static, Meta>,
    /// Fill ring: frames lent to the kernel for receiving.
    pub fq: UmemFillQueue<'static, Meta>,
    /// RX ring.
    pub rx: SocketRx<'static, Meta>,
    /// TX ring.
    pub tx: SocketTx<'static, Meta>,
    /// The socket's descriptor (poll, statistics).
    pub fd: RawFd,
}

/// The sockets of one queue on both NICs and the frames they share.
pub struct QueuePair {
    /// Queue index on both NICs.
    pub queue: u32,
    /// The shared memory area (kept alive by whoever holds frames).
    pub area: Area,
    /// Outside, inside.
    pub nics: [NicQueue; 2],
    /// Frames not lent to anyone.
    pub free: Vec<Buf>,
    /// Frames in the area.
    pub frames: usize,
}

/// The kernel's per-socket counters (`struct xdp_statistics`).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct XskStats {
    /// Dropped for reasons other than invalid descriptors (e.g. RX ring full).
    pub rx_dropped: u64,
    /// Invalid RX descriptors.
    pub rx_invalid_descs: u64,
    /// Invalid TX descriptors.
    pub tx_invalid_descs: u64,
    /// RX ring full.
    pub rx_ring_full: u64,
    /// Fill ring empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// TX ring empty when the kernel looked.
    pub tx_ring_empty_descs: u64,
}

/// Reads the kernel's statistics of an AF_XDP socket.
pub fn xsk_stats(fd: RawFd) -> std::io::Result<XskStats> {
    const SOL_XDP: libc::c_int = 283;
    const XDP_STATISTICS: libc::c_int = 7;
    let mut s = [0u64; 6];
    let mut len = std::mem::size_of_val(&s) as libc::socklen_t;
    // SAFETY: s is a writable buffer of len bytes; the kernel writes at most len bytes.
    let r = unsafe { libc::getsockopt(fd, SOL_XDP, XDP_STATISTICS, s.as_mut_ptr().cast(), &mut len) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(XskStats {
        rx_dropped: s[0],
        rx_invalid_descs: s[1],
        tx_invalid_descs: s[2],
        rx_ring_full: s[3],
        rx_fill_ring_empty_descs: s[4],
        tx_ring_empty_descs: s[5],
    })
}

fn open_fds() -> HashSet<RawFd> {
    let listed: HashSet<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    // The listing's own descriptor is in it and closed by now; its number gets reused.
    // SAFETY: F_GETFD only queries the descriptor table.
    listed.into_iter().filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1).collect()
}

fn is_xsk(fd: RawFd) -> bool {
    const AF_XDP: libc::c_int = 44;
    let mut dom: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: dom is a c_int-sized writable buffer.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_DOMAIN, (&mut dom as *mut libc::c_int).cast(), &mut len) };
    r == 0 && dom == AF_XDP
}

impl QueuePair {
    /// Creates the area, both UMEMs and both sockets for `queue`. The XDP program must already
    /// be attached to both NICs (its `xsks_map` receives the sockets).
    pub fn open(outside: &str, inside: &str, queue: u32, app: &ApplianceConfig) -> Result<QueuePair> {
        let frames = app.frames as usize;
        let (area, bufs) = MmapArea::new(frames, app.frame_size as usize, MmapAreaOptions { huge_tlb: false })
            .map_err(|e| anyhow!("mapping {frames} frames of {} bytes: {e:?}", app.frame_size))?;
        let mut free = Vec::with_capacity(frames);
        free.extend(bufs);
        let ring = app.ring_size;
        let open_nic = |name: &str| -> Result<NicQueue> {
            // libbpf opens the socket in xsk_umem__create and binds it in xsk_socket__create.
            let before = open_fds();
            let (umem, cq, fq) = Umem::new(area.clone(), ring, ring)
                .with_context(|| format!("{name} queue {queue}: registering the UMEM (is RLIMIT_MEMLOCK high enough? LimitMEMLOCK=infinity)"))?;
            let opts = SocketOptions { copy_mode: false, zero_copy_mode: false, rx_ring_size: ring, tx_ring_size: ring };
            let (_sock, rx, tx) = Socket::new(umem, name, queue as usize, ring, ring, opts)
                .with_context(|| format!("{name} queue {queue}: creating the AF_XDP socket (does the NIC have {} queues? `ethtool -l {name}`)", queue + 1))?;
            // afxdp does not expose the descriptor; it is the one new AF_XDP socket.
            let fd = open_fds()
                .difference(&before)
                .copied()
                .find(|&fd| is_xsk(fd))
                .ok_or_else(|| anyhow!("{name} queue {queue}: cannot find the new AF_XDP socket's descriptor"))?;
            Ok(NicQueue { name: name.to_string(), cq, fq, rx, tx, fd })
        };
        let out = open_nic(outside)?;
        let ins = open_nic(inside)?;
        Ok(QueuePair { queue, area, nics: [out, ins], free, frames })
    }
}
