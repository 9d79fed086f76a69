//! Build every guest plugin under `plugins/` for `wasm32-wasip2`, once, and
//! generate path constants and `foreach_*!` macros (after wasmtime's
//! `crates/test-programs/artifacts/build.rs`).
//!
//! A *guest plugin* is a crate directly under `plugins/` whose `[lib]` has a
//! `cdylib` crate type; this crate and non-Rust builders (e.g. `polyglot`) are
//! not. All plugins build in ONE nested `cargo build --release --target
//! wasm32-wasip2 -p a -p b …` into `target/plugin-artifacts`: a target directory
//! of its own, because the outer cargo holds the lock on the main one and the
//! nested cargo would wait for it forever. For `wasm32-wasip2` rustc already
//! emits a component, so no componentisation step is needed.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// One plugin crate to build.
struct Plugin {
    /// Directory name under `plugins/` (e.g. `tech-support`).
    dir: String,
    /// Cargo package name (for `-p`).
    package: String,
    /// Library name: the component is `<lib>.wasm`.
    lib: String,
    /// False for a test plugin that is no department's rules (its manifest says
    /// `[package.metadata.switchyard] department = false`, e.g. `echo-abi`):
    /// `foreach_department!` leaves it out, so it needs no fixtures.
    department: bool,
}

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plugins_dir = manifest_dir.parent().expect("plugins/artifacts has a parent").to_path_buf();
    let workspace = plugins_dir.parent().expect("plugins/ has a parent").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    // Rebuild when any plugin, the SDK or the contract changes.
    for watched in [plugins_dir.clone(), workspace.join("sdk"), workspace.join("wit")] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let plugins = find_plugins(&plugins_dir, &manifest_dir);
    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("plugin-artifacts"),
        None => workspace.join("target").join("plugin-artifacts"),
    };
    let target_dir = if target_dir.is_absolute() { target_dir } else { workspace.join(target_dir) };

    if !plugins.is_empty() {
        require_wasm_target();
        build(&workspace, &target_dir, &plugins);
    }

    let release_dir = target_dir.join(TARGET).join("release");
    let mut code = String::new();
    for plugin in &plugins {
        let wasm = release_dir.join(format!("{}.wasm", plugin.lib));
        if !wasm.is_file() {
            panic!(
                "plugin `{}` built, but its component {} is missing (is its [lib] crate-type \"cdylib\"?)",
                plugin.package,
                wasm.display()
            );
        }
        let _ = writeln!(
            code,
            "/// The `{}` plugin component (`plugins/{}`).\npub const {}: &str = {:?};",
            plugin.package,
            plugin.dir,
            upper_snake(&plugin.dir),
            wasm.display().to_string()
        );
    }
    code.push_str(
        "/// Every plugin as (directory name under `plugins/`, component path).\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for plugin in &plugins {
        let _ = writeln!(code, "    ({:?}, {}),", plugin.dir, upper_snake(&plugin.dir));
    }
    code.push_str("];\n");
    let hostile = |p: &&Plugin| p.dir.starts_with("hostile-");
    foreach_macro(&mut code, "plugin", "every plugin", plugins.iter());
    foreach_macro(
        &mut code,
        "department",
        "every department plugin (not a `hostile-*` plugin, not marked `department = false`)",
        plugins.iter().filter(|p| !hostile(p) && p.department),
    );
    foreach_macro(&mut code, "hostile", "every `hostile-*` test plugin", plugins.iter().filter(hostile));
    let generated = out_dir.join("plugins.rs");
    if let Err(e) = fs::write(&generated, code) {
        panic!("cannot write {}: {e}", generated.display());
    }
}

