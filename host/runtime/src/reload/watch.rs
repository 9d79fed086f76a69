//! The plugin-directory watcher: `notify` events, debounced by
//! `notify-debouncer-full`, mapped to the departments whose files changed, and
//! reloaded one department at a time on the watcher's own thread (never on the
//! decision path). See [`crate::reload`] for the directory layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;

use notify_debouncer_full::notify::{EventKind, RecursiveMode, event::AccessKind, event::AccessMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::{Mode, ReloadManager, Trigger, parse_config, sha256_hex};
use crate::error::{Error, Result};

/// The component of a department: `<department>.wasm`.
const WASM: &str = ".wasm";
/// Its fixtures: `<department>.fixtures.toml`.
const FIXTURES: &str = ".fixtures.toml";
/// Its configuration: `<department>.config.toml`.
const CONFIG: &str = ".config.toml";

/// The department a file of the plugin directory belongs to, if any.
pub(crate) fn department_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    let department = [FIXTURES, CONFIG, WASM].iter().find_map(|suffix| name.strip_suffix(suffix))?;
    (!department.is_empty()).then(|| department.to_owned())
}

/// A department and the file of it that changed.
type ChangedFile = (String, PathBuf);

/// A running watch of one plugin directory. Dropping it stops watching (after
/// the reload in progress, if any).
pub struct Watcher {
    dir: PathBuf,
    debouncer: Option<Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Watcher {
    /// Start watching `dir`, then load every department already in it.
    pub(crate) fn start(manager: ReloadManager, dir: &Path) -> Result<Watcher> {
        let watch_error = |message: String| Error::Watch { path: dir.to_owned(), message };
        let dir = dir.canonicalize().map_err(|e| watch_error(e.to_string()))?;
        // (department, file that changed) from the debouncer to the worker.
        let (tx, rx): (Sender<ChangedFile>, Receiver<ChangedFile>) = channel();

        // Watch first, then scan: a file written in between is seen twice and
        // reloaded once (the content hash is the same).
        // The debouncer pairs renames and folds repeated events of a path; the
        // worker below then waits for `debounce` of quiet before reloading, so
        // the debouncer's own window can be short.
        let quiet = manager.options().debounce;
        let events = tx.clone();
        let mut debouncer = new_debouncer(quiet / 4, None, move |result: DebounceEventResult| match result {
            Ok(batch) => {
                for event in batch {
                    let relevant = matches!(
                        event.kind,
                        EventKind::Create(_)
                            | EventKind::Modify(_)
                            | EventKind::Remove(_)
                            | EventKind::Access(AccessKind::Close(AccessMode::Write))
                    );
                    if !relevant {
                        continue;
                    }
                    for path in &event.paths {
                        if let Some(department) = department_of(path) {
                            let _ = events.send((department, path.clone()));
                        }
                    }
                }
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!("plugin directory watcher: {error}");
                }
            }
        })
        .map_err(|e| watch_error(e.to_string()))?;
        debouncer.watch(&dir, RecursiveMode::NonRecursive).map_err(|e| watch_error(e.to_string()))?;

        let listing = std::fs::read_dir(&dir).map_err(|e| watch_error(e.to_string()))?;
        let mut found: Vec<PathBuf> = listing
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        found.sort();
        for path in found {
            if let Some(department) = department_of(&path) {
                manager.reload_from_dir(&dir, &department, &path);
            }
        }
        drop(tx);

        let worker_dir = dir.clone();
        let worker = std::thread::Builder::new()
            .name("switchyard-reload".to_owned())
            .spawn(move || {
                while let Ok((department, path)) = rx.recv() {
                    // Wait for the directory to be quiet: a save spread over
                    // several debounced batches (a slow chunked write) is one reload.
                    let mut touched: BTreeMap<String, PathBuf> = BTreeMap::new();
                    touched.insert(department, path);
                    let mut open = true;
                    while open {
                        match rx.recv_timeout(quiet) {
                            Ok((department, path)) => {
                                touched.insert(department, path);
                            }
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => open = false,
                        }
                    }
                    for (department, path) in touched {
                        manager.reload_from_dir(&worker_dir, &department, &path);
                    }
                }
            })
            .map_err(|e| watch_error(format!("cannot start the reload thread: {e}")))?;
        Ok(Watcher { dir, debouncer: Some(debouncer), worker: Some(worker) })
    }

