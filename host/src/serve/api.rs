//! The HTTP API (axum, JSON): request bodies, the route table, the auth layer and
//! the handlers. The OpenAPI document (served at `GET /openapi.json`, checked in
//! as `host/openapi.json`) is generated from [`ROUTES`] by `serve/openapi.rs`;
//! the serve tests check the axum routes below serve exactly those.
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
use axum::routing::{get, post, put};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::config::{HttpLimits, seconds_ms};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_sdk::{Channel, Priority, Tier};

use crate::router::{Capacity, ItemId, Presence};
use crate::rules::Decided;

use super::auth::{Auth, Denied, Identity, Role};
use super::core::{self as state_core, Applied, Core, IntakePlan, Refusal};
use super::journal::{AgentRecord, ItemRecord, Op};
use super::plugins;

/// Body of `POST /v1/items` (and of a hand-off in a completion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    /// Department.
    pub department: String,
    /// Queue (of that department).
    pub queue: String,
    /// Channel (default voice).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Required skills with minimum level 1-10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Initial priority.
    #[serde(default)]
    pub priority: i32,
    /// Customer tier.
    #[serde(default)]
    pub tier: Tier,
    /// Money at stake.
    #[serde(default)]
    pub value: f64,
    /// Customer id.
    #[serde(default)]
    pub customer: Option<String>,
    /// Case id.
    #[serde(default)]
    pub case: Option<String>,
    /// Due time, seconds from now (back-office SLA).
    #[serde(default)]
    pub due_in_s: Option<f64>,
}

/// Body of `PUT /v1/agents/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// Group for reports.
    #[serde(default = "default_group")]
    pub group: String,
    /// Skills with proficiency 1-10.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Blending capacity.
    #[serde(default)]
    pub capacity: Capacity,
    /// After-work seconds.
    #[serde(default)]
    pub wrap_up_s: f64,
}

impl ItemBody {
    /// The journal's record of this item; `prefix` names the field at fault
    /// (`handoff.` for a hand-off).
    pub(crate) fn to_record(&self, prefix: &str) -> std::result::Result<ItemRecord, Refusal> {
        let due_in_ms = match self.due_in_s {
            None => None,
            Some(due) => Some(seconds_ms(due).ok_or_else(|| Refusal::Invalid {
                field: format!("{prefix}due_in_s"),
                message: format!("{due} is not a duration of at most 366 days"),
            })?),
        };
        Ok(ItemRecord {
            department: self.department.clone(),
            queue: self.queue.clone(),
            channel: self.channel.unwrap_or(Channel::Voice),
            skills: self.skills.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            attributes: self.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            priority: self.priority,
            tier: self.tier,
            value: self.value,
            customer: self.customer.clone(),
            case: self.case.clone(),
            due_in_ms,
        })
    }
}

impl AgentBody {
    /// The journal's record of this registration.
    pub(crate) fn to_record(&self) -> std::result::Result<AgentRecord, Refusal> {
        let wrap_up_ms = seconds_ms(self.wrap_up_s).ok_or_else(|| Refusal::Invalid {
            field: "wrap_up_s".into(),
            message: format!("{} is not a duration of at most 366 days", self.wrap_up_s),
        })?;
        Ok(AgentRecord {
            group: self.group.clone(),
            skills: self.skills.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            capacity: self.capacity,
            wrap_up_ms,
        })
    }
}

