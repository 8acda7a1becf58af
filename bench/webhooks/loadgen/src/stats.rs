//! Latency summaries: every sample is kept (a run is at most a few hundred thousand
//! requests) and percentiles are exact, nearest-rank, in milliseconds.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// p50/p90/p99/p99.9/max and mean of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total: f64 = samples.iter().map(|d| ms(*d)).sum();
        Self {
            count: samples.len(),
            p50_ms: ms(rank(samples, 0.50)),
            p90_ms: ms(rank(samples, 0.90)),
            p99_ms: ms(rank(samples, 0.99)),
            p999_ms: ms(rank(samples, 0.999)),
            max_ms: ms(samples[samples.len() - 1]),
            mean_ms: total / samples.len() as f64,
        }
    }
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn rank(sorted: &[Duration], q: f64) -> Duration {
    let n = sorted.len();
    let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Summary::of(&mut v);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(Summary::of(&mut []).count, 0);
    }
}
