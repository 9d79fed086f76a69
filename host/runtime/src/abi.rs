//! The hot path across the component boundary: how a batch and a candidate
//! table are lowered into a plugin's memory, and how `prioritise` and
//! `escalate` answers are lifted out of it, without the intermediate copies
//! and per-field bookkeeping of the generated bindings.
//!
//! The generated bindings (`contract::bindings`) need owned WIT values, so every
//! call cloned each list of the batch first; and wasmtime lowers a `list` of
//! records field by field, looking the guest's memory up again for every field
//! (≈280 ns per item row, measured). Here the batch's SDK types are lowered in
//! place from borrowed slices: one `realloc` per list, then a single pass
//! writing each row's canonical-ABI bytes into the guest's memory slice. The
//! WIT types do not change: [`BatchArg`] and [`MatchArgs`] type-check against
//! the contract's `item-batch` and `(item-batch, candidate-table)` exactly as
//! the generated types do, so any component of the contract — Rust, Python,
//! JavaScript — receives the same values.
//!
//! **One block per call.** Each `realloc` is an entry into the plugin (and, in
//! a plain guest, a `malloc` there and a `free` after the call): twelve for a
//! `match-agents` call, ≈0.8 µs of tech-support's ≈3.8 µs at 100 agents. A
//! component built with the SDK declares that its export `realloc` is a
//! per-call arena that never frees one list on its own
//! (`switchyard_contract::capability`, read at load by
//! [`Declared`]); for it the lists of a call go into ONE allocation
//! ([`ListAlloc::OneBlock`]), each at its alignment. Every other component
//! gets one allocation per list ([`ListAlloc::EachList`]), as the canonical
//! ABI has it — a wit-bindgen guest frees each list, and freeing a pointer
//! into the middle of a block would corrupt its heap. An SDK component also
//! lets the host take that block from its arena without calling in at all
//! ([`ListAlloc::Leased`], [`ArenaLease`]): a hook call then enters the
//! plugin once, for the call itself. `match-agents`' parameter block (its 23
//! flat parameters go through memory) is laid out at the head of the same
//! block: [`MatchArgs`] lowers to the one pointer the core function takes, so
//! wasmtime does not allocate the block with a `realloc` of its own.
//!
//! **Layouts.** The offsets and sizes of `item-row`, `skill-req`, `priority`
//! and `escalation` come from `switchyard-contract` (`sdk/contract`, its `layout` module), which
//! computes them from `wit/routing.wit` at build time (the `escalation-action`
//! variant's from wasmtime's generated type); `CanonicalRow`, `write_skill`,
//! `lift_priorities` and `lift_escalations` are checked against it at compile
//! time, so a WIT edit that moves or retypes a field fails the build here. Padding bytes are written as
//! zeros, so nothing of the host's memory leaks into the plugin. The property
//! tests in `abi/conformance.rs` send random batches through this path and
//! through the generated bindings to the `echo-abi` and `echo-sdk` plugins and
//! require the same answers (lifted both ways) and bytes.
//!
//! **wasmtime internals.** This is the one module (with its test child) that
//! uses `wasmtime::component::__internal`, which has no stability promise;
//! wasmtime is pinned exactly (`=48.0.8`) in the workspace `Cargo.toml` for it.
//! On a wasmtime upgrade, re-check:
//!
//! - the `__internal` items used here — `CanonicalAbiInfo` (`POINTER_PAIR`),
//!   `InstanceType`, `InterfaceType`, `LowerContext` (`realloc`,
//!   `as_slice_mut`, `get`), `LiftContext` (`memory`, whose slice outlives
//!   the borrow of the context, and `consume_fuel_array`) — and the signatures of
//!   `ComponentType::typecheck`, `Lower::linear_lower_to_{flat,memory}` and
//!   `Lift::linear_lift_from_{flat,memory}`, which the `unsafe impl`s below
//!   implement by hand;
//! - that a list still lowers to a (pointer, length) pair of `ValRaw::i64` /
//!   `get_u32`, and that `match-agents` (23 flat parameters, above
//!   `MAX_FLAT_PARAMS` = 16) still passes its arguments through memory, as
//!   the one pointer a parameter list whose `Lower` is `[ValRaw; 1]` gives
//!   (`TypedFunc::lower_args` lowers such a list with `linear_lower_to_flat`
//!   and hands the values to the core function as they are);
//! - that `TypedFunc::new_unchecked` (in `plugin.rs`) is still sound after the
//!   once-per-instance `Func::typed` check, and that calls still run
//!   post-return themselves (SDK components export none);
//! - that `ComponentNamedList` (implemented by [`MatchArgs`]) is still only a
//!   marker whose `typecheck` the tuple's answers for;
//! - then run `cargo test -p switchyard-runtime --lib abi` (the conformance
//!   property tests) and the `ratios` benchmark (the reason this module exists).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use switchyard_contract::{
    CandidateTable, Escalation, EscalationAction, ItemBatch, ItemRow, Priority, QueueId, SkillId, SkillReq,
};
use wasmtime::ValRaw;
use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext, LowerContext};
use wasmtime::component::{ComponentNamedList, ComponentType, Lift, Lower};

use crate::contract::wit;

use switchyard_contract::capability::DESCRIBE_ARENA;
use switchyard_contract::layout::{ESCALATION, ITEM_ROW, PRIORITY, SKILL_REQ};

/// Alignment of a call's block of lists: the largest of the lists' (8:
/// `item-row`, `u64`).
const BLOCK_ALIGN: usize = 8;

