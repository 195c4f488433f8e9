//! Tile decoding: JPEG (with the level's shared JPEGTables), deflate, LZW, uncompressed;
//! horizontal-differencing predictor. Output: interleaved RGB, 8 bits per sample.

use std::io::Read;

/// How a level's tiles are stored.
#[derive(Debug, Clone)]
pub(crate) struct TileFormat {
    pub compression: u16,
    pub photometric: u16,
    pub samples: usize,
    pub predictor: u16,
    pub tile_w: usize,
    pub tile_h: usize,
    pub jpeg_tables: Option<Vec<u8>>,
}

pub(crate) fn compression_name(c: u16) -> String {
    match c {
        1 => "none".into(),
        5 => "LZW".into(),
        6 => "old-style JPEG".into(),
        7 => "JPEG".into(),
        8 | 32946 => "deflate".into(),
        33003 | 33005 => "JPEG 2000 (Aperio)".into(),
        34712 => "JPEG 2000".into(),
        50000 => "zstd".into(),
        c => format!("code {c}"),
    }
}

impl TileFormat {
    /// Errors for formats this reader cannot decode, before any tile is read.
    pub fn check(&self) -> Result<(), String> {
        match self.compression {
            1 | 5 | 7 | 8 | 32946 => {}
            c => return Err(format!("{} compression is not supported", compression_name(c))),
        }
        if self.compression != 7 && !(self.samples == 3 || self.samples == 4 || self.samples == 1) {
            return Err(format!("{} samples per pixel are not supported", self.samples));
        }
        Ok(())
    }

    /// Decodes one tile's bytes to `tile_w * tile_h` RGB pixels.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let (w, h) = (self.tile_w, self.tile_h);
        if self.compression == 7 {
            let mut stream = match &self.jpeg_tables {
                Some(t) => merge_tables(t, bytes)?,
                None => bytes.to_vec(),
            };
            if self.photometric == 2 {
                mark_as_rgb(&mut stream);
            }
            let (dw, dh, px) = biofm_preprocess::image::decode_jpeg_rgb(&stream)?;
            if dw < w || dh < h {
                return Err(format!("JPEG tile is {dw}x{dh}, expected {w}x{h}"));
            }
            if dw == w && dh == h {
                return Ok(px);
            }
            let mut out = Vec::with_capacity(w * h * 3);
            for row in px.chunks_exact(dw * 3).take(h) {
                out.extend_from_slice(&row[..w * 3]);
            }
            return Ok(out);
        }
        let raw = match self.compression {
            1 => bytes.to_vec(),
            5 => weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
                .decode(bytes)
                .map_err(|e| format!("LZW: {e}"))?,
            8 | 32946 => {
                let mut out = Vec::with_capacity(w * h * self.samples);
                flate2::read::ZlibDecoder::new(bytes).read_to_end(&mut out).map_err(|e| format!("deflate: {e}"))?;
                out
            }
            c => return Err(format!("{} compression is not supported", compression_name(c))),
        };
        let need = w * h * self.samples;
        if raw.len() < need {
            return Err(format!("tile holds {} bytes, expected {need}", raw.len()));
        }
        let mut raw = raw;
        raw.truncate(need);
        if self.predictor == 2 {
            let s = self.samples;
            for row in raw.chunks_exact_mut(w * s) {
                for i in s..row.len() {
                    row[i] = row[i].wrapping_add(row[i - s]);
                }
            }
        }
        Ok(match self.samples {
            3 => raw,
            4 => raw.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
            _ => raw.iter().flat_map(|&g| [g, g, g]).collect(),
        })
    }
}

/// A tile's abbreviated JPEG stream completed with the level's tables: the tables
/// stream without its EOI, then the tile without its SOI.
fn merge_tables(tables: &[u8], tile: &[u8]) -> Result<Vec<u8>, String> {
    if tables.len() < 4 || tile.len() < 4 || tables[..2] != [0xFF, 0xD8] || tile[..2] != [0xFF, 0xD8] {
        return Err("JPEG tile or JPEGTables without a start-of-image marker".into());
    }
    let t_end = if tables[tables.len() - 2..] == [0xFF, 0xD9] { tables.len() - 2 } else { tables.len() };
    let mut s = Vec::with_capacity(t_end + tile.len());
    s.extend_from_slice(&tables[..t_end]);
    s.extend_from_slice(&tile[2..]);
    Ok(s)
}

/// TIFF says the JPEG data is RGB (Photometric 2), which a bare JPEG stream cannot say:
/// libjpeg would assume YCbCr for three components. OpenSlide sets the colour space to
/// RGB in that case; the TurboJPEG API has no such switch, so an Adobe APP14 marker with
/// transform 0 (= no colour transform, RGB) is inserted after SOI, which libjpeg reads
/// the same way. Streams that already carry an Adobe or JFIF marker are left alone.
fn mark_as_rgb(stream: &mut Vec<u8>) {
    // Walk the marker segments before the scan data.
    let mut i = 2;
    while i + 4 <= stream.len() && stream[i] == 0xFF {
        let m = stream[i + 1];
        if m == 0xEE || m == 0xE0 {
            return;
        }
        if m == 0xDA || m == 0xD9 {
            break;
        }
        let len = u16::from_be_bytes([stream[i + 2], stream[i + 3]]) as usize;
        i += 2 + len;
    }
    let adobe: [u8; 16] = [0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00];
    stream.splice(2..2, adobe);
}
