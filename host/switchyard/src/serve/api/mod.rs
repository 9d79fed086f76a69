//! The HTTP API (axum, JSON): the route table, the auth layer, the plumbing
//! every operation shares (errors, [`with_core`] / [`mutate`]), and the
//! operations, one file per resource — each parses its body, checks who may,
//! applies and journals through the core: `items.rs` (intake, completion,
//! withdrawal), `agents.rs` (registration, presence, desktop, tokens),
//! `offers.rs`, `supervision.rs` (queues, cases, alerts), `health.rs` (open
//! routes); the plugin life cycle's operations are `serve/plugins.rs`, the
//! backtests' `serve/backtest.rs`. The OpenAPI document (served at `GET /openapi.json`, checked in
//! as `host/switchyard/openapi.json`) is generated from [`ROUTES`] by `serve/openapi.rs`;
//! the axum routes are made from the same table.
//!
//! A request passes, in order: the connection limit and header timeout (see
//! [`super::serve`]), the request timeout, the **auth layer** (token → identity,
//! identity's role allowed on the route — before a byte of the body is read), the
//! route's body limit, then the handler: parse the body (a bad body is a 422
//! naming the field), check the caller owns what it touches (an agent acts only as
//! itself), validate against the router, journal and apply — so a refused request
//! changes nothing — and answer once the record is synced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router as Routes;
use axum::body::Bytes;
use axum::extract::{Extension, MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::config::{HttpLimits, seconds_ms};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_contract::{Channel, Priority, Tier};

use switchyard_core::router::{Capacity, ItemId, Presence};
use switchyard_core::rules::Decided;

use super::auth::{Auth, Denied, Identity, Role};
use super::core::{self as state_core, Applied, Core, IntakePlan, Refusal};
use super::journal::{AgentRecord, ItemRecord, Op};
use super::plugins;

mod agents;
mod health;
mod items;
mod offers;
mod supervision;

pub use agents::AgentBody;
pub use items::ItemBody;

/// What the handlers share.
pub(crate) struct Shared {
    pub(crate) core: Mutex<Core>,
    /// Held while a snapshot is taken and stored (see `serve::take_snapshot`).
    pub(crate) snapshotting: Mutex<()>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) journal: Arc<super::journal::GroupCommit>,
    /// The department plugins' life cycle (see [`super::plugins`]); never
    /// touched under the core's lock.
    pub(crate) plugins: super::plugins::Plugins,
    /// Set when the daemon begins to stop: long-lived answers (the console's
    /// event streams) end, so a graceful stop does not wait out their lifetime.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// This node's role in a cluster (always the leader on its own).
    pub(crate) node: Arc<super::cluster::NodeStatus>,
    /// Replaced by a rebuilt state (a deposed leader's): requests still
    /// arriving on its connections are told to come again.
    pub(crate) retired: std::sync::atomic::AtomicBool,
    /// Backtests of candidates over the traffic log (see [`super::backtest`]);
    /// one at a time, on their own thread.
    pub(crate) backtests: super::backtest::Backtests,
}

pub(crate) type AppState = Arc<Shared>;

/// A refused request: status and a JSON body `{"error": …, "field": …}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError { status, error: error.into(), field: None }
    }

    /// A 422 naming `field`.
    pub(crate) fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: format!("{field}: {message}"),
            field: Some(field.to_owned()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.error });
        if let Some(field) = self.field {
            body["field"] = Value::String(field);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            Refusal::Invalid { field, message } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                error: format!("{field}: {message}"),
                field: Some(field),
            },
            Refusal::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            Refusal::Internal(m) => {
                tracing::error!(error = %m, "request failed inside the daemon");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m)
            }
            // Every request after a failed commit (a deposed leader's, a full
            // disk's) would log the same error again.
            Refusal::Stopped(m) => {
                tracing::debug!(error = %m, "request refused: the journal takes no more writes");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m)
            }
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Unauthenticated => ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required"),
            Denied::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, why),
        }
    }
}

pub(crate) type Reply = Result<Response, ApiError>;