/// Size of an `item-row` in the canonical ABI.
const ROW_SIZE: usize = ITEM_ROW.size;
/// Size of a `skill-req` in the canonical ABI.
const SKILL_SIZE: usize = SKILL_REQ.size;
/// Size of a `priority` in the canonical ABI.
const PRIORITY_SIZE: usize = PRIORITY.size;
/// Where `priority`'s `option` fields lie: the discriminant, then the payload
/// at +4 (both payloads are 4-aligned; the sizes asserted below pin the shapes).
const PRIORITY_PRIORITY_AT: usize = PRIORITY.offset("priority");
const PRIORITY_QUEUE_AT: usize = PRIORITY.offset("queue");
const PRIORITY_REASON_AT: usize = PRIORITY.offset("reason");
const _: () = {
    assert!(PRIORITY.fields.len() == 3 && PRIORITY.align == 4);
    assert!(PRIORITY.field("priority").size == 4);
    // option<u32>: discriminant u8, u32 at +4.
    assert!(PRIORITY.field("queue").size == 8);
    // option<string>: discriminant u8, pointer at +4, length at +8.
    assert!(PRIORITY.field("reason").size == 12);
};

/// How a call's list arguments are allocated in the plugin's memory.
#[derive(Debug, Clone, Copy)]
pub enum ListAlloc<'a> {
    /// One `realloc` per list, as the canonical ABI has it: what every
    /// component accepts (the guest owns and frees each list).
    EachList,
    /// One `realloc` for all of a call's lists, each at its alignment inside
    /// the block: only for components that declare the argument arena
    /// ([`Declared::arg_arena`]), which never free a list on its own. Every
    /// entry into the plugin's `realloc` costs a call into wasm; `match-agents`
    /// made eleven for its lists.
    OneBlock,
    /// As [`ListAlloc::OneBlock`], the block taken from the plugin's arena by
    /// the host itself when it fits ([`ArenaLease`]): no entry into the plugin
    /// for it. For components that also declare the lease.
    Leased(&'a ArenaLease),
}

impl PartialEq for ListAlloc<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ListAlloc::EachList, ListAlloc::EachList) | (ListAlloc::OneBlock, ListAlloc::OneBlock) => true,
            (ListAlloc::Leased(a), ListAlloc::Leased(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

impl Eq for ListAlloc<'_> {}

/// What a component declares it accepts of the host beyond the canonical ABI:
/// the tokens of its `switchyard_contract::capability::ABI_SECTION` custom
/// sections (in any of its core modules), each on a line of its own, read in
/// one pass over its bytes at load. The SDK's export macro emits them together
/// with the arena itself (`cabi_export_realloc`). A component that declares
/// them falsely can only corrupt its own memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    /// `ARG_ARENA`: its export `realloc` is a per-call arena that never frees
    /// one list on its own, so a call's lists may share one block.
    pub arg_arena: bool,
    /// `ARENA_LEASE`, with the arena: the host may take that block from the
    /// arena itself ([`ArenaLease`]).
    pub arena_lease: bool,
}

impl Declared {
    /// What `bytes` declare; nothing for bytes that do not parse (compiling
    /// them will say why).
    pub fn of(bytes: &[u8]) -> Declared {
        use switchyard_contract::capability::{ABI_SECTION, ARENA_LEASE, ARG_ARENA};
        let (mut arg_arena, mut arena_lease) = (false, false);
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            match payload {
                Ok(wasmparser::Payload::CustomSection(section)) if section.name() == ABI_SECTION => {
                    for line in section.data().split(|&b| b == b'\n') {
                        arg_arena |= line == ARG_ARENA;
                        arena_lease |= line == ARENA_LEASE;
                    }
                }
                Ok(_) => {}
                Err(_) => return Declared::default(),
            }
        }
        Declared { arg_arena, arena_lease: arg_arena && arena_lease }
    }

    /// How a call's lists are allocated without the lease: in one block with
    /// the argument arena, else one per list.
    pub fn list_alloc(self) -> ListAlloc<'static> {
        if self.arg_arena { ListAlloc::OneBlock } else { ListAlloc::EachList }
    }
}

/// The plugin's memory could not take a call's arguments: where its `realloc`
/// or its arena lease put them lies outside it, or the lease was described
/// wrongly. Only a plugin that broke its own memory (or lies about its
/// arena) gets this; the runtime reports it as that plugin's failure.
#[derive(Debug)]
pub(crate) struct ArgumentsRefused(String);

impl std::fmt::Display for ArgumentsRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgumentsRefused {}

fn refused(message: String) -> wasmtime::Error {
    wasmtime::Error::new(ArgumentsRefused(message))
}

/// A loaded plugin's lease on its instances' argument arenas
/// (`switchyard_contract::capability::ARENA_LEASE`): where the arena's
/// descriptor lies in the plugin's memory — the same address in every instance
/// of a component, asked once with the describe request — and how many calls
/// it served.
///
/// To lower a call's lists the host reads the descriptor (block, capacity,
/// used, asked) and, when the block has room, writes the lists after what the
/// call already took and advances `used` and `asked` as the arena's own
/// `realloc` would; the guest then owns and lends them exactly as if it had
/// handed them out. When they do not fit (the first call of an instance has no
/// block yet) the host calls `realloc`, which spills and sizes the next block.
/// The values come from the plugin's memory and are trusted for nothing but
/// where to write in it: every access is bounds-checked.
#[derive(Debug, Default)]
pub struct ArenaLease {
    /// The descriptor's address; 0 until the plugin has been asked.
    descriptor: AtomicU32,
    /// Calls whose lists were leased (a diagnostic: not a locked increment).
    leased: AtomicU64,
}

