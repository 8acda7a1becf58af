//! `spawn_app`: the whole end-to-end set-up in one call. A temp directory, fake providers,
//! a generated configuration, a database (SQLite in the directory, or a fresh PostgreSQL
//! database dropped afterwards), API tokens made with the CLI before the daemon starts (as
//! an operator would), and the real binary serving on a free port.
//!
//! ```text
//! let app = spawn_app(switchboard_bin!()).await;                 // Twilio + defaults
//! let app = App::builder(switchboard_bin!()).postgres().graph()
//!     .token("acme", "admin", "boss").spawn().await;             // app.tokens[0]
//! let b = app.replica();                                         // same config and database
//! ```
//!
//! Dropping the [`App`] kills the daemon, stops the fakes, drops the database and removes
//! the directory, in that order.

use crate::config::ConfigBuilder;
use crate::daemon::{Daemon, cli, cli_output};
use crate::graph::FakeGraph;
use crate::store::PgDatabase;
use crate::twilio::FakeTwilio;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The set-up most end-to-end tests want: the messaging configuration with a fake Twilio,
/// SQLite, started.
pub async fn spawn_app(bin: &str) -> App {
    App::builder(bin).spawn().await
}

pub struct AppBuilder {
    bin: PathBuf,
    config: ConfigBuilder,
    postgres: bool,
    twilio: Option<FakeTwilio>,
    graph: bool,
    email: bool,
    tokens: Vec<[String; 3]>,
    env: Vec<(String, String)>,
}

impl AppBuilder {
    /// A fresh PostgreSQL database instead of SQLite.
    pub fn postgres(mut self) -> Self {
        self.postgres = true;
        self
    }

    /// An existing database (e.g. another test's PostgreSQL database).
    pub fn database(mut self, url: &str) -> Self {
        self.config = self.config.database(url);
        self
    }

    /// Uses this fake Twilio (for tests that need its address in their own TOML) instead of
    /// starting one.
    pub fn with_twilio(mut self, twilio: FakeTwilio) -> Self {
        self.twilio = Some(twilio);
        self
    }

    /// Starts a fake Graph API and points the WhatsApp channel at it (otherwise the
    /// channel points nowhere).
    pub fn graph(mut self) -> Self {
        self.graph = true;
        self
    }

    /// Inbound media from the fake providers (on loopback) is fetched: see
    /// [`ConfigBuilder::private_media`].
    pub fn private_media(mut self) -> Self {
        self.config = self.config.private_media();
        self
    }

    /// The email configuration with these `[[channels]]`; no fake providers.
    pub fn email(mut self, channels: &str) -> Self {
        self.config = self.config.email(channels);
        self.email = true;
        self
    }

    /// See [`ConfigBuilder::tenant_toml`].
    pub fn tenant_toml(mut self, tenant: &str, toml: &str) -> Self {
        self.config = self.config.tenant_toml(tenant, toml);
        self
    }

    /// See [`ConfigBuilder::toml`].
    pub fn toml(mut self, toml: &str) -> Self {
        self.config = self.config.toml(toml);
        self
    }

    /// An environment variable for the daemon (e.g. `SWITCHBOARD_SERVER__LOG_FORMAT`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// An API token made before the daemon starts: `app.tokens[i]`, in call order.
    pub fn token(mut self, tenant: &str, role: &str, name: &str) -> Self {
        self.tokens.push([tenant.into(), role.into(), name.into()]);
        self
    }

