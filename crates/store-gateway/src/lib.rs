//! The store-gateway component.