impl ArenaLease {
    /// A lease whose descriptor has not been asked for yet.
    pub const fn new() -> ArenaLease {
        ArenaLease { descriptor: AtomicU32::new(0), leased: AtomicU64::new(0) }
    }

    /// How many calls had their lists leased rather than allocated by `realloc`.
    pub fn leased_calls(&self) -> u64 {
        self.leased.load(Ordering::Relaxed)
    }

    /// Take `size` bytes aligned to [`BLOCK_ALIGN`] from the arena of the
    /// instance `cx` lowers into: their address, or `None` when they do not
    /// fit (the caller then calls `realloc`).
    fn take<U>(&self, cx: &mut LowerContext<'_, U>, size: usize) -> wasmtime::Result<Option<usize>> {
        if size == 0 {
            // Nothing to take: an aligned dangling pointer, as the arena's
            // `realloc` answers a request for no bytes.
            self.count();
            return Ok(Some(BLOCK_ALIGN));
        }
        let mut at = self.descriptor.load(Ordering::Relaxed) as usize;
        if at == 0 {
            at = cx.realloc(0, DESCRIBE_ARENA as usize, 1, 0)?;
            if at == 0 || !at.is_multiple_of(4) {
                return Err(refused(format!("it declares the arena lease but described its arena at {at}")));
            }
            self.descriptor.store(at as u32, Ordering::Relaxed);
        }
        let Some(words) = cx.as_slice_mut().get_mut(at..).and_then(|m| m.first_chunk_mut::<16>()) else {
            return Err(refused(format!("its arena descriptor at {at} lies beyond its memory")));
        };
        let word = |words: &[u8; 16], i: usize| {
            u32::from_le_bytes([words[4 * i], words[4 * i + 1], words[4 * i + 2], words[4 * i + 3]]) as usize
        };
        let (base, cap, used, asked) = (word(words, 0), word(words, 1), word(words, 2), word(words, 3));
        if base == 0 {
            return Ok(None);
        }
        // As the arena's `alloc`: round `base + used` up, take `size` if it fits.
        let start = (base + used).next_multiple_of(BLOCK_ALIGN) - base;
        let end = start + size;
        if end > cap {
            return Ok(None);
        }
        let asked = asked.saturating_add(size + BLOCK_ALIGN - 1).min(u32::MAX as usize);
        // `end <= cap`, a `u32`.
        words[8..12].copy_from_slice(&(end as u32).to_le_bytes());
        words[12..16].copy_from_slice(&(asked as u32).to_le_bytes());
        self.count();
        Ok(Some(base + start))
    }

    /// One more call leased: a load and a store, not a locked increment (this
    /// is on every call; concurrent calls may lose a count).
    fn count(&self) {
        self.leased.store(self.leased.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// An `item-batch` argument borrowed from the SDK's [`ItemBatch`], lowered by
/// hand: every list's canonical-ABI bytes written in one pass into the
/// guest's memory ([`lower_lists`]). Type-checked as the contract's
/// `item-batch`, exactly as the generated type is.
#[derive(Clone, Copy)]
pub struct BatchArg<'a> {
    batch: &'a ItemBatch,
    alloc: ListAlloc<'a>,
}

impl<'a> BatchArg<'a> {
    /// Borrow `batch` for one call, its lists allocated as `alloc` says.
    pub fn of(batch: &'a ItemBatch, alloc: ListAlloc<'a>) -> Self {
        BatchArg { batch, alloc }
    }

    /// The five lists in WIT field order.
    fn lists(&self) -> [ListArg<'a>; BATCH_LISTS] {
        let b = self.batch;
        [
            ListArg::Rows(&b.rows),
            ListArg::Skills(&b.skills),
            ListArg::U32(&b.attr_keys),
            ListArg::U32(&b.attr_value_ends),
            ListArg::Str(&b.attr_values),
        ]
    }
}

/// A `candidate-table`'s six columns in WIT field order.
fn table_lists(table: &CandidateTable) -> [ListArg<'_>; TABLE_LISTS] {
    [
        ListArg::U64(&table.agent_ids),
        ListArg::U32(&table.skill_columns),
        ListArg::U8(&table.proficiency),
        ListArg::U64(&table.idle_ms),
        ListArg::F32(&table.occupancy),
        ListArg::U8(&table.load),
    ]
}

/// Lists in an `item-batch` and in a `candidate-table`.
const BATCH_LISTS: usize = 5;
const TABLE_LISTS: usize = 6;
/// `item-batch` in memory: `now-ms`, then each list's (pointer, length).
const BATCH_LISTS_AT: usize = 8;
const _: () = {
    assert!(<wit::ItemBatch as ComponentType>::SIZE32 == BATCH_LISTS_AT + 8 * BATCH_LISTS);
    assert!(<wit::CandidateTable as ComponentType>::SIZE32 == 8 * TABLE_LISTS);
};

// SAFETY: the lowered form and ABI are the generated `item-batch`'s (`now-ms`
// and five pointer pairs, 11 flat values), and `typecheck` accepts exactly
// what it accepts.
unsafe impl ComponentType for BatchArg<'_> {
    type Lower = [ValRaw; 1 + 2 * BATCH_LISTS];
    const ABI: CanonicalAbiInfo = <wit::ItemBatch as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <wit::ItemBatch as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: writes only inside the blocks `realloc` returned (bounds-checked)
// and the canonical form of the record.
unsafe impl Lower for BatchArg<'_> {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        let (pairs, _) = lower_lists(cx, self.lists(), self.alloc, 0)?;
        let mut flat = [ValRaw::i64(self.batch.now_ms as i64); 1 + 2 * BATCH_LISTS];
        flat_pairs(&mut flat[1..], &pairs);
        dst.write(flat);
        Ok(())
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let (pairs, _) = lower_lists(cx, self.lists(), self.alloc, 0)?;
        write_record(cx, offset, Some(self.batch.now_ms), &pairs)
    }
}

