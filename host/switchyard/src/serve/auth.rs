//! Who is calling, and what they may do.
//!
//! Four roles ([`Role`]):
//! - `admin`: plugins, agents (register, issue tokens), everything a supervisor may;
//! - `supervisor`: reads everything (agents, desktops, items, cases, plugins, audit,
//!   alerts), acknowledges alerts and may set an agent's state (sign a stuck agent out);
//! - `integration`: the telephony / e-mail gateway: creates and withdraws items and
//!   reads them back;
//! - `agent`: one agent, acting only as itself: its own state, desktop, offers and
//!   the items it holds.
//!
//! Admin, supervisor and integration tokens come from the config or the
//! environment (`SWITCHYARD_ADMIN_TOKEN`, `SWITCHYARD_SUPERVISOR_TOKEN`,
//! `SWITCHYARD_INTEGRATION_TOKEN`), in plain text or as `sha256:<hex>` so the file
//! need not hold the secret. Each agent's token is issued by an admin
//! (`POST /v1/agents/{id}/token`), shown once, and kept only as its SHA-256 (in
//! memory and in the journal), so a copy of the journal does not let anyone sign in.
//!
//! Authentication runs in a layer before the request body is read (see
//! [`super::api`]): a caller without a valid token costs the daemon no body bytes.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::HeaderMap;
use serde::Serialize;
use sha2::Digest;

use super::config::AuthConfig;
use crate::error::{Error, Result};

/// A role, as written in the OpenAPI document's `x-roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Plugins, agents, configuration; everything a supervisor may do.
    Admin,
    /// Reads everything, acknowledges alerts, sets agents' state.
    Supervisor,
    /// The gateway that creates and withdraws items.
    Integration,
    /// One agent, acting as itself.
    Agent,
}

impl Role {
    /// Every role, in the order the OpenAPI document lists them.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Supervisor, Role::Integration, Role::Agent];

    /// The role's name in the API and the document.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Integration => "integration",
            Role::Agent => "agent",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The admin token (or any caller of a daemon running `insecure_local`).
    Admin,
    /// The supervisor token.
    Supervisor,
    /// The integration token.
    Integration,
    /// The agent with this login.
    Agent(String),
}

impl Identity {
    /// The caller's role.
    pub fn role(&self) -> Role {
        match self {
            Identity::Admin => Role::Admin,
            Identity::Supervisor => Role::Supervisor,
            Identity::Integration => Role::Integration,
            Identity::Agent(_) => Role::Agent,
        }
    }

    /// The agent this caller is, if an agent.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Identity::Agent(name) => Some(name),
            _ => None,
        }
    }
}

/// Why a request was refused: 401 without a valid token, 403 with one whose role
/// may not use the route (or an agent reaching for another agent's things).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token, or not one we know.
    Unauthenticated,
    /// A valid token whose role may not do this; says what is needed.
    Forbidden(String),
}

/// The tokens in force.
#[derive(Debug)]
pub(crate) struct Auth {
    /// SHA-256 (hex) of each configured token, with the identity it grants.
    configured: Vec<(String, Identity)>,
    /// SHA-256 (hex) of each agent's current token → agent login.
    agents: RwLock<HashMap<String, String>>,
    /// `insecure_local`: every caller is admin.
    insecure: bool,
}

/// Shortest token accepted from the config: guessable tokens are refused.
const MIN_TOKEN_CHARS: usize = 16;

/// SHA-256 of `token`, hex.
pub(crate) fn token_hash(token: &str) -> String {
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh agent token: 32 random bytes, hex.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("sya_{}", hex(&bytes))
}