fn default_group() -> String {
    "default".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    state: Presence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    resolved: bool,
    #[serde(default)]
    handoff: Option<ItemBody>,
}

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
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
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
/// item created *and offered*), and answer once it is all durable.
pub(crate) async fn mutate<A: Send + 'static, R: Send + 'static>(
    state: &AppState,
    apply: impl FnOnce(&mut Core) -> Result<A, ApiError> + Send + 'static,
    reply: impl FnOnce(&Core, A) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let (result, ticket) = {
            let mut core = state_core::lock(&state.core);
            let before = core.last_ticket;
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
            (applied, (core.last_ticket > before).then_some(core.last_ticket))
        };
        if let Some(ticket) = ticket {
            state.journal.wait_durable(ticket).map_err(|why| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why))?;
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

/// One served route: what it is, who may call it, how large its body may be.
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

const fn route(method: &'static str, path: &'static str, roles: &'static [Role]) -> RouteSpec {
    RouteSpec { method, path, roles, body_limit: JSON_BODY_LIMIT }
}

/// Every route the daemon serves, with its roles: the one table the auth layer
/// enforces and the OpenAPI document's `x-roles` are checked against.
pub const ROUTES: &[RouteSpec] = &[
    route("get", "/healthz", OPEN),
    route("get", "/readyz", OPEN),
    route("get", "/metrics", OPEN),
    route("get", "/openapi.json", OPEN),
    route("post", "/v1/items", &[Admin, Integration]),
    route("get", "/v1/items/{id}", &[Admin, Supervisor, Integration, Agent]),
    route("delete", "/v1/items/{id}", &[Admin, Integration]),
    route("post", "/v1/items/{id}/complete", &[Admin, Supervisor, Agent]),
    route("get", "/v1/agents", STAFF),
    route("put", "/v1/agents/{id}", &[Admin]),
    route("post", "/v1/agents/{id}/token", &[Admin]),
    route("delete", "/v1/agents/{id}/token", &[Admin]),
    route("post", "/v1/agents/{id}/state", &[Admin, Supervisor, Agent]),
    route("get", "/v1/agents/{id}/desktop", &[Admin, Supervisor, Agent]),
    route("post", "/v1/offers/{id}/accept", &[Agent]),
    route("post", "/v1/offers/{id}/reject", &[Agent]),
    route("get", "/v1/cases/{id}", &[Admin, Supervisor, Integration]),
    route("get", "/v1/queues", &[Admin, Supervisor, Integration, Agent]),
    route("get", "/v1/queues/{name}", &[Admin, Supervisor, Integration, Agent]),
    route("get", "/v1/alerts", STAFF),
    route("post", "/v1/alerts/{id}/ack", STAFF),
    route("get", "/v1/plugins", STAFF),
    RouteSpec { body_limit: MAX_COMPONENT_BYTES, ..route("post", "/v1/plugins/{department}", &[Admin]) },
    route("post", "/v1/plugins/{department}/rollback/{generation}", &[Admin]),
    RouteSpec { body_limit: MAX_FIXTURES_BYTES, ..route("put", "/v1/plugins/{department}/fixtures", &[Admin]) },
    RouteSpec { body_limit: MAX_COMPONENT_BYTES, ..route("post", "/v1/plugins/{department}/shadow", &[Admin]) },
    route("get", "/v1/plugins/{department}/shadow", STAFF),
    route("delete", "/v1/plugins/{department}/shadow", &[Admin]),
    route("post", "/v1/plugins/{department}/shadow/promote", &[Admin]),
    route("get", "/v1/audit", STAFF),
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
    let e = |path: &str| edge(path, limits);
    Routes::new()
        .route("/healthz", get(healthz).layer(e("/healthz")))
        .route("/readyz", get(readyz).layer(e("/readyz")))
        .route("/metrics", get(super::prom::metrics).layer(e("/metrics")))
        .route("/openapi.json", get(openapi_document).layer(e("/openapi.json")))
        .route("/v1/items", post(create_item).layer(e("/v1/items")))
        .route("/v1/items/{id}", get(get_item).delete(withdraw_item).layer(e("/v1/items/{id}")))
        .route("/v1/items/{id}/complete", post(complete_item).layer(e("/v1/items/{id}/complete")))
        .route("/v1/agents", get(list_agents).layer(e("/v1/agents")))
        .route("/v1/agents/{id}", put(put_agent).layer(e("/v1/agents/{id}")))
        .route("/v1/agents/{id}/token", post(issue_token).delete(revoke_token).layer(e("/v1/agents/{id}/token")))
        .route("/v1/agents/{id}/state", post(agent_state).layer(e("/v1/agents/{id}/state")))
        .route("/v1/agents/{id}/desktop", get(desktop).layer(e("/v1/agents/{id}/desktop")))
        .route("/v1/offers/{id}/accept", post(accept).layer(e("/v1/offers/{id}/accept")))
        .route("/v1/offers/{id}/reject", post(reject).layer(e("/v1/offers/{id}/reject")))
        .route("/v1/cases/{id}", get(case).layer(e("/v1/cases/{id}")))
        .route("/v1/queues", get(queues).layer(e("/v1/queues")))
        .route("/v1/queues/{name}", get(queue).layer(e("/v1/queues/{name}")))
        .route("/v1/alerts", get(alerts).layer(e("/v1/alerts")))
        .route("/v1/alerts/{id}/ack", post(acknowledge_alert).layer(e("/v1/alerts/{id}/ack")))
        .route("/v1/plugins", get(plugins::list).layer(e("/v1/plugins")))
        .route("/v1/plugins/{department}", post(plugins::upload).layer(e("/v1/plugins/{department}")))
        .route(
            "/v1/plugins/{department}/rollback/{generation}",
            post(plugins::rollback).layer(e("/v1/plugins/{department}/rollback/{generation}")),
        )
        .route(
            "/v1/plugins/{department}/fixtures",
            put(plugins::put_fixtures).layer(e("/v1/plugins/{department}/fixtures")),
        )
        .route(
            "/v1/plugins/{department}/shadow",
            post(plugins::start_shadow)
                .get(plugins::shadow_report)
                .delete(plugins::discard_shadow)
                .layer(e("/v1/plugins/{department}/shadow")),
        )
        .route(
            "/v1/plugins/{department}/shadow/promote",
            post(plugins::promote).layer(e("/v1/plugins/{department}/shadow/promote")),
        )
        .route("/v1/audit", get(plugins::audit).layer(e("/v1/audit")))
        // Outermost of the route's layers, so it runs before the body limit and
        // the handler: no body byte is read for a caller without a valid token.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorise))
        // The body limits are tower-http's (per route); axum's own 2 MB default
        // would otherwise cap the plugin upload below its route's limit.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state)
}

/// `GET /openapi.json`: the API's description, generated from [`ROUTES`].
async fn openapi_document() -> Reply {
    ok(StatusCode::OK, super::openapi::document())
}

async fn healthz() -> Reply {
    ok(StatusCode::OK, json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Reply {
    // The listener opens only after recovery, so a daemon that answers is ready —
    // unless its journal has stopped taking writes.
    if let Some(why) = state.journal.failure() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why));
    }
    let (recovered, replayed, appended, snapshot, diverged) =
        with_core(&state, |c| (c.recovered, c.replayed_at_start, c.appended, c.last_snapshot.map(|s| s.0), c.diverged))
            .await?;
    ok(
        StatusCode::OK,
        json!({
            "status": "ready",
            "recovered_records": recovered,
            "replayed_records": replayed,
            "journaled_records": appended,
            "snapshot_covers": snapshot,
            "diverged_records": diverged,
        }),
    )
}

