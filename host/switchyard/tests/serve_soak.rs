//! Soak test of `switchyard serve` (issue #13, item 6): the real binary on a
//! loopback port under a contact centre's day — an integration client posting
//! items at a steady rate, agent desktops polling, accepting, rejecting,
//! completing, going away and coming back — while the test watches the
//! daemon's memory, its journal on disk, throughput and per-route latency.
//!
//! `#[ignore]`d: it runs for a long time at full size. Run it with
//!
//! ```text
//! cargo test --release -p switchyard --test serve_soak -- --ignored --nocapture
//! SWITCHYARD_SOAK_ITEMS=5000 cargo test --release -p switchyard --test serve_soak -- --ignored --nocapture
//! ```
//!
//! Sizes and pacing come from the environment (defaults in brackets):
//! `SWITCHYARD_SOAK_ITEMS` [200000], `SWITCHYARD_SOAK_AGENTS` [500],
//! `SWITCHYARD_SOAK_QUEUES` [50], `SWITCHYARD_SOAK_WORKERS` (agent threads) [8],
//! `SWITCHYARD_SOAK_RATE` (items/s offered by the integration client) [150],
//! `SWITCHYARD_SOAK_IN_FLIGHT` (most unfinished items before the integration
//! client waits) [1500], `SWITCHYARD_SOAK_POLL_MS` (desktop poll period) [1000],
//! `SWITCHYARD_SOAK_MAX_S` (hard stop) [14400], `SWITCHYARD_SOAK_WITHDRAW_EVERY`
//! (the integration client withdraws about one item in N soon after posting it,
//! often while it is offered; 0 = never) [60].
//!
//! It prints a report at 10 %, 50 % and 100 % of the items posted (RSS of the
//! daemon, journal size, items/s, p50/p99 per route kind) and a progress line
//! every minute, then escalations and alerts once the work has drained. It fails
//! when the daemon's RSS grew by more than 10 % from the 50 % to the 100 % mark,
//! when any request got a 5xx (or a 401/403/422, which would mean the driver
//! itself is wrong), or when a connection failed.

mod serve_common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serve_common::{ADMIN, Daemon, INTEGRATION, fresh_dir};

// ----- sizes --------------------------------------------------------------------

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
struct Sizes {
    items: u64,
    agents: usize,
    queues: usize,
    workers: usize,
    rate: f64,
    in_flight: u64,
    poll: Duration,
    max_run: Duration,
    withdraw_every: u64,
}

impl Sizes {
    fn from_env() -> Sizes {
        Sizes {
            items: env_or("SWITCHYARD_SOAK_ITEMS", 200_000u64).max(1),
            agents: env_or("SWITCHYARD_SOAK_AGENTS", 500usize).max(3),
            queues: env_or("SWITCHYARD_SOAK_QUEUES", 50usize).max(3),
            workers: env_or("SWITCHYARD_SOAK_WORKERS", 8usize).max(1),
            rate: env_or("SWITCHYARD_SOAK_RATE", 150.0f64).max(1.0),
            in_flight: env_or("SWITCHYARD_SOAK_IN_FLIGHT", 1_500u64).max(1),
            poll: Duration::from_millis(env_or("SWITCHYARD_SOAK_POLL_MS", 1_000u64).max(10)),
            max_run: Duration::from_secs(env_or("SWITCHYARD_SOAK_MAX_S", 14_400u64)),
            withdraw_every: env_or("SWITCHYARD_SOAK_WITHDRAW_EVERY", 60u64),
        }
    }
}

// ----- the contact centre -------------------------------------------------------

/// The three departments: billing on the billing plugin, claims on the claims
/// plugin (its `escalate` hook acts on cases by due time), tech support on the
/// built-in rules.
const DEPARTMENTS: [&str; 3] = ["billing", "claims", "tech-support"];

/// Queue `i` belongs to department `i % 3`; its skill is its name.
fn queue_name(i: usize) -> String {
    format!("{}-{:02}", DEPARTMENTS[i % 3], i / 3)
}

/// Queues of department `d`.
fn queues_of(d: usize, queues: usize) -> Vec<String> {
    (0..queues).filter(|i| i % 3 == d).map(queue_name).collect()
}

/// Share of the items (and so of the agents) of each department, percent.
const DEMAND: [u64; 3] = [45, 15, 40];

