//! What a rule can ask of its host while deciding: names of interned ids, the
//! department's read-only configuration, the decision time, and a structured log.
//!
//! Inside a component these calls go to the `host` imports of the contract; in a
//! native `cargo test` they go to an in-memory [`TestHost`], so the same rule code
//! runs in both places.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::names::Catalog;
use crate::types::{AttrKey, LogLevel, NameKind, QueueId, SkillId};

/// A log record a rule wrote, as captured by [`TestHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// Message.
    pub message: String,
    /// Structured fields.
    pub fields: Vec<(String, String)>,
}

/// The in-memory host used by native tests: a catalog of names, a config map, a
/// fixed decision time, and the captured log.
#[derive(Debug, Clone, Default)]
pub struct TestHost {
    /// Interned names the "host" knows.
    pub catalog: Catalog,
    /// Department configuration.
    pub config: BTreeMap<String, String>,
    /// Decision time, ms since the Unix epoch.
    pub now_ms: u64,
    /// What the rule logged.
    pub logs: RefCell<Vec<LogRecord>>,
}

enum Backend {
    /// The contract's `host` imports (only inside a component).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    Component,
    /// An in-memory host for native tests.
    Test(TestHost),
}

/// The rule's window on its host. Name lookups are cached: a component asks the
/// host only for names it has not seen yet.
pub struct Context {
    backend: Backend,
    cache: RefCell<Catalog>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// A context backed by the component's host imports.
    #[doc(hidden)]
    pub fn component() -> Self {
        Context { backend: Backend::Component, cache: RefCell::default() }
    }

    /// A context backed by an in-memory host (native tests).
    pub fn for_tests(host: TestHost) -> Self {
        Context { cache: RefCell::new(host.catalog.clone()), backend: Backend::Test(host) }
    }

    /// The in-memory host, when this is a test context.
    pub fn test_host(&self) -> Option<&TestHost> {
        match &self.backend {
            Backend::Test(host) => Some(host),
            Backend::Component => None,
        }
    }

    fn lookup_id(&self, kind: NameKind, name: &str) -> Option<u32> {
        if let Some(id) = self.cache.borrow().table(kind).id(name) {
            return Some(id);
        }
        self.refresh(kind);
        self.cache.borrow().table(kind).id(name)
    }

    fn lookup_name(&self, kind: NameKind, id: u32) -> Option<String> {
        if let Some(name) = self.cache.borrow().table(kind).name(id) {
            return Some(name.to_owned());
        }
        self.refresh(kind);
        self.cache.borrow().table(kind).name(id).map(str::to_owned)
    }

    /// Pull names the host interned since we last asked.
    fn refresh(&self, kind: NameKind) {
        let from = self.cache.borrow().table(kind).len() as u32;
        let fresh: Vec<String> = match &self.backend {
            Backend::Test(host) => host.catalog.table(kind).tail(from).to_vec(),
            Backend::Component => crate::wasm::names(kind, from),
        };
        if !fresh.is_empty() {
            self.cache.borrow_mut().table_mut(kind).extend(fresh);
        }
    }

    /// The id of skill `name`, if the host knows it.
    pub fn skill(&self, name: &str) -> Option<SkillId> {
        self.lookup_id(NameKind::Skill, name).map(SkillId)
    }
    /// The id of queue `name`, if the host knows it.
    pub fn queue(&self, name: &str) -> Option<QueueId> {
        self.lookup_id(NameKind::Queue, name).map(QueueId)
    }
    /// The id of attribute key `name`, if the host knows it.
    pub fn attribute(&self, name: &str) -> Option<AttrKey> {
        self.lookup_id(NameKind::Attribute, name).map(AttrKey)
    }
    /// Name of a skill id.
    pub fn skill_name(&self, id: SkillId) -> Option<String> {
        self.lookup_name(NameKind::Skill, id.0)
    }
    /// Name of a queue id.
    pub fn queue_name(&self, id: QueueId) -> Option<String> {
        self.lookup_name(NameKind::Queue, id.0)
    }

    /// One key of the department's read-only configuration.
    pub fn config(&self, key: &str) -> Option<String> {
        match &self.backend {
            Backend::Test(host) => host.config.get(key).cloned(),
            Backend::Component => crate::wasm::config(key),
        }
    }

    /// A configuration key parsed as a number, or `default` when absent or not a number.
    pub fn config_f64(&self, key: &str, default: f64) -> f64 {
        self.config(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
    }

    /// The time of the decision, ms since the Unix epoch (virtual in simulation).
    pub fn now_ms(&self) -> u64 {
        match &self.backend {
            Backend::Test(host) => host.now_ms,
            Backend::Component => crate::wasm::now_ms(),
        }
    }

    /// Write a structured log record into the host's log.
    pub fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        match &self.backend {
            Backend::Test(host) => host.logs.borrow_mut().push(LogRecord {
                level,
                message: message.to_owned(),
                fields: fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            }),
            Backend::Component => crate::wasm::log(level, message, fields),
        }
    }
}
