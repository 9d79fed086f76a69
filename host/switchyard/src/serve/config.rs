//! The daemon's configuration file (`switchyard.toml`): listen address, data
//! directory, tokens, departments with their plugins, queues with service-level
//! thresholds, and agents known at start.
//!
//! Every table rejects unknown keys, and every error names the key and the line:
//! syntax and type errors come from `toml`'s spans; cross-references (a queue's
//! department, an agent's skill level) are checked here against the spans of the
//! offending values.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use switchyard_core::router::{Capacity, Presence};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free port, and the
    /// bound address is printed on stdout either way).
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    /// Directory of the journal and uploaded plugins, relative to the config file.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How often the ticker looks for due offer timeouts and escalation rechecks, ms.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// How many finished (completed or withdrawn) items the daemon keeps for
    /// `GET /items/{id}`; older ones are forgotten (the journal keeps them all).
    #[serde(default = "default_keep_finished")]
    pub keep_finished: usize,
    /// Take a snapshot of the state (and drop the journal records it covers)
    /// after this many records; also at every clean stop. Start-up reads the
    /// snapshot and replays at most this many records, whatever the history.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Opt-in: record every rule decision's inputs and answer as JSON lines in
    /// this file (relative to the config file), for `switchyard plugin replay`.
    /// Truncated at start; journal recovery re-records the replayed decisions.
    #[serde(default)]
    pub record_decisions: Option<PathBuf>,
    /// A plugin directory to watch (relative to the config file): a
    /// `<department>.wasm` written there is validated and swapped in like an
    /// upload, with `<department>.fixtures.toml` and `<department>.config.toml`
    /// beside it (see [`switchyard_runtime::reload`]). Default: none.
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    /// Validated plugin generations kept per department for rollback (the
    /// active one and the shadow are kept whatever their age); older ones are
    /// dropped with their compiled code and instances. Default 5.
    #[serde(default = "default_keep_generations")]
    pub keep_generations: usize,
    /// Where the journal, snapshots and plugin blobs live: absent, the
    /// embedded store in `data_dir` (one node); `postgresql://user@host:port/db`,
    /// a PostgreSQL database shared by several nodes, one of which routes while
    /// the others stand by (see `serve::cluster`). The password may come from
    /// `SWITCHYARD_STORE_PASSWORD` instead of the URL.
    #[serde(default)]
    pub store: Option<Spanned<String>>,
    /// This node in a cluster (with a PostgreSQL `store`).
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Tokens.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Limits at the HTTP edge.
    #[serde(default)]
    pub http: HttpLimits,
    /// How long the daemon remembers what routing no longer needs.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Upper bounds on what one item or one plugin answer may bring in.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The traffic log (`data_dir/traffic/`): size, segments and retention.
    #[serde(default)]
    pub traffic: super::traffic::TrafficConfig,
    /// Departments.
    #[serde(default)]
    pub departments: Vec<DepartmentEntry>,
    /// Queues.
    #[serde(default)]
    pub queues: Vec<QueueEntry>,
    /// Agents registered at start (more can register through the API).
    #[serde(default)]
    pub agents: Vec<AgentEntry>,
    /// Where the file was read from (plugin paths and `data_dir` are relative to
    /// its folder). Not a key of the file.
    #[serde(skip)]
    pub path: PathBuf,
}

/// This node's place in a cluster of daemons sharing a PostgreSQL store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The node's name, unique in the cluster (shown by `/readyz`, and the
    /// database's `application_name` of its connections). Default: the host
    /// name and the process id.
    #[serde(default)]
    pub node: Option<String>,
    /// The URL clients reach this node at, given to clients of the standbys
    /// as the leader's address. Default: `http://` and the bound address.
    #[serde(default)]
    pub advertise: Option<String>,
    /// How often a standby tries for the leadership and checks the leader's
    /// lease connection is alive, ms. A dead leader is replaced within about
    /// this (plus the database noticing a dropped connection). Default 250.
    #[serde(default = "default_lease_check_ms")]
    pub lease_check_ms: u64,
    /// How often a standby reads the journal it has not applied yet when no
    /// notification came, ms. Default 500.
    #[serde(default = "default_follow_ms")]
    pub follow_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: None,
            advertise: None,
            lease_check_ms: default_lease_check_ms(),
            follow_ms: default_follow_ms(),
        }
    }
}