/// `match-agents`' parameters — the item (a batch of one) and the candidate
/// table — borrowed and lowered by hand as one parameter list, so that with
/// [`ListAlloc::OneBlock`] the batch's and the table's eleven lists share one
/// allocation. Type-checked as the parameter tuple `(item-batch,
/// candidate-table)`.
#[derive(Clone, Copy)]
pub struct MatchArgs<'a> {
    item: BatchArg<'a>,
    table: &'a CandidateTable,
}

impl<'a> MatchArgs<'a> {
    /// Borrow `item` and `table` for one call, their lists allocated as `alloc` says.
    pub fn of(item: &'a ItemBatch, table: &'a CandidateTable, alloc: ListAlloc<'a>) -> Self {
        MatchArgs { item: BatchArg::of(item, alloc), table }
    }

    fn lists(&self) -> [ListArg<'a>; BATCH_LISTS + TABLE_LISTS] {
        let [r, s, k, e, v] = self.item.lists();
        let [a, c, p, i, o, l] = table_lists(self.table);
        [r, s, k, e, v, a, c, p, i, o, l]
    }
}

/// Where the table's record starts in the parameter tuple in memory.
const MATCH_TABLE_AT: usize = <wit::ItemBatch as ComponentType>::SIZE32
    .next_multiple_of(<wit::CandidateTable as ComponentType>::ALIGN32 as usize);
const _: () = assert!(
    <(wit::ItemBatch, wit::CandidateTable) as ComponentType>::SIZE32
        == MATCH_TABLE_AT + <wit::CandidateTable as ComponentType>::SIZE32
);

/// The parameter block of `match-agents` in memory: size and alignment.
const MATCH_PARAMS_SIZE: usize = <(wit::ItemBatch, wit::CandidateTable) as ComponentType>::SIZE32;
const _: () = assert!(
    <(wit::ItemBatch, wit::CandidateTable) as ComponentType>::ALIGN32 as usize == BLOCK_ALIGN
        && MATCH_PARAMS_SIZE.is_multiple_of(BLOCK_ALIGN)
);

// SAFETY: the ABI of the tuple `(item-batch, candidate-table)`, and
// `typecheck` accepts exactly what the tuple accepts. Its lowered form is the
// one the core function takes: the tuple has 23 flat values, more than
// `MAX_FLAT_PARAMS` (16), so the canonical ABI passes ONE pointer to them in
// memory. Declaring that pointer as the lowered form makes wasmtime call
// `linear_lower_to_flat`, where the parameter block is allocated together with
// the lists (leased, with no entry into the plugin) instead of by a `realloc`
// of wasmtime's own before them (`lower_heap_args`). `MatchArgs` is only ever
// a parameter list, never a value inside another type, so no other lowering
// sees this form.
unsafe impl ComponentType for MatchArgs<'_> {
    type Lower = [ValRaw; 1];
    const ABI: CanonicalAbiInfo = <(wit::ItemBatch, wit::CandidateTable) as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <(wit::ItemBatch, wit::CandidateTable) as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: a parameter list whose `typecheck` is the tuple's (above).
unsafe impl ComponentNamedList for MatchArgs<'_> {}

// SAFETY: as `BatchArg`'s: writes only inside the blocks `realloc` returned
// and the canonical form of the tuple.
unsafe impl Lower for MatchArgs<'_> {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        // The parameter block first in the lists' block (or a `realloc` of its
        // own, one per list), then the pointer to it as the one flat parameter.
        let (pairs, params) = lower_lists(cx, self.lists(), self.item.alloc, MATCH_PARAMS_SIZE)?;
        self.write_params(cx, params, &pairs)?;
        // A 64-bit value, as wasmtime writes pointers (see `ValRaw`).
        dst.write([ValRaw::i64(params as i64)]);
        Ok(())
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        // Not used for a call (the lowered form is the pointer, above); the
        // tuple's in-memory form all the same.
        let (pairs, _) = lower_lists(cx, self.lists(), self.item.alloc, 0)?;
        self.write_params(cx, offset, &pairs)
    }
}

impl MatchArgs<'_> {
    /// The tuple's in-memory form at `at`: the batch's record, then the table's.
    fn write_params<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        at: usize,
        pairs: &[(u32, u32); BATCH_LISTS + TABLE_LISTS],
    ) -> wasmtime::Result<()> {
        let (batch, table) = pairs.split_at(BATCH_LISTS);
        write_record(cx, at, Some(self.item.batch.now_ms), batch)?;
        write_record(cx, at + MATCH_TABLE_AT, None, table)
    }
}

/// Each list's (pointer, length) as flat values (wasmtime keeps pointers as
/// `i64`, see `ValRaw`).
fn flat_pairs(dst: &mut [ValRaw], pairs: &[(u32, u32)]) {
    for (slot, &(ptr, len)) in dst.chunks_exact_mut(2).zip(pairs) {
        slot[0] = ValRaw::i64(i64::from(ptr));
        slot[1] = ValRaw::i64(i64::from(len));
    }
}

