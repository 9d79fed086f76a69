//! Open routes for load balancers and tools: liveness, readiness (with the
//! journal's recovery figures), and the OpenAPI document.

use super::*;

/// `GET /openapi.json`: the API's description, generated from [`ROUTES`].
pub(super) async fn openapi_document() -> Reply {
    ok(StatusCode::OK, crate::serve::openapi::document())
}

pub(super) async fn healthz() -> Reply {
    ok(StatusCode::OK, json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(state): State<AppState>) -> Reply {
    // A cluster's standby is not ready for a load balancer: it takes no
    // writes. It says who leads, and how far behind it follows.
    if state.node.clustered && state.node.role() == crate::serve::cluster::Role::Standby {
        return ok(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "standby",
                "role": "standby",
                "node": state.node.node,
                "leader": state.node.leader(),
                "behind_records": state.node.behind(),
            }),
        );
    }
    // The listener opens only after recovery, so a daemon that answers is ready —
    // unless its journal has stopped taking writes.
    if let Some(why) = state.journal.failure() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why));
    }
    let (recovered, replayed, appended, snapshot, diverged) =
        with_core(&state, |c| (c.recovered, c.replayed_at_start, c.appended, c.last_snapshot.map(|s| s.0), c.diverged))
            .await?;
    let mut body = json!({
        "status": "ready",
        "recovered_records": recovered,
        "replayed_records": replayed,
        "journaled_records": appended,
        "snapshot_covers": snapshot,
        "diverged_records": diverged,
        "role": "leader",
    });
    if state.node.clustered {
        body["node"] = json!(state.node.node);
        body["takeovers"] = json!(state.node.takeovers.load(std::sync::atomic::Ordering::Relaxed));
        body["last_takeover_ms"] = json!(state.node.last_takeover_ms.load(std::sync::atomic::Ordering::Relaxed));
    }
    ok(StatusCode::OK, body)
}