/// Ask a planned `prioritise` of the department's rules, with no lock held.
async fn ask_outside(plan: IntakePlan) -> Result<Option<(String, Decided<Vec<Priority>>)>, ApiError> {
    let Some((department, batch, rules)) = plan.call else { return Ok(None) };
    tokio::task::spawn_blocking(move || Some((department, rules.prioritise(&batch))))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("rules task failed: {e}")))
}

async fn create_item(State(state): State<AppState>, body: Bytes) -> Reply {
    let item: ItemBody = parse(&body)?;
    let item = item.to_record("")?;
    // Under the lock only to reserve the id and build the batch: the
    // department's rules are asked outside it, so a slow plugin holds its own
    // request, not every department's (the tape hands the answer to the create).
    let plan = {
        let item = item.clone();
        with_core(&state, move |core| core.validate_item(&item, "").map(|()| core.plan_intake(&item))).await??
    };
    let id = plan.id;
    let answer = ask_outside(plan).await?;
    let apply = move |core: &mut Core| {
        core.validate_item(&item, "")?;
        if let Some((department, answer)) = answer {
            core.tape.preload(department, answer);
        }
        let applied = core.submit(Op::CreateItem { item, id: Some(id) });
        core.tape.clear_preloaded();
        match applied? {
            Applied::Item(id) => Ok(id),
            _ => Err(ApiError::from(Refusal::Internal("no item id".into()))),
        }
    };
    mutate(&state, apply, |core, id| {
        let body = match core.router.item_view(id) {
            Some(v) => json!({
                "id": id.0, "status": v.status, "queue": v.queue, "priority": v.priority,
                "why": v.explanation,
            }),
            None => json!({ "id": id.0, "status": "exception", "why": core.router.exceptions().iter().find(|e| e.item == id).map(|e| e.reason.to_string()) }),
        };
        ok(StatusCode::CREATED, body)
    })
    .await?
}

