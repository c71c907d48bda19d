//! The application: the router with every resource under both prefixes, its layers, and a
//! running server bound before it is spawned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use parley_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::background::Background;
use crate::bootstrap::{BootstrapError, FirstStart, access_tokens, bootstrap};
use crate::config::Config;
use crate::connections::{Limits, Routers, connection_budget};
use crate::openapi::{ApiDoc, Document};
use crate::problem::{ApiError, ErrorCode};
use crate::query_rules::QueryRules;
use crate::ratelimit::RateLimit;
use crate::reference::Reference;
use crate::routes::{
    analytics, apikeys, conversations, escalations, goal_events, goals, health, insights, members, oauth, odata,
    projects, steps, tasks, users,
};
use crate::state::AppState;

/// The routes of the REST API, mounted under `/new/v2.0` and `/v2.0`. Each is registered with
/// its handler's OpenAPI operation, so the document lists exactly what is routed.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(analytics::update_records, analytics::list_records))
        .routes(routes!(analytics::ingest_records))
        // GET takes a record id, DELETE a project id (docs/contract/rest.md §3 and §4).
        .routes(routes!(analytics::get_record, analytics::delete_records))
        .routes(routes!(conversations::ingest_messages))
        .routes(routes!(steps::ingest_steps))
        .routes(routes!(goal_events::ingest_goal_events))
        .routes(routes!(escalations::ingest_escalations))
        .routes(routes!(goals::create_goal, goals::list_goals))
        .routes(routes!(goals::read_goal, goals::change_goal, goals::delete_goal))
        .routes(routes!(conversations::list_conversations))
        .routes(routes!(conversations::read_conversation, conversations::delete_conversation))
        .routes(routes!(tasks::get_task))
        .routes(routes!(insights::read_report))
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(projects::get_project, projects::update_project, projects::delete_project))
        .routes(routes!(members::set_member, members::list_members))
        .routes(routes!(members::remove_member))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::delete_user))
        .routes(routes!(apikeys::create_api_key, apikeys::list_api_keys))
        .routes(routes!(apikeys::revoke_api_key))
}

/// The routes outside the prefixes: OAuth2, health, this document, the reference and the dashboard.
fn root() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::version))
        .routes(routes!(crate::openapi::document))
        .routes(routes!(crate::reference::page))
        .routes(routes!(crate::reference::home))
        .routes(routes!(crate::dashboard::page))
        .routes(routes!(crate::dashboard::script))
        .routes(routes!(crate::dashboard::style))
        .routes(routes!(crate::dashboard::icon))
}

/// The documented routes and the OpenAPI document that lists them. The document lists the
/// REST API under `/new/v2.0` only; the `/v2.0` copy and the health routes under the prefixes
/// are the same handlers at other addresses.
pub fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (aliased, _) = api().split_for_parts();
    let health = health_routes();
    let (router, document) =
        OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/new/v2.0", api()).merge(root()).split_for_parts();
    let aliases =
        Router::new().nest("/v2.0", aliased.merge(health.clone())).merge(Router::new().nest("/new/v2.0", health));
    (router.merge(aliases), document)
}

/// The health probes, which are also served under the prefixes.
fn health_routes() -> Router<AppState> {
    Router::new().route("/health/live", get(health::live)).route("/health/ready", get(health::ready))
}

/// What a connection beyond `max_connections` is served (docs/operations.md, "Connections"):
/// the health probes as usual, so that a node under pressure is still seen alive and ready, and
/// 503 with `Retry-After` for everything else, before any other work.
pub fn at_capacity(state: AppState) -> Router {
    let health = health_routes();
    Router::new()
        .merge(health.clone())
        .nest("/new/v2.0", health.clone())
        .nest("/v2.0", health)
        .fallback(busy)
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state.metrics), crate::telemetry::finish))
        .with_state(state)
}

async fn busy() -> ApiError {
    let mut error = ApiError::new(
        ErrorCode::Unavailable,
        "The server has as many connections open as it serves; try again in a moment, and reuse connections.",
    );
    error.headers.push((axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1")));
    error
}

/// The whole application for `state`; `rate_limit` is `None` when limits are off.
pub fn router(state: AppState, request_timeout: Duration, rate_limit: Option<Arc<RateLimit>>) -> Router {
    let (documented, document) = documented();
    let rules = QueryRules::of(&document);
    let mut json = serde_json::to_value(&document).unwrap_or_default();
    crate::openapi::finish(&mut json);
    let reference = Reference(crate::reference::render(&json).into_bytes().into());
    let document = Document(serde_json::to_vec(&json).unwrap_or_default().into());
    let mut app = documented
        .layer(axum::middleware::from_fn_with_state(rules, crate::query_rules::refuse_unknown))
        .layer(Extension(document))
        .layer(Extension(reference))
        .merge(odata::routes())
        .route("/metrics", get(crate::metrics::serve))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, request_timeout));
    if let Some(limit) = rate_limit {
        app = app.layer(axum::middleware::from_fn_with_state(limit, crate::ratelimit::limit));
    }
    app.layer(CorsLayer::new().allow_origin(Any).allow_methods(Any).allow_headers(Any).expose_headers(Any))
        .layer(axum::middleware::from_fn(refuse_nul_in_address))
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state.metrics), crate::telemetry::finish))
        // Outermost, so that what is compressed is the finished answer (problem bodies too).
        .layer(CompressionLayer::new().gzip(true).br(true).quality(tower_http::CompressionLevel::Fastest))
        .with_state(state)
}

