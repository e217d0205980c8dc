//! Engine threads (sharded mode): each owns a [`Judge`] and takes frames from its one bounded
//! channel, fed by every worker; verdicts go back on the owning worker's return channel, and a
//! worker that sleeps is woken through its eventfd.

use super::consult::Cross;
use super::judge::{Done, EngineSnapshot, Judge};
use super::stats::Freshness;
use super::worker::{mono_ns, Job, WorkerShared};
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How an engine thread runs.
pub struct EngineLoop {
    /// Frames from the workers.
    pub input: Receiver<Job>,
    /// Consults and answers from the other engines (`never()` with one engine).
    pub inbox: Receiver<Cross>,
    /// Return channel of each worker, by worker index.
    pub returns: Vec<Sender<Done>>,
    /// Each worker's shared state, to wake it.
    pub workers: Vec<Arc<WorkerShared>>,
    /// Timer tick, ns.
    pub tick_ns: u64,
    /// Longest wait for a frame before housekeeping.
    pub idle: Duration,
    /// Frames judged between rule-set checks and wake-ups.
    pub batch: usize,
    /// Where the counters are published.
    pub snapshot: Arc<Mutex<EngineSnapshot>>,
    /// Requests for fresh counters.
    pub freshness: Arc<Freshness>,
}

/// Runs until every worker has dropped its sender. When `stop` is set, frames held for
/// reassembly are handed back (dropped) so the workers can account for all their frames.
pub fn run(mut judge: Judge, l: EngineLoop, stop: &AtomicBool) {
    let mut touched = vec![false; l.returns.len()];
    let mut last_tick = mono_ns();
    let mut last_publish = last_tick;
    let mut released = false;
    let mut published = 0;
    loop {
        let (first, cross) = crossbeam_channel::select! {
            recv(l.input) -> m => match m {
                Ok(job) => (Some(job), None),
                Err(_) => break,
            },
            recv(l.inbox) -> m => (None, m.ok()),
            default(l.idle) => (None, None),
        };
        let now = mono_ns();
        {
            let mut out = |w: u16, d: Done| {
                let w = w as usize;
                // The return channel holds every frame of the worker: send never waits.
                if l.returns[w].send(d).is_ok() {
                    touched[w] = true;
                }
            };
            if let Some(c) = cross {
                judge.cross(now, c, &mut out);
            }
            // Other engines wait on these: take them before frames (they are bounded anyway).
            for _ in 0..l.batch {
                match l.inbox.try_recv() {
                    Ok(c) => judge.cross(now, c, &mut out),
                    Err(_) => break,
                }
            }
            if let Some(job) = first {
                judge.refresh_rules();
                judge.judge(now, job.buf, job.worker, &mut out);
                for _ in 1..l.batch {
                    match l.input.try_recv() {
                        Ok(job) => judge.judge(now, job.buf, job.worker, &mut out),
                        Err(_) => break,
                    }
                }
            }
            if now.saturating_sub(last_tick) >= l.tick_ns {
                last_tick = now;
                judge.tick(now, &mut out);
            }
            if stop.load(Ordering::Relaxed) && !released {
                released = true;
                judge.release_all(&mut out);
            }
        }
        for (w, t) in touched.iter_mut().enumerate() {
            if std::mem::take(t) {
                l.workers[w].wake();
            }
        }
        let want = l.freshness.want.load(Ordering::Relaxed);
        if now.saturating_sub(last_publish) >= 500_000_000 || want != published {
            last_publish = now;
            published = want;
            publish(&judge, &l.snapshot, want);
        }
    }
    let mut out = |w: u16, d: Done| {
        let _ = l.returns[w as usize].send(d);
    };
    judge.release_all(&mut out);
    publish(&judge, &l.snapshot, published);
}

fn publish(judge: &Judge, slot: &Mutex<EngineSnapshot>, generation: u64) {
    let mut s = judge.snapshot();
    s.generation = generation;
    if let Ok(mut g) = slot.lock() {
        *g = s;
    }
}