fn default_lease_check_ms() -> u64 {
    250
}
fn default_follow_ms() -> u64 {
    500
}

/// Bearer tokens of the admin, supervisor and integration roles (agents get
/// their own tokens from an admin through the API). Each may be written in plain
/// text or as `sha256:<hex>`; see the `serve::auth` module.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Admin token (plugins, agents, configuration). `SWITCHYARD_ADMIN_TOKEN` overrides it.
    pub admin_token: Option<String>,
    /// Supervisor token (read everything, acknowledge alerts, set agents' state).
    /// `SWITCHYARD_SUPERVISOR_TOKEN` overrides it.
    pub supervisor_token: Option<String>,
    /// Integration token (the gateway: create and withdraw items).
    /// `SWITCHYARD_INTEGRATION_TOKEN` overrides it.
    pub integration_token: Option<String>,
    /// Retired: one token shared by every agent. Still parsed so that a config
    /// that sets it gets an error saying what replaced it.
    pub agent_token: Option<String>,
    /// Run without tokens: every caller is admin. Only for a developer's machine:
    /// the daemon refuses to start with it on an address that is not loopback,
    /// and refuses to start without an admin token unless it is set.
    #[serde(default)]
    pub insecure_local: bool,
}

/// Limits at the HTTP edge, so a misbehaving or hostile client costs the daemon
/// a bounded amount. Body limits are per route (see the API's route table).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpLimits {
    /// Connections served at once; more wait in the kernel's backlog. Default
    /// 1,024: far above what agents' desktops and a gateway open, far below what
    /// exhausts file descriptors.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client must send a request's headers within this many seconds of the
    /// daemon starting to wait for them — also the keep-alive idle timeout.
    /// Default 30.
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: f64,
    /// A request (body read and handling) must finish within this many seconds,
    /// or gets 408. Default 30.
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: f64,
    /// The same for a plugin upload, which compiles and validates the component.
    /// Default 300.
    #[serde(default = "default_upload_timeout_s")]
    pub upload_timeout_s: f64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: default_max_connections(),
            idle_timeout_s: default_idle_timeout_s(),
            request_timeout_s: default_request_timeout_s(),
            upload_timeout_s: default_upload_timeout_s(),
        }
    }
}

fn default_max_connections() -> usize {
    1024
}
fn default_idle_timeout_s() -> f64 {
    30.0
}
fn default_request_timeout_s() -> f64 {
    30.0
}
fn default_upload_timeout_s() -> f64 {
    300.0
}

/// `[retention]`: every map that grows with traffic has a bound. Defaults are
/// the router's ([`switchyard_core::router::Retention`], [`switchyard_core::metrics::MetricsConfig`]),
/// each with the reason for its value there.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Supervisor alerts kept (the most recent). Default 10,000.
    pub alerts: Option<usize>,
    /// Days a closed case's history is kept after it closed. Default 7.
    pub closed_case_days: Option<f64>,
    /// Steps kept per case history. Default 1,000.
    pub case_steps: Option<usize>,
    /// Escalation notes kept per item. Default 50.
    pub notes_per_item: Option<usize>,
    /// Items kept in the exception queue. Default 10,000.
    pub exceptions: Option<usize>,
    /// Statistics intervals kept per queue and agent (totals are never dropped).
    /// Default 96: two days of 30-minute intervals.
    pub statistics_intervals: Option<usize>,
}