/// Agent `k`'s department, index within it and the department's headcount:
/// agents are split by [`DEMAND`] (at least one each), billing first.
fn agent_department(k: usize, agents: usize) -> (usize, usize, usize) {
    let billing = (agents * DEMAND[0] as usize / 100).max(1);
    let claims = (agents * DEMAND[1] as usize / 100).max(1);
    let tech = agents.saturating_sub(billing + claims).max(1);
    if k < billing {
        (0, k, billing)
    } else if k < billing + claims {
        (1, k - billing, claims)
    } else {
        (2, k - billing - claims, tech)
    }
}

/// Login of agent `k`.
fn agent_name(k: usize) -> String {
    format!("agent-{k:04}")
}

/// Highest skill level of claims agents: "hard" claims items ask for one more,
/// so they wait until the claims plugin relaxes the levels (an escalation).
const CLAIMS_LEVEL: u8 = 8;

/// The soak compresses days of a contact centre's traffic into minutes, so
/// the time-based retention windows (closed cases 7 days, repeat contacts 24 h,
/// finished items 100,000) are scaled down with it: memory has to stop growing
/// once the windows are full, and with the defaults they would not fill within
/// the run. `SWITCHYARD_SOAK_RETENTION_S` [180] sets the windows.
fn soak_config(sizes: &Sizes) -> String {
    let window_s: f64 = env_or("SWITCHYARD_SOAK_RETENTION_S", 180.0f64).max(1.0);
    let mut text = format!(
        r#"listen = "127.0.0.1:0"
data_dir = "data"
tick_ms = 50
keep_finished = {keep_finished}

[auth]
admin_token = "{ADMIN}"
integration_token = "{INTEGRATION}"

[retention]
closed_case_days = {closed_case_days}

[[departments]]
name = "billing"
plugin = {billing:?}
offer_timeout_s = 20
fcr_window_h = {fcr_window_h}

[[departments]]
name = "claims"
plugin = {claims:?}
offer_timeout_s = 20
fcr_window_h = {fcr_window_h}

[[departments]]
name = "tech-support"
offer_timeout_s = 20
fcr_window_h = {fcr_window_h}
"#,
        billing = switchyard_plugin_artifacts::BILLING,
        claims = switchyard_plugin_artifacts::CLAIMS,
        keep_finished = (window_s * sizes.rate) as u64,
        closed_case_days = window_s / 86_400.0,
        fcr_window_h = window_s / 3_600.0,
    );
    for i in 0..sizes.queues {
        text.push_str(&format!(
            "\n[[queues]]\nname = \"{}\"\ndepartment = \"{}\"\nservice_level_s = {}\n",
            queue_name(i),
            DEPARTMENTS[i % 3],
            if i % 3 == 1 { 3600 } else { 20 }
        ));
    }
    text
}

/// `PUT /v1/agents/{name}` body of agent `k`: skills on a few queues of its
/// department (every queue is covered), capacity for its department's channels.
fn agent_body(k: usize, sizes: &Sizes) -> Value {
    let (d, local, in_department) = agent_department(k, sizes.agents);
    let queues = queues_of(d, sizes.queues);
    let mut skills = BTreeMap::new();
    let mut rng = Rng::new(k as u64 + 1);
    for t in 0..4 {
        let q = (local + t * 7) % queues.len();
        let level = if d == 1 { CLAIMS_LEVEL } else { 3 + rng.below(6) as u8 };
        skills.insert(queues[q].clone(), level);
    }
    for (j, q) in queues.iter().enumerate() {
        if j % in_department.max(1) == local % in_department.max(1) {
            skills.entry(q.clone()).or_insert(if d == 1 { CLAIMS_LEVEL } else { 5 });
        }
    }
    let capacity = match d {
        0 => json!({ "voice": 1, "chat": 3, "email": 0, "digital": 3, "case": 0 }),
        1 => json!({ "voice": 0, "chat": 0, "email": 0, "digital": 0, "case": 2 }),
        _ => json!({ "voice": 1, "chat": 2, "email": 2, "digital": 3, "case": 0 }),
    };
    json!({
        "group": DEPARTMENTS[d],
        "skills": skills,
        "capacity": capacity,
        "wrap_up_s": if k.is_multiple_of(5) { 0.5 } else { 0.0 },
    })
}

