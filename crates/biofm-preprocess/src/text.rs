//! Text cleaning and tokenisation (see crate docs).
