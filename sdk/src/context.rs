//! What a rule can ask of its host while deciding: names of interned ids, the
//! department's read-only configuration, the decision time, and a structured log.
//!
//! Inside a component these calls go to the `host` imports of the contract; in a
//! native `cargo test` they go to an in-memory [`TestHost`], so the same rule code
//! runs in both places.
//!
//! ## What a lookup costs
//! A call into the host crosses the component boundary (the key is lowered into
//! the host, the answer lifted back into a fresh allocation), so the context
//! crosses it as rarely as it can:
//! - **config**: a department's configuration is read-only for the life of a
//!   plugin generation (the host builds a new instance for a new config), so each
//!   key is fetched from the host once per instance, parsed once, and served from
//!   a map afterwards — an absent key too. [`Context::config_f64`],
//!   [`Context::config_i64`] and [`Context::config_bool`] are a hash lookup.
//! - **names**: ids never change meaning, so known names are served from a cache;
//!   an unknown name asks the host for new names at most once per table per hook
//!   call (names an item carries were interned before the call, so asking again
//!   within the call cannot find it).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::names::Catalog;
use crate::types::{AttrKey, LogLevel, NameKind, QueueId, SkillId};

/// The department config key a host sets to `"false"` when it does not want
/// explanations (reasons) from the plugin — e.g. a simulation or a batch
/// re-prioritisation nobody reads. Absent (the daemon's default), rules explain.
pub const EXPLAIN_KEY: &str = "switchyard.explain";

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
    /// How many lookups reached this host (a config key fetched, a name table
    /// refreshed) — what a component would pay in boundary crossings.
    pub lookups: Cell<u64>,
}

// One `Context` per plugin instance: the test backend's size costs nothing,
// and a plugin inside a component never builds that variant.
#[allow(clippy::large_enum_variant)]
enum Backend {
    /// The contract's `host` imports (only inside a component).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    Component,
    /// An in-memory host for native tests.
    Test(TestHost),
}

/// One department config key as fetched from the host, parsed once.
#[derive(Debug, Clone)]
struct ConfigValue {
    /// The value, `None` when the department config lacks the key.
    raw: Option<Arc<str>>,
    /// `raw` parsed as a number (surrounding whitespace ignored).
    number: Option<f64>,
    /// `raw` parsed as a flag: true/yes/on/1 or false/no/off/0, any case.
    flag: Option<bool>,
}

impl ConfigValue {
    fn new(raw: Option<String>) -> Self {
        let number = raw.as_deref().and_then(|v| v.trim().parse::<f64>().ok());
        let flag = raw.as_deref().and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        });
        ConfigValue { raw: raw.map(Arc::from), number, flag }
    }
}

/// The rule's window on its host. Name lookups and config values are cached for
/// the life of the context (one per component instance): see the module docs for
/// what each lookup costs.
pub struct Context {
    backend: Backend,
    cache: RefCell<Catalog>,
    /// Config keys fetched so far, absent ones included.
    config: RefCell<KeyCache<ConfigValue>>,
    /// Names found so far, per table (skill, queue, attribute): ids never
    /// change meaning, so a found name is served from here; an unknown one
    /// takes the catalog path each time.
    found: [RefCell<KeyCache<u32>>; 3],
    /// Number of the hook call in progress (see [`Context::begin_call`]).
    call: Cell<u64>,
    /// Per name table (skill, queue, attribute): the call during which the table
    /// was last refreshed from the host.
    refreshed: [Cell<u64>; 3],
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// The config cache's hash: FxHash's multiply-rotate over 8 bytes at a time.
/// std's SipHash resists collision attacks, which these keys cannot mount: they
/// are the names a plugin asks for (its own literals) — and it was the largest
/// single cost of a cached lookup (≈40 % of it in the profile of claims'
/// escalate, which reads five keys per item).
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(word(chunk));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            self.add(tail_word(rest) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The config cache and the found-name cache: keys by their [`KeyHasher`]
/// hash, then compared a word at a time ([`same_key`]). A `HashMap<Box<str>, _>`
/// compares keys with `memcmp`, which in a component is a byte loop behind a
/// call: ≈10 % of claims' escalate (five config reads per item) went to it,
/// and the name tables (SipHash, as the host's catalog must be against
/// hostile names) cost billing as much again for two attribute names per item.
struct KeyCache<V> {
    /// Keys with the same hash share a bucket (in practice one key each).
    by_hash: HashMap<u64, Bucket<V>, BuildHasherDefault<HashIsKey>>,
}

/// The keys of a [`KeyCache`] with one hash, and their values.
type Bucket<V> = Vec<(Box<str>, V)>;

impl<V> Default for KeyCache<V> {
    fn default() -> Self {
        KeyCache { by_hash: HashMap::default() }
    }
}

impl<V> KeyCache<V> {
    fn hash(key: &str) -> u64 {
        let mut hasher = KeyHasher::default();
        hasher.write(key.as_bytes());
        hasher.finish()
    }

    fn get(&self, key: &str) -> Option<&V> {
        let bucket = self.by_hash.get(&Self::hash(key))?;
        bucket.iter().find(|(k, _)| same_key(k.as_bytes(), key.as_bytes())).map(|(_, v)| v)
    }

    fn insert(&mut self, key: &str, value: V) {
        self.by_hash.entry(Self::hash(key)).or_default().push((key.into(), value));
    }
}

/// Whether `a` and `b` hold the same bytes, compared 8 bytes at a time (the
/// tail zero-padded: the lengths are equal by then), without `memcmp`.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    (&mut x).zip(&mut y).all(|(x, y)| word(x) == word(y)) && tail_word(x.remainder()) == tail_word(y.remainder())
}

/// Eight bytes (a `chunks_exact(8)` chunk) as a little-endian word.
fn word(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    u64::from_le_bytes(word)
}

/// Up to 8 bytes as a little-endian word, zero-padded — by shifts, not by a
/// copy of variable length (a `memory.copy`, i.e. a call out of the
/// component, per use).
fn tail_word(rest: &[u8]) -> u64 {
    rest.iter().take(8).enumerate().fold(0, |w, (i, &b)| w | (u64::from(b) << (8 * i)))
}

/// The hasher of a map whose keys are already hashes ([`KeyCache`]).
#[derive(Debug, Default, Clone, Copy)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; fold anything else in to stay correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn kind_index(kind: NameKind) -> usize {
    match kind {
        NameKind::Skill => 0,
        NameKind::Queue => 1,
        NameKind::Attribute => 2,
    }
}