/// The `n`th item the integration client posts.
fn item_body(n: u64, sizes: &Sizes) -> Value {
    let mut rng = Rng::new(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5);
    let customer = format!("cust-{}", rng.below(50_000));
    // About three contacts per case: repeat contacts and hand-offs share it.
    let case = format!("case-{}", n / 3);
    let pick = rng.below(100);
    let d = if pick < DEMAND[0] {
        0
    } else if pick < DEMAND[0] + DEMAND[1] {
        1
    } else {
        2
    };
    let queues = queues_of(d, sizes.queues);
    let queue = queues[rng.below(queues.len() as u64) as usize].clone();
    match d {
        0 => {
            let channel = if rng.below(3) == 0 { "chat" } else { "voice" };
            let tier = ["standard", "silver", "gold", "platinum"][rng.below(4) as usize];
            let mut attributes = json!({ "amount": format!("{}", rng.below(2_000)), "ref": format!("r{n}") });
            if rng.below(20) == 0 {
                attributes["reason"] = json!("dispute");
            }
            json!({
                "department": "billing", "queue": queue, "channel": channel, "tier": tier,
                "attributes": attributes, "customer": customer, "case": case,
            })
        }
        1 => {
            // A third are "hard": they need a level nobody has and a due time a
            // few seconds away, so the claims plugin escalates them (raise, then
            // relax the level, which lets them through).
            let hard = rng.below(3) == 0;
            let (skills, due) = if hard {
                (json!({ queue.clone(): CLAIMS_LEVEL + 1 }), 2.0 + rng.below(4) as f64)
            } else {
                (json!({}), 3_600.0 + rng.below(86_400) as f64)
            };
            json!({
                "department": "claims", "queue": queue, "channel": "case", "skills": skills,
                "attributes": { "ref": format!("r{n}") }, "customer": customer, "case": case,
                "due_in_s": due,
            })
        }
        _ => {
            let channel = ["voice", "chat", "email"][rng.below(3) as usize];
            json!({
                "department": "tech-support", "queue": queue, "channel": channel,
                "tier": if rng.below(10) == 0 { "gold" } else { "standard" },
                "attributes": { "ref": format!("r{n}"), "product": format!("p{}", rng.below(12)) },
                "customer": customer, "case": case,
            })
        }
    }
}

/// A hand-off from billing to claims in the same case (on a few completions).
fn handoff_body(item: u64, sizes: &Sizes) -> Value {
    let queues = queues_of(1, sizes.queues);
    json!({
        "department": "claims", "queue": queues[item as usize % queues.len()], "channel": "case",
        "attributes": { "ref": format!("handoff-{item}") }, "due_in_s": 7_200.0,
    })
}

// ----- small deterministic randomness -------------------------------------------

/// splitmix64: enough randomness for a load driver, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo).max(1)))
    }
}

// ----- HTTP, statistics and tokens ----------------------------------------------

/// Latency and status counts per route kind, shared by every driver thread.
#[derive(Default)]
struct Stats {
    inner: Mutex<StatsInner>,
}

#[derive(Default)]
struct StatsInner {
    latency_us: BTreeMap<&'static str, Vec<u32>>,
    statuses: BTreeMap<(&'static str, u16), u64>,
    transport_errors: Vec<String>,
}

impl Stats {
    fn record(&self, kind: &'static str, elapsed: Duration, status: u16) {
        let mut s = self.inner.lock().unwrap();
        s.latency_us.entry(kind).or_default().push(elapsed.as_micros().min(u32::MAX as u128) as u32);
        *s.statuses.entry((kind, status)).or_default() += 1;
    }
    fn transport_error(&self, kind: &'static str, error: String) {
        let mut s = self.inner.lock().unwrap();
        if s.transport_errors.len() < 20 {
            s.transport_errors.push(format!("{kind}: {error}"));
        } else {
            s.transport_errors.push(String::new());
        }
    }
    /// One line per route kind: count, p50, p99, max.
    fn latency_table(&self) -> String {
        let s = self.inner.lock().unwrap();
        let mut out = String::new();
        for (kind, samples) in &s.latency_us {
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let at =
                |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1] as f64 / 1e3;
            out.push_str(&format!(
                "    {kind:<24} n={:<8} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>9.2} ms\n",
                sorted.len(),
                at(0.50),
                at(0.99),
                at(1.0)
            ));
        }
        out
    }
    /// Counts of every non-2xx status, by route kind.
    fn refusals(&self) -> BTreeMap<(&'static str, u16), u64> {
        let s = self.inner.lock().unwrap();
        s.statuses.iter().filter(|((_, status), _)| !(200..300).contains(status)).map(|(k, v)| (*k, *v)).collect()
    }
    fn transport_errors(&self) -> Vec<String> {
        self.inner.lock().unwrap().transport_errors.clone()
    }
}

