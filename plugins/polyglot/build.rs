//! Builds the polyglot rule plugins — `python-collections` (componentize-py) and
//! `js-retail-chat` (componentize-js) — into WebAssembly components, once.
//!
//! Each plugin's sources and the contract (`<workspace>/wit/*.wit`, copied into
//! the staged `wit/deps/routing/`) are hashed; a component whose hash matches
//! the stamp beside it in `<target>/polyglot/` is not rebuilt, so the two slow
//! builds (≈30 s each) happen once per change, not once per profile or test run.
//!
//! Tools install themselves when missing:
//! - componentize-py at [`COMPONENTIZE_PY`] (also pinned in
//!   `python-collections/requirements.txt`): used from the Python environment if
//!   that exact version is installed, otherwise `pip install --target
//!   <target>/polyglot/tools/python`;
//! - componentize-js from `js-retail-chat/package-lock.json`: `npm ci` in the
//!   plugin directory whenever the lock file changed since the last install.
//!
//! Set `SWITCHYARD_PYTHON` / `SWITCHYARD_NPM` to use another interpreter or npm.
//! The generated `polyglot.rs` (in `OUT_DIR`) holds the components' absolute paths.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The componentize-py release the Python plugin is built with.
const COMPONENTIZE_PY: &str = "0.25.1";

/// One plugin to build.
struct Plugin {
    /// Directory under `plugins/polyglot/`, also the component's file stem.
    dir: &'static str,
    /// Constant naming the component's path in the generated code.
    constant: &'static str,
    /// Files (relative to the plugin directory) that go into the component.
    sources: &'static [&'static str],
}

const PYTHON: Plugin = Plugin {
    dir: "python-collections",
    constant: "PYTHON_COLLECTIONS",
    sources: &["app.py", "collections_rules.py", "wit/world.wit", "requirements.txt"],
};

const JS: Plugin = Plugin {
    dir: "js-retail-chat",
    constant: "JS_RETAIL_CHAT",
    sources: &["app.js", "rules.js", "wit/world.wit", "package.json", "package-lock.json"],
};

type Result<T> = std::result::Result<T, String>;

