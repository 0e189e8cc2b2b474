use thiserror::Error;

/// A protobuf body that cannot be decoded. Always the sender's fault (HTTP 400).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("truncated protobuf message: {0} needs more bytes than remain")]
    Truncated(&'static str),
    #[error("invalid varint in {0}")]
    BadVarint(&'static str),
    #[error("unexpected wire type {wire_type} for field {field} of {message}")]
    WireType {
        message: &'static str,
        field: u32,
        wire_type: u8,
    },
    #[error("{what} is not valid UTF-8")]
    Utf8 { what: &'static str },
    #[error("symbol reference {index} is out of range (the symbol table has {len} entries)")]
    SymbolRef { index: u32, len: usize },
    #[error("labels_refs has an odd number of entries ({0})")]
    OddLabelRefs(usize),
}
