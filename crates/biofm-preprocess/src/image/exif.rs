//! The orientation `PIL.Image.getexif()` reports: EXIF tag 0x0112 in IFD0, else the first
//! `tiff:Orientation` in the XMP packet (Pillow 13 `Image.getexif`).

const ORIENTATION_TAG: u16 = 0x0112;

/// Orientation from an EXIF blob (with or without the `Exif\0\0` prefix), or `None` when
/// the blob is malformed or has no orientation tag.
pub(super) fn exif_orientation(blob: &[u8]) -> Option<u16> {
    let tiff = blob.strip_prefix(b"Exif\0\0").unwrap_or(blob);
    ifd0_value(tiff, ORIENTATION_TAG).map(|v| v.min(0xFFFF) as u16)
}

/// The SHORT or LONG value of `tag` in the first IFD of a classic TIFF structure (a TIFF
/// file or an EXIF blob), or `None` when absent or malformed.
pub(super) fn ifd0_value(tiff: &[u8], tag: u16) -> Option<u32> {
    let big_endian = match tiff.get(..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|i| {
        let entry = ifd.checked_add(2 + 12 * i)?;
        if u16_at(entry)? != tag {
            return None;
        }
        match u16_at(entry + 2)? {
            3 => u16_at(entry + 8).map(u32::from), // SHORT
            4 => u32_at(entry + 8),                // LONG
            _ => None,
        }
    })
}

/// Orientation from an XMP packet: the digit after the first `tiff:Orientation="` or
/// `tiff:Orientation>` (the regex Pillow uses).
pub(super) fn xmp_orientation(xmp: &[u8]) -> Option<u16> {
    const KEY: &[u8] = b"tiff:Orientation";
    let mut rest = xmp;
    while let Some(pos) = rest.windows(KEY.len()).position(|w| w == KEY) {
        let after = &rest[pos + KEY.len()..];
        let digit = match after {
            [b'=', b'"', d, ..] | [b'>', d, ..] => Some(*d),
            _ => None,
        };
        if let Some(d @ b'0'..=b'9') = digit {
            return Some(u16::from(d - b'0'));
        }
        rest = &rest[pos + 1..];
    }
    None
}

/// Orientation of a JPEG file from its APP1 segments: the first `Exif\0\0` segment, else
/// the XMP segment (`http://ns.adobe.com/xap/1.0/\0`). Stops at the first scan.
pub(super) fn jpeg_orientation(data: &[u8]) -> Option<u16> {
    const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
    let mut exif = None;
    let mut xmp = None;
    let mut at = 2;
    while at + 4 <= data.len() {
        if data[at] != 0xFF {
            break;
        }
        let marker = data[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        let Some(segment) = data.get(at + 4..at + 2 + len.max(2)) else {
            break;
        };
        if marker == 0xE1 {
            if segment.starts_with(b"Exif\0\0") && exif.is_none() {
                exif = Some(segment);
            } else if let Some(packet) = segment.strip_prefix(XMP) {
                xmp = Some(packet);
            }
        }
        at += 2 + len;
    }
    exif.and_then(exif_orientation)
        .or_else(|| xmp.and_then(xmp_orientation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exif_le(tag: u16, value: u16) -> Vec<u8> {
        let mut v = b"Exif\0\0II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&3u16.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&value.to_le_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn reads_orientation_and_ignores_other_tags() {
        assert_eq!(exif_orientation(&exif_le(0x0112, 6)), Some(6));
        assert_eq!(exif_orientation(&exif_le(0x0110, 6)), None);
        assert_eq!(
            exif_orientation(&exif_le(0x0112, 6)[..20]),
            None,
            "truncated blob"
        );
        assert_eq!(exif_orientation(b"Exif\0\0XX"), None);
    }

    #[test]
    fn xmp_patterns() {
        assert_eq!(xmp_orientation(br#"<x tiff:Orientation="8"/>"#), Some(8));
        assert_eq!(
            xmp_orientation(b"<tiff:Orientation>3</tiff:Orientation>"),
            Some(3)
        );
        assert_eq!(
            xmp_orientation(b"tiff:Orientation=6 tiff:Orientation=\"2\""),
            Some(2)
        );
        assert_eq!(xmp_orientation(b"nothing"), None);
    }
}
