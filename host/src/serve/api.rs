//! The HTTP API (axum, JSON): request bodies, the routes and their handlers.
//! `openapi.yaml` in the crate documents every route; the serve tests check the
//! two agree.
//!
//! Every handler checks the token, parses the body (a bad body is a 422 naming
//! the field), validates it against the router, and only then journals and
//! applies it — so a refused request changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router as Routes;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_sdk::{Channel, Tier};

use crate::router::{Capacity, ItemId, Presence};
use crate::runtime::Runtime;

use super::auth::{Auth, Denied, Role};
use super::core::{Applied, Core, Refusal};
use super::journal::Op;

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
    pub(crate) auth: Auth,
    pub(crate) runtime: Runtime,
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
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: None,
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
            Denied::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
            }
            Denied::Forbidden => {
                ApiError::new(StatusCode::FORBIDDEN, "this endpoint needs the admin token")
            }
        }
    }
}

type Reply = Result<Response, ApiError>;

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
                .filter(|_| {
                    message.starts_with("unknown field") || message.starts_with("missing field")
                })
                .map(str::to_owned)
        } else {
            Some(path)
        };
        let error = match &field {
            Some(f) => format!("{f}: {message}"),
            None => format!("invalid JSON body: {message}"),
        };
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error,
            field,
        }
    })
}

/// Run `f` on the core off the async threads (the journal syncs to disk).
async fn with_core<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Core) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut core = state.core.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut core)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request task failed: {e}"),
        )
    })
}

fn ok(status: StatusCode, body: Value) -> Reply {
    Ok((status, axum::Json(body)).into_response())
}

fn item_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        error: format!("id: `{raw}` is not an item id"),
        field: Some("id".into()),
    })
}

/// Every (method, path) the daemon serves, as written in `openapi.json`; the
/// serve tests check the two lists agree. Keep it next to [`routes`].
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/v1/items"),
    ("get", "/v1/items/{id}"),
    ("delete", "/v1/items/{id}"),
    ("post", "/v1/items/{id}/complete"),
    ("get", "/v1/agents"),
    ("put", "/v1/agents/{id}"),
    ("post", "/v1/agents/{id}/state"),
    ("get", "/v1/agents/{id}/desktop"),
    ("post", "/v1/offers/{id}/accept"),
    ("post", "/v1/offers/{id}/reject"),
    ("get", "/v1/cases/{id}"),
    ("get", "/v1/queues"),
    ("get", "/v1/queues/{name}"),
    ("get", "/v1/plugins"),
    ("post", "/v1/plugins/{department}"),
    ("post", "/v1/plugins/{department}/rollback/{generation}"),
    ("get", "/v1/audit"),
];

/// Largest plugin component accepted by `POST /v1/plugins/{department}`.
const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// The routes.
pub(crate) fn routes(state: AppState) -> Routes {
    Routes::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(super::prom::metrics))
        .route("/v1/items", post(create_item))
        .route("/v1/items/{id}", get(get_item).delete(withdraw_item))
        .route("/v1/items/{id}/complete", post(complete_item))
        .route("/v1/agents", get(list_agents))
        .route("/v1/agents/{id}", put(put_agent))
        .route("/v1/agents/{id}/state", post(agent_state))
        .route("/v1/agents/{id}/desktop", get(desktop))
        .route("/v1/offers/{id}/accept", post(accept))
        .route("/v1/offers/{id}/reject", post(reject))
        .route("/v1/cases/{id}", get(case))
        .route("/v1/queues", get(queues))
        .route("/v1/queues/{name}", get(queue))
        .route("/v1/plugins", get(plugins))
        // Components are larger than axum's 2 MB default body limit.
        .route(
            "/v1/plugins/{department}",
            post(upload_plugin).layer(axum::extract::DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route(
            "/v1/plugins/{department}/rollback/{generation}",
            post(rollback_plugin),
        )
        .route("/v1/audit", get(audit))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state)
}

