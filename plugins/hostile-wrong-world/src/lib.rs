//! Hostile test plugin `hostile-wrong-world`: a component of an unrelated world. It
//! exports `acme:other/greeter@1.0.0` (`greet: func(name: string) -> string`) and
//! nothing of Switchyard. The host must refuse it at load time with an error naming
//! the file and saying it exports none of the hook interfaces.

wit_bindgen::generate!({
    inline: r#"
        package acme:other@1.0.0;

        /// Says hello.
        interface greeter {
            /// A greeting for `name`.
            greet: func(name: string) -> string;
        }

        world greeter-world {
            export greeter;
        }
    "#,
});

use exports::acme::other::greeter;

struct Plugin;

impl greeter::Guest for Plugin {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Plugin);
