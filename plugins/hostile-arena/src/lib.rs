//! Hostile test plugin `hostile-arena`: built with the SDK, so it declares the
//! arena lease (the host writes a call's arguments into the plugin's argument
//! arena itself, from the descriptor the arena publishes), and then corrupts
//! that descriptor from inside its rule: an item of priority 666 points the
//! arena's block far beyond the plugin's memory.
//!
//! The host must not write outside the plugin's memory: the next call fails as
//! the plugin's own (the built-in rule decides), the instance is thrown away,
//! and a fresh one answers again.

use switchyard_contract::capability::DESCRIBE_ARENA;
use switchyard_sdk::{Context, Item, Priority, Rules};

/// The priority that makes the rule corrupt its arena.
pub const CORRUPT: i32 = 666;

/// The rules: one more than the item's priority, and the corruption above.
#[derive(Debug, Default)]
pub struct HostileArena;

#[switchyard_sdk::rules]
impl Rules for HostileArena {
    fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
        if item.priority() == CORRUPT {
            corrupt_the_arena();
        }
        Priority::new(item.priority() + 1)
    }
}

/// Point the arena's block (the descriptor's first word) near the top of the
/// 4 GiB address space with the largest capacity, so the host's next lease
/// lands beyond the plugin's memory.
fn corrupt_the_arena() {
    // SAFETY: deliberately not: the describe request gives the descriptor's
    // address, exactly as the host asks for it, and the words are overwritten.
    unsafe {
        let descriptor = switchyard_sdk::__private::export_realloc(std::ptr::null_mut(), DESCRIBE_ARENA as usize, 1, 0);
        let words = descriptor.cast::<u32>();
        words.write(0xFFFF_0000);
        words.add(1).write(u32::MAX);
        words.add(2).write(0);
    }
}
