//! The canonical-ABI bodies of the three hook exports, written by hand so that a
//! call costs the guest (almost) nothing per item beyond the rule itself.
//!
//! This module owns the component side of the hook calls: lifting the
//! `item-batch` and `candidate-table` the host lowered into this instance's
//! memory, lowering the answers (`list<priority>`, `list<escalation>`,
//! `match-result`) straight into their canonical layout, and freeing each answer
//! when the next call begins ([`release_answer`]). The export symbols themselves are emitted
//! by `#[switchyard_sdk::rules]` (they must be generic over the author's type) and
//! forward here through `crate::wasm`, which supplies the per-instance context.
//!
//! What it replaces: wit-bindgen's generated shims lift `list<item-row>` element
//! by element into `wit::ItemRow`, the SDK then copied every row again, built a
//! `Vec<wit::Priority>`, and wit-bindgen lowered that element by element. Here:
//!
//! - **Lifting.** The host allocates every list through this instance's
//!   export `realloc`, the argument arena (`crate::arena`), with the layout a
//!   `Vec<T>` of that length has (`len * size_of::<T>()` bytes, aligned to
//!   `align_of::<T>()`) — or, when the component declares the arena, all of a
//!   call's lists in one allocation. Each list is adopted in place as a `Vec`
//!   and the batch or table lent to the rule ([`Lent`]): never dropped, freed
//!   with the arena when the call's [`Call`] guard drops. `list<item-row>` and
//!   `list<skill-req>` are adopted as `Vec<ItemRow>` / `Vec<SkillReq>` because
//!   those types are `#[repr(C)]` with
//!   the canonical layout (asserted at compile time in `batch.rs` / `types.rs`).
//!   The one field with invalid bit patterns is `channel`: every row's channel
//!   byte is checked to be `0..=3` before the memory is viewed as `ItemRow`s.
//!   `attr-values` is trusted to be UTF-8 in release builds (the canonical ABI
//!   requires it and wasmtime lowers it from a `&str`) and checked in debug
//!   builds, exactly as wit-bindgen's `string_lift` does.
//! - **Lowering.** Each answer is written into a buffer allocated once, in the
//!   canonical layout, while the rule runs item by item; strings (reasons,
//!   alerts) and answer lists are handed over as boxed slices (capacity = length),
//!   so they can be freed from the (pointer, length) pairs alone.
//! - **No post-return.** The canonical ABI lets an export name a post-return
//!   function the host calls once it has read the answer; the glue exports
//!   none. An answer stays in place until the next call into the instance,
//!   whose first step frees it ([`release_answer`]): the same frees, one entry
//!   into the instance fewer per call (issue 19: the host's fixed cost of an
//!   entry is what keeps a small call's ratio to native up). What is held in
//!   between is one answer per idle instance.
//!
//! Layouts are written with `P = size_of::<*const u8>()` like wit-bindgen's, so
//! the same code runs (and is tested) natively; on wasm32 `P = 4` and they are
//! the canonical ABI's. Flat signatures (MAX_FLAT_PARAMS 16, MAX_FLAT_RESULTS 1):
//! `prioritise` / `escalate` take `now-ms` and five (pointer, length) pairs and
//! return a pointer to a return area holding the answer list's (pointer, length);
//! `match-agents` has 23 flat parameters, so it takes one pointer to them laid out
//! in memory (in the argument arena, like the lists: see `crate::arena`) and
//! returns a pointer to the `match-result` (discriminant @0, list @P/@2P).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::UnsafeCell;
use std::mem::{MaybeUninit, align_of, offset_of, size_of};

use crate::arena::{Call, Lent};
use crate::batch::{CandidateTable, ItemBatch, ItemRow};
use crate::context::Context;
use crate::rules::Rules;
use crate::types::{Escalation, EscalationAction, MatchResult, Priority, SkillReq};

/// Pointer size: 4 on wasm32, where these layouts are the canonical ABI's.
const P: usize = size_of::<*const u8>();

/// `priority` record: priority s32 @0, queue option<u32> (disc @4, value @8),
/// reason option<string> (disc @8+P, ptr @8+2P, len @8+3P).
const PRIORITY_SIZE: usize = 8 + 4 * P;
const PRIORITY_ALIGN: usize = P;
/// `escalation` record: actions list (ptr @0, len @P), recheck-in-ms
/// option<u64> (disc @2P, value @8+2P).
const ESCALATION_SIZE: usize = 16 + 2 * P;
const ESCALATION_ALIGN: usize = 8;
/// `escalation-action` variant: disc u8 @0, payload @P (a string: ptr @P, len @2P).
const ACTION_SIZE: usize = 3 * P;
const ACTION_ALIGN: usize = P;
/// `match-agents`' parameters in memory: now-ms u64 @0, then 22 (ptr, len) words
/// (5 lists of the batch, 6 of the table), alignment 8.
const MATCH_PARAMS_SIZE: usize = 8 + 22 * P;
const MATCH_PARAMS_ALIGN: usize = 8;
/// Offset of the channel byte in an `item-row`.
const CHANNEL_AT: usize = offset_of!(ItemRow, channel);

/// The return area: the flat results do not fit the one allowed core result, so
/// every hook returns a pointer to this. Large enough for a list (ptr, len) and
/// for a `match-result` (disc, ptr, len).
#[repr(C, align(8))]
struct RetArea(UnsafeCell<[MaybeUninit<u8>; 3 * P]>);

thread_local! {
    // One per instance (a component instance is single-threaded; on wasm32 this
    // is a plain static). The component model never re-enters an instance, and a
    // call's answer is released before the next call writes one, so one area
    // serves all three hooks.
    static RET_AREA: RetArea = const { RetArea(UnsafeCell::new([MaybeUninit::uninit(); 3 * P])) };
}