impl Context {
    /// A context backed by the component's host imports.
    #[doc(hidden)]
    pub fn component() -> Self {
        Context::with_backend(Backend::Component, Catalog::default())
    }

    /// A context backed by an in-memory host (native tests).
    pub fn for_tests(host: TestHost) -> Self {
        let names = host.catalog.clone();
        Context::with_backend(Backend::Test(host), names)
    }

    fn with_backend(backend: Backend, names: Catalog) -> Self {
        Context {
            backend,
            cache: RefCell::new(names),
            config: RefCell::default(),
            found: Default::default(),
            // Call 1 is in progress until a hook says otherwise, so a lookup
            // outside any hook (a test) may refresh once.
            call: Cell::new(1),
            refreshed: Default::default(),
        }
    }

    /// Mark the start of a hook call (the batch drivers and the component's
    /// export glue call it): an unknown name may be looked up at the host again.
    pub(crate) fn begin_call(&self) {
        self.call.set(self.call.get().wrapping_add(1));
    }

    /// The in-memory host, when this is a test context.
    pub fn test_host(&self) -> Option<&TestHost> {
        match &self.backend {
            Backend::Test(host) => Some(host),
            Backend::Component => None,
        }
    }

    fn lookup_id(&self, kind: NameKind, name: &str) -> Option<u32> {
        let found = &self.found[kind_index(kind)];
        if let Some(&id) = found.borrow().get(name) {
            return Some(id);
        }
        let mut id = self.cache.borrow().table(kind).id(name);
        if id.is_none() {
            self.refresh(kind);
            id = self.cache.borrow().table(kind).id(name);
        }
        if let Some(id) = id {
            found.borrow_mut().insert(name, id);
        }
        id
    }

    fn lookup_name(&self, kind: NameKind, id: u32) -> Option<String> {
        if let Some(name) = self.cache.borrow().table(kind).name(id) {
            return Some(name.to_owned());
        }
        self.refresh(kind);
        self.cache.borrow().table(kind).name(id).map(str::to_owned)
    }

