//! The component side of the contract: bindings for the `host` imports (and the
//! conversions to them), the per-instance [`Context`], and the hook bodies the
//! export glue emitted by `#[switchyard_sdk::rules]` calls. The hooks' canonical
//! ABI (lifting batches in place, lowering answers, releasing them) lives in
//! `crate::abi`. Nothing here is for plugin authors.

use crate::abi::FlatBatch;
use crate::context::Context;
use crate::rules::Rules;
use crate::types::{LogLevel, NameKind};

/// Bindings of the `rules-base` world (the host imports and the shared types).
/// The plugin's export glue reuses these types through wit-bindgen's `with`.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "switchyard:routing/rules-base@0.1.0",
        generate_all,
    });
}

use bindings::switchyard::routing::{host, types as wit};

pub(crate) fn names(kind: NameKind, from: u32) -> Vec<String> {
    let kind = match kind {
        NameKind::Skill => wit::NameKind::Skill,
        NameKind::Queue => wit::NameKind::Queue,
        NameKind::Attribute => wit::NameKind::Attribute,
    };
    host::names(kind, from)
}

pub(crate) fn config(key: &str) -> Option<String> {
    host::config(key)
}

pub(crate) fn now_ms() -> u64 {
    host::now_ms()
}

pub(crate) fn log(level: LogLevel, message: &str, fields: &[(&str, &str)]) {
    let level = match level {
        LogLevel::Trace => wit::LogLevel::Trace,
        LogLevel::Debug => wit::LogLevel::Debug,
        LogLevel::Info => wit::LogLevel::Info,
        LogLevel::Warn => wit::LogLevel::Warn,
        LogLevel::Error => wit::LogLevel::Error,
    };
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    host::log(level, message, &fields);
}

thread_local! {
    /// One context per instance: its name cache lives as long as the instance.
    static CONTEXT: Context = Context::component();
}

/// Export glue for `prioritise`: `abi::prioritise` with the instance's context.
///
/// # Safety
/// Only as the body of the `prioritiser#prioritise` export (see `crate::abi`).
pub unsafe fn export_prioritise<R: Rules>(rules: &R, batch: FlatBatch) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    CONTEXT.with(|ctx| unsafe { crate::abi::prioritise(rules, ctx, batch) })
}

/// Export glue for `escalate`: `abi::escalate` with the instance's context.
///
/// # Safety
/// Only as the body of the `escalator#escalate` export (see `crate::abi`).
pub unsafe fn export_escalate<R: Rules>(rules: &R, batch: FlatBatch) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    CONTEXT.with(|ctx| unsafe { crate::abi::escalate(rules, ctx, batch) })
}

/// Export glue for `match-agents`: `abi::match_agents` with the instance's context.
///
/// # Safety
/// Only as the body of the `matcher#match-agents` export (see `crate::abi`).
pub unsafe fn export_match<R: Rules>(rules: &R, params: *mut u8) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    CONTEXT.with(|ctx| unsafe { crate::abi::match_agents(rules, ctx, params) })
}
