//! Hostile test plugin `hostile-wrong-version`: exports
//! `switchyard:routing/prioritiser@9.0.0`, a contract version no host supports.
//!
//! `wit/routing.wit` is a copy of the contract with only the package version changed
//! to 9.0.0. The plugin imports nothing from Switchyard but the (type-only)
//! `switchyard:routing/types@9.0.0`, and its answer would be valid — the version is
//! the only thing wrong. The host must refuse it at load time with an error naming
//! the file and the unsupported contract version.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-wrong-version;
        world plugin {
            export switchyard:routing/prioritiser@9.0.0;
        }
    "#,
    path: "wit",
    generate_all,
});

use exports::switchyard::routing::prioritiser;
use switchyard::routing::types::{ItemBatch, Priority};

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        items.rows.iter().map(|row| Priority { priority: row.priority, queue: None, reason: None }).collect()
    }
}

export!(Plugin);
