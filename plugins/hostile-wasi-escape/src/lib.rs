//! Hostile test plugin `hostile-wasi-escape`: tries to reach outside the sandbox
//! through the WASI imports Rust's standard library uses, and reports — without
//! crashing — what it managed.
//!
//! `prioritise` runs every probe in [`PROBES`] order on every call and answers one
//! priority per item: item `i` carries the outcome of probe `i` (items past the last
//! probe get priority 0 and the reason "hostile-wasi-escape: no probe"), so a test
//! sends a batch of at least 6 items. The answer has a valid shape.
//!
//! - priority `1`: the probe got through (read the file, listed the directory, saw
//!   environment variables, reached the network, read a real-looking wall clock);
//! - priority `0`: the sandbox denied it;
//! - reason: `"<probe>: reached: <detail>"` or `"<probe>: denied: <error text>"`.
//!
//! Each outcome is also logged through `host.log` at `warn` (reached) or `info`
//! (denied) with the fields `probe` and `outcome`. A locked-down host answers 0 for
//! every probe.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-wasi-escape;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            export switchyard:routing/prioritiser@0.1.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use exports::switchyard::routing::prioritiser;
use std::io::ErrorKind;
use std::time::{SystemTime, UNIX_EPOCH};
use switchyard::routing::host;
use switchyard::routing::types::{ItemBatch, LogLevel, Priority};

/// The probes, in the order their outcomes appear in the answer.
pub const PROBES: [&str; 6] = ["read-file", "read-dir", "env-vars", "env-home", "tcp-connect", "wall-clock"];

/// What one probe managed: `Ok(detail)` when it got through, `Err(error)` when denied.
type Outcome = Result<String, String>;

fn read_file() -> Outcome {
    std::fs::read_to_string("/etc/passwd")
        .map(|text| format!("read {} bytes of /etc/passwd", text.len()))
        .map_err(|e| e.to_string())
}

fn read_dir() -> Outcome {
    let entries = std::fs::read_dir("/").map_err(|e| e.to_string())?;
    Ok(format!("listed {} entries of /", entries.count()))
}

fn env_vars() -> Outcome {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    match vars.first() {
        Some((key, _)) => Ok(format!("saw {} variables, first {key}", vars.len())),
        None => Err("the environment is empty".to_owned()),
    }
}

fn env_home() -> Outcome {
    std::env::var("HOME").map(|home| format!("HOME={home}")).map_err(|e| e.to_string())
}

fn tcp_connect() -> Outcome {
    match std::net::TcpStream::connect("127.0.0.1:80") {
        Ok(_) => Ok("connected to 127.0.0.1:80".to_owned()),
        // The sandbox let the socket out; only the peer said no.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(format!("reached the network: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

/// A wall clock counts as real when it reads neither the Unix epoch nor exactly the
/// decision time the host hands out (`host.now-ms`).
fn wall_clock() -> Outcome {
    let decision_ms = host::now_ms();
    let read_ms =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).map_err(|e| e.to_string())?;
    if read_ms == 0 || read_ms == decision_ms {
        Err(format!("wall clock reads {read_ms} ms, decision time {decision_ms} ms"))
    } else {
        Ok(format!("wall clock reads {read_ms} ms, decision time {decision_ms} ms"))
    }
}

fn run_probes() -> Vec<Priority> {
    let probes: [fn() -> Outcome; 6] = [read_file, read_dir, env_vars, env_home, tcp_connect, wall_clock];
    PROBES
        .iter()
        .zip(probes)
        .map(|(name, probe)| {
            let (priority, outcome, level) = match probe() {
                Ok(detail) => (1, format!("{name}: reached: {detail}"), LogLevel::Warn),
                Err(error) => (0, format!("{name}: denied: {error}"), LogLevel::Info),
            };
            host::log(
                level,
                &outcome,
                &[("probe".to_owned(), (*name).to_owned()), ("outcome".to_owned(), priority.to_string())],
            );
            Priority { priority, queue: None, reason: Some(outcome) }
        })
        .collect()
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        let mut outcomes = run_probes().into_iter();
        items
            .rows
            .iter()
            .map(|_| {
                outcomes.next().unwrap_or_else(|| Priority {
                    priority: 0,
                    queue: None,
                    reason: Some("hostile-wasi-escape: no probe".to_owned()),
                })
            })
            .collect()
    }
}

export!(Plugin);
