//! One RX/TX worker per queue pair: takes SIP frames off both NICs' RX rings, hands them to
//! the engine that owns their Call-ID (or judges them inline in run-to-completion mode), and
//! puts the verdicts on the wire: forwarded frames on the other NIC's TX ring, reject answers
//! on the ingress NIC's, dropped frames back in the free pool. Non-SIP traffic never gets here:
//! the XDP program bridges it in the kernel.
//!
//! The loop, each round: completions -> verdicts back from engines -> RX -> TX -> refill.
//! When a round finds nothing to do for `spin_polls` rounds, the worker sleeps in poll(2) on
//! both sockets and its wake-up eventfd (engines write it when they hand back frames to a
//! sleeping worker), so an idle appliance uses no CPU.

use super::admit::{Admission, Shed};
use super::judge::{Done, EngineSnapshot, Judge, Out};
use super::shard;
use super::stats::{Accounting, Freshness, WorkerCounters};
use super::xsk::{Buf, Deque, Meta, QueuePair};
use crate::config::{AdmissionConfig, Failure};
use crate::hash::Keyer;
use crate::wire::{self, Frame};
use afxdp::buf::Buf as _;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use hdrhistogram::Histogram;
use std::os::fd::RawFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A frame on its way to an engine.
pub struct Job {
    /// The frame.
    pub buf: Buf,
    /// The worker it must come back to.
    pub worker: u16,
}

/// What engines and the controller share with one worker.
pub struct WorkerShared {
    /// Counters (written by the worker only).
    pub counters: WorkerCounters,
    /// Where the frames are, for the leak check.
    pub accounting: Accounting,
    /// The worker is (about to be) asleep: write `wake_fd` after handing it something.
    pub sleeping: AtomicBool,
    /// eventfd that ends the worker's poll(2).
    pub wake_fd: RawFd,
    /// Latency histograms (rx -> tx, ns), one per engine, published twice a second and on request.
    pub latency: Mutex<Vec<Histogram<u64>>>,
    /// Generation of the last publication (see [`Freshness`]).
    pub published: AtomicU64,
    /// Requests for fresh counters.
    pub freshness: Arc<Freshness>,
}

impl WorkerShared {
    /// Shared state for a worker whose frames may be judged by `engines` engines.
    pub fn new(engines: usize, freshness: Arc<Freshness>) -> std::io::Result<WorkerShared> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(WorkerShared {
            counters: WorkerCounters::default(),
            accounting: Accounting::default(),
            sleeping: AtomicBool::new(false),
            wake_fd: fd,
            latency: Mutex::new((0..engines.max(1)).map(|_| new_histogram()).collect()),
            published: AtomicU64::new(0),
            freshness,
        })
    }

    /// Ends the worker's sleep, if it sleeps.
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.kick();
        }
    }

    /// Ends the worker's sleep unconditionally (shutdown).
    pub fn kick(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.wake_fd, (&one as *const u64).cast(), 8) };
    }
}

impl Drop for WorkerShared {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.wake_fd) };
    }
}

/// A latency histogram from 1 ns to 10 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Who judges this worker's frames.
pub enum Judging {
    /// Engine threads, by Call-ID hash.
    Sharded {
        /// One sender per engine.
        engines: Vec<Sender<Job>>,
        /// Those engines' shared state (to wake them is not needed: they block on the channel).
        returns: Receiver<Done>,
    },
    /// This worker, inline.
    Inline(Box<Judge>),
}

/// Settings of a worker's loop.
pub struct WorkerConfig {
    /// Worker index (queue index).
    pub index: u16,
    /// Frames taken from a ring at once.
    pub batch: usize,
    /// Empty rounds before sleeping.
    pub spin_polls: u32,
    /// Longest sleep, ms.
    pub idle_timeout_ms: u64,
    /// What to do when an engine thread is gone (a full queue always sheds).
    pub failure: Failure,
    /// Per-source admission before the engines.
    pub admission: AdmissionConfig,
    /// Capacity of each engine's queue.
    pub engine_queue: usize,
    /// Timer tick of an inline engine, ns.
    pub tick_ns: u64,
    /// Entries of the fill ring.
    pub ring: usize,
}

/// Largest batch a worker moves at once (`appliance.batch` is capped to it).
pub const MAX_BATCH: usize = 512;

