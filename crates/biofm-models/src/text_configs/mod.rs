//! Text-tower configurations that reference checkpoints leave to the network.
//!
//! BiomedCLIP's hub files name its text tower only as
//! `microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract` (formerly
//! `microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract`); open_clip downloads that
//! repository's `config.json` with `AutoConfig`. We ship it instead.
//!
//! `biomedbert-base-uncased-abstract.json` holds standard BERT-base values. Checked
//! against public copies: the hub repository's own `config.json` (337 bytes,
//! `BertForMaskedLM`, `model_type` "bert"; it relies on HF defaults for
//! `layer_norm_eps` 1e-12 and `pad_token_id` 0) and the full config saved by a model
//! fine-tuned from it (huggingface.co/pruas/BENT-PubMedBERT-NER-Bioprocess, `config.json`,
//! `_name_or_path` "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract"): hidden 768,
//! 12 layers, 12 heads, intermediate 3072, gelu, layer_norm_eps 1e-12,
//! max_position_embeddings 512, type_vocab_size 2, vocab_size 30522, pad_token_id 0,
//! absolute positions. The vocabulary size also matches BiomedCLIP's checkpoint
//! (`text.transformer.embeddings.word_embeddings.weight` is `[30522, 768]`).

use biofm_nn::bert::BertConfig;

const BIOMEDBERT_BASE_UNCASED_ABSTRACT: &str = include_str!("biomedbert-base-uncased-abstract.json");

/// The HF `config.json` of a text tower known by its hub name, for the names open_clip
/// configs refer to (`text_cfg.hf_model_name`). `None` for unknown names.
pub fn known_text_config(hf_model_name: &str) -> Option<BertConfig> {
    let text = match hf_model_name {
        "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
        | "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract" => BIOMEDBERT_BASE_UNCASED_ABSTRACT,
        _ => return None,
    };
    BertConfig::from_json_str(text, hf_model_name).ok()
}

#[cfg(test)]
mod tests {
    use super::known_text_config;

    #[test]
    fn biomedbert_is_known_under_both_names() {
        let a = known_text_config("microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract").expect("current name");
        let b = known_text_config("microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract").expect("former name");
        assert_eq!(a, b);
        assert_eq!(
            (a.hidden_size, a.num_hidden_layers, a.num_attention_heads, a.intermediate_size, a.vocab_size),
            (768, 12, 12, 3072, 30522)
        );
        assert_eq!(
            (a.max_position_embeddings, a.type_vocab_size, a.pad_token_id, a.layer_norm_eps),
            (512, 2, 0, 1e-12)
        );
        assert_eq!((a.hidden_act.as_str(), a.position_embedding_type.as_str()), ("gelu", "absolute"));
        assert!(known_text_config("bert-base-uncased").is_none());
    }
}
