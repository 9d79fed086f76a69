//! Bearer tokens: the admin token guards plugin upload, rollback and agent
//! management; the agent token (or the admin token) guards everything else under
//! `/v1`. `/healthz`, `/readyz` and `/metrics` are open. Without an admin token
//! the daemon refuses to start unless the config says `insecure_local = true`.

use axum::http::HeaderMap;

use super::config::AuthConfig;
use crate::error::{Error, Result};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Admin token only.
    Admin,
    /// Agent or admin token.
    Agent,
}

/// The tokens in force.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    admin: Option<String>,
    agent: Option<String>,
    insecure: bool,
}

/// Why a request was refused: 401 without a valid token, 403 with the wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No token, or not one we know.
    Unauthenticated,
    /// An agent token on an admin endpoint.
    Forbidden,
}

impl Auth {
    /// Tokens from the config, overridden by `SWITCHYARD_ADMIN_TOKEN` /
    /// `SWITCHYARD_AGENT_TOKEN`. Refuses an empty token, and no admin token at all
    /// unless `insecure_local`.
    pub(crate) fn from_config(config: &AuthConfig, path: &std::path::Path) -> Result<Auth> {
        let pick = |env: &str, configured: &Option<String>| {
            std::env::var(env).ok().or_else(|| configured.clone())
        };
        let admin = pick("SWITCHYARD_ADMIN_TOKEN", &config.admin_token);
        let agent = pick("SWITCHYARD_AGENT_TOKEN", &config.agent_token);
        for (key, token) in [
            ("auth.admin_token / SWITCHYARD_ADMIN_TOKEN", &admin),
            ("auth.agent_token / SWITCHYARD_AGENT_TOKEN", &agent),
        ] {
            if token.as_deref().is_some_and(|t| t.trim().len() < 8) {
                return Err(Error::Config {
                    path: path.to_owned(),
                    message: format!("key `{key}`: a token must have at least 8 characters"),
                });
            }
        }
        if admin.is_none() && !config.insecure_local {
            return Err(Error::Config {
                path: path.to_owned(),
                message: "no admin token: set `auth.admin_token` or SWITCHYARD_ADMIN_TOKEN, or `auth.insecure_local = true` to run with every endpoint open on a developer machine".into(),
            });
        }
        Ok(Auth {
            admin,
            agent,
            insecure: config.insecure_local
                && config.admin_token.is_none()
                && std::env::var("SWITCHYARD_ADMIN_TOKEN").is_err(),
        })
    }

    /// Whether the request's bearer token allows `role`.
    pub(crate) fn check(&self, headers: &HeaderMap, role: Role) -> std::result::Result<(), Denied> {
        if self.insecure {
            return Ok(());
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Err(Denied::Unauthenticated);
        };
        let is = |known: &Option<String>| {
            known
                .as_deref()
                .is_some_and(|k| constant_time_eq(k.as_bytes(), token.as_bytes()))
        };
        if is(&self.admin) {
            return Ok(());
        }
        if is(&self.agent) {
            return if role == Role::Agent {
                Ok(())
            } else {
                Err(Denied::Forbidden)
            };
        }
        Err(Denied::Unauthenticated)
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
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    #[test]
    fn admin_and_agent_tokens_open_their_endpoints_only() {
        let auth = Auth {
            admin: Some("admin-secret".into()),
            agent: Some("agent-secret".into()),
            insecure: false,
        };
        assert_eq!(auth.check(&headers("admin-secret"), Role::Admin), Ok(()));
        assert_eq!(auth.check(&headers("admin-secret"), Role::Agent), Ok(()));
        assert_eq!(auth.check(&headers("agent-secret"), Role::Agent), Ok(()));
        assert_eq!(
            auth.check(&headers("agent-secret"), Role::Admin),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            auth.check(&headers("agent-secreT"), Role::Agent),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            auth.check(&HeaderMap::new(), Role::Agent),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn no_admin_token_refuses_to_start_unless_insecure_local() {
        let path = std::path::Path::new("s.toml");
        if std::env::var("SWITCHYARD_ADMIN_TOKEN").is_ok() {
            return;
        }
        let err = Auth::from_config(&AuthConfig::default(), path)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.toml: no admin token"), "{err}");
        let open = Auth::from_config(
            &AuthConfig {
                insecure_local: true,
                ..AuthConfig::default()
            },
            path,
        )
        .unwrap();
        assert_eq!(open.check(&HeaderMap::new(), Role::Admin), Ok(()));
    }
}
