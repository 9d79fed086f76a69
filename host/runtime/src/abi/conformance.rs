//! ABI conformance: the fast path (this module's parent, what the runtime
//! uses) and wasmtime's generated lowering (`contract::bindings`) must put the
//! same values into a plugin.
//!
//! Random batches and candidate tables go both ways to two echo plugins:
//! `echo-abi` (`plugins/echo-abi`, lifted by wit-bindgen code generated from
//! the WIT) and `echo-sdk` (`plugins/echo-sdk`, the same answers through the
//! SDK's hand-written guest glue, `sdk/src/abi.rs`). Each property requires, of
//! each plugin,
//!
//! - the same answer from both paths (and, for `prioritise` and `escalate`,
//!   from the hand-written lift of the answer);
//! - that the answer echoes exactly what was sent: the plugin serialises every
//!   field of every row, skill and attribute (and digests every candidate
//!   column), and [`describe`] / [`digest`] recompute the same from the inputs;
//! - the same bytes in the plugin's memory for `list<item-row>` and
//!   `list<skill-req>`, observed by wrapping each list's lowering ([`Spy`]), in
//!   the flat (`prioritise`) and in-memory (`match-agents`) parameter forms.
//!   Padding is compared as zero on the fast path only: wasmtime leaves it as
//!   the guest allocator handed it over.
//!
//! A field swapped in `item-row` (or any other layout drift of the hand-written
//! rows) fails all three.

use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use proptest::prelude::*;
use switchyard_contract::{
    CandidateTable, Catalog, Channel, Escalation, EscalationAction, ItemBatch, ItemRow, Priority, QueueId, SkillId,
    SkillReq,
};
use wasmtime::component::{ComponentType, InstancePre, Lower};
use wasmtime::{Store, ValRaw};

use super::{
    ArenaLease, BatchArg, CanonicalAbiInfo, ComponentNamedList, Declared, EscalationsAnswer, InstanceType,
    InterfaceType, ListAlloc, LowerContext, MatchArgs, PrioritiesAnswer,
};
use super::{ITEM_ROW, SKILL_REQ};
use crate::contract::bindings::exports::switchyard::routing::{escalator, matcher, prioritiser};
use crate::contract::{self, wit};
use crate::sandbox::{EngineOptions, Limits, PluginState, Sandbox, StoreSpec, WasiPolicy};
use switchyard_contract::layout::RecordLayout;

// ---------------------------------------------------------------------------
// The echo plugin, loaded once
// ---------------------------------------------------------------------------

/// Which echo plugin, and so which answers to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// `plugins/echo-abi` (wit-bindgen): `now-ms` in row 0's description only;
    /// queue and recheck for even batch indices; `match-agents` digests every row.
    Abi,
    /// `plugins/echo-sdk` (the SDK): `now-ms` in every description; queue and
    /// recheck for even ids; `match-agents` sees the first row only.
    Sdk,
}

const FLAVOURS: [Flavour; 2] = [Flavour::Abi, Flavour::Sdk];

struct Echo {
    sandbox: Sandbox,
    pre: InstancePre<PluginState>,
    spec: StoreSpec,
}

fn echo(flavour: Flavour) -> &'static Echo {
    static ABI: OnceLock<Echo> = OnceLock::new();
    static SDK: OnceLock<Echo> = OnceLock::new();
    let (cell, path) = match flavour {
        Flavour::Abi => (&ABI, switchyard_plugin_artifacts::ECHO_ABI),
        Flavour::Sdk => (&SDK, switchyard_plugin_artifacts::ECHO_SDK),
    };
    cell.get_or_init(|| {
        let sandbox = Sandbox::new(EngineOptions { pool: None, ..EngineOptions::default() }).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let component = sandbox.compile(&bytes).unwrap().component;
        let pre = sandbox.link(&component).unwrap();
        let spec = StoreSpec {
            plugin: Arc::from(path),
            config: Arc::default(),
            catalog: Arc::new(RwLock::new(Catalog::default())),
            limits: Limits { memory_bytes: 64 << 20, ..Limits::default() },
            wasi: WasiPolicy::default(),
        };
        Echo { sandbox, pre, spec }
    })
}

/// A fresh instance with a generous deadline (debug build, shared cores).
fn instance(flavour: Flavour) -> (Store<PluginState>, wasmtime::component::Instance) {
    let echo = echo(flavour);
    let mut store = Store::new(echo.sandbox.engine(), PluginState::new(&echo.spec));
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(echo.sandbox.deadline_ticks(Duration::from_secs(60)));
    let instance = echo.pre.instantiate(&mut store).unwrap();
    (store, instance)
}

