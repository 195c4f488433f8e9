//! Errors of image decoding and transforms. Every decode error names the file.

use std::fmt;

/// Everything that can go wrong decoding or transforming an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("{name}: cannot read: {source}")]
    Io {
        /// File name or path.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The first bytes match none of the supported formats.
    #[error(
        "{name}: unknown image format (first bytes: {magic}); supported: PNG, JPEG, TIFF, BMP"
    )]
    UnknownFormat {
        /// File name or path.
        name: String,
        /// Hex dump of the first bytes.
        magic: String,
    },
    /// The data is corrupt or truncated.
    #[error("{name}: corrupt or truncated {format} data{}: {message}", AtOffset(*.offset))]
    Corrupt {
        /// File name or path.
        name: String,
        /// `"PNG"`, `"JPEG"`, `"TIFF"` or `"BMP"`.
        format: &'static str,
        /// Byte offset in the file, where the decoder reports one.
        offset: Option<u64>,
        /// What the decoder said.
        message: String,
    },
    /// A valid file using a feature this decoder (or Pillow) does not handle.
    #[error("{name}: unsupported {format} image: {what}")]
    Unsupported {
        /// File name or path.
        name: String,
        /// Container format.
        format: &'static str,
        /// The feature.
        what: String,
    },
    /// Width or height is zero.
    #[error("{name}: image has zero size ({width}x{height})")]
    ZeroSize {
        /// File name or path.
        name: String,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
    },
    /// More pixels than the decompression-bomb limit (checked from the header).
    #[error(
        "{name}: image size ({width}x{height} = {pixels} pixels) exceeds limit of {limit} pixels, \
         could be decompression bomb DOS attack (see DecodeOptions::max_image_pixels)"
    )]
    DecompressionBomb {
        /// File name or path.
        name: String,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// `width × height`.
        pixels: u64,
        /// The limit that was exceeded (twice `max_image_pixels`, as in PIL).
        limit: u64,
    },
    /// The file or the decoded pixels would need more bytes than the budget.
    #[error("{name}: {what} needs {bytes} bytes, over the budget of {budget} bytes (see DecodeOptions::max_bytes)")]
    OverBudget {
        /// File name or path.
        name: String,
        /// `"file"` or `"decoded image"`.
        what: &'static str,
        /// Bytes needed.
        bytes: u64,
        /// The budget.
        budget: u64,
    },
    /// An operation was called with arguments it cannot honour.
    #[error("{0}")]
    InvalidArgument(String),
}

/// Formats `" at byte N"` when an offset is known.
struct AtOffset(Option<u64>);

impl fmt::Display for AtOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(offset) => write!(f, " at byte {offset}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_error_names_file_and_offset() {
        let e = ImageError::Corrupt {
            name: "a.png".into(),
            format: "PNG",
            offset: Some(42),
            message: "bad CRC".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.png: corrupt or truncated PNG data at byte 42: bad CRC"
        );
        let e = ImageError::Corrupt {
            name: "b.jpg".into(),
            format: "JPEG",
            offset: None,
            message: "x".into(),
        };
        assert_eq!(e.to_string(), "b.jpg: corrupt or truncated JPEG data: x");
    }
}