async fn healthz() -> Reply {
    ok(StatusCode::OK, json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Reply {
    // The listener opens only after recovery, so a daemon that answers is ready.
    let (recovered, appended) = with_core(&state, |c| (c.recovered, c.appended)).await?;
    ok(
        StatusCode::OK,
        json!({ "status": "ready", "recovered_records": recovered, "journaled_records": appended }),
    )
}

async fn create_item(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    let item: ItemBody = parse(&body)?;
    with_core(&state, move |core| {
        core.validate_item(&item, "")?;
        let applied = core.submit(Op::CreateItem { item })?;
        let Applied::Item(id) = applied else { return Err(Refusal::Internal("no item id".into()).into()) };
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

async fn get_item(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    let id = item_id(&id)?;
    with_core(&state, move |core| {
        if let Some(view) = core.router.item_view(ItemId(id)) {
            let skills = core.router.item_skills(ItemId(id)).unwrap_or_default();
            let mut body = serde_json::to_value(&view).unwrap_or(Value::Null);
            body["skills"] = json!(skills.into_iter().collect::<BTreeMap<_, _>>());
            return ok(StatusCode::OK, body);
        }
        match core.finished.get(&id) {
            Some(f) => ok(
                StatusCode::OK,
                serde_json::to_value(f).unwrap_or(Value::Null),
            ),
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

async fn withdraw_item(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    let id = item_id(&id)?;
    with_core(&state, move |core| {
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("unknown item {id}"),
                ));
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
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    let id = item_id(&id)?;
    let body: CompleteBody = parse(&body)?;
    with_core(&state, move |core| {
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("unknown item {id}"),
                ));
            }
            Some(crate::router::ItemStatus::Active | crate::router::ItemStatus::Paused) => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("item {id} is not being handled"),
                ));
            }
        }
        if let Some(h) = &body.handoff {
            core.validate_item(h, "handoff.")?;
        }
        let applied = core.submit(Op::Complete {
            item: id,
            resolved: body.resolved,
            handoff: body.handoff,
        })?;
        let handoff = match applied {
            Applied::Completed(h) => h.map(|h| h.0),
            _ => None,
        };
        ok(
            StatusCode::OK,
            json!({ "id": id, "status": "completed", "handoff_item": handoff }),
        )
    })
    .await?
}

async fn list_agents(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
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

async fn put_agent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    state.auth.check(&headers, Role::Admin)?;
    let agent: AgentBody = parse(&body)?;
    with_core(&state, move |core| {
        core.validate_agent(&agent)?;
        let existed = core.router.agent_id(&name).is_some();
        let applied = core.submit(Op::RegisterAgent {
            name: name.clone(),
            agent,
        })?;
        let Applied::Agent(id) = applied else {
            return Err(Refusal::Internal("no agent id".into()).into());
        };
        let status = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        ok(
            status,
            json!({ "id": id.0, "name": name, "state": core.router.agent_state(id).ok() }),
        )
    })
    .await?
}

async fn agent_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    let body: StateBody = parse(&body)?;
    with_core(&state, move |core| {
        let id = core.agent(&name)?;
        core.submit(Op::AgentState {
            name: name.clone(),
            presence: body.state,
        })?;
        ok(
            StatusCode::OK,
            json!({ "id": id.0, "name": name, "state": core.router.agent_state(id).ok() }),
        )
    })
    .await?
}

async fn desktop(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    with_core(&state, move |core| {
        let id = core.agent(&name)?;
        let desktop = core.router.desktop(id).map_err(Refusal::from)?;
        ok(
            StatusCode::OK,
            serde_json::to_value(&desktop).unwrap_or(Value::Null),
        )
    })
    .await?
}

async fn answer_offer(state: AppState, headers: HeaderMap, id: String, accept: bool) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    let id = item_id(&id)?;
    with_core(&state, move |core| {
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("unknown item {id}"),
                ));
            }
            Some(crate::router::ItemStatus::Offered) => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("item {id} has no pending offer"),
                ));
            }
        }
        let op = if accept {
            Op::Accept { item: id }
        } else {
            Op::Reject { item: id }
        };
        core.submit(op)?;
        let status = core.router.item_status(ItemId(id));
        ok(StatusCode::OK, json!({ "id": id, "status": status }))
    })
    .await?
}

async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    answer_offer(state, headers, id, true).await
}

async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    answer_offer(state, headers, id, false).await
}

