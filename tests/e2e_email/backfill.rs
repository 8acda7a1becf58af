//! Pre-filled mailboxes: `kill -9` mid-backfill, UIDVALIDITY changes, and two replicas on
//! one PostgreSQL database.

use serde_json::Value;
use sqlx::Connection;
use std::time::Instant;
use switchboard_testkit::mail::dovecot::ALICE;
use switchboard_testkit::mail::{Dovecot, SmtpSink, install_crypto};
use switchboard_testkit::{App, eventually, switchboard_bin};

use crate::support::*;

/// 3. `kill -9` in the middle of a 3,000-message backfill; after a restart every message is
///    stored exactly once and the sync state says the backlog is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_backfill_loses_and_duplicates_nothing() {
    const N: usize = 3000;
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    let t = Instant::now();
    dovecot
        .append_many(ALICE, "INBOX", (1..=N).map(numbered))
        .await;
    eprintln!("appended {N} messages in {:?}", t.elapsed());
    // Small batches (many commits to die between); the schedule is the only wake-up once the
    // dead process's lease has expired (10 s), as it would be in production.
    let schedule = ", idle = false, schedule = \"*/2 * * * * *\", batch_size = 50";
    let mut app = email_app(&dovecot, sink.port, schedule, "").spawn().await;
    let (token, dir) = (app.tokens[0].clone(), app.dir.path().to_path_buf());
    let started = Instant::now();
    let before = eventually(60, || async {
        let (n, _) = sqlite_counts(&dir).await;
        (n >= (N / 4) as i64).then_some(n)
    })
    .await;
    app.kill9();
    let (at_kill, dups) = sqlite_counts(&dir).await;
    eprintln!(
        "killed after {:?} with {at_kill} of {N} stored (saw {before})",
        started.elapsed()
    );
    assert!(at_kill < N as i64, "the backfill was already complete");
    assert_eq!(dups, 0);

    let restarted = Instant::now();
    app.start();
    let n = eventually(90, || async {
        let (n, _) = sqlite_counts(&dir).await;
        (n >= N as i64).then_some(n)
    })
    .await;
    eprintln!("all {N} stored {:?} after the restart", restarted.elapsed());
    let state = eventually(20, || async {
        sync_state(&app, &token, "INBOX")
            .await
            .filter(|s| s["backlog_done"] == s["backlog_total"] && !s["last_success_at"].is_null())
    })
    .await;
    eprintln!("sync state: {state}");
    let (n2, dups) = sqlite_counts(&dir).await;
    assert_eq!(n, N as i64);
    assert_eq!(n2, N as i64, "nothing more after completion");
    assert_eq!(dups, 0, "no Message-ID stored twice");
    assert!(state["last_error"].is_null(), "{state}");
    assert_eq!(state["stored"], N, "{state}");
    assert_eq!(state["last_uid"], N, "{state}");
    // Every message has one journal entry; the journal and the messages agree.
    let db = dir.join("switchboard.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open db");
    let (journal,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM inbound_events WHERE channel_id = 'acme-mail' AND kind = 'message'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("journal");
    assert_eq!(journal, N as i64);
    let (total_count,): (i64,) =
        sqlx::query_as("SELECT COALESCE(SUM(message_count), 0) FROM conversations")
            .fetch_one(&mut conn)
            .await
            .expect("message counts");
    assert_eq!(total_count, N as i64, "conversation counters agree");
    // The run after the restart resumed at the cursor (the last committed batch) and
    // recorded its backlog as done: total = done = what was left at the kill.
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE type = 'channel.updated' ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .expect("events");
    let runs: Vec<Value> = payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|p| p["folder"] == "INBOX" && p["backlog_total"].as_i64().unwrap_or(0) > 0)
        .collect();
    let left = N as i64 - at_kill;
    assert!(
        runs.iter().any(|p| p["backlog_total"] == left
            && p["backlog_done"] == left
            && p["sync_error"].is_null()),
        "no completed run of the remaining {left}: {runs:?}"
    );
    assert_eq!(
        runs[0]["backlog_total"], N,
        "the first run saw the whole folder"
    );
}

