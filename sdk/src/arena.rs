//! The argument arena: where the host's argument lists for a hook call are
//! allocated (`cabi_export_realloc`, exported by `#[switchyard_sdk::rules]`),
//! and how they are freed — all at once, when the call is over.
//!
//! The canonical ABI allocates every list argument through the export's
//! `realloc` and hands ownership to the guest, which frees each list. For
//! `match-agents` that was twelve allocations and eleven frees in the guest's
//! `dlmalloc` per call, each allocation also an entry from the host into wasm
//! (≈1.5–2 µs of tech-support's ≈3.8 µs at 100 agents, issue 19). Here:
//!
//! - `cabi_export_realloc` bumps a pointer in one block kept for the instance
//!   (the *arena*). Only export arguments come here: wit-component gives
//!   imports' results (`host.config`, `host.names`, WASI) `cabi_realloc`, the
//!   global allocator. What does not fit spills into blocks of its own, and the
//!   next call gets one block as large as this call needed in total.
//! - The hook glue (`crate::abi`) lends the lists to the rule and never frees
//!   them one by one: a [`Call`] guard is taken when the call starts, every
//!   lifted list is a [`Lent`] borrowing it, and dropping the guard (after the
//!   rule has answered) resets the arena. The borrow checker thus rules out a
//!   list outliving its call; a rule only ever sees `&` views, so keeping an
//!   argument means copying it out (`clone`, `to_vec`), into memory of its own.
//! - Because nothing in the arena is freed one list at a time, the host may put
//!   all of a call's lists in ONE allocation. The glue says so with the custom
//!   section `switchyard_contract::capability::ABI_SECTION` (holding
//!   `ARG_ARENA`); the host detects it at
//!   load and then makes one `realloc` per call instead of one per list
//!   (`host/runtime/src/abi.rs`). Components without it (Python, JavaScript,
//!   plugins built with an older SDK) get one allocation per list, as the
//!   canonical ABI has it.
//!
//! - The host may also take a call's block from the arena itself, with no
//!   entry into the instance: the arena's first four fields are a descriptor
//!   (block, capacity, used, asked) whose address `cabi_export_realloc` gives
//!   on a describe request, and the host bumps `used` exactly as
//!   [`Arena::alloc`] would (`ARENA_LEASE` in the same section). Nothing
//!   changes on this side: a leased block is inside `used`, so it is owned and
//!   lent like one handed out by `realloc`.
//!
//! A list the arena did not hand out (a host or toolchain that ignores
//! `cabi_export_realloc`) is moved into it and its own block freed
//! ([`Call::take`]), so the glue stays correct either way.
//!
//! The arena is per instance (a component instance is single-threaded and never
//! re-entered; on wasm32 a `thread_local!` is a plain static). Natively, the
//! SDK's tests drive it as the host would.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;

use switchyard_contract::capability::DESCRIBE_ARENA;

/// The arena's block alignment: every list element of the contract is at most
/// 8-aligned; a request for more is still served (aligned within the block, or
/// by a spill block of its own).
const BLOCK_ALIGN: usize = 8;

/// The first block's size: a small `match-agents` call (the item and 100
/// agents with three skill columns is ≈3 KiB) fits without spilling.
const FIRST_BLOCK: usize = 4 << 10;

/// The first four fields are the descriptor the host may lease from
/// (`switchyard_contract::capability::ARENA_LEASE`): on wasm32, four
/// little-endian `u32` words at the arena's address, in this order.
#[repr(C)]
struct Arena {
    /// The block, `cap` bytes aligned to [`BLOCK_ALIGN`] (null before the first use).
    base: *mut u8,
    cap: usize,
    /// Bytes of the block handed out this call.
    used: usize,
    /// What this call asked for in all, alignment slack included: the size of
    /// the next block when it spilled.
    asked: usize,
    /// Blocks of their own for requests that did not fit, freed at reset.
    spills: Vec<(*mut u8, Layout)>,
}

