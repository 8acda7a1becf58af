//! Command-line interface.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Omnichannel ingestion daemon: email, Twilio and WhatsApp into one conversation model"
)]
pub struct Cli {
    /// Configuration file (TOML). Without one, the embedded defaults apply.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: API, webhooks, outbox dispatcher.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load and validate the configuration, report every problem, and exit.
    CheckConfig,
    /// Sync mailboxes (email channels) once, to completion, and exit: a first backfill,
    /// or catching up without running the daemon.
    Sync {
        /// Run once and exit (the only mode; the daemon syncs continuously).
        #[arg(long, default_value_t = true)]
        once: bool,
        /// Only this channel (default: every email channel).
        #[arg(long)]
        channel: Option<String>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Compute the X-Twilio-Signature for a webhook body (for trying the API with curl).
    TwilioSign {
        /// The Twilio channel id from the configuration.
        #[arg(long)]
        channel: String,
        /// The webhook route: `messages` or `status`.
        #[arg(long, default_value = "messages")]
        route: String,
        /// The form-encoded body exactly as it will be sent, e.g. `From=%2B1555...&Body=hi`.
        #[arg(long)]
        data: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        name: String,
    },
    /// Revoke tokens by id or name.
    Revoke {
        #[arg(long)]
        tenant: String,
        /// The token's id or name.
        token: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Agent,
}
