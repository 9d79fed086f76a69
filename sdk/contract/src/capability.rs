//! What a component may declare it accepts of the host beyond the canonical
//! ABI, and how: a custom section of the core module named [`ABI_SECTION`],
//! holding capability tokens, each on a line of its own (`\n`-terminated:
//! sections of the same name are concatenated by the linker). The SDK's export macro emits it; the host's
//! runtime reads it at load and treats a component without it by the canonical
//! ABI alone (as it must Python, JavaScript and older plugins).

/// Name of the custom section holding the capability.
pub const ABI_SECTION: &str = "switchyard:abi";

/// The argument arena: the component's export `realloc`
/// (`cabi_export_realloc`) hands out memory from a per-call arena that the
/// guest frees all at once after the call, never list by list. So the host may
/// put all of a call's argument lists in ONE allocation instead of one each;
/// their values and the WIT types are unchanged.
pub const ARG_ARENA: &[u8] = b"switchyard:arg-arena@1";
