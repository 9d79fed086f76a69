//! Shared by the serve tests: start the real `switchyard` binary on a loopback
//! port with a config written for the test, and talk JSON to it over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub mod pg;

/// Admin token used by the tests' configs.
pub const ADMIN: &str = "admin-token-for-tests";
/// Supervisor token used by the tests' configs.
pub const SUPERVISOR: &str = "supervisor-token-for-tests";
/// Integration (gateway) token used by the tests' configs.
pub const INTEGRATION: &str = "integration-token-for-tests";

/// A config with two departments (billing with a plugin slot, claims), three
/// queues, tokens, and `extra` appended (agents, plugins).
pub fn config(extra: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:0"
data_dir = "data"
tick_ms = 50

[auth]
admin_token = "{ADMIN}"
supervisor_token = "{SUPERVISOR}"
integration_token = "{INTEGRATION}"

[[departments]]
name = "billing"
offer_timeout_s = 30

[[departments]]
name = "claims"

[[queues]]
name = "billing-general"
department = "billing"
skill = "billing"
service_level_s = 20

[[queues]]
name = "billing-disputes"
department = "billing"
skill = "disputes"

[[queues]]
name = "claims"
department = "claims"
service_level_s = 3600
{extra}"#
    )
}

/// A fresh, empty folder for one test.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every item a daemon knows, by id (ids are dense from 1; read until 30
/// ids in a row are unknown): each item's JSON as `GET /v1/items/{id}`
/// answers it.
pub fn all_items(client: &Client) -> std::collections::BTreeMap<u64, Value> {
    let mut found = std::collections::BTreeMap::new();
    let mut misses = 0;
    for id in 1.. {
        let (status, item) = client.get(&format!("/v1/items/{id}"));
        if status == 404 {
            misses += 1;
            if misses > 30 {
                break;
            }
            continue;
        }
        assert_eq!(status, 200, "item {id}: {item}");
        misses = 0;
        found.insert(id, item);
    }
    found
}

/// An item's `ref` attribute ("" without one: finished items keep no attributes).
pub fn reference(item: &Value) -> String {
    item["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv[0] == "ref"))
        .and_then(|kv| kv[1].as_str())
        .unwrap_or("")
        .to_owned()
}

/// A running daemon.
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its folder (config, data, stderr log).
    pub dir: PathBuf,
    http: ureq::Agent,
}

