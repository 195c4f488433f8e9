//! TIFF and BigTIFF structure: header, IFD chains, SubIFDs, tag values. Every offset and
//! count is checked against the file size; errors name the file offset.

use crate::error::WsiError;

/// Tags the slide readers use.
pub mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const IMAGE_DESCRIPTION: u16 = 270;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const X_RESOLUTION: u16 = 282;
    pub const Y_RESOLUTION: u16 = 283;
    pub const PLANAR_CONFIG: u16 = 284;
    pub const RESOLUTION_UNIT: u16 = 296;
    pub const PREDICTOR: u16 = 317;
    pub const TILE_WIDTH: u16 = 322;
    pub const TILE_LENGTH: u16 = 323;
    pub const TILE_OFFSETS: u16 = 324;
    pub const TILE_BYTE_COUNTS: u16 = 325;
    pub const SUB_IFDS: u16 = 330;
    pub const JPEG_TABLES: u16 = 347;
}

/// A tag value, widened.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unsigned(Vec<u64>),
    Signed(Vec<i64>),
    Rational(Vec<(u64, u64)>),
    Float(Vec<f64>),
    Ascii(String),
    Bytes(Vec<u8>),
}

/// One image file directory.
#[derive(Debug, Clone)]
pub struct Ifd {
    /// File offset of the directory.
    pub offset: u64,
    pub entries: Vec<(u16, Value)>,
    /// Directories listed in its SubIFDs tag, parsed.
    pub sub_ifds: Vec<Ifd>,
}

impl Ifd {
    pub fn get(&self, tag: u16) -> Option<&Value> {
        self.entries.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }

    /// First value of an integer tag.
    pub fn uint(&self, tag: u16) -> Option<u64> {
        match self.get(tag)? {
            Value::Unsigned(v) => v.first().copied(),
            Value::Signed(v) => v.first().and_then(|&x| u64::try_from(x).ok()),
            _ => None,
        }
    }

    /// All values of an integer tag.
    pub fn uints(&self, tag: u16) -> Option<&[u64]> {
        match self.get(tag)? {
            Value::Unsigned(v) => Some(v),
            _ => None,
        }
    }

    /// First value of a rational or float tag as f64.
    pub fn real(&self, tag: u16) -> Option<f64> {
        match self.get(tag)? {
            Value::Rational(v) => v.first().filter(|r| r.1 != 0).map(|&(n, d)| n as f64 / d as f64),
            Value::Float(v) => v.first().copied(),
            Value::Unsigned(v) => v.first().map(|&x| x as f64),
            _ => None,
        }
    }

    pub fn ascii(&self, tag: u16) -> Option<&str> {
        match self.get(tag)? {
            Value::Ascii(s) => Some(s),
            _ => None,
        }
    }

    pub fn bytes(&self, tag: u16) -> Option<&[u8]> {
        match self.get(tag)? {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_tiled(&self) -> bool {
        self.get(tag::TILE_WIDTH).is_some() && self.get(tag::TILE_OFFSETS).is_some()
    }
}

/// A parsed TIFF file structure.
#[derive(Debug, Clone)]
pub struct TiffFile {
    pub little_endian: bool,
    pub big_tiff: bool,
    /// The main IFD chain, in file order.
    pub ifds: Vec<Ifd>,
}

/// Bounds-checked reads from the file bytes.
struct Reader<'a> {
    data: &'a [u8],
    le: bool,
}

impl Reader<'_> {
    fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<&[u8], WsiError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.data.len() as u64).ok_or_else(|| WsiError::Corrupt {
            offset,
            message: format!("{what} ({len} bytes) runs past the end of the file ({} bytes); the file is truncated", self.data.len()),
        })?;
        Ok(&self.data[offset as usize..end as usize])
    }
    fn u16(&self, offset: u64) -> Result<u16, WsiError> {
        let b = self.bytes(offset, 2, "a 16-bit value")?;
        Ok(if self.le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
    }
    fn u32(&self, offset: u64) -> Result<u32, WsiError> {
        let b: [u8; 4] = self.bytes(offset, 4, "a 32-bit value")?.try_into().expect("4 bytes");
        Ok(if self.le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }
    fn u64(&self, offset: u64) -> Result<u64, WsiError> {
        let b: [u8; 8] = self.bytes(offset, 8, "a 64-bit value")?.try_into().expect("8 bytes");
        Ok(if self.le { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) })
    }
}

