//! Postfix for the tests: `smtp-sink` (records each transaction's envelope and data to a
//! directory) for outbound checks, and a full Postfix instance (`master -c DIR -d`,
//! root only) that relays `example.test` into a [`Dovecot`] over LMTP, with STARTTLS and
//! implicit TLS (the Dovecot's test CA) and SASL through Dovecot's auth listener.

use super::{
    Dovecot, RunAs, ServerProcess, chown_tree, free_port, require_binary, run_as, wait_for_port,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// One transaction as smtp-sink recorded it.
#[derive(Debug, Clone)]
pub struct SinkMessage {
    /// The MAIL FROM address (without brackets or parameters).
    pub mail_from: String,
    /// The RCPT TO addresses, in order.
    pub rcpt_to: Vec<String>,
    /// The message as received (headers and body).
    pub data: String,
}

impl SinkMessage {
    /// The first value of a header of the recorded message (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self
            .data
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .replace("\r\n", "\n");
        let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A running `smtp-sink` (stopped on drop).
pub struct SmtpSink {
    pub port: u16,
    dump: PathBuf,
    _process: ServerProcess,
    _dir: TempDir,
}

fn address_arg(args: &str) -> String {
    // "FROM:<a@b> SIZE=12" / "TO:<a@b>"
    let start = args.find('<').map_or(0, |i| i + 1);
    let end = args[start..].find('>').map_or(args.len(), |i| start + i);
    args[start..end].to_owned()
}

impl SmtpSink {
    /// Starts a sink; `extra` are smtp-sink options, e.g. `["-f", "RCPT"]` (5xx to RCPT) or
    /// `["-r", "DATA"]` (4xx to DATA).
    pub fn start(extra: &[&str]) -> Self {
        let binary = require_binary("smtp-sink");
        let who = run_as();
        let dir = tempfile::Builder::new()
            .prefix("sb-smtp-sink-")
            .tempdir()
            .expect("tempdir");
        let dump = dir.path().join("dump");
        std::fs::create_dir(&dump).expect("dump dir");
        chown_tree(dir.path(), &who);
        let port = free_port();
        let mut cmd = Command::new(binary);
        if super::is_root() {
            cmd.arg("-u").arg(&who.user);
        }
        cmd.args(extra)
            .arg("-h")
            .arg("sink.example.test")
            .arg("-d")
            .arg(format!("{}/msg.", dump.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("100");
        let log = dir.path().join("sink.log");
        // smtp-sink drops privileges itself (-u), so it starts as root.
        let process = ServerProcess::spawn(cmd, None, "smtp-sink", &log);
        wait_for_port(port, Duration::from_secs(10), "smtp-sink", &log);
        SmtpSink {
            port,
            dump,
            _process: process,
            _dir: dir,
        }
    }

    /// Everything recorded so far.
    pub fn messages(&self) -> Vec<SinkMessage> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dump)
            .expect("read dump dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|p| parse_dump(&std::fs::read(p).ok()?))
            .collect()
    }

    /// Waits until at least `n` messages were recorded (or panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SinkMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() > deadline {
                assert!(
                    got.len() >= n,
                    "smtp-sink recorded {} of {n} messages",
                    got.len()
                );
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Parses smtp-sink's dump format: X-* envelope records, a 3-line Received, the message.
fn parse_dump(bytes: &[u8]) -> Option<SinkMessage> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut lines = text.split('\n');
    for line in lines.by_ref() {
        if let Some(v) = line.strip_prefix("X-Mail-Args: ") {
            mail_from = address_arg(v);
        } else if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
            rcpt_to.push(address_arg(v));
        } else if line.starts_with("Received: ") {
            break;
        }
    }
    // The Received header's two continuation lines.
    let rest: Vec<&str> = lines
        .skip_while(|l| l.starts_with(' ') || l.starts_with('\t'))
        .collect();
    let data = rest.join("\r\n");
    (!mail_from.is_empty() || !rcpt_to.is_empty()).then_some(SinkMessage {
        mail_from,
        rcpt_to,
        data,
    })
}

/// A full Postfix (root only), relaying `example.test` to a Dovecot over LMTP.
pub struct Postfix {
    /// Plain SMTP (port 25 style; TLS offered, not required).
    pub smtp_port: u16,
    /// Submission: STARTTLS and SASL required.
    pub submission_port: u16,
    /// Implicit TLS submission (SASL required).
    pub smtps_port: u16,
    _process: ServerProcess,
    dir: TempDir,
}

impl Postfix {
    /// Starts Postfix (about 0.3 s). Panics when not root: Postfix's master must
    /// start as root.
    pub fn start(dovecot: &Dovecot) -> Self {
        require_binary("postfix");
        assert!(
            super::is_root(),
            "a full Postfix needs root (its master starts as root)"
        );
        let dir = tempfile::Builder::new()
            .prefix("sb-postfix-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        // Postfix's unprivileged processes must traverse to the queue.
        std::fs::set_permissions(d, PermissionsExt::from_mode(0o755)).expect("chmod");
        let etc = d.join("etc");
        for sub in ["etc", "queue", "data"] {
            std::fs::create_dir_all(d.join(sub)).expect("postfix dirs");
        }
        let pf = postfix_user();
        chown_tree(&d.join("data"), &pf);
        std::fs::write(d.join("server.pem"), &dovecot.ca.cert_pem).expect("cert");
        std::fs::write(d.join("server.key"), &dovecot.ca.key_pem).expect("key");
        let ports = [free_port(), free_port(), free_port()];
        std::fs::write(etc.join("main.cf"), main_cf(d, dovecot)).expect("main.cf");
        std::fs::write(etc.join("master.cf"), master_cf(ports)).expect("master.cf");
        let log = d.join("maillog");
        // The queue directories as `postfix post-install create-missing` makes them (that
        // command takes seconds when not run from a terminal).
        let postdrop = group_gid("postdrop");
        for (sub, mode, group) in [
            ("active", 0o700, 0),
            ("bounce", 0o700, 0),
            ("corrupt", 0o700, 0),
            ("defer", 0o700, 0),
            ("deferred", 0o700, 0),
            ("flush", 0o700, 0),
            ("hold", 0o700, 0),
            ("incoming", 0o700, 0),
            ("private", 0o700, 0),
            ("saved", 0o700, 0),
            ("trace", 0o700, 0),
            ("maildrop", 0o730, postdrop),
            ("public", 0o710, postdrop),
        ] {
            let path = d.join("queue").join(sub);
            std::fs::create_dir(&path).expect("queue dir");
            std::os::unix::fs::chown(&path, Some(pf.uid), Some(group)).expect("chown queue dir");
            std::fs::set_permissions(&path, PermissionsExt::from_mode(mode)).expect("chmod");
        }
        std::fs::create_dir(d.join("queue/pid")).expect("pid dir");
        // The master in the foreground as our child (`postfix start` waits seconds for its
        // own logging when not on a terminal).
        let daemon_dir = Command::new(require_binary("postconf"))
            .args(["-d", "-h", "daemon_directory"])
            .output()
            .expect("run postconf");
        let master =
            PathBuf::from(String::from_utf8_lossy(&daemon_dir.stdout).trim()).join("master");
        let mut cmd = Command::new(master);
        cmd.arg("-c").arg(&etc).arg("-d");
        // Logs go to the master's stdout (a log file would make it wait seconds for postlogd).
        let process = ServerProcess::spawn(cmd, None, "postfix master", &log);
        for port in ports {
            wait_for_port(port, Duration::from_secs(15), "postfix", &log);
        }
        Postfix {
            smtp_port: ports[0],
            submission_port: ports[1],
            smtps_port: ports[2],
            _process: process,
            dir,
        }
    }

    /// Postfix's mail log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn group_gid(name: &str) -> u32 {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?
        })
        .unwrap_or_else(|| {
            panic!("no `{name}` group (is Postfix installed? scripts/mailservers.sh)")
        })
}

fn postfix_user() -> RunAs {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let (uid, gid) = passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postfix"))
                .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
        .expect("a `postfix` system user (is Postfix installed? scripts/mailservers.sh)");
    RunAs {
        uid,
        gid,
        user: "postfix".into(),
        group: "postfix".into(),
    }
}

fn main_cf(d: &Path, dovecot: &Dovecot) -> String {
    let d = d.display();
    format!(
        r#"# Generated by the switchboard-email test harness.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.test
relay_transport = lmtp:inet:127.0.0.1:{lmtp}
default_transport = discard:no mail leaves the test machine
maillog_file = /dev/stdout
maillog_file_prefixes = /dev/stdout
smtputf8_enable = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
notify_classes =
smtpd_banner = $myhostname ESMTP switchboard-test
smtpd_tls_cert_file = {d}/server.pem
smtpd_tls_key_file = {d}/server.key
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth}
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
"#,
        lmtp = dovecot.lmtp_port,
        auth = dovecot.auth_port,
    )
}

