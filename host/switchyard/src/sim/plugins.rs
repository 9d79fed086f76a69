//! Loading the departments' rule plugins named in a scenario.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::collections::BTreeMap;

use super::scenario::Scenario;
use crate::error::{Error, Result};
use crate::report::PluginFigures;
use switchyard_core::rules::{RuleSet, SharedCatalog};
use switchyard_runtime::plugin::DepartmentConfig;
use switchyard_runtime::runtime::Runtime;

/// The command that builds the bundled department plugins.
pub const BUILD_HINT: &str = "cargo build --release --target wasm32-wasip2 -p billing -p claims -p tech-support";

/// Rule sets loaded for a scenario, and what reports their figures.
pub struct LoadedRules {
    /// (department, rules) for every department with a plugin.
    pub rules: Vec<(String, Arc<dyn RuleSet>)>,
    /// (department, plugin path) for the report.
    pub plugins: Vec<(String, PathBuf)>,
    /// The plugin runtime (kept alive for the run; `None` without plugins).
    pub runtime: Option<Runtime>,
}

impl LoadedRules {
    /// Each plugin's figures so far (calls, fallbacks, latency), by department.
    pub fn figures(&self) -> BTreeMap<String, PluginFigures> {
        self.plugins
            .iter()
            .map(|(department, path)| {
                let stats = self.runtime.as_ref().and_then(|r| r.stats(department));
                let us = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e6);
                let figures = PluginFigures {
                    path: path.display().to_string(),
                    calls: stats.as_ref().map(|s| s.calls.total()).unwrap_or(0),
                    fallbacks: stats.as_ref().map(|s| s.failures.total()).unwrap_or(0),
                    p50_latency_us: stats.as_ref().and_then(|s| us(s.latency.p50())),
                    p99_latency_us: stats.as_ref().and_then(|s| us(s.latency.p99())),
                };
                (department.clone(), figures)
            })
            .collect()
    }
}

/// Resolve a department's plugin path against the scenario file's folder.
pub fn plugin_path(scenario_dir: &Path, plugin: &Path) -> PathBuf {
    if plugin.is_absolute() { plugin.to_owned() } else { scenario_dir.join(plugin) }
}

/// Load every plugin named in `scenario` (paths relative to `scenario_dir`).
pub fn load(scenario: &Scenario, scenario_dir: &Path, catalog: &SharedCatalog) -> Result<LoadedRules> {
    let mut loaded = LoadedRules { rules: Vec::new(), plugins: Vec::new(), runtime: None };
    for department in &scenario.departments {
        let Some(plugin) = &department.plugin else { continue };
        let path = plugin_path(scenario_dir, plugin);
        if !path.is_file() {
            return Err(Error::Config {
                path: path.clone(),
                message: format!(
                    "plugin of department `{}` not found; build the department plugins first: {BUILD_HINT}",
                    department.name
                ),
            });
        }
        if loaded.runtime.is_none() {
            loaded.runtime = Some(Runtime::builder().catalog(catalog.clone()).build()?);
        }
        let Some(runtime) = loaded.runtime.as_ref() else { continue };
        let mut config = DepartmentConfig::new();
        for (key, value) in &department.config {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            config = config.with(key.clone(), text);
        }
        runtime.register_file(&department.name, &path, config)?;
        loaded.rules.push((department.name.clone(), runtime.rules(&department.name)));
        loaded.plugins.push((department.name.clone(), path.clone()));
    }
    Ok(loaded)
}
