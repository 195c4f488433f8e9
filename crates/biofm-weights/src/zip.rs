//! A read-only zip central-directory reader for `torch.save` archives.
//!
//! Only what PyTorch's writer (miniz, `caffe2::serialize::PyTorchStreamWriter`) produces is
//! needed: entries are stored uncompressed, local headers carry padding so storages start
//! 64-byte aligned, sizes live in the central directory (local headers use data
//! descriptors), and zip64 end records are always present. Entry data is returned as byte
//! ranges of the file so storages can stay memory-mapped. Every read is bounds-checked:
//! a damaged archive is an error naming the byte offset, never a panic.

use std::collections::HashMap;
use std::ops::Range;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Compression method "stored" (no compression).
const STORED: u16 = 0;

/// A malformed archive: what is wrong and the byte offset in the file where it was seen.
#[derive(Debug)]
pub(crate) struct ZipError {
    pub offset: u64,
    pub msg: String,
}

fn err<T>(offset: usize, msg: impl Into<String>) -> Result<T, ZipError> {
    Err(ZipError {
        offset: offset as u64,
        msg: msg.into(),
    })
}

/// One archive member as listed in the central directory.
#[derive(Debug, Clone)]
pub(crate) struct ZipEntry {
    /// Compression method (0 = stored, 8 = deflate, ...).
    pub method: u16,
    /// General-purpose flags; bit 0 means encrypted.
    pub flags: u16,
    pub compressed_size: u64,
    pub size: u64,
    pub local_header_offset: u64,
}

/// The members of a zip archive by name.
pub(crate) struct ZipArchive<'a> {
    data: &'a [u8],
    entries: HashMap<String, ZipEntry>,
    /// Names in central-directory order.
    names: Vec<String>,
}

/// Little-endian field reads at absolute offsets, bounds-checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&self, at: usize, n: usize, what: &str) -> Result<&[u8], ZipError> {
        match at.checked_add(n).and_then(|end| self.0.get(at..end)) {
            Some(b) => Ok(b),
            None => err(
                at,
                format!(
                    "{what} ({n} bytes) runs past the end of the file ({} bytes)",
                    self.0.len()
                ),
            ),
        }
    }
    fn array<const N: usize>(&self, at: usize, what: &str) -> Result<[u8; N], ZipError> {
        let b = self.bytes(at, N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }
    fn u16(&self, at: usize, what: &str) -> Result<u16, ZipError> {
        self.array(at, what).map(u16::from_le_bytes)
    }
    fn u32(&self, at: usize, what: &str) -> Result<u32, ZipError> {
        self.array(at, what).map(u32::from_le_bytes)
    }
    fn u64(&self, at: usize, what: &str) -> Result<u64, ZipError> {
        self.array(at, what).map(u64::from_le_bytes)
    }
}

fn to_usize(v: u64, at: usize, what: &str) -> Result<usize, ZipError> {
    usize::try_from(v).or_else(|_| err(at, format!("{what} {v} does not fit in memory addresses")))
}

impl<'a> ZipArchive<'a> {
    /// Reads the central directory of the archive `data` (the whole file).
    pub fn parse(data: &'a [u8]) -> Result<Self, ZipError> {
        let r = Reader(data);
        let eocd = find_eocd(data)?;
        let mut count = u64::from(r.u16(eocd + 10, "end of central directory")?);
        let mut cd_size = u64::from(r.u32(eocd + 12, "end of central directory")?);
        let mut cd_offset = u64::from(r.u32(eocd + 16, "end of central directory")?);
        // A zip64 locator sits right before the classic record when zip64 is in use.
        if let Some(loc) = eocd.checked_sub(20) {
            if r.u32(loc, "zip64 locator")? == EOCD64_LOCATOR_SIG {
                let at = to_usize(
                    r.u64(loc + 8, "zip64 locator")?,
                    loc + 8,
                    "zip64 end record offset",
                )?;
                if r.u32(at, "zip64 end of central directory")? != EOCD64_SIG {
                    return err(
                        at,
                        "zip64 locator does not point at a zip64 end of central directory record",
                    );
                }
                count = r.u64(at + 32, "zip64 end of central directory")?;
                cd_size = r.u64(at + 40, "zip64 end of central directory")?;
                cd_offset = r.u64(at + 48, "zip64 end of central directory")?;
            }
        }
        let cd_start = to_usize(cd_offset, eocd, "central directory offset")?;
        let cd_len = to_usize(cd_size, eocd, "central directory size")?;
        r.bytes(cd_start, cd_len, "central directory")?;
        // Each record is at least 46 bytes: bound the count before trusting it.
        if count > (cd_len / 46) as u64 {
            return err(
                eocd,
                format!("central directory claims {count} entries in {cd_len} bytes"),
            );
        }
        let mut entries = HashMap::new();
        let mut names = Vec::new();
        let mut at = cd_start;
        for _ in 0..count {
            let (name, entry, next) = central_record(&r, at)?;
            if entries.insert(name.clone(), entry).is_some() {
                return err(
                    at,
                    format!("entry `{name}` appears twice in the central directory"),
                );
            }
            names.push(name);
            at = next;
        }
        Ok(Self {
            data,
            entries,
            names,
        })
    }

