//! Where model files come from: a local directory, or a Hugging Face hub repository
//! resolved offline from the local HF cache and downloaded into it when allowed.