/// The most bytes of request headers (names and values) accepted (docs/contract/rest.md §9).
pub const HEADER_LIMIT: usize = 16 * 1024;

/// Refuses requests whose headers exceed [`HEADER_LIMIT`], before any work is done for them.
async fn limit_headers(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let size: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if size > HEADER_LIMIT {
        return ApiError::new(ErrorCode::HeadersTooLarge, format!("The request headers exceed {HEADER_LIMIT} bytes."))
            .into_response();
    }
    next.run(request).await
}

/// Refuses an address whose path or query holds U+0000 (`%00`), which neither store can keep:
/// one check for every route, before any of them reads a parameter. OData's parser refuses it
/// itself, in OData's error format and with the position. A credential in the query is left to
/// the credential check, which answers 401 for it like for any other key that opens nothing.
async fn refuse_nul_in_address(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = request.uri();
    if odata::serves(uri.path()) {
        return next.run(request).await;
    }
    let holds_nul = |text: &str| text.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0');
    let credential =
        |pair: &&str| crate::query_rules::EVERYWHERE.contains(&pair.split_once('=').map_or(*pair, |(name, _)| name));
    let in_query = uri.query().is_some_and(|query| query.split('&').filter(|p| !credential(p)).any(holds_nul));
    if holds_nul(uri.path()) || in_query {
        return ApiError::new(
            ErrorCode::Invalid,
            "Validation failed. The address must not contain the NUL character (%00).",
        )
        .into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "No resource at this address.")
}

/// A server listening on its own task.
pub struct Running {
    /// The address it is bound to (the real port when the configuration said 0).
    pub addr: SocketAddr,
    /// What the first start created, if this start was the first.
    pub first_start: Option<FirstStart>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    background: Background,
    store: Arc<dyn Store>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, stops the background work between two
    /// of its transactions, then closes the store once every write it accepted is durable.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.task.await.map_err(std::io::Error::other);
        self.background.stop().await;
        self.store.close().await;
        tracing::info!("stopped: requests finished, writes flushed");
        served?
    }

    /// Waits until the server ends on its own or `signal` completes, then drains.
    pub async fn until(self, signal: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        self.stop().await
    }
}

/// Why a start failed, in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Store(#[from] parley_store::StoreError),
    #[error("cannot set up the first organisation: {0}")]
    Bootstrap(#[from] BootstrapError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// Opens the store, bootstraps it on the first start, binds the listener and serves.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let store = parley_store::open(&config.effective_database_url(), config.database_pool_size).await?;
    let store: Arc<dyn Store> = Arc::new(parley_store::CachedStore::new(store, config.access_cache_ttl()));
    let first_start = bootstrap(store.as_ref(), config).await?;
    let tokens = Arc::new(access_tokens(store.as_ref()).await?);
    let tasks_queued = Arc::new(Notify::new());
    let listener =
        TcpListener::bind(config.listen).await.map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let public_url = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{addr}"),
    };
    let state = AppState {
        store: Arc::clone(&store),
        tokens,
        pending_update_window: config.pending_update_window(),
        tasks_queued: Arc::clone(&tasks_queued),
        public_url: public_url.into(),
        metrics: Arc::default(),
    };
    let background = Background::spawn(Arc::clone(&store), tasks_queued, config.into(), Arc::clone(&state.metrics));
    let routers = Routers {
        at_capacity: at_capacity(state.clone()),
        full: router(
            state,
            Duration::from_secs(config.request_timeout_secs),
            RateLimit::new(config.rate_limit_per_minute),
        ),
    };
    let limits = Limits {
        max_connections: connection_budget(config.max_connections),
        header_timeout: Duration::from_secs(config.header_timeout_secs),
    };
    let (shutdown, stopped) = watch::channel(false);
    let task = tokio::spawn(crate::connections::serve(listener, routers, limits, stopped));
    tracing::info!(
        address = %addr,
        engine = store.engine(),
        max_connections = limits.max_connections,
        "parley listening on http://{addr}"
    );
    Ok(Running { addr, first_start, shutdown, task, background, store })
}