/// Write a record of (optionally) a leading `u64` and list pointer pairs at
/// `offset` of the guest's memory (its in-memory form).
fn write_record<U>(
    cx: &mut LowerContext<'_, U>,
    offset: usize,
    now_ms: Option<u64>,
    pairs: &[(u32, u32)],
) -> wasmtime::Result<()> {
    let lists_at = if now_ms.is_some() { BATCH_LISTS_AT } else { 0 };
    let size = lists_at + 8 * pairs.len();
    let memory = cx.as_slice_mut();
    let record = offset
        .checked_add(size)
        .and_then(|end| memory.get_mut(offset..end))
        .ok_or_else(|| refused(format!("its parameter block at {offset:#x} lies beyond its memory")))?;
    if let Some(now_ms) = now_ms {
        record[..8].copy_from_slice(&now_ms.to_le_bytes());
    }
    for (pair, &(ptr, len)) in record[lists_at..].chunks_exact_mut(8).zip(pairs) {
        pair[..4].copy_from_slice(&ptr.to_le_bytes());
        pair[4..].copy_from_slice(&len.to_le_bytes());
    }
    Ok(())
}

/// One list argument, borrowed: its elements and their canonical layout.
#[derive(Clone, Copy)]
enum ListArg<'a> {
    /// `list<item-row>`, written row by row ([`write_row`]).
    Rows(&'a [ItemRow]),
    /// `list<skill-req>` ([`write_skill`]).
    Skills(&'a [SkillReq]),
    /// A `string`: its UTF-8 bytes, or wasmtime's own lowering when the
    /// component wants another encoding.
    Str(&'a str),
    /// Lists of primitives, copied as one block ([`write_column`]).
    U8(&'a [u8]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    F32(&'a [f32]),
}

impl ListArg<'_> {
    /// Elements, element size and alignment in the canonical ABI.
    fn shape(self) -> (usize, usize, usize) {
        match self {
            ListArg::Rows(rows) => (rows.len(), ROW_SIZE, ITEM_ROW.align),
            ListArg::Skills(skills) => (skills.len(), SKILL_SIZE, SKILL_REQ.align),
            ListArg::Str(s) => (s.len(), 1, 1),
            ListArg::U8(v) => (v.len(), 1, 1),
            ListArg::U32(v) => (v.len(), 4, 4),
            ListArg::U64(v) => (v.len(), 8, 8),
            ListArg::F32(v) => (v.len(), 4, 4),
        }
    }

    /// Write the elements' canonical bytes into `out` (exactly their size).
    fn write(self, out: &mut [u8]) {
        match self {
            ListArg::Rows(rows) => {
                for (row, chunk) in rows.iter().zip(out.chunks_exact_mut(ROW_SIZE)) {
                    // `chunks_exact_mut(ROW_SIZE)` yields chunks of exactly that size.
                    if let Ok(chunk) = <&mut [u8; ROW_SIZE]>::try_from(chunk) {
                        write_row(row, chunk);
                    }
                }
            }
            ListArg::Skills(skills) => {
                for (skill, chunk) in skills.iter().zip(out.chunks_exact_mut(SKILL_SIZE)) {
                    if let Ok(chunk) = <&mut [u8; SKILL_SIZE]>::try_from(chunk) {
                        write_skill(skill, chunk);
                    }
                }
            }
            ListArg::Str(s) => out.copy_from_slice(s.as_bytes()),
            ListArg::U8(v) => out.copy_from_slice(v),
            ListArg::U32(v) => write_column(v, out),
            ListArg::U64(v) => write_column(v, out),
            ListArg::F32(v) => write_column(v, out),
        }
    }
}

/// The longest string wasmtime lowers (`MAX_STRING_BYTE_LENGTH` there).
const MAX_STRING_BYTES: usize = (1 << 31) - 1;

/// Allocate `lists` in the guest — one `realloc` each, one for all with
/// [`ListAlloc::OneBlock`], or one block leased with no call at all
/// ([`ListAlloc::Leased`]) — write their elements there, and return each
/// list's (pointer, length). With `head > 0` (a multiple of [`BLOCK_ALIGN`])
/// it also allocates that many bytes for a parameter block — at the start of
/// the one block, or by a `realloc` of its own before the lists — and returns
/// their address (0 when `head` is 0).
fn lower_lists<U, const N: usize>(
    cx: &mut LowerContext<'_, U>,
    lists: [ListArg<'_>; N],
    alloc: ListAlloc<'_>,
    head: usize,
) -> wasmtime::Result<([(u32, u32); N], usize)> {
    let too_large = || wasmtime::format_err!("list too large to lower");
    let utf8 = matches!(cx.options().string_encoding, StringEncoding::Utf8);
    let mut pairs = [(0u32, 0u32); N];
    let mut head_at = 0;
    match alloc {
        ListAlloc::EachList => {
            if head > 0 {
                // First, as wasmtime's own lowering allocates a parameter block.
                head_at = cx.realloc(0, 0, BLOCK_ALIGN as u32, head)?;
            }
            for (list, pair) in lists.into_iter().zip(&mut pairs) {
                if let ListArg::Str(s) = list
                    && !utf8
                {
                    // Transcoding, as wasmtime does it (it owns the `realloc` protocol for that).
                    let mut flat = MaybeUninit::<[ValRaw; 2]>::uninit();
                    <str as Lower>::linear_lower_to_flat(s, cx, InterfaceType::String, &mut flat)?;
                    // SAFETY: `linear_lower_to_flat` initialised the pointer pair on success.
                    let [ptr, len] = unsafe { flat.assume_init() };
                    *pair = (ptr.get_u32(), len.get_u32());
                    continue;
                }
                let (len, size, align) = list.shape();
                let bytes = len.checked_mul(size).ok_or_else(too_large)?;
                if matches!(list, ListArg::Str(_)) && bytes > MAX_STRING_BYTES {
                    return Err(too_large());
                }
                let ptr = cx.realloc(0, 0, align as u32, bytes)?;
                list.write(guest_slice(cx, ptr, bytes)?);
                *pair = (ptr as u32, len as u32);
            }
        }
        ListAlloc::OneBlock | ListAlloc::Leased(_) => {
            if !utf8 {
                wasmtime::bail!("the plugin declares the argument arena but does not take UTF-8 strings");
            }
            // Lay the lists out one after the other after the head, each at
            // its alignment.
            let mut at = [0usize; N];
            let mut end = head;
            for (list, at) in lists.iter().zip(&mut at) {
                let (len, size, align) = list.shape();
                *at = end.next_multiple_of(align);
                end = len.checked_mul(size).and_then(|bytes| at.checked_add(bytes)).ok_or_else(too_large)?;
            }
            if end > MAX_STRING_BYTES {
                return Err(too_large());
            }
            // Leased from the arena when it has room (no entry into the
            // plugin), else one `realloc`; aligned to the largest of the lists'.
            let leased = match alloc {
                ListAlloc::Leased(lease) => lease.take(cx, end)?,
                _ => None,
            };
            let base = match leased {
                Some(base) => base,
                None => cx.realloc(0, 0, BLOCK_ALIGN as u32, end)?,
            };
            let block = guest_slice(cx, base, end)?;
            for ((list, &at), pair) in lists.into_iter().zip(&at).zip(&mut pairs) {
                let (len, size, _) = list.shape();
                list.write(&mut block[at..at + len * size]);
                *pair = ((base + at) as u32, len as u32);
            }
            if head > 0 {
                head_at = base;
            }
        }
    }
    Ok((pairs, head_at))
}

/// `bytes` bytes at `ptr` of the guest's memory, where `realloc` (or the lease) put them.
fn guest_slice<'m, U>(cx: &'m mut LowerContext<'_, U>, ptr: usize, bytes: usize) -> wasmtime::Result<&'m mut [u8]> {
    cx.as_slice_mut().get_mut(ptr..).and_then(|m| m.get_mut(..bytes)).ok_or_else(|| {
        refused(format!("{bytes} bytes at {ptr:#x} (from its realloc or its arena lease) lie beyond its memory"))
    })
}

/// A primitive a column holds: its little-endian bytes are its canonical form.
///
/// # Safety
/// Implemented only for types without padding whose in-memory bytes on a
/// little-endian host are their canonical-ABI bytes (`u32`, `u64`, `f32`):
/// [`write_column`] copies a slice of them as one block of bytes.
unsafe trait Primitive: Copy {
    /// Write the value's canonical bytes into `out` (exactly its size).
    fn write(&self, out: &mut [u8]);
}

macro_rules! primitive {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive number: no padding, little-endian bytes canonical.
        unsafe impl Primitive for $t {
            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
primitive!(u32, u64, f32);

/// A column's elements as one block: on a little-endian host a copy of the
/// slice's bytes (as wasmtime's own lowering of a primitive list does), else
/// element by element.
fn write_column<T: Primitive>(items: &[T], bytes: &mut [u8]) {
    let size = std::mem::size_of::<T>();
    if cfg!(target_endian = "little") && bytes.len() == std::mem::size_of_val(items) {
        // SAFETY: `Primitive` types have no padding, so every byte of the
        // slice is initialised; the view covers exactly the slice.
        let view = unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), bytes.len()) };
        bytes.copy_from_slice(view);
    } else {
        for (item, chunk) in items.iter().zip(bytes.chunks_exact_mut(size)) {
            item.write(chunk);
        }
    }
}

/// An `item-row` exactly as the canonical ABI lays it out, padding spelled out
/// as zeroed fields: on a little-endian host its bytes are the row's bytes.
#[repr(C)]
#[derive(Clone, Copy)]
struct CanonicalRow {
    id: u64,
    channel: u8,
    _pad0: [u8; 3],
    queue: u32,
    tier: u8,
    _pad1: u8,
    contacts: u16,
    priority: i32,
    age_ms: u64,
    due_in_ms: i64,
    value: f64,
    skill_start: u32,
    skill_count: u32,
    attr_start: u32,
    attr_count: u32,
}

// `CanonicalRow` is the WIT's `item-row` field by field (offset and size), and
// has every field of it: a WIT edit fails the build here until the struct and
// `write_row` follow.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<CanonicalRow>() == ROW_SIZE && align_of::<CanonicalRow>() == ITEM_ROW.align);
    assert!(ITEM_ROW.fields.len() == 13);
    macro_rules! at {
        ($field:ident: $ty:ty = $name:literal) => {
            assert!(offset_of!(CanonicalRow, $field) == ITEM_ROW.offset($name));
            assert!(size_of::<$ty>() == ITEM_ROW.field($name).size);
        };
    }
    at!(id: u64 = "id");
    at!(channel: u8 = "channel");
    at!(queue: u32 = "queue");
    at!(tier: u8 = "tier");
    at!(contacts: u16 = "contacts");
    at!(priority: i32 = "priority");
    at!(age_ms: u64 = "age-ms");
    at!(due_in_ms: i64 = "due-in-ms");
    at!(value: f64 = "value");
    at!(skill_start: u32 = "skill-start");
    at!(skill_count: u32 = "skill-count");
    at!(attr_start: u32 = "attr-start");
    at!(attr_count: u32 = "attr-count");
};