impl Auth {
    /// Tokens from the config, each overridden by its environment variable.
    /// Refuses short tokens, the retired shared agent token, and a daemon with no
    /// admin token unless `insecure_local` (which itself needs a loopback address:
    /// checked where the address is known, see [`super::serve`]).
    pub(crate) fn from_config(config: &AuthConfig, path: &std::path::Path) -> Result<Auth> {
        let fail = |message: String| Error::Config { path: path.to_owned(), message };
        if config.agent_token.is_some() || std::env::var_os("SWITCHYARD_AGENT_TOKEN").is_some() {
            return Err(fail(
                "key `auth.agent_token` / SWITCHYARD_AGENT_TOKEN: one token shared by every agent let any agent act as any other, and is no longer accepted; an admin issues each agent its own token with `POST /v1/agents/{id}/token`, and the gateway uses `auth.integration_token`".into(),
            ));
        }
        let mut configured = Vec::new();
        for (key, env, value, identity) in [
            ("auth.admin_token", "SWITCHYARD_ADMIN_TOKEN", &config.admin_token, Identity::Admin),
            ("auth.supervisor_token", "SWITCHYARD_SUPERVISOR_TOKEN", &config.supervisor_token, Identity::Supervisor),
            (
                "auth.integration_token",
                "SWITCHYARD_INTEGRATION_TOKEN",
                &config.integration_token,
                Identity::Integration,
            ),
        ] {
            let token = std::env::var(env).ok().or_else(|| value.clone());
            let Some(token) = token else { continue };
            let hash = match token.strip_prefix("sha256:") {
                Some(h) => {
                    let h = h.trim().to_ascii_lowercase();
                    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(fail(format!("key `{key}` / {env}: `sha256:` must be followed by 64 hex digits")));
                    }
                    h
                }
                None if token.trim().chars().count() < MIN_TOKEN_CHARS => {
                    return Err(fail(format!(
                        "key `{key}` / {env}: a token must have at least {MIN_TOKEN_CHARS} characters"
                    )));
                }
                None => token_hash(token.trim()),
            };
            if configured.iter().any(|(h, _)| *h == hash) {
                return Err(fail(format!("key `{key}` / {env}: the same token is given to two roles")));
            }
            configured.push((hash, identity));
        }
        let has_admin = configured.iter().any(|(_, i)| *i == Identity::Admin);
        if !has_admin && !config.insecure_local {
            return Err(fail(
                "no admin token: set `auth.admin_token` or SWITCHYARD_ADMIN_TOKEN, or `auth.insecure_local = true` to run with every endpoint open on a developer machine (loopback addresses only)".into(),
            ));
        }
        Ok(Auth { configured, agents: RwLock::new(HashMap::new()), insecure: config.insecure_local && !has_admin })
    }

    /// Who the request's bearer token says the caller is.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> std::result::Result<Identity, Denied> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return if self.insecure { Ok(Identity::Admin) } else { Err(Denied::Unauthenticated) };
        };
        let hash = token_hash(token);
        for (known, identity) in &self.configured {
            if constant_time_eq(known.as_bytes(), hash.as_bytes()) {
                return Ok(identity.clone());
            }
        }
        if let Some(agent) = self.agents.read().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            return Ok(Identity::Agent(agent.clone()));
        }
        if self.insecure { Ok(Identity::Admin) } else { Err(Denied::Unauthenticated) }
    }

    /// Give `agent` the token whose hash is `hash`, replacing the one it had.
    pub(crate) fn set_agent_token(&self, agent: &str, hash: &str) {
        let mut agents = self.agents.write().unwrap_or_else(|p| p.into_inner());
        agents.retain(|_, a| a != agent);
        agents.insert(hash.to_owned(), agent.to_owned());
    }

    /// Every agent token in force, as (agent, SHA-256) sorted by agent: what a
    /// snapshot keeps.
    pub(crate) fn agent_tokens(&self) -> Vec<(String, String)> {
        let agents = self.agents.read().unwrap_or_else(|p| p.into_inner());
        let mut tokens: Vec<(String, String)> = agents.iter().map(|(h, a)| (a.clone(), h.clone())).collect();
        tokens.sort();
        tokens
    }

    /// Take `agent`'s token away; returns whether it had one.
    pub(crate) fn revoke_agent_token(&self, agent: &str) -> bool {
        let mut agents = self.agents.write().unwrap_or_else(|p| p.into_inner());
        let before = agents.len();
        agents.retain(|_, a| a != agent);
        agents.len() != before
    }
}

/// Compare without an early exit, so response time does not leak the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    fn config(admin: &str) -> AuthConfig {
        AuthConfig {
            admin_token: Some(admin.into()),
            supervisor_token: Some(format!("sha256:{}", token_hash("supervisor-secret-1"))),
            integration_token: Some("integration-secret-1".into()),
            ..AuthConfig::default()
        }
    }

    fn no_env() -> bool {
        [
            "SWITCHYARD_ADMIN_TOKEN",
            "SWITCHYARD_SUPERVISOR_TOKEN",
            "SWITCHYARD_INTEGRATION_TOKEN",
            "SWITCHYARD_AGENT_TOKEN",
        ]
        .iter()
        .all(|v| std::env::var_os(v).is_none())
    }

    #[test]
    fn each_token_authenticates_as_its_role_and_agents_as_themselves() {
        if !no_env() {
            return;
        }
        let auth = Auth::from_config(&config("admin-secret-123"), std::path::Path::new("s.toml")).unwrap();
        assert_eq!(auth.authenticate(&headers("admin-secret-123")), Ok(Identity::Admin));
        assert_eq!(auth.authenticate(&headers("supervisor-secret-1")), Ok(Identity::Supervisor));
        assert_eq!(auth.authenticate(&headers("integration-secret-1")), Ok(Identity::Integration));
        assert_eq!(auth.authenticate(&headers("admin-secret-12")), Err(Denied::Unauthenticated));
        assert_eq!(auth.authenticate(&HeaderMap::new()), Err(Denied::Unauthenticated));

        let ann = new_token();
        auth.set_agent_token("ann", &token_hash(&ann));
        assert_eq!(auth.authenticate(&headers(&ann)), Ok(Identity::Agent("ann".into())));
        // A new token replaces the old one.
        let ann2 = new_token();
        auth.set_agent_token("ann", &token_hash(&ann2));
        assert_eq!(auth.authenticate(&headers(&ann)), Err(Denied::Unauthenticated));
        assert_eq!(auth.authenticate(&headers(&ann2)), Ok(Identity::Agent("ann".into())));
        assert!(auth.revoke_agent_token("ann"));
        assert_eq!(auth.authenticate(&headers(&ann2)), Err(Denied::Unauthenticated));
    }

    #[test]
    fn weak_shared_and_missing_tokens_refuse_to_start() {
        if !no_env() {
            return;
        }
        let path = std::path::Path::new("s.toml");
        let err = |c: &AuthConfig| Auth::from_config(c, path).unwrap_err().to_string();
        assert!(err(&AuthConfig::default()).starts_with("s.toml: no admin token"));
        assert!(
            err(&config("short"))
                .contains("key `auth.admin_token` / SWITCHYARD_ADMIN_TOKEN: a token must have at least 16")
        );
        let shared = AuthConfig { agent_token: Some("agent-token-for-everyone".into()), ..config("admin-secret-123") };
        assert!(err(&shared).contains("no longer accepted"), "{}", err(&shared));
        let same = AuthConfig { integration_token: Some("admin-secret-123".into()), ..config("admin-secret-123") };
        assert!(err(&same).contains("the same token is given to two roles"));
        let open = Auth::from_config(&AuthConfig { insecure_local: true, ..AuthConfig::default() }, path).unwrap();
        assert_eq!(open.authenticate(&HeaderMap::new()), Ok(Identity::Admin));
    }
}