async fn case(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    with_core(&state, move |core| match core.router.case(&id) {
        Some(view) => ok(
            StatusCode::OK,
            serde_json::to_value(&view).unwrap_or(Value::Null),
        ),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown case `{id}`"),
        )),
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

async fn queues(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    with_core(&state, |core| {
        let all: Vec<Value> = core
            .router
            .queue_names()
            .iter()
            .enumerate()
            .map(|(i, n)| queue_view(core, i, n))
            .collect();
        ok(StatusCode::OK, json!(all))
    })
    .await?
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    with_core(&state, move |core| {
        match core.router.queue_names().iter().position(|n| *n == name) {
            Some(i) => ok(StatusCode::OK, queue_view(core, i, &name)),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown queue `{name}`"),
            )),
        }
    })
    .await?
}

async fn plugins(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    with_core(&state, |core| {
        let all: Vec<Value> = core
            .router
            .department_names()
            .into_iter()
            .map(|d| {
                let current = core.runtime.current(&d).map(|p| {
                    let r = p.load_report();
                    json!({ "plugin": r.plugin, "generation": r.generation, "sha256": r.sha256, "hooks": r.hooks, "stats": p.stats() })
                });
                let kept: Vec<Value> = core
                    .kept
                    .get(&d)
                    .map(|k| k.generations.values().map(|p| json!({ "generation": p.generation(), "sha256": p.load_report().sha256 })).collect())
                    .unwrap_or_default();
                json!({ "department": d, "current": current, "kept": kept })
            })
            .collect();
        ok(StatusCode::OK, json!(all))
    })
    .await?
}

async fn upload_plugin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(department): Path<String>,
    body: Bytes,
) -> Reply {
    state.auth.check(&headers, Role::Admin)?;
    let config = with_core(&state, {
        let department = department.clone();
        move |core| {
            if !core.router.department_names().contains(&department) {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("unknown department `{department}`"),
                ));
            }
            Ok(core
                .department_configs
                .get(&department)
                .cloned()
                .unwrap_or_default())
        }
    })
    .await??;
    if body.is_empty() {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: "body: the component bytes are missing".into(),
            field: Some("body".into()),
        });
    }
    // Compile and validate off the lock: decisions go on meanwhile.
    let runtime = state.runtime.clone();
    let (name, bytes) = (department.clone(), body.clone());
    let loaded =
        tokio::task::spawn_blocking(move || runtime.load_bytes(&name, &name, &bytes, config))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("load task failed: {e}"),
                )
            })?;
    let sha = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&body);
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    match loaded {
        Ok(plugin) => with_core(&state, move |core| {
            let generation = core.activate(plugin.clone(), &body)?;
            let r = plugin.load_report();
            ok(StatusCode::CREATED, json!({ "department": department, "generation": generation, "sha256": r.sha256, "hooks": r.hooks }))
        })
        .await?,
        Err(e) => {
            let reason = e.to_string();
            let department2 = department.clone();
            let reason2 = reason.clone();
            with_core(&state, move |core| core.submit(Op::PluginRefused { department: department2, sha256: sha, reason: reason2 }).map(|_| ()))
                .await?
                .map_err(ApiError::from)?;
            Err(ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, error: reason, field: Some("body".into()) })
        }
    }
}

async fn rollback_plugin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((department, generation)): Path<(String, String)>,
) -> Reply {
    state.auth.check(&headers, Role::Admin)?;
    let generation = generation.parse::<u64>().map_err(|_| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        error: format!("generation: `{generation}` is not a generation number"),
        field: Some("generation".into()),
    })?;
    with_core(&state, move |core| {
        if !core.router.department_names().contains(&department) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown department `{department}`"),
            ));
        }
        if !core
            .kept
            .get(&department)
            .is_some_and(|k| k.generations.contains_key(&generation))
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("department `{department}` keeps no generation {generation}"),
            ));
        }
        core.submit(Op::PluginRolledBack {
            department: department.clone(),
            generation,
        })?;
        ok(
            StatusCode::OK,
            json!({ "department": department, "generation": generation }),
        )
    })
    .await?
}

async fn audit(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    state.auth.check(&headers, Role::Agent)?;
    with_core(&state, |core| ok(StatusCode::OK, json!(core.audit))).await?
}