// The descriptor's layout on wasm32, where the host reads it.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(Arena, base) == 0 && offset_of!(Arena, cap) == 4);
    assert!(offset_of!(Arena, used) == 8 && offset_of!(Arena, asked) == 12);
};

thread_local! {
    static ARENA: UnsafeCell<Arena> = const {
        UnsafeCell::new(Arena { base: std::ptr::null_mut(), cap: 0, used: 0, spills: Vec::new(), asked: 0 })
    };
}

/// Run `f` on the instance's arena.
fn with_arena<R>(f: impl FnOnce(&mut Arena) -> R) -> R {
    // SAFETY: the arena is only reached through this function, which does not
    // re-enter itself (`f` never calls back here), on one thread.
    ARENA.with(|cell| f(unsafe { &mut *cell.get() }))
}

impl Arena {
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        if size == 0 {
            // As `cabi_realloc`: nothing allocated, a dangling aligned pointer.
            return align as *mut u8;
        }
        self.asked = self.asked.saturating_add(size).saturating_add(align - 1);
        if !self.base.is_null() {
            let at = self.base as usize + self.used;
            let start = at.next_multiple_of(align) - self.base as usize;
            if let Some(end) = start.checked_add(size)
                && end <= self.cap
            {
                self.used = end;
                // SAFETY: `start + size <= cap`: inside the block.
                return unsafe { self.base.add(start) };
            }
        }
        let layout = layout(size, align);
        // SAFETY: `size > 0`.
        let ptr = unsafe { alloc(layout) };
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        self.spills.push((ptr, layout));
        ptr
    }

    /// Whether `ptr..ptr + len` was handed out by the arena this call.
    fn owns(&self, ptr: *const u8, len: usize) -> bool {
        let within = |base: *const u8, cap: usize| {
            let (p, b) = (ptr as usize, base as usize);
            p >= b && p.checked_add(len).is_some_and(|end| end <= b + cap)
        };
        (!self.base.is_null() && within(self.base, self.used))
            || self.spills.iter().any(|&(base, layout)| within(base, layout.size()))
    }

    /// Forget this call's allocations; after a spill, replace the block by one
    /// that would have held them all.
    fn reset(&mut self) {
        for (ptr, layout) in self.spills.drain(..) {
            // SAFETY: allocated in `alloc` with this layout, freed once.
            unsafe { dealloc(ptr, layout) };
        }
        if self.asked > self.cap {
            if !self.base.is_null() {
                // SAFETY: the block was allocated with this layout.
                unsafe { dealloc(self.base, layout(self.cap, BLOCK_ALIGN)) };
            }
            let cap = self.asked.max(FIRST_BLOCK).next_power_of_two();
            let block = layout(cap, BLOCK_ALIGN);
            // SAFETY: `cap > 0`.
            let base = unsafe { alloc(block) };
            if base.is_null() {
                handle_alloc_error(block);
            }
            (self.base, self.cap) = (base, cap);
        }
        self.used = 0;
        self.asked = 0;
    }
}

fn layout(size: usize, align: usize) -> Layout {
    match Layout::from_size_align(size, align) {
        Ok(layout) => layout,
        Err(_) => panic!("switchyard: the host asked for {size} bytes aligned to {align}"),
    }
}

/// The body of `cabi_export_realloc`: allocate `new_len` bytes aligned to
/// `align` in the arena, copying the old block's bytes when reallocating.
/// Nothing is ever freed here (see the module docs).
///
/// # Safety
/// Called by the host (or, natively, by tests) as a canonical-ABI `realloc`:
/// `old_ptr` is null or an arena allocation of at least `old_len` bytes made
/// this call; `align` is a power of two.
pub unsafe fn export_realloc(old_ptr: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    if old_ptr.is_null() && old_len == DESCRIBE_ARENA as usize && align == 1 && new_len == 0 {
        // The host asks where the arena's descriptor is, to lease from it.
        return with_arena(|arena| std::ptr::from_mut(arena).cast());
    }
    let ptr = with_arena(|arena| arena.alloc(new_len, align));
    if !old_ptr.is_null() && old_len > 0 && new_len > 0 {
        // SAFETY: the caller vouches for `old_len` bytes at `old_ptr`; the new
        // block is a fresh allocation of `new_len`, so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(old_ptr, ptr, old_len.min(new_len)) };
    }
    ptr
}

