//! The component's global allocator (wasm32 only, feature `allocator`, on by
//! default): small blocks recycled through one free list per size class, in
//! front of the system allocator.
//!
//! Why: in a component the system allocator is wasi-libc's `dlmalloc` compiled to
//! WebAssembly, reached through three calls (`__rust_alloc` → `__rdl_alloc` →
//! `malloc`), and rules allocate a few small blocks on every call (a requirement
//! list, a lower-cased attribute, the scores, a reason per item). Natively glibc
//! serves such blocks from its per-thread cache (tcache) — a free list per size —
//! so the native build of the same rule, the baseline the benchmarks compare
//! against, does not pay that price. This gives the component the same shape:
//! a small allocation or free is a few instructions, inlined into the rule
//! under LTO.
//!
//! Blocks of at most [`LARGEST`] bytes aligned to at most 16 are served in six
//! classes (16, 32, …, 512 bytes). A freed block goes on its class's list and is
//! never handed back, so the lists hold at most what was alive at once, and
//! they are reused by the next call. Larger or more aligned blocks go straight
//! to the system allocator, as does a class's block when its list is empty; a
//! refused allocation (the host's memory cap) still returns null, and Rust
//! reports it as before.
//!
//! A plugin that installs its own `#[global_allocator]` turns this one off with
//! `default-features = false` on `switchyard-sdk`.

// Natively the lists serve only their tests (the host's allocator is the system's).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::alloc::{GlobalAlloc, Layout, System};

/// Number of size classes: 16, 32, 64, 128, 256 and 512 bytes.
const CLASSES: usize = 6;
/// The smallest class: room for a free-list link on any target.
const SMALLEST: usize = 16;
/// The largest block served from a class.
pub(crate) const LARGEST: usize = SMALLEST << (CLASSES - 1);
/// Every class block is allocated with this alignment, so it serves any
/// request aligned to at most this.
const CLASS_ALIGN: usize = 16;

/// The class that serves `layout`, if any.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > LARGEST || layout.align() > CLASS_ALIGN {
        return None;
    }
    let size = layout.size().max(SMALLEST);
    // ceil(log2(size)) - log2(SMALLEST): 16 -> 0, 17..=32 -> 1, …, 512 -> 5.
    Some((usize::BITS - (size - 1).leading_zeros()) as usize - SMALLEST.trailing_zeros() as usize)
}

/// The layout a block of class `class` is allocated with.
#[inline]
fn class_layout(class: usize) -> Layout {
    // SAFETY: a power of two no larger than 512, with a power-of-two alignment.
    unsafe { Layout::from_size_align_unchecked(SMALLEST << class, CLASS_ALIGN) }
}

/// The free lists: each free block's first word points to the next free block
/// of its class.
pub(crate) struct FreeLists {
    heads: [*mut u8; CLASSES],
}

impl FreeLists {
    pub(crate) const fn new() -> Self {
        FreeLists { heads: [std::ptr::null_mut(); CLASSES] }
    }

    /// Allocate a block for `layout` (non-zero size), or null.
    ///
    /// # Safety
    /// As [`GlobalAlloc::alloc`].
    #[inline]
    pub(crate) unsafe fn alloc(&mut self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: forwarded from the caller.
            return unsafe { System.alloc(layout) };
        };
        let head = self.heads[class];
        if head.is_null() {
            // SAFETY: a non-zero size.
            return unsafe { System.alloc(class_layout(class)) };
        }
        // SAFETY: `head` is a free block of this class; its first word is the link.
        self.heads[class] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    /// Allocate a zeroed block for `layout`, or null.
    ///
    /// # Safety
    /// As [`GlobalAlloc::alloc_zeroed`].
    #[inline]
    pub(crate) unsafe fn alloc_zeroed(&mut self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() {
            // SAFETY: forwarded from the caller.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: forwarded; a recycled block holds old bytes, so zero what was asked.
        unsafe {
            let ptr = self.alloc(layout);
            if !ptr.is_null() {
                ptr.write_bytes(0, layout.size());
            }
            ptr
        }
    }

    /// Free a block [`FreeLists::alloc`] gave for `layout`.
    ///
    /// # Safety
    /// As [`GlobalAlloc::dealloc`].
    #[inline]
    pub(crate) unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: the block is at least 16 bytes aligned to 16 (its class's
            // layout) and free now: its first word becomes the link.
            Some(class) => unsafe {
                ptr.cast::<*mut u8>().write(self.heads[class]);
                self.heads[class] = ptr;
            },
            // SAFETY: forwarded from the caller; `System` allocated it.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    /// Grow or shrink a block to `new_size` bytes: in place when the class does
    /// not change.
    ///
    /// # Safety
    /// As [`GlobalAlloc::realloc`].
    #[inline]
    pub(crate) unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded to the alignment,
        // does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            (Some(old), Some(new)) if old == new => ptr,
            // SAFETY: forwarded from the caller; `System` allocated it.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            // SAFETY: a new block, the old bytes that fit copied, the old block freed once.
            _ => unsafe {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            },
        }
    }
}

