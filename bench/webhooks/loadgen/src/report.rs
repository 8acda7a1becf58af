//! Results: what each run writes (`--out FILE`, JSON), the per-run summary printed at its
//! end, and the table `webhooks-loadgen table FILE...` prints from a set of result files,
//! with Switchboard's throughput as a ratio of the store ceiling and the targets.

use crate::ceiling::CeilingResult;
use crate::check::CheckReport;
use crate::stats::Summary;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Webhook→SSE latency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SseReport {
    /// Events received (all types).
    pub events: usize,
    pub message_created: usize,
    /// Stored messages whose `message.created` never arrived.
    pub missing: usize,
    /// From the first due time of a message's webhook to its event, window only.
    pub latency: Summary,
}

/// One load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub label: String,
    pub backend: String,
    pub mode: String,
    pub connections: usize,
    pub rate: Option<f64>,
    pub wa_share: f64,
    pub wa_batch: usize,
    pub dup_share: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub requests: u64,
    pub messages_sent: u64,
    pub duplicate_requests: u64,
    pub acked_requests: u64,
    pub non_2xx: BTreeMap<String, u64>,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub acked_msgs_per_s: f64,
    pub acked_requests_per_s: f64,
    pub latency: Summary,
    pub latency_twilio: Summary,
    pub latency_whatsapp: Summary,
    pub send_lag: Summary,
    pub sse: Option<SseReport>,
    pub rss_peak_mb: Option<f64>,
    pub rss_hwm_mb: Option<f64>,
    pub check: CheckReport,
    pub load_average: String,
    /// The generator's own CPU time (user + system) during the load, and the load's wall
    /// time: their ratio near the number of CPUs it may use means it was saturated.
    pub generator_cpu_s: f64,
    pub generator_wall_s: f64,
}

/// What a result file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultFile {
    Run(Box<RunResult>),
    Ceiling(CeilingResult),
}

pub fn write(path: &Path, result: &ResultFile) -> Result<()> {
    let text = serde_json::to_string_pretty(result)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

pub fn read(path: &Path) -> Result<ResultFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn mode_label(r: &RunResult) -> String {
    match r.rate {
        Some(rate) => format!("open {rate:.0} msg/s"),
        None => format!("closed {} conns", r.connections),
    }
}

fn non_2xx_total(r: &RunResult) -> u64 {
    r.non_2xx.values().sum()
}

/// The summary printed at the end of a run.
pub fn print_run(r: &RunResult) {
    println!(
        "{} [{}, {}]: {} requests ({} re-sends), {} messages sent, load average {}",
        r.label,
        r.backend,
        mode_label(r),
        r.requests,
        r.duplicate_requests,
        r.messages_sent,
        r.load_average
    );
    println!(
        "  acked: {:.1} msgs/s, {:.1} requests/s over {:.0} s after {:.0} s warm-up",
        r.acked_msgs_per_s, r.acked_requests_per_s, r.duration_s, r.warmup_s
    );
    let l = &r.latency;
    println!(
        "  latency (acked{}): p50 {:.2} ms  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
        if r.rate.is_some() {
            ", from the scheduled send time"
        } else {
            ""
        },
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        l.count
    );
    println!(
        "    twilio p50 {:.2} p99 {:.2} (n={}); whatsapp batch of {} p50 {:.2} p99 {:.2} (n={})",
        r.latency_twilio.p50_ms,
        r.latency_twilio.p99_ms,
        r.latency_twilio.count,
        r.wa_batch,
        r.latency_whatsapp.p50_ms,
        r.latency_whatsapp.p99_ms,
        r.latency_whatsapp.count
    );
    println!(
        "  generator CPU: {:.1} s in {:.1} s ({:.0} % of one CPU)",
        r.generator_cpu_s,
        r.generator_wall_s,
        100.0 * r.generator_cpu_s / r.generator_wall_s.max(1e-9)
    );
    if r.rate.is_some() {
        println!(
            "  generator send lag: p50 {:.3} ms  p99 {:.3}  max {:.3}",
            r.send_lag.p50_ms, r.send_lag.p99_ms, r.send_lag.max_ms
        );
    }
    println!(
        "  non-2xx: {} {:?}; errors: {} {:?}",
        non_2xx_total(r),
        r.non_2xx,
        r.errors,
        r.error_kinds
    );
    if let Some(s) = &r.sse {
        println!(
            "  webhook→SSE: p50 {:.2} ms  p99 {:.2}  max {:.2} (n={}); {} events, {} message.created, {} stored messages without one",
            s.latency.p50_ms,
            s.latency.p99_ms,
            s.latency.max_ms,
            s.latency.count,
            s.events,
            s.message_created,
            s.missing
        );
    }
    if let (Some(peak), hwm) = (r.rss_peak_mb, r.rss_hwm_mb) {
        println!(
            "  daemon RSS: peak sampled {peak:.1} MB, VmHWM {}",
            hwm.map_or("?".into(), |h| format!("{h:.1} MB"))
        );
    }
    let c = &r.check;
    println!(
        "  check: {} — {} ids sent, {} acked, {} rows; missing {}, stored twice {}, unknown {}; unacked: {} stored anyway, {} not stored",
        if c.ok { "OK" } else { "FAILED" },
        c.ids_sent,
        c.ids_acked,
        c.rows,
        c.missing,
        c.duplicated,
        c.unknown,
        c.in_doubt_stored,
        c.unacked_absent
    );
    for e in &c.examples {
        println!("    {e}");
    }
}

/// One target line.
struct Target {
    what: String,
    value: Option<f64>,
    op: &'static str,
    limit: f64,
    unit: &'static str,
}

fn verdict(t: &Target) -> &'static str {
    match t.value {
        None => "n/a",
        Some(v) if (t.op == ">=" && v >= t.limit) || (t.op == "<" && v < t.limit) => "PASS",
        Some(_) => "MISS",
    }
}

