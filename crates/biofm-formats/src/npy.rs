//! NumPy `.npy` (format version 1.0/2.0) for little-endian `float32` matrices.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes a C-ordered `<f4` array of `shape` (`data.len()` must equal the product).
pub fn write_f32<W: Write>(w: &mut W, shape: &[usize], data: &[f32]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        bail!("npy: shape {shape:?} needs {n} values, got {}", data.len());
    }
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    let mut buf = Vec::with_capacity(data.len() * 4);
    for v in data {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    w.write_all(&buf)?;
    Ok(())
}

/// Reads a `<f4` (or `<f8`, converted) C-ordered `.npy` file.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_f32(&bytes).with_context(|| format!("{} is not a float .npy file", path.display()))
}

fn parse_f32(b: &[u8]) -> Result<(Vec<usize>, Vec<f32>)> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        bail!("missing the NumPy magic string at offset 0");
    }
    let (hlen, hstart) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => bail!("unsupported .npy version {v}"),
    };
    let header = b.get(hstart..hstart + hlen).context("header runs past the end of the file")?;
    let header = std::str::from_utf8(header).context("header is not text")?;
    let descr = dict_value(header, "descr").context("header has no 'descr'")?;
    let fortran = dict_value(header, "fortran_order").context("header has no 'fortran_order'")?;
    if fortran.trim() != "False" {
        bail!("Fortran-ordered arrays are not supported");
    }
    let shape_s = dict_value(header, "shape").context("header has no 'shape'")?;
    let shape: Vec<usize> = shape_s
        .trim_matches(|c| c == '(' || c == ')' || c == ' ')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().with_context(|| format!("bad dimension `{s}`")))
        .collect::<Result<_>>()?;
    let n: usize = shape.iter().product();
    let data = &b[hstart + hlen..];
    let descr = descr.trim().trim_matches('\'');
    let out = match descr {
        "<f4" => {
            if data.len() != n * 4 {
                bail!("shape {shape:?} needs {} data bytes, file has {}", n * 4, data.len());
            }
            data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        "<f8" => {
            if data.len() != n * 8 {
                bail!("shape {shape:?} needs {} data bytes, file has {}", n * 8, data.len());
            }
            data.chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                .collect()
        }
        other => bail!("dtype {other} is not supported (expected <f4 or <f8)"),
    };
    Ok((shape, out))
}

/// Extracts the raw text of `key`'s value from a Python dict literal header.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let start = header.find(&pat)? + pat.len();
    let rest = &header[start..];
    let rest_trim = rest.trim_start();
    let offset = rest.len() - rest_trim.len();
    let end = if rest_trim.starts_with('(') {
        rest_trim.find(')')? + 1
    } else {
        rest_trim.find(',').unwrap_or(rest_trim.len())
    };
    Some(&rest[offset..offset + end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_shapes() {
        for shape in [vec![3usize, 4], vec![5], vec![0, 7], vec![2, 1, 3]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let mut buf = Vec::new();
            write_f32(&mut buf, &shape, &data).unwrap();
            assert_eq!((10 + u16::from_le_bytes([buf[8], buf[9]]) as usize) % 64, 0);
            let (s, d) = parse_f32(&buf).unwrap();
            assert_eq!(s, shape);
            assert_eq!(d, data);
        }
    }

    #[test]
    fn rejects_truncated() {
        let mut buf = Vec::new();
        write_f32(&mut buf, &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        for cut in [0, 5, 9, 20, buf.len() - 1] {
            assert!(parse_f32(&buf[..cut]).is_err(), "cut at {cut}");
        }
        assert!(write_f32(&mut Vec::new(), &[3], &[1.0]).is_err());
    }
}