fn func(
    store: &mut Store<PluginState>,
    instance: &wasmtime::component::Instance,
    interface: &str,
    name: &str,
) -> wasmtime::component::Func {
    let exported = instance.get_export_index(&mut *store, None, interface).unwrap();
    let index = instance.get_export_index(&mut *store, Some(&exported), name).unwrap();
    instance.get_func(&mut *store, index).unwrap()
}

// ---------------------------------------------------------------------------
// What the plugins answer, recomputed from the inputs (mirrors plugins/echo-*)
// ---------------------------------------------------------------------------

const FNV_START: u32 = 0x811c_9dc5;

fn fnv(hash: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(hash, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn digest(text: &str) -> u32 {
    fnv(FNV_START, text.as_bytes())
}

/// The echo plugins' serialisation of row `i` with its skills and attributes.
fn describe(flavour: Flavour, batch: &ItemBatch, i: usize) -> String {
    let row = &batch.rows[i];
    let mut out = String::new();
    if i == 0 || flavour == Flavour::Sdk {
        write!(out, "now={};", batch.now_ms).unwrap();
    }
    write!(
        out,
        "id={};channel={};queue={};tier={};contacts={};priority={};age={};due={};value={:#x};skills={}+{};attrs={}+{}",
        row.id,
        row.channel.index(),
        row.queue,
        row.tier,
        row.contacts,
        row.priority,
        row.age_ms,
        row.due_in_ms,
        row.value.to_bits(),
        row.skill_start,
        row.skill_count,
        row.attr_start,
        row.attr_count,
    )
    .unwrap();
    out.push_str(";[");
    let (start, count) = (row.skill_start as usize, row.skill_count as usize);
    for s in &batch.skills[start..start + count] {
        write!(out, "{}:{},", s.skill.0, s.level).unwrap();
    }
    out.push_str("];{");
    let (start, count) = (row.attr_start as usize, row.attr_count as usize);
    for k in start..start + count {
        let from = if k == 0 { 0 } else { batch.attr_value_ends[k - 1] as usize };
        let to = batch.attr_value_ends[k] as usize;
        write!(out, "{}={:?},", batch.attr_keys[k], &batch.attr_values[from..to]).unwrap();
    }
    out.push('}');
    out
}

/// Whether the plugin sets the optional parts (queue, recheck) for row `i`.
fn even(flavour: Flavour, batch: &ItemBatch, i: usize) -> bool {
    match flavour {
        Flavour::Abi => i.is_multiple_of(2),
        Flavour::Sdk => batch.rows[i].id.is_multiple_of(2),
    }
}

fn expected_priorities(flavour: Flavour, batch: &ItemBatch) -> Vec<Priority> {
    (0..batch.rows.len())
        .map(|i| {
            let text = describe(flavour, batch, i);
            let queue = even(flavour, batch, i).then_some(QueueId(batch.rows[i].queue));
            Priority { priority: digest(&text) as i32, queue, reason: Some(text) }
        })
        .collect()
}

fn expected_escalations(flavour: Flavour, batch: &ItemBatch) -> Vec<wit::Escalation> {
    (0..batch.rows.len())
        .map(|i| {
            let row = &batch.rows[i];
            let text = describe(flavour, batch, i);
            let mut actions = vec![
                wit::EscalationAction::RaiseBy(row.priority),
                wit::EscalationAction::RaiseTo(digest(&text) as i32),
                wit::EscalationAction::RelaxLevels(row.tier),
                wit::EscalationAction::MoveTo(row.queue),
            ];
            let (start, count) = (row.skill_start as usize, row.skill_count as usize);
            actions
                .extend(batch.skills[start..start + count].iter().map(|s| wit::EscalationAction::DropSkill(s.skill.0)));
            actions.push(wit::EscalationAction::Alert(text));
            wit::Escalation { actions, recheck_in_ms: even(flavour, batch, i).then_some(row.age_ms) }
        })
        .collect()
}

fn expected_match(flavour: Flavour, item: &ItemBatch, table: &CandidateTable) -> wit::MatchResult {
    let rows = match flavour {
        Flavour::Abi => item.rows.len(),
        // The SDK answers an empty batch itself, and shows the rule row 0 only.
        Flavour::Sdk if item.rows.is_empty() => return wit::MatchResult::Ranked(Vec::new()),
        Flavour::Sdk => 1,
    };
    let mut base = FNV_START;
    for i in 0..rows {
        base = fnv(base, describe(flavour, item, i).as_bytes());
    }
    for column in &table.skill_columns {
        base = fnv(base, &column.to_le_bytes());
    }
    let k = table.skill_columns.len();
    let scores = (0..table.agent_ids.len())
        .map(|i| {
            let mut h = fnv(base, &table.agent_ids[i].to_le_bytes());
            h = fnv(h, &table.proficiency[i * k..(i + 1) * k]);
            h = fnv(h, &table.idle_ms[i].to_le_bytes());
            h = fnv(h, &table.occupancy[i].to_bits().to_le_bytes());
            h = fnv(h, &table.load[i * 4..(i + 1) * 4]);
            (h >> 8) as f32
        })
        .collect();
    wit::MatchResult::Scores(scores)
}

// ---------------------------------------------------------------------------
// The generated bindings' side
// ---------------------------------------------------------------------------

fn wit_channel(channel: Channel) -> wit::Channel {
    match channel {
        Channel::Voice => wit::Channel::Voice,
        Channel::Chat => wit::Channel::Chat,
        Channel::Email => wit::Channel::Email,
        Channel::Case => wit::Channel::Case,
    }
}

fn wit_row(row: &ItemRow) -> wit::ItemRow {
    wit::ItemRow {
        id: row.id,
        channel: wit_channel(row.channel),
        queue: row.queue,
        tier: row.tier,
        contacts: row.contacts,
        priority: row.priority,
        age_ms: row.age_ms,
        due_in_ms: row.due_in_ms,
        value: row.value,
        skill_start: row.skill_start,
        skill_count: row.skill_count,
        attr_start: row.attr_start,
        attr_count: row.attr_count,
    }
}

fn wit_skill(skill: &SkillReq) -> wit::SkillReq {
    wit::SkillReq { skill: skill.skill.0, level: skill.level }
}

fn wit_batch(batch: &ItemBatch) -> wit::ItemBatch {
    wit::ItemBatch {
        now_ms: batch.now_ms,
        rows: batch.rows.iter().map(wit_row).collect(),
        skills: batch.skills.iter().map(wit_skill).collect(),
        attr_keys: batch.attr_keys.clone(),
        attr_value_ends: batch.attr_value_ends.clone(),
        attr_values: batch.attr_values.clone(),
    }
}

fn wit_table(table: &CandidateTable) -> wit::CandidateTable {
    wit::CandidateTable {
        agent_ids: table.agent_ids.clone(),
        skill_columns: table.skill_columns.clone(),
        proficiency: table.proficiency.clone(),
        idle_ms: table.idle_ms.clone(),
        occupancy: table.occupancy.clone(),
        load: table.load.clone(),
    }
}

fn sdk_priority(p: wit::Priority) -> Priority {
    Priority { priority: p.priority, queue: p.queue.map(QueueId), reason: p.reason }
}

fn sdk_escalation(e: wit::Escalation) -> Escalation {
    let actions = e
        .actions
        .into_iter()
        .map(|a| match a {
            wit::EscalationAction::RaiseBy(n) => EscalationAction::RaiseBy(n),
            wit::EscalationAction::RaiseTo(n) => EscalationAction::RaiseTo(n),
            wit::EscalationAction::RelaxLevels(n) => EscalationAction::RelaxLevels(n),
            wit::EscalationAction::DropSkill(s) => EscalationAction::DropSkill(SkillId(s)),
            wit::EscalationAction::MoveTo(q) => EscalationAction::MoveTo(QueueId(q)),
            wit::EscalationAction::Alert(m) => EscalationAction::Alert(m),
        })
        .collect();
    Escalation { actions, recheck_in_ms: e.recheck_in_ms }
}

/// A match result with every score's bits (NaN-safe equality).
fn match_bits(result: &wit::MatchResult) -> (u8, Vec<u32>) {
    match result {
        wit::MatchResult::Scores(scores) => (0, scores.iter().map(|s| s.to_bits()).collect()),
        wit::MatchResult::Ranked(order) => (1, order.clone()),
    }
}

// ---------------------------------------------------------------------------
// Observing the bytes a list lowering writes
// ---------------------------------------------------------------------------

/// A list lowered by `inner`, its bytes copied out of the guest's memory once
/// written: `elem` bytes per element.
struct Spy<'s, T> {
    inner: T,
    elem: usize,
    seen: &'s Mutex<Vec<u8>>,
}

impl<T> Spy<'_, T> {
    fn record<U>(&self, cx: &mut LowerContext<'_, U>, ptr: u32, len: u32) -> wasmtime::Result<()> {
        let (ptr, bytes) = (ptr as usize, len as usize * self.elem);
        let memory = cx.as_slice_mut();
        let written = memory.get(ptr..ptr + bytes).ok_or_else(|| wasmtime::format_err!("spied list out of bounds"))?;
        *self.seen.lock().unwrap() = written.to_vec();
        Ok(())
    }
}

