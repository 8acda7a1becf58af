//! `webhooks-loadgen`: the load generator of the webhook ingest benchmark
//! (`bench/webhooks/README.md`; `bench/webhooks/run.sh` drives it). A harness, not a test.
//!
//! - `run`: fires signed Twilio inbound-SMS webhooks and WhatsApp Cloud API batches at a
//!   running daemon, closed loop (`--connections`) or open loop (`--rate` messages/s),
//!   optionally with an SSE client (webhook→SSE latency) and an RSS sampler on the daemon,
//!   then checks the database: every acknowledged id stored exactly once, nothing else.
//!   Exits 1 when the check fails (after writing the result).
//! - `ceiling`: durable one-row inserts, one transaction each, from concurrent workers,
//!   with Switchboard's database settings: the store's ceiling.
//! - `table`: the comparison table (ratios to the ceiling, targets) from result files.

mod ceiling;
mod check;
mod http;
mod load;
mod payload;
mod report;
mod run;
mod stats;

use anyhow::{Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use report::ResultFile;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "webhooks-loadgen",
    about = "Switchboard's webhook ingest benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Closed,
    Open,
}

#[derive(Subcommand)]
enum Command {
    /// One load run against a running daemon, then the exactly-once check.
    Run(Box<RunArgs>),
    /// The store ceiling: durable one-row inserts from concurrent workers.
    Ceiling {
        /// sqlite://FILE or postgres://… (a scratch database: a table is created in it).
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 64)]
        workers: usize,
        /// PostgreSQL pool size (Switchboard's database.max_connections); SQLite uses one
        /// writer connection, as Switchboard does.
        #[arg(long, default_value_t = 8)]
        pool: u32,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value = "ceiling")]
        label: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints the comparison table from result files; exits 1 if a check failed.
    Table { files: Vec<PathBuf> },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The daemon's base URL, also its server.public_url (what Twilio signatures cover).
    #[arg(long)]
    url: String,
    /// The daemon's database (read after the run for the check).
    #[arg(long)]
    database_url: String,
    #[arg(long, value_enum)]
    mode: ModeArg,
    /// Closed loop: concurrent connections, each one request at a time.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Open loop: messages per second (a WhatsApp batch of k messages is k of them).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Open loop: connections at most (then requests wait for one, and that counts).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Seconds of load before the measured window (sent and checked, not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds after which an unanswered request counts as an error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Share of requests that are WhatsApp batches (the rest are Twilio SMS).
    #[arg(long, default_value_t = 0.5)]
    wa_share: f64,
    /// Messages per WhatsApp batch.
    #[arg(long, default_value_t = 3)]
    wa_batch: usize,
    /// Share of requests that re-send an earlier request (provider retries).
    #[arg(long, default_value_t = 0.05)]
    dup_share: f64,
    #[arg(long, default_value = "bench-sms")]
    twilio_channel: String,
    #[arg(long, env = "BENCH_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    twilio_auth_token: String,
    #[arg(long, default_value = "AC00000000000000000000000000000001")]
    twilio_account_sid: String,
    #[arg(long, default_value = "+15005550006")]
    twilio_number: String,
    #[arg(long, default_value = "bench-wa")]
    wa_channel: String,
    #[arg(long, env = "BENCH_WA_APP_SECRET", hide_env_values = true)]
    wa_app_secret: String,
    #[arg(long, default_value = "106540352242922")]
    wa_phone_number_id: String,
    /// Bearer token for GET /api/v1/events: measures webhook→SSE latency when given.
    #[arg(long, env = "BENCH_SSE_TOKEN", hide_env_values = true)]
    sse_token: Option<String>,
    /// Don't open the SSE stream even if BENCH_SSE_TOKEN is set.
    #[arg(long)]
    no_sse: bool,
    /// The daemon's pid: its RSS is sampled every 100 ms.
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value = "run")]
    label: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the result (JSON).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `sqlite` or `postgres`, from a database URL.
pub(crate) fn backend_of(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

/// The 1-, 5- and 15-minute load averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// This process's CPU time so far (user + system), in seconds; 0 where unknown.
pub(crate) fn own_cpu_seconds() -> f64 {
    // /proc/self/stat: fields 14 and 15 (utime, stime) in clock ticks, after the command
    // name in parentheses (which may hold spaces).
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { ticks / hz as f64 } else { 0.0 }
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| anyhow!("{what} must be a number of seconds"))
}

fn share(v: f64, what: &str) -> Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(anyhow!("{what} must be between 0 and 1"))
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Worker threads: as many CPUs as this process may use (1 under `taskset -c N`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run_command(*args)),
        Command::Ceiling {
            database_url,
            workers,
            pool,
            warmup,
            duration,
            label,
            out,
        } => runtime.block_on(async {
            let result = ceiling::run(
                &label,
                &database_url,
                workers,
                pool,
                seconds(warmup, "--warmup")?,
                seconds(duration, "--duration")?,
            )
            .await?;
            println!(
                "{} [{}]: {:.1} inserts/s ({} workers, pool {}; {} errors; p50 {:.2} ms, p99 {:.2} ms; load {})",
                result.label,
                result.backend,
                result.inserts_per_s,
                result.workers,
                result.pool,
                result.errors,
                result.latency.p50_ms,
                result.latency.p99_ms,
                result.load_average
            );
            if let Some(out) = out {
                report::write(&out, &ResultFile::Ceiling(result))?;
            }
            Ok(())
        }),
        Command::Table { files } => {
            let results = files
                .iter()
                .map(|f| report::read(f))
                .collect::<Result<Vec<_>>>()?;
            if report::print_table(&results) {
                Ok(())
            } else {
                eprintln!("\nFAILED: a run's exactly-once check failed (see above)");
                std::process::exit(1);
            }
        }
    }
}

async fn run_command(a: RunArgs) -> Result<()> {
    let mode = match a.mode {
        ModeArg::Closed => run::Mode::Closed {
            connections: a.connections.max(1),
        },
        ModeArg::Open => run::Mode::Open {
            rate: a.rate,
            max_connections: a.max_connections.max(1),
        },
    };
    let public_url = a.url.trim_end_matches('/').to_string();
    let spec = run::RunSpec {
        label: a.label,
        addr: run::socket_addr(&public_url)?,
        target: payload::Target {
            public_url,
            twilio_channel: a.twilio_channel,
            twilio_auth_token: a.twilio_auth_token,
            twilio_account_sid: a.twilio_account_sid,
            twilio_number: a.twilio_number,
            wa_channel: a.wa_channel,
            wa_app_secret: a.wa_app_secret,
            wa_phone_number_id: a.wa_phone_number_id,
        },
        mix: payload::Mix {
            wa_share: share(a.wa_share, "--wa-share")?,
            wa_batch: a.wa_batch.max(1),
            dup_share: share(a.dup_share, "--dup-share")?,
        },
        mode,
        warmup: seconds(a.warmup, "--warmup")?,
        duration: seconds(a.duration, "--duration")?,
        timeout: seconds(a.timeout, "--timeout")?,
        database_url: a.database_url,
        sse_token: if a.no_sse { None } else { a.sse_token },
        pid: a.pid,
        seed: a.seed,
    };
    let result = run::run(spec).await?;
    report::print_run(&result);
    let ok = result.check.ok;
    if let Some(out) = &a.out {
        report::write(out, &ResultFile::Run(Box::new(result)))?;
    }
    if !ok {
        eprintln!("CHECK FAILED: the messages table does not match what was acknowledged");
        std::process::exit(1);
    }
    Ok(())
}