/// CLOCK_MONOTONIC in ns (the clock of the XDP program's bans and of the engines).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Loop<'a> {
    qp: QueuePair,
    cfg: WorkerConfig,
    shared: &'a WorkerShared,
    keyer: Keyer,
    rx: [Box<Deque>; 2],
    /// Frames waiting for room on each NIC's TX ring.
    tx: [Box<Deque>; 2],
    in_fill: [usize; 2],
    in_tx: [usize; 2],
    in_engines: usize,
    hist: Vec<Histogram<u64>>,
    /// Frames returned to us that are ready to route (inline judging collects here).
    done: Vec<Done>,
    admission: Admission,
}

/// Runs a worker until `stop` is set and everything it lent out has come back (or a second
/// has passed). Returns the queue pair so its frames can be counted and its sockets closed
/// after every engine is gone.
pub fn run(
    qp: QueuePair,
    cfg: WorkerConfig,
    shared: &WorkerShared,
    mut judging: Judging,
    keyer: Keyer,
    stop: &AtomicBool,
    inline_snapshot: Option<&Mutex<EngineSnapshot>>,
) -> (QueuePair, Judging) {
    let engines = match &judging {
        Judging::Sharded { engines, .. } => engines.len(),
        Judging::Inline(_) => 1,
    };
    let admission = Admission::new(&cfg.admission, cfg.engine_queue, keyer, mono_ns());
    let mut l = Loop {
        qp,
        cfg,
        shared,
        keyer,
        rx: [Box::new(Deque::new()), Box::new(Deque::new())],
        tx: [Box::new(Deque::new()), Box::new(Deque::new())],
        in_fill: [0, 0],
        in_tx: [0, 0],
        in_engines: 0,
        hist: (0..engines).map(|_| new_histogram()).collect(),
        done: Vec::with_capacity(256),
        admission,
    };
    l.refill();
    let mut idle_rounds = 0u32;
    let mut last_publish = mono_ns();
    let mut last_tick = last_publish;
    let mut stopping_since: Option<u64> = None;
    loop {
        let mut work = l.complete();
        work += l.collect(&mut judging);
        let now = mono_ns();
        if stopping_since.is_none() {
            work += l.receive(now, &mut judging);
        }
        work += l.transmit(now);
        l.refill();
        if let Judging::Inline(j) = &mut judging {
            if now.saturating_sub(last_tick) >= l.cfg.tick_ns {
                last_tick = now;
                let done = &mut l.done;
                j.tick(now, &mut |_, d| done.push(d));
            }
        }
        let want = l.shared.freshness.want.load(Ordering::Relaxed);
        if now.saturating_sub(last_publish) >= 500_000_000 || want != l.shared.published.load(Ordering::Relaxed) {
            last_publish = now;
            l.publish(&judging, inline_snapshot);
            l.shared.published.store(want, Ordering::Release);
        }
        l.account();

        if stop.load(Ordering::Relaxed) {
            let since = *stopping_since.get_or_insert(now);
            if let Judging::Inline(j) = &mut judging {
                let done = &mut l.done;
                j.release_all(&mut |_, d| done.push(d));
            }
            let settled = l.in_engines == 0 && l.done.is_empty() && l.tx.iter().all(|t| t.is_empty()) && l.in_tx == [0, 0];
            if settled || now.saturating_sub(since) > 1_000_000_000 {
                break;
            }
        }

        if work > 0 {
            idle_rounds = 0;
            continue;
        }
        idle_rounds += 1;
        if idle_rounds >= l.cfg.spin_polls {
            idle_rounds = 0;
            l.sleep(&judging, stopping_since.is_some());
        }
    }
    l.publish(&judging, inline_snapshot);
    l.account();
    // Everything still in the TX backlog goes back to the pool (shutdown only).
    for t in &mut l.tx {
        while let Some(b) = t.pop_front() {
            l.qp.free.push(b);
        }
    }
    l.account();
    (l.qp, judging)
}

