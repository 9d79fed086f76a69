//! Loading the departments' rule plugins named in a scenario.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::collections::BTreeMap;

use super::scenario::Scenario;
use crate::error::{Error, Result};
use crate::report::PluginFigures;
use crate::rules::{RuleSet, SharedCatalog};

/// The command that builds the bundled department plugins.
pub const BUILD_HINT: &str = "cargo build --release --target wasm32-wasip2 -p billing -p claims -p tech-support";

/// Rule sets loaded for a scenario, and what reports their figures.
pub struct LoadedRules {
    /// (department, rules) for every department with a plugin.
    pub rules: Vec<(String, Arc<dyn RuleSet>)>,
    /// (department, plugin path) for the report.
    pub plugins: Vec<(String, PathBuf)>,
}

impl LoadedRules {
    /// Each plugin's figures so far (calls, fallbacks, latency), by department.
    pub fn figures(&self) -> BTreeMap<String, PluginFigures> {
        self.plugins
            .iter()
            .map(|(department, path)| {
                let figures = PluginFigures {
                    path: path.display().to_string(),
                    calls: 0,
                    fallbacks: 0,
                    mean_latency_us: None,
                    max_latency_us: None,
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
pub fn load(scenario: &Scenario, scenario_dir: &Path, _catalog: &SharedCatalog) -> Result<LoadedRules> {
    let mut loaded = LoadedRules { rules: Vec::new(), plugins: Vec::new() };
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
        loaded.plugins.push((department.name.clone(), path.clone()));
        return Err(Error::Invalid(format!(
            "department `{}`: loading plugin {} needs the plugin runtime, which this build does not have yet",
            department.name,
            path.display()
        )));
    }
    Ok(loaded)
}
