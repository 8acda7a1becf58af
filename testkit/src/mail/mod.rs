//! Real mail servers for the email tests (the connector's and end-to-end), started by the
//! tests themselves on
//! free loopback ports from generated configs in temporary directories:
//! - [`Dovecot`]: IMAP (plain + STARTTLS, and implicit TLS with a test CA made at run
//!   time), LMTP and an auth listener, passwd-file users, maildir;
//! - [`SmtpSink`]: Postfix's recording SMTP sink (envelope + data per message);
//! - [`Postfix`]: a full Postfix relaying `example.test` into Dovecot over LMTP, with
//!   STARTTLS, implicit TLS and SASL through Dovecot.
//!
//! A missing server binary is a panic that says how to install it (`scripts/mailservers.sh`):
//! nothing is skipped. Processes run in their own process group and are terminated when
//! their guard is dropped.

pub mod dovecot;
pub mod postfix;

pub use dovecot::{Dovecot, User};
pub use postfix::{Postfix, SinkMessage, SmtpSink};

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The mail domain of the test servers.
pub const DOMAIN: &str = "example.test";

pub use crate::install_crypto;

/// Finds a server binary in PATH or the usual system directories, or panics with the fix.
pub fn require_binary(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/lib/dovecot"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    panic!(
        "`{name}` is not installed; the email tests need real Dovecot and Postfix: run \
         scripts/mailservers.sh (scripts/test does){}",
        if ci {
            " — CI must install them before cargo test"
        } else {
            ""
        }
    );
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str, log: &Path) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not listen on port {port} within {timeout:?}; log:\n{log}");
}

/// The unprivileged account the servers run as: ourselves, or (as root) `dovecot`.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
}

fn passwd_entry(uid: Option<u32>, name: Option<&str>) -> Option<(u32, u32, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let (n, u, g) = (f.first()?, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
        let hit = uid.is_some_and(|x| x == u) || name.is_some_and(|x| x == *n);
        hit.then(|| (u, g, (*n).to_owned()))
    })
}

fn group_name(gid: u32) -> String {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2)?.parse::<u32>().ok()? == gid).then(|| f[0].to_owned())
        })
        .unwrap_or_else(|| gid.to_string())
}

/// Who the servers run as.
pub fn run_as() -> RunAs {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let (uid, gid, user) = if uid == 0 {
        // Dovecot's login processes refuse to run as root.
        passwd_entry(None, Some("dovecot")).unwrap_or_else(|| {
            require_binary("dovecot");
            panic!("no `dovecot` system user although Dovecot is installed")
        })
    } else {
        passwd_entry(Some(uid), None).unwrap_or_else(|| {
            // SAFETY: getgid has no preconditions.
            (uid, unsafe { libc::getgid() }, uid.to_string())
        })
    };
    RunAs {
        uid,
        gid,
        group: group_name(gid),
        user,
    }
}

/// Whether we are root (needed for a full Postfix).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Recursively gives `path` to `who` (a no-op when we already are them).
pub fn chown_tree(path: &Path, who: &RunAs) {
    if !is_root() {
        return;
    }
    std::os::unix::fs::lchown(path, Some(who.uid), Some(who.gid)).expect("chown");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            chown_tree(&entry.expect("dir entry").path(), who);
        }
    }
}

/// A server child process in its own process group, terminated (group-wide) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Spawns `cmd` as `who` (when root) in a new process group.
    pub fn spawn(mut cmd: Command, who: Option<&RunAs>, name: &str, log: &Path) -> Self {
        if let (Some(who), true) = (who, is_root()) {
            cmd.uid(who.uid).gid(who.gid);
        }
        let out = std::fs::File::create(log).expect("create server log");
        let err = out.try_clone().expect("clone log handle");
        cmd.process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        ServerProcess { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above; stragglers of the group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate for `localhost` / 127.0.0.1, made at run time.
#[derive(Debug, Clone)]
pub struct TestCa {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Switchboard test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca, ca_key);
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().expect("server key");
        let cert = server.signed_by(&key, &issuer).expect("server cert");
        TestCa {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir`; returns the CA path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).expect("write ca.pem");
        std::fs::write(dir.join("server.pem"), &self.cert_pem).expect("write server.pem");
        std::fs::write(dir.join("server.key"), &self.key_pem).expect("write server.key");
        dir.join("ca.pem")
    }
}

/// A plain test message with a unique Message-ID, CRLF line ends.
pub fn test_message(from: &str, to: &str, subject: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\
         Date: Thu, 20 Nov 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}
