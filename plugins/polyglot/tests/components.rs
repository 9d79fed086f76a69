//! The build script's outputs are real WebAssembly components (not core
//! modules) whose top-level imports and exports are exactly what their worlds
//! promise — and nothing the locked-down host would refuse to link.

use switchyard_polyglot_artifacts::{ALL, JS_RETAIL_CHAT, PYTHON_COLLECTIONS};
use wasmparser::{Parser, Payload};

/// Magic and version of a component binary: `\0asm`, version 0x0d, layer 1.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read built component {path}: {e}"))
}

/// The outer component's import and export names (nested modules and
/// components are skipped), each sorted.
fn imports_and_exports(path: &str) -> (Vec<String>, Vec<String>) {
    let bytes = read(path);
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap_or_else(|e| panic!("{path} does not parse: {e}")) {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    imports.push(import.unwrap_or_else(|e| panic!("{path}: bad import: {e}")).name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(export.unwrap_or_else(|e| panic!("{path}: bad export: {e}")).name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    imports.sort();
    exports.sort();
    (imports, exports)
}

/// Both plugins were built as components (layer 1), not core modules, into
/// `<target>/polyglot/`.
#[test]
fn built_plugins_are_components() {
    assert_eq!(ALL.len(), 2);
    for plugin in ALL {
        let bytes = read(plugin.component);
        assert_eq!(
            bytes.get(..8),
            Some(&COMPONENT_HEADER[..]),
            "{} ({}) is not a component",
            plugin.name,
            plugin.component
        );
        assert!(plugin.component.ends_with(&format!("target/polyglot/{}.wasm", plugin.name)), "{}", plugin.component);
    }
}

/// The Python plugin exports the prioritiser and escalator; besides the
/// contract it imports only WASI p2 interfaces (CPython's, sockets included,
/// which a locked-down WASI context denies) and no wasi:http.
#[test]
fn python_collections_exports_prioritiser_and_escalator() {
    let (imports, exports) = imports_and_exports(PYTHON_COLLECTIONS);
    // componentize-py also exports a plain-named `exports` instance (its table of
    // exported functions); a host looks hooks up by interface name and ignores it.
    assert_eq!(exports, ["exports", "switchyard:routing/escalator@0.1.0", "switchyard:routing/prioritiser@0.1.0"]);
    assert!(imports.iter().any(|i| i == "switchyard:routing/host@0.1.0"), "{imports:?}");
    for import in &imports {
        assert!(
            import.starts_with("switchyard:routing/")
                || (import.starts_with("wasi:") && !import.starts_with("wasi:http/")),
            "unexpected import {import} in {imports:?}"
        );
    }
}

/// The JS plugin exports the prioritiser and matcher and, built with every
/// WASI feature disabled, imports nothing but the contract.
#[test]
fn js_retail_chat_exports_prioritiser_and_matcher_and_imports_no_wasi() {
    let (imports, exports) = imports_and_exports(JS_RETAIL_CHAT);
    assert_eq!(exports, ["switchyard:routing/matcher@0.1.0", "switchyard:routing/prioritiser@0.1.0"]);
    assert_eq!(imports, ["switchyard:routing/host@0.1.0", "switchyard:routing/types@0.1.0"]);
}