// SAFETY: exactly `T`'s lowered form, ABI and type check.
unsafe impl<T: ComponentType<Lower = [ValRaw; 2]>> ComponentType for Spy<'_, T> {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = T::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        T::typecheck(ty, types)
    }
}

// SAFETY: lowering is `T`'s; afterwards only reads guest memory, bounds-checked.
unsafe impl<T: Lower<Lower = [ValRaw; 2]>> Lower for Spy<'_, T> {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; 2]>,
    ) -> wasmtime::Result<()> {
        self.inner.linear_lower_to_flat(cx, ty, dst)?;
        // SAFETY: `inner` initialised the pointer pair.
        let [ptr, len] = unsafe { dst.assume_init_ref() };
        self.record(cx, ptr.get_u32(), len.get_u32())
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        self.inner.linear_lower_to_memory(cx, ty, offset)?;
        let ptr = u32::from_le_bytes(*cx.get::<4>(offset));
        let len = u32::from_le_bytes(*cx.get::<4>(offset + 4));
        self.record(cx, ptr, len)
    }
}

/// An `item-batch` whose row and skill lists, lowered by the generated
/// bindings' types, are spied on.
#[derive(ComponentType, Lower)]
#[component(record)]
struct GeneratedSpied<'a> {
    #[component(name = "now-ms")]
    now_ms: u64,
    rows: Spy<'a, &'a [wit::ItemRow]>,
    skills: Spy<'a, &'a [wit::SkillReq]>,
    #[component(name = "attr-keys")]
    attr_keys: &'a [u32],
    #[component(name = "attr-value-ends")]
    attr_value_ends: &'a [u32],
    #[component(name = "attr-values")]
    attr_values: &'a str,
}

