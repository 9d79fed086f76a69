//! Hostile test plugin `hostile-stack-overflow`: `prioritise` recurses without bound.
//!
//! Every frame uses the result of its recursive call (through `black_box`), so the
//! recursion is not a tail call and cannot be turned into a loop; each frame also
//! keeps a small array on the shadow stack in linear memory. The call overflows
//! either wasmtime's wasm stack limit ("call stack exhausted") or the guest's
//! shadow stack (out-of-bounds memory access) — both are traps. The host must
//! survive, fall back to the built-in rule and throw the instance away.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-stack-overflow;
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
use switchyard::routing::types::{ItemBatch, Priority};

/// Recurse forever; the stop condition is hidden behind `black_box` so the compiler
/// neither sees an unconditional recursion nor can prove where it ends.
#[inline(never)]
fn dive(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = black_box([depth; 8]);
    let below = dive(depth + 1);
    black_box(below).wrapping_add(frame[(depth % 8) as usize])
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        let depth = dive(0);
        // Never reached; shaped like a valid answer so only the recursion is wrong.
        items.rows.iter().map(|_| Priority { priority: depth as i32, queue: None, reason: None }).collect()
    }
}

export!(Plugin);
