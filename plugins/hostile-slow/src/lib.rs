//! Hostile test plugin `hostile-slow`: slow, but it finishes with a valid answer.
//!
//! `prioritise` burns CPU (no sleeping, so only an interrupting deadline can stop it
//! early) and then answers one well-formed priority per item. How long it burns
//! comes from the department's configuration (`host.config`):
//! - `delay_ms`: busy-wait this many milliseconds of wall time, measured with
//!   `std::time::Instant` (the WASI monotonic clock — the host must give it a clock
//!   that advances, or the wait never ends). Missing or not a number: 0.
//! - `spin_iterations`: then run this many iterations of a black-boxed counter loop —
//!   a fixed amount of work, for deterministic fuel budgets. Missing: 0.
//! - `priority`: the priority given to every item (default 10).
//!
//! Each answer is `priority` with no queue change and the reason
//! `"hostile-slow: waited <delay_ms> ms"`. Used for deadline obeyed/violated pairs,
//! fuel obeyed/violated pairs and hot-reload tests.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-slow;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            export switchyard:routing/prioritiser@0.1.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use exports::switchyard::routing::prioritiser;
use std::hint::black_box;
use std::time::{Duration, Instant};
use switchyard::routing::host;
use switchyard::routing::types::{ItemBatch, Priority};

/// Priority given to every item unless the config key `priority` says otherwise.
const DEFAULT_PRIORITY: i32 = 10;

/// Read a numeric config key, `None` when missing or not a number.
fn config_number<T: std::str::FromStr>(key: &str) -> Option<T> {
    host::config(key)?.trim().parse().ok()
}

/// Spin on the monotonic clock until `ms` milliseconds have passed.
fn busy_wait(ms: u64) {
    let start = Instant::now();
    let wait = Duration::from_millis(ms);
    let mut spins: u64 = 0;
    while start.elapsed() < wait {
        spins = black_box(spins.wrapping_add(1));
    }
}

/// Run `n` iterations of work the optimiser cannot remove.
fn spin(n: u64) {
    let mut acc: u64 = 0;
    for i in 0..n {
        acc = black_box(acc.wrapping_add(i));
    }
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        let delay_ms: u64 = config_number("delay_ms").unwrap_or(0);
        let iterations: u64 = config_number("spin_iterations").unwrap_or(0);
        let priority: i32 = config_number("priority").unwrap_or(DEFAULT_PRIORITY);
        busy_wait(delay_ms);
        spin(iterations);
        let reason = format!("hostile-slow: waited {delay_ms} ms");
        items.rows.iter().map(|_| Priority { priority, queue: None, reason: Some(reason.clone()) }).collect()
    }
}

export!(Plugin);
