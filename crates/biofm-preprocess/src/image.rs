//! Image decoding and transforms (see crate docs).
