//! `switchboard serve`: bind, build the connectors, mount API and webhooks, run the
//! dispatcher, and shut down gracefully (in-flight requests and sends drain).

use crate::commands::{open_store, tenant_records};
use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::api::{AppState, router};
use switchboard_core::auth::jwt::JwtVerifier;
use switchboard_core::blob::BlobStore;
use switchboard_core::config::{Config, ConfigErrors};
use switchboard_core::connector::{Connector, ConnectorContext};
use switchboard_core::events::EventHub;
use switchboard_core::ingest::Ingest;
use switchboard_core::outbox::Dispatcher;
use switchboard_core::store::{ChannelRecord, ChannelRef, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub async fn serve(config: Config) -> Result<()> {
    crate::logging::init(config.server.log_format);
    let store = open_store(&config).await?;
    store.set_threading(config.threading.policy());
    let blobs = BlobStore::open(&config.blobs.path)
        .await
        .context("opening the blob store")?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let bound = listener.local_addr()?;
    let public_url = if config.server.public_url.is_empty() {
        format!("http://{bound}")
    } else {
        config.server.public_base()
    };
    let shutdown = CancellationToken::new();
    let jobs = Arc::new(Notify::new());
    let http = http_client()?;

    let connectors = build_connectors(
        &config,
        &store,
        &blobs,
        &jobs,
        &http,
        &public_url,
        &shutdown,
    )?;
    record_channels(&config, &store, &connectors).await?;
    let webhooks = switchboard_core::webhooks_out::Webhooks::new(&config.tenants, &config.webhooks);
    store
        .sync_webhook_endpoints(&webhooks.records())
        .await
        .context("recording webhook endpoints")?;

    let connectors = Arc::new(connectors);
    // Connectors' own inbound work (IMAP sync loops), until shutdown.
    let mut background = tokio::task::JoinSet::new();
    for c in connectors.values() {
        let c = c.clone();
        background.spawn(async move { c.run().await });
    }
    let events = EventHub::new(store.clone(), &config.events);
    let events_task = tokio::spawn(events.clone().run(shutdown.clone()));
    let mut app: Router = router(
        AppState {
            store: store.clone(),
            blobs: blobs.clone(),
            jobs: jobs.clone(),
            connectors: connectors.clone(),
            events: events.clone(),
            jwt: JwtVerifier::from_config(&config.auth)
                .map_err(|e| anyhow!("{}", ConfigErrors(e)))?
                .map(Arc::new),
            tenants: Arc::new(config.tenants.iter().map(|t| t.id.clone()).collect()),
            webhooks: webhooks.clone(),
        },
        config.server.max_body_bytes,
    );
    // Webhooks get their own body cap: providers send more than API clients (Meta up to
    // 3 MB); each connector caps its routes further. The API router caps its own bodies.
    let mut hooks = Router::new();
    for (id, c) in connectors.iter() {
        if let Some(routes) = c.routes() {
            hooks = hooks.nest(&format!("/webhooks/{id}"), routes);
        }
    }
    app = app.merge(
        hooks
            .layer(DefaultBodyLimit::max(config.server.max_webhook_body_bytes))
            .layer(RequestBodyLimitLayer::new(
                config.server.max_webhook_body_bytes,
            )),
    );
    let metrics =
        switchboard_core::metrics::install().map_err(|e| anyhow!("installing metrics: {e}"))?;
    let app = app
        .merge(switchboard_core::metrics::routes(
            metrics,
            store.clone(),
            events.clone(),
        ))
        .layer(axum::middleware::from_fn(switchboard_core::metrics::track))
        .layer(TraceLayer::new_for_http());

    let health_every = (config.server.health_check_secs > 0)
        .then(|| Duration::from_secs(config.server.health_check_secs));
    tokio::spawn(switchboard_core::health::run(
        store.clone(),
        connectors.clone(),
        health_every,
        shutdown.clone(),
    ));
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        connectors.clone(),
        blobs,
        config.outbox.clone(),
        config.media.clone(),
        jobs,
    ));
    let dispatcher = tokio::spawn(dispatcher.run(shutdown.clone()));
    let relay = Arc::new(switchboard_core::webhooks_out::Relay::new(
        store.clone(),
        events.clone(),
        webhooks,
    ));
    let relay = tokio::spawn(relay.run(shutdown.clone()));

    tracing::info!(%bound, %public_url, channels = config.channels.len(), "switchboard listening");
    // A line on stdout for scripts and tests that start the daemon on port 0.
    println!("switchboard listening on http://{bound}");

    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: draining requests and sends");
        signal.cancel();
    });
    let server_shutdown = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
        .await
        .context("serving HTTP")?;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    if tokio::time::timeout(grace, dispatcher).await.is_err() {
        tracing::warn!(
            "sends still in flight after {grace:?}; their jobs will be retried after restart"
        );
    }
    if tokio::time::timeout(grace, relay).await.is_err() {
        tracing::warn!(
            "webhook deliveries still in flight after {grace:?}; they are retried after restart"
        );
    }
    if tokio::time::timeout(grace, async {
        while background.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            "mailbox syncs still running after {grace:?}; their last batch is fetched again after restart"
        );
    }
    let _ = events_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Builds every configured channel's connector; all configuration errors at once.
pub fn build_connectors(
    config: &Config,
    store: &Arc<dyn Store>,
    blobs: &BlobStore,
    jobs: &Arc<Notify>,
    http: &reqwest::Client,
    public_url: &str,
    shutdown: &CancellationToken,
) -> Result<HashMap<String, Arc<dyn Connector>>> {
    let mut connectors: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    let mut errors = Vec::new();
    let public_http =
        switchboard_core::public_http::PublicHttp::new(config.media.allow_private_networks)
            .context("building the media HTTP client")?;
    for ch in &config.channels {
        let blocklist = config
            .tenants
            .iter()
            .find(|t| t.id == ch.tenant)
            .map(|t| t.blocklist.as_slice())
            .unwrap_or_default();
        let ctx = ConnectorContext {
            ingest: Ingest::new(
                store.clone(),
                ChannelRef {
                    tenant_id: ch.tenant.clone(),
                    channel_id: ch.id.clone(),
                },
                jobs.clone(),
            )
            .with_blobs(blobs.clone())
            .with_blocklist(blocklist),
            http: http.clone(),
            public_http: public_http.clone(),
            public_url: public_url.to_string(),
            shutdown: shutdown.clone(),
        };
        match crate::channels::build(ch, ctx) {
            Ok(c) => {
                connectors.insert(ch.id.clone(), c);
            }
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(anyhow!("{}", ConfigErrors(errors)));
    }
    Ok(connectors)
}

/// Records the configured channels (kind, address) in the database.
pub async fn record_channels(
    config: &Config,
    store: &Arc<dyn Store>,
    connectors: &HashMap<String, Arc<dyn Connector>>,
) -> Result<()> {
    let records: Vec<ChannelRecord> = config
        .channels
        .iter()
        .map(|ch| ChannelRecord {
            id: ch.id.clone(),
            tenant_id: ch.tenant.clone(),
            kind: ch.kind.as_str().to_string(),
            address: connectors.get(&ch.id).and_then(|c| c.address()),
        })
        .collect();
    store
        .sync_tenants_and_channels(&tenant_records(config), &records)
        .await
        .context("recording channels")
}

/// The shared HTTP client of the connectors.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
