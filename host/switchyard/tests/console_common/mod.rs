//! A small W3C WebDriver client for the console's browser tests: Debian's
//! Chromium driven through `chromedriver` over loopback HTTP with the serve
//! tests' blocking client (no browser download, no async runtime).
//!
//! [`Browser::open`] finds `chromium` and `chromedriver` (or the paths in
//! `SWITCHYARD_CHROMIUM` / `SWITCHYARD_CHROMEDRIVER`). Without them a test is
//! skipped with a message — except under CI (`CI` set), where a missing
//! browser fails the test: the README's test command installs it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any wait for the page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
    /// Where screenshots go.
    pub shots: PathBuf,
}

impl Browser {
    /// Start chromedriver and a headless Chromium at 1280×800; `None` (with a
    /// message) when they are not installed and this is not CI.
    pub fn open(test: &str) -> Option<Browser> {
        let chromium = find_program("SWITCHYARD_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
        let driver = find_program("SWITCHYARD_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let why = "chromium and chromedriver are needed for the console's browser tests (Debian: apt-get install chromium chromium-driver)";
            if std::env::var_os("CI").is_some() {
                panic!("{why}; under CI a missing browser is a failure");
            }
            eprintln!("skipping {test}: {why}");
            return None;
        };
        // A free port for the driver: bind, read, release.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let log =
            std::fs::File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-chromedriver.log")))
                .unwrap();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(started.elapsed() < WAIT, "chromedriver did not get ready on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-profile"));
        let _ = std::fs::remove_dir_all(&profile);
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", format!("--user-data-dir={}", profile.display())],
            },
        }}});
        let mut browser = Browser {
            driver: child,
            base,
            session: String::new(),
            http,
            shots: Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"),
        };
        let created = browser.call("POST", "/session", Some(&capabilities));
        browser.session = created["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_owned();
        std::fs::create_dir_all(&browser.shots).unwrap();
        Some(browser)
    }

    /// A WebDriver command; its `value`, or a panic with the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.http.get(&url).call(),
            "DELETE" => self.http.delete(&url).call(),
            _ => self.http.post(&url).send_json(body.unwrap_or(&json!({}))),
        };
        let mut response = response.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status().as_u16();
        let reply: Value = response.body_mut().read_json().unwrap_or(Value::Null);
        assert!(status < 400, "WebDriver {method} {path}: {status} {reply}");
        reply.get("value").cloned().unwrap_or(Value::Null)
    }

    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Open `url`.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Resize the window.
    pub fn window(&self, width: u32, height: u32) {
        self.session_call("POST", "/window/rect", Some(&json!({ "width": width, "height": height })));
    }

    /// Run `script` (a function body) with `args`; its return value.
    pub fn js(&self, script: &str, args: &[Value]) -> Value {
        self.session_call("POST", "/execute/sync", Some(&json!({ "script": script, "args": args })))
    }

    /// Wait until `script` (a function body) returns something truthy, then
    /// return it; fails after [`WAIT`] saying `what`.
    pub fn wait(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js(script, &[]);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > WAIT {
                let page = self.js("return document.body.innerText", &[]);
                panic!("waited {WAIT:?} for {what}; the page says:\n{}", page.as_str().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the element at `css` exists and contains `text`; its text.
    pub fn wait_text(&self, css: &str, text: &str) -> String {
        let script = format!(
            "const e = document.querySelector({css:?}); return e && e.innerText.includes({text:?}) ? e.innerText : null;"
        );
        self.wait(&format!("`{css}` to say {text:?}"), &script).as_str().unwrap_or_default().to_owned()
    }

    /// The element at `css` (waiting for it to appear).
    pub fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let url = format!("{}/session/{}/element", self.base, self.session);
            let mut response = self
                .http
                .post(&url)
                .send_json(json!({ "using": "css selector", "value": css }))
                .unwrap_or_else(|e| panic!("WebDriver find {css}: {e}"));
            let ok = response.status().as_u16() < 400;
            let reply: Value = response.body_mut().read_json().unwrap_or(Value::Null);
            if ok && let Some(id) = reply["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(started.elapsed() < WAIT, "no element `{css}` after {WAIT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Click the element at `css`; if the page redrew it between finding and
    /// clicking (a stale reference), find it again (bounded by [`WAIT`]).
    pub fn click(&self, css: &str) {
        let started = Instant::now();
        loop {
            let id = self.find(css);
            let url = format!("{}/session/{}/element/{id}/click", self.base, self.session);
            let mut response = self.http.post(&url).send_json(json!({})).unwrap_or_else(|e| panic!("click {css}: {e}"));
            let status = response.status().as_u16();
            let reply: Value = response.body_mut().read_json().unwrap_or(Value::Null);
            if status < 400 {
                return;
            }
            let stale = reply["value"]["error"] == "stale element reference";
            assert!(stale && started.elapsed() < WAIT, "click {css}: {status} {reply}");
        }
    }

    /// Type `text` into the element at `css` (a file input takes a path).
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.session_call("POST", &format!("/element/{id}/value"), Some(&json!({ "text": text })));
    }

    /// Sign in at the console with `token`.
    pub fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/"));
        self.type_into("#token", token);
        self.click("#signin-form button[type=submit]");
        self.wait("the sign-in to finish", "return document.querySelector('#signin').hidden");
    }

    /// The page's navigation time, ms (printed by the tests, not asserted).
    pub fn navigation_ms(&self) -> f64 {
        self.js("const n = performance.getEntriesByType('navigation')[0]; return n ? n.duration : -1;", &[])
            .as_f64()
            .unwrap_or(-1.0)
    }

    /// Wait for the page's first drawing with data; ms from the navigation's
    /// start to it (printed by the tests, not asserted).
    pub fn drawn_ms(&self) -> f64 {
        let script = "const m = performance.getEntriesByName('switchyard-drawn')[0]; return m ? m.startTime : null;";
        self.wait("the page to draw its data", script).as_f64().unwrap_or(-1.0)
    }

    /// Save a screenshot as `<name>.png` in [`Browser::shots`].
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.session_call("GET", "/screenshot", None);
        let bytes = base64_decode(png.as_str().unwrap_or_default());
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.http.delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