/// Parse a JSON body; a bad one is a 422 naming the field at fault.
pub(crate) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // An unknown or missing field is named in serde's message itself.
        let message = inner.to_string();
        let field = if path == "." {
            message
                .split('`')
                .nth(1)
                .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"))
                .map(str::to_owned)
        } else {
            Some(path)
        };
        // Not JSON, or not an object at all: the body itself is at fault.
        let (field, error) = match field {
            Some(f) => (f.clone(), format!("{f}: {message}")),
            None => ("body".to_owned(), format!("body: invalid JSON body: {message}")),
        };
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, error, field: Some(field) }
    })
}

/// Run `f` on the core off the async threads; if it journaled anything, wait
/// until that is synced — after releasing the lock, so other requests go on
/// meanwhile and share the disk sync (group commit). Decisions `f` deferred
/// are taken (`core::settle`) before the wait; for a reply that shows them,
/// use [`mutate`].
pub(crate) async fn with_core<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Core) -> R + Send + 'static,
) -> Result<R, ApiError> {
    mutate(state, move |core| Ok(f(core)), |_, r| r).await
}

/// Apply a change with `apply`, take the decisions it deferred (asked outside
/// the lock), then build the reply with `reply` from the state after them (an
/// item created *and offered*), and answer once it is all durable — and its
/// traffic-log lines written (bounded; see [`super::traffic`]).
pub(crate) async fn mutate<A: Send + 'static, R: Send + 'static>(
    state: &AppState,
    apply: impl FnOnce(&mut Core) -> Result<A, ApiError> + Send + 'static,
    reply: impl FnOnce(&Core, A) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let (result, ticket, traffic) = {
            let mut core = state_core::lock(&state.core);
            let before = core.last_ticket;
            let traffic_before = core.traffic.as_ref().map_or(0, |t| t.sent());
            let applied = apply(&mut core);
            let pending = core.take_pending();
            if !pending.is_empty() {
                drop(core);
                if let Err(e) = state_core::settle(&state.core, pending) {
                    // What was applied is journaled; what is left is retried
                    // by the router's timers.
                    tracing::error!(error = ?e, "deferred decisions not taken");
                }
                core = state_core::lock(&state.core);
            }
            let applied = applied.map(|a| reply(&core, a));
            // Lines this request gave the traffic log (and any before them).
            let traffic = core.traffic.clone().filter(|t| t.sent() > traffic_before).map(|t| {
                let seq = t.sent();
                (t, seq)
            });
            (applied, (core.last_ticket > before).then_some(core.last_ticket), traffic)
        };
        if let Some(ticket) = ticket {
            state.journal.wait_durable(ticket).map_err(|why| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why))?;
        }
        // Its traffic lines were handed to the OS while the journal synced
        // (bounded: a failing traffic log never holds a request).
        if let Some((log, seq)) = traffic {
            log.wait_written(seq);
        }
        result
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("request task failed: {e}")))?
}

/// 403 unless `who` may act for agent `name`: agents only for themselves.
fn as_agent(who: &Identity, name: &str) -> Result<(), ApiError> {
    match who.agent() {
        Some(me) if me != name => {
            Err(Denied::Forbidden(format!("agent `{me}` may act only as itself, not as `{name}`")).into())
        }
        _ => Ok(()),
    }
}

/// 403 unless `who` may touch item `id`: an agent only the items offered to or
/// held by it.
fn owns_item(core: &Core, who: &Identity, id: u64) -> Result<(), ApiError> {
    let Some(me) = who.agent() else { return Ok(()) };
    // The item's holder, not the agent's whole desktop: this runs on every
    // agent's item, offer and completion request.
    let holds = core.router.agent_id(me).is_some_and(|a| core.router.item_holder(ItemId(id)) == Some(a));
    if holds {
        Ok(())
    } else {
        Err(Denied::Forbidden(format!("item {id} is not offered to or held by agent `{me}`")).into())
    }
}

pub(crate) fn ok(status: StatusCode, body: Value) -> Reply {
    Ok((status, axum::Json(body)).into_response())
}

