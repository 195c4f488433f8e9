//! Eval transforms as data: torchvision 0.29 `Resize` / `CenterCrop` / `ToTensor` /
//! `Normalize` on PIL images, open_clip 3.3 and timm 1.0.31 `ResizeKeepRatio` +
//! `CenterCropOrPad`, and constructors for `open_clip.image_transform(is_train=False)`
//! and `timm.data.create_transform(is_training=False)`.

use serde::{Deserialize, Serialize};

use super::{Filter, Image, ImageError, Mode};

/// A size as `(height, width)`; a single number means a square.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeightWidth {
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
}

impl From<u32> for HeightWidth {
    fn from(size: u32) -> Self {
        HeightWidth {
            height: size,
            width: size,
        }
    }
}

impl From<(u32, u32)> for HeightWidth {
    /// `(height, width)`, the order torchvision and open_clip use.
    fn from((height, width): (u32, u32)) -> Self {
        HeightWidth { height, width }
    }
}

/// The `size` argument of torchvision's `Resize`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeSize {
    /// `Resize(int)`: the shorter side becomes this; the longer side is
    /// `int(size * long / short)`.
    Shortest(u32),
    /// `Resize((h, w))`: exactly this size (aspect ratio not kept).
    Exact(HeightWidth),
    /// torchvision v2 `Resize(size=None, max_size=n)`: the longer side becomes `n`, the
    /// shorter `int(n * short / long)`.
    Longest(u32),
}

/// One step of a [`TransformConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// `image.convert("RGB")`.
    ConvertRgb,
    /// torchvision `Resize(size, interpolation, max_size)` on a PIL image (a no-op when the
    /// size already matches).
    Resize {
        /// Target size rule.
        size: ResizeSize,
        /// Resampling filter.
        filter: Filter,
        /// Cap on the longer side (only with [`ResizeSize::Shortest`]).
        #[serde(default)]
        max_size: Option<u32>,
    },
    /// torchvision `CenterCrop((height, width))`: pads with 0 first where the image is
    /// smaller, offsets `int(round((h - th) / 2))` (round half to even).
    CenterCrop {
        /// Crop height.
        height: u32,
        /// Crop width.
        width: u32,
    },
    /// open_clip / timm `ResizeKeepRatio(size, longest)` in eval mode: scale by
    /// `ratio = max(h/th, w/tw) · longest + min(h/th, w/tw) · (1 - longest)`, new size
    /// `round(h / ratio), round(w / ratio)`.
    ResizeKeepRatio {
        /// Target height.
        height: u32,
        /// Target width.
        width: u32,
        /// 0 = fit the shorter side, 1 = fit the longer side.
        longest: f64,
        /// Resampling filter.
        filter: Filter,
    },
    /// open_clip / timm `CenterCropOrPad(size, fill)`: as `CenterCrop` but padding with
    /// `fill` (one value, or one per band).
    CenterCropOrPad {
        /// Output height.
        height: u32,
        /// Output width.
        width: u32,
        /// Padding value(s).
        fill: Vec<f64>,
    },
    /// `ToTensor()` (`uint8 / 255` in f32, CHW) then `Normalize(mean, std)`
    /// (`(x - mean) / std` in f32). Must be the last op; needs an RGB image.
    ToTensorNormalize {
        /// Per-channel mean.
        mean: [f32; 3],
        /// Per-channel standard deviation.
        std: [f32; 3],
    },
}

/// A preprocessing pipeline: image ops, then usually a final [`Op::ToTensorNormalize`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// The steps, in order.
    pub ops: Vec<Op>,
}

/// A CHW float tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTensor {
    /// Values, channel-major.
    pub data: Vec<f32>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
}

/// open_clip's `resize_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Resize the shorter side, centre crop.
    Shortest,
    /// Resize the longer side, pad to square (`ResizeKeepRatio(longest=1)` +
    /// `CenterCropOrPad`).
    Longest,
    /// Resize to exactly the target size.
    Squash,
}

/// timm's `crop_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimmCropMode {
    /// Resize the shorter side to `size / crop_pct`, centre crop.
    Center,
    /// Resize both sides to `size / crop_pct`, centre crop.
    Squash,
    /// Resize the longer side to `size / crop_pct`, pad with the mean colour, centre crop.
    Border,
}

/// timm's `DEFAULT_CROP_PCT`.
pub const TIMM_DEFAULT_CROP_PCT: f64 = 0.875;