/// `[limits]`: per item and per plugin answer. Defaults are the router's
/// ([`switchyard_core::router::Limits`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Distinct skill and attribute names ever seen. Default 10,000.
    pub catalog_names: Option<usize>,
    /// Total bytes of those names. Default 1 MiB.
    pub catalog_bytes: Option<usize>,
    /// Bytes of one name (skill, attribute key, department, queue). Default 128.
    pub name_bytes: Option<usize>,
    /// Attributes per item. Default 64.
    pub attributes_per_item: Option<usize>,
    /// Bytes of one attribute value. Default 4 KiB.
    pub attribute_value_bytes: Option<usize>,
    /// Skills per item. Default 32.
    pub skills_per_item: Option<usize>,
    /// Bytes of a customer or case id. Default 256.
    pub id_bytes: Option<usize>,
    /// Escalation rechecks per item. Default 10,000.
    pub rechecks_per_item: Option<u32>,
}

/// Largest count or size a `[retention]` / `[limits]` key accepts: a bound is
/// meant to bound.
const MAX_BOUND: usize = 100_000_000;

impl ServeConfig {
    /// The router's options from `[retention]` and `[limits]` over its defaults.
    pub fn router_options(&self) -> switchyard_core::router::RouterOptions {
        let mut options = switchyard_core::router::RouterOptions::default();
        let r = &self.retention;
        let retention = &mut options.retention;
        retention.alerts = r.alerts.unwrap_or(retention.alerts);
        if let Some(days) = r.closed_case_days {
            retention.closed_case_ms = seconds_ms(days * 86_400.0).unwrap_or(retention.closed_case_ms);
        }
        retention.case_steps = r.case_steps.unwrap_or(retention.case_steps);
        retention.notes_per_item = r.notes_per_item.unwrap_or(retention.notes_per_item);
        retention.exceptions = r.exceptions.unwrap_or(retention.exceptions);
        if let Some(n) = r.statistics_intervals {
            options.metrics.keep_intervals = Some(n);
        }
        let l = &self.limits;
        let limits = &mut options.limits;
        limits.catalog_names = l.catalog_names.unwrap_or(limits.catalog_names);
        limits.catalog_bytes = l.catalog_bytes.unwrap_or(limits.catalog_bytes);
        limits.name_bytes = l.name_bytes.unwrap_or(limits.name_bytes);
        limits.attributes_per_item = l.attributes_per_item.unwrap_or(limits.attributes_per_item);
        limits.attribute_value_bytes = l.attribute_value_bytes.unwrap_or(limits.attribute_value_bytes);
        limits.skills_per_item = l.skills_per_item.unwrap_or(limits.skills_per_item);
        limits.id_bytes = l.id_bytes.unwrap_or(limits.id_bytes);
        limits.rechecks_per_item = l.rechecks_per_item.unwrap_or(limits.rechecks_per_item);
        options
    }

    /// Every `[retention]` and `[limits]` value is a positive bound.
    fn check_bounds(&self) -> std::result::Result<(), String> {
        let r = &self.retention;
        let l = &self.limits;
        let counts = [
            ("retention.alerts", r.alerts),
            ("retention.case_steps", r.case_steps),
            ("retention.notes_per_item", r.notes_per_item),
            ("retention.exceptions", r.exceptions),
            ("retention.statistics_intervals", r.statistics_intervals),
            ("limits.catalog_names", l.catalog_names),
            ("limits.catalog_bytes", l.catalog_bytes),
            ("limits.name_bytes", l.name_bytes),
            ("limits.attributes_per_item", l.attributes_per_item),
            ("limits.attribute_value_bytes", l.attribute_value_bytes),
            ("limits.skills_per_item", l.skills_per_item),
            ("limits.id_bytes", l.id_bytes),
            ("limits.rechecks_per_item", l.rechecks_per_item.map(|n| n as usize)),
        ];
        for (key, value) in counts {
            if let Some(v) = value
                && !(1..=MAX_BOUND).contains(&v)
            {
                return Err(format!("key `{key}`: {v} is outside 1-{MAX_BOUND}"));
            }
        }
        if let Some(days) = r.closed_case_days
            && (seconds_ms(days * 86_400.0).is_none() || days <= 0.0)
        {
            return Err(format!("key `retention.closed_case_days`: {days} is not a number of days between 0 and 366"));
        }
        Ok(())
    }
}