/// One keep-alive connection pool. Each driver thread has its own: the agent of
/// `serve_common` keeps only 3 idle connections per host, so a dozen threads on
/// it would open a new connection for most requests.
#[derive(Clone)]
struct Http {
    base: String,
    agent: ureq::Agent,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            base: base.to_owned(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }
}

/// A client bound to one bearer token; every call is timed into [`Stats`].
#[derive(Clone)]
struct Authed {
    http: Http,
    token: String,
    stats: Arc<Stats>,
}

impl Authed {
    /// `method` `path` with an optional JSON body; `None` when the connection failed.
    fn call(&self, kind: &'static str, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let url = format!("{}{path}", self.http.base);
        let auth = format!("Bearer {}", self.token);
        let started = Instant::now();
        let result = match (method, body) {
            ("GET", _) => self.http.agent.get(&url).header("authorization", &auth).call(),
            ("DELETE", _) => self.http.agent.delete(&url).header("authorization", &auth).call(),
            ("POST", Some(b)) => self.http.agent.post(&url).header("authorization", &auth).send_json(b),
            ("POST", None) => self.http.agent.post(&url).header("authorization", &auth).send_empty(),
            ("PUT", Some(b)) => self.http.agent.put(&url).header("authorization", &auth).send_json(b),
            (m, _) => panic!("unsupported method {m}"),
        };
        let mut response = match result {
            Ok(r) => r,
            Err(e) => {
                self.stats.transport_error(kind, e.to_string());
                return None;
            }
        };
        let status = response.status().as_u16();
        let text = match response.body_mut().read_to_string() {
            Ok(t) => t,
            Err(e) => {
                self.stats.transport_error(kind, e.to_string());
                return None;
            }
        };
        self.stats.record(kind, started.elapsed(), status);
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// ALL of the drivers' token handling: the integration token creates and
/// withdraws items, each agent acts with its own token (issued by the admin
/// through `POST /v1/agents/{name}/token`), the admin registers agents and
/// reads queues and `/metrics`.
struct Tokens {
    admin: String,
    integration: String,
    agents: Mutex<HashMap<String, String>>,
}

impl Tokens {
    fn today() -> Tokens {
        Tokens { admin: ADMIN.to_owned(), integration: INTEGRATION.to_owned(), agents: Mutex::new(HashMap::new()) }
    }

    fn admin_client(&self, http: &Http, stats: &Arc<Stats>) -> Authed {
        Authed { http: http.clone(), token: self.admin.clone(), stats: stats.clone() }
    }

    fn integration_client(&self, http: &Http, stats: &Arc<Stats>) -> Authed {
        Authed { http: http.clone(), token: self.integration.clone(), stats: stats.clone() }
    }

    /// Get agent `name` a token of their own (after registering them): the
    /// admin issues it; the daemon keeps only its hash.
    fn issue_agent_token(&self, admin: &Authed, name: &str) {
        let path = format!("/v1/agents/{name}/token");
        let (status, reply) = admin
            .call("POST agents/token", "POST", &path, None)
            .unwrap_or_else(|| panic!("issuing a token to {name}: connection failed"));
        assert_eq!(status, 201, "issuing a token to {name}: {reply}");
        let token = reply["token"].as_str().expect("a token").to_owned();
        self.agents.lock().unwrap().insert(name.to_owned(), token);
    }

    /// A client acting as agent `name` (their state, desktop, offers, items).
    fn agent_client(&self, http: &Http, stats: &Arc<Stats>, name: &str) -> Authed {
        let token = self
            .agents
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no token issued for agent {name}"));
        Authed { http: http.clone(), token, stats: stats.clone() }
    }
}

// ----- progress shared by the drivers -------------------------------------------

#[derive(Default)]
struct Progress {
    /// Items the integration client tried to post.
    attempted: AtomicU64,
    /// Items that exist: 201 answers plus hand-off items made by completions.
    created: AtomicU64,
    /// Items completed or withdrawn.
    finished: AtomicU64,
    completed: AtomicU64,
    withdrawn: AtomicU64,
    rejected: AtomicU64,
    away_toggles: AtomicU64,
    missed_offer_recoveries: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    fn unfinished(&self) -> u64 {
        self.created.load(Ordering::SeqCst).saturating_sub(self.finished.load(Ordering::SeqCst))
    }
}

// ----- the integration client ---------------------------------------------------

/// Post `sizes.items` items at `sizes.rate` per second, waiting while more than
/// `sizes.in_flight` are unfinished; withdraw about one in `sizes.withdraw_every`
/// soon after posting (the customer hung up). Stops by itself at the count, the stop flag or `until`.
fn integration(client: Authed, sizes: Sizes, progress: Arc<Progress>, until: Instant) {
    let interval = Duration::from_secs_f64(1.0 / sizes.rate);
    let mut next = Instant::now();
    let mut recent: Vec<u64> = Vec::new();
    let mut rng = Rng::new(7);
    for n in 0..sizes.items {
        while progress.unfinished() >= sizes.in_flight
            && !progress.stop.load(Ordering::SeqCst)
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        if progress.stop.load(Ordering::SeqCst) || Instant::now() >= until {
            return;
        }
        let reply = client.call("POST /v1/items", "POST", "/v1/items", Some(&item_body(n, &sizes)));
        progress.attempted.fetch_add(1, Ordering::SeqCst);
        if let Some((201, body)) = reply {
            progress.created.fetch_add(1, Ordering::SeqCst);
            if let Some(id) = body["id"].as_u64() {
                recent.push(id);
                if recent.len() > 8 {
                    recent.remove(0);
                }
            }
        }
        if sizes.withdraw_every > 0 && rng.below(sizes.withdraw_every) == 0 && recent.len() > 2 {
            let id = recent.remove(0);
            if let Some((200, _)) = client.call("DELETE /v1/items/{id}", "DELETE", &format!("/v1/items/{id}"), None) {
                progress.withdrawn.fetch_add(1, Ordering::SeqCst);
                progress.finished.fetch_add(1, Ordering::SeqCst);
            }
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            // Behind (the daemon is slower than the rate): no catch-up burst.
            next = now;
        }
    }
}

// ----- agent workers ------------------------------------------------------------

struct SimAgent {
    name: String,
    department: usize,
    client: Authed,
    /// What the agent wants to be: available, or away until `back_at`.
    back_at: Option<Instant>,
    next_poll: Instant,
    /// Accepted items and when the agent will be done with them.
    holding: HashMap<u64, Instant>,
}

/// How long an agent works on an item of `channel`.
fn handling_time(rng: &mut Rng, channel: &str) -> Duration {
    match channel {
        "voice" => rng.millis(800, 2_500),
        "chat" => rng.millis(1_000, 3_000),
        "email" => rng.millis(500, 1_500),
        _ => rng.millis(1_000, 3_000),
    }
}

fn set_state(a: &SimAgent, state: &str) -> bool {
    matches!(
        a.client.call(
            "POST agents/state",
            "POST",
            &format!("/v1/agents/{}/state", a.name),
            Some(&json!({ "state": state })),
        ),
        Some((200, _))
    )
}

/// One look at agent `a`'s desktop and whatever they do about it.
fn step(a: &mut SimAgent, rng: &mut Rng, sizes: &Sizes, progress: &Progress) {
    let now = Instant::now();
    if let Some(back) = a.back_at {
        if now < back {
            a.next_poll = back;
            return;
        }
        if set_state(a, "available") {
            a.back_at = None;
        }
    }
    let Some((200, desk)) = a.client.call("GET agents/desktop", "GET", &format!("/v1/agents/{}/desktop", a.name), None)
    else {
        a.next_poll = now + sizes.poll;
        return;
    };
    if desk["state"] == "away" && a.back_at.is_none() {
        // Missed an offer (the daemon set them away): back to work.
        progress.missed_offer_recoveries.fetch_add(1, Ordering::SeqCst);
        set_state(a, "available");
    }
    let items = desk["items"].as_array().cloned().unwrap_or_default();
    let mut seen = HashSet::new();
    for item in &items {
        let Some(id) = item["id"].as_u64() else {
            continue;
        };
        seen.insert(id);
        match item["status"].as_str() {
            Some("offered") => {
                if rng.chance(0.08) {
                    if let Some((200, _)) =
                        a.client.call("POST offers/reject", "POST", &format!("/v1/offers/{id}/reject"), None)
                    {
                        progress.rejected.fetch_add(1, Ordering::SeqCst);
                    }
                } else if let Some((200, _)) =
                    a.client.call("POST offers/accept", "POST", &format!("/v1/offers/{id}/accept"), None)
                {
                    let channel = item["channel"].as_str().unwrap_or("voice");
                    a.holding.insert(id, now + handling_time(rng, channel));
                }
            }
            Some("active") => {
                let channel = item["channel"].as_str().unwrap_or("voice");
                let done_at = *a.holding.entry(id).or_insert_with(|| now + handling_time(rng, channel));
                if now >= done_at {
                    let resolved = !rng.chance(0.15);
                    let mut body = json!({ "resolved": resolved });
                    if a.department == 0 && rng.chance(0.02) {
                        body["handoff"] = handoff_body(id, sizes);
                    }
                    if let Some((200, reply)) =
                        a.client.call("POST items/complete", "POST", &format!("/v1/items/{id}/complete"), Some(&body))
                    {
                        progress.completed.fetch_add(1, Ordering::SeqCst);
                        progress.finished.fetch_add(1, Ordering::SeqCst);
                        if reply["handoff_item"].as_u64().is_some() {
                            progress.created.fetch_add(1, Ordering::SeqCst);
                        }
                        a.holding.remove(&id);
                        seen.remove(&id);
                    }
                }
            }
            _ => {}
        }
    }
    a.holding.retain(|id, _| seen.contains(id));
    // An idle agent now and then takes a break.
    if items.is_empty() && a.back_at.is_none() && rng.chance(0.01) && set_state(a, "away") {
        progress.away_toggles.fetch_add(1, Ordering::SeqCst);
        a.back_at = Some(now + rng.millis(3_000, 15_000));
    }
    let jitter = rng.millis(0, sizes.poll.as_millis() as u64 / 5 + 1);
    let mut next = now + sizes.poll - sizes.poll / 10 + jitter;
    for done_at in a.holding.values() {
        next = next.min(*done_at);
    }
    if let Some(back) = a.back_at {
        next = next.max(back);
    }
    a.next_poll = next.max(now + Duration::from_millis(5));
}

/// Log `agents` in and run their desktops until the stop flag.
fn worker(mut agents: Vec<SimAgent>, seed: u64, sizes: Sizes, progress: Arc<Progress>) {
    let mut rng = Rng::new(seed);
    for a in &agents {
        set_state(a, "available");
    }
    while !progress.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let mut soonest = now + sizes.poll;
        for a in agents.iter_mut() {
            if progress.stop.load(Ordering::SeqCst) {
                break;
            }
            if a.next_poll <= Instant::now() {
                step(a, &mut rng, &sizes, &progress);
            }
            soonest = soonest.min(a.next_poll);
        }
        let now = Instant::now();
        if soonest > now {
            std::thread::sleep((soonest - now).min(Duration::from_millis(100)));
        }
    }
}

// ----- measurements -------------------------------------------------------------

/// Memory of process `pid` from `/proc/PID/status`, KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// `VmRSS`: resident set (anonymous + file-backed + shared).
    rss: u64,
    /// `VmHWM`: peak resident set.
    peak: u64,
    /// `RssAnon`: the heap and other anonymous memory (what a leak grows).
    anon: u64,
    /// `RssFile`: mapped files (the binary, compiled plugin code).
    file: u64,
}

