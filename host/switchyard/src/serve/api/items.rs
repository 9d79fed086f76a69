//! Work items: `POST /v1/items` (the gateway's intake), `GET` and `DELETE
//! /v1/items/{id}`, `POST /v1/items/{id}/complete` (with a hand-off). A new
//! item's (and a hand-off's) `prioritise` is asked outside the state lock.

use super::*;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CompleteBody {
    resolved: bool,
    #[serde(default)]
    handoff: Option<ItemBody>,
}

/// Ask a planned `prioritise` of the department's rules, with no lock held.
pub(super) async fn ask_outside(plan: IntakePlan) -> Result<Option<(String, Decided<Vec<Priority>>)>, ApiError> {
    let Some((department, batch, rules)) = plan.call else { return Ok(None) };
    tokio::task::spawn_blocking(move || Some((department, rules.prioritise(&batch))))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("rules task failed: {e}")))
}

pub(super) async fn create_item(State(state): State<AppState>, body: Bytes) -> Reply {
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

pub(super) async fn get_item(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Reply {
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

pub(super) async fn withdraw_item(State(state): State<AppState>, Path(id): Path<String>) -> Reply {
    let id = item_id(&id)?;
    with_core(&state, move |core| {
        match core.router.item_status(ItemId(id)) {
            None => {
                return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown item {id}")));
            }
            Some(
                switchyard_core::router::ItemStatus::Queued
                | switchyard_core::router::ItemStatus::Offered
                | switchyard_core::router::ItemStatus::Exception,
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

pub(super) async fn complete_item(
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
            Some(switchyard_core::router::ItemStatus::Active | switchyard_core::router::ItemStatus::Paused) => {}
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
