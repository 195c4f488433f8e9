//! Input discovery: files and folders on the command line → an ordered list of files.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// File extensions treated as images when a folder is expanded (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff", "bmp"];

/// Expands `inputs` in order: a file is taken as is (whatever its extension, so that a
/// mislabelled file still gets a decoding error naming it); a folder contributes its
/// image files (by extension, recursively) in sorted path order. Hidden files and
/// folders (starting with `.`) are skipped during expansion.
///
/// Errors: an input that does not exist, a folder holding no images, no inputs at all.
pub fn expand_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if inputs.is_empty() {
        bail!("no inputs: give image files or folders");
    }
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).with_context(|| format!("input {} does not exist or cannot be read", input.display()))?;
        if meta.is_dir() {
            let before = out.len();
            walk(input, &mut out)?;
            out[before..].sort();
            if out.len() == before {
                bail!(
                    "folder {} contains no images (looked for {} files)",
                    input.display(),
                    IMAGE_EXTENSIONS.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(", ")
                );
            }
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list folder {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list folder {}", dir.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ft = entry.file_type().with_context(|| format!("cannot stat {}", path.display()))?;
        if ft.is_dir() || (ft.is_symlink() && path.is_dir()) {
            walk(&path, out)?;
        } else if is_image_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Reads one text per non-empty line from a UTF-8 file (a trailing `\r` is removed).
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("{} is not UTF-8 text (invalid byte at offset {})", path.display(), e.utf8_error().valid_up_to())
    })?;
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        bail!("{} contains no text lines", path.display());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_sorted_and_recursive() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.png", "a.JPG", "sub/c.tif", "notes.txt", ".hidden.png", "sub/.x/d.png"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
        }
        let got = expand_images(&[d.path().to_path_buf()]).unwrap();
        let names: Vec<_> = got.iter().map(|p| p.strip_prefix(d.path()).unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.JPG", "b.png", "sub/c.tif"]);
        // Explicit files keep command-line order, whatever the extension.
        let f = d.path().join("notes.txt");
        let got = expand_images(&[f.clone(), d.path().join("b.png")]).unwrap();
        assert_eq!(got[0], f);
    }

    #[test]
    fn bad_inputs() {
        let d = tempfile::tempdir().unwrap();
        let e = expand_images(&[d.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("contains no images"), "{e}");
        let e = expand_images(&[d.path().join("nope.png")]).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(expand_images(&[]).is_err());
        let f = d.path().join("t.txt");
        std::fs::write(&f, [0x66, 0xff, 0x0a]).unwrap();
        assert!(read_lines(&f).unwrap_err().to_string().contains("offset 1"));
        std::fs::write(&f, "\n \n").unwrap();
        assert!(read_lines(&f).is_err());
        std::fs::write(&f, "a\r\n\nb\n").unwrap();
        assert_eq!(read_lines(&f).unwrap(), ["a", "b"]);
    }
}
