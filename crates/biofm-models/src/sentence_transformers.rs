//! sentence-transformers layout (Transformer → Pooling → Normalize).