fn ret_area() -> *mut u8 {
    // The pointer stays valid after `with` returns: the thread-local lives as long
    // as the thread (the instance), and it is only accessed through raw pointers.
    RET_AREA.with(|area| area.0.get().cast::<u8>())
}

/// Frees the answer a hook left in the return area (see [`release_answer`]).
type Release = unsafe fn(*mut u8);

thread_local! {
    // How to free the answer the last call left in the return area for the host
    // to read; `None` once it has been freed (or before the first call).
    static ANSWER_LEFT: std::cell::Cell<Option<Release>> = const { std::cell::Cell::new(None) };
}

/// Free the answer the previous call left for the host, which has read it by
/// now: the component model never enters an instance again before the host has
/// lifted the last call's results. Every hook calls this first, in place of a
/// post-return export.
pub(crate) fn release_answer() {
    if let Some(release) = ANSWER_LEFT.take() {
        // SAFETY: `release` is the function matching the answer in the return
        // area (set by `leave_answer`), and taking it out of the slot makes this
        // the one time it runs for that answer.
        unsafe { release(ret_area()) }
    }
}

/// The return area, with `release` recorded as how to free the answer about to
/// be written in it.
fn leave_answer(release: Release) -> *mut u8 {
    ANSWER_LEFT.set(Some(release));
    ret_area()
}

/// Adopt a list argument of `call` as a `Vec<T>` whose buffer is in the
/// argument arena (see `crate::arena`): to be lent, never dropped.
///
/// # Safety
/// `ptr` must be the block the host allocated for this list through this
/// instance's `cabi_export_realloc` (or, from a host that ignores it, through
/// `cabi_realloc`: `Vec<T>`'s layout for capacity `len`, ours to free), holding
/// `len` initialized values of `T`.
unsafe fn adopt<T>(call: &Call, ptr: *mut u8, len: usize, what: &str) -> Vec<T> {
    if len == 0 {
        // Nothing was allocated (a `realloc` of zero bytes returns a dangling
        // aligned pointer), so there is nothing to adopt.
        return Vec::new();
    }
    if ptr.is_null() || !ptr.cast::<T>().is_aligned() {
        panic!("switchyard: the host passed a misaligned `{what}` list ({ptr:p})");
    }
    let Some(bytes) = len.checked_mul(size_of::<T>()) else {
        panic!("switchyard: the host passed a `{what}` list of {len} elements, larger than memory");
    };
    // SAFETY: forwarded from the caller; `take` returns the list's bytes in
    // the arena, still aligned for `T` (it keeps or re-allocates with
    // `align_of::<T>()`) and initialized. Capacity = length = `len`; the `Vec`
    // is lent (`Lent`) and never dropped, so it never frees arena memory.
    unsafe { Vec::from_raw_parts(call.take(ptr, bytes, align_of::<T>()).cast::<T>(), len, len) }
}

/// Adopt the host's `list<item-row>`, after checking every row's channel byte.
///
/// # Safety
/// As [`adopt`] for `T = ItemRow`: `len * 64` initialized bytes, align 8.
unsafe fn adopt_rows(call: &Call, ptr: *mut u8, len: usize) -> Vec<ItemRow> {
    if len == 0 {
        return Vec::new();
    }
    if ptr.is_null() || !ptr.cast::<ItemRow>().is_aligned() {
        panic!("switchyard: the host passed a misaligned `rows` list ({ptr:p})");
    }
    for i in 0..len {
        // SAFETY: row `i` lies within the `len * 64` bytes the caller vouches for;
        // the byte is read as a `u8` (every bit pattern valid) before anything
        // is viewed as a `Channel`.
        let channel = unsafe { ptr.add(i * size_of::<ItemRow>() + CHANNEL_AT).read() };
        if channel > 3 {
            panic!("switchyard: item row {i} has invalid channel discriminant {channel} (expected 0..=3)");
        }
    }
    // SAFETY: as `adopt`; every field of `ItemRow` but `channel` is a plain
    // integer or float (any bits valid), `channel` was checked above (and
    // `take` copies the bytes unchanged), and padding bytes need not hold anything.
    unsafe { adopt::<ItemRow>(call, ptr, len, "rows") }
}

/// Adopt `attr-values` as a `String`.
///
/// # Safety
/// As [`adopt`] for `T = u8`.
unsafe fn adopt_string(call: &Call, ptr: *mut u8, len: usize) -> String {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { adopt::<u8>(call, ptr, len, "attr-values") };
    if cfg!(debug_assertions) {
        match std::str::from_utf8(&bytes) {
            // SAFETY: just checked.
            Ok(_) => unsafe { String::from_utf8_unchecked(bytes) },
            Err(e) => panic!("switchyard: the host passed `attr-values` that are not UTF-8: {e}"),
        }
    } else {
        // SAFETY: the canonical ABI only lets a host lower valid UTF-8 into a
        // `string` (wasmtime lowers it from a `&str`); wit-bindgen's own
        // `string_lift` trusts it the same way in release builds.
        unsafe { String::from_utf8_unchecked(bytes) }
    }
}

/// The flattened `item-batch` argument of a hook, as the canonical ABI passes
/// it: `now-ms`, then the (pointer, length) of `rows`, `skills`, `attr-keys`,
/// `attr-value-ends` and `attr-values`, in that order.
#[derive(Debug, Clone, Copy)]
pub struct FlatBatch {
    /// `now-ms`.
    pub now_ms: i64,
    /// The five lists, in WIT field order.
    pub lists: [(*mut u8, usize); 5],
}