/// One department.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentEntry {
    /// Name (also the plugin's department).
    pub name: Spanned<String>,
    /// Path of the department's plugin component, relative to the config file.
    pub plugin: Option<PathBuf>,
    /// Fixture file (the [`switchyard_contract::fixtures`] format) every candidate
    /// plugin of the department must pass, relative to the config file.
    /// Fixtures uploaded with `PUT /v1/plugins/{department}/fixtures` take its
    /// place. Default: none (load checks and the smoke call only).
    pub fixtures: Option<PathBuf>,
    /// When `plugin` names a file that does not exist: `true` (default) refuses to
    /// start, `false` starts with the built-in rules and logs a warning.
    #[serde(default = "yes")]
    pub require_plugin: bool,
    /// Seconds an agent has to accept an offer.
    #[serde(default = "default_offer_timeout_s")]
    pub offer_timeout_s: f64,
    /// Seconds before a rejected item is offered to the same agent again.
    #[serde(default = "default_reoffer_block_s")]
    pub reoffer_block_s: f64,
    /// Hours within which a new item of the same customer is a repeat contact.
    #[serde(default = "default_fcr_window_h")]
    pub fcr_window_h: f64,
    /// Longest one call of the department's plugin may run before the decision
    /// falls back to the built-in rule (and the breaker counts a failure), ms.
    /// Default 20: a Rust rule decides a 1,000-item batch in well under 1 ms, and
    /// every call holds the router that the other departments share.
    #[serde(default = "default_call_deadline_ms")]
    pub call_deadline_ms: u64,
    /// Rule time the department's plugin may use per second, ms; past it the
    /// department decides with the built-in rules until the second ends. Default
    /// 250: a quarter of the router's time, so three departments at their limit
    /// still leave the others room. Wall time is measured, so a busy machine
    /// spends the budget faster; a department that routes thousands of items a
    /// second through a plugin may need more.
    #[serde(default = "default_rule_budget_ms")]
    pub rule_budget_ms: u64,
    /// Key/value configuration the plugin reads through `host.config`.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

fn default_call_deadline_ms() -> u64 {
    20
}
fn default_rule_budget_ms() -> u64 {
    250
}

/// One queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueEntry {
    /// Name, unique across departments.
    pub name: Spanned<String>,
    /// Owning department.
    pub department: Spanned<String>,
    /// Skill agents need to serve the queue (default: the queue's name).
    pub skill: Option<String>,
    /// Service-level threshold t, seconds.
    #[serde(default = "default_sl_s")]
    pub service_level_s: f64,
    /// Abandons before this many seconds are short abandons (left out of SL).
    #[serde(default = "default_short_abandon_s")]
    pub short_abandon_s: f64,
}

/// One agent known at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// Login (unique).
    pub name: Spanned<String>,
    /// Group for reports.
    #[serde(default = "default_group")]
    pub group: String,
    /// Skills with proficiency 1-10.
    #[serde(default = "no_skills")]
    pub skills: Spanned<BTreeMap<String, u8>>,
    /// Blending capacity.
    #[serde(default)]
    pub capacity: Capacity,
    /// After-work seconds following each item.
    #[serde(default)]
    pub wrap_up_s: f64,
    /// Presence at start (default offline: the agent logs in through the API).
    #[serde(default = "default_presence")]
    pub state: Presence,
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8080".to_owned())
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("switchyard-data")
}
fn default_tick_ms() -> u64 {
    200
}
fn default_keep_finished() -> usize {
    100_000
}
fn default_snapshot_every() -> u64 {
    100_000
}
fn default_keep_generations() -> usize {
    5
}
fn yes() -> bool {
    true
}
fn default_offer_timeout_s() -> f64 {
    20.0
}
fn default_reoffer_block_s() -> f64 {
    60.0
}
fn default_fcr_window_h() -> f64 {
    24.0
}
fn default_sl_s() -> f64 {
    20.0
}
fn default_short_abandon_s() -> f64 {
    5.0
}
fn no_skills() -> Spanned<BTreeMap<String, u8>> {
    Spanned::new(0..0, BTreeMap::new())
}
fn default_group() -> String {
    "default".to_owned()
}
fn default_presence() -> Presence {
    Presence::Offline
}