fn write_row(row: &ItemRow, out: &mut [u8; ROW_SIZE]) {
    let canonical = CanonicalRow {
        id: row.id.to_le(),
        channel: row.channel.index() as u8,
        _pad0: [0; 3],
        queue: row.queue.to_le(),
        tier: row.tier,
        _pad1: 0,
        contacts: row.contacts.to_le(),
        priority: row.priority.to_le(),
        age_ms: row.age_ms.to_le(),
        due_in_ms: row.due_in_ms.to_le(),
        value: f64::from_bits(row.value.to_bits().to_le()),
        skill_start: row.skill_start.to_le(),
        skill_count: row.skill_count.to_le(),
        attr_start: row.attr_start.to_le(),
        attr_count: row.attr_count.to_le(),
    };
    // SAFETY: `CanonicalRow` is `repr(C)`, 64 bytes, with every byte belonging
    // to a field (no implicit padding, asserted above), so reading it as bytes
    // reads initialised memory; `out` is exactly 64 bytes and may be unaligned.
    unsafe { std::ptr::write_unaligned(out.as_mut_ptr().cast::<CanonicalRow>(), canonical) };
}

fn write_skill(skill: &SkillReq, out: &mut [u8; SKILL_SIZE]) {
    const SKILL_AT: usize = SKILL_REQ.offset("skill");
    const LEVEL_AT: usize = SKILL_REQ.offset("level");
    const _: () = assert!(
        SKILL_REQ.fields.len() == 2 && SKILL_REQ.field("skill").size == 4 && SKILL_REQ.field("level").size == 1
    );
    let mut bytes = [0u8; SKILL_SIZE];
    bytes[SKILL_AT..SKILL_AT + 4].copy_from_slice(&skill.skill.0.to_le_bytes());
    bytes[LEVEL_AT] = skill.level;
    *out = bytes;
}

