//! `switchboard serve`: bind, build the connectors, mount API and webhooks, run the
//! dispatcher, and shut down gracefully (in-flight requests and sends drain).

use crate::commands::{open_store, tenant_records};
use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::api::access::Access;
use switchboard_core::api::{AppState, router};
use switchboard_core::contract::connector::{Connector, ConnectorContext};
use switchboard_core::contract::ingest::Ingest;
use switchboard_core::contract::ingest_types::ChannelRef;
use switchboard_core::infra::auth::jwt::JwtVerifier;
use switchboard_core::infra::blob::BlobStore;
use switchboard_core::infra::config::{Config, ConfigError, ConfigErrors};
use switchboard_core::infra::event_hub::EventHub;
use switchboard_core::infra::signed_url::UrlSigner;
use switchboard_core::store::{ChannelRecord, Store};
use switchboard_core::workers::outbox::Dispatcher;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub async fn serve(config: Config) -> Result<()> {
    let _log = crate::logging::init(config.server.log_format);
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

    let registry = crate::channels::registry();
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
    let webhooks = switchboard_core::workers::outgoing_webhooks::Webhooks::new(
        &config.tenants,
        &config.webhooks,
    );
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
            registry: Arc::new(registry.clone()),
            access: Arc::new(Access::from_config(&config)),
            urls: Arc::new(UrlSigner::from_config(&config.server)),
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
    let metrics = switchboard_core::infra::metrics::install()
        .map_err(|e| anyhow!("installing metrics: {e}"))?;
    let app = app
        .merge(switchboard_core::infra::metrics::routes(
            metrics,
            store.clone(),
            events.clone(),
            config.server.metrics_token.clone(),
        ))
        .layer(axum::middleware::from_fn(
            switchboard_core::infra::metrics::track,
        ))
        .layer(TraceLayer::new_for_http());

    let health_every = (config.server.health_check_secs > 0)
        .then(|| Duration::from_secs(config.server.health_check_secs));
    tokio::spawn(switchboard_core::workers::channel_health::run(
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
    let relay = Arc::new(switchboard_core::workers::outgoing_webhooks::Relay::new(
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
        // Cancel first: logging must never stand between the signal and the shutdown.
        signal.cancel();
        tracing::info!("shutting down: draining requests and sends");
    });
    let server_shutdown = shutdown.clone();
    let limits = crate::http_server::Limits {
        header_read: Duration::from_secs(config.server.header_read_timeout_secs.max(1)),
        idle: Duration::from_secs(config.server.idle_timeout_secs.max(1)),
        max_connections: config.server.max_connections,
        request_body: Duration::from_secs(config.server.request_body_timeout_secs.max(1)),
    };
    let server = async move {
        crate::http_server::serve(listener, app, limits, server_shutdown).await;
        Ok::<(), std::io::Error>(())
    };
    let mut server = std::pin::pin!(server);
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    // The grace period is a hard bound on everything after the signal: a client that keeps
    // a connection open (a slow upload, a stuck proxy) must not keep the process alive.
    let deadline = tokio::select! {
        served = &mut server => {
            served.context("serving HTTP")?;
            tokio::time::Instant::now() + grace
        }
        () = shutdown.cancelled() => {
            let deadline = tokio::time::Instant::now() + grace;
            match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(served) => served.context("serving HTTP")?,
                Err(_) => tracing::warn!(
                    "connections still open after {grace:?}; closing them"
                ),
            }
            deadline
        }
    };
    if tokio::time::timeout_at(deadline, dispatcher).await.is_err() {
        tracing::warn!(
            "sends still in flight after {grace:?}; their jobs will be retried after restart"
        );
    }
    if tokio::time::timeout_at(deadline, relay).await.is_err() {
        tracing::warn!(
            "webhook deliveries still in flight after {grace:?}; they are retried after restart"
        );
    }
    if tokio::time::timeout_at(deadline, async {
        while background.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            "mailbox syncs still running after {grace:?}; their last batch is fetched again after restart"
        );
    }
    let _ = tokio::time::timeout_at(deadline, events_task).await;
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
    let registry = crate::channels::registry();
    let mut connectors: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    let mut errors = Vec::new();
    let public_http =
        switchboard_core::infra::public_http::PublicHttp::new(config.media.allow_private_networks)
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
                    threading: registry.threading(ch.kind),
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
        let built = match registry.get(ch.kind) {
            Some(t) => (t.build)(ch.id.clone(), &ch.settings, ctx),
            None => Err(vec![ConfigError::new(
                format!("channels[{}].type", ch.id),
                format!("no connector of type {:?} in this build", ch.kind.as_str()),
            )]),
        };
        match built {
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

/// Records the configured channels (kind, address) in the database, and marks those the
/// configuration no longer lists `removed`.
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
        .context("recording channels")?;
    let configured: Vec<String> = config.channels.iter().map(|c| c.id.clone()).collect();
    let retired = store
        .retire_unconfigured_channels(&configured)
        .await
        .context("retiring channels no longer configured")?;
    if retired > 0 {
        tracing::info!(
            channels = retired,
            "channels no longer in the configuration are listed as removed"
        );
    }
    Ok(())
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