fn type_size(t: u16) -> Option<u64> {
    Some(match t {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

const MAX_IFDS: usize = 4096;

impl TiffFile {
    /// Parses the header and every IFD (main chain and SubIFDs).
    pub fn parse(data: &[u8]) -> Result<Self, WsiError> {
        if data.len() < 8 {
            return Err(WsiError::NotTiff(format!("only {} bytes", data.len())));
        }
        let le = match &data[..2] {
            b"II" => true,
            b"MM" => false,
            _ => return Err(WsiError::NotTiff("no TIFF byte-order mark (II or MM) at offset 0".into())),
        };
        let r = Reader { data, le };
        let (big, first) = match r.u16(2)? {
            42 => (false, r.u32(4)? as u64),
            43 => {
                if r.u16(4)? != 8 {
                    return Err(WsiError::Corrupt { offset: 4, message: "BigTIFF offset size is not 8".into() });
                }
                (true, r.u64(8)?)
            }
            v => return Err(WsiError::NotTiff(format!("TIFF version {v} at offset 2 (expected 42 or 43)"))),
        };
        let mut seen = std::collections::HashSet::new();
        let mut ifds = Vec::new();
        let mut next = first;
        while next != 0 {
            if !seen.insert(next) || ifds.len() >= MAX_IFDS {
                return Err(WsiError::Corrupt { offset: next, message: "the IFD chain loops".into() });
            }
            let (ifd, n) = parse_ifd(&r, next, big, &mut seen, 0)?;
            ifds.push(ifd);
            next = n;
        }
        if ifds.is_empty() {
            return Err(WsiError::Corrupt { offset: first, message: "no image directory".into() });
        }
        Ok(Self { little_endian: le, big_tiff: big, ifds })
    }
}

fn parse_ifd(
    r: &Reader,
    offset: u64,
    big: bool,
    seen: &mut std::collections::HashSet<u64>,
    depth: usize,
) -> Result<(Ifd, u64), WsiError> {
    let (count, entry_size, first_entry) = if big {
        (r.u64(offset)?, 20u64, offset + 8)
    } else {
        (r.u16(offset)? as u64, 12u64, offset + 2)
    };
    if count > 10_000 {
        return Err(WsiError::Corrupt { offset, message: format!("IFD with {count} entries") });
    }
    let mut entries = Vec::with_capacity(count as usize);
    for i in 0..count {
        let e = first_entry + i * entry_size;
        let tag = r.u16(e)?;
        let typ = r.u16(e + 2)?;
        let (n, inline_at, inline_size) = if big { (r.u64(e + 4)?, e + 12, 8) } else { (r.u32(e + 4)? as u64, e + 8, 4) };
        let Some(size) = type_size(typ) else { continue };
        let total = n.checked_mul(size).ok_or_else(|| WsiError::Corrupt { offset: e, message: format!("tag {tag}: count {n} overflows") })?;
        let at = if total <= inline_size {
            inline_at
        } else if big {
            r.u64(inline_at)?
        } else {
            r.u32(inline_at)? as u64
        };
        let raw = r.bytes(at, total, &format!("tag {tag} values"))?;
        entries.push((tag, decode_value(raw, typ, n as usize, r.le)));
    }
    let next = if big { r.u64(first_entry + count * entry_size)? } else { r.u32(first_entry + count * entry_size)? as u64 };
    let mut ifd = Ifd { offset, entries, sub_ifds: Vec::new() };
    if depth < 2 {
        if let Some(subs) = ifd.uints(tag::SUB_IFDS).map(<[u64]>::to_vec) {
            for s in subs {
                if seen.insert(s) {
                    let (sub, _) = parse_ifd(r, s, big, seen, depth + 1)?;
                    ifd.sub_ifds.push(sub);
                }
            }
        }
    }
    Ok((ifd, next))
}

fn decode_value(raw: &[u8], typ: u16, n: usize, le: bool) -> Value {
    let u = |b: &[u8]| -> u64 {
        let mut x = 0u64;
        if le {
            for &c in b.iter().rev() {
                x = (x << 8) | c as u64;
            }
        } else {
            for &c in b {
                x = (x << 8) | c as u64;
            }
        }
        x
    };
    match typ {
        1 | 3 | 4 | 13 | 16 | 18 => {
            let s = type_size(typ).unwrap_or(1) as usize;
            Value::Unsigned(raw.chunks_exact(s).take(n).map(u).collect())
        }
        6 => Value::Signed(raw.iter().map(|&b| b as i8 as i64).collect()),
        8 => Value::Signed(raw.chunks_exact(2).map(|c| u(c) as u16 as i16 as i64).collect()),
        9 => Value::Signed(raw.chunks_exact(4).map(|c| u(c) as u32 as i32 as i64).collect()),
        17 => Value::Signed(raw.chunks_exact(8).map(|c| u(c) as i64).collect()),
        5 => Value::Rational(raw.chunks_exact(8).map(|c| (u(&c[..4]), u(&c[4..]))).collect()),
        10 => Value::Rational(
            raw.chunks_exact(8).map(|c| ((u(&c[..4]) as u32 as i32).max(0) as u64, (u(&c[4..]) as u32 as i32).max(1) as u64)).collect(),
        ),
        11 => Value::Float(raw.chunks_exact(4).map(|c| f32::from_bits(u(c) as u32) as f64).collect()),
        12 => Value::Float(raw.chunks_exact(8).map(|c| f64::from_bits(u(c))).collect()),
        2 => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            Value::Ascii(String::from_utf8_lossy(&raw[..end]).into_owned())
        }
        _ => Value::Bytes(raw.to_vec()),
    }
}
