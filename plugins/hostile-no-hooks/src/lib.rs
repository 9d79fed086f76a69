//! Hostile test plugin `hostile-no-hooks`: imports `switchyard:routing/host@0.1.0`
//! but exports none of the three hook interfaces — only a bare function `describe`
//! that no Switchyard host knows (it calls `host.config` so the host import stays).
//! The host must refuse it at load time with an error naming the file and saying it
//! exports no hook.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-no-hooks;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            export describe: func() -> string;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use switchyard::routing::host;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> String {
        let name = host::config("name").unwrap_or_default();
        format!("hostile-no-hooks for {name:?}: no hooks here")
    }
}

export!(Plugin);