/// 4. A UIDVALIDITY change (and a recreated folder) re-fetches everything and creates
///    nothing twice; `switchboard sync --once` reports the resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_resyncs_without_duplicates() {
    const N: usize = 20;
    const M: usize = 5;
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    dovecot.doveadm(&["mailbox", "create", "-u", ALICE.name, "Support"]);
    let inbox: Vec<Vec<u8>> = (1..=N).map(numbered).collect();
    let support: Vec<Vec<u8>> = (N + 1..=N + M).map(numbered).collect();
    dovecot.append_many(ALICE, "INBOX", inbox.clone()).await;
    dovecot.append_many(ALICE, "Support", support.clone()).await;
    // Configured, not started: the one-shot syncs come first.
    let folders = format!(", folders = [\"INBOX\", \"Support\"], schedule = \"{NEVER}\"");
    let mut app = App::builder(switchboard_bin!())
        .email(&channel_toml(&dovecot, sink.port, &folders, ""))
        .configure()
        .await;
    let dir = app.dir.path().to_path_buf();
    let sync = |what: &str| {
        let (ok, out, err) = app.cli_output(&["sync", "--once", "--channel", CHANNEL]);
        eprintln!("sync --once ({what}): {out}");
        assert!(ok, "sync --once failed: {out}\n{err}");
        assert!(!out.contains("skipped"), "{what}: {out}\n{err}");
        out
    };
    let out = sync("first");
    assert!(
        out.contains(&format!("INBOX: {N} fetched, {N} stored, 0 duplicates"))
            && out.contains(&format!("Support: {M} fetched, {M} stored, 0 duplicates")),
        "{out}"
    );
    assert!(!out.contains("resynced"), "{out}");
    assert_eq!(sqlite_counts(&dir).await, ((N + M) as i64, 0));

    // Nothing new: nothing fetched (and the one-shot run gave its lease back).
    let out = sync("again");
    assert!(
        out.contains("INBOX: 0 fetched, 0 stored") && out.contains("Support: 0 fetched, 0 stored"),
        "{out}"
    );

    // The server announces a new UIDVALIDITY for INBOX (UIDs unchanged); Support is
    // deleted and recreated with the same messages (new UIDVALIDITY, UIDs from 1) plus one.
    let old = dovecot.status(ALICE, "INBOX", "uidvalidity");
    dovecot.set_uid_validity(ALICE, "INBOX", u32::try_from(old + 1000).expect("u32"));
    dovecot.recreate_folder(ALICE, "Support");
    let mut again = support.clone();
    again.push(numbered(N + M + 1));
    dovecot.append_many(ALICE, "Support", again).await;
    let out = sync("after the UIDVALIDITY changes");
    assert!(
        out.contains(&format!(
            "INBOX: {N} fetched, 0 stored, {N} duplicates, 0 bounce statuses (UIDVALIDITY changed: resynced)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Support: {} fetched, 1 stored, {M} duplicates, 0 bounce statuses (UIDVALIDITY changed: resynced)",
            M + 1
        )),
        "{out}"
    );
    assert_eq!(sqlite_counts(&dir).await, ((N + M + 1) as i64, 0));
    // And the run after that is quiet again: the cursors moved to the new UIDVALIDITYs.
    let out = sync("after the resync");
    assert!(!out.contains("resynced"), "{out}");
    assert!(
        out.contains("INBOX: 0 fetched") && out.contains("Support: 0 fetched"),
        "{out}"
    );

    // The API shows both folders synced without error at their new UIDVALIDITYs.
    let token = app.token("acme", "admin", "e2e");
    app.start();
    for (folder, stored) in [("INBOX", N), ("Support", M + 1)] {
        let state = sync_state(&app, &token, folder).await.expect("state");
        assert!(state["last_error"].is_null(), "{state}");
        assert_eq!(
            state["uidvalidity"].as_u64(),
            Some(dovecot.status(ALICE, folder, "uidvalidity")),
            "{state}"
        );
        assert_eq!(state["stored"], stored, "{state}");
    }
}

/// 6. Two daemons on one PostgreSQL database with the same mailbox: 500 messages stored
///    exactly once (the lease lets one replica sync at a time), mail arriving later too, and
///    after `kill -9` of the lease holder the other replica takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_store_each_message_once() {
    const N: usize = 500;
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    dovecot
        .append_many(ALICE, "INBOX", (1..=N).map(numbered))
        .await;
    let schedule = ", idle = true, schedule = \"*/1 * * * * *\", batch_size = 50";
    // Configured once; both daemons are replicas of it (their own directories, one database).
    let app = email_app(&dovecot, sink.port, schedule, "")
        .postgres()
        .configure()
        .await;
    let (token, db) = (app.tokens[0].clone(), app.database_url.clone());
    let started = Instant::now();
    let (a, b) = (app.replica(), app.replica());
    eventually(60, || async {
        let (n, _) = pg_counts(&db).await;
        (n >= N as i64).then_some(())
    })
    .await;
    eprintln!("{N} stored by two replicas in {:?}", started.elapsed());

    // More mail while both run (both IDLE: both wake, one syncs).
    dovecot
        .append_many(ALICE, "INBOX", (N + 1..=N + 20).map(numbered))
        .await;
    eventually(30, || async {
        let (n, _) = pg_counts(&db).await;
        (n >= (N + 20) as i64).then_some(())
    })
    .await;
    let state = eventually(20, || async {
        sync_state(&b, &token, "INBOX")
            .await
            .filter(|s| s["last_uid"] == N + 20 && s["backlog_done"] == s["backlog_total"])
    })
    .await;
    let (n, dups) = pg_counts(&db).await;
    assert_eq!(n, (N + 20) as i64);
    assert_eq!(dups, 0, "no Message-ID stored twice");
    assert!(state["last_error"].is_null(), "{state}");
    assert_eq!(state["stored"], N + 20, "{state}");
    // Both replicas were up the whole time, and between them they stored each message once.
    let stored_by = |log: &str| -> usize {
        log.lines()
            .filter(|l| l.contains("mailbox synced"))
            .flat_map(|l| {
                l.split(" fetched, ")
                    .skip(1)
                    .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    };
    let (sa, sb) = (stored_by(&a.log()), stored_by(&b.log()));
    eprintln!("replica A stored {sa}, replica B stored {sb}");
    assert_eq!(sa + sb, N + 20, "A:\n{}\nB:\n{}", a.log(), b.log());

    // The replica holding the lease dies (kill -9): the other takes over once the lease
    // has expired (lease_secs = 10) and stores what arrives next, once.
    let (mut holder, standby) = if sa >= sb { (a, b) } else { (b, a) };
    let standby_before = stored_by(&standby.log());
    holder.kill9();
    let killed = Instant::now();
    dovecot
        .append_many(ALICE, "INBOX", (N + 21..=N + 50).map(numbered))
        .await;
    eventually(40, || async {
        let (n, _) = pg_counts(&db).await;
        (n >= (N + 50) as i64).then_some(())
    })
    .await;
    eprintln!(
        "the standby replica took over {:?} after the holder was killed",
        killed.elapsed()
    );
    let (n, dups) = pg_counts(&db).await;
    assert_eq!((n, dups), ((N + 50) as i64, 0));
    assert_eq!(
        stored_by(&standby.log()) - standby_before,
        30,
        "{}",
        standby.log()
    );
}
