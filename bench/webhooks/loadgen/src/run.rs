//! One measured run against a running daemon: optional SSE client and RSS sampler, the load
//! (closed or open loop), then the exactly-once check and the webhook→SSE join.
//!
//! Only requests due after the warm-up count towards the figures; every request, warm-up
//! included, is checked. Throughput is acknowledged messages (the provider ids in requests
//! answered 2xx, re-sends included) completing within the measured window, per second.
//! Latency is that of acknowledged requests; failures and non-2xx answers are counted.
//! Webhook→SSE latency joins each `message.created` event (which names Switchboard's
//! message id) to its provider id through the `messages` table after the run, and measures
//! from when the first request carrying that id was due.

use crate::check::{self, CheckReport, SentId};
use crate::http::{LiveEvent, Outcome, Pool, open_sse};
use crate::load::{self, Ctx, Record, RssSampler};
use crate::payload::{Generator, Kind, Mix, Target};
use crate::report::{RunResult, SseReport};
use crate::stats::Summary;
use anyhow::{Context, Result, anyhow};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Closed or open loop.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Closed { connections: usize },
    Open { rate: f64, max_connections: usize },
}

/// Everything a run needs.
pub struct RunSpec {
    pub label: String,
    pub addr: SocketAddr,
    pub target: Target,
    pub mix: Mix,
    pub mode: Mode,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub database_url: String,
    pub sse_token: Option<String>,
    pub pid: Option<u32>,
    pub seed: u64,
}