/// Longest duration accepted from a request or the config: 366 days. Anything
/// longer is a mistake, and bounding it keeps every `now + duration` far from
/// overflow.
pub const MAX_DURATION_MS: u64 = 366 * 24 * 3600 * 1000;
const MAX_TICK_MS: u64 = 60_000;
const MAX_KEEP_FINISHED: usize = 10_000_000;
const MAX_CONNECTIONS: usize = 1 << 20;
const MAX_EDGE_TIMEOUT_S: f64 = 3600.0;
const MAX_CALL_DEADLINE_MS: u64 = 10_000;
/// Each kept generation holds compiled code and idle instances (a few MB).
const MAX_KEEP_GENERATIONS: usize = 100;

/// `url` with any password replaced by `***`, for messages and logs.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Seconds to milliseconds, refusing negative, non-finite and over-long values
/// (over [`MAX_DURATION_MS`]).
pub(crate) fn seconds_ms(seconds: f64) -> Option<u64> {
    let ms = seconds * 1000.0;
    (ms.is_finite() && ms >= 0.0 && ms <= MAX_DURATION_MS as f64).then(|| ms.round() as u64)
}

impl ServeConfig {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<ServeConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Parse and check `text` (read from `path`, for messages and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<ServeConfig> {
        let fail = |message: String| Error::Config { path: path.to_owned(), message };
        let mut config: ServeConfig = toml::from_str(text).map_err(|e| {
            // Add the line from the span, and the key written on it when toml's
            // message does not name one (e.g. "number too large to fit").
            let message = e.message().trim_end();
            let at = e
                .span()
                .map(|s| {
                    let key = key_on_line(text, s.start)
                        .filter(|k| !message.contains(&format!("`{k}`")))
                        .map(|k| format!("key `{k}`: "))
                        .unwrap_or_default();
                    format!("line {}: {key}", line_of(text, s.start))
                })
                .unwrap_or_default();
            fail(format!("{at}{message}"))
        })?;
        config.path = path.to_owned();
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);

        if config.listen.get_ref().parse::<SocketAddr>().is_err() {
            return Err(fail(format!(
                "line {}: key `listen`: `{}` is not an address like 127.0.0.1:8080",
                at(config.listen.span()),
                config.listen.get_ref()
            )));
        }
        if let Some(store) = &config.store {
            let url = store.get_ref();
            if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
                return Err(fail(format!(
                    "line {}: key `store`: `{}` is not a PostgreSQL URL (postgresql://user@host:port/database); leave `store` out for the embedded store in `data_dir`",
                    at(store.span()),
                    redact_password(url)
                )));
            }
            if let Err(e) = url.parse::<postgres::Config>() {
                return Err(fail(format!("line {}: key `store`: `{}`: {e}", at(store.span()), redact_password(url))));
            }
        }
        for (key, value) in [("lease_check_ms", config.cluster.lease_check_ms), ("follow_ms", config.cluster.follow_ms)]
        {
            if !(10..=60_000).contains(&value) {
                return Err(fail(format!("key `cluster.{key}`: {value} is outside 10-60000")));
            }
        }
        if !(1..=MAX_TICK_MS).contains(&config.tick_ms) {
            return Err(fail(format!("key `tick_ms`: {} is outside 1-{MAX_TICK_MS}", config.tick_ms)));
        }
        if config.keep_finished > MAX_KEEP_FINISHED {
            return Err(fail(format!(
                "key `keep_finished`: {} is over the limit of {MAX_KEEP_FINISHED}",
                config.keep_finished
            )));
        }
        if !(100..=100_000_000).contains(&config.snapshot_every) {
            return Err(fail(format!(
                "key `snapshot_every`: {} is outside 100-100000000 records",
                config.snapshot_every
            )));
        }
        if !(1..=MAX_KEEP_GENERATIONS).contains(&config.keep_generations) {
            return Err(fail(format!(
                "key `keep_generations`: {} is outside 1-{MAX_KEEP_GENERATIONS}",
                config.keep_generations
            )));
        }
        config.check_bounds().map_err(fail)?;
        config.traffic.check().map_err(fail)?;
        let http = &config.http;
        if !(1..=MAX_CONNECTIONS).contains(&http.max_connections) {
            return Err(fail(format!(
                "key `http.max_connections`: {} is outside 1-{MAX_CONNECTIONS}",
                http.max_connections
            )));
        }
        for (key, value) in [
            ("http.idle_timeout_s", http.idle_timeout_s),
            ("http.request_timeout_s", http.request_timeout_s),
            ("http.upload_timeout_s", http.upload_timeout_s),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= MAX_EDGE_TIMEOUT_S) {
                return Err(fail(format!(
                    "key `{key}`: {value} is not a duration between 0 and {MAX_EDGE_TIMEOUT_S} seconds"
                )));
            }
        }
        let mut departments = BTreeMap::new();
        for (i, d) in config.departments.iter().enumerate() {
            let line = at(d.name.span());
            if departments.insert(d.name.get_ref().clone(), ()).is_some() {
                return Err(fail(format!(
                    "line {line}: key `departments[{i}].name`: department `{}` is defined twice",
                    d.name.get_ref()
                )));
            }
            for (key, value) in [
                ("offer_timeout_s", d.offer_timeout_s),
                ("reoffer_block_s", d.reoffer_block_s),
                ("fcr_window_h", d.fcr_window_h * 3600.0),
            ] {
                if seconds_ms(value).is_none() {
                    return Err(fail(format!(
                        "department `{}` (line {line}): key `departments[{i}].{key}`: {value} s is not a duration of at most 366 days",
                        d.name.get_ref()
                    )));
                }
            }
            for (key, value, max) in [
                ("call_deadline_ms", d.call_deadline_ms, MAX_CALL_DEADLINE_MS),
                ("rule_budget_ms", d.rule_budget_ms, 1000),
            ] {
                if !(1..=max).contains(&value) {
                    return Err(fail(format!(
                        "department `{}` (line {line}): key `departments[{i}].{key}`: {value} is outside 1-{max}",
                        d.name.get_ref()
                    )));
                }
            }
            for (key, value) in &d.config {
                if value.is_table() || value.is_array() {
                    return Err(fail(format!(
                        "department `{}` (line {line}): key `departments[{i}].config.{key}`: values must be strings, numbers or booleans",
                        d.name.get_ref()
                    )));
                }
            }
        }
        let mut queues = BTreeMap::new();
        for (i, q) in config.queues.iter().enumerate() {
            if queues.insert(q.name.get_ref().clone(), ()).is_some() {
                return Err(fail(format!(
                    "line {}: key `queues[{i}].name`: queue `{}` is defined twice",
                    at(q.name.span()),
                    q.name.get_ref()
                )));
            }
            if !departments.contains_key(q.department.get_ref()) {
                return Err(fail(format!(
                    "line {}: key `queues[{i}].department`: no department `{}` is defined",
                    at(q.department.span()),
                    q.department.get_ref()
                )));
            }
            for (key, value) in [("service_level_s", q.service_level_s), ("short_abandon_s", q.short_abandon_s)] {
                if seconds_ms(value).is_none() {
                    return Err(fail(format!(
                        "line {}: key `queues[{i}].{key}`: {value} is not a duration of at most 366 days",
                        at(q.name.span())
                    )));
                }
            }
        }
        let mut agents = BTreeMap::new();
        for (i, a) in config.agents.iter().enumerate() {
            if agents.insert(a.name.get_ref().clone(), ()).is_some() {
                return Err(fail(format!(
                    "line {}: key `agents[{i}].name`: agent `{}` is defined twice",
                    at(a.name.span()),
                    a.name.get_ref()
                )));
            }
            for (skill, level) in a.skills.get_ref() {
                if !(1..=10).contains(level) {
                    return Err(fail(format!(
                        "line {}: key `agents[{i}].skills.{skill}`: level {level} is outside 1-10",
                        at(a.skills.span())
                    )));
                }
            }
            if seconds_ms(a.wrap_up_s).is_none() {
                return Err(fail(format!(
                    "line {}: key `agents[{i}].wrap_up_s`: {} is not a duration of at most 366 days",
                    at(a.name.span()),
                    a.wrap_up_s
                )));
            }
        }
        Ok(config)
    }

    /// The config file's folder (base of relative paths).
    pub fn base_dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// `path` resolved against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_owned() } else { self.base_dir().join(path) }
    }
}

