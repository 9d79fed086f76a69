//! Every built plugin is a WebAssembly *component*, and each real department
//! plugin exports exactly the hook interfaces its `Rules` impl writes.

use std::collections::BTreeSet;

use wasmparser::{Parser, Payload};

/// The header of a component: `\0asm`, version 0x0d, layer 1.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read plugin component {path}: {e}"))
}

/// The names the top-level component exports (nested modules and components skipped).
fn top_level_exports(bytes: &[u8]) -> BTreeSet<String> {
    let mut exports = BTreeSet::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("component parses") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.insert(export.expect("export entry parses").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    exports
}

/// Every plugin under `plugins/` was built and starts with the component header.
#[test]
fn every_plugin_is_a_component() {
    assert!(!switchyard_plugin_artifacts::ALL.is_empty());
    for (name, path) in switchyard_plugin_artifacts::ALL {
        let bytes = read(path);
        assert!(bytes.len() > 8, "plugin `{name}` at {path} is only {} bytes", bytes.len());
        assert_eq!(bytes[..8], COMPONENT_HEADER, "plugin `{name}` at {path} is not a component");
    }
}

/// The department plugins export the hooks they write and no others.
#[test]
fn department_plugins_export_exactly_their_hooks() {
    let cases: [(&str, &[&str]); 4] = [
        (switchyard_plugin_artifacts::BILLING, &["switchyard:routing/prioritiser@0.1.0"]),
        (
            switchyard_plugin_artifacts::CLAIMS,
            &["switchyard:routing/escalator@0.1.0", "switchyard:routing/prioritiser@0.1.0"],
        ),
        (switchyard_plugin_artifacts::TECH_SUPPORT, &["switchyard:routing/matcher@0.1.0"]),
        (switchyard_plugin_artifacts::MATCH_ONLY, &["switchyard:routing/matcher@0.1.0"]),
    ];
    for (path, want) in cases {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(top_level_exports(&read(path)), want, "exports of {path}");
    }
}

/// `foreach_plugin!` names every plugin of `ALL`, and `path` finds each by directory name.
#[test]
fn foreach_plugin_covers_all() {
    let mut seen = Vec::new();
    macro_rules! collect {
        ($name:ident) => {
            seen.push(stringify!($name).replace('_', "-"));
        };
    }
    switchyard_plugin_artifacts::foreach_plugin!(collect);
    let all: Vec<String> = switchyard_plugin_artifacts::ALL.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(seen, all);
    for name in &all {
        assert!(switchyard_plugin_artifacts::path(name).is_some());
    }
    assert_eq!(switchyard_plugin_artifacts::path("no-such-plugin"), None);
}