async fn get_item(State(state): State<AppState>, Extension(who): Extension<Identity>, Path(id): Path<String>) -> Reply {
    let id = item_id(&id)?;
    with_core(&state, move |core| {
        owns_item(core, &who, id)?;
        if let Some(view) = core.router.item_view(ItemId(id)) {
            let skills = core.router.item_skills(ItemId(id)).unwrap_or_default();
            let mut body = serde_json::to_value(&view).unwrap_or(Value::Null);
            body["skills"] = json!(skills.into_iter().collect::<BTreeMap<_, _>>());
            return ok(StatusCode::OK, body);
        }
        match core.finished.get(&id) {
            Some(f) => ok(StatusCode::OK, serde_json::to_value(f).unwrap_or(Value::Null)),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown item {id} (finished items are kept for lookup up to the last {}: `keep_finished`)",
                    core.finished.cap()
                ),
            )),
        }
    })
    .await?
}

async fn withdraw_item(State(state): State<AppState>, Path(id): Path<String>) -> Reply {
    let id = item_id(&id)?;
    with_core(&state, move |core| {
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown item {id}")));
            }
            Some(
                crate::router::ItemStatus::Queued
                | crate::router::ItemStatus::Offered
                | crate::router::ItemStatus::Exception,
            ) => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("item {id} is already answered; complete it instead"),
                ));
            }
        }
        core.submit(Op::Withdraw { item: id })?;
        ok(StatusCode::OK, json!({ "id": id, "status": "withdrawn" }))
    })
    .await?
}

async fn complete_item(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let id = item_id(&id)?;
    let body: CompleteBody = parse(&body)?;
    /// The checks a completion passes before (and again after) its hand-off's
    /// rules are asked: who may, the item's state, the hand-off's fields.
    fn check(core: &Core, who: &Identity, id: u64, body: &CompleteBody) -> Result<Option<ItemRecord>, ApiError> {
        owns_item(core, who, id)?;
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown item {id}")));
            }
            Some(crate::router::ItemStatus::Active | crate::router::ItemStatus::Paused) => {}
            Some(_) => {
                return Err(ApiError::new(StatusCode::CONFLICT, format!("item {id} is not being handled")));
            }
        }
        let Some(h) = &body.handoff else { return Ok(None) };
        let h = h.to_record("handoff.")?;
        core.validate_item(&h, "handoff.")?;
        Ok(Some(h))
    }
    let body = Arc::new(body);
    // A hand-off's `prioritise`, like a new item's, is asked outside the lock.
    let (handoff_id, answer) = if body.handoff.is_some() {
        let (who, body) = (who.clone(), body.clone());
        let plan = with_core(&state, move |core| {
            let handoff = check(core, &who, id, &body)?;
            Ok::<_, ApiError>(handoff.map(|h| core.plan_handoff(id, &h)))
        })
        .await??;
        match plan {
            Some(plan) => (Some(plan.id), ask_outside(plan).await?),
            None => (None, None),
        }
    } else {
        (None, None)
    };
    let apply = move |core: &mut Core| {
        let handoff = check(core, &who, id, &body)?;
        if let Some((department, answer)) = answer {
            core.tape.preload(department, answer);
        }
        let applied = core.submit(Op::Complete { item: id, resolved: body.resolved, handoff, handoff_id });
        core.tape.clear_preloaded();
        Ok(match applied? {
            Applied::Completed(h) => h.map(|h| h.0),
            _ => None,
        })
    };
    mutate(&state, apply, move |_, handoff| {
        ok(StatusCode::OK, json!({ "id": id, "status": "completed", "handoff_item": handoff }))
    })
    .await?
}

