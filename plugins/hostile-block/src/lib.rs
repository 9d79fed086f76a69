//! Hostile test plugin `hostile-block`: blocks the calling host thread in
//! `prioritise` through a WASI call, which no epoch deadline can interrupt.
//!
//! The way it blocks comes from the department's configuration key `mode`
//! (`host.config`):
//! - `sleep`: `std::thread::sleep` for 10 s (Rust's std subscribes to the
//!   monotonic clock and blocks on the pollable);
//! - `poll`: `wasi:io/poll.poll` on a 10 s monotonic-clock `subscribe-duration`;
//! - `subscribe`: a monotonic-clock `subscribe-instant` 10 s ahead, then
//!   `[method]pollable.block` on it;
//! - `ready`: only WASI calls that wait for something already ready: a zero-length
//!   clock subscription blocked on, `poll` on stdout's pollable next to a 10 s clock
//!   pollable, `pollable.ready` on the 10 s one, and the streams' `blocking-*`
//!   methods on stdout and stdin. Item `i` carries the outcome of step `i`
//!   (see [`READY_STEPS`]), so a test sends at least 6 items;
//! - `none` (or missing): answers at once.
//!
//! Every answer has priority 10 and the reason `"hostile-block: <mode> answered"`
//! (in `ready` mode, the step's outcome instead). An unknown mode answers
//! priority 0 with the reason `"hostile-block: unknown mode <mode>"`.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-block;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            import wasi:io/poll@0.2.4;
            import wasi:io/streams@0.2.4;
            import wasi:clocks/monotonic-clock@0.2.4;
            import wasi:cli/stdin@0.2.4;
            import wasi:cli/stdout@0.2.4;
            export switchyard:routing/prioritiser@0.1.0;
        }
    "#,
    path: ["../../wit", "wit/io.wit", "wit/clocks.wit", "wit/cli.wit"],
    generate_all,
});

use exports::switchyard::routing::prioritiser;
use std::time::Duration;
use switchyard::routing::host;
use switchyard::routing::types::{ItemBatch, Priority};
use wasi::cli::{stdin, stdout};
use wasi::clocks::monotonic_clock;
use wasi::io::poll;
use wasi::io::streams::StreamError;

/// How long every blocking mode asks to wait.
const BLOCK_FOR: Duration = Duration::from_secs(10);

/// The steps of `ready` mode, in the order of their outcomes in the answer.
pub const READY_STEPS: [&str; 6] =
    ["block-zero-duration", "poll-stdout", "ready-clock", "write-and-flush", "read-stdin", "splice-stdin"];

fn nanos(d: Duration) -> u64 {
    d.as_nanos().try_into().unwrap_or(u64::MAX)
}

/// Run every step of `ready` mode; each returns what it saw.
fn ready_steps() -> Vec<String> {
    let out = stdout::get_stdout();
    let input = stdin::get_stdin();
    let clock = monotonic_clock::subscribe_duration(nanos(BLOCK_FOR));

    let zero = monotonic_clock::subscribe_duration(0);
    zero.block();
    let block_zero = "returned".to_owned();

    let writable = out.subscribe();
    let ready = poll::poll(&[&clock, &writable]);
    let poll_stdout = format!("ready {ready:?}");

    let ready_clock = format!("ready {}", clock.ready());

    let write = out
        .blocking_write_and_flush(b"hostile-block: ready mode writes to stdout\n")
        .and_then(|()| out.blocking_flush());
    let write = format!("{write:?}");

    let read = match input.blocking_read(16) {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(StreamError::Closed) => "closed".to_owned(),
        Err(StreamError::LastOperationFailed(e)) => format!("failed: {}", e.to_debug_string()),
    };
    let splice = match out.blocking_splice(&input, 16) {
        Ok(n) => format!("spliced {n} bytes"),
        Err(StreamError::Closed) => "closed".to_owned(),
        Err(StreamError::LastOperationFailed(e)) => format!("failed: {}", e.to_debug_string()),
    };
    vec![block_zero, poll_stdout, ready_clock, write, read, splice]
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        let mode = host::config("mode").unwrap_or_else(|| "none".to_owned());
        let answer = |priority: i32, reason: String| Priority { priority, queue: None, reason: Some(reason) };
        match mode.as_str() {
            "sleep" => std::thread::sleep(BLOCK_FOR),
            "poll" => {
                let pollable = monotonic_clock::subscribe_duration(nanos(BLOCK_FOR));
                poll::poll(&[&pollable]);
            }
            "subscribe" => {
                let when = monotonic_clock::now().saturating_add(nanos(BLOCK_FOR));
                monotonic_clock::subscribe_instant(when).block();
            }
            "ready" => {
                let mut outcomes = READY_STEPS.iter().zip(ready_steps());
                return items
                    .rows
                    .iter()
                    .map(|_| match outcomes.next() {
                        Some((step, outcome)) => answer(10, format!("{step}: {outcome}")),
                        None => answer(10, "hostile-block: no step".to_owned()),
                    })
                    .collect();
            }
            "none" => {}
            other => {
                let reason = format!("hostile-block: unknown mode {other}");
                return items.rows.iter().map(|_| answer(0, reason.clone())).collect();
            }
        }
        let reason = format!("hostile-block: {mode} answered");
        items.rows.iter().map(|_| answer(10, reason.clone())).collect()
    }
}

export!(Plugin);
