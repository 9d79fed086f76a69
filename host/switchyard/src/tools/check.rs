//! `switchyard plugin check FILE.wasm`: what a component is and whether it is fit
//! to deploy — contract version and hooks it exports, imports it needs, size,
//! compile time, whether it instantiates within the default limits, and whether
//! it passes its fixtures. One verdict line and an exit code.
//!
//! Fixtures are looked up beside the component (`<stem>.fixtures.toml`, then
//! `fixtures.toml`) unless given with `--fixtures`.

use std::io::Write;
use std::path::{Path, PathBuf};

use switchyard_contract::fixtures::Fixtures;

use crate::error::{Error, Result};
use switchyard_runtime::plugin::DepartmentConfig;

/// What `check` needs besides the component.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The fixture file; `None` looks beside the component.
    pub fixtures: Option<PathBuf>,
    /// Extra department config values (`key=value`), over the fixtures' config.
    pub config: Vec<(String, String)>,
}

/// The fixture file that belongs to `wasm`, if there is one beside it.
pub fn fixtures_beside(wasm: &Path) -> Option<PathBuf> {
    let dir = wasm.parent()?;
    let stem = wasm.file_stem()?.to_string_lossy();
    [dir.join(format!("{stem}.fixtures.toml")), dir.join("fixtures.toml")].into_iter().find(|p| p.is_file())
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Check the component at `wasm`, writing the report to `out`. `Ok(true)` means
/// fit to deploy; `Ok(false)` a clear refusal (load error or failing fixtures).
pub fn check(wasm: &Path, options: &CheckOptions, out: &mut dyn Write) -> Result<bool> {
    let io = |e: std::io::Error| Error::Invalid(format!("cannot write the report: {e}"));
    let bytes = std::fs::read(wasm).map_err(|source| Error::Io { path: wasm.to_owned(), source })?;
    writeln!(out, "plugin       {}", wasm.display()).map_err(io)?;
    writeln!(out, "size         {}", human_size(bytes.len() as u64)).map_err(io)?;

    let fixtures_path = options.fixtures.clone().or_else(|| fixtures_beside(wasm));
    let fixtures = match &fixtures_path {
        Some(path) => match Fixtures::load(path) {
            Ok(f) => Some(f),
            Err(err) => {
                writeln!(out, "fixtures     {err}").map_err(io)?;
                writeln!(out, "verdict      FAIL: the fixture file is not usable").map_err(io)?;
                return Ok(false);
            }
        },
        None => None,
    };
    let mut config = DepartmentConfig::new();
    for (k, v) in fixtures.iter().flat_map(|f| f.config.iter()) {
        config = config.with(k.clone(), v.clone());
    }
    for (k, v) in &options.config {
        config = config.with(k.clone(), v.clone());
    }

    let runtime = super::tool_runtime()?;
    let name = wasm.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into());
    let plugin = match runtime.load_bytes("check", &name, &bytes, config) {
        Ok(plugin) => plugin,
        Err(err) => {
            writeln!(out, "load         {err}").map_err(io)?;
            writeln!(out, "verdict      FAIL: the host would refuse this component").map_err(io)?;
            return Ok(false);
        }
    };
    let report = plugin.load_report();
    writeln!(out, "sha256       {}", report.sha256).map_err(io)?;
    writeln!(out, "contract     switchyard:routing@{}", switchyard_runtime::contract::CONTRACT_VERSION).map_err(io)?;
    let hook =
        |exported: bool, name: &str| if exported { format!("{name} (plugin)") } else { format!("{name} (built-in)") };
    writeln!(
        out,
        "hooks        {}, {}, {}",
        hook(report.hooks.prioritise, "prioritise"),
        hook(report.hooks.escalate, "escalate"),
        hook(report.hooks.match_agents, "match")
    )
    .map_err(io)?;
    // The sandbox's compile is a cache hit here: the load above compiled it.
    let compiled = runtime.sandbox().compile(&bytes).map_err(Error::Invalid)?;
    let imports: Vec<String> = compiled
        .component
        .component_type()
        .imports(runtime.sandbox().engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    writeln!(out, "imports      {}", if imports.is_empty() { "none".to_owned() } else { imports.join(", ") })
        .map_err(io)?;
    writeln!(
        out,
        "compile      {:.1} ms{}",
        report.compile_time.as_secs_f64() * 1e3,
        if report.cache_hit { " (from the compiled cache)" } else { "" }
    )
    .map_err(io)?;
    writeln!(out, "instantiate  ok within the default limits").map_err(io)?;

    let Some(fixtures) = fixtures else {
        writeln!(out, "fixtures     none found beside the component (give one with --fixtures)").map_err(io)?;
        writeln!(out, "verdict      OK (loads and instantiates; no fixtures checked)").map_err(io)?;
        return Ok(true);
    };
    let cases = fixtures.cases();
    let mut failed = 0;
    writeln!(out, "fixtures     {} ({} cases)", fixtures.path.display(), cases.len()).map_err(io)?;
    for case in &cases {
        match switchyard_runtime::reload::validate::run_case(&plugin, case, runtime.catalog()) {
            Ok(took) => writeln!(out, "  pass  {} `{}` ({:.0} µs)", case.hook(), case.name(), took.as_secs_f64() * 1e6)
                .map_err(io)?,
            Err(reason) => {
                failed += 1;
                writeln!(out, "  FAIL  {reason}").map_err(io)?;
            }
        }
    }
    if failed == 0 {
        writeln!(out, "verdict      OK: {} fixture cases pass", cases.len()).map_err(io)?;
        Ok(true)
    } else {
        writeln!(out, "verdict      FAIL: {failed} of {} fixture cases fail", cases.len()).map_err(io)?;
        Ok(false)
    }
}