fn master_cf(ports: [u16; 3]) -> String {
    let [smtp, submission, smtps] = ports;
    let mut s = format!(
        "127.0.0.1:{smtp} inet n - n - - smtpd\n\
         127.0.0.1:{submission} inet n - n - - smtpd\n  \
         -o smtpd_tls_security_level=encrypt\n  -o smtpd_sasl_auth_enable=yes\n  \
         -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n\
         127.0.0.1:{smtps} inet n - n - - smtpd\n  \
         -o smtpd_tls_wrappermode=yes\n  -o smtpd_sasl_auth_enable=yes\n  \
         -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
    );
    for line in [
        "pickup unix n - n 60 1 pickup",
        "cleanup unix n - n - 0 cleanup",
        "qmgr unix n - n 300 1 qmgr",
        "tlsmgr unix - - n 1000? 1 tlsmgr",
        "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce",
        "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify",
        "flush unix n - n 1000? 0 flush",
        "proxymap unix - - n - - proxymap",
        "smtp unix - - n - - smtp",
        "relay unix - - n - - smtp",
        "error unix - - n - - error",
        "retry unix - - n - - error",
        "discard unix - - n - - discard",
        "lmtp unix - - n - - lmtp",
        "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache",
        "postlog unix-dgram n - n - 1 postlogd",
        "showq unix n - n - - showq",
    ] {
        s.push_str(line);
        s.push('\n');
    }
    s
}