    /// Pull names the host interned since we last asked — at most once per table
    /// per hook call.
    fn refresh(&self, kind: NameKind) {
        let slot = &self.refreshed[kind_index(kind)];
        if slot.get() == self.call.get() {
            return;
        }
        slot.set(self.call.get());
        let from = self.cache.borrow().table(kind).len() as u32;
        let fresh: Vec<String> = match &self.backend {
            Backend::Test(host) => {
                host.lookups.set(host.lookups.get() + 1);
                host.catalog.table(kind).tail(from).to_vec()
            }
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

    /// Read `key` through the cache, fetching it from the host the first time.
    fn config_value<T>(&self, key: &str, read: impl FnOnce(&ConfigValue) -> T) -> T {
        if let Some(value) = self.config.borrow().get(key) {
            return read(value);
        }
        let raw = match &self.backend {
            Backend::Test(host) => {
                host.lookups.set(host.lookups.get() + 1);
                host.config.get(key).cloned()
            }
            Backend::Component => crate::wasm::config(key),
        };
        let value = ConfigValue::new(raw);
        let out = read(&value);
        self.config.borrow_mut().insert(key, value);
        out
    }

    /// One key of the department's read-only configuration, as an owned string
    /// (one allocation per call; [`Context::config_str`] shares the cached value).
    pub fn config(&self, key: &str) -> Option<String> {
        self.config_value(key, |v| v.raw.as_deref().map(str::to_owned))
    }

    /// One key of the department's configuration, shared with the cache (no copy).
    pub fn config_str(&self, key: &str) -> Option<Arc<str>> {
        self.config_value(key, |v| v.raw.clone())
    }

    /// A configuration key parsed as a number, or `default` when absent or not a
    /// number. Parsed once per instance; afterwards a hash lookup.
    pub fn config_f64(&self, key: &str, default: f64) -> f64 {
        self.config_value(key, |v| v.number).unwrap_or(default)
    }

    /// A configuration key as a whole number (a number with a fraction is
    /// rounded; out-of-range values saturate), or `default` when absent or not a
    /// number.
    pub fn config_i64(&self, key: &str, default: i64) -> i64 {
        self.config_value(key, |v| v.number).filter(|n| n.is_finite()).map_or(default, |n| n.round() as i64)
    }

    /// A configuration key as a flag (`true`/`yes`/`on`/`1` or
    /// `false`/`no`/`off`/`0`, any case), or `default` when absent or neither.
    pub fn config_bool(&self, key: &str, default: bool) -> bool {
        self.config_value(key, |v| v.flag).unwrap_or(default)
    }

    /// Whether the host wants explanations ([`crate::Priority::because_with`],
    /// [`crate::Reason`]): true unless the department config sets [`EXPLAIN_KEY`]
    /// to false. A cached lookup.
    pub fn explain(&self) -> bool {
        self.config_bool(EXPLAIN_KEY, true)
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

/// A test context may move to another thread (as it could before config was
/// cached); it is not shared between threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Context>();
};

/// The contract's decision helpers ([`crate::Priority::because_with`],
/// [`crate::Reason`]) ask the context whether to build explanations.
impl switchyard_contract::Explain for Context {
    fn explain(&self) -> bool {
        Context::explain(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(config: &[(&str, &str)]) -> TestHost {
        let mut host = TestHost::default();
        host.catalog.queues.intern("billing");
        for (k, v) in config {
            host.config.insert((*k).to_owned(), (*v).to_owned());
        }
        host
    }

    #[test]
    fn each_config_key_reaches_the_host_once_and_is_parsed_once() {
        let ctx = Context::for_tests(host(&[("weight", " 2.5 "), ("on", "Yes"), ("name", "x")]));
        for _ in 0..100 {
            assert_eq!(ctx.config_f64("weight", 1.0), 2.5);
            assert_eq!(ctx.config_i64("weight", 0), 3);
            assert_eq!(ctx.config_f64("absent", 7.0), 7.0);
            assert_eq!(ctx.config_f64("name", 7.0), 7.0);
            assert!(ctx.config_bool("on", false));
            assert!(!ctx.config_bool("name", false));
            assert_eq!(ctx.config("name").as_deref(), Some("x"));
            assert_eq!(ctx.config_str("absent"), None);
        }
        let lookups = ctx.test_host().map(|h| h.lookups.get());
        assert_eq!(lookups, Some(4), "weight, absent, name and on: one host lookup each");
    }

    #[test]
    fn an_unknown_name_asks_the_host_once_per_call() {
        let ctx = Context::for_tests(host(&[]));
        assert_eq!(ctx.queue("billing"), Some(QueueId(0)));
        let lookups = || ctx.test_host().map_or(0, |h| h.lookups.get());
        assert_eq!(lookups(), 0, "a known name is served from the cache");
        for _ in 0..50 {
            assert_eq!(ctx.queue("billing-disputes"), None);
        }
        assert_eq!(lookups(), 1);
        ctx.begin_call();
        assert_eq!(ctx.queue("billing-disputes"), None);
        assert_eq!(ctx.attribute("amount"), None);
        assert_eq!(lookups(), 3, "a new call may ask again, once per table");
    }

    #[test]
    fn keys_compare_by_every_byte() {
        let keys =
            ["", "a", "ab", "weight-tier", "weight-tiex", "switchyard.explain", "switchyard.explaim", "12345678"];
        for a in keys {
            for b in keys {
                assert_eq!(same_key(a.as_bytes(), b.as_bytes()), a == b, "{a:?} vs {b:?}");
            }
        }
        let mut cache = KeyCache::default();
        for (i, key) in keys.iter().enumerate() {
            cache.insert(key, ConfigValue::new(Some(i.to_string())));
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(cache.get(key).and_then(|v| v.number), Some(i as f64));
        }
        assert!(cache.get("weight-tie").is_none());
    }

    #[test]
    fn explanations_are_on_unless_the_config_turns_them_off() {
        assert!(Context::for_tests(host(&[])).explain());
        assert!(!Context::for_tests(host(&[(EXPLAIN_KEY, "false")])).explain());
    }
}