impl Daemon {
    /// Write `config` to `dir/switchyard.toml` (unless `None`: keep the file there)
    /// and start the binary on it; wait for the bound address on stdout.
    pub fn start(dir: &Path, config: Option<&str>) -> Daemon {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("stderr.log")).unwrap();
        Daemon::start_logging(dir, config, log, "warn")
    }

    /// [`Daemon::start`] with the daemon's log (stderr) going to `log`, at
    /// `RUST_LOG` level `level`.
    pub fn start_logging(dir: &Path, config: Option<&str>, log: std::fs::File, level: &str) -> Daemon {
        let path = dir.join("switchyard.toml");
        if let Some(text) = config {
            std::fs::write(&path, text).unwrap();
        }
        // `SWITCHYARD_DAEMON_BIN` runs the drivers against another build (an
        // older release, for before/after figures from the same machine).
        let bin = std::env::var_os("SWITCHYARD_DAEMON_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_switchyard").into());
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", level)
            .env_remove("SWITCHYARD_ADMIN_TOKEN")
            .env_remove("SWITCHYARD_SUPERVISOR_TOKEN")
            .env_remove("SWITCHYARD_INTEGRATION_TOKEN")
            .env_remove("SWITCHYARD_AGENT_TOKEN")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(address) = line.trim().strip_prefix("switchyard listening on ") else {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            panic!("the daemon did not start: stdout {line:?}, stderr:\n{log}");
        };
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Daemon { child, base: address.to_owned(), dir: dir.to_owned(), http }
    }

    /// Wait (up to `within`) until `/readyz` says this node leads its
    /// cluster (at once for a node of its own); false if it never did.
    pub fn wait_leader(&self, within: Duration) -> bool {
        self.wait_role("leader", within)
    }

    /// Wait (up to `within`) until `/readyz` gives this node `role`
    /// (`leader` or, in a cluster, `standby`); false if it never did.
    pub fn wait_role(&self, role: &str, within: Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            let (_, ready) = self.client(None).try_send("get", "/readyz", None).unwrap_or_default();
            if ready["role"] == role {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// A client acting as the admin (plugin upload, agent management).
    pub fn admin(&self) -> Client {
        self.client(Some(ADMIN))
    }

    /// A client acting as the gateway (creates, withdraws and reads items).
    pub fn gateway(&self) -> Client {
        self.client(Some(INTEGRATION))
    }

    /// A client acting as a supervisor (reads everything).
    pub fn supervisor(&self) -> Client {
        self.client(Some(SUPERVISOR))
    }

    /// A client for this daemon.
    pub fn client(&self, token: Option<&str>) -> Client {
        Client { base: self.base.clone(), token: token.map(str::to_owned), http: self.http.clone() }
    }

    /// A client signed in as agent `name` (registered already): the admin issues
    /// it a token.
    pub fn agent_client(&self, name: &str) -> Client {
        let (status, reply) = self.client(Some(ADMIN)).post_empty(&format!("/v1/agents/{name}/token"));
        assert_eq!(status, 201, "issuing a token to {name}: {reply}");
        let token = reply["token"].as_str().expect("a token").to_owned();
        self.client(Some(&token))
    }

    /// The daemon's process id (for RSS readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON client with an optional bearer token.
#[derive(Clone)]
pub struct Client {
    /// Base URL.
    pub base: String,
    token: Option<String>,
    http: ureq::Agent,
}

/// Status and JSON body (`Null` when the body is not JSON).
pub type Reply = (u16, Value);

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Client {
    /// A client with `token` and no node yet: give it one with [`Client::at`].
    pub fn detached(token: Option<&str>) -> Client {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client { base: String::new(), token: token.map(str::to_owned), http }
    }
    /// The bearer token this client sends.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }
    /// GET.
    pub fn get(&self, path: &str) -> Reply {
        let mut r = self.http.get(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        reply(r.call())
    }
    /// GET; `Err` when the connection fails (daemon gone).
    pub fn try_get(&self, path: &str) -> Result<Reply, String> {
        let mut r = self.http.get(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        let mut response = r.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
    /// GET, the status only: the body is not read (an event stream never ends).
    pub fn get_status(&self, path: &str) -> u16 {
        let mut r = self.http.get(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        r.call().map(|response| response.status().as_u16()).unwrap_or(0)
    }
    /// GET, raw text.
    pub fn get_text(&self, path: &str) -> (u16, String) {
        let mut r = self.http.get(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        let mut response = r.call().unwrap();
        (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default())
    }
    /// DELETE.
    pub fn delete(&self, path: &str) -> Reply {
        let mut r = self.http.delete(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        reply(r.call())
    }
    /// POST a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        let mut r = self.http.post(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        reply(r.send_json(body))
    }
    /// POST a JSON body; `Err` when the connection fails (daemon gone).
    pub fn try_post(&self, path: &str, body: &Value) -> Result<Reply, String> {
        let mut r = self.http.post(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        let mut response = r.send_json(body).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
    /// POST raw bytes.
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Reply {
        self.try_post_bytes(path, body).unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }
    /// POST raw bytes; `Err` when the connection fails — as it may when the
    /// daemon refuses the request without reading its body and closes the
    /// connection while the client is still sending.
    pub fn try_post_bytes(&self, path: &str, body: &[u8]) -> Result<Reply, String> {
        let mut r = self.http.post(self.url(path)).header("content-type", "application/wasm");
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        let mut response = r.send(body).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
    /// POST without a body.
    pub fn post_empty(&self, path: &str) -> Reply {
        let mut r = self.http.post(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        reply(r.send_empty())
    }
    /// PUT a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Reply {
        let mut r = self.http.put(self.url(path));
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        reply(r.send_json(body))
    }
    /// PUT a text body (a TOML file).
    pub fn put_text(&self, path: &str, body: &str) -> Reply {
        let mut r = self.http.put(self.url(path)).header("content-type", "application/toml");
        if let Some(a) = self.auth() {
            r = r.header("authorization", a);
        }
        reply(r.send(body))
    }
    /// The same client (token, connection pool) for another node at `base`.
    pub fn at(&self, base: &str) -> Client {
        Client { base: base.to_owned(), ..self.clone() }
    }
    /// Send `method` (`get`, `post`, `put`, `delete`) with an optional JSON
    /// body; `Err` when the connection fails (the node is gone).
    pub fn try_send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
        let url = self.url(path);
        let auth = self.auth();
        let response = match method {
            "get" | "delete" => {
                let mut r = if method == "get" { self.http.get(url) } else { self.http.delete(url) };
                if let Some(a) = auth {
                    r = r.header("authorization", a);
                }
                r.call()
            }
            _ => {
                let mut r = match method {
                    "post" => self.http.post(url),
                    "put" => self.http.put(url),
                    other => panic!("unsupported method {other}"),
                };
                if let Some(a) = auth {
                    r = r.header("authorization", a);
                }
                match body {
                    Some(b) => r.send_json(b),
                    None => r.send_empty(),
                }
            }
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
    /// Send `method` with `body` (for the OpenAPI checks).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        match (method, body) {
            // The console's event stream never ends: its status is the answer.
            ("get", _) if path == "/v1/events" => (self.get_status(path), Value::Null),
            ("get", _) => self.get(path),
            ("delete", _) => self.delete(path),
            ("post", Some(b)) => self.post(path, b),
            ("post", None) => self.post_empty(path),
            ("put", Some(b)) => self.put(path, b),
            ("put", None) => self.put(path, &Value::Null),
            (other, _) => panic!("unsupported method {other}"),
        }
    }
}