fn memory_kib(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory { rss: field("VmRSS:"), peak: field("VmHWM:"), anon: field("RssAnon:"), file: field("RssFile:") }
}

/// Bytes of every file under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A counter or gauge from `/metrics` (summed over its label sets).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metrics_text(admin: &Authed) -> String {
    // /metrics is open today; the admin token is harmless there.
    let url = format!("{}/metrics", admin.http.base);
    let started = Instant::now();
    match admin.http.agent.get(&url).header("authorization", &format!("Bearer {}", admin.token)).call() {
        Ok(mut r) => {
            let status = r.status().as_u16();
            admin.stats.record("GET /metrics", started.elapsed(), status);
            r.body_mut().read_to_string().unwrap_or_default()
        }
        Err(e) => {
            admin.stats.transport_error("GET /metrics", e.to_string());
            String::new()
        }
    }
}

struct Mark {
    memory: Memory,
}

fn report(label: &str, daemon: &Daemon, admin: &Authed, started: Instant, progress: &Progress, stats: &Stats) -> Mark {
    let memory = memory_kib(daemon.pid());
    let journal = disk_bytes(&daemon.dir.join("data"));
    let secs = started.elapsed().as_secs_f64();
    let attempted = progress.attempted.load(Ordering::SeqCst);
    let created = progress.created.load(Ordering::SeqCst);
    let finished = progress.finished.load(Ordering::SeqCst);
    let metrics = metrics_text(admin);
    println!(
        "soak {label}: {secs:.1} s, items posted {attempted} (created {created}, finished {finished}, unfinished {}), {:.1} items/s posted, {:.1} items/s finished; daemon RSS {:.1} MiB (anon {:.1}, file {:.1}, peak {:.1} MiB); journal on disk {:.1} MiB; journal records {}; escalations {}, alerts {}\n  latency by route:\n{}",
        created.saturating_sub(finished),
        attempted as f64 / secs,
        finished as f64 / secs,
        memory.rss as f64 / 1024.0,
        memory.anon as f64 / 1024.0,
        memory.file as f64 / 1024.0,
        memory.peak as f64 / 1024.0,
        journal as f64 / (1024.0 * 1024.0),
        metric(&metrics, "switchyard_journal_records_total"),
        metric(&metrics, "switchyard_escalations_total"),
        metric(&metrics, "switchyard_alerts_total"),
        stats.latency_table(),
    );
    Mark { memory }
}