/// A `prioritise` answer (`list<priority>`) lifted straight into SDK values.
/// Queue ids and text are checked against the contract afterwards
/// (`contract::check_priorities`), as for any answer.
pub struct PrioritiesAnswer(pub Vec<Priority>);

// SAFETY: lowered form and ABI of a `list`, type-checked as `list<priority>`.
unsafe impl ComponentType for PrioritiesAnswer {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[wit::Priority] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads only within the guest memory slice, bounds-checked.
unsafe impl Lift for PrioritiesAnswer {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        // Pointers and lengths are u32 in a 32-bit memory; wasmtime stores them as i64 (see `ValRaw`).
        let ptr = src[0].get_u32() as usize;
        let len = src[1].get_u32() as usize;
        lift_priorities(cx, ptr, len)
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, _ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let (ptr, len) = list_from_memory(bytes)?;
        lift_priorities(cx, ptr, len)
    }
}

fn lift_priorities(cx: &mut LiftContext<'_>, ptr: usize, len: usize) -> wasmtime::Result<PrioritiesAnswer> {
    // The memory slice lives as long as the context, not a borrow of it, so
    // reasons are lifted through `cx` in the same pass.
    let list = list_bytes(cx.memory(), ptr, len, PRIORITY_SIZE, PRIORITY.align, "answer")?;
    cx.consume_fuel_array(len, std::mem::size_of::<Priority>())?;
    let mut out = Vec::with_capacity(len);
    for (i, row) in list.chunks_exact(PRIORITY_SIZE).enumerate() {
        let queue = match row[PRIORITY_QUEUE_AT] {
            0 => None,
            1 => Some(QueueId(u32_at(row, PRIORITY_QUEUE_AT + 4))),
            d => wasmtime::bail!("invalid `option` discriminant {d} in priority {i}"),
        };
        let reason = match row[PRIORITY_REASON_AT] {
            0 => None,
            1 => Some(lift_string(cx, row, PRIORITY_REASON_AT + 4)?),
            d => wasmtime::bail!("invalid `option` discriminant {d} in priority {i}"),
        };
        out.push(Priority { priority: u32_at(row, PRIORITY_PRIORITY_AT) as i32, queue, reason });
    }
    Ok(PrioritiesAnswer(out))
}

/// The string whose `(pointer, length)` is at `at` of `record` (bounds-checked
/// by the caller), lifted as wasmtime lifts any string: within the plugin's
/// memory, in the component's string encoding, validated.
fn lift_string(cx: &mut LiftContext<'_>, record: &[u8], at: usize) -> wasmtime::Result<String> {
    let mut pair = [0u8; 8];
    pair.copy_from_slice(&record[at..at + 8]);
    <String as Lift>::linear_lift_from_memory(cx, InterfaceType::String, &pair)
}

/// Size of an `escalation` in the canonical ABI.
const ESCALATION_SIZE: usize = ESCALATION.size;
/// Where `escalation`'s fields lie: the action list's (pointer, length), and
/// `option<u64>`'s discriminant with its payload at +8 (asserted below).
const ESCALATION_ACTIONS_AT: usize = ESCALATION.offset("actions");
const ESCALATION_RECHECK_AT: usize = ESCALATION.offset("recheck-in-ms");
/// `escalation-action` is a variant, which the contract's `layout` does not describe: its
/// size and alignment are wasmtime's for the generated type (discriminant u8,
/// payload at +4: a string's (pointer, length) is the widest case).
const ACTION_SIZE: usize = <wit::EscalationAction as ComponentType>::SIZE32;
const ACTION_ALIGN: usize = <wit::EscalationAction as ComponentType>::ALIGN32 as usize;
const ACTION_PAYLOAD_AT: usize = 4;
const _: () = {
    assert!(ESCALATION.fields.len() == 2 && ESCALATION.align == 8 && ESCALATION_SIZE == 24);
    assert!(ESCALATION.field("actions").size == 8 && ESCALATION_ACTIONS_AT == 0);
    // option<u64>: discriminant u8, u64 at +8.
    assert!(ESCALATION.field("recheck-in-ms").size == 16);
    assert!(ACTION_SIZE == ACTION_PAYLOAD_AT + 8 && ACTION_ALIGN == 4);
};

