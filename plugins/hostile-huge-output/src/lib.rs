//! Hostile test plugin `hostile-huge-output`: `prioritise` returns an enormous answer.
//!
//! The size of the answer comes from the department's configuration (`host.config`),
//! so one plugin covers both kinds of "too big":
//! - `huge_count`: how many priorities to return. Default: one per item (a
//!   well-formed length, so only the size is wrong). Set it to e.g. `5000000` for
//!   "millions of entries".
//! - `huge_reason_bytes`: total bytes of reason text, split evenly over the returned
//!   priorities. Default: 8 MiB (8388608), which fits the default 16 MiB memory
//!   limit. Set it to e.g. `67108864` (64 MiB) together with a larger memory limit.
//!
//! A value that is missing or not a number falls back to the default. The guest
//! needs about `48 * huge_count + huge_reason_bytes + 2 MiB` of linear memory to
//! build the answer; below that it fails on memory instead. The host must cap what
//! it accepts back (entries and/or bytes), reject the answer, fall back to the
//! built-in rule and report "output too large".

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-huge-output;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            export switchyard:routing/prioritiser@0.1.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use exports::switchyard::routing::prioritiser;
use switchyard::routing::host;
use switchyard::routing::types::{ItemBatch, Priority};

/// Default total reason bytes: 8 MiB.
const DEFAULT_REASON_BYTES: usize = 8 << 20;

/// Read a numeric config key, `None` when missing or not a number.
fn config_number(key: &str) -> Option<usize> {
    host::config(key)?.trim().parse().ok()
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        let count = config_number("huge_count").unwrap_or(items.rows.len());
        let total_reason = config_number("huge_reason_bytes").unwrap_or(DEFAULT_REASON_BYTES);
        let each = total_reason.checked_div(count).unwrap_or(0);
        (0..count)
            .map(|i| Priority {
                priority: (i % 1000) as i32,
                queue: None,
                reason: (each > 0).then(|| "x".repeat(each)),
            })
            .collect()
    }
}

export!(Plugin);