/// Build the SDK's batch from the flattened `item-batch`, lent for `call`.
///
/// # Safety
/// Each (pointer, length) pair must be a list the host lowered for this call
/// through the export `realloc`, per the canonical ABI of `item-batch`.
unsafe fn lift_batch(call: &Call, flat: FlatBatch) -> Lent<'_, ItemBatch> {
    let [rows, skills, attr_keys, attr_value_ends, attr_values] = flat.lists;
    // SAFETY: forwarded from the caller; each list is adopted exactly once,
    // into the arena, so the batch owns arena memory only.
    unsafe {
        let batch = ItemBatch {
            now_ms: flat.now_ms as u64,
            rows: adopt_rows(call, rows.0, rows.1),
            skills: adopt::<SkillReq>(call, skills.0, skills.1, "skills"),
            attr_keys: adopt::<u32>(call, attr_keys.0, attr_keys.1, "attr-keys"),
            attr_value_ends: adopt::<u32>(call, attr_value_ends.0, attr_value_ends.1, "attr-value-ends"),
            attr_values: adopt_string(call, attr_values.0, attr_values.1),
        };
        Lent::new(call, batch)
    }
}

/// Run a per-item rule over the batch and lower its answers into one list of
/// `size`-byte records: `write(item, record)` writes one and says whether it
/// handed over memory `release` must free. The return area holds the list's
/// (pointer, length) — what the host reads — and, in its third word, how many
/// records own memory, so `release` skips the walk when none do.
///
/// # Safety
/// As [`prioritise`]; `write` must write exactly one record of `size` bytes
/// (alignment `align`) at the pointer it is given.
unsafe fn answer_each(
    flat: FlatBatch,
    size: usize,
    align: usize,
    release: Release,
    mut write: impl FnMut(crate::batch::Item<'_>, *mut u8) -> bool,
) -> *mut u8 {
    let call = Call::begin();
    // SAFETY: the caller passes the lists of one call, each adopted once.
    let batch = unsafe { lift_batch(&call, flat) };
    let n = batch.len();
    let out = alloc_list(n, size, align);
    let mut owning = 0usize;
    // `batch.iter()` yields exactly `n` items (one per row), in order: the same
    // answers `crate::rules::prioritise_batch` / `escalate_batch` collect.
    for (i, item) in batch.iter().enumerate() {
        // SAFETY: record `i < n` lies inside the `n * size` bytes allocated
        // above with the record's alignment.
        owning += usize::from(write(item, unsafe { out.add(i * size) }));
    }
    let ret = leave_answer(release);
    // SAFETY: the return area holds `3 * P` bytes aligned to 8.
    unsafe {
        write_list(ret, out, n);
        ret.add(2 * P).cast::<usize>().write(owning);
    }
    ret
}

/// Allocate an answer list of `len` elements of `size` bytes, as the canonical
/// ABI lays it out. Zero elements allocate nothing (a dangling, aligned pointer,
/// as `cabi_realloc` returns), and [`free_list`] skips them.
fn alloc_list(len: usize, size: usize, align: usize) -> *mut u8 {
    if len == 0 {
        return align as *mut u8;
    }
    let layout = match len.checked_mul(size).map(|bytes| Layout::from_size_align(bytes, align)) {
        Some(Ok(layout)) => layout,
        _ => panic!("switchyard: an answer list of {len} elements does not fit in memory"),
    };
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe { alloc(layout) };
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    ptr
}

/// Free a list [`alloc_list`] allocated, or a boxed slice [`leak_vec`] handed
/// over (the global allocator gives both the layout `(len * size, align)`).
///
/// # Safety
/// `ptr` came from `alloc_list(len, size, align)`, or is a `Box<[T]>` of `len`
/// elements with `size_of::<T>() == size` and `align_of::<T>() == align`; it is
/// not used afterwards.
unsafe fn free_list(ptr: *mut u8, len: usize, size: usize, align: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: the same layout `alloc_list` allocated with (it checked it then).
    unsafe { dealloc(ptr, Layout::from_size_align_unchecked(len * size, align)) }
}

thread_local! {
    // The capacities of the strings a call's answer handed over, in the order
    // they were written; the answer's release frees each with its own and clears the
    // list, which keeps its allocation for the next call (one instance, one
    // thread: see `RET_AREA`).
    static HANDED_OVER: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Hand a string's bytes over as (pointer, length), keeping its capacity for
/// the answer's release ([`free_handed_over`]). Shrinking it to its length instead
/// (`into_boxed_slice`) cost a `realloc` per reason in the guest's allocator.
fn leak_bytes(s: String) -> (*mut u8, usize) {
    let mut s = std::mem::ManuallyDrop::new(s);
    HANDED_OVER.with(|caps| caps.borrow_mut().push(s.capacity()));
    (s.as_mut_ptr(), s.len())
}

/// Free the strings [`leak_bytes`] handed over for one answer, given their
/// pointers in the order they were handed over.
///
/// # Safety
/// `ptrs` yields exactly the pointers `leak_bytes` returned since the last
/// call of this, in order, each once.
unsafe fn free_handed_over(ptrs: impl Iterator<Item = *mut u8>) {
    HANDED_OVER.with(|caps| {
        let mut caps = caps.borrow_mut();
        for (ptr, &cap) in ptrs.zip(caps.iter()) {
            if cap > 0 {
                // SAFETY: `ptr` is a `String`'s buffer of capacity `cap`, which
                // the global allocator gave the layout `(cap, 1)`, freed once.
                unsafe { dealloc(ptr, Layout::from_size_align_unchecked(cap, 1)) };
            }
        }
        caps.clear();
    });
}

/// Hand a vector over as (pointer, length) with capacity = length.
fn leak_vec<T>(v: Vec<T>) -> (*mut u8, usize) {
    let v = v.into_boxed_slice();
    let len = v.len();
    (Box::into_raw(v).cast::<u8>(), len)
}

/// Write a list's (pointer, length) at `at`.
///
/// # Safety
/// `at` is valid for writing two pointer-sized words and aligned to `P`.
unsafe fn write_list(at: *mut u8, ptr: *mut u8, len: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        at.cast::<*mut u8>().write(ptr);
        at.add(P).cast::<usize>().write(len);
    }
}

/// Read a list's (pointer, length) at `at`.
///
/// # Safety
/// `at` is valid for reading two pointer-sized words and aligned to `P`.
unsafe fn read_list(at: *const u8) -> (*mut u8, usize) {
    // SAFETY: forwarded from the caller.
    unsafe { (at.cast::<*mut u8>().read(), at.add(P).cast::<usize>().read()) }
}

/// Lower one `priority` at `base`; true when it handed over a reason string.
/// Inlined: it runs once per item, and a call per item cost ≈15 % of a large
/// batch (measured).
///
/// # Safety
/// `base` is valid for writing `PRIORITY_SIZE` bytes and aligned to `PRIORITY_ALIGN`.
#[inline(always)]
unsafe fn write_priority(base: *mut u8, p: Priority) -> bool {
    // SAFETY: every offset is inside the record and aligned for its type.
    unsafe {
        base.cast::<i32>().write(p.priority);
        match p.queue {
            Some(queue) => {
                base.add(4).write(1);
                base.add(8).cast::<u32>().write(queue.0);
            }
            None => base.add(4).write(0),
        }
        match p.reason {
            Some(reason) => {
                base.add(8 + P).write(1);
                let (ptr, len) = leak_bytes(reason);
                write_list(base.add(8 + 2 * P), ptr, len);
                true
            }
            None => {
                base.add(8 + P).write(0);
                false
            }
        }
    }
}

/// Lower one `escalation` at `base`, its actions at `actions` (a slice of the
/// call's one action arena, see [`escalate`]).
///
/// # Safety
/// `base` is valid for writing `ESCALATION_SIZE` bytes and aligned to
/// `ESCALATION_ALIGN`; `actions` for writing `e.actions.len() * ACTION_SIZE`
/// bytes and aligned to `ACTION_ALIGN`.
unsafe fn write_escalation(base: *mut u8, e: Escalation, actions: *mut u8) {
    let n = e.actions.len();
    for (i, action) in e.actions.into_iter().enumerate() {
        // SAFETY: action `i < n` lies inside the `n * ACTION_SIZE` bytes the
        // caller vouches for, aligned to `P`; the payload sits at `P`.
        unsafe {
            let at = actions.add(i * ACTION_SIZE);
            let (disc, payload): (u8, u32) = match action {
                EscalationAction::RaiseBy(n) => (0, n as u32),
                EscalationAction::RaiseTo(n) => (1, n as u32),
                EscalationAction::RelaxLevels(n) => {
                    at.write(2);
                    at.add(P).write(n);
                    continue;
                }
                EscalationAction::DropSkill(s) => (3, s.0),
                EscalationAction::MoveTo(q) => (4, q.0),
                EscalationAction::Alert(message) => {
                    at.write(5);
                    let (ptr, len) = leak_bytes(message);
                    write_list(at.add(P), ptr, len);
                    continue;
                }
            };
            at.write(disc);
            at.add(P).cast::<u32>().write(payload);
        }
    }
    // SAFETY: every offset is inside the record and aligned for its type.
    unsafe {
        write_list(base, actions, n);
        match e.recheck_in_ms {
            Some(ms) => {
                base.add(2 * P).write(1);
                base.add(8 + 2 * P).cast::<u64>().write(ms);
            }
            None => base.add(2 * P).write(0),
        }
    }
}

/// `prioritise`: run the rule over the batch the host lowered and return the
/// answers in place.
///
/// # Safety
/// Only as the body of the `prioritiser#prioritise` export: the arguments are the
/// flattened `item-batch` of one call, lowered by the host through this
/// instance's export `realloc`. The returned area stays valid until the next
/// call begins ([`release_answer`]).
pub unsafe fn prioritise<R: Rules>(rules: &R, ctx: &Context, flat: FlatBatch) -> *mut u8 {
    release_answer();
    ctx.begin_call();
    // SAFETY: forwarded from the caller; `write_priority` writes one record.
    unsafe {
        answer_each(flat, PRIORITY_SIZE, PRIORITY_ALIGN, release_priorities, |item, record| {
            write_priority(record, rules.prioritise(ctx, item))
        })
    }
}

/// Free what `prioritise` left in the return area: the answer list and its
/// reason strings.
///
/// # Safety
/// Only through [`release_answer`], with the return area `prioritise` filled.
unsafe fn release_priorities(ret: *mut u8) {
    // SAFETY: `ret` is the return area `prioritise` filled: the list it
    // allocated, whose records it wrote (reason discriminant @8+P, and when 1,
    // the string from `leak_bytes` @8+2P); each is freed once.
    unsafe {
        let (out, n) = read_list(ret);
        let owning = ret.add(2 * P).cast::<usize>().read();
        let reasons = (0..n).take_while(|_| owning > 0).filter_map(|i| {
            let base = out.add(i * PRIORITY_SIZE);
            (base.add(8 + P).read() != 0).then(|| read_list(base.add(8 + 2 * P)).0)
        });
        free_handed_over(reasons);
        free_list(out, n, PRIORITY_SIZE, PRIORITY_ALIGN);
    }
}

/// `escalate`: run the rule over the batch the host lowered and return the
/// answers in place.
///
/// Every item's action list is a slice of ONE allocation for the whole call
/// (the "arena", item 0's list starts it): one allocation and one free per call
/// instead of one per item (issue 19; the guest's allocator is slower than the
/// host's, though on claims' escalate the gain was within the run-to-run
/// spread). The return area's third word holds the arena's length in actions.
///
/// # Safety
/// As [`prioritise`], for the `escalator#escalate` export.
pub unsafe fn escalate<R: Rules>(rules: &R, ctx: &Context, flat: FlatBatch) -> *mut u8 {
    release_answer();
    ctx.begin_call();
    let call = Call::begin();
    let answers: Vec<Escalation> = {
        // SAFETY: the caller passes the lists of one call, each adopted once.
        let batch = unsafe { lift_batch(&call, flat) };
        batch.iter().map(|item| rules.escalate(ctx, item)).collect()
    };
    // The arguments are gone: free them before the answer is built.
    drop(call);
    let n = answers.len();
    let total: usize = answers.iter().map(|e| e.actions.len()).sum();
    let out = alloc_list(n, ESCALATION_SIZE, ESCALATION_ALIGN);
    let arena = alloc_list(total, ACTION_SIZE, ACTION_ALIGN);
    let mut next = 0usize;
    for (i, e) in answers.into_iter().enumerate() {
        let k = e.actions.len();
        // SAFETY: record `i < n` lies inside `out`; actions `next..next + k` lie
        // inside the arena of `total` actions (the `k`s sum to `total`), both
        // allocated above with their alignment. With no actions at all the
        // arena is a dangling aligned pointer and nothing is written through it.
        unsafe { write_escalation(out.add(i * ESCALATION_SIZE), e, arena.add(next * ACTION_SIZE)) };
        next += k;
    }
    let ret = leave_answer(release_escalations);
    // SAFETY: the return area holds `3 * P` bytes aligned to 8.
    unsafe {
        write_list(ret, out, n);
        ret.add(2 * P).cast::<usize>().write(total);
    }
    ret
}

/// Free what `escalate` left in the return area: the alert messages, the action
/// arena and the answer list.
///
/// # Safety
/// Only through [`release_answer`], with the return area `escalate` filled.
unsafe fn release_escalations(ret: *mut u8) {
    // SAFETY: `ret` is the return area `escalate` filled: the answer list of `n`
    // records, and in its third word the arena's length; the arena starts at
    // item 0's action list. Every alert string was handed over by
    // `write_escalation` and is freed once, then the arena, then the list.
    unsafe {
        let (out, n) = read_list(ret);
        let total = ret.add(2 * P).cast::<usize>().read();
        if n > 0 {
            let (arena, _) = read_list(out);
            let alerts = (0..total).filter_map(|j| {
                let at = arena.add(j * ACTION_SIZE);
                (at.read() == 5).then(|| read_list(at.add(P)).0)
            });
            free_handed_over(alerts);
            free_list(arena, total, ACTION_SIZE, ACTION_ALIGN);
        }
        free_list(out, n, ESCALATION_SIZE, ESCALATION_ALIGN);
    }
}

/// `match-agents`: lift the item and the candidate table from the parameter
/// area, run the rule, and return the `match-result` in place.
///
/// # Safety
/// Only as the body of the `matcher#match-agents` export: `params` is the block
/// of `MATCH_PARAMS_SIZE` bytes (alignment 8) the host allocated through this
/// instance's export `realloc` and filled with the flattened `item-batch` and
/// `candidate-table`. It is freed with the call's arguments (see `crate::arena`). The returned
/// area stays valid until the next call begins ([`release_answer`]).
pub unsafe fn match_agents<R: Rules>(rules: &R, ctx: &Context, params: *mut u8) -> *mut u8 {
    release_answer();
    if params.is_null() || !params.cast::<u64>().is_aligned() {
        panic!("switchyard: the host passed a misaligned parameter area ({params:p})");
    }
    let call = Call::begin();
    // SAFETY: `params` holds now-ms @0 and 22 (ptr, len) pairs from @8, each a
    // list lowered for this call and adopted once, into the arena. The area
    // itself is in the arena too, or else ours to free with the layout the host
    // allocated it with, once read.
    let (item, table): (Lent<'_, ItemBatch>, Lent<'_, CandidateTable>) = unsafe {
        let list = |k: usize| read_list(params.add(8 + 2 * k * P));
        let item = lift_batch(
            &call,
            FlatBatch { now_ms: params.cast::<i64>().read(), lists: [list(0), list(1), list(2), list(3), list(4)] },
        );
        let (agent_ids, skill_columns, proficiency) = (list(5), list(6), list(7));
        let (idle_ms, occupancy, load) = (list(8), list(9), list(10));
        let table = CandidateTable {
            agent_ids: adopt::<u64>(&call, agent_ids.0, agent_ids.1, "agent-ids"),
            skill_columns: adopt::<u32>(&call, skill_columns.0, skill_columns.1, "skill-columns"),
            proficiency: adopt::<u8>(&call, proficiency.0, proficiency.1, "proficiency"),
            idle_ms: adopt::<u64>(&call, idle_ms.0, idle_ms.1, "idle-ms"),
            occupancy: adopt::<f32>(&call, occupancy.0, occupancy.1, "occupancy"),
            load: adopt::<u8>(&call, load.0, load.1, "load"),
        };
        if !call.owns(params, MATCH_PARAMS_SIZE) {
            dealloc(params, Layout::from_size_align_unchecked(MATCH_PARAMS_SIZE, MATCH_PARAMS_ALIGN));
        }
        (item, Lent::new(&call, table))
    };
    let result = crate::rules::match_one(rules, ctx, &item, &table);
    // `item` and `table` borrow `call`, which frees them when it drops (below).
    let ret = leave_answer(release_match);
    let (disc, (ptr, len)) = match result {
        MatchResult::Scores(scores) => (0u8, leak_vec(scores)),
        MatchResult::Ranked(ranked) => (1u8, leak_vec(ranked)),
    };
    // SAFETY: the return area holds `3 * P` bytes aligned to 8.
    unsafe {
        ret.write(disc);
        write_list(ret.add(P), ptr, len);
    }
    ret
}

/// Free what `match_agents` left in the return area: the scores or ranking.
///
/// # Safety
/// Only through [`release_answer`], with the return area `match_agents` filled.
unsafe fn release_match(ret: *mut u8) {
    // SAFETY: `ret` is the return area `match_agents` filled; both cases hold a
    // boxed slice of 4-byte elements (`f32` / `u32`), freed once.
    unsafe {
        let (ptr, len) = read_list(ret.add(P));
        free_list(ptr, len, 4, 4);
    }
}

// The element layouts adopted above are asserted beside `ItemRow` (batch.rs)
// and `SkillReq` (types.rs).
const _: () = assert!(MATCH_PARAMS_SIZE == 8 + 2 * 11 * P);

// On wasm32 the answer layouts above are the canonical ABI's: check them
// against the layouts computed from the WIT (`switchyard_contract::layout`), so a WIT
// edit fails every plugin's build instead of writing wrong bytes.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use switchyard_contract::layout::{ESCALATION, PRIORITY};
    assert!(PRIORITY_SIZE == PRIORITY.size && PRIORITY_ALIGN == PRIORITY.align);
    assert!(PRIORITY.fields.len() == 3 && PRIORITY.offset("priority") == 0);
    // option<u32>: discriminant @4, id @8 (what `write_priority` writes).
    assert!(PRIORITY.offset("queue") == 4 && PRIORITY.field("queue").size == 8);
    // option<string>: discriminant @8+P, (pointer, length) @8+2P.
    assert!(PRIORITY.offset("reason") == 8 + P && PRIORITY.field("reason").size == 3 * P);
    assert!(ESCALATION_SIZE == ESCALATION.size && ESCALATION_ALIGN == ESCALATION.align);
    assert!(ESCALATION.fields.len() == 2 && ESCALATION.offset("actions") == 0);
    // option<u64>: discriminant @2P, value @8+2P.
    assert!(ESCALATION.offset("recheck-in-ms") == 2 * P && ESCALATION.field("recheck-in-ms").size == 16);
};

