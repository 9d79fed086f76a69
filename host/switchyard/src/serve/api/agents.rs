//! Agents: registration, presence, the desktop, and per-agent tokens (issued
//! and revoked by an admin; journaled only as a hash).

use super::*;

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

pub(super) fn default_group() -> String {
    "default".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateBody {
    state: Presence,
}

pub(super) async fn list_agents(State(state): State<AppState>) -> Reply {
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

pub(super) async fn put_agent(State(state): State<AppState>, Path(name): Path<String>, body: Bytes) -> Reply {
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

pub(super) async fn agent_state(
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

pub(super) async fn desktop(
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

/// `POST /v1/agents/{id}/token`: a new token for the agent (the old one stops
/// working). The token is in this answer only; the daemon keeps its SHA-256.
pub(super) async fn issue_token(State(state): State<AppState>, Path(name): Path<String>) -> Reply {
    with_core(&state, move |core| {
        core.agent(&name)?;
        let token = crate::serve::auth::new_token();
        core.submit(Op::AgentToken { agent: name.clone(), sha256: crate::serve::auth::token_hash(&token) })?;
        ok(StatusCode::CREATED, json!({ "agent": name, "token": token }))
    })
    .await?
}

/// `DELETE /v1/agents/{id}/token`: the agent can no longer sign in.
pub(super) async fn revoke_token(State(state): State<AppState>, Path(name): Path<String>) -> Reply {
    with_core(&state, move |core| {
        core.agent(&name)?;
        core.submit(Op::AgentTokenRevoked { agent: name.clone() })?;
        ok(StatusCode::OK, json!({ "agent": name, "token": null }))
    })
    .await?
}
