//! Offers: an agent accepts or rejects what it was offered (only its own).

use super::*;

pub(super) async fn answer_offer(state: AppState, who: Identity, id: String, accept: bool) -> Reply {
    let id = item_id(&id)?;
    let apply = move |core: &mut Core| {
        owns_item(core, &who, id)?;
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown item {id}")));
            }
            Some(switchyard_core::router::ItemStatus::Offered) => {}
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

pub(super) async fn accept(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Reply {
    answer_offer(state, who, id, true).await
}

pub(super) async fn reject(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Reply {
    answer_offer(state, who, id, false).await
}
