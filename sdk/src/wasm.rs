//! The component side of the contract: bindings for the `host` imports, and the
//! conversions between the generated WIT types and the SDK's plain types that the
//! export glue (emitted by `#[switchyard_sdk::rules]`) calls. Nothing here is for
//! plugin authors.

use crate::batch::{CandidateTable, ItemBatch, ItemRow};
use crate::context::Context;
use crate::rules::Rules;
use crate::types::{
    Channel, Escalation, EscalationAction, LogLevel, MatchResult, NameKind, Priority, QueueId, SkillId, SkillReq,
};

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

fn channel_from_wit(channel: wit::Channel) -> Channel {
    match channel {
        wit::Channel::Voice => Channel::Voice,
        wit::Channel::Chat => Channel::Chat,
        wit::Channel::Email => Channel::Email,
        wit::Channel::Case => Channel::Case,
    }
}

/// Move a lifted WIT batch into the SDK's batch.
pub fn batch_from_wit(batch: wit::ItemBatch) -> ItemBatch {
    ItemBatch {
        now_ms: batch.now_ms,
        rows: batch
            .rows
            .into_iter()
            .map(|r| ItemRow {
                id: r.id,
                channel: channel_from_wit(r.channel),
                queue: r.queue,
                tier: r.tier,
                contacts: r.contacts,
                priority: r.priority,
                age_ms: r.age_ms,
                due_in_ms: r.due_in_ms,
                value: r.value,
                skill_start: r.skill_start,
                skill_count: r.skill_count,
                attr_start: r.attr_start,
                attr_count: r.attr_count,
            })
            .collect(),
        skills: batch.skills.into_iter().map(|s| SkillReq { skill: SkillId(s.skill), level: s.level }).collect(),
        attr_keys: batch.attr_keys,
        attr_value_ends: batch.attr_value_ends,
        attr_values: batch.attr_values,
    }
}

/// Move a lifted WIT candidate table into the SDK's table.
pub fn table_from_wit(table: wit::CandidateTable) -> CandidateTable {
    CandidateTable {
        agent_ids: table.agent_ids,
        skill_columns: table.skill_columns,
        proficiency: table.proficiency,
        idle_ms: table.idle_ms,
        occupancy: table.occupancy,
        load: table.load,
    }
}

fn priority_to_wit(p: Priority) -> wit::Priority {
    wit::Priority { priority: p.priority, queue: p.queue.map(|q: QueueId| q.0), reason: p.reason }
}

fn escalation_to_wit(e: Escalation) -> wit::Escalation {
    wit::Escalation {
        actions: e
            .actions
            .into_iter()
            .map(|a| match a {
                EscalationAction::RaiseBy(n) => wit::EscalationAction::RaiseBy(n),
                EscalationAction::RaiseTo(n) => wit::EscalationAction::RaiseTo(n),
                EscalationAction::RelaxLevels(n) => wit::EscalationAction::RelaxLevels(n),
                EscalationAction::DropSkill(s) => wit::EscalationAction::DropSkill(s.0),
                EscalationAction::MoveTo(q) => wit::EscalationAction::MoveTo(q.0),
                EscalationAction::Alert(m) => wit::EscalationAction::Alert(m),
            })
            .collect(),
        recheck_in_ms: e.recheck_in_ms,
    }
}

fn match_to_wit(m: MatchResult) -> wit::MatchResult {
    match m {
        MatchResult::Scores(s) => wit::MatchResult::Scores(s),
        MatchResult::Ranked(r) => wit::MatchResult::Ranked(r),
    }
}

thread_local! {
    /// One context per instance: its name cache lives as long as the instance.
    static CONTEXT: Context = Context::component();
}

/// Export glue for `prioritise`.
pub fn export_prioritise<R: Rules>(rules: &R, batch: wit::ItemBatch) -> Vec<wit::Priority> {
    let batch = batch_from_wit(batch);
    CONTEXT.with(|ctx| crate::rules::prioritise_batch(rules, ctx, &batch).into_iter().map(priority_to_wit).collect())
}

/// Export glue for `escalate`.
pub fn export_escalate<R: Rules>(rules: &R, batch: wit::ItemBatch) -> Vec<wit::Escalation> {
    let batch = batch_from_wit(batch);
    CONTEXT.with(|ctx| crate::rules::escalate_batch(rules, ctx, &batch).into_iter().map(escalation_to_wit).collect())
}

/// Export glue for `match-agents`.
pub fn export_match<R: Rules>(rules: &R, item: wit::ItemBatch, table: wit::CandidateTable) -> wit::MatchResult {
    let batch = batch_from_wit(item);
    let table = table_from_wit(table);
    CONTEXT.with(|ctx| match_to_wit(crate::rules::match_one(rules, ctx, &batch, &table)))
}