    /// Entry names in central-directory order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn entry(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.get(name)
    }

    /// The byte range of a stored (uncompressed, unencrypted) entry's data in the file.
    pub fn stored_range(&self, name: &str, entry: &ZipEntry) -> Result<Range<usize>, ZipError> {
        let r = Reader(self.data);
        let lh = to_usize(entry.local_header_offset, 0, "local header offset")?;
        if entry.flags & 1 != 0 {
            return err(lh, format!("entry `{name}` is encrypted"));
        }
        if entry.method != STORED {
            let kind = if entry.method == 8 { " (deflate)" } else { "" };
            return err(
                lh,
                format!(
                    "entry `{name}` is compressed with zip method {}{kind}; storages must be stored \
                     uncompressed so they can be memory-mapped (re-save the checkpoint with torch.save, \
                     or re-zip it with `zip -0`)",
                    entry.method
                ),
            );
        }
        if entry.compressed_size != entry.size {
            return err(
                lh,
                format!(
                    "stored entry `{name}` has compressed size {} != size {}",
                    entry.compressed_size, entry.size
                ),
            );
        }
        if r.u32(lh, "local header")? != LOCAL_SIG {
            return err(lh, format!("no local file header for entry `{name}`"));
        }
        let name_len = usize::from(r.u16(lh + 26, "local header")?);
        let extra_len = usize::from(r.u16(lh + 28, "local header")?);
        let start = lh + 30 + name_len + extra_len;
        let len = to_usize(entry.size, lh, "entry size")?;
        r.bytes(start, len, &format!("data of entry `{name}`"))?;
        Ok(start..start + len)
    }
}

/// Finds the classic end-of-central-directory record, scanning back over a comment of up
/// to 64 KiB.
fn find_eocd(data: &[u8]) -> Result<usize, ZipError> {
    const MIN: usize = 22;
    if data.len() < MIN {
        return err(
            0,
            format!("file is {} bytes, too short for a zip archive", data.len()),
        );
    }
    let last = data.len() - MIN;
    let first = last.saturating_sub(u16::MAX as usize);
    (first..=last)
        .rev()
        .find(|&i| data[i..i + 4] == EOCD_SIG.to_le_bytes())
        .map_or_else(
            || {
                err(
                    data.len(),
                    "no zip end of central directory record (file truncated?)",
                )
            },
            Ok,
        )
}

/// Parses the central-directory record at `at`; returns its name, entry and the offset of
/// the next record.
fn central_record(r: &Reader, at: usize) -> Result<(String, ZipEntry, usize), ZipError> {
    const WHAT: &str = "central directory record";
    if r.u32(at, WHAT)? != CENTRAL_SIG {
        return err(at, "bad central directory record signature");
    }
    let flags = r.u16(at + 8, WHAT)?;
    let method = r.u16(at + 10, WHAT)?;
    let mut compressed_size = u64::from(r.u32(at + 20, WHAT)?);
    let mut size = u64::from(r.u32(at + 24, WHAT)?);
    let name_len = usize::from(r.u16(at + 28, WHAT)?);
    let extra_len = usize::from(r.u16(at + 30, WHAT)?);
    let comment_len = usize::from(r.u16(at + 32, WHAT)?);
    let mut local_header_offset = u64::from(r.u32(at + 42, WHAT)?);
    let name_at = at + 46;
    let name = String::from_utf8_lossy(r.bytes(name_at, name_len, "entry name")?).into_owned();
    // The zip64 extra field holds, in this order, each 32-bit field that is saturated.
    let extra_at = name_at + name_len;
    let extra = r.bytes(extra_at, extra_len, "extra field")?;
    let mut pos = 0;
    while pos + 4 <= extra.len() {
        let er = Reader(&extra[pos..]);
        let id = er.u16(0, "extra field header")?;
        let len = usize::from(er.u16(2, "extra field header")?);
        let body = er.bytes(4, len, "extra field").map_err(|_| ZipError {
            offset: (extra_at + pos) as u64,
            msg: format!("extra field of entry `{name}` overruns its record"),
        })?;
        if id == ZIP64_EXTRA_ID {
            let z = Reader(body);
            let mut off = 0;
            for field in [&mut size, &mut compressed_size, &mut local_header_offset] {
                if *field == u64::from(u32::MAX) {
                    *field = z.u64(off, "zip64 extra field").map_err(|_| ZipError {
                        offset: (extra_at + pos) as u64,
                        msg: format!("zip64 extra field of entry `{name}` is too short"),
                    })?;
                    off += 8;
                }
            }
        }
        pos += 4 + len;
    }
    let next = extra_at + extra_len + comment_len;
    Ok((
        name,
        ZipEntry {
            method,
            flags,
            compressed_size,
            size,
            local_header_offset,
        },
        next,
    ))
}