/// The fast path's arguments (a [`BatchArg`] or [`MatchArgs`]), whose row and
/// skill lists are read back from the plugin's memory once lowered: the
/// batch's (pointer, length) pairs of `rows` and `skills` are its first two
/// lists, after `now-ms`, in the flat and in the in-memory form alike.
struct FastSpied<'s, T> {
    inner: T,
    seen: &'s Seen,
}

impl<T> FastSpied<'_, T> {
    /// Record the rows and skills of an `item-batch` lowered in memory at `offset`.
    fn record_in_memory<U>(&self, cx: &mut LowerContext<'_, U>, offset: usize) -> wasmtime::Result<()> {
        let mut word = |at: usize| u32::from_le_bytes(*cx.get::<4>(offset + at));
        let (rows, skills) = ((word(8), word(12)), (word(16), word(20)));
        self.record(cx, rows, skills)
    }

    fn record<U>(&self, cx: &mut LowerContext<'_, U>, rows: (u32, u32), skills: (u32, u32)) -> wasmtime::Result<()> {
        *self.seen.rows_at.lock().unwrap() = rows;
        *self.seen.skills_at.lock().unwrap() = skills;
        for ((ptr, len), elem, seen) in
            [(rows, ITEM_ROW.size, &self.seen.rows), (skills, SKILL_REQ.size, &self.seen.skills)]
        {
            let (ptr, bytes) = (ptr as usize, len as usize * elem);
            let memory = cx.as_slice_mut();
            let written =
                memory.get(ptr..ptr + bytes).ok_or_else(|| wasmtime::format_err!("spied list out of bounds"))?;
            *seen.lock().unwrap() = written.to_vec();
        }
        Ok(())
    }
}

// SAFETY: exactly `T`'s lowered form, ABI and type check.
unsafe impl<T: ComponentType> ComponentType for FastSpied<'_, T> {
    type Lower = T::Lower;
    const ABI: CanonicalAbiInfo = T::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        T::typecheck(ty, types)
    }
}

// SAFETY: as `T`'s.
unsafe impl<T: ComponentNamedList> ComponentNamedList for FastSpied<'_, T> {}