fn item_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        error: format!("id: `{raw}` is not an item id"),
        field: Some("id".into()),
    })
}

/// One served route: what it is, who may call it, how large its body may be,
/// and its handler — the axum routes, the auth layer and the OpenAPI document
/// are all made from [`ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// HTTP method, lower case as in the OpenAPI document.
    pub method: &'static str,
    /// Path template as in the OpenAPI document.
    pub path: &'static str,
    /// Roles that may call it; empty = open to anyone (health, readiness, metrics).
    pub roles: &'static [Role],
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// The handler, as the method router of this method alone.
    pub(crate) handler: fn() -> axum::routing::MethodRouter<AppState>,
}

/// Largest JSON body: an item with its attributes is a few KiB.
pub(crate) const JSON_BODY_LIMIT: usize = 64 << 10;
/// Largest plugin component accepted by `POST /v1/plugins/{department}` (and
/// its shadow).
const MAX_COMPONENT_BYTES: usize = 64 << 20;
/// Largest fixture file accepted by `PUT /v1/plugins/{department}/fixtures`.
const MAX_FIXTURES_BYTES: usize = 1 << 20;

use Role::{Admin, Agent, Integration, Supervisor};
const OPEN: &[Role] = &[];
const STAFF: &[Role] = &[Admin, Supervisor];

const fn route(
    method: &'static str,
    path: &'static str,
    roles: &'static [Role],
    handler: fn() -> axum::routing::MethodRouter<AppState>,
) -> RouteSpec {
    RouteSpec { method, path, roles, body_limit: JSON_BODY_LIMIT, handler }
}

/// Every route the daemon serves: the one table the axum routes (`routes`),
/// the auth layer's roles and the OpenAPI document (`serve/openapi.rs`) are
/// all made from.
pub const ROUTES: &[RouteSpec] = &[
    route("get", "/healthz", OPEN, || get(health::healthz)),
    route("get", "/readyz", OPEN, || get(health::readyz)),
    route("get", "/metrics", OPEN, || get(super::prom::metrics)),
    route("get", "/openapi.json", OPEN, || get(health::openapi_document)),
    route("post", "/v1/items", &[Admin, Integration], || post(items::create_item)),
    route("get", "/v1/items/{id}", &[Admin, Supervisor, Integration, Agent], || get(items::get_item)),
    route("delete", "/v1/items/{id}", &[Admin, Integration], || delete(items::withdraw_item)),
    route("post", "/v1/items/{id}/complete", &[Admin, Supervisor, Agent], || post(items::complete_item)),
    route("get", "/v1/agents", STAFF, || get(agents::list_agents)),
    route("put", "/v1/agents/{id}", &[Admin], || put(agents::put_agent)),
    route("post", "/v1/agents/{id}/token", &[Admin], || post(agents::issue_token)),
    route("delete", "/v1/agents/{id}/token", &[Admin], || delete(agents::revoke_token)),
    route("post", "/v1/agents/{id}/state", &[Admin, Supervisor, Agent], || post(agents::agent_state)),
    route("get", "/v1/agents/{id}/desktop", &[Admin, Supervisor, Agent], || get(agents::desktop)),
    route("post", "/v1/offers/{id}/accept", &[Agent], || post(offers::accept)),
    route("post", "/v1/offers/{id}/reject", &[Agent], || post(offers::reject)),
    route("get", "/v1/cases/{id}", &[Admin, Supervisor, Integration], || get(supervision::case)),
    route("get", "/v1/queues", &[Admin, Supervisor, Integration, Agent], || get(supervision::queues)),
    route("get", "/v1/queues/{name}", &[Admin, Supervisor, Integration, Agent], || get(supervision::queue)),
    route("get", "/v1/alerts", STAFF, || get(supervision::alerts)),
    route("post", "/v1/alerts/{id}/ack", STAFF, || post(supervision::acknowledge_alert)),
    route("get", "/v1/plugins", STAFF, || get(plugins::list)),
    RouteSpec {
        body_limit: MAX_COMPONENT_BYTES,
        ..route("post", "/v1/plugins/{department}", &[Admin], || post(plugins::upload))
    },
    route("post", "/v1/plugins/{department}/rollback/{generation}", &[Admin], || post(plugins::rollback)),
    RouteSpec {
        body_limit: MAX_FIXTURES_BYTES,
        ..route("put", "/v1/plugins/{department}/fixtures", &[Admin], || put(plugins::put_fixtures))
    },
    RouteSpec {
        body_limit: MAX_COMPONENT_BYTES,
        ..route("post", "/v1/plugins/{department}/shadow", &[Admin], || post(plugins::start_shadow))
    },
    route("get", "/v1/plugins/{department}/shadow", STAFF, || get(plugins::shadow_report)),
    route("delete", "/v1/plugins/{department}/shadow", &[Admin], || delete(plugins::discard_shadow)),
    route("post", "/v1/plugins/{department}/shadow/promote", &[Admin], || post(plugins::promote)),
    route("get", "/v1/audit", STAFF, || get(plugins::audit)),
    route("post", "/v1/plugins/{department}/backtest", &[Admin], || post(super::backtest::start)),
    route("get", "/v1/backtest", STAFF, || get(super::backtest::latest)),
    route("delete", "/v1/backtest", &[Admin], || delete(super::backtest::cancel)),
    route("get", "/v1/backtest/report", STAFF, || get(super::backtest::report)),
    // The web console (serve/console): its page and assets, and the reads it adds.
    route("get", "/", OPEN, || get(super::console::index)),
    route("get", "/console/console.js", OPEN, || get(super::console::script)),
    route("get", "/console/console.css", OPEN, || get(super::console::style)),
    route("get", "/v1/me", &[Admin, Supervisor, Integration, Agent], || get(super::console::me)),
    route("get", "/v1/agents/{id}/workspace", &[Admin, Supervisor, Agent], || get(super::console::workspace)),
    route("get", "/v1/board", STAFF, || get(super::console::board)),
    route("get", "/v1/events", &[Admin, Supervisor, Integration, Agent], || get(super::console::events)),
];

