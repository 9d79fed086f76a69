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
