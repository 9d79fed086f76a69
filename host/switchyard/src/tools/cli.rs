//! The `switchyard plugin …` subcommands as clap types, so the binary only
//! dispatches. Each returns whether it succeeded; the binary turns that into the
//! exit code (0 ok, 1 a clear refusal such as failing fixtures).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::check::{CheckOptions, check};
use super::replay::{ReplayOptions, replay};
use super::run::{RunOptions, run};
use super::scaffold::{Lang, NewOptions, new_plugin};
use crate::error::{Error, Result};
use switchyard_contract::Hook;

/// Write, inspect and try rule plugins.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Scaffold a working plugin with fixtures.
    New(NewArgs),
    /// Contract version, hooks, imports, size, compile time and a fixture verdict.
    Check(CheckArgs),
    /// Run one hook on items given as JSON and print the decisions with timings.
    Run(RunArgs),
    /// Re-run a candidate plugin on recorded decisions and show where it differs.
    Replay(ReplayArgs),
}

/// `plugin new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Language: rust, python or js.
    #[arg(long, default_value = "rust")]
    pub lang: String,
    /// Plugin name (lower-case, dashes).
    pub name: String,
    /// Directory to create (default: ./NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Path of switchyard-sdk for a Rust plugin.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// `plugin check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The component.
    pub wasm: PathBuf,
    /// Fixture file (default: `<stem>.fixtures.toml` or `fixtures.toml` beside it).
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Department config value, `key=value` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
}

/// `plugin run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The component.
    pub wasm: PathBuf,
    /// Hook: prioritise, escalate or match.
    #[arg(long)]
    pub hook: String,
    /// JSON input (items, or item + agents for match).
    #[arg(long)]
    pub input: PathBuf,
    /// Department config value, `key=value` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Warm calls to time after the first.
    #[arg(long, default_value_t = 100)]
    pub repeat: u32,
}

/// `plugin replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The candidate component.
    pub wasm: PathBuf,
    /// Decision log (JSON lines) written by `simulate --record`.
    #[arg(long)]
    pub log: PathBuf,
    /// Only this department's records.
    #[arg(long)]
    pub department: Option<String>,
    /// Department config value, `key=value` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Print at most this many differences.
    #[arg(long, default_value_t = 50)]
    pub max_shown: usize,
}

fn hook_of(name: &str) -> Result<Hook> {
    match name {
        "prioritise" | "prioritize" => Ok(Hook::Prioritise),
        "escalate" => Ok(Hook::Escalate),
        "match" | "match-agents" => Ok(Hook::Match),
        other => Err(Error::Invalid(format!("unknown hook `{other}` (expected prioritise, escalate or match)"))),
    }
}

/// Run a `plugin` subcommand, printing to stdout. `Ok(false)` = a clear refusal.
pub fn run_plugin_command(command: PluginCommand) -> Result<bool> {
    let mut out = std::io::stdout().lock();
    match command {
        PluginCommand::New(args) => {
            let lang: Lang = args.lang.parse().map_err(Error::Invalid)?;
            let files = new_plugin(&NewOptions { lang, name: args.name, dir: args.dir, sdk: args.sdk })?;
            for file in files {
                println!("created {}", file.display());
            }
            Ok(true)
        }
        PluginCommand::Check(args) => {
            let options = CheckOptions { fixtures: args.fixtures, config: super::parse_config_pairs(&args.config)? };
            check(&args.wasm, &options, &mut out)
        }
        PluginCommand::Run(args) => {
            let options = RunOptions {
                hook: hook_of(&args.hook)?,
                config: super::parse_config_pairs(&args.config)?,
                repeat: args.repeat,
            };
            run(&args.wasm, &args.input, &options, &mut out)
        }
        PluginCommand::Replay(args) => {
            let options = ReplayOptions {
                department: args.department,
                config: super::parse_config_pairs(&args.config)?,
                max_shown: args.max_shown,
            };
            replay(&args.wasm, &args.log, &options, &mut out).map(|summary| summary.failures == 0)
        }
    }
}