    /// Everything but the daemon: start it with [`App::start`] (for CLI work first).
    pub async fn configure(self) -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = self.config;
        let twilio = match (self.twilio, self.email) {
            (Some(t), _) => Some(t),
            (None, false) => Some(FakeTwilio::start().await),
            (None, true) => None,
        };
        if let Some(t) = &twilio {
            config = config.twilio(&t.base);
        }
        let graph = if self.graph {
            let g = FakeGraph::start().await;
            config = config.graph(&g.base);
            Some(g)
        } else {
            None
        };
        let pg = if self.postgres {
            let pg = PgDatabase::create("sb_e2e").await;
            config = config.database(&pg.url);
            Some(pg)
        } else {
            None
        };
        let database_url = config.database_url(dir.path());
        config = config.database(&database_url);
        let path = config.write(dir.path());
        let tokens = self
            .tokens
            .iter()
            .map(|[tenant, role, name]| token(&self.bin, &path, tenant, role, name))
            .collect();
        App {
            daemon: None,
            twilio,
            graph,
            tokens,
            env: self.env,
            bin: self.bin,
            config_builder: config,
            config: path,
            database_url,
            _pg: pg,
            dir,
        }
    }

    /// Configures and starts the daemon.
    pub async fn spawn(self) -> App {
        let mut app = self.configure().await;
        app.start();
        app
    }
}

fn token(bin: &Path, config: &Path, tenant: &str, role: &str, name: &str) -> String {
    cli(
        bin,
        config,
        &[
            "token", "create", "--tenant", tenant, "--role", role, "--name", name,
        ],
    )
}

/// A configured test environment and its daemon (see the module docs). Derefs to the
/// running [`Daemon`].
pub struct App {
    daemon: Option<Daemon>,
    twilio: Option<FakeTwilio>,
    graph: Option<FakeGraph>,
    /// The tokens asked for with [`AppBuilder::token`], in order.
    pub tokens: Vec<String>,
    env: Vec<(String, String)>,
    pub bin: PathBuf,
    config_builder: ConfigBuilder,
    pub config: PathBuf,
    /// The database of the configuration (replicas share it).
    pub database_url: String,
    /// Held to drop the database after the daemon is gone.
    _pg: Option<PgDatabase>,
    pub dir: TempDir,
}

impl App {
    pub fn builder(bin: &str) -> AppBuilder {
        AppBuilder {
            bin: bin.into(),
            config: ConfigBuilder::new(),
            postgres: false,
            twilio: None,
            graph: false,
            email: false,
            tokens: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn twilio(&self) -> &FakeTwilio {
        self.twilio.as_ref().expect("this app has no fake Twilio")
    }

    pub fn graph(&self) -> &FakeGraph {
        self.graph
            .as_ref()
            .expect("this app has no fake Graph API (AppBuilder::graph)")
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("the daemon is not running")
    }

    pub fn daemon_mut(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("the daemon is not running")
    }

    /// Starts the daemon (again, after a kill); a running one is killed first.
    pub fn start(&mut self) {
        self.daemon = None;
        self.daemon = Some(Daemon::start(
            &self.bin,
            self.dir.path(),
            &self.config,
            &self.env,
        ));
    }

    /// `kill -9` of the daemon, if it runs.
    pub fn kill9(&mut self) {
        if let Some(d) = self.daemon.as_mut() {
            d.kill9();
        }
    }

    /// A one-shot CLI command on this configuration; its stdout (asserting success).
    pub fn cli(&self, args: &[&str]) -> String {
        cli(&self.bin, &self.config, args)
    }

    /// A one-shot CLI command: (success, stdout, stderr).
    pub fn cli_output(&self, args: &[&str]) -> (bool, String, String) {
        cli_output(&self.bin, &self.config, args)
    }

    /// A new API token, made with the CLI.
    pub fn token(&self, tenant: &str, role: &str, name: &str) -> String {
        token(&self.bin, &self.config, tenant, role, name)
    }

    /// A second daemon with the same configuration and database, in its own directory (its
    /// own blobs and log), started.
    pub fn replica(&self) -> Replica {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = self.config_builder.write(dir.path());
        let daemon = Daemon::start(&self.bin, dir.path(), &config, &self.env);
        Replica { daemon, dir }
    }
}

impl std::ops::Deref for App {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        self.daemon()
    }
}

/// A replica from [`App::replica`]; derefs to its [`Daemon`].
pub struct Replica {
    pub daemon: Daemon,
    pub dir: TempDir,
}

impl std::ops::Deref for Replica {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl std::ops::DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}
