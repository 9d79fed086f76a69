//! Compute the canonical-ABI (wasm32) layout of every record of the contract's
//! `types` interface from `wit/routing.wit`, and write them as constants.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use wit_parser::{Resolve, SizeAlign, TypeDefKind};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // Inside the package (`sdk/contract/wit` links to the workspace's `wit/`), so
    // the published crate builds on its own.
    let wit = manifest_dir.join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());

    let mut resolve = Resolve::default();
    let (package, _) = match resolve.push_dir(&wit) {
        Ok(parsed) => parsed,
        Err(e) => panic!("cannot parse the contract in {}: {e:#}", wit.display()),
    };
    let mut sizes = SizeAlign::default();
    if let Err(e) = sizes.fill(&resolve) {
        panic!("cannot size the contract's types: {e:#}");
    }
    let Some(&types) = resolve.packages[package].interfaces.get("types") else {
        panic!("the contract in {} has no `types` interface", wit.display());
    };

    let mut code = String::new();
    let mut records: Vec<(&String, _)> = resolve.interfaces[types].types.iter().collect();
    records.sort_by_key(|(name, _)| name.as_str());
    for (name, &id) in records {
        let TypeDefKind::Record(record) = &resolve.types[id].kind else { continue };
        let tys = record.fields.iter().map(|f| &f.ty);
        let whole = sizes.record(tys.clone());
        let _ = writeln!(code, "/// `{name}`, as `wit/routing.wit` declares it.");
        let _ = writeln!(
            code,
            "pub const {}: RecordLayout = RecordLayout {{\n    name: {name:?},\n    size: {},\n    align: {},\n    fields: &[",
            name.to_uppercase().replace('-', "_"),
            whole.size.size_wasm32(),
            whole.align.align_wasm32(),
        );
        for (field, (offset, ty)) in record.fields.iter().zip(sizes.field_offsets(tys)) {
            let _ = writeln!(
                code,
                "        Field {{ name: {:?}, offset: {}, size: {} }},",
                field.name,
                offset.size_wasm32(),
                sizes.size(ty).size_wasm32()
            );
        }
        code.push_str("    ],\n};\n");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("layout.rs");
    if let Err(e) = fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