fn main() {
    if let Err(message) = run() {
        eprintln!("\nerror: building the polyglot plugins failed:\n{message}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let manifest = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest
        .join("../..")
        .canonicalize()
        .map_err(|e| format!("cannot resolve the workspace root from {}: {e}", manifest.display()))?;
    let target = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let out = target.join("polyglot");
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;

    println!("cargo:rerun-if-changed=build.rs");
    for var in ["CARGO_TARGET_DIR", "SWITCHYARD_PYTHON", "SWITCHYARD_NPM"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let contract = contract_files(&workspace)?;
    for (path, _) in &contract {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for plugin in [&PYTHON, &JS] {
        for source in plugin.sources {
            println!("cargo:rerun-if-changed={}", manifest.join(plugin.dir).join(source).display());
        }
    }

    let python_wasm = build_python(&manifest.join(PYTHON.dir), &contract, &out)?;
    let js_wasm = build_js(&manifest.join(JS.dir), &contract, &out)?;

    let generated = format!(
        "/// Absolute path of the collections plugin component (Python, componentize-py {COMPONENTIZE_PY}).\n\
         pub const {}: &str = {:?};\n\
         /// Absolute path of the retail chat plugin component (JavaScript, componentize-js).\n\
         pub const {}: &str = {:?};\n\
         /// Directory for the host's compiled-component cache (`RuntimeBuilder::cache_dir`):\n\
         /// compiling these interpreter components takes about a minute on a busy 2-core\n\
         /// machine, so tests that load them should share this cache.\n\
         pub const COMPILED_CACHE_DIR: &str = {:?};\n",
        PYTHON.constant,
        python_wasm.display().to_string(),
        JS.constant,
        js_wasm.display().to_string(),
        out.join("compiled").display().to_string(),
    );
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);
    write(&out_dir.join("polyglot.rs"), generated.as_bytes())
}

/// The contract's WIT files (`<workspace>/wit/*.wit`) with their contents.
fn contract_files(workspace: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let dir = workspace.join("wit");
    let entries =
        fs::read_dir(&dir).map_err(|e| format!("cannot read the contract directory {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|ext| ext == "wit") {
            files.push((path.clone(), read(&path)?));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("no .wit files in {}", dir.display()));
    }
    Ok(files)
}

/// Copy the plugin's sources and the contract into a fresh staging directory
/// (`<out>/build/<plugin>`) and return it with the hash of everything copied.
fn stage(
    plugin: &Plugin,
    dir: &Path,
    contract: &[(PathBuf, Vec<u8>)],
    out: &Path,
    tool: &str,
) -> Result<(PathBuf, String)> {
    let staging = out.join("build").join(plugin.dir);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| format!("cannot clear {}: {e}", staging.display()))?;
    }
    let mut hash = Sha256::new();
    hash.update(tool.as_bytes());
    for source in plugin.sources {
        let bytes = read(&dir.join(source))?;
        hash.update(source.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
        write(&staging.join(source), &bytes)?;
    }
    for (path, bytes) in contract {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
        write(&staging.join("wit/deps/routing").join(&name), bytes)?;
    }
    let digest = hash.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok((staging, digest))
}

/// Whether `wasm` was built from inputs hashing to `digest`.
fn up_to_date(wasm: &Path, digest: &str) -> bool {
    wasm.is_file() && fs::read_to_string(stamp(wasm)).is_ok_and(|s| s.trim() == digest)
}

fn stamp(wasm: &Path) -> PathBuf {
    wasm.with_extension("wasm.sha256")
}

/// Build `python-collections` with componentize-py.
fn build_python(dir: &Path, contract: &[(PathBuf, Vec<u8>)], out: &Path) -> Result<PathBuf> {
    let wasm = out.join(format!("{}.wasm", PYTHON.dir));
    let tool = format!("componentize-py {COMPONENTIZE_PY}");
    let (staging, digest) = stage(&PYTHON, dir, contract, out, &tool)?;
    if up_to_date(&wasm, &digest) {
        return Ok(wasm);
    }
    let python = env::var("SWITCHYARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let pythonpath = componentize_py(&python, &out.join("tools/python"))?;

    let started = Instant::now();
    let partial = wasm.with_extension("wasm.partial");
    let mut command = Command::new(&python);
    command
        .current_dir(&staging)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-c", "import sys, componentize_py; sys.argv[0] = 'componentize-py'; componentize_py.script()"])
        .args(["-d", "wit", "-w", "collections", "componentize", "app", "-o"])
        .arg(&partial);
    if let Some(path) = pythonpath {
        command.env("PYTHONPATH", path);
    }
    run_tool(&mut command, &format!("componentize-py (building {})", PYTHON.dir))?;
    finish(&partial, &wasm, &digest, started)
}

/// Make componentize-py importable; returns the `PYTHONPATH` it needs, if any.
fn componentize_py(python: &str, tools: &Path) -> Result<Option<PathBuf>> {
    let probe = "import importlib.metadata as m; print(m.version('componentize-py'))";
    let version_in = |pythonpath: Option<&Path>| -> Option<String> {
        let mut command = Command::new(python);
        command.args(["-c", probe]);
        if let Some(path) = pythonpath {
            command.env("PYTHONPATH", path);
        }
        let output = command.output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    if tools.is_dir() && version_in(Some(tools)).as_deref() == Some(COMPONENTIZE_PY) {
        return Ok(Some(tools.to_owned()));
    }
    if version_in(None).as_deref() == Some(COMPONENTIZE_PY) {
        return Ok(None);
    }
    println!("cargo:warning=installing componentize-py {COMPONENTIZE_PY} into {}", tools.display());
    if tools.exists() {
        fs::remove_dir_all(tools).map_err(|e| format!("cannot clear {}: {e}", tools.display()))?;
    }
    run_tool(
        Command::new(python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--target"])
            .arg(tools)
            .arg(format!("componentize-py=={COMPONENTIZE_PY}")),
        &format!(
            "{python} -m pip install componentize-py=={COMPONENTIZE_PY} (needs Python 3 with pip and access to PyPI)"
        ),
    )?;
    match version_in(Some(tools)) {
        Some(version) if version == COMPONENTIZE_PY => Ok(Some(tools.to_owned())),
        other => Err(format!(
            "after installing componentize-py into {}, {python} finds version {other:?}, expected {COMPONENTIZE_PY}",
            tools.display()
        )),
    }
}

/// Build `js-retail-chat` with componentize-js (installed by `npm ci`).
fn build_js(dir: &Path, contract: &[(PathBuf, Vec<u8>)], out: &Path) -> Result<PathBuf> {
    let wasm = out.join(format!("{}.wasm", JS.dir));
    let lock = read(&dir.join("package-lock.json"))?;
    let lock_digest = Sha256::digest(&lock).iter().map(|b| format!("{b:02x}")).collect::<String>();
    let (staging, digest) = stage(&JS, dir, contract, out, "componentize-js from package-lock.json")?;
    if up_to_date(&wasm, &digest) {
        return Ok(wasm);
    }
    let npm = env::var("SWITCHYARD_NPM").unwrap_or_else(|_| "npm".to_owned());
    let installed = dir.join("node_modules/.switchyard-lock.sha256");
    let cli = dir.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    if !cli.is_file() || fs::read_to_string(&installed).map_or(true, |s| s.trim() != lock_digest) {
        println!("cargo:warning=installing componentize-js with `npm ci` in {}", dir.display());
        run_tool(
            Command::new(&npm).current_dir(dir).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]),
            &format!("`{npm} ci` in {} (needs Node.js 20+ with npm and access to the npm registry)", dir.display()),
        )?;
        if !cli.is_file() {
            return Err(format!("`npm ci` succeeded but {} is missing", cli.display()));
        }
        write(&installed, lock_digest.as_bytes())?;
    }

    let started = Instant::now();
    let partial = wasm.with_extension("wasm.partial");
    run_tool(
        Command::new("node")
            .current_dir(&staging)
            .arg(&cli)
            .args(["--wit", "wit", "--world-name", "retail-chat"])
            .args(["--disable", "stdio", "random", "clocks", "http", "fetch-event"])
            .arg("--out")
            .arg(&partial)
            .arg("app.js"),
        &format!("componentize-js (building {})", JS.dir),
    )?;
    finish(&partial, &wasm, &digest, started)
}

/// Move a finished build into place, stamp it, and say how long it took.
fn finish(partial: &Path, wasm: &Path, digest: &str, started: Instant) -> Result<PathBuf> {
    let header =
        fs::read(partial).map_err(|e| format!("the build wrote no component at {}: {e}", partial.display()))?;
    if header.get(..8) != Some(&[0, b'a', b's', b'm', 0x0d, 0, 0x01, 0][..]) {
        return Err(format!("{} is not a WebAssembly component", partial.display()));
    }
    fs::rename(partial, wasm).map_err(|e| format!("cannot move {} to {}: {e}", partial.display(), wasm.display()))?;
    write(&stamp(wasm), digest.as_bytes())?;
    println!(
        "cargo:warning=built {} ({:.1} MB) in {:.1} s",
        wasm.display(),
        header.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(wasm.to_owned())
}

/// Run a tool; on failure, the error names it and carries the end of its output.
fn run_tool(command: &mut Command, what: &str) -> Result<Output> {
    let output = command
        .output()
        .map_err(|e| format!("cannot start {what}: {e} (is {:?} installed and on PATH?)", command.get_program()))?;
    if output.status.success() {
        return Ok(output);
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    Err(format!("{what} failed ({}):\n{tail}", output.status))
}

fn env_var(name: &str) -> Result<String> {
    env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
