//! timm models: model names and the HF hub layout (config.json + weights).
