//! HF transformers `BertModel` (encoder only).
