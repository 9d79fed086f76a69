//! End-to-end tests that cross the workspace's crates live in `tests/tests/`:
//! the SDK (guest side), the department plugins built with it, the plugin
//! artifacts build, and the host's runtime and canonical-ABI fast path. Tests
//! of one crate stay in that crate (`host/tests/`, `sdk/tests/`, each plugin's
//! fixtures).