/// The largest body any method of `path` takes (the edge's limit and timeout
/// are per path).
pub(crate) fn path_body_limit(path: &str) -> usize {
    ROUTES.iter().filter(|r| r.path == path).map(|r| r.body_limit).max().unwrap_or(JSON_BODY_LIMIT)
}

fn spec_of(method: &str, path: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
}

/// The edge layers of `path` (every method of a path shares them): its body
/// limit from [`ROUTES`] and its request timeout (uploads compile a component,
/// so they get `upload_timeout_s`).
fn edge(
    path: &str,
    limits: &HttpLimits,
) -> tower::ServiceBuilder<
    tower::layer::util::Stack<
        TimeoutLayer,
        tower::layer::util::Stack<RequestBodyLimitLayer, tower::layer::util::Identity>,
    >,
> {
    let body = path_body_limit(path);
    let timeout = if body > JSON_BODY_LIMIT { limits.upload_timeout_s } else { limits.request_timeout_s };
    tower::ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(body))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, std::time::Duration::from_secs_f64(timeout)))
}

/// The auth layer: runs after routing (so the route is known) and before the
/// body is read. Puts the caller's [`Identity`] into the request.
/// A cluster's node (`serve::cluster`): a standby refuses writes with the
/// leader's address, and says on every answer what it is and how far behind;
/// a state replaced by a rebuild sends its remaining clients away. Runs
/// inside the auth layer: the caller is known, so the body of a refused write
/// is read (within the route's limit) and the client sees the answer instead
/// of a connection closed under its upload.
async fn cluster_gate(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    use axum::http::{HeaderValue, header};
    if state.retired.load(std::sync::atomic::Ordering::Acquire) {
        let mut response = unread_body(
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "this node's state was rebuilt; send the request again")
                .into_response(),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
        return response;
    }
    if !state.node.clustered {
        return next.run(request).await;
    }
    let role = state.node.role();
    if role == super::cluster::Role::Standby && is_write(&request) {
        let limit = matched
            .and_then(|m| spec_of(request.method().as_str(), m.as_str()))
            .map_or(JSON_BODY_LIMIT, |route| route.body_limit);
        let drained = axum::body::to_bytes(request.into_body(), limit).await.is_ok();
        let response = standby_refusal(&state);
        return if drained { response } else { unread_body(response) };
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-switchyard-role", HeaderValue::from_static(role.name()));
    if role == super::cluster::Role::Standby {
        headers.insert("x-switchyard-behind", HeaderValue::from(state.node.behind()));
        if let Some(leader) = state.node.leader().and_then(|a| HeaderValue::from_str(&a).ok()) {
            headers.insert("x-switchyard-leader", leader);
        }
    }
    response
}

/// Whether `request` changes something (a standby refuses it).
fn is_write(request: &Request) -> bool {
    !matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD)
}

