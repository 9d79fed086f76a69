//! The canonical-ABI layouts (wasm32) of the contract's records, computed at
//! build time from `wit/routing.wit` (`build.rs`, with wit-parser's `SizeAlign`,
//! the computation wit-bindgen generates guest code from).
//!
//! The host's fast path (`host/runtime/src/abi.rs`) and the SDK's guest glue
//! (`sdk/src/abi.rs`, `#[repr(C)]` `ItemRow` and `SkillReq`) write and read
//! records by hand; both check their layouts against these constants at compile
//! time, so an edited WIT (a field reordered, retyped, added) fails their build
//! until the hand-written code follows it, instead of writing wrong bytes.
//!
//! One constant per record of the `types` interface, named after it in upper
//! snake case: [`ITEM_ROW`], [`SKILL_REQ`], [`PRIORITY`], [`ESCALATION`],
//! [`ITEM_BATCH`], [`CANDIDATE_TABLE`].

/// One field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its WIT name.
    pub name: &'static str,
    /// Byte offset in the record.
    pub offset: usize,
    /// Bytes it occupies (for an `option` or `variant`, discriminant and payload).
    pub size: usize,
}

/// A record's canonical-ABI layout on wasm32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLayout {
    /// Its WIT name.
    pub name: &'static str,
    /// Size in bytes (a multiple of `align`).
    pub size: usize,
    /// Alignment in bytes.
    pub align: usize,
    /// The fields, in WIT order.
    pub fields: &'static [Field],
}

impl RecordLayout {
    /// The field named `name`. In a constant context a missing name is a
    /// compile error; at run time it panics.
    pub const fn field(&self, name: &str) -> Field {
        let mut i = 0;
        while i < self.fields.len() {
            if eq(self.fields[i].name, name) {
                return self.fields[i];
            }
            i += 1;
        }
        panic!("no field of that name in this record's layout")
    }

    /// Offset of the field named `name` (see [`RecordLayout::field`]).
    pub const fn offset(&self, name: &str) -> usize {
        self.field(name).offset
    }
}

const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

include!(concat!(env!("OUT_DIR"), "/layout.rs"));
