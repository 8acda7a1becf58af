//! The two ways of offering load.
//!
//! - **Closed loop**: `connections` workers, each sending its next request as soon as the
//!   previous one is answered, until the end. Measures the most the daemon acknowledges;
//!   latency is from send to answer.
//! - **Open loop**: requests are scheduled at a fixed message rate (a request carrying k
//!   messages takes k slots: the next one is due k/rate seconds later) whatever the daemon
//!   does, each on a connection of its own (up to `max_connections`, then they wait for one).
//!   Latency is from each request's *scheduled* send time to its answer, so a daemon that
//!   falls behind shows its queueing in the figures instead of silently slowing the
//!   generator down (no coordinated omission). A plain OS thread keeps the schedule (sleeps
//!   are precise to tens of microseconds, where tokio's timer rounds to milliseconds) and
//!   hands each request to the runtime; how late requests actually left is reported as the
//!   send lag.

use crate::http::{Outcome, Pool};
use crate::payload::{Generator, Kind, Send, Target};
use anyhow::{Result, anyhow};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as it happened.
#[derive(Debug)]
pub struct Record {
    pub kind: Kind,
    pub ids: Arc<[String]>,
    pub duplicate: bool,
    /// When it was due (open loop) or when the worker was ready to send it (closed loop).
    pub scheduled: Instant,
    /// When its task started sending (open loop: after the hand-over from the scheduler).
    pub started: Instant,
    pub done: Instant,
    pub outcome: Outcome,
}

/// What every request needs.
pub struct Ctx {
    pub pool: Pool,
    /// A request not answered this long after it was due has failed (a provider gives up
    /// too); waiting for a connection counts.
    pub timeout: Duration,
    pub generator: Mutex<Generator>,
    pub records: Mutex<Vec<Record>>,
    twilio_path: String,
    wa_path: String,
}

impl Ctx {
    pub fn new(pool: Pool, timeout: Duration, target: &Target, generator: Generator) -> Self {
        Self {
            pool,
            timeout,
            generator: Mutex::new(generator),
            records: Mutex::new(Vec::new()),
            twilio_path: target.twilio_path(),
            wa_path: target.wa_path(),
        }
    }

    fn next_send(&self) -> Result<Send> {
        let mut g = self
            .generator
            .lock()
            .map_err(|_| anyhow!("generator lock poisoned"))?;
        Ok(g.next_send())
    }

    fn recorded(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Takes every record so far.
    pub fn take_records(&self) -> Vec<Record> {
        self.records
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Sends one request and records it.
async fn fire(ctx: Arc<Ctx>, send: Send, scheduled: Instant) {
    let started = Instant::now();
    let path = match send.prepared.kind {
        Kind::Twilio => &ctx.twilio_path,
        Kind::WhatsApp => &ctx.wa_path,
    };
    let deadline = (scheduled + ctx.timeout).into();
    let outcome = tokio::time::timeout_at(deadline, ctx.pool.post(path, &send.prepared))
        .await
        .unwrap_or_else(|_| Outcome::Error(format!("no answer within {:?}", ctx.timeout)));
    let done = Instant::now();
    let record = Record {
        kind: send.prepared.kind,
        ids: send.prepared.ids.clone(),
        duplicate: send.duplicate,
        scheduled,
        started,
        done,
        outcome,
    };
    if let Ok(mut records) = ctx.records.lock() {
        records.push(record);
    }
}

/// Closed loop until `end`; returns once every worker's last request is answered.
pub async fn closed(ctx: Arc<Ctx>, connections: usize, end: Instant) -> Result<()> {
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let ctx = ctx.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < end {
                let send = ctx.next_send()?;
                let ready = Instant::now();
                fire(ctx.clone(), send, ready).await;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

/// Open loop at `rate` messages/s from `start` until `end`; returns once every scheduled
/// request is answered or has failed (each is bounded by the pool's timeout).
pub async fn open(ctx: Arc<Ctx>, rate: f64, start: Instant, end: Instant) -> Result<usize> {
    if rate <= 0.0 {
        return Err(anyhow!("the rate must be positive"));
    }
    let handle = tokio::runtime::Handle::current();
    let scheduler_ctx = ctx.clone();
    let scheduler = std::thread::Builder::new()
        .name("open-loop-scheduler".into())
        .spawn(move || -> Result<usize> {
            let (mut requests, mut messages) = (0usize, 0u64);
            loop {
                let due = start + Duration::from_secs_f64(messages as f64 / rate);
                if due >= end {
                    return Ok(requests);
                }
                let send = scheduler_ctx.next_send()?;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                messages += send.prepared.ids.len() as u64;
                handle.spawn(fire(scheduler_ctx.clone(), send, due));
                requests += 1;
            }
        })?;
    let scheduled = tokio::task::spawn_blocking(move || scheduler.join())
        .await?
        .map_err(|_| anyhow!("the scheduler thread panicked"))??;
    // Every request ends within the timeout of when it was due.
    let deadline = end + ctx.timeout + Duration::from_secs(5);
    while ctx.recorded() < scheduled {
        if Instant::now() > deadline {
            return Err(anyhow!(
                "{} of {scheduled} requests never finished",
                scheduled - ctx.recorded()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(scheduled)
}

/// Peak resident set size of a process, sampled every 100 ms, and its high-water mark.
pub struct RssSampler {
    peak_kb: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    pid: u32,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        use std::sync::atomic::Ordering;
        let peak_kb = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak_kb.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = status_kb(pid, "VmRSS:") {
                    p.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            peak_kb,
            stop,
            task,
            pid,
        }
    }

    /// (peak sampled VmRSS, VmHWM) in MB.
    pub async fn finish(self) -> (f64, Option<f64>) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        if let Some(kb) = status_kb(self.pid, "VmRSS:") {
            self.peak_kb.fetch_max(kb, Ordering::Relaxed);
        }
        let mb = |kb: u64| kb as f64 / 1024.0;
        (
            mb(self.peak_kb.load(Ordering::Relaxed)),
            status_kb(self.pid, "VmHWM:").map(mb),
        )
    }
}

/// A `kB` field of `/proc/PID/status`.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
