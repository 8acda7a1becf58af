//! The command line as an operator meets it: zero-configuration start, configuration errors
//! reported all at once without secrets, and health endpoints.

use std::process::Command;
use switchboard_testkit::config::ConfigBuilder;
use switchboard_testkit::{http, switchboard_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_no_configuration_uses_sqlite_under_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(switchboard_bin!())
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("SWITCHBOARD_CONFIG")
        // The default port may be taken on a shared machine; everything else is default.
        .env("SWITCHBOARD_SERVER__LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("switchboard listening on "))
    })
    .await
    .expect("join")
    .expect("listening line");
    let base = line
        .trim_start_matches("switchboard listening on ")
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let r = http()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
    let r = http()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), 200);
    assert!(dir.path().join("data/switchboard.db").exists());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn check_config_reports_every_error_and_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
listen = "nowhere"
typo = 1

[[tenants]]
id = "acme"

[[channels]]
id = "sms"
tenant = "acme"
type = "twilio"
account_sid = "XX123"
auth_token = "super-secret-token-value"
colour = "red"

[[channels]]
id = "wa"
tenant = "ghost"
type = "pager"
"#,
    )
    .expect("write");
    let out = Command::new(switchboard_bin!())
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "server",
        "channels[0].account_sid",
        "channels[0].colour",
        "channels[1].tenant",
        "channels[1].type",
    ] {
        assert!(err.contains(want), "missing {want} in:\n{err}");
    }
    assert!(
        !err.contains("super-secret-token-value"),
        "a secret was printed:\n{err}"
    );

    let good = ConfigBuilder::new().write(dir.path());
    let out = Command::new(switchboard_bin!())
        .arg("--config")
        .arg(&good)
        .arg("check-config")
        .env("E2E_TWILIO_TOKEN", "x")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(switchboard_bin!())
        .arg("--config")
        .arg(&good)
        .arg("check-config")
        .env_remove("E2E_TWILIO_TOKEN")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("E2E_TWILIO_TOKEN is not set"));
}
