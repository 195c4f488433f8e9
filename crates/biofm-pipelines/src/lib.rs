//! Pipelines: embedding, zero-shot classification and retrieval over inputs.
