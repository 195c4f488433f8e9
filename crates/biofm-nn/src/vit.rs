//! timm `VisionTransformer`.