#[cfg(test)]
mod tests {
    //! The hooks driven natively the way a host drives them: lists allocated
    //! through the export `realloc` (the argument arena), one each or all in
    //! one block, or with the global allocator (a host ignoring
    //! `cabi_export_realloc`); answers read back from the return area in the
    //! canonical layout, then released as the next call would.
    use super::*;
    use crate::batch::{Item, NewCandidate, NewItem};
    use crate::context::TestHost;
    use crate::types::{Channel, QueueId, SkillId};
    use std::mem::align_of;

    #[derive(Default)]
    struct Echo;

    impl Rules for Echo {
        fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
            let p = Priority::new(item.priority() + item.skills().len() as i32);
            match item.channel() {
                Channel::Email => p.to_queue(QueueId(7)).because(format!("email {}", item.id())),
                Channel::Case => p.because(""),
                _ => p,
            }
        }

        fn escalate(&self, _ctx: &Context, item: Item<'_>) -> Escalation {
            match item.id() % 3 {
                0 => Escalation::none(),
                1 => Escalation::none()
                    .then(EscalationAction::RaiseBy(-5))
                    .then(EscalationAction::RelaxLevels(2))
                    .then(EscalationAction::Alert(format!("waited {}", item.age_ms())))
                    .recheck_in_ms(60_000),
                _ => Escalation::none()
                    .then(EscalationAction::DropSkill(SkillId(9)))
                    .then(EscalationAction::MoveTo(QueueId(4)))
                    .then(EscalationAction::RaiseTo(70)),
            }
        }
    }

    /// Where the host puts a call's lists (see `crate::arena`).
    #[derive(Debug, Clone, Copy)]
    enum Lists {
        /// Each from the global allocator: a host ignoring `cabi_export_realloc`.
        Global,
        /// Each through `cabi_export_realloc`, one allocation per list.
        Arena,
        /// All in one allocation through `cabi_export_realloc` (the declared arena).
        OneBlock,
    }

    const LISTS: [Lists; 3] = [Lists::Global, Lists::Arena, Lists::OneBlock];

    thread_local! {
        static MODE: std::cell::Cell<Lists> = const { std::cell::Cell::new(Lists::Global) };
        /// The one block of `Lists::OneBlock`: (base, bytes used).
        static BLOCK: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
    }

    /// Run `f` for each placement of the lists, as the host may place them.
    fn each_placement(f: impl Fn(Lists)) {
        for lists in LISTS {
            MODE.set(lists);
            f(lists);
        }
    }

    /// Start lowering a call's arguments (as the host does only once the
    /// previous call has returned): with `Lists::OneBlock`, its one block.
    fn new_call() {
        if let Lists::OneBlock = MODE.get() {
            // SAFETY: a fresh allocation through the export `realloc`.
            let base = unsafe { crate::arena::export_realloc(std::ptr::null_mut(), 0, 8, 64 << 10) };
            BLOCK.set((base as usize, 0));
        }
    }

    /// `size` bytes aligned to `align`, allocated as the host does in the
    /// current mode (dangling when empty, except inside the one block).
    fn host_alloc(size: usize, align: usize) -> *mut u8 {
        match MODE.get() {
            Lists::Global => alloc_list(size, 1, align),
            // SAFETY: a fresh allocation through the export `realloc`.
            Lists::Arena => unsafe { crate::arena::export_realloc(std::ptr::null_mut(), 0, align, size) },
            Lists::OneBlock => {
                let (base, used) = BLOCK.get();
                let at = (base + used).next_multiple_of(align);
                assert!(at + size <= base + (64 << 10), "the test's block is too small");
                BLOCK.set((base, at + size - base));
                at as *mut u8
            }
        }
    }

    /// Copy `v` into memory allocated as the host does in the current mode.
    fn host_list<T: Copy>(v: &[T]) -> (*mut u8, usize) {
        let ptr = host_alloc(size_of_val(v), align_of::<T>());
        // SAFETY: `ptr` holds `v.len()` `T`s (or is unused when empty).
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), ptr.cast::<T>(), v.len()) };
        (ptr, v.len())
    }

    fn batch(n: u64) -> ItemBatch {
        let mut batch = ItemBatch::new(1_000);
        for id in 0..n {
            let skills = [SkillReq { skill: SkillId(1), level: 3 }; 2];
            batch.push(NewItem {
                id,
                channel: Channel::from_index(id as usize % 4),
                priority: id as i32,
                age_ms: id * 10,
                skills: &skills[..(id % 3) as usize],
                attributes: &[(1, "é"), (2, "x")],
                ..Default::default()
            });
        }
        batch
    }

    fn flat(batch: &ItemBatch) -> [(*mut u8, usize); 5] {
        [
            host_list(&batch.rows),
            host_list(&batch.skills),
            host_list(&batch.attr_keys),
            host_list(&batch.attr_value_ends),
            host_list(batch.attr_values.as_bytes()),
        ]
    }

    fn ctx() -> Context {
        Context::for_tests(TestHost::default())
    }

    #[test]
    fn prioritise_answers_in_the_canonical_layout() {
        each_placement(|_| prioritise_answers(&[0, 1, 9]));
    }

    fn prioritise_answers(sizes: &[u64]) {
        for &n in sizes {
            let batch = batch(n);
            let want = crate::rules::prioritise_batch(&Echo, &ctx(), &batch);
            new_call();
            let [r, s, k, e, v] = flat(&batch);
            // SAFETY: the lists were allocated as the host does, for this call.
            let ret = unsafe { prioritise(&Echo, &ctx(), FlatBatch { now_ms: 1_000, lists: [r, s, k, e, v] }) };
            // SAFETY: reading the answer in the layout documented above.
            let got: Vec<Priority> = unsafe {
                let (out, len) = read_list(ret);
                (0..len)
                    .map(|i| {
                        let b = out.add(i * PRIORITY_SIZE);
                        Priority {
                            priority: b.cast::<i32>().read(),
                            queue: (b.add(4).read() == 1).then(|| QueueId(b.add(8).cast::<u32>().read())),
                            reason: (b.add(8 + P).read() == 1).then(|| {
                                let (p, l) = read_list(b.add(8 + 2 * P));
                                String::from_utf8(std::slice::from_raw_parts(p, l).to_vec()).unwrap()
                            }),
                        }
                    })
                    .collect()
            };
            assert_eq!(got, want);
            // The release walks the answers only when some own a reason string.
            let with_reason = want.iter().filter(|p| p.reason.is_some()).count();
            // SAFETY: the third word of the return area, written by `prioritise`.
            assert_eq!(unsafe { ret.add(2 * P).cast::<usize>().read() }, with_reason);
            release_answer();
        }
    }

    #[test]
    fn escalate_answers_in_the_canonical_layout() {
        each_placement(|_| escalate_answers());
    }

    fn escalate_answers() {
        let batch = batch(7);
        let want = crate::rules::escalate_batch(&Echo, &ctx(), &batch);
        // A prioritise call first leaves its own count in the shared return area:
        // escalate must write its own (every escalation owns its action list),
        // or its release would skip freeing them.
        new_call();
        let [pr, ps, pk, pe, pv] = flat(&batch);
        // SAFETY: the lists were allocated as the host does, for this call;
        // the answer is released when `escalate` begins.
        unsafe { prioritise(&Echo, &ctx(), FlatBatch { now_ms: 1_000, lists: [pr, ps, pk, pe, pv] }) };
        new_call();
        let [r, s, k, e, v] = flat(&batch);
        // SAFETY: as above.
        let ret = unsafe { escalate(&Echo, &ctx(), FlatBatch { now_ms: 1_000, lists: [r, s, k, e, v] }) };
        // SAFETY: the third word of the return area, written by `escalate`:
        // the length of the call's action arena.
        let actions: usize = want.iter().map(|e| e.actions.len()).sum();
        assert_eq!(unsafe { ret.add(2 * P).cast::<usize>().read() }, actions);
        // SAFETY: reading the answer in the layout documented above.
        let got: Vec<Escalation> = unsafe {
            let (out, len) = read_list(ret);
            (0..len)
                .map(|i| {
                    let b = out.add(i * ESCALATION_SIZE);
                    let (acts, k) = read_list(b);
                    let actions = (0..k)
                        .map(|j| {
                            let a = acts.add(j * ACTION_SIZE);
                            let w = a.add(P).cast::<u32>().read();
                            match a.read() {
                                0 => EscalationAction::RaiseBy(w as i32),
                                1 => EscalationAction::RaiseTo(w as i32),
                                2 => EscalationAction::RelaxLevels(a.add(P).read()),
                                3 => EscalationAction::DropSkill(SkillId(w)),
                                4 => EscalationAction::MoveTo(QueueId(w)),
                                _ => {
                                    let (p, l) = read_list(a.add(P));
                                    EscalationAction::Alert(
                                        String::from_utf8(std::slice::from_raw_parts(p, l).to_vec()).unwrap(),
                                    )
                                }
                            }
                        })
                        .collect();
                    let recheck_in_ms = (b.add(2 * P).read() == 1).then(|| b.add(8 + 2 * P).cast::<u64>().read());
                    Escalation { actions, recheck_in_ms }
                })
                .collect()
        };
        assert_eq!(got, want);
        release_answer();
    }

    #[test]
    fn escalate_with_no_actions_at_all_allocates_no_arena() {
        each_placement(|_| escalate_no_actions());
    }

    fn escalate_no_actions() {
        // Batch of 0 items, and of 1 item whose escalation is empty (id 0).
        for n in [0, 1] {
            let batch = batch(n);
            new_call();
            let [r, s, k, e, v] = flat(&batch);
            // SAFETY: the lists were allocated as the host does, for this call.
            let ret = unsafe { escalate(&Echo, &ctx(), FlatBatch { now_ms: 1_000, lists: [r, s, k, e, v] }) };
            // SAFETY: reading the answer in the layout documented above.
            unsafe {
                assert_eq!(read_list(ret).1, n as usize);
                assert_eq!(ret.add(2 * P).cast::<usize>().read(), 0);
                if n == 1 {
                    let (actions, k) = read_list(read_list(ret).0);
                    assert_eq!(k, 0);
                    assert!(actions.cast::<usize>().is_aligned());
                }
            }
            release_answer();
        }
    }

    #[test]
    fn match_agents_reads_its_parameters_from_memory() {
        each_placement(|_| match_answers());
    }

    fn match_answers() {
        let item = batch(1);
        let mut table = CandidateTable::default();
        for id in 0..5u64 {
            table.push(NewCandidate { id, idle_ms: id * 1_000, ..Default::default() });
        }
        let want = crate::rules::match_one(&Echo, &ctx(), &item, &table);
        new_call();
        // The host allocates the parameter area first, then the lists.
        let params = host_alloc(MATCH_PARAMS_SIZE, MATCH_PARAMS_ALIGN);
        let [r, s, k, e, v] = flat(&item);
        let lists = [
            r,
            s,
            k,
            e,
            v,
            host_list(&table.agent_ids),
            host_list(&table.skill_columns),
            host_list(&table.proficiency),
            host_list(&table.idle_ms),
            host_list(&table.occupancy),
            host_list(&table.load),
        ];
        // SAFETY: `params` holds MATCH_PARAMS_SIZE bytes aligned to 8.
        let ret = unsafe {
            params.cast::<i64>().write(item.now_ms as i64);
            for (i, (p, l)) in lists.into_iter().enumerate() {
                write_list(params.add(8 + 2 * i * P), p, l);
            }
            match_agents(&Echo, &ctx(), params)
        };
        // SAFETY: reading the answer in the layout documented above.
        let got = unsafe {
            let (p, l) = read_list(ret.add(P));
            match ret.read() {
                0 => MatchResult::Scores(std::slice::from_raw_parts(p.cast::<f32>(), l).to_vec()),
                _ => MatchResult::Ranked(std::slice::from_raw_parts(p.cast::<u32>(), l).to_vec()),
            }
        };
        assert_eq!(got, want);
        release_answer();
    }

    #[test]
    fn an_answer_is_released_once_when_the_next_call_begins() {
        let batch = batch(3);
        new_call();
        let [r, s, k, e, v] = flat(&batch);
        // SAFETY: the lists were allocated as the host does, for this call.
        let ret = unsafe { prioritise(&Echo, &ctx(), FlatBatch { now_ms: 1_000, lists: [r, s, k, e, v] }) };
        // Still there for the host to read after the call returned.
        assert!(ANSWER_LEFT.get().is_some());
        // SAFETY: the list `prioritise` left in the return area.
        assert_eq!(unsafe { read_list(ret).1 }, 3);
        // The next call frees it first, then leaves its own.
        new_call();
        let [r, s, k, e, v] = flat(&batch);
        // SAFETY: as above.
        unsafe { escalate(&Echo, &ctx(), FlatBatch { now_ms: 1_000, lists: [r, s, k, e, v] }) };
        assert!(ANSWER_LEFT.get().is_some());
        // Released once: a second release has nothing left to free (a double
        // free would abort the test process).
        release_answer();
        assert!(ANSWER_LEFT.get().is_none());
        release_answer();
        assert!(HANDED_OVER.with(|caps| caps.borrow().is_empty()));
    }

    #[test]
    #[should_panic(expected = "invalid channel discriminant 4")]
    fn an_invalid_channel_byte_panics_before_the_rows_are_read() {
        let batch = batch(2);
        let [r, s, k, e, v] = flat(&batch);
        // SAFETY: row 1's channel byte lies inside the rows block.
        unsafe { r.0.add(64 + CHANNEL_AT).write(4) };
        // SAFETY: the lists were allocated as the host does, for this call.
        unsafe { prioritise(&Echo, &ctx(), FlatBatch { now_ms: 0, lists: [r, s, k, e, v] }) };
    }
}