/// The global allocator of a component built with the SDK.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub(crate) struct ComponentAllocator(std::cell::UnsafeCell<FreeLists>);

// SAFETY: a component instance runs on one thread (wasm32 without the atomics
// feature has no threads), and the system allocator the lists fall back to
// never calls back into them, so the lists are never borrowed twice at once.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for ComponentAllocator {}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
// SAFETY: every method forwards to `FreeLists`, whose blocks honour the layouts
// asked for (see `class_of`), on the one thread there is.
unsafe impl GlobalAlloc for ComponentAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the `Sync` impl; forwarded contract.
        unsafe { (*self.0.get()).alloc(layout) }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe { (*self.0.get()).alloc_zeroed(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { (*self.0.get()).dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        unsafe { (*self.0.get()).realloc(ptr, layout, new_size) }
    }
}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics"), feature = "allocator"))]
#[global_allocator]
static ALLOCATOR: ComponentAllocator = ComponentAllocator(std::cell::UnsafeCell::new(FreeLists::new()));

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn sizes_fall_in_the_smallest_class_that_holds_them() {
        let classes: Vec<Option<usize>> =
            [1, 16, 17, 32, 33, 100, 256, 257, 512, 513].iter().map(|&n| class_of(layout(n, 1))).collect();
        assert_eq!(classes, [Some(0), Some(0), Some(1), Some(1), Some(2), Some(3), Some(4), Some(5), Some(5), None]);
        assert_eq!(class_of(layout(8, 16)), Some(0));
        assert_eq!(class_of(layout(8, 32)), None, "more aligned than a class block");
    }

    #[test]
    fn a_freed_block_is_reused_by_its_class_only() {
        let mut lists = FreeLists::new();
        // SAFETY: each block is used within its layout and freed once.
        unsafe {
            let a = lists.alloc(layout(24, 8));
            let b = lists.alloc(layout(24, 8));
            assert!(!a.is_null() && !b.is_null() && a != b);
            assert!(a.cast::<u128>().is_aligned());
            lists.dealloc(a, layout(24, 8));
            // A different class does not get it; the same class does (last freed first).
            let c = lists.alloc(layout(64, 8));
            assert_ne!(c, a);
            assert_eq!(lists.alloc(layout(30, 4)), a);
            lists.dealloc(a, layout(30, 4));
            lists.dealloc(b, layout(24, 8));
            lists.dealloc(c, layout(64, 8));
        }
    }

    #[test]
    fn realloc_stays_in_place_within_a_class_and_moves_the_bytes_across() {
        let mut lists = FreeLists::new();
        // SAFETY: as above; the sizes passed are the ones allocated.
        unsafe {
            let p = lists.alloc(layout(20, 1));
            for i in 0..20 {
                p.add(i).write(i as u8);
            }
            assert_eq!(lists.realloc(p, layout(20, 1), 32), p);
            let q = lists.realloc(p, layout(32, 1), 200);
            assert_ne!(q, p);
            assert!((0..20).all(|i| q.add(i).read() == i as u8));
            // Into the system allocator's sizes and back.
            let r = lists.realloc(q, layout(200, 1), 4096);
            assert!((0..20).all(|i| r.add(i).read() == i as u8));
            let s = lists.realloc(r, layout(4096, 1), 10);
            assert!((0..10).all(|i| s.add(i).read() == i as u8));
            lists.dealloc(s, layout(10, 1));
        }
    }

    #[test]
    fn a_recycled_block_asked_zeroed_is_zeroed() {
        let mut lists = FreeLists::new();
        // SAFETY: as above.
        unsafe {
            let p = lists.alloc(layout(48, 8));
            p.write_bytes(0xAB, 48);
            lists.dealloc(p, layout(48, 8));
            let z = lists.alloc_zeroed(layout(48, 8));
            assert_eq!(z, p);
            assert!((0..48).all(|i| z.add(i).read() == 0));
            lists.dealloc(z, layout(48, 8));
        }
    }
}