/// The guest plugin crates directly under `plugins/`, sorted by directory name.
fn find_plugins(plugins_dir: &Path, own_dir: &Path) -> Vec<Plugin> {
    let entries = match fs::read_dir(plugins_dir) {
        Ok(entries) => entries,
        Err(e) => panic!("cannot list {}: {e}", plugins_dir.display()),
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let mut plugins = Vec::new();
    for dir in dirs {
        if dir == own_dir || dir.file_name() == own_dir.file_name() {
            continue;
        }
        let manifest_path = dir.join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest_path) else {
            continue;
        };
        let manifest: toml::Table = match text.parse() {
            Ok(manifest) => manifest,
            Err(e) => panic!("cannot parse {}: {e}", manifest_path.display()),
        };
        let Some(package) = manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()) else {
            continue;
        };
        let lib = manifest.get("lib");
        let is_cdylib = lib
            .and_then(|l| l.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")));
        if !is_cdylib {
            continue;
        }
        let lib_name = lib
            .and_then(|l| l.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| package.replace('-', "_"));
        let Some(dir_name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let department = manifest
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("switchyard"))
            .and_then(|s| s.get("department"))
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        plugins.push(Plugin { dir: dir_name.to_owned(), package: package.to_owned(), lib: lib_name, department });
    }
    plugins
}

/// Fail early, with the fix, when the wasm target's standard library is missing.
fn require_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output();
    let Ok(output) = sysroot else { return };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if output.status.success() && !sysroot.join("lib").join("rustlib").join(TARGET).is_dir() {
        panic!(
            "the Rust target {TARGET} is not installed, so the guest plugins cannot be built; \
             run `rustup target add {TARGET}` and try again"
        );
    }
}

/// Run the one nested cargo build with the outer cargo's environment scrubbed.
fn build(workspace: &Path, target_dir: &Path, plugins: &[Plugin]) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    for plugin in plugins {
        cmd.arg("-p").arg(&plugin.package);
    }
    // What the outer cargo sets for this build script must not leak into the
    // nested build: host rustflags, jobserver, wrappers, target overrides, and
    // the per-package variables.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let scrub = matches!(
            key,
            "CARGO_ENCODED_RUSTFLAGS"
                | "RUSTFLAGS"
                | "CARGO_ENCODED_RUSTDOCFLAGS"
                | "RUSTDOCFLAGS"
                | "CARGO_MAKEFLAGS"
                | "MAKEFLAGS"
                | "MFLAGS"
                | "CARGO_TARGET_DIR"
                | "CARGO_BUILD_TARGET"
                | "CARGO_BUILD_TARGET_DIR"
                | "CARGO_BUILD_RUSTFLAGS"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "CARGO_BUILD_RUSTC_WRAPPER"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "OUT_DIR"
                | "TARGET"
                | "HOST"
                | "NUM_JOBS"
                | "OPT_LEVEL"
                | "PROFILE"
                | "DEBUG"
                | "RUSTC_LINKER"
        ) || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("DEP_");
        if scrub {
            cmd.env_remove(key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    // Guests ship without debug info: the workspace's release profile keeps
    // line tables for profiling the host, and wasm32's std carries DWARF, which
    // made every plugin ≈3 MB — hashed on every load and parsed on every compile.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    cmd.env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    // One codegen unit with LTO: the SDK's lookups, formatting and batch loop
    // inline into the rule (issue 19: measured on billing, see README
    // "Benchmarks"). Guests are small, so the build stays quick.
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "true");
    cmd.env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    // A build script's stdout is read by cargo as directives: keep the nested
    // cargo's output on stderr.
    cmd.stdout(std::io::stderr());
    eprintln!("running: {cmd:?}");
    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) => panic!("cannot run cargo to build the guest plugins: {e}"),
    };
    if !status.success() {
        let names: Vec<&str> = plugins.iter().map(|p| p.package.as_str()).collect();
        panic!(
            "building the guest plugins ({}) for {TARGET} failed ({status}); the compiler's output is above. \
             If it says the target is missing, run `rustup target add {TARGET}`",
            names.join(", ")
        );
    }
}

/// `tech-support` -> `TECH_SUPPORT`.
fn upper_snake(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// `tech-support` -> `tech_support`.
fn snake(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

fn foreach_macro<'a>(code: &mut String, kind: &str, what: &str, plugins: impl Iterator<Item = &'a Plugin>) {
    let _ = writeln!(code, "/// Calls `$mac!(name)` for {what}, `name` being its directory name in snake case.");
    let _ = writeln!(code, "#[macro_export]\nmacro_rules! foreach_{kind} {{\n    ($mac:ident) => {{");
    for plugin in plugins {
        let _ = writeln!(code, "        $mac!({});", snake(&plugin.dir));
    }
    code.push_str("    };\n}\n");
}
