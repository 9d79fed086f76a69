//! `switchyard`: the command-line front of the Switchyard host. One subcommand per
//! task: `simulate` (run a scenario on a virtual clock and report), `serve` (the
//! routing daemon), `export-traffic` (a daemon's recorded traffic as a traffic
//! file) and `plugin` (the plugin author's tools).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchyard::report::{Report, html};
use switchyard::sim::{self, SimOptions, plugins, scenario::Scenario};
use switchyard::tools::record::{DecisionLog, RecordingRules};
use switchyard_core::rules::{BuiltInRules, RuleSet};

/// Route work to agents with sandboxed WebAssembly rule plugins.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario through the real routing core and the departments' plugins
    /// on a virtual clock; print a per-queue table and write reports.
    Simulate(SimulateArgs),
    /// Run the routing daemon: HTTP API, agent desktops, Prometheus metrics and a
    /// durable journal (prints the bound address on stdout).
    Serve(ServeArgs),
    /// Write a daemon's recorded traffic (its `DATA_DIR/traffic/` log) as a
    /// traffic file for `simulate --traffic`, so traffic can leave production
    /// without the journal.
    ExportTraffic(ExportArgs),
    /// Write, inspect and try rule plugins: new, check, run, replay.
    #[command(subcommand)]
    Plugin(switchyard::tools::cli::PluginCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Config file (TOML); see examples/switchyard.toml.
    #[arg(long, default_value = "switchyard.toml")]
    config: PathBuf,
    /// Listen here instead of the config's `listen` (port 0 picks a free port).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Keep the journal here instead of the config's `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The daemon's data directory (its `data_dir`).
    data_dir: PathBuf,
    /// Only the last N hours (default: all the log keeps).
    #[arg(long, value_name = "N")]
    hours: Option<f64>,
    /// Write here (JSON lines, see `sim/traffic.rs`).
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "traffic.jsonl")]
    output: PathBuf,
    /// Also write the scenario this traffic replays in (TOML, for `simulate
    /// --traffic`): the departments and queues of the daemon's `--config`, the
    /// roster as the log saw it (each agent available when it was), handle
    /// times for what the log lacks; no plugins (add `plugin =` per
    /// department for the rules that were active).
    #[arg(long, value_name = "SCENARIO.toml", requires = "config")]
    scenario: Option<PathBuf>,
    /// The daemon's config (for `--scenario`).
    #[arg(long, value_name = "switchyard.toml")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Seed of the random streams (overrides the scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the JSON report here.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    /// Record every rule decision's inputs and answer as JSON lines here, for
    /// `switchyard plugin replay`.
    #[arg(long, value_name = "DECISIONS.jsonl")]
    record: Option<PathBuf>,
    /// Replay this recorded traffic (JSON lines, see `sim/traffic.rs`) instead
    /// of the scenario's arrival streams; rosters and what the recording lacks
    /// come from the scenario.
    #[arg(long, value_name = "TRAFFIC.jsonl")]
    traffic: Option<PathBuf>,
    /// Write the run's traffic (every arrival and what became of it) here, for
    /// `--traffic`.
    #[arg(long, value_name = "TRAFFIC.jsonl")]
    record_traffic: Option<PathBuf>,
    /// Backtest: run the traffic (`--traffic`, or the scenario's own run)
    /// twice, with the scenario's rules and with this candidate component for
    /// the department (repeatable), and report both side by side.
    #[arg(long = "rules", value_name = "DEPARTMENT=CANDIDATE.wasm")]
    candidates: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        // A log that cannot be written (disk full, closed stderr) must not
        // cost a request: by default the subscriber reports its own write
        // errors with eprintln!, which panics when stderr fails too (seen as
        // 500s on every request once the disk filled up under load).
        .log_internal_errors(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate(args),
        Command::Serve(args) => Ok(switchyard::serve::run(switchyard::serve::ServeOptions {
            config: args.config,
            listen: args.listen,
            data_dir: args.data_dir,
        })?),
        Command::ExportTraffic(args) => export_traffic(args),
        Command::Plugin(command) => {
            if !switchyard::tools::cli::run_plugin_command(command)? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let scenario = Scenario::load(&args.scenario)?;
    let scenario_dir = args.scenario.parent().map(Path::to_path_buf).unwrap_or_default();
    if !args.candidates.is_empty() {
        return backtest(&args, &scenario, &scenario_dir);
    }
    let catalog = Arc::new(RwLock::new(switchyard_contract::Catalog::default()));
    let loaded = plugins::load(&scenario, &scenario_dir, &catalog)?;
    // Opt-in decision recording wraps every department's rules, plugin or built-in.
    let log = args.record.as_deref().map(DecisionLog::create).transpose()?;
    let rules: Vec<(String, Arc<dyn RuleSet>)> = match &log {
        None => loaded.rules.clone(),
        Some(log) => scenario
            .departments
            .iter()
            .map(|department| {
                let inner = loaded
                    .rules
                    .iter()
                    .find(|(name, _)| *name == department.name)
                    .map(|(_, rules)| rules.clone())
                    .unwrap_or_else(|| Arc::new(BuiltInRules));
                let recording = RecordingRules::new(&department.name, inner, catalog.clone(), log.clone());
                (department.name.clone(), Arc::new(recording) as Arc<dyn RuleSet>)
            })
            .collect(),
    };

    // A progress bar only when a person watches a terminal.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} simulating [{bar:40}] {percent}% {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_position(done.saturating_mul(1000) / total.max(1));
            bar.set_message(format!("{:.1} h", done as f64 / 3_600_000.0));
        }
    };
    let traffic = match &args.traffic {
        Some(path) => Some(sim::traffic::read(path)?),
        None => None,
    };
    let started = Instant::now();
    let run = sim::simulate(
        &scenario,
        SimOptions {
            seed: args.seed,
            rules,
            catalog: Some(catalog.clone()),
            progress: Some(&mut progress),
            record_traffic: args.record_traffic.is_some(),
            traffic,
            stop: None,
        },
    )?;
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = Report::build(&run, &loaded.figures());
    print!("{}", report.table());
    println!(
        "{} items, {} events in {:.2} s ({:.0} items/s)",
        run.items_created,
        run.events,
        elapsed.as_secs_f64(),
        run.items_created as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if let Some(path) = &args.record_traffic {
        sim::traffic::write(path, &run.traffic)?;
        println!("traffic: {} arrivals in {}", run.traffic.len(), path.display());
    }
    if let (Some(log), Some(path)) = (&log, &args.record) {
        log.flush()?;
        println!("decision log: {}", path.display());
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the JSON report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    if let Some(path) = &args.html {
        let title = format!("Switchyard simulation — {}", args.scenario.display());
        let page = html::render(&report, &title)?;
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        println!("HTML report: {}", path.display());
    }
    Ok(())
}

/// `switchyard export-traffic DATA_DIR`: the daemon's traffic log, joined
/// into the simulator's traffic format. A torn last line (the daemon was
/// killed while writing it) is skipped with a warning on stderr.
fn export_traffic(args: ExportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let recorded = switchyard::serve::traffic::export(&args.data_dir, args.hours, &args.output)?;
    for warning in &recorded.warnings {
        eprintln!("warning: {warning}");
    }
    if let (Some(path), Some(config)) = (&args.scenario, &args.config) {
        let config = switchyard::serve::config::ServeConfig::load(config)?;
        let scenario = switchyard::serve::backtest::scenario(&config, &recorded, &Default::default());
        let text = toml::to_string(&scenario).context("serialising the scenario")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("scenario: {}", path.display());
    }
    println!(
        "{} arrivals ({} lines in {} segments) written to {} in {:.2} s",
        recorded.arrivals.len(),
        recorded.lines,
        recorded.segments,
        args.output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `switchyard simulate --rules DEPARTMENT=CANDIDATE.wasm …`: the same traffic
/// through the active rules and the candidates, compared.
fn backtest(args: &SimulateArgs, scenario: &Scenario, scenario_dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(args.record.is_none(), "--record writes one run's decisions; a backtest has two (leave it out)");
    let candidates = args
        .candidates
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((department, path)) if !department.is_empty() && !path.is_empty() => {
                Ok((department.to_owned(), PathBuf::from(path)))
            }
            _ => anyhow::bail!("--rules {spec}: expected DEPARTMENT=CANDIDATE.wasm"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let traffic = match &args.traffic {
        Some(path) => Some((format!("recorded in {}", path.display()), sim::traffic::read(path)?)),
        None => None,
    };
    let started = Instant::now();
    let run = sim::backtest::backtest(scenario, scenario_dir, traffic, &candidates, args.seed)?;
    let elapsed = started.elapsed();
    if let Some(path) = &args.record_traffic {
        sim::traffic::write(path, &run.traffic)?;
        println!("traffic: {} arrivals in {}", run.traffic.len(), path.display());
    }
    let report = switchyard::report::backtest::BacktestReport::build(&run);
    print!("{}", report.table());
    println!("backtest in {:.2} s", elapsed.as_secs_f64());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the JSON report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    if let Some(path) = &args.html {
        let title = format!("Switchyard backtest — {}", args.scenario.display());
        let page = html::render_backtest(&report, &title)?;
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        println!("HTML report: {}", path.display());
    }
    Ok(())
}