/// `open_clip.transform.image_transform(size, is_train=False, mean, std, resize_mode,
/// interpolation)` (open_clip 3.3): resize (+ crop or pad), then `convert("RGB")` — after
/// the resize, so palette images are resized with NEAREST and RGBA ones premultiplied —
/// then ToTensor + Normalize. For a non-square `shortest` target open_clip uses
/// `ResizeKeepRatio` with its default BICUBIC filter whatever `filter` says; so does this.
pub fn open_clip_eval(
    size: impl Into<HeightWidth>,
    filter: Filter,
    resize_mode: ResizeMode,
    mean: [f32; 3],
    std: [f32; 3],
) -> TransformConfig {
    let HeightWidth { height, width } = size.into();
    let mut ops = match resize_mode {
        ResizeMode::Longest => vec![
            Op::ResizeKeepRatio {
                height,
                width,
                longest: 1.0,
                filter,
            },
            Op::CenterCropOrPad {
                height,
                width,
                fill: vec![0.0],
            },
        ],
        ResizeMode::Squash => {
            vec![Op::Resize {
                size: ResizeSize::Exact(HeightWidth { height, width }),
                filter,
                max_size: None,
            }]
        }
        ResizeMode::Shortest if height == width => vec![
            Op::Resize {
                size: ResizeSize::Shortest(height),
                filter,
                max_size: None,
            },
            Op::CenterCrop { height, width },
        ],
        ResizeMode::Shortest => vec![
            Op::ResizeKeepRatio {
                height,
                width,
                longest: 0.0,
                filter: Filter::Bicubic,
            },
            Op::CenterCrop { height, width },
        ],
    };
    ops.extend([Op::ConvertRgb, Op::ToTensorNormalize { mean, std }]);
    TransformConfig { ops }
}

/// `timm.data.create_transform(input_size, is_training=False, interpolation, crop_pct,
/// crop_mode, mean, std)` (timm 1.0.31), preceded by `.convert("RGB")` as the timm and
/// UNI examples do right after `Image.open`. `crop_pct: None` is timm's 0.875; the resize
/// target is `floor(size / crop_pct)`.
pub fn timm_eval(
    input_size: impl Into<HeightWidth>,
    crop_pct: Option<f64>,
    crop_mode: TimmCropMode,
    interpolation: Filter,
    mean: [f32; 3],
    std: [f32; 3],
) -> TransformConfig {
    let HeightWidth { height, width } = input_size.into();
    let pct = crop_pct
        .filter(|&p| p != 0.0)
        .unwrap_or(TIMM_DEFAULT_CROP_PCT);
    let (sh, sw) = (
        (f64::from(height) / pct).floor() as u32,
        (f64::from(width) / pct).floor() as u32,
    );
    let filter = interpolation;
    let mut ops = vec![Op::ConvertRgb];
    match crop_mode {
        TimmCropMode::Squash => ops.extend([
            Op::Resize {
                size: ResizeSize::Exact(HeightWidth {
                    height: sh,
                    width: sw,
                }),
                filter,
                max_size: None,
            },
            Op::CenterCrop { height, width },
        ]),
        TimmCropMode::Border => ops.extend([
            Op::ResizeKeepRatio {
                height: sh,
                width: sw,
                longest: 1.0,
                filter,
            },
            Op::CenterCropOrPad {
                height,
                width,
                fill: mean
                    .iter()
                    .map(|&m| (255.0 * f64::from(m)).round_ties_even())
                    .collect(),
            },
        ]),
        TimmCropMode::Center => ops.extend([
            if sh == sw {
                Op::Resize {
                    size: ResizeSize::Shortest(sh),
                    filter,
                    max_size: None,
                }
            } else {
                Op::ResizeKeepRatio {
                    height: sh,
                    width: sw,
                    longest: 0.0,
                    filter,
                }
            },
            Op::CenterCrop { height, width },
        ]),
    }
    ops.push(Op::ToTensorNormalize { mean, std });
    TransformConfig { ops }
}

