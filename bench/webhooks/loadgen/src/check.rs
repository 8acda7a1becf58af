//! The exactly-once check after a run: every provider id acknowledged with a 2xx is stored
//! exactly once in `messages.provider_message_id`, and nothing else is stored (no id that
//! was never sent, no message without a provider id).
//!
//! An id that was sent but never acknowledged (a timeout, a 5xx, a connection reset) may or
//! may not be stored: the daemon may have committed it before the answer was lost. Those
//! are counted (`in_doubt_stored`, `unacked_absent`) but are not failures.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// What the run knows about one provider id.
#[derive(Debug, Clone, Copy)]
pub struct SentId {
    /// Some request carrying it was answered 2xx.
    pub acked: bool,
}

/// One row of `messages`: its id and provider id.
pub type Row = (String, Option<String>);

/// The outcome of the check.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckReport {
    pub ok: bool,
    /// Distinct provider ids sent.
    pub ids_sent: usize,
    /// Distinct provider ids acknowledged.
    pub ids_acked: usize,
    /// Rows in `messages`.
    pub rows: usize,
    /// Acknowledged ids not stored.
    pub missing: usize,
    /// Ids stored more than once.
    pub duplicated: usize,
    /// Rows whose provider id was never sent (or is NULL).
    pub unknown: usize,
    /// Sent, never acknowledged, stored anyway (allowed).
    pub in_doubt_stored: usize,
    /// Sent, never acknowledged, not stored (allowed).
    pub unacked_absent: usize,
    /// A few offending ids, for the report.
    pub examples: Vec<String>,
}

/// Reads every row of `messages` (read-only use of the daemon's database).
pub async fn stored_messages(database_url: &str) -> Result<Vec<Row>> {
    const SQL: &str = "SELECT id, provider_message_id FROM messages";
    if database_url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .with_context(|| format!("opening {database_url}"))?;
        let rows = sqlx::query_as::<_, Row>(SQL).fetch_all(&mut conn).await?;
        conn.close().await?;
        Ok(rows)
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url)
            .await
            .with_context(|| format!("connecting to {database_url}"))?;
        let rows = sqlx::query_as::<_, Row>(SQL).fetch_all(&mut conn).await?;
        conn.close().await?;
        Ok(rows)
    }
}

/// Compares what was sent and acknowledged with what is stored.
pub fn verify(sent: &HashMap<String, SentId>, rows: &[Row]) -> CheckReport {
    let mut report = CheckReport {
        ids_sent: sent.len(),
        ids_acked: sent.values().filter(|s| s.acked).count(),
        rows: rows.len(),
        ..Default::default()
    };
    let mut counts: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (id, provider_id) in rows {
        match provider_id.as_deref() {
            Some(p) if sent.contains_key(p) => *counts.entry(p).or_default() += 1,
            Some(p) => {
                report.unknown += 1;
                example(&mut report.examples, format!("stored but never sent: {p}"));
            }
            None => {
                report.unknown += 1;
                example(
                    &mut report.examples,
                    format!("message {id} has no provider id"),
                );
            }
        }
    }
    for (p, n) in &counts {
        if *n > 1 {
            report.duplicated += 1;
            example(&mut report.examples, format!("stored {n} times: {p}"));
        }
    }
    for (p, s) in sent {
        let stored = counts.contains_key(p.as_str());
        match (s.acked, stored) {
            (true, false) => {
                report.missing += 1;
                example(
                    &mut report.examples,
                    format!("acknowledged, not stored: {p}"),
                );
            }
            (false, true) => report.in_doubt_stored += 1,
            (false, false) => report.unacked_absent += 1,
            (true, true) => {}
        }
    }
    report.ok = report.missing == 0 && report.duplicated == 0 && report.unknown == 0;
    report
}

fn example(examples: &mut Vec<String>, line: String) {
    if examples.len() < 10 {
        examples.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(list: &[(&str, bool)]) -> HashMap<String, SentId> {
        list.iter()
            .map(|(id, acked)| (id.to_string(), SentId { acked: *acked }))
            .collect()
    }

    fn rows(list: &[Option<&str>]) -> Vec<Row> {
        list.iter()
            .enumerate()
            .map(|(i, p)| (format!("m{i}"), p.map(str::to_string)))
            .collect()
    }

    #[test]
    fn exact_match_passes_and_unacked_may_go_either_way() {
        let s = sent(&[("a", true), ("b", true), ("c", false), ("d", false)]);
        let r = verify(&s, &rows(&[Some("a"), Some("b"), Some("c")]));
        assert!(r.ok, "{r:?}");
        assert_eq!((r.in_doubt_stored, r.unacked_absent), (1, 1));
    }

    #[test]
    fn missing_duplicated_and_unknown_fail() {
        let s = sent(&[("a", true), ("b", true)]);
        let r = verify(&s, &rows(&[Some("a")]));
        assert!(!r.ok && r.missing == 1);
        let r = verify(&s, &rows(&[Some("a"), Some("b"), Some("b")]));
        assert!(!r.ok && r.duplicated == 1);
        let r = verify(&s, &rows(&[Some("a"), Some("b"), Some("z")]));
        assert!(!r.ok && r.unknown == 1);
        let r = verify(&s, &rows(&[Some("a"), Some("b"), None]));
        assert!(!r.ok && r.unknown == 1);
    }
}