/// The dotted key whose value starts at byte `offset`, read from its line
/// (`key = value`, `table = { key = value }`), if it can be told.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let mut path: Vec<String> = Vec::new();
    let mut word = String::new();
    // Each `=` closes the key before it; `,` ends a sibling; `{` opens a level.
    let mut depth_keys: Vec<usize> = Vec::new();
    for c in text[start..offset].chars() {
        match c {
            '=' => {
                path.push(word.trim().trim_matches('"').to_owned());
                word.clear();
            }
            '{' => depth_keys.push(path.len()),
            ',' => {
                let keep = depth_keys.last().copied().unwrap_or(0);
                path.truncate(keep);
                word.clear();
            }
            '}' => {
                let keep = depth_keys.pop().unwrap_or(0);
                path.truncate(keep.saturating_sub(1));
                word.clear();
            }
            c if c.is_ascii_alphanumeric() || "_-\"".contains(c) => word.push(c),
            _ => {}
        }
    }
    (!path.is_empty() && path.iter().all(|k| !k.is_empty())).then(|| path.join("."))
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset.min(text.len())).filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig> {
        ServeConfig::parse(text, Path::new("test.toml"))
    }

    fn message(text: &str) -> String {
        parse(text).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn a_store_that_is_not_postgresql_is_named_without_its_password() {
        let got = message("listen = \"127.0.0.1:0\"\nstore = \"mysql://sy:secret@db/sy\"\n");
        assert!(
            got.starts_with("test.toml: line 2: key `store`: `mysql://sy:***@db/sy` is not a PostgreSQL URL"),
            "{got}"
        );
        assert!(!got.contains("secret"), "{got}");
        let got = message("store = \"postgresql://sy:secret@db:notaport/sy\"\n");
        assert!(got.starts_with("test.toml: line 1: key `store`: `postgresql://sy:***@db:notaport/sy`"), "{got}");
        assert!(!got.contains("secret"), "{got}");
        let config = parse("store = \"postgresql://sy@db:5432/sy\"\n[cluster]\nnode = \"r1\"\n").unwrap();
        assert_eq!(config.cluster.node.as_deref(), Some("r1"));
        assert_eq!(config.cluster.lease_check_ms, 250);
        let got = message("[cluster]\nlease_check_ms = 0\n");
        assert_eq!(got, "test.toml: key `cluster.lease_check_ms`: 0 is outside 10-60000");
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(redact_password("postgresql://u:p@h:1/d"), "postgresql://u:***@h:1/d");
        assert_eq!(redact_password("postgresql://u@h/d"), "postgresql://u@h/d");
        assert_eq!(redact_password("postgresql://h/d"), "postgresql://h/d");
        assert_eq!(redact_password("postgresql://u:p@w@h/d"), "postgresql://u:***@h/d");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let got = message("listen = \"127.0.0.1:0\"\n\n[[departments]]\nname = \"billing\"\nplugn = \"x.wasm\"\n");
        assert!(got.starts_with("test.toml: line 5: unknown field `plugn`"), "{got}");
    }

    #[test]
    fn a_queue_of_an_unknown_department_is_named_with_its_line() {
        let got = message("[[departments]]\nname = \"billing\"\n[[queues]]\nname = \"q\"\ndepartment = \"biling\"\n");
        assert_eq!(got, "test.toml: line 5: key `queues[0].department`: no department `biling` is defined");
    }

    #[test]
    fn a_skill_level_outside_1_to_10_is_refused() {
        let got = message("[[agents]]\nname = \"ann\"\nskills = { billing = 11 }\n");
        assert_eq!(got, "test.toml: line 3: key `agents[0].skills.billing`: level 11 is outside 1-10");
    }

    #[test]
    fn a_number_too_large_names_its_key() {
        assert_eq!(
            message("tick_ms = 18446744073709551615\n"),
            "test.toml: line 1: key `tick_ms`: number too large to fit in target type"
        );
        assert_eq!(
            message("[[agents]]\nname = \"a\"\ncapacity = { chat = 2, voice = 300 }\n"),
            "test.toml: line 3: key `capacity.voice`: invalid value: integer `300`, expected u8"
        );
    }

    #[test]
    fn retention_and_limits_override_the_routers_defaults_within_bounds() {
        let config = parse("[retention]\nalerts = 50\nclosed_case_days = 1\nstatistics_intervals = 4\n[limits]\nattributes_per_item = 8\n").unwrap();
        let options = config.router_options();
        assert_eq!(options.retention.alerts, 50);
        assert_eq!(options.retention.closed_case_ms, 86_400_000);
        assert_eq!(options.metrics.keep_intervals, Some(4));
        assert_eq!(options.limits.attributes_per_item, 8);
        let defaults = parse("").unwrap().router_options();
        assert_eq!(defaults, switchyard_core::router::RouterOptions::default());
        assert_eq!(message("[retention]\nalerts = 0\n"), "test.toml: key `retention.alerts`: 0 is outside 1-100000000");
        assert_eq!(
            message("[retention]\nclosed_case_days = 400\n"),
            "test.toml: key `retention.closed_case_days`: 400 is not a number of days between 0 and 366"
        );
        assert!(message("[limits]\nnope = 1\n").contains("unknown field `nope`"));
    }

    #[test]
    fn plugin_keys_are_checked_and_named() {
        let config = parse("plugin_dir = \"plugins\"\n").unwrap();
        assert_eq!(config.keep_generations, 5, "the default");
        assert_eq!(config.plugin_dir.as_deref(), Some(Path::new("plugins")));
        assert_eq!(message("keep_generations = 0\n"), "test.toml: key `keep_generations`: 0 is outside 1-100");
        assert!(message("plugin_dir = 3\n").contains("key `plugin_dir`"), "{}", message("plugin_dir = 3\n"));
        assert!(parse("[[departments]]\nname = \"b\"\nfixtures = \"b.fixtures.toml\"\n").is_ok());
    }

    #[test]
    fn a_bad_listen_address_is_refused() {
        let got = message("listen = \"localhost\"\n");
        assert_eq!(got, "test.toml: line 1: key `listen`: `localhost` is not an address like 127.0.0.1:8080");
    }

    #[test]
    fn the_bundled_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/switchyard.toml");
        let config = ServeConfig::load(&path).unwrap();
        let departments: Vec<&str> = config.departments.iter().map(|d| d.name.get_ref().as_str()).collect();
        assert_eq!(departments, ["billing", "claims", "tech-support"]);
        assert_eq!(config.listen.get_ref(), "127.0.0.1:8080");
        assert!(config.auth.insecure_local);
    }
}