/// One hook call's hold on the arena: while it lives the arena's allocations
/// are the call's arguments; dropping it frees them all at once.
pub(crate) struct Call {
    /// Not `Send`/`Sync`, like the arena it stands for.
    _instance: PhantomData<*const ()>,
}

impl Call {
    /// Start a call (the arguments were allocated just before it).
    pub(crate) fn begin() -> Call {
        Call { _instance: PhantomData }
    }

    /// Whether `len` bytes at `ptr` are arguments of this call in the arena.
    pub(crate) fn owns(&self, ptr: *const u8, len: usize) -> bool {
        with_arena(|arena| arena.owns(ptr, len))
    }

    /// The arena's copy of a list argument: `ptr` itself when the arena handed
    /// it out; otherwise (a host that ignores `cabi_export_realloc`) the list
    /// is moved into the arena and its block freed, so every argument of the
    /// call is lent and freed alike.
    ///
    /// # Safety
    /// `ptr` holds `len > 0` initialised bytes, and is either an allocation of
    /// the arena this call or a block the global allocator gave the layout
    /// `(len, align)`, owned by nobody else.
    pub(crate) unsafe fn take(&self, ptr: *mut u8, len: usize, align: usize) -> *mut u8 {
        if self.owns(ptr, len) {
            return ptr;
        }
        let copy = with_arena(|arena| arena.alloc(len, align));
        // SAFETY: `len` bytes at `ptr` (the caller) and at `copy` (just
        // allocated, so disjoint); then the caller's block is freed once.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr, copy, len);
            dealloc(ptr, layout(len, align));
        }
        copy
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        with_arena(Arena::reset);
    }
}

/// A value whose buffers are in the arena, lent for one call: it derefs to the
/// value and is never dropped as such (its buffers were not allocated by the
/// global allocator, and the arena frees them with the call).
pub(crate) struct Lent<'call, T> {
    value: ManuallyDrop<T>,
    _call: PhantomData<&'call Call>,
}

impl<'call, T> Lent<'call, T> {
    /// Lend `value` for `call`.
    ///
    /// # Safety
    /// Every buffer `value` owns is in the arena, allocated this call (or it
    /// owns none: an empty `Vec` or `String`).
    pub(crate) unsafe fn new(_call: &'call Call, value: T) -> Self {
        Lent { value: ManuallyDrop::new(value), _call: PhantomData }
    }
}