// ----- the test -----------------------------------------------------------------

/// Scenario: a day in a contact centre of `SWITCHYARD_SOAK_AGENTS` agents on
/// `SWITCHYARD_SOAK_QUEUES` queues over three departments, `SWITCHYARD_SOAK_ITEMS`
/// items posted at a steady rate and worked by the agents until none is left.
/// The daemon's memory must level off (RSS at 100 % of the items within 10 % of
/// RSS at 50 %) and no request may fail with a server error.
#[test]
#[ignore = "soak: long; run with --ignored --nocapture (sizes from SWITCHYARD_SOAK_*)"]
fn soak_a_contact_centre_day_and_watch_memory_journal_and_latency() {
    let sizes = Sizes::from_env();
    println!("soak sizes: {sizes:?} ({} build)", if cfg!(debug_assertions) { "debug" } else { "release" });
    let dir = fresh_dir("serve-soak");
    let daemon = Daemon::start(&dir, Some(&soak_config(&sizes)));
    let stats = Arc::new(Stats::default());
    let progress = Arc::new(Progress::default());
    let tokens = Arc::new(Tokens::today());
    let http = Http::new(&daemon.base);
    let admin = tokens.admin_client(&http, &stats);

    // Register the agents (4 threads) and issue their tokens.
    let setup = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4 {
            let tokens = tokens.clone();
            let admin = tokens.admin_client(&Http::new(&daemon.base), &stats);
            s.spawn(move || {
                for k in (t..sizes.agents).step_by(4) {
                    let name = agent_name(k);
                    let reply = admin.call(
                        "PUT /v1/agents/{name}",
                        "PUT",
                        &format!("/v1/agents/{name}"),
                        Some(&agent_body(k, &sizes)),
                    );
                    assert!(matches!(reply, Some((201, _))), "register {name}: {reply:?}");
                    tokens.issue_agent_token(&admin, &name);
                }
            });
        }
    });
    println!("soak: {} agents registered in {:.1} s", sizes.agents, setup.elapsed().as_secs_f64());

    let started = Instant::now();
    let until = started + sizes.max_run;
    // Agent workers: agent k goes to worker k % workers.
    let workers: Vec<_> = (0..sizes.workers)
        .map(|w| {
            let http = Http::new(&daemon.base);
            let agents: Vec<SimAgent> = (w..sizes.agents)
                .step_by(sizes.workers)
                .map(|k| {
                    let name = agent_name(k);
                    SimAgent {
                        client: tokens.agent_client(&http, &stats, &name),
                        name,
                        department: agent_department(k, sizes.agents).0,
                        back_at: None,
                        next_poll: Instant::now(),
                        holding: HashMap::new(),
                    }
                })
                .collect();
            let progress = progress.clone();
            std::thread::spawn(move || worker(agents, 1_000 + w as u64, sizes, progress))
        })
        .collect();
    let poster = {
        let client = tokens.integration_client(&Http::new(&daemon.base), &stats);
        let progress = progress.clone();
        std::thread::spawn(move || integration(client, sizes, progress, until))
    };

    // Watch: a report at 10 %, 50 % and 100 % of the items posted, a progress
    // line every minute, a supervisor's look at the queues every 5 s.
    let marks_at = [(10, (sizes.items / 10).max(1)), (50, (sizes.items / 2).max(1)), (100, sizes.items)];
    let mut marks: BTreeMap<u32, Mark> = BTreeMap::new();
    let mut last_progress = Instant::now();
    let mut last_queues = Instant::now();
    loop {
        let attempted = progress.attempted.load(Ordering::SeqCst);
        for (percent, count) in marks_at {
            if attempted >= count && !marks.contains_key(&percent) {
                let mark = report(&format!("{percent} %"), &daemon, &admin, started, &progress, &stats);
                marks.insert(percent, mark);
            }
        }
        if poster.is_finished() {
            break;
        }
        if last_queues.elapsed() >= Duration::from_secs(5) {
            admin.call("GET /v1/queues", "GET", "/v1/queues", None);
            last_queues = Instant::now();
        }
        if last_progress.elapsed() >= Duration::from_secs(60) {
            let rss = memory_kib(daemon.pid()).rss;
            println!(
                "soak progress: {:.0} s, posted {attempted}, finished {}, unfinished {}, RSS {:.1} MiB, journal {:.1} MiB",
                started.elapsed().as_secs_f64(),
                progress.finished.load(Ordering::SeqCst),
                progress.unfinished(),
                rss as f64 / 1024.0,
                disk_bytes(&daemon.dir.join("data")) as f64 / (1024.0 * 1024.0),
            );
            last_progress = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    poster.join().unwrap();
    let posted_all = progress.attempted.load(Ordering::SeqCst) >= sizes.items;

    // Drain: the agents finish what is left (bounded).
    let drain_until = (Instant::now() + Duration::from_secs(120)).min(until);
    while progress.unfinished() > 0 && Instant::now() < drain_until {
        std::thread::sleep(Duration::from_millis(100));
    }
    progress.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }

    let end = report("end (drained)", &daemon, &admin, started, &progress, &stats);
    let metrics = metrics_text(&admin);
    let (_, queues) = admin.call("GET /v1/queues", "GET", "/v1/queues", None).unwrap_or((0, Value::Null));
    let waiting: u64 =
        queues.as_array().map(|qs| qs.iter().filter_map(|q| q["live"]["waiting"].as_u64()).sum()).unwrap_or(0);
    println!(
        "soak end: escalation steps {}, supervisor alerts {}, exceptions {}, still waiting {waiting}, unfinished {}; completed {}, withdrawn {}, rejected offers {}, away breaks {}, back from a missed offer {}; end RSS {:.1} MiB",
        metric(&metrics, "switchyard_escalations_total"),
        metric(&metrics, "switchyard_alerts_total"),
        metric(&metrics, "switchyard_exceptions"),
        progress.unfinished(),
        progress.completed.load(Ordering::SeqCst),
        progress.withdrawn.load(Ordering::SeqCst),
        progress.rejected.load(Ordering::SeqCst),
        progress.away_toggles.load(Ordering::SeqCst),
        progress.missed_offer_recoveries.load(Ordering::SeqCst),
        end.memory.rss as f64 / 1024.0,
    );
    let refusals = stats.refusals();
    println!("soak non-2xx answers by route: {refusals:?}");

    // Verdicts.
    let transport = stats.transport_errors();
    assert!(
        transport.is_empty(),
        "{} requests failed to connect or read: {:?}",
        transport.len(),
        &transport[..transport.len().min(20)]
    );
    let server_errors: Vec<_> = refusals.iter().filter(|((_, s), _)| *s >= 500).collect();
    assert!(server_errors.is_empty(), "server errors: {server_errors:?}");
    // An agent answering an offer that timed out (or was withdrawn) an instant
    // before gets 403: the item is no longer offered to it. That race is part
    // of a desktop's life; any other 401/403/422 is the driver's mistake.
    let offer_race = |route: &str, status: u16| status == 403 && route.starts_with("POST offers/");
    let driver_errors: Vec<_> =
        refusals.iter().filter(|((route, s), _)| matches!(s, 401 | 403 | 422) && !offer_race(route, *s)).collect();
    assert!(
        driver_errors.is_empty(),
        "the driver sent requests the daemon refused as unauthorised or malformed: {driver_errors:?}"
    );
    assert!(
        posted_all,
        "stopped at SWITCHYARD_SOAK_MAX_S after {} of {} items",
        progress.attempted.load(Ordering::SeqCst),
        sizes.items
    );
    let (half, full) = (marks[&50].memory.rss, marks[&100].memory.rss);
    let growth = full as f64 / half.max(1) as f64 - 1.0;
    println!(
        "soak RSS 50 % -> 100 %: {:.1} -> {:.1} MiB ({:+.1} %); anonymous {:.1} -> {:.1} MiB",
        half as f64 / 1024.0,
        full as f64 / 1024.0,
        growth * 100.0,
        marks[&50].memory.anon as f64 / 1024.0,
        marks[&100].memory.anon as f64 / 1024.0,
    );
    assert!(
        growth <= 0.10,
        "the daemon's RSS grew {:.1} % from 50 % to 100 % of the items ({half} -> {full} KiB)",
        growth * 100.0
    );
}
