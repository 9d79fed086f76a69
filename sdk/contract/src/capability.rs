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

/// The arena lease, on top of [`ARG_ARENA`]: the host may take a call's block
/// of lists from the arena itself, with no call into the instance.
///
/// The export `realloc` answers the describe request — old pointer 0, old
/// length [`DESCRIBE_ARENA`], alignment 1, new length 0, which no canonical-ABI
/// caller makes (a null old pointer comes with old length 0) — with the address
/// of the arena's descriptor: four little-endian `u32` words, the block's
/// address (0 before the first block), its capacity, the bytes handed out this
/// call and the bytes asked for this call (each request's size plus its
/// alignment minus one; the arena sizes its next block from it). To allocate
/// `size` bytes aligned to `align`, the host does what the arena's `realloc`
/// would: it rounds `block + used` up to `align`, and if `size` bytes fit
/// before `block + capacity` it takes them there, sets `used` past them and
/// adds `size + align - 1` to `asked`; otherwise it calls `realloc`. The
/// descriptor's address is fixed for the component (a static in its memory),
/// so the host asks once per loaded plugin. Each `realloc` is an entry into
/// the instance; with the lease a hook call makes none (the host puts
/// `match-agents`' parameter block at the head of the same block).
pub const ARENA_LEASE: &[u8] = b"switchyard:arena-lease@1";

/// The old length of the describe request of [`ARENA_LEASE`] ("SYAL").
pub const DESCRIBE_ARENA: u32 = 0x5359_414c;