/// Prints the table for every backend present in `files`; returns false when a check
/// failed.
pub fn print_table(files: &[ResultFile]) -> bool {
    let mut all_ok = true;
    let mut backends: Vec<&str> = files
        .iter()
        .map(|f| match f {
            ResultFile::Run(r) => r.backend.as_str(),
            ResultFile::Ceiling(c) => c.backend.as_str(),
        })
        .collect();
    // SQLite (the default store) first.
    backends.sort_unstable_by_key(|b| (*b != "sqlite", *b));
    backends.dedup();
    for backend in backends {
        let runs: Vec<&RunResult> = files
            .iter()
            .filter_map(|f| match f {
                ResultFile::Run(r) if r.backend == backend => Some(r.as_ref()),
                _ => None,
            })
            .collect();
        // Measured before and after the closed loop: the ratio uses their mean.
        let ceilings: Vec<&CeilingResult> = files
            .iter()
            .filter_map(|f| match f {
                ResultFile::Ceiling(c) if c.backend == backend => Some(c),
                _ => None,
            })
            .collect();
        let ceiling = (!ceilings.is_empty())
            .then(|| ceilings.iter().map(|c| c.inserts_per_s).sum::<f64>() / ceilings.len() as f64);
        println!();
        println!("{backend}");
        println!(
            "  {:<20} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>7} {:>9} {:>6}",
            "run",
            "acked/s",
            "req/s",
            "×ceiling",
            "p50 ms",
            "p99 ms",
            "max ms",
            "SSE p99",
            "non2xx",
            "errors",
            "RSS MB",
            "load",
            "check"
        );
        for r in &runs {
            let ratio = ceiling
                .filter(|_| r.rate.is_none())
                .map(|c| format!("{:.2}", r.acked_msgs_per_s / c))
                .unwrap_or_else(|| "-".into());
            let sse = r
                .sse
                .as_ref()
                .map(|s| format!("{:.2}", s.latency.p99_ms))
                .unwrap_or_else(|| "-".into());
            all_ok &= r.check.ok;
            println!(
                "  {:<20} {:>9.1} {:>8.1} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>7} {:>6} {:>7} {:>9} {:>6}",
                mode_label(r),
                r.acked_msgs_per_s,
                r.acked_requests_per_s,
                ratio,
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.latency.max_ms,
                sse,
                non_2xx_total(r),
                r.errors,
                r.rss_peak_mb.map_or("-".into(), |m| format!("{m:.1}")),
                r.load_average.split(' ').next().unwrap_or("?"),
                if r.check.ok { "OK" } else { "FAILED" }
            );
        }
        if let Some(mean) = ceiling {
            println!("  store ceiling: {mean:.1} durable one-row inserts/s (mean of the below)");
        }
        for c in &ceilings {
            println!(
                "    {}: {:.1} inserts/s ({} workers, pool {}; p50 {:.2} ms, p99 {:.2} ms; load {})",
                c.label,
                c.inserts_per_s,
                c.workers,
                c.pool,
                c.latency.p50_ms,
                c.latency.p99_ms,
                c.load_average
            );
        }
        for r in runs.iter().filter(|r| r.rate.is_some()) {
            if let Some(rate) = r.rate
                && r.acked_msgs_per_s < 0.95 * rate
            {
                println!(
                    "  note: {} acknowledged only {:.0} msgs/s of the {rate:.0} offered: the daemon did not keep up, its latency is queueing",
                    mode_label(r),
                    r.acked_msgs_per_s
                );
            }
        }
        let targets = targets(backend, &runs);
        println!("  targets:");
        for t in &targets {
            let value = t
                .value
                .map_or("missing".into(), |v| format!("{v:.1} {}", t.unit));
            println!(
                "    {:<38} {:>14}   {} {} {}   {}",
                t.what,
                value,
                t.op,
                t.limit,
                t.unit,
                verdict(t)
            );
        }
    }
    all_ok
}

fn targets(backend: &str, runs: &[&RunResult]) -> Vec<Target> {
    let closed = runs.iter().find(|r| r.rate.is_none());
    let open = |rate: f64| {
        runs.iter()
            .find(|r| r.rate.is_some_and(|x| (x - rate).abs() < 0.5))
    };
    let p99 = |rate: f64| open(rate).map(|r| r.latency.p99_ms);
    let rss = runs
        .iter()
        .filter_map(|r| r.rss_peak_mb)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let mut t = Vec::new();
    let (min_rate, p99_1000) = if backend == "sqlite" {
        (3000.0, 10.0)
    } else {
        (2000.0, 20.0)
    };
    t.push(Target {
        what: "closed loop acked messages/s".into(),
        value: closed.map(|r| r.acked_msgs_per_s),
        op: ">=",
        limit: min_rate,
        unit: "/s",
    });
    t.push(Target {
        what: "p99 latency at 1000 msg/s".into(),
        value: p99(1000.0),
        op: "<",
        limit: p99_1000,
        unit: "ms",
    });
    if backend == "sqlite" {
        t.push(Target {
            what: "p99 latency at 2000 msg/s".into(),
            value: p99(2000.0),
            op: "<",
            limit: 50.0,
            unit: "ms",
        });
    }
    t.push(Target {
        what: "webhook→SSE p99 at 1000 msg/s".into(),
        value: open(1000.0)
            .and_then(|r| r.sse.as_ref())
            .map(|s| s.latency.p99_ms),
        op: "<",
        limit: 50.0,
        unit: "ms",
    });
    t.push(Target {
        what: "daemon peak RSS (all runs)".into(),
        value: rss,
        op: "<",
        limit: 150.0,
        unit: "MB",
    });
    t
}