// SAFETY: lowering is `T`'s; afterwards only reads guest memory, bounds-checked.
unsafe impl<T: Lower> Lower for FastSpied<'_, T> {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<T::Lower>,
    ) -> wasmtime::Result<()> {
        self.inner.linear_lower_to_flat(cx, ty, dst)?;
        // SAFETY: `inner` initialised its flat values: `now-ms`, then pairs
        // (every `T` here lowers to `ValRaw`s only).
        let flat = unsafe {
            std::slice::from_raw_parts(
                dst.as_ptr().cast::<ValRaw>(),
                std::mem::size_of::<T::Lower>() / std::mem::size_of::<ValRaw>(),
            )
        };
        if let [params] = flat {
            // `MatchArgs`: the one flat value points to the parameters in memory.
            return self.record_in_memory(cx, params.get_u32() as usize);
        }
        let pair = |i: usize| (flat[i].get_u32(), flat[i + 1].get_u32());
        self.record(cx, pair(1), pair(3))
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        self.inner.linear_lower_to_memory(cx, ty, offset)?;
        self.record_in_memory(cx, offset)
    }
}

/// The bytes of each list as the fast path and as wasmtime lowered them.
#[derive(Default)]
struct Seen {
    rows: Mutex<Vec<u8>>,
    skills: Mutex<Vec<u8>>,
    /// Where the fast path put them: (pointer, length).
    rows_at: Mutex<(u32, u32)>,
    skills_at: Mutex<(u32, u32)>,
}

/// Field bytes only: padding set to zero.
fn fields_only(bytes: &[u8], layout: &RecordLayout) -> Vec<u8> {
    let mut out = vec![0; bytes.len()];
    for (src, dst) in bytes.chunks(layout.size).zip(out.chunks_mut(layout.size)) {
        for field in layout.fields {
            let at = field.offset..field.offset + field.size;
            dst[at.clone()].copy_from_slice(&src[at]);
        }
    }
    out
}

fn assert_same_bytes(what: &str, fast: &Seen, generated: &Seen) {
    for (list, layout, fast, generated) in
        [("rows", &ITEM_ROW, &fast.rows, &generated.rows), ("skills", &SKILL_REQ, &fast.skills, &generated.skills)]
    {
        let (fast, generated) = (fast.lock().unwrap(), generated.lock().unwrap());
        assert_eq!(fast.len(), generated.len(), "{what}: {list} lengths");
        for (i, (f, g)) in fast.chunks(layout.size).zip(generated.chunks(layout.size)).enumerate() {
            assert_eq!(fields_only(f, layout), fields_only(g, layout), "{what}: {list}[{i}] bytes (fast, generated)");
            assert_eq!(fields_only(f, layout), f, "{what}: {list}[{i}]: the fast path leaves padding non-zero");
        }
    }
}

// ---------------------------------------------------------------------------
// Random inputs
// ---------------------------------------------------------------------------

prop_compose! {
    fn any_f64()(bits in any::<u64>()) -> f64 { f64::from_bits(bits) }
}

prop_compose! {
    fn any_f32()(bits in any::<u32>()) -> f32 { f32::from_bits(bits) }
}

/// One item: every row field over its whole range, up to 4 skills, up to 3 attributes.
#[derive(Debug, Clone)]
struct GenItem {
    id: u64,
    channel: usize,
    queue: u32,
    tier: u8,
    contacts: u16,
    priority: i32,
    age_ms: u64,
    due_in_ms: i64,
    value: f64,
    skills: Vec<(u32, u8)>,
    attrs: Vec<(u32, String)>,
}

prop_compose! {
    fn any_item()(
        head in (any::<u64>(), 0..4usize, any::<u32>(), any::<u8>(), any::<u16>(), any::<i32>()),
        tail in (any::<u64>(), any::<i64>(), any_f64()),
        skills in prop::collection::vec((any::<u32>(), any::<u8>()), 0..4),
        attrs in prop::collection::vec((any::<u32>(), "\\PC{0,6}"), 0..3),
    ) -> GenItem {
        let (id, channel, queue, tier, contacts, priority) = head;
        let (age_ms, due_in_ms, value) = tail;
        GenItem { id, channel, queue, tier, contacts, priority, age_ms, due_in_ms, value, skills, attrs }
    }
}

fn build(now_ms: u64, items: &[GenItem]) -> ItemBatch {
    let mut batch = ItemBatch::new(now_ms);
    for item in items {
        let skill_start = batch.skills.len() as u32;
        batch.skills.extend(item.skills.iter().map(|&(skill, level)| SkillReq { skill: SkillId(skill), level }));
        let attr_start = batch.attr_keys.len() as u32;
        for (key, value) in &item.attrs {
            batch.attr_keys.push(*key);
            batch.attr_values.push_str(value);
            batch.attr_value_ends.push(batch.attr_values.len() as u32);
        }
        batch.rows.push(ItemRow {
            id: item.id,
            channel: Channel::from_index(item.channel).unwrap(),
            queue: item.queue,
            tier: item.tier,
            contacts: item.contacts,
            priority: item.priority,
            age_ms: item.age_ms,
            due_in_ms: item.due_in_ms,
            value: item.value,
            skill_start,
            skill_count: item.skills.len() as u32,
            attr_start,
            attr_count: item.attrs.len() as u32,
        });
    }
    batch
}

