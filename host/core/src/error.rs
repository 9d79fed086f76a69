//! The routing core's one error type: a request the router refuses. Each
//! variant says what the caller should change.

/// Errors of `switchyard-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request names something that does not exist (department, queue, agent, item).
    #[error("unknown {kind} `{name}`")]
    Unknown {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A request is well-formed but not allowed in the current state.
    #[error("{0}")]
    Invalid(String),
    /// A request (or configuration) exceeds one of the router's limits: too many
    /// attributes, a name too long, a duration too large, a full name catalogue.
    /// The caller sends less; an HTTP front end answers 422 naming `field`.
    #[error("{field}: {got} exceeds the limit of {limit} ({what})")]
    Limit {
        /// The field of the request, e.g. `attributes`, `attributes.note`, `due_in_ms`.
        field: String,
        /// Which limit, e.g. `attribute value bytes`.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// What the request had.
        got: u64,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