pub async fn run(spec: RunSpec) -> Result<RunResult> {
    let load_average = crate::load_average();
    let cpu_before = crate::own_cpu_seconds();
    let (connections, rate) = match spec.mode {
        Mode::Closed { connections } => (connections, None),
        Mode::Open {
            rate,
            max_connections,
        } => (max_connections, Some(rate)),
    };
    let pool = Pool::new(spec.addr, connections, spec.timeout);
    // Closed loop: every connection open before the clock starts. Open loop: a few, the
    // rest as the schedule needs them (their set-up is then part of the latency).
    let warm = match spec.mode {
        Mode::Closed { connections } => connections,
        Mode::Open { .. } => connections.min(16),
    };
    pool.warm(warm).await.context("opening connections")?;
    let generator = Generator::new(Arc::new(spec.target.clone()), spec.mix, spec.seed);
    let ctx = Arc::new(Ctx::new(pool, spec.timeout, &spec.target, generator));

    let (sse_tx, mut sse_rx) = tokio::sync::mpsc::unbounded_channel::<LiveEvent>();
    let sse_task = match &spec.sse_token {
        Some(token) => Some(
            open_sse(spec.addr, token, sse_tx)
                .await
                .context("opening the SSE stream")?,
        ),
        None => {
            drop(sse_tx);
            None
        }
    };
    let rss = spec.pid.map(RssSampler::start);

    let start = Instant::now() + Duration::from_millis(20);
    let window_start = start + spec.warmup;
    let end = window_start + spec.duration;
    tokio::time::sleep_until(start.into()).await;
    match spec.mode {
        Mode::Closed { connections } => load::closed(ctx.clone(), connections, end).await?,
        Mode::Open { rate, .. } => {
            load::open(ctx.clone(), rate, start, end).await?;
        }
    }
    let records = ctx.take_records();
    let generator_cpu_s = crate::own_cpu_seconds() - cpu_before;
    let wall_s = start.elapsed().as_secs_f64();

    let mut sent: HashMap<String, SentId> = HashMap::new();
    let mut first_due: HashMap<&str, Instant> = HashMap::new();
    for r in &records {
        for id in r.ids.iter() {
            let s = sent.entry(id.clone()).or_insert(SentId { acked: false });
            s.acked |= r.outcome.is_ack();
            let due = first_due.entry(id.as_str()).or_insert(r.scheduled);
            *due = (*due).min(r.scheduled);
        }
    }
    let rows = check::stored_messages(&spec.database_url).await?;
    let check = check::verify(&sent, &rows);

    let sse = match sse_task {
        Some(task) => {
            // Events for everything stored, or 3 s without a new one.
            let mut events = Vec::new();
            let expected = rows.len();
            let mut created = 0usize;
            while created < expected {
                match tokio::time::timeout(Duration::from_secs(3), sse_rx.recv()).await {
                    Ok(Some(ev)) => {
                        created += usize::from(ev.kind == "message.created");
                        events.push(ev);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            while let Ok(ev) = sse_rx.try_recv() {
                events.push(ev);
            }
            task.abort();
            Some(join_sse(&events, &rows, &first_due, window_start))
        }
        None => None,
    };
    let (rss_peak_mb, rss_hwm_mb) = match rss {
        Some(s) => {
            let (peak, hwm) = s.finish().await;
            (Some(peak), hwm)
        }
        None => (None, None),
    };
    let mut result = summarize(
        &spec,
        rate,
        connections,
        records,
        window_start,
        end,
        check,
        sse,
        rss_peak_mb,
        rss_hwm_mb,
        load_average,
    );
    result.generator_cpu_s = generator_cpu_s;
    result.generator_wall_s = wall_s;
    Ok(result)
}

/// Webhook→SSE latency of the messages first due in the measured window.
fn join_sse(
    events: &[LiveEvent],
    rows: &[check::Row],
    first_due: &HashMap<&str, Instant>,
    window_start: Instant,
) -> SseReport {
    let provider_of: HashMap<&str, &str> = rows
        .iter()
        .filter_map(|(id, p)| p.as_deref().map(|p| (id.as_str(), p)))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut latencies = Vec::new();
    let mut created = 0;
    for ev in events.iter().filter(|e| e.kind == "message.created") {
        created += 1;
        let Some(mid) = ev.message_id.as_deref() else {
            continue;
        };
        seen.insert(mid);
        let due = provider_of.get(mid).and_then(|p| first_due.get(p));
        if let Some(due) = due
            && *due >= window_start
        {
            latencies.push(ev.at.saturating_duration_since(*due));
        }
    }
    let missing = rows
        .iter()
        .filter(|(id, _)| !seen.contains(id.as_str()))
        .count();
    SseReport {
        events: events.len(),
        message_created: created,
        missing,
        latency: Summary::of(&mut latencies),
    }
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    spec: &RunSpec,
    rate: Option<f64>,
    connections: usize,
    records: Vec<Record>,
    window_start: Instant,
    end: Instant,
    check: CheckReport,
    sse: Option<SseReport>,
    rss_peak_mb: Option<f64>,
    rss_hwm_mb: Option<f64>,
    load_average: String,
) -> RunResult {
    let secs = spec.duration.as_secs_f64();
    let mut non_2xx: BTreeMap<String, u64> = BTreeMap::new();
    let mut error_examples: BTreeMap<String, u64> = BTreeMap::new();
    let (mut errors, mut acked_requests, mut duplicates) = (0u64, 0u64, 0u64);
    let (mut window_acked_req, mut window_acked_msgs) = (0u64, 0u64);
    let (mut all, mut twilio, mut whatsapp, mut lag) = (vec![], vec![], vec![], vec![]);
    for r in &records {
        duplicates += u64::from(r.duplicate);
        match &r.outcome {
            Outcome::Status(_) if r.outcome.is_ack() => {
                acked_requests += 1;
                if r.done >= window_start && r.done < end {
                    window_acked_req += 1;
                    window_acked_msgs += r.ids.len() as u64;
                }
                if r.scheduled >= window_start {
                    let latency = r.done - r.scheduled;
                    all.push(latency);
                    match r.kind {
                        Kind::Twilio => twilio.push(latency),
                        Kind::WhatsApp => whatsapp.push(latency),
                    }
                }
            }
            Outcome::Status(s) => *non_2xx.entry(s.to_string()).or_default() += 1,
            Outcome::Error(e) => {
                errors += 1;
                // Group errors by their text without digits (ports, counts).
                let key: String = e.chars().filter(|c| !c.is_ascii_digit()).collect();
                *error_examples.entry(key).or_default() += 1;
            }
        }
        if r.scheduled >= window_start {
            lag.push(r.started.saturating_duration_since(r.scheduled));
        }
    }
    let messages_sent: usize = records.iter().map(|r| r.ids.len()).sum();
    RunResult {
        label: spec.label.clone(),
        backend: crate::backend_of(&spec.database_url).to_string(),
        mode: match spec.mode {
            Mode::Closed { .. } => "closed".into(),
            Mode::Open { .. } => "open".into(),
        },
        connections,
        rate,
        wa_share: spec.mix.wa_share,
        wa_batch: spec.mix.wa_batch,
        dup_share: spec.mix.dup_share,
        warmup_s: spec.warmup.as_secs_f64(),
        duration_s: secs,
        requests: records.len() as u64,
        messages_sent: messages_sent as u64,
        duplicate_requests: duplicates,
        acked_requests,
        non_2xx,
        errors,
        error_kinds: error_examples,
        acked_msgs_per_s: window_acked_msgs as f64 / secs,
        acked_requests_per_s: window_acked_req as f64 / secs,
        latency: Summary::of(&mut all),
        latency_twilio: Summary::of(&mut twilio),
        latency_whatsapp: Summary::of(&mut whatsapp),
        send_lag: Summary::of(&mut lag),
        sse,
        rss_peak_mb,
        rss_hwm_mb,
        check,
        load_average,
        generator_cpu_s: 0.0,
        generator_wall_s: 0.0,
    }
}

/// `host:port` of an `http://` base URL.
pub fn socket_addr(base: &str) -> Result<SocketAddr> {
    let url = url::Url::parse(base).with_context(|| format!("bad URL {base:?}"))?;
    if url.scheme() != "http" {
        return Err(anyhow!("only http:// is supported, not {base:?}"));
    }
    let addrs = url.socket_addrs(|| Some(80))?;
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{base:?} resolves to nothing"))
}
