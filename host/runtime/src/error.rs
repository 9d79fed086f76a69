//! The crate's one error type. Each variant says who should act on it.

use std::path::PathBuf;

/// Errors of `switchyard-runtime`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The embedder's [commit hook](crate::reload::ReloadManager::set_commit)
    /// refused a change (its journal failed, say): the change did not take
    /// effect. Its own error, passed through.
    #[error(transparent)]
    Commit(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The router refused a request (unknown name, invalid state, a limit):
    /// here so an embedder's one `Result` covers the router and the runtime.
    #[error(transparent)]
    Routing(#[from] switchyard_core::Error),
    /// A configuration or scenario file is malformed; fix the file.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (key, line).
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
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
    /// A plugin could not be loaded: not a component, the wrong world, needs imports
    /// the host does not provide, exports no hook, or fails to instantiate within
    /// its limits. The plugin's author fixes the build; nothing was swapped in.
    #[error("{source_name}: cannot load plugin `{plugin}`: {message}")]
    PluginLoad {
        /// Plugin name.
        plugin: String,
        /// Where the component came from: its file path, or `<name> (bytes)`.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A component exports a hook interface of a contract version this host does
    /// not speak (e.g. `prioritiser@9.0.0`), or with the wrong function types.
    /// The author rebuilds against the host's contract.
    #[error("{source_name}: plugin `{plugin}` does not match contract switchyard:routing@{supported}: {message}")]
    ContractMismatch {
        /// Plugin name.
        plugin: String,
        /// Where the component came from.
        source_name: String,
        /// The contract version this host speaks.
        supported: &'static str,
        /// What does not match.
        message: String,
    },
    /// A plugin call trapped (panic, `unreachable`, stack overflow, out-of-bounds
    /// access). The decision fell back to the built-in rule; the instance was dropped.
    #[error("plugin `{plugin}` trapped in {hook}: {reason}")]
    PluginTrap {
        /// Plugin name.
        plugin: String,
        /// The hook (`prioritise`, `escalate`, `match-agents`).
        hook: &'static str,
        /// The trap and where.
        reason: String,
    },
    /// A plugin call ran past its wall-clock deadline and was interrupted.
    #[error("plugin `{plugin}` missed its {deadline_ms} ms deadline in {hook}")]
    PluginDeadline {
        /// Plugin name.
        plugin: String,
        /// The hook.
        hook: &'static str,
        /// The deadline, milliseconds.
        deadline_ms: u64,
    },
    /// A plugin call hit a resource limit (memory, table, instances, fuel, output size).
    #[error("plugin `{plugin}` hit its {limit} in {hook}")]
    PluginLimit {
        /// Plugin name.
        plugin: String,
        /// The hook.
        hook: &'static str,
        /// Which limit, with its value (e.g. "memory limit of 16 MiB").
        limit: String,
    },
    /// A plugin answered, but the answer breaks the contract (wrong length, NaN
    /// score, unknown queue or skill, index out of range); or the call could not
    /// be made the contract's way (its memory could not take the arguments).
    #[error("plugin `{plugin}` gave an invalid answer in {hook}: {reason}")]
    InvalidAnswer {
        /// Plugin name.
        plugin: String,
        /// The hook.
        hook: &'static str,
        /// Which rule of the contract was broken.
        reason: String,
    },
    /// The plugin's circuit breaker is open after repeated failures; the built-in
    /// rule decides until the cooldown ends or ops reload the plugin.
    #[error("plugin `{plugin}`: circuit breaker open after {failures} consecutive failures")]
    BreakerOpen {
        /// Plugin name.
        plugin: String,
        /// Consecutive failures that opened it.
        failures: u32,
    },
    /// Hot reload refused a candidate generation that loaded but failed
    /// validation (a fixture case trapped, ran over budget or decided otherwise
    /// than expected). The running generation stays active; the author fixes the
    /// build or the fixtures.
    #[error("department `{department}`: generation {generation} from {source_name} rejected by its {check}: {reason}")]
    Rejected {
        /// Department.
        department: String,
        /// The generation number the candidate was given.
        generation: u64,
        /// Which check refused it: `fixtures` or `smoke call`.
        check: &'static str,
        /// Where the candidate came from (file path, or who called the API).
        source_name: String,
        /// Why: the failing case and what went wrong.
        reason: String,
    },
    /// The plugin directory could not be watched; ops fix the path or permissions.
    #[error("cannot watch plugin directory {path}: {message}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