prop_compose! {
    fn any_batch(max: usize)(now_ms in any::<u64>(), items in prop::collection::vec(any_item(), 0..max)) -> ItemBatch {
        build(now_ms, &items)
    }
}

prop_compose! {
    fn any_table()(k in 0..4usize, n in 0..6usize)(
        columns in prop::collection::vec(any::<u32>(), k),
        agents in prop::collection::vec(
            (any::<u64>(), prop::collection::vec(any::<u8>(), k), any::<u64>(), any_f32(), any::<[u8; 4]>()),
            n,
        ),
    ) -> CandidateTable {
        let mut table = CandidateTable::new(columns);
        for (id, proficiency, idle_ms, occupancy, load) in agents {
            table.agent_ids.push(id);
            table.proficiency.extend(proficiency);
            table.idle_ms.push(idle_ms);
            table.occupancy.push(occupancy);
            table.load.extend(load);
        }
        table
    }
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

/// The list allocations the fast path may use with `flavour`: one block per
/// call only for the plugin that declares the argument arena (`echo-sdk`,
/// through the SDK), and leased from its arena (a fresh lease each time, so
/// the describe request is made too); `echo-abi` (wit-bindgen) frees each list
/// itself.
fn allocs(flavour: Flavour) -> Vec<ListAlloc<'static>> {
    match flavour {
        Flavour::Abi => vec![ListAlloc::EachList],
        Flavour::Sdk => {
            vec![ListAlloc::EachList, ListAlloc::OneBlock, ListAlloc::Leased(Box::leak(Box::new(ArenaLease::new())))]
        }
    }
}

/// Calls whose lists `alloc` leased so far (0 unless it leases).
fn leased(alloc: ListAlloc<'_>) -> u64 {
    match alloc {
        ListAlloc::Leased(lease) => lease.leased_calls(),
        _ => 0,
    }
}

/// A leasing call took its lists from the arena: the instance had a block
/// already (the generated bindings' call before it made one).
fn check_leased(what: &str, alloc: ListAlloc<'_>, before: u64) {
    if matches!(alloc, ListAlloc::Leased(_)) {
        assert_eq!(leased(alloc), before + 1, "{what}: the lists were allocated by `realloc`, not leased");
    }
}

/// The bytes a spied call saw of `rows` and `skills`, and where they were.
fn check_one_block(what: &str, alloc: ListAlloc<'_>, seen: &Seen) {
    if alloc == ListAlloc::EachList {
        return;
    }
    // In one block the skills follow the rows directly (both are 8- and
    // 4-aligned, and 64-byte rows end 8-aligned).
    let (rows, skills) = (*seen.rows_at.lock().unwrap(), *seen.skills_at.lock().unwrap());
    let rows_end = rows.0 as usize + rows.1 as usize * ITEM_ROW.size;
    assert_eq!(skills.0 as usize, rows_end, "{what}: the skills do not follow the rows in one block");
}