/// Little-endian `u32` at `at` of a slice the caller has bounds-checked.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The `(pointer, length)` of a list at `ptr` in the flat or in-memory return form.
fn list_from_memory(bytes: &[u8]) -> wasmtime::Result<(usize, usize)> {
    if bytes.len() < 8 {
        wasmtime::bail!("answer pointer out of bounds");
    }
    Ok((u32_at(bytes, 0) as usize, u32_at(bytes, 4) as usize))
}

/// `len` elements of `size` bytes at `ptr` of the plugin's memory, aligned to
/// `align`, or why not.
fn list_bytes<'m>(
    memory: &'m [u8],
    ptr: usize,
    len: usize,
    size: usize,
    align: usize,
    what: &str,
) -> wasmtime::Result<&'m [u8]> {
    let bytes = len.checked_mul(size).ok_or_else(|| wasmtime::format_err!("{what} list length overflows"))?;
    if !ptr.is_multiple_of(align) {
        wasmtime::bail!("{what} list pointer {ptr:#x} is not aligned");
    }
    ptr.checked_add(bytes)
        .and_then(|end| memory.get(ptr..end))
        .ok_or_else(|| wasmtime::format_err!("{what} list of {len} at {ptr:#x} is out of the plugin's memory"))
}

/// An `escalate` answer (`list<escalation>`) lifted straight into SDK values:
/// one pass over the records and their action lists, where wasmtime's generic
/// lift built the generated types first (≈10 % of claims' escalate at 64
/// items) and `check_escalations` then moved every action into the SDK's.
/// Ids, text and sizes are checked against the contract afterwards
/// (`contract::check_escalations`), as for any answer.
pub struct EscalationsAnswer(pub Vec<Escalation>);

// SAFETY: lowered form and ABI of a `list`, type-checked as `list<escalation>`
// (which checks `escalation-action`'s cases, in order, too).
unsafe impl ComponentType for EscalationsAnswer {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[wit::Escalation] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads only within the guest memory slice, bounds-checked.
unsafe impl Lift for EscalationsAnswer {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        lift_escalations(cx, src[0].get_u32() as usize, src[1].get_u32() as usize)
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, _ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let (ptr, len) = list_from_memory(bytes)?;
        lift_escalations(cx, ptr, len)
    }
}

fn lift_escalations(cx: &mut LiftContext<'_>, ptr: usize, len: usize) -> wasmtime::Result<EscalationsAnswer> {
    // The memory slice lives as long as the context, not a borrow of it, so
    // strings can be lifted through `cx` while the records are read.
    let memory = cx.memory();
    let records = list_bytes(memory, ptr, len, ESCALATION_SIZE, ESCALATION.align, "answer")?;
    cx.consume_fuel_array(len, std::mem::size_of::<Escalation>())?;
    let mut out = Vec::with_capacity(len);
    for (i, record) in records.chunks_exact(ESCALATION_SIZE).enumerate() {
        let recheck_in_ms = match record[ESCALATION_RECHECK_AT] {
            0 => None,
            1 => {
                let at = ESCALATION_RECHECK_AT + 8;
                let mut word = [0u8; 8];
                word.copy_from_slice(&record[at..at + 8]);
                Some(u64::from_le_bytes(word))
            }
            d => wasmtime::bail!("invalid `option` discriminant {d} in escalation {i}"),
        };
        let (actions_ptr, n) = list_from_memory(&record[ESCALATION_ACTIONS_AT..])?;
        let mut actions = Vec::new();
        if n > 0 {
            let list = list_bytes(memory, actions_ptr, n, ACTION_SIZE, ACTION_ALIGN, "escalation action")?;
            cx.consume_fuel_array(n, std::mem::size_of::<EscalationAction>())?;
            actions.reserve_exact(n);
            for action in list.chunks_exact(ACTION_SIZE) {
                let word = u32_at(action, ACTION_PAYLOAD_AT);
                actions.push(match action[0] {
                    0 => EscalationAction::RaiseBy(word as i32),
                    1 => EscalationAction::RaiseTo(word as i32),
                    2 => EscalationAction::RelaxLevels(action[ACTION_PAYLOAD_AT]),
                    3 => EscalationAction::DropSkill(SkillId(word)),
                    4 => EscalationAction::MoveTo(QueueId(word)),
                    5 => EscalationAction::Alert(lift_string(cx, action, ACTION_PAYLOAD_AT)?),
                    d => wasmtime::bail!("invalid `escalation-action` discriminant {d} in escalation {i}"),
                });
            }
        }
        out.push(Escalation { actions, recheck_in_ms });
    }
    Ok(EscalationsAnswer(out))
}

#[cfg(test)]
mod conformance;

#[cfg(test)]
mod tests {
    use super::*;

    /// The layouts computed from the WIT (wit-parser, `switchyard_contract::layout`) have the
    /// sizes and alignments wasmtime computes for the generated types: two
    /// implementations of the canonical ABI agree.
    #[test]
    fn layouts_from_the_wit_match_wasmtimes_canonical_abi() {
        for (layout, size, align) in [
            (ITEM_ROW, <wit::ItemRow as ComponentType>::SIZE32, <wit::ItemRow as ComponentType>::ALIGN32),
            (SKILL_REQ, <wit::SkillReq as ComponentType>::SIZE32, <wit::SkillReq as ComponentType>::ALIGN32),
            (PRIORITY, <wit::Priority as ComponentType>::SIZE32, <wit::Priority as ComponentType>::ALIGN32),
        ] {
            assert_eq!((layout.size, layout.align), (size, align as usize), "{}", layout.name);
        }
    }
}
