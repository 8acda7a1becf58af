//! The one-shot commands (`migrate`, `check-config`, `token`, `twilio-sign`) and dispatch.

use crate::cli::{Cli, Command, RoleArg, TokenCommand};
use anyhow::{Context, Result, anyhow, bail};
use std::sync::Arc;
use switchboard_core::domain::model::new_id;
use switchboard_core::infra::config::{self, ChannelScope, Config};
use switchboard_core::store::{self, NewToken, Role, Store, TenantRecord};

pub async fn run(cli: Cli) -> Result<()> {
    let config = load_config(&cli)?;
    match cli.command {
        Command::Serve => crate::serve::serve(config).await,
        Command::CheckConfig => {
            println!(
                "configuration OK: {} tenant(s), {} channel(s), database {}",
                config.tenants.len(),
                config.channels.len(),
                if config.database.url.expose().starts_with("sqlite:") {
                    "sqlite"
                } else {
                    "postgres"
                }
            );
            Ok(())
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token { command } => token(&config, command).await,
        Command::Sync { once: _, channel } => sync(&config, channel.as_deref()).await,
        Command::TwilioSign {
            channel,
            route,
            data,
        } => twilio_sign(&config, &channel, &route, &data),
    }
}

/// `switchboard sync --once`: every email channel's folders, to completion.
async fn sync(config: &Config, only: Option<&str>) -> Result<()> {
    let _log = crate::logging::init(config.server.log_format);
    let store = open_store(config).await?;
    store.set_threading(config.threading.policy());
    let blobs = switchboard_core::infra::blob::BlobStore::open(&config.blobs.path)
        .await
        .context("opening the blob store")?;
    let jobs = Arc::new(tokio::sync::Notify::new());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let public_url = if config.server.public_url.is_empty() {
        format!("http://{}", config.server.listen)
    } else {
        config.server.public_base()
    };
    let connectors = crate::serve::build_connectors(
        config,
        &store,
        &blobs,
        &jobs,
        &crate::serve::http_client()?,
        &public_url,
        &shutdown,
    )?;
    crate::serve::record_channels(config, &store, &connectors).await?;
    if let Some(id) = only
        && !connectors.contains_key(id)
    {
        bail!("no channel {id:?} in the configuration");
    }
    let mut ids: Vec<&String> = connectors
        .keys()
        .filter(|id| only.is_none_or(|o| o == *id))
        .collect();
    ids.sort();
    let mut synced = 0;
    let mut failed = 0;
    for id in ids {
        let Some(result) = connectors[id].sync_once().await else {
            continue;
        };
        synced += 1;
        match result {
            Ok(summary) => println!("{id}: {summary}"),
            Err(e) => {
                failed += 1;
                eprintln!("{id}: sync failed: {e}");
            }
        }
    }
    if synced == 0 {
        bail!("no email channel to sync");
    }
    if failed > 0 {
        bail!("{failed} channel(s) failed to sync");
    }
    Ok(())
}

fn load_config(cli: &Cli) -> Result<Config> {
    let registry = crate::channels::registry();
    // Commands that use no channel (tokens, migrations) or one (signing) do not ask for the
    // other channels' secrets.
    let scope = match &cli.command {
        Command::Token { .. } | Command::Migrate => ChannelScope::None,
        Command::TwilioSign { channel, .. } => ChannelScope::Only(channel),
        Command::Serve | Command::CheckConfig | Command::Sync { .. } => ChannelScope::All,
    };
    config::load(
        cli.config.as_deref(),
        crate::channels::validators(&registry, scope),
    )
    .map_err(|errors| anyhow!("{errors}"))
}

/// Opens the store, applies migrations and records the configured tenants.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    let store = store::open(
        config.database.url.expose(),
        config.database.max_connections,
    )
    .await
    .context("opening the database")?;
    store.migrate().await.context("applying migrations")?;
    store
        .sync_tenants_and_channels(&tenant_records(config), &[])
        .await
        .context("recording tenants")?;
    Ok(store)
}

pub fn tenant_records(config: &Config) -> Vec<TenantRecord> {
    config
        .tenants
        .iter()
        .map(|t| TenantRecord {
            id: t.id.clone(),
            name: t.name.clone(),
        })
        .collect()
}

async fn token(config: &Config, command: TokenCommand) -> Result<()> {
    let store = open_store(config).await?;
    match command {
        TokenCommand::Create { tenant, role, name } => {
            if name.trim().is_empty() || name.len() > 100 {
                bail!("--name must be 1-100 characters");
            }
            let (token, hash) = switchboard_core::infra::auth::tokens::generate();
            let id = new_id();
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Agent => Role::Agent,
            };
            store
                .create_token(&NewToken {
                    id: id.clone(),
                    tenant_id: tenant.clone(),
                    name: name.clone(),
                    role,
                    hash,
                })
                .await
                .map_err(|e| anyhow!("{e}"))?;
            eprintln!(
                "created {} token {name:?} (id {id}) for tenant {tenant}; it is shown only once:",
                role.as_str()
            );
            println!("{token}");
            Ok(())
        }
        TokenCommand::Revoke { tenant, token } => {
            let n = store.revoke_token(&tenant, &token).await?;
            if n == 0 {
                bail!("no active token {token:?} in tenant {tenant}");
            }
            println!("revoked {n} token(s)");
            Ok(())
        }
    }
}

fn twilio_sign(config: &Config, channel: &str, route: &str, data: &str) -> Result<()> {
    let ch = config
        .channels
        .iter()
        .find(|c| c.id == channel && c.kind == switchboard_twilio::TYPE.kind)
        .ok_or_else(|| anyhow!("no Twilio channel {channel:?} in the configuration"))?;
    let token = ch
        .settings
        .get("auth_token")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("channel {channel} has no auth_token"))?;
    let url = format!("{}/webhooks/{channel}/{route}", config.server.public_base());
    let params: Vec<(String, String)> = url::form_urlencoded::parse(data.as_bytes())
        .into_owned()
        .collect();
    eprintln!("signed URL: {url}");
    println!("{}", switchboard_twilio::sign(token, &url, &params));
    Ok(())
}