async fn list_agents(State(state): State<AppState>) -> Reply {
    with_core(&state, |core| {
        let agents: Vec<Value> = core
            .router
            .agents()
            .into_iter()
            .map(|(id, name, group)| json!({ "id": id.0, "name": name, "group": group, "state": core.router.agent_state(id).ok() }))
            .collect();
        ok(StatusCode::OK, json!(agents))
    })
    .await?
}

async fn put_agent(State(state): State<AppState>, Path(name): Path<String>, body: Bytes) -> Reply {
    let agent: AgentBody = parse(&body)?;
    let agent = agent.to_record()?;
    let apply = move |core: &mut Core| {
        core.validate_agent(&agent)?;
        let existed = core.router.agent_id(&name).is_some();
        match core.submit(Op::RegisterAgent { name: name.clone(), agent })? {
            Applied::Agent(id) => Ok((id, name, existed)),
            _ => Err(ApiError::from(Refusal::Internal("no agent id".into()))),
        }
    };
    mutate(&state, apply, |core, (id, name, existed)| {
        let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
        ok(status, json!({ "id": id.0, "name": name, "state": core.router.agent_state(id).ok() }))
    })
    .await?
}

async fn agent_state(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    as_agent(&who, &name)?;
    let body: StateBody = parse(&body)?;
    let apply = move |core: &mut Core| {
        let id = core.agent(&name)?;
        core.submit(Op::AgentState { name: name.clone(), presence: body.state })?;
        Ok((id, name))
    };
    mutate(&state, apply, |core, (id, name)| {
        ok(StatusCode::OK, json!({ "id": id.0, "name": name, "state": core.router.agent_state(id).ok() }))
    })
    .await?
}

async fn desktop(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Reply {
    as_agent(&who, &name)?;
    with_core(&state, move |core| {
        let id = core.agent(&name)?;
        let desktop = core.router.desktop(id).map_err(Refusal::from)?;
        ok(StatusCode::OK, serde_json::to_value(&desktop).unwrap_or(Value::Null))
    })
    .await?
}

async fn answer_offer(state: AppState, who: Identity, id: String, accept: bool) -> Reply {
    let id = item_id(&id)?;
    let apply = move |core: &mut Core| {
        owns_item(core, &who, id)?;
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown item {id}")));
            }
            Some(crate::router::ItemStatus::Offered) => {}
            Some(_) => {
                return Err(ApiError::new(StatusCode::CONFLICT, format!("item {id} has no pending offer")));
            }
        }
        let op = if accept { Op::Accept { item: id } } else { Op::Reject { item: id } };
        core.submit(op)?;
        Ok(())
    };
    mutate(&state, apply, move |core, ()| {
        let status = core.router.item_status(ItemId(id));
        ok(StatusCode::OK, json!({ "id": id, "status": status }))
    })
    .await?
}

async fn accept(State(state): State<AppState>, Extension(who): Extension<Identity>, Path(id): Path<String>) -> Reply {
    answer_offer(state, who, id, true).await
}

async fn reject(State(state): State<AppState>, Extension(who): Extension<Identity>, Path(id): Path<String>) -> Reply {
    answer_offer(state, who, id, false).await
}

