//! Fixture files (placeholder).