impl<T> Deref for Lent<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realloc(align: usize, size: usize) -> *mut u8 {
        // SAFETY: a fresh allocation, as the host asks.
        unsafe { export_realloc(std::ptr::null_mut(), 0, align, size) }
    }

    #[test]
    fn a_call_is_served_from_one_block_and_the_next_reuses_it() {
        let call = Call::begin();
        let a = realloc(8, 40);
        let b = realloc(1, 3);
        let c = realloc(4, 8);
        assert!(a.cast::<u64>().is_aligned() && c.cast::<u32>().is_aligned());
        assert!(call.owns(a, 40) && call.owns(b, 3) && call.owns(c, 8));
        assert!(!call.owns(a, 100_000));
        drop(call);
        // The first call had no block yet: it spilled, and sized the block.
        let call = Call::begin();
        let again = realloc(8, 40);
        assert!(call.owns(again, 40));
        with_arena(|arena| assert!(arena.spills.is_empty() && arena.cap >= FIRST_BLOCK));
        drop(call);
    }

    #[test]
    fn the_describe_request_gives_the_descriptor_the_host_leases_from() {
        // SAFETY: the describe request of `ARENA_LEASE`.
        let at = unsafe { export_realloc(std::ptr::null_mut(), DESCRIBE_ARENA as usize, 1, 0) };
        assert_eq!(at, with_arena(|arena| std::ptr::from_mut(arena).cast::<u8>()));
        // A first call makes the block; in the next, a lease as the host takes
        // it (bump `used`, add to `asked`, read through the descriptor's
        // address) is owned by the call like a `realloc`.
        drop(Call::begin());
        realloc(8, 64);
        drop(Call::begin());
        let call = Call::begin();
        let params = realloc(8, 96);
        // SAFETY: `at` is the arena, whose first four fields are the descriptor.
        let leased = unsafe {
            let words = at.cast::<usize>();
            let (base, cap, used) = (words.read() as *mut u8, words.add(1).read(), words.add(2).read());
            let start = (base as usize + used).next_multiple_of(8) - base as usize;
            assert!(start + 200 <= cap, "the block holds the lease");
            words.add(2).write(start + 200);
            words.add(3).write(words.add(3).read() + 200 + 7);
            base.add(start)
        };
        assert!(call.owns(params, 96) && call.owns(leased, 200));
        // The arena hands out what follows the lease, not the lease again.
        let next = realloc(1, 8);
        assert!(next as usize >= leased as usize + 200);
        drop(call);
    }

    #[test]
    fn a_call_larger_than_the_block_spills_then_grows_it() {
        let call = Call::begin();
        let small = realloc(8, 16);
        let big = realloc(8, 3 * FIRST_BLOCK);
        // SAFETY: both blocks are at least this large.
        unsafe {
            small.write_bytes(1, 16);
            big.write_bytes(2, 3 * FIRST_BLOCK);
        }
        assert!(call.owns(small, 16) && call.owns(big, 3 * FIRST_BLOCK));
        drop(call);
        with_arena(|arena| assert!(arena.spills.is_empty() && arena.cap >= 3 * FIRST_BLOCK + 16));
        let call = Call::begin();
        let big = realloc(8, 3 * FIRST_BLOCK);
        with_arena(|arena| assert!(arena.spills.is_empty() && arena.used == 3 * FIRST_BLOCK));
        assert!(call.owns(big, 3 * FIRST_BLOCK));
    }

    #[test]
    fn zero_bytes_allocate_nothing_and_realloc_copies() {
        let call = Call::begin();
        assert_eq!(realloc(4, 0) as usize, 4);
        let old = realloc(1, 4);
        // SAFETY: 4 bytes at `old`; the new block holds 8.
        let new = unsafe {
            old.copy_from_nonoverlapping(b"abcd".as_ptr(), 4);
            export_realloc(old, 4, 1, 8)
        };
        // SAFETY: the first 4 bytes were copied.
        assert_eq!(unsafe { std::slice::from_raw_parts(new, 4) }, b"abcd");
        drop(call);
    }

    #[test]
    fn a_list_from_the_global_allocator_is_moved_into_the_arena() {
        let call = Call::begin();
        let own = Box::into_raw(Box::new(*b"0123456789abcdef")).cast::<u8>();
        assert!(!call.owns(own, 16));
        // SAFETY: a `Box<[u8; 16]>`: the layout `(16, 1)`, ours; freed by `take`.
        let taken = unsafe { call.take(own, 16, 1) };
        assert!(call.owns(taken, 16));
        // SAFETY: `take` copied the 16 bytes.
        assert_eq!(unsafe { std::slice::from_raw_parts(taken, 16) }, b"0123456789abcdef");
        // An arena pointer is taken as it is.
        let arena = realloc(8, 24);
        // SAFETY: 24 bytes of the arena, this call.
        assert_eq!(unsafe { call.take(arena, 24, 8) }, arena);
    }
}
