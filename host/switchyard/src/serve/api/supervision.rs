//! What supervisors watch: queues with their live figures and statistics,
//! cases across departments, escalation alerts and their acknowledgement.

use super::*;

pub(super) async fn case(State(state): State<AppState>, Path(id): Path<String>) -> Reply {
    with_core(&state, move |core| match core.router.case(&id) {
        Some(view) => ok(StatusCode::OK, serde_json::to_value(&view).unwrap_or(Value::Null)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown case `{id}`"))),
    })
    .await?
}

/// A queue's live snapshot and statistics (totals since the journal began, and
/// the current interval).
pub(super) fn queue_view(core: &Core, index: usize, name: &str) -> Value {
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

pub(super) async fn queues(State(state): State<AppState>) -> Reply {
    with_core(&state, |core| {
        let all: Vec<Value> =
            core.router.queue_names().iter().enumerate().map(|(i, n)| queue_view(core, i, n)).collect();
        ok(StatusCode::OK, json!(all))
    })
    .await?
}

pub(super) async fn queue(State(state): State<AppState>, Path(name): Path<String>) -> Reply {
    with_core(&state, move |core| match core.router.queue_names().iter().position(|n| *n == name) {
        Some(i) => ok(StatusCode::OK, queue_view(core, i, &name)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown queue `{name}`"))),
    })
    .await?
}

pub(super) async fn alerts(State(state): State<AppState>) -> Reply {
    with_core(&state, |core| ok(StatusCode::OK, json!(core.router.alerts()))).await?
}

/// `POST /v1/alerts/{id}/ack`: a supervisor has seen the alert (the first
/// acknowledgement is kept).
pub(super) async fn acknowledge_alert(
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