    /// The watched directory (canonical path).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Stopping the debouncer drops its event handler and with it the last
        // sender, so the worker's loop ends after the reload in progress.
        if let Some(debouncer) = self.debouncer.take() {
            debouncer.stop();
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn read_optional(path: &Path) -> std::result::Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl ReloadManager {
    /// Reload `department` from its files in `dir` (a change of `changed` was
    /// seen), unless they are what was last tried. Failures are audited, not
    /// returned: the watcher has no caller to tell.
    pub(crate) fn reload_from_dir(&self, dir: &Path, department: &str, changed: &Path) {
        let wasm = dir.join(format!("{department}{WASM}"));
        let fixtures_path = dir.join(format!("{department}{FIXTURES}"));
        let config_path = dir.join(format!("{department}{CONFIG}"));
        let trigger = Trigger::watcher(changed);
        let source = wasm.display().to_string();
        let bytes = match std::fs::read(&wasm) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(department, "{} is gone; the running generation stays", wasm.display());
                return;
            }
            Err(e) => {
                self.record_refusal(department, String::new(), &source, &trigger, format!("cannot read {source}: {e}"));
                return;
            }
        };
        let sha256 = sha256_hex(&bytes);
        let texts = read_optional(&fixtures_path).and_then(|f| read_optional(&config_path).map(|c| (f, c)));
        let (fixtures_text, config_text) = match texts {
            Ok(texts) => texts,
            Err(reason) => {
                self.record_refusal(department, sha256, &source, &trigger, reason);
                return;
            }
        };
        let key = sha256_hex(
            format!("{sha256}\0{}\0{}", fixtures_text.as_deref().unwrap_or(""), config_text.as_deref().unwrap_or(""))
                .as_bytes(),
        );
        let base = {
            let slot = self.slot(department);
            let mut state = Self::lock(&slot);
            if state.last_tried.as_deref() == Some(key.as_str()) {
                tracing::debug!(department, "files unchanged since the last reload; nothing to do");
                return;
            }
            // The first look at a department whose active generation is already
            // this component (restored at a restart), or whose file was handled
            // before the restart: nothing to reload.
            let first_look = state.last_tried.is_none();
            state.last_tried = Some(key);
            let active_sha = self.inner.runtime.current(department).map(|p| p.load_report().sha256.clone());
            if first_look && active_sha.as_deref() == Some(sha256.as_str()) {
                tracing::debug!(department, "{} is the active generation already", wasm.display());
                return;
            }
            if first_look && state.watched_before.as_deref() == Some(sha256.as_str()) {
                tracing::debug!(department, "{} was handled before the restart", wasm.display());
                return;
            }
            state.base.clone()
        };
        let mut setup = base.clone();
        if let Some(text) = &config_text {
            match parse_config(text, &config_path) {
                Ok(config) => setup = base.overlaid(config),
                Err(error) => {
                    self.record_refusal(department, sha256, &source, &trigger, error.to_string());
                    return;
                }
            }
        }
        if let Some(text) = &fixtures_text {
            match switchyard_contract::fixtures::Fixtures::parse(text, &fixtures_path) {
                Ok(fixtures) => setup = setup.with_fixtures(fixtures),
                Err(error) => {
                    self.record_refusal(department, sha256, &source, &trigger, error.to_string());
                    return;
                }
            }
        }
        // The outcome (swap or rejection) is in the audit log and the events.
        let _ = self.admit(department, &bytes, source, trigger, Some(setup), Mode::Activate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_map_to_their_department() {
        assert_eq!(department_of(Path::new("/p/billing.wasm")).as_deref(), Some("billing"));
        assert_eq!(department_of(Path::new("/p/billing.fixtures.toml")).as_deref(), Some("billing"));
        assert_eq!(department_of(Path::new("/p/tech-support.config.toml")).as_deref(), Some("tech-support"));
        assert_eq!(department_of(Path::new("/p/.billing.wasm.tmp")), None);
        assert_eq!(department_of(Path::new("/p/.billing.wasm")), None);
        assert_eq!(department_of(Path::new("/p/billing.wasm~")), None);
        assert_eq!(department_of(Path::new("/p/notes.toml")), None);
        assert_eq!(department_of(Path::new("/p/.wasm")), None);
    }
}