/// `prioritise`: the fast path's answer (lifted by `PrioritiesAnswer`)
/// equals the generated bindings', it echoes the batch, and both paths put the
/// same bytes into the plugin; with each list allocation `flavour` accepts.
fn prioritise_both_ways(flavour: Flavour, batch: &ItemBatch) -> Result<(), TestCaseError> {
    let (mut store, instance) = instance(flavour);
    let f = func(&mut store, &instance, contract::PRIORITISER, "prioritise");

    let guest = prioritiser::GuestIndices::new(&echo(flavour).pre).unwrap().load(&mut store, &instance).unwrap();
    let generated: Vec<Priority> =
        guest.call_prioritise(&mut store, &wit_batch(batch)).unwrap().into_iter().map(sdk_priority).collect();
    prop_assert_eq!(
        &generated,
        &expected_priorities(flavour, batch),
        "{:?}: the plugin did not see what the generated bindings sent",
        flavour
    );
    // The bytes the generated bindings put there, spied on in the flat
    // (register) parameter form.
    let generated_seen = Seen::default();
    let wit = wit_batch(batch);
    let spied = f.typed::<(GeneratedSpied<'_>,), (PrioritiesAnswer,)>(&store).unwrap();
    let (PrioritiesAnswer(spied_answer),) = spied
        .call(
            &mut store,
            (GeneratedSpied {
                now_ms: wit.now_ms,
                rows: Spy { inner: &wit.rows, elem: ITEM_ROW.size, seen: &generated_seen.rows },
                skills: Spy { inner: &wit.skills, elem: SKILL_REQ.size, seen: &generated_seen.skills },
                attr_keys: &wit.attr_keys,
                attr_value_ends: &wit.attr_value_ends,
                attr_values: &wit.attr_values,
            },),
        )
        .unwrap();
    prop_assert_eq!(&spied_answer, &generated);

    for alloc in allocs(flavour) {
        let fast = f.typed::<(BatchArg<'_>,), (PrioritiesAnswer,)>(&store).unwrap();
        let before = leased(alloc);
        let (PrioritiesAnswer(fast_answer),) = fast.call(&mut store, (BatchArg::of(batch, alloc),)).unwrap();
        check_leased(&format!("prioritise {alloc:?}"), alloc, before);
        prop_assert_eq!(
            &fast_answer,
            &generated,
            "{:?} {:?}: fast path and generated bindings disagree",
            flavour,
            alloc
        );

        let fast_seen = Seen::default();
        let spied = f.typed::<(FastSpied<'_, BatchArg<'_>>,), (PrioritiesAnswer,)>(&store).unwrap();
        let (PrioritiesAnswer(spied_answer),) =
            spied.call(&mut store, (FastSpied { inner: BatchArg::of(batch, alloc), seen: &fast_seen },)).unwrap();
        prop_assert_eq!(&spied_answer, &fast_answer);
        assert_same_bytes(&format!("prioritise {alloc:?}"), &fast_seen, &generated_seen);
        check_one_block(&format!("prioritise {alloc:?}"), alloc, &fast_seen);
    }
    Ok(())
}

/// `escalate`: the batch lowered by the fast path (each list allocation
/// `flavour` accepts) and by the generated bindings gets the same answer, and
/// it echoes the batch.
fn escalate_both_ways(flavour: Flavour, batch: &ItemBatch) -> Result<(), TestCaseError> {
    let (mut store, instance) = instance(flavour);
    let f = func(&mut store, &instance, contract::ESCALATOR, "escalate");
    let guest = escalator::GuestIndices::new(&echo(flavour).pre).unwrap().load(&mut store, &instance).unwrap();
    let generated = guest.call_escalate(&mut store, &wit_batch(batch)).unwrap();
    // The generated types have no `PartialEq`; their `Debug` shows every value.
    let generated = format!("{generated:?}");
    let want = format!("{:?}", expected_escalations(flavour, batch));
    prop_assert_eq!(&generated, &want, "{:?}: the plugin did not see what was sent", flavour);
    for alloc in allocs(flavour) {
        let fast = f.typed::<(BatchArg<'_>,), (Vec<wit::Escalation>,)>(&store).unwrap();
        let before = leased(alloc);
        let (fast_answer,) = fast.call(&mut store, (BatchArg::of(batch, alloc),)).unwrap();
        check_leased(&format!("escalate {alloc:?}"), alloc, before);
        let fast_answer = format!("{fast_answer:?}");
        prop_assert_eq!(
            &fast_answer,
            &generated,
            "{:?} {:?}: fast path and generated bindings disagree",
            flavour,
            alloc
        );

        // The answer lifted by hand (`EscalationsAnswer`, what the runtime uses)
        // is the generated lift's, moved into the SDK's types.
        let lifted = f.typed::<(BatchArg<'_>,), (EscalationsAnswer,)>(&store).unwrap();
        let (EscalationsAnswer(lifted),) = lifted.call(&mut store, (BatchArg::of(batch, alloc),)).unwrap();
        let want: Vec<Escalation> = expected_escalations(flavour, batch).into_iter().map(sdk_escalation).collect();
        prop_assert_eq!(&lifted, &want, "{:?}: the hand-written lift disagrees with the generated one", flavour);
    }
    Ok(())
}

/// `match-agents`: its 23 flat parameters go through memory; the item and
/// table lowered both ways (the fast path with each list allocation `flavour`
/// accepts) get the same scores, the scores digest every column sent, and the
/// row and skill bytes are the same.
fn match_both_ways(flavour: Flavour, item: &ItemBatch, table: &CandidateTable) -> Result<(), TestCaseError> {
    let (mut store, instance) = instance(flavour);
    let f = func(&mut store, &instance, contract::MATCHER, "match-agents");
    let guest = matcher::GuestIndices::new(&echo(flavour).pre).unwrap().load(&mut store, &instance).unwrap();
    let generated = guest.call_match_agents(&mut store, &wit_batch(item), &wit_table(table)).unwrap();
    let want = expected_match(flavour, item, table);
    prop_assert_eq!(match_bits(&generated), match_bits(&want), "{:?}: the plugin did not see what was sent", flavour);

    let generated_seen = Seen::default();
    let wit = wit_batch(item);
    let spied = f.typed::<(GeneratedSpied<'_>, wit::CandidateTable), (wit::MatchResult,)>(&store).unwrap();
    let generated_batch = GeneratedSpied {
        now_ms: wit.now_ms,
        rows: Spy { inner: &wit.rows, elem: ITEM_ROW.size, seen: &generated_seen.rows },
        skills: Spy { inner: &wit.skills, elem: SKILL_REQ.size, seen: &generated_seen.skills },
        attr_keys: &wit.attr_keys,
        attr_value_ends: &wit.attr_value_ends,
        attr_values: &wit.attr_values,
    };
    let (spied_answer,) = spied.call(&mut store, (generated_batch, wit_table(table))).unwrap();
    prop_assert_eq!(match_bits(&spied_answer), match_bits(&generated));

    for alloc in allocs(flavour) {
        let fast = f.typed::<MatchArgs<'_>, (wit::MatchResult,)>(&store).unwrap();
        let before = leased(alloc);
        let (fast_answer,) = fast.call(&mut store, MatchArgs::of(item, table, alloc)).unwrap();
        check_leased(&format!("match-agents {alloc:?}"), alloc, before);
        prop_assert_eq!(
            match_bits(&fast_answer),
            match_bits(&generated),
            "{:?} {:?}: fast path and generated bindings disagree",
            flavour,
            alloc
        );
        let fast_seen = Seen::default();
        let spied = f.typed::<FastSpied<'_, MatchArgs<'_>>, (wit::MatchResult,)>(&store).unwrap();
        let (spied_answer,) =
            spied.call(&mut store, FastSpied { inner: MatchArgs::of(item, table, alloc), seen: &fast_seen }).unwrap();
        prop_assert_eq!(match_bits(&spied_answer), match_bits(&fast_answer));
        assert_same_bytes(&format!("match-agents {alloc:?}"), &fast_seen, &generated_seen);
        check_one_block(&format!("match-agents {alloc:?}"), alloc, &fast_seen);
    }
    Ok(())
}

/// Which components declare the argument arena: every plugin built with the
/// SDK (its export macro emits the section), and none built otherwise.
#[test]
fn sdk_plugins_and_only_they_declare_the_argument_arena() {
    use switchyard_plugin_artifacts as artifacts;
    for (path, sdk) in [
        (artifacts::ECHO_SDK, true),
        (artifacts::TECH_SUPPORT, true),
        (artifacts::BILLING, true),
        (artifacts::CLAIMS, true),
        (artifacts::KEEPS_ARGS, true),
        (artifacts::ECHO_ABI, false),
        (artifacts::HOSTILE_GARBAGE, false),
    ] {
        let bytes = std::fs::read(path).unwrap();
        let want = if sdk { ListAlloc::OneBlock } else { ListAlloc::EachList };
        let declared = Declared::of(&bytes);
        assert_eq!(declared.list_alloc(), want, "{path}");
        assert_eq!(declared.arena_lease, sdk, "{path}: the arena lease");
    }
    // Bytes that are not a component declare nothing.
    assert_eq!(Declared::of(b"not wasm"), Declared::default());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// `prioritise` of both echo plugins (see [`prioritise_both_ways`]).
    #[test]
    fn prioritise_sees_the_same_batch_both_ways(batch in any_batch(6)) {
        for flavour in FLAVOURS {
            prioritise_both_ways(flavour, &batch)?;
        }
    }

    /// `escalate` of both echo plugins (see [`escalate_both_ways`]).
    #[test]
    fn escalate_sees_the_same_batch_both_ways(batch in any_batch(6)) {
        for flavour in FLAVOURS {
            escalate_both_ways(flavour, &batch)?;
        }
    }

    /// `match-agents` of both echo plugins (see [`match_both_ways`]).
    #[test]
    fn match_agents_sees_the_same_item_and_table_both_ways(item in any_batch(2), table in any_table()) {
        for flavour in FLAVOURS {
            match_both_ways(flavour, &item, &table)?;
        }
    }
}
