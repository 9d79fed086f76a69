//! Hostile test plugin `hostile-memory-bomb`: `prioritise` allocates memory without
//! bound.
//!
//! It keeps allocating 1 MiB blocks, writing to each one and keeping them all alive,
//! so linear memory has to grow on every step and no block can be optimised away.
//! It never stops asking: once the host's memory limit refuses `memory.grow`, the
//! allocator returns null and Rust aborts with a trap. The host must enforce its
//! per-plugin memory cap (e.g. 16 MiB, `StoreLimits`), survive the trap, fall back
//! to the built-in rule and throw the instance away.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-memory-bomb;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            export switchyard:routing/prioritiser@0.1.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use exports::switchyard::routing::prioritiser;
use switchyard::routing::types::{ItemBatch, Priority};

/// Size of each block the bomb allocates.
const BLOCK: usize = 1 << 20;

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(_items: ItemBatch) -> Vec<Priority> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        let mut step: u8 = 1;
        loop {
            // A non-zero fill so the block is really written, not a lazily zeroed page.
            let block = vec![step; BLOCK];
            hoard.push(std::hint::black_box(block));
            step = step.wrapping_add(1).max(1);
        }
    }
}

export!(Plugin);
