//! Hostile test plugin `hostile-panic`: `prioritise` panics.
//!
//! The panic message goes to the plugin's stderr (which the host routes into its
//! log, tagged with the plugin) and then the guest aborts with an `unreachable`
//! trap. The host must survive, report the trap, fall back to the built-in rule and
//! throw the instance away.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-panic;
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

/// The text of the panic, so a test can look for it in the host's log.
const PANIC_MESSAGE: &str = "hostile-panic: deliberate panic in prioritise";

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        if std::hint::black_box(true) {
            panic!("{PANIC_MESSAGE} ({} items)", items.rows.len());
        }
        Vec::new()
    }
}

export!(Plugin);