/// torchvision `_compute_resized_output_size`, as `(height, width)`.
fn resized_output_size(
    h: u32,
    w: u32,
    size: ResizeSize,
    max_size: Option<u32>,
) -> Result<(u32, u32), ImageError> {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let (new_short, new_long) = match size {
        ResizeSize::Exact(HeightWidth { height, width }) => {
            if max_size.is_some() {
                return Err(ImageError::InvalidArgument(
                    "max_size is only allowed with a shortest-side size".into(),
                ));
            }
            return Ok((height, width));
        }
        ResizeSize::Longest(n) => {
            if max_size.is_some() {
                return Err(ImageError::InvalidArgument(
                    "max_size is only allowed with a shortest-side size".into(),
                ));
            }
            (
                (u64::from(n) * u64::from(short)) as f64 / f64::from(long),
                f64::from(n),
            )
        }
        ResizeSize::Shortest(s) => {
            let new_long = (u64::from(s) * u64::from(long)) as f64 / f64::from(short);
            match max_size {
                Some(m) if m <= s => {
                    return Err(ImageError::InvalidArgument(format!(
                        "max_size = {m} must be strictly greater than the requested size for the smaller edge size = {s}"
                    )))
                }
                Some(m) if new_long as u32 > m => ((u64::from(m) * u64::from(s)) as f64 / f64::from(new_long as u32), f64::from(m)),
                _ => (f64::from(s), new_long),
            }
        }
    };
    let (new_short, new_long) = (new_short as u32, new_long as u32);
    Ok(if w <= h {
        (new_long, new_short)
    } else {
        (new_short, new_long)
    })
}

/// `F.resize(img, [h, w])` on a PIL image: unchanged when the size already matches.
fn resize_to(img: Image, (h, w): (u32, u32), filter: Filter) -> Result<Image, ImageError> {
    if (img.height(), img.width()) == (h, w) {
        Ok(img)
    } else {
        img.resize(w, h, filter)
    }
}

/// torchvision `center_crop` / open_clip `center_crop_or_pad`.
fn center_crop(img: Image, ch: u32, cw: u32, fill: &[f64]) -> Result<Image, ImageError> {
    let (iw, ih) = img.size();
    let img = if cw > iw || ch > ih {
        let dw = cw.saturating_sub(iw);
        let dh = ch.saturating_sub(ih);
        let padded = img.pad([dw / 2, dh / 2, dw.div_ceil(2), dh.div_ceil(2)], fill)?;
        if padded.size() == (cw, ch) {
            return Ok(padded);
        }
        padded
    } else {
        img
    };
    let (iw, ih) = img.size();
    let top = ((f64::from(ih) - f64::from(ch)) / 2.0).round_ties_even() as i64;
    let left = ((f64::from(iw) - f64::from(cw)) / 2.0).round_ties_even() as i64;
    Ok(img.crop(left, top, cw, ch))
}

impl Op {
    /// Apply an image op (everything but [`Op::ToTensorNormalize`]).
    fn apply(&self, img: Image) -> Result<Image, ImageError> {
        match self {
            Op::ConvertRgb => Ok(if img.mode() == Mode::RGB {
                img
            } else {
                img.convert_rgb()
            }),
            Op::Resize {
                size,
                filter,
                max_size,
            } => {
                let target = resized_output_size(img.height(), img.width(), *size, *max_size)?;
                resize_to(img, target, *filter)
            }
            Op::CenterCrop { height, width } => center_crop(img, *height, *width, &[0.0]),
            Op::CenterCropOrPad {
                height,
                width,
                fill,
            } => center_crop(img, *height, *width, fill),
            Op::ResizeKeepRatio {
                height,
                width,
                longest,
                filter,
            } => {
                if *height == 0 || *width == 0 {
                    return Err(ImageError::InvalidArgument(
                        "ResizeKeepRatio target must be non-empty".into(),
                    ));
                }
                let (h, w) = (f64::from(img.height()), f64::from(img.width()));
                let (rh, rw) = (h / f64::from(*height), w / f64::from(*width));
                let ratio = rh.max(rw) * longest + rh.min(rw) * (1.0 - longest);
                let target = (
                    (h / ratio).round_ties_even() as u32,
                    (w / ratio).round_ties_even() as u32,
                );
                resize_to(img, target, *filter)
            }
            Op::ToTensorNormalize { .. } => Err(ImageError::InvalidArgument(
                "to_tensor_normalize must be the last op".into(),
            )),
        }
    }
}