async fn case(State(state): State<AppState>, Path(id): Path<String>) -> Reply {
    with_core(&state, move |core| match core.router.case(&id) {
        Some(view) => ok(StatusCode::OK, serde_json::to_value(&view).unwrap_or(Value::Null)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown case `{id}`"))),
    })
    .await?
}

/// A queue's live snapshot and statistics (totals since the journal began, and
/// the current interval).
fn queue_view(core: &Core, index: usize, name: &str) -> Value {
    let specs = core.router.queue_specs();
    let spec = specs.get(index);
    let metrics = core.router.metrics();
    let totals = metrics.queue_totals(index).cloned().unwrap_or_default();
    let interval = metrics.queue_intervals(index).last().cloned();
    json!({
        "name": name,
        "department": spec.map(|s| s.department.clone()),
        "service_level_threshold_s": spec.map(|s| s.service_level_ms as f64 / 1000.0),
        "live": core.router.queue_snapshot(name).ok(),
        "totals": totals,
        "service_level": totals.service_level(),
        "service_level_definition": "answered within t / (offered - abandoned before the short-abandon threshold)",
        "asa_s": totals.asa_s(),
        "aht_s": totals.aht_s(),
        "fcr": totals.fcr(),
        "current_interval": interval,
    })
}

async fn queues(State(state): State<AppState>) -> Reply {
    with_core(&state, |core| {
        let all: Vec<Value> =
            core.router.queue_names().iter().enumerate().map(|(i, n)| queue_view(core, i, n)).collect();
        ok(StatusCode::OK, json!(all))
    })
    .await?
}

async fn queue(State(state): State<AppState>, Path(name): Path<String>) -> Reply {
    with_core(&state, move |core| match core.router.queue_names().iter().position(|n| *n == name) {
        Some(i) => ok(StatusCode::OK, queue_view(core, i, &name)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown queue `{name}`"))),
    })
    .await?
}

async fn alerts(State(state): State<AppState>) -> Reply {
    with_core(&state, |core| ok(StatusCode::OK, json!(core.router.alerts()))).await?
}

/// `POST /v1/alerts/{id}/ack`: a supervisor has seen the alert (the first
/// acknowledgement is kept).
async fn acknowledge_alert(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Reply {
    let id = id.parse::<u64>().map_err(|_| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        error: format!("id: `{id}` is not an alert id"),
        field: Some("id".into()),
    })?;
    with_core(&state, move |core| {
        if !core.router.alerts().iter().any(|a| a.id == id) {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown alert {id} (or past retention)")));
        }
        let by = who.agent().map(str::to_owned).unwrap_or_else(|| who.role().as_str().to_owned());
        core.submit(Op::AlertAcknowledged { alert: id, by })?;
        let alert = core.router.alerts().iter().find(|a| a.id == id).cloned();
        ok(StatusCode::OK, json!(alert))
    })
    .await?
}

/// `POST /v1/agents/{id}/token`: a new token for the agent (the old one stops
/// working). The token is in this answer only; the daemon keeps its SHA-256.
async fn issue_token(State(state): State<AppState>, Path(name): Path<String>) -> Reply {
    with_core(&state, move |core| {
        core.agent(&name)?;
        let token = super::auth::new_token();
        core.submit(Op::AgentToken { agent: name.clone(), sha256: super::auth::token_hash(&token) })?;
        ok(StatusCode::CREATED, json!({ "agent": name, "token": token }))
    })
    .await?
}

/// `DELETE /v1/agents/{id}/token`: the agent can no longer sign in.
async fn revoke_token(State(state): State<AppState>, Path(name): Path<String>) -> Reply {
    with_core(&state, move |core| {
        core.agent(&name)?;
        core.submit(Op::AgentTokenRevoked { agent: name.clone() })?;
        ok(StatusCode::OK, json!({ "agent": name, "token": null }))
    })
    .await?
}
