//! The compactor component (being built).