/// `ToTensor()` + `Normalize(mean, std)` in f32, as torch computes them.
fn to_tensor_normalize(
    img: &Image,
    mean: [f32; 3],
    std: [f32; 3],
) -> Result<ImageTensor, ImageError> {
    let rgb = match (img.mode(), img.as_u8()) {
        (Mode::RGB, Some(v)) => v,
        (mode, _) => {
            return Err(ImageError::InvalidArgument(format!(
                "to_tensor_normalize needs an RGB image, got mode {mode} (add a convert_rgb op before it)"
            )))
        }
    };
    let plane = img.width() as usize * img.height() as usize;
    let mut data = vec![0f32; 3 * plane];
    for (c, out) in data.chunks_exact_mut(plane).enumerate() {
        for (o, px) in out.iter_mut().zip(rgb.chunks_exact(3)) {
            *o = (f32::from(px[c]) / 255.0 - mean[c]) / std[c];
        }
    }
    Ok(ImageTensor {
        data,
        shape: [3, img.height() as usize, img.width() as usize],
    })
}

impl TransformConfig {
    /// Run the image ops, stopping before a final [`Op::ToTensorNormalize`]: the image the
    /// reference hands to `ToTensor`.
    pub fn prepare(&self, img: Image) -> Result<Image, ImageError> {
        let image_ops = match self.ops.split_last() {
            Some((Op::ToTensorNormalize { .. }, rest)) => rest,
            _ => &self.ops[..],
        };
        image_ops.iter().try_fold(img, |img, op| op.apply(img))
    }

    /// Run the whole pipeline; it must end with [`Op::ToTensorNormalize`].
    pub fn run(&self, img: Image) -> Result<ImageTensor, ImageError> {
        let Some(Op::ToTensorNormalize { mean, std }) = self.ops.last() else {
            return Err(ImageError::InvalidArgument(
                "the pipeline must end with to_tensor_normalize".into(),
            ));
        };
        to_tensor_normalize(&self.prepare(img)?, *mean, *std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_resize_sizes() {
        // Values from torchvision.transforms.functional._compute_resized_output_size.
        assert_eq!(
            resized_output_size(550, 660, ResizeSize::Shortest(224), None).unwrap(),
            (224, 268)
        );
        assert_eq!(
            resized_output_size(660, 550, ResizeSize::Shortest(224), None).unwrap(),
            (268, 224)
        );
        assert_eq!(
            resized_output_size(100, 300, ResizeSize::Shortest(224), Some(500)).unwrap(),
            (166, 500)
        );
        assert_eq!(
            resized_output_size(550, 660, ResizeSize::Longest(224), None).unwrap(),
            (186, 224)
        );
        assert!(resized_output_size(5, 5, ResizeSize::Shortest(224), Some(224)).is_err());
    }

    #[test]
    fn center_crop_offsets_round_half_to_even() {
        // 5 → 2: (5 - 2) / 2 = 1.5 → 2; 7 → 2: 2.5 → 2 (Python round).
        let img = Image::new(7, 5, Mode::L, super::super::Pixels::U8((0..35).collect())).unwrap();
        let out = center_crop(img, 2, 2, &[0.0]).unwrap();
        assert_eq!(out.as_u8().unwrap(), &[16, 17, 23, 24]);
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = open_clip_eval(
            224,
            Filter::Bicubic,
            ResizeMode::Shortest,
            [0.5; 3],
            [0.25; 3],
        );
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(
            json.contains(
                r#"{"op":"resize","size":{"shortest":224},"filter":"bicubic","max_size":null}"#
            ),
            "{json}"
        );
        let back: TransformConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        assert!(serde_json::from_str::<TransformConfig>(r#"{"ops":[{"op":"blur"}]}"#).is_err());
    }

    #[test]
    fn timm_scale_size() {
        let cfg = timm_eval(
            224,
            None,
            TimmCropMode::Center,
            Filter::Bicubic,
            [0.0; 3],
            [1.0; 3],
        );
        assert_eq!(
            cfg.ops[1],
            Op::Resize {
                size: ResizeSize::Shortest(256),
                filter: Filter::Bicubic,
                max_size: None
            }
        );
        let cfg = timm_eval(
            224,
            Some(0.95),
            TimmCropMode::Border,
            Filter::Bilinear,
            [0.485, 0.456, 0.406],
            [1.0; 3],
        );
        assert_eq!(
            cfg.ops[1],
            Op::ResizeKeepRatio {
                height: 235,
                width: 235,
                longest: 1.0,
                filter: Filter::Bilinear
            }
        );
        assert_eq!(
            cfg.ops[2],
            Op::CenterCropOrPad {
                height: 224,
                width: 224,
                fill: vec![124.0, 116.0, 104.0]
            }
        );
    }
}
