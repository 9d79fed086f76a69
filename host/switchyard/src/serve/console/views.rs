//! The console's three reads: `GET /v1/me`, an agent's workspace and the
//! supervisor's board. Each is one pass over the state under the core's lock.

use std::collections::BTreeMap;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use switchyard_contract::Channel;

use crate::serve::api::{AppState, Reply, ok, with_core};
use crate::serve::auth::{Denied, Identity};
use crate::serve::core::Core;
use switchyard_core::router::AgentState;

/// `GET /v1/me`: the caller's role, and its agent name if an agent.
pub(crate) async fn me(Extension(who): Extension<Identity>) -> Reply {
    ok(StatusCode::OK, json!({ "role": who.role(), "agent": who.agent() }))
}

/// `GET /v1/agents/{id}/workspace`: the desktop with capacity and load, each
/// item's timing, the customer's earlier contacts within the FCR window and
/// the item's case timeline. An agent only its own.
pub(crate) async fn workspace(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Reply {
    if let Some(me) = who.agent().filter(|me| *me != name) {
        return Err(Denied::Forbidden(format!("agent `{me}` may act only as itself, not as `{name}`")).into());
    }
    with_core(&state, move |core| {
        let id = core.agent(&name)?;
        let desktop = core.router.desktop(id).map_err(crate::serve::core::Refusal::from)?;
        let load = core.router.agent_load(id).map_err(crate::serve::core::Refusal::from)?;
        let items: Vec<Value> = desktop.items.iter().map(|item| workspace_item(core, item)).collect();
        let capacity: BTreeMap<&str, Value> = Channel::ALL
            .iter()
            .map(|c| (c.name(), json!({ "capacity": load.capacity.of(*c), "load": load.load[c.index()] })))
            .collect();
        ok(
            StatusCode::OK,
            json!({
                "agent": desktop.name,
                "state": desktop.state,
                "presence": load.presence,
                "capacity": capacity,
                "digital_capacity": load.capacity.digital,
                "now_ms": core.now(),
                "items": items,
            }),
        )
    })
    .await?
}

fn workspace_item(core: &Core, item: &switchyard_core::router::DesktopItem) -> Value {
    let mut body = serde_json::to_value(item).unwrap_or(Value::Null);
    let skills = core.router.item_skills(item.id).unwrap_or_default();
    body["skills"] = json!(skills.into_iter().collect::<BTreeMap<_, _>>());
    if let Some(timing) = core.router.item_timing(item.id) {
        body["created_ms"] = json!(timing.created_ms);
        body["due_ms"] = json!(timing.due_ms);
        body["offer_expires_ms"] = json!(timing.offer_expires_ms);
        body["contacts"] = json!(timing.contacts);
        body["fcr_window_ms"] = json!(timing.fcr_window_ms);
        let earlier = item.customer.as_deref().map(|customer| {
            let since = core.now().saturating_sub(timing.fcr_window_ms);
            core.contacts.earlier(customer, item.id.0, since)
        });
        body["earlier_contacts"] = json!(earlier.unwrap_or_default());
    }
    body["case_view"] = json!(item.case.as_deref().and_then(|c| core.router.case(c)));
    body
}

/// Start of the UTC day of `ms`.
fn day_start(ms: u64) -> u64 {
    ms - ms % 86_400_000
}

/// `GET /v1/board`: per queue the figures since the journal began (offered,
/// answered, abandoned, service level against its threshold, ASA, AHT), what
/// waits now (waiting, offered, oldest wait, overdue), and today's service
/// level per interval; per agent group the agents by state and the group's
/// occupancy; each agent's state and occupancy; open alerts.
pub(crate) async fn board(State(state): State<AppState>) -> Reply {
    with_core(&state, |core| {
        let now = core.now();
        let today = day_start(now);
        let metrics = core.router.metrics();
        let first = metrics.first_interval();
        let queues: Vec<Value> = core
            .router
            .queue_specs()
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let totals = metrics.queue_totals(i).cloned().unwrap_or_default();
                let series: Vec<Value> = metrics
                    .queue_intervals(i)
                    .iter()
                    .enumerate()
                    .map(|(k, c)| (metrics.interval_start_ms(first + k), c))
                    .filter(|(start, _)| *start >= today)
                    .map(|(start, c)| json!({ "start_ms": start, "service_level": c.service_level(), "offered": c.offered }))
                    .collect();
                json!({
                    "name": spec.name,
                    "department": spec.department,
                    "service_level_threshold_s": spec.service_level_ms as f64 / 1000.0,
                    "live": core.router.queue_snapshot(&spec.name).ok(),
                    "offered": totals.offered,
                    "answered": totals.answered,
                    "abandoned": totals.abandoned,
                    "completed": totals.completed,
                    "service_level": totals.service_level(),
                    "asa_s": totals.asa_s(),
                    "aht_s": totals.aht_s(),
                    "before_due": totals.before_due_share(),
                    "today": series,
                })
            })
            .collect();
        let mut groups: BTreeMap<String, (BTreeMap<&'static str, u64>, u64, u64)> = BTreeMap::new();
        let agents: Vec<Value> = core
            .router
            .agents()
            .into_iter()
            .map(|(id, name, group)| {
                let state = core.router.agent_state(id).ok();
                let times = metrics.agent_times(id).unwrap_or_default();
                let entry = groups.entry(group.clone()).or_default();
                *entry.0.entry(state.unwrap_or(AgentState::Offline).name()).or_default() += 1;
                entry.1 += times.busy_ms;
                entry.2 += times.idle_ms;
                json!({ "name": name, "group": group, "state": state, "occupancy": times.occupancy() })
            })
            .collect();
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(group, (states, busy, idle))| {
                let occupancy = (busy + idle > 0).then(|| busy as f64 / (busy + idle) as f64);
                json!({ "group": group, "states": states, "occupancy": occupancy })
            })
            .collect();
        let open_alerts = core.router.alerts().iter().filter(|a| a.acknowledged.is_none()).count();
        ok(
            StatusCode::OK,
            json!({ "now_ms": now, "queues": queues, "groups": groups, "agents": agents, "open_alerts": open_alerts }),
        )
    })
    .await?
}