/// A standby's answer to a write: 503, `Retry-After: 1`, and the leader's
/// address in the body and in `X-Switchyard-Leader`.
fn standby_refusal(state: &Shared) -> Response {
    use axum::http::{HeaderValue, header};
    let leader = state.node.leader();
    let body = json!({
        "error": format!(
            "node `{}` is a standby and takes no writes; send the request to the leader{}",
            state.node.node,
            leader.as_ref().map_or_else(|| " (none yet: retry shortly)".to_owned(), |a| format!(" at {a}"))
        ),
        "role": "standby",
        "leader": leader,
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert("x-switchyard-role", HeaderValue::from_static("standby"));
    if let Some(leader) = leader.and_then(|a| HeaderValue::from_str(&a).ok()) {
        headers.insert("x-switchyard-leader", leader);
    }
    response
}

async fn authorise(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = matched.and_then(|m| spec_of(request.method().as_str(), m.as_str()));
    let Some(route) = route else {
        return next.run(request).await;
    };
    if !route.roles.is_empty() {
        let who = match state.auth.authenticate(request.headers()) {
            Ok(who) => who,
            // A standby may not know a token the leader issued a moment ago:
            // a write goes to the leader anyway, which decides.
            Err(_)
                if state.node.clustered && state.node.role() == super::cluster::Role::Standby && is_write(&request) =>
            {
                return unread_body(standby_refusal(&state));
            }
            Err(denied) => return unread_body(ApiError::from(denied).into_response()),
        };
        if !route.roles.contains(&who.role()) {
            let allowed: Vec<&str> = route.roles.iter().map(|r| r.as_str()).collect();
            let why = format!(
                "{} {} is for the roles {}; this token's role is {}",
                route.method.to_uppercase(),
                route.path,
                allowed.join(", "),
                who.role().as_str()
            );
            return unread_body(ApiError::from(Denied::Forbidden(why)).into_response());
        }
        request.extensions_mut().insert(who);
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return unread_body(response);
    }
    response
}

/// A refusal sent without reading the request's body: the connection cannot
/// carry another request (the unread body is still on it), so tell the client
/// to open a new one rather than let it reuse a connection the daemon closes.
fn unread_body(mut response: Response) -> Response {
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// The routes, behind the auth layer, each with its body limit and timeout.
pub(crate) fn routes(state: AppState, limits: &HttpLimits) -> Routes {
    // Each path once, with every method the table gives it, under the path's
    // edge layers (body limit, timeout).
    let mut routes = Routes::new();
    let mut done: Vec<&str> = Vec::new();
    for spec in ROUTES {
        if done.contains(&spec.path) {
            continue;
        }
        done.push(spec.path);
        let methods = ROUTES
            .iter()
            .filter(|r| r.path == spec.path)
            .fold(axum::routing::MethodRouter::new(), |methods, r| methods.merge((r.handler)()));
        routes = routes.route(spec.path, methods.layer(edge(spec.path, limits)));
    }
    routes
        // Inside the auth layer: a standby refuses a write only to a caller
        // who may make it.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), cluster_gate))
        // Outermost of the route's layers, so it runs before the body limit and
        // the handler: no body byte is read for a caller without a valid token.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorise))
        // The body limits are tower-http's (per route); axum's own 2 MB default
        // would otherwise cap the plugin upload below its route's limit.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state)
}