impl Loop<'_> {
    /// Frames the kernel finished sending come back to the pool.
    fn complete(&mut self) -> usize {
        let mut n = 0;
        for i in 0..2 {
            if self.in_tx[i] == 0 {
                continue;
            }
            if let Ok(k) = self.qp.nics[i].cq.service(&mut self.qp.free, self.cfg.batch * 4) {
                self.in_tx[i] -= k.min(self.in_tx[i]);
                n += k;
            }
        }
        n
    }

    /// Verdicts back from the engines (or from inline judging) are routed.
    fn collect(&mut self, judging: &mut Judging) -> usize {
        let mut n = 0;
        if let Judging::Sharded { returns, .. } = judging {
            while let Ok(d) = returns.try_recv() {
                self.in_engines -= 1;
                self.done.push(d);
            }
        }
        let mut done = std::mem::take(&mut self.done);
        for d in done.drain(..) {
            n += 1;
            self.route(d);
        }
        self.done = done;
        n
    }

    fn route(&mut self, d: Done) {
        let c = &self.shared.counters;
        let nic = d.buf.get_user().nic as usize & 1;
        match d.out {
            Out::Forward => self.queue_tx(nic ^ 1, d.buf),
            Out::Inject => {
                WorkerCounters::bump(&c.injected);
                self.queue_tx(nic, d.buf)
            }
            Out::Drop => {
                WorkerCounters::bump(&c.dropped);
                self.qp.free.push(d.buf)
            }
            Out::Split { at } => self.split(nic, d.buf, at as usize),
        }
    }

    /// Sends `[0, at)` of `buf` back out of `nic` and the rest out of the other NIC, in a
    /// frame from the free pool; with none free the second is lost, counted.
    fn split(&mut self, nic: usize, mut buf: Buf, at: usize) {
        let len = buf.get_len() as usize;
        match self.qp.free.pop() {
            Some(mut second) if at < len && len - at <= second.get_capacity() as usize => {
                second.get_data_mut()[..len - at].copy_from_slice(&buf.get_data()[at..len]);
                second.set_len((len - at) as u16);
                self.queue_tx(nic ^ 1, second);
            }
            Some(second) => self.qp.free.push(second),
            None => WorkerCounters::bump(&self.shared.counters.split_unsent),
        }
        buf.set_len(at.min(len) as u16);
        WorkerCounters::bump(&self.shared.counters.injected);
        self.queue_tx(nic, buf);
    }

    fn queue_tx(&mut self, nic: usize, buf: Buf) {
        if let Some(evicted) = self.tx[nic].push_back(buf) {
            // The backlog is as large as afxdp's deque: the TX ring has been full for a long
            // time. The oldest frame loses.
            WorkerCounters::bump(&self.shared.counters.tx_backlog_dropped);
            self.qp.free.push(evicted);
        }
    }

    fn receive(&mut self, now: u64, judging: &mut Judging) -> usize {
        let mut total = 0;
        for nic in 0..2 {
            let meta = Meta { rx_ns: now, nic: nic as u8, engine: 0 };
            let n = self.qp.nics[nic].rx.try_recv(&mut self.rx[nic], self.cfg.batch, meta).unwrap_or_default();
            if n == 0 {
                continue;
            }
            total += n;
            self.in_fill[nic] -= n.min(self.in_fill[nic]);
            self.shared.counters.add_rx(nic, n as u64);
            if let Judging::Sharded { engines, .. } = judging {
                let depth = engines.iter().map(|e| e.len()).max().unwrap_or(0);
                self.admission.pressure(now, depth);
            }
            while let Some(buf) = self.rx[nic].pop_front() {
                self.dispatch(now, buf, judging);
            }
        }
        total
    }

    fn dispatch(&mut self, now: u64, buf: Buf, judging: &mut Judging) {
        match judging {
            // Inline judging has no queue to overrun: a worker that falls behind leaves frames
            // on the RX ring, where the kernel drops and counts them; none passes unjudged.
            Judging::Inline(j) => {
                let done = &mut self.done;
                j.judge(now, buf, self.cfg.index, &mut |_, d| done.push(d));
            }
            Judging::Sharded { engines, .. } => {
                let len = buf.get_len() as usize;
                // Decoded once for both: who sent it (admission) and who judges it (shard).
                let decoded = wire::decode(&buf.get_data()[..len]);
                let src = match &decoded {
                    Ok(Frame::Ip(d)) => Some(d.src),
                    _ => None,
                };
                if let Err(cause) = self.admission.admit(now, src) {
                    return self.shed(cause, buf);
                }
                let k = shard::shard_decoded(&self.keyer, decoded, engines.len());
                match engines[k].try_send(Job { buf, worker: self.cfg.index }) {
                    Ok(()) => self.in_engines += 1,
                    Err(TrySendError::Full(job)) => self.shed(Shed::QueueFull, job.buf),
                    Err(TrySendError::Disconnected(job)) => match self.cfg.failure {
                        // The engine thread is dead: part of the daemon is, and fail_open is
                        // what the operator chose for a dead daemon.
                        Failure::FailOpen => {
                            WorkerCounters::bump(&self.shared.counters.uninspected_forwarded);
                            let nic = job.buf.get_user().nic as usize & 1;
                            self.queue_tx(nic ^ 1, job.buf);
                        }
                        Failure::FailClosed => self.shed(Shed::EngineGone, job.buf),
                    },
                }
            }
        }
    }

    fn shed(&mut self, cause: Shed, buf: Buf) {
        self.shared.counters.shed(cause);
        self.qp.free.push(buf);
    }

    fn transmit(&mut self, now: u64) -> usize {
        let mut total = 0;
        for nic in 0..2 {
            if self.tx[nic].is_empty() {
                continue;
            }
            // Latency is taken when the frame goes on the ring: what the appliance adds.
            let mut stamps = [(0u64, 0u16); MAX_BATCH];
            let n = self.tx[nic].len().min(self.cfg.batch);
            for (s, b) in stamps.iter_mut().zip(self.tx[nic].iter().take(n)) {
                *s = (b.get_user().rx_ns, b.get_user().engine);
            }
            let sent = self.qp.nics[nic].tx.try_send(&mut self.tx[nic], n).unwrap_or(0);
            for &(rx_ns, engine) in &stamps[..sent] {
                if rx_ns != 0 {
                    let last = self.hist.len() - 1;
                    let h = &mut self.hist[(engine as usize).min(last)];
                    let _ = h.record(now.saturating_sub(rx_ns).max(1));
                }
            }
            self.in_tx[nic] += sent;
            self.shared.counters.add_tx(nic, sent as u64);
            total += sent;
        }
        total
    }

    /// Keeps each fill ring stocked from the free pool.
    fn refill(&mut self) {
        for nic in 0..2 {
            let target = self.fill_target();
            let deficit = target.saturating_sub(self.in_fill[nic]);
            if deficit >= self.cfg.batch.min(target) && !self.qp.free.is_empty() {
                if let Ok(n) = self.qp.nics[nic].fq.fill(&mut self.qp.free, deficit) {
                    self.in_fill[nic] += n;
                }
            }
            if self.qp.nics[nic].fq.needs_wakeup() {
                self.qp.nics[nic].rx.wake();
            }
        }
    }

    fn fill_target(&self) -> usize {
        // A full ring per NIC, but never more than a quarter of the frames each: the rest are
        // for frames in engines and TX backlogs.
        self.cfg.ring.min(self.qp.frames / 4).max(1)
    }

    fn account(&self) {
        let a = &self.shared.accounting;
        a.set(
            self.qp.frames,
            self.qp.free.len(),
            self.in_fill[0] + self.in_fill[1],
            self.in_engines,
            self.in_tx[0] + self.in_tx[1],
            self.tx[0].len() + self.tx[1].len() + self.done.len(),
        );
    }

    fn publish(&mut self, judging: &Judging, inline_snapshot: Option<&Mutex<EngineSnapshot>>) {
        if let Ok(mut slot) = self.shared.latency.lock() {
            for (dst, src) in slot.iter_mut().zip(&self.hist) {
                dst.clone_from(src);
            }
        }
        if let (Judging::Inline(j), Some(slot)) = (judging, inline_snapshot) {
            let mut s = j.snapshot();
            s.generation = self.shared.freshness.want.load(Ordering::Relaxed);
            if let Ok(mut g) = slot.lock() {
                *g = s;
            }
        }
    }

    fn sleep(&mut self, judging: &Judging, stopping: bool) {
        self.shared.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let pending = match judging {
            Judging::Sharded { returns, .. } => !returns.is_empty(),
            Judging::Inline(_) => false,
        };
        if !pending {
            let mut fds = [
                libc::pollfd { fd: self.qp.nics[0].fd, events: if stopping { 0 } else { libc::POLLIN }, revents: 0 },
                libc::pollfd { fd: self.qp.nics[1].fd, events: if stopping { 0 } else { libc::POLLIN }, revents: 0 },
                libc::pollfd { fd: self.shared.wake_fd, events: libc::POLLIN, revents: 0 },
            ];
            let timeout = if stopping { 10 } else { self.cfg.idle_timeout_ms as i32 };
            WorkerCounters::bump(&self.shared.counters.sleeps);
            // SAFETY: fds is a live array of 3 pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
            if fds[2].revents != 0 {
                let mut v = 0u64;
                // SAFETY: reads 8 bytes into a u64 we own (resets the eventfd).
                unsafe { libc::read(self.shared.wake_fd, (&mut v as *mut u64).cast(), 8) };
            }
        }
        self.shared.sleeping.store(false, Ordering::SeqCst);
    }
}
