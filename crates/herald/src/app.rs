//! Wires the pieces together: store, API and dispatcher, on a listener the
//! caller chose, until a shutdown token fires.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::auth::{Keys, Revocations, DEFAULT_ORG};
use crate::config::Config;
use crate::dispatch::{Deliverer, Dispatcher, Wake};
use crate::service::Herald;

/// Serves the API on `listener` and runs the dispatcher beside it until
/// `shutdown` is cancelled; then stops taking requests, lets in-flight
/// deliveries finish within the grace period, and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_when_ready(config, listener, shutdown, |_| {}).await
}

/// [`serve`], calling `ready` once the database is open and everything is
/// started, right before connections are taken: `herald serve` says it
/// listens only then, so a database that cannot be opened never shows a
/// listening line; `herald demo` also takes the process's state from it to
/// issue its operator link.
pub async fn serve_when_ready(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    ready: impl FnOnce(&Herald),
) -> anyhow::Result<()> {
    let mut config = config;
    // Links (the portal's) name the address actually bound, not port 0.
    if config.listen.port() == 0 {
        config.listen = listener
            .local_addr()
            .context("the listener has no address")?;
    }
    let config = Arc::new(config);
    let store = crate::database::open_store(
        &config.database_url,
        config.sqlite_synchronous_full,
        config.keyring.clone(),
    )
    .await?;
    if config.role.runs_worker() {
        // With SQLite a lease left over was held by this process before it died,
        // so its deliveries are due again now.
        let released = store.recover_after_restart().await?;
        if released > 0 {
            tracing::info!(
                released,
                "re-queued deliveries that were in flight when Herald last stopped"
            );
        }
    }
    if config.seed_catalog {
        match crate::catalog::seed_if_empty(store.as_ref(), DEFAULT_ORG).await? {
            Some(report) => tracing::info!(%report, "imported the built-in Spot event catalog"),
            None => {
                tracing::info!("event types already exist; the built-in catalog was not imported")
            }
        }
    }
    let wake = Arc::new(Wake::default());
    let transformer = herald_transform::Transformer::start(
        config.transformation_threads,
        config.transformation_limits,
    );
    let metrics = Arc::new(if config.metrics {
        crate::metrics::Metrics::new()
    } else {
        crate::metrics::Metrics::off()
    });
    let operational = Arc::new(crate::operational::Operational::new(
        store.clone(),
        wake.clone(),
    ));
    let deliverer = Arc::new(Deliverer::new(
        store.clone(),
        config.clone(),
        transformer.clone(),
        metrics.clone(),
        operational.clone(),
    )?);
    let state = Herald {
        store: store.clone(),
        config: config.clone(),
        keys: Keys::new(config.secret_bytes()),
        wake: wake.clone(),
        deliverer: deliverer.clone(),
        revocations: Arc::new(Revocations::new(store.clone())),
        transformer,
        metrics,
        operational,
    };
    // Pruning is the worker's housekeeping, so an API-only node never does it.
    let pruner = config
        .prune_interval
        .filter(|_| config.role.runs_worker())
        .map(|every| {
            tokio::spawn(crate::retention::run_periodically(
                store.clone(),
                every,
                config.attempt_retention,
                shutdown.clone(),
            ))
        });
    let worker = config.role.runs_worker().then(|| {
        let dispatcher = Dispatcher::new(store, config.clone(), deliverer, wake);
        tokio::spawn(dispatcher.run(shutdown.clone()))
    });

    let ready_state = state.clone();
    let router = if config.role.runs_api() {
        api::router(state.clone()).merge(crate::portal::router(state))
    } else {
        api::health_router(state)
    };
    // Svix's server and its older SDKs write API paths with a trailing slash
    // (`POST /api/v1/app/`); both forms reach the same route. Only API paths:
    // the portal's `/portal/` is a page of its own.
    let router = axum::Router::new().fallback_service(tower::ServiceExt::map_request(
        router,
        api::trim_trailing_slash,
    ));
    // The span names the path, never the query: a portal login URL carries a
    // one-time token there, and no log line at any level may show it.
    let router = router.layer(
        tower_http::trace::TraceLayer::new_for_http().make_span_with(
            |request: &axum::http::Request<axum::body::Body>| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            },
        ),
    );
    let mut limits = config.http;
    let open_files = crate::server::raise_open_files_limit();
    limits.max_connections = crate::server::fit_connections(
        limits.max_connections,
        open_files,
        crate::server::reserved_descriptors(config.worker_concurrency),
    );
    if limits.max_connections < config.http.max_connections {
        tracing::warn!(
            max_connections = limits.max_connections,
            ?open_files,
            "HERALD_MAX_CONNECTIONS lowered to fit the open-files limit (raise it with ulimit -n)"
        );
    }
    ready(&ready_state);
    drop(ready_state);
    crate::server::serve(listener, router, limits, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(worker) = worker {
        worker.await.context("the dispatcher panicked")?;
    }
    if let Some(pruner) = pruner {
        pruner.await.context("the pruning task panicked")?;
    }
    Ok(())
}
