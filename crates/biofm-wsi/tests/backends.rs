//! The readers behind `Slide`: OpenSlide (the system's libopenslide, loaded at run time)
//! against the pure-Rust TIFF reader on the same slides, single images (PNG, JPEG) as
//! one-level slides against independently known pixels, and the errors of each.
//! libopenslide comes from scripts/setup-system.sh (Debian's libopenslide0); the slides
//! from scripts/fetch-test-data.sh.

use biofm_wsi::{Slide, SlideBackend, SlideOverrides};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn slides() -> PathBuf {
    biofm_testdata::slides()
}

fn open_openslide(path: &Path) -> Slide {
    Slide::open_with_openslide(path).unwrap_or_else(|e| panic!("{e} (scripts/setup-system.sh installs libopenslide0)"))
}

/// Regions at whole-pixel level positions (OpenSlide interpolates at fractional ones):
/// tile borders, edges, outside, negative, whole levels.
fn regions(s: &Slide) -> Vec<(i64, i64, usize, u64, u64)> {
    let (w, h) = (s.dimensions().0 as i64, s.dimensions().1 as i64);
    let mut r = vec![
        (0, 0, 0, 32, 32),
        (1664, 464, 0, 32, 32),
        (1435, 487, 0, 250, 40),
        (1550, 499, 0, 301, 203),
        (w - 40, h - 30, 0, 100, 80),
        (w + 10, h + 10, 0, 16, 16),
        (-10, -6, 0, 32, 32),
        (-5000, 0, 0, 8, 8),
    ];
    for (i, l) in s.levels().iter().enumerate().skip(1) {
        let (lw, lh) = (l.width, l.height);
        r.push((0, 0, i, lw + 8, lh + 8));
        if l.downsample.fract() == 0.0 {
            let ds = l.downsample as i64;
            r.push((ds * 425, ds * 150, i, 32, 32));
            r.push((ds * (lw as i64 - 20), ds * (lh as i64 - 15), i, 48, 40));
            r.push((-ds * 3, -ds * 7, i, 20, 20));
        }
    }
    let last = s.levels().len() - 1;
    r.push((0, 0, last, s.levels()[last].width, s.levels()[last].height));
    r.push((0, 0, 0, w as u64, h as u64));
    r
}

#[test]
fn openslide_backend_matches_the_tiff_reader() {
    let mut compared = 0;
    for name in ["aperio.svs", "tiled_jpeg.tif"] {
        let path = slides().join(name);
        let pure = Slide::open(&path).unwrap();
        let os = open_openslide(&path);
        assert_eq!((pure.backend(), os.backend()), (SlideBackend::Tiff, SlideBackend::OpenSlide), "{name}");
        assert_eq!(os.vendor(), pure.vendor(), "{name}");
        let dims = |s: &Slide| s.levels().iter().map(|l| (l.width, l.height)).collect::<Vec<_>>();
        assert_eq!(dims(&os), dims(&pure), "{name}: level dimensions");
        let ds = |s: &Slide| s.levels().iter().map(|l| l.downsample).collect::<Vec<_>>();
        assert_eq!(ds(&os), ds(&pure), "{name}: downsamples");
        assert_eq!(os.dimensions(), pure.dimensions(), "{name}");
        assert!(pure.mpp().is_some(), "{name}: the test slides carry mpp");
        assert_eq!(os.mpp(), pure.mpp(), "{name}: mpp");
        assert_eq!(os.objective_power(), pure.objective_power(), "{name}: objective power");
        for d in [0.5, 1.0, 2.0, 3.99, 4.0, 10.0, 16.0, 16.1, 100.0] {
            assert_eq!(os.best_level_for_downsample(d), pure.best_level_for_downsample(d), "{name}: best level for {d}");
        }
        for (k, v) in pure.properties() {
            if k.starts_with("aperio.") || k == "openslide.mpp-x" || k == "openslide.objective-power" {
                assert_eq!(os.properties().get(k), Some(v), "{name}: property {k}");
            }
        }
        assert_eq!(os.properties().get("openslide.vendor").map(String::as_str), Some(pure.vendor()));
        for (x, y, level, w, h) in regions(&pure) {
            let a = pure.read_region(x, y, level, w, h).unwrap();
            let b = os.read_region(x, y, level, w, h).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.len(), b.len());
            if a != b {
                let i = a.iter().zip(&b).position(|(p, q)| p != q).unwrap() / 4;
                panic!(
                    "{name}: region ({x}, {y}) level {level} {w}x{h} differs first at pixel ({}, {}): {:?} vs OpenSlide {:?}",
                    i as u64 % w,
                    i as u64 / w,
                    &a[i * 4..i * 4 + 4],
                    &b[i * 4..i * 4 + 4]
                );
            }
            compared += 1;
        }
        // Whole tiles inside the image are the same pixels whichever reader decodes them.
        let l = &pure.levels()[0];
        assert_eq!((os.levels()[0].tile_width, os.levels()[0].tile_height), (l.tile_width, l.tile_height), "{name}");
        assert_eq!(os.tile(0, 2, 1).unwrap(), pure.tile(0, 2, 1).unwrap(), "{name}: tile (2, 1)");
        assert_eq!(os.levels()[0].compression(), "via OpenSlide");
        // Errors name the slide.
        let e = os.read_region(0, 0, 7, 4, 4).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("level 7"), "{e}");
    }
    assert!(compared >= 30, "only {compared} regions compared");
}

#[test]
fn openslide_handles_are_shared_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Slide>();
    let os = open_openslide(&slides().join("aperio.svs"));
    let regions: Vec<(i64, i64)> = (0..16).map(|i| (i * 170 - 40, i * 130 - 20)).collect();
    let serial: Vec<Vec<u8>> = regions.iter().map(|&(x, y)| os.read_region(x, y, 0, 300, 200).unwrap()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = regions
            .iter()
            .map(|&(x, y)| {
                let os = &os;
                scope.spawn(move || os.read_region(x, y, 0, 300, 200).unwrap())
            })
            .collect();
        for (h, want) in handles.into_iter().zip(&serial) {
            assert!(h.join().unwrap() == *want, "a region read on another thread differs");
        }
    });
    // Dropping closes the handle; opening again works.
    drop(os);
    let again = open_openslide(&slides().join("aperio.svs"));
    assert!(again.read_region(regions[0].0, regions[0].1, 0, 300, 200).unwrap() == serial[0]);
}

#[test]
fn open_picks_the_reader_from_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    // The same generic tiled TIFF under a vendor extension goes to OpenSlide (which
    // detects formats by content) and reads the same pixels.
    let renamed = dir.path().join("slide.bif");
    std::fs::copy(slides().join("tiled_jpeg.tif"), &renamed).unwrap();
    let os = Slide::open(&renamed).unwrap();
    assert_eq!(os.backend(), SlideBackend::OpenSlide);
    assert_eq!(os.vendor(), "generic-tiff");
    let pure = Slide::open(&slides().join("tiled_jpeg.tif")).unwrap();
    assert_eq!(os.read_region(1500, 500, 0, 64, 64).unwrap(), pure.read_region(1500, 500, 0, 64, 64).unwrap());
    // TIFF-family extensions keep the pure-Rust reader, whatever their case.
    let upper = dir.path().join("SLIDE.SVS");
    std::fs::copy(slides().join("aperio.svs"), &upper).unwrap();
    assert_eq!(Slide::open(&upper).unwrap().backend(), SlideBackend::Tiff);
    assert_eq!(Slide::open(&slides().join("ome.ome.tif")).unwrap().backend(), SlideBackend::Tiff);
}

/// A little-endian TIFF with one 16x16 RGB tile of the given compression.
fn tiny_tiled_tiff(compression: u16) -> Vec<u8> {
    let tile: Vec<u8> = (0..16 * 16 * 3).map(|i| (i % 251) as u8).collect();
    let entries: [(u16, u16, u32, u32); 10] = [
        (256, 3, 1, 16),        // ImageWidth
        (257, 3, 1, 16),        // ImageLength
        (258, 3, 1, 8),         // BitsPerSample (one value for all samples)
        (259, 3, 1, compression as u32),
        (262, 3, 1, 2),         // Photometric RGB
        (277, 3, 1, 3),         // SamplesPerPixel
        (322, 3, 1, 16),        // TileWidth
        (323, 3, 1, 16),        // TileLength
        (324, 4, 1, 0),         // TileOffsets, patched below
        (325, 4, 1, tile.len() as u32),
    ];
    let ifd_len = 2 + entries.len() * 12 + 4;
    let data_at = (8 + ifd_len) as u32;
    let mut f = b"II*\0".to_vec();
    f.extend_from_slice(&8u32.to_le_bytes());
    f.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, count, value) in entries {
        let value = if tag == 324 { data_at } else { value };
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&typ.to_le_bytes());
        f.extend_from_slice(&count.to_le_bytes());
        if typ == 3 {
            f.extend_from_slice(&(value as u16).to_le_bytes());
            f.extend_from_slice(&[0, 0]);
        } else {
            f.extend_from_slice(&value.to_le_bytes());
        }
    }
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&tile);
    f
}

#[test]
fn tiff_reader_points_to_openslide_for_what_it_cannot_decode() {
    let dir = tempfile::tempdir().unwrap();
    // The hand-made TIFF itself is valid: uncompressed, it reads.
    let ok = dir.path().join("raw.tif");
    std::fs::write(&ok, tiny_tiled_tiff(1)).unwrap();
    let s = Slide::open(&ok).unwrap();
    assert_eq!(s.dimensions(), (16, 16));
    assert_eq!(&s.read_region(1, 0, 0, 1, 1).unwrap(), &[3, 4, 5, 255]);
    // Aperio JPEG 2000 tiles: not decoded here; the error names the file and the way out.
    let j2k = dir.path().join("j2k.svs");
    std::fs::write(&j2k, tiny_tiled_tiff(33003)).unwrap();
    let e = Slide::open(&j2k).err().unwrap().to_string();
    assert!(e.contains("j2k.svs") && e.contains("JPEG 2000") && e.contains("Slide::open_with_openslide"), "{e}");
}

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

/// Expected RGBA of the region `(x, y, w, h)` of an image given by `pixel(px, py)`.
fn expected_region(iw: i64, ih: i64, x: i64, y: i64, w: i64, h: i64, pixel: impl Fn(i64, i64) -> [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    for py in y..y + h {
        for px in x..x + w {
            let inside = (0..iw).contains(&px) && (0..ih).contains(&py);
            out.extend_from_slice(&if inside { pixel(px, py) } else { [0; 4] });
        }
    }
    out
}

#[test]
fn png_images_are_one_level_slides() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (37i64, 23i64);
    let rgb = |x: i64, y: i64| [(x * 7) as u8, (y * 11) as u8, ((x * y) % 256) as u8];
    let data: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| rgb(x, y))).collect();
    let path = dir.path().join("field.png");
    write_png(&path, w as u32, h as u32, png::ColorType::Rgb, &data);
    let mut s = Slide::open(&path).unwrap();
    assert_eq!(s.backend(), SlideBackend::Image);
    assert_eq!(s.vendor(), "png");
    assert_eq!(s.dimensions(), (37, 23));
    assert_eq!(s.levels().len(), 1);
    let l = &s.levels()[0];
    assert_eq!((l.width, l.height, l.downsample, l.tile_width, l.tile_height), (37, 23, 1.0, 37, 23));
    assert_eq!(l.compression(), "PNG");
    assert_eq!(s.best_level_for_downsample(8.0), 0);
    let opaque = |x, y| {
        let [r, g, b] = rgb(x, y);
        [r, g, b, 255]
    };
    for (x, y, rw, rh) in [(0, 0, 37, 23), (5, 3, 10, 4), (-4, -2, 12, 9), (30, 20, 20, 10), (40, 0, 5, 5), (-10, -10, 3, 3)] {
        let got = s.read_region(x, y, 0, rw as u64, rh as u64).unwrap();
        assert_eq!(got, expected_region(w, h, x, y, rw, rh, opaque), "region ({x}, {y}) {rw}x{rh}");
    }
    assert_eq!(s.tile(0, 0, 0).unwrap().unwrap(), data);
    assert!(s.read_region(0, 0, 1, 4, 4).is_err());
    // No microns per pixel in a plain image until an override gives them.
    assert_eq!((s.mpp(), s.objective_power()), (None, None));
    s.apply_overrides(SlideOverrides { mpp: Some(0.25), objective_power: Some(40.0) });
    assert_eq!((s.mpp(), s.objective_power()), (Some((0.25, 0.25)), Some(40.0)));
    assert_eq!(s.properties().get("openslide.mpp-x").map(String::as_str), Some("0.25"));

    // RGBA keeps its (straight) alpha; grey becomes RGB.
    let rgba = |x: i64, y: i64| [(x * 5) as u8, (y * 9) as u8, 77, ((x + y) * 13 % 256) as u8];
    let data: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| rgba(x, y))).collect();
    let path = dir.path().join("alpha.png");
    write_png(&path, w as u32, h as u32, png::ColorType::Rgba, &data);
    let s = Slide::open(&path).unwrap();
    assert_eq!(s.read_region(-3, 2, 0, 45, 20).unwrap(), expected_region(w, h, -3, 2, 45, 20, rgba));
    let grey: Vec<u8> = (0..w * h).map(|i| (i * 3 % 256) as u8).collect();
    let path = dir.path().join("grey.png");
    write_png(&path, w as u32, h as u32, png::ColorType::Grayscale, &grey);
    let s = Slide::open(&path).unwrap();
    let g = |x: i64, y: i64| {
        let v = grey[(y * w + x) as usize];
        [v, v, v, 255]
    };
    assert_eq!(s.read_region(0, 0, 0, 37, 23).unwrap(), expected_region(w, h, 0, 0, 37, 23, g));
}

/// One uint8 tensor of a safetensors file (header parsed by hand).
fn safetensor_u8(path: &Path, name: &str) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let t = &header[name];
    assert_eq!(t["dtype"], "U8", "{name}");
    let shape = t["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let (a, b) = (t["data_offsets"][0].as_u64().unwrap() as usize, t["data_offsets"][1].as_u64().unwrap() as usize);
    (shape, bytes[8 + n + a..8 + n + b].to_vec())
}

#[test]
fn jpeg_images_read_as_pillow_decodes_them() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../biofm-preprocess/tests/fixtures/images");
    // Pillow 13's decode of the file, recorded by tools/reference/gen_image_fixtures.py.
    let (shape, rgb) = safetensor_u8(&images.join("expected.safetensors"), "decode/jpeg_420_q30_ihc.jpg/rgb");
    let (h, w) = (shape[0] as i64, shape[1] as i64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("IHC.JPG");
    std::fs::copy(images.join("inputs/jpeg_420_q30_ihc.jpg"), &path).unwrap();
    let s = Slide::open(&path).unwrap();
    assert_eq!((s.backend(), s.vendor()), (SlideBackend::Image, "jpeg"));
    assert_eq!(s.dimensions(), (w as u64, h as u64));
    assert_eq!(s.levels().len(), 1);
    assert_eq!(s.mpp(), None);
    let pixel = |x: i64, y: i64| {
        let i = ((y * w + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2], 255]
    };
    for (x, y, rw, rh) in [(0, 0, w, h), (-7, 3, 20, 20), (w - 5, h - 5, 16, 16)] {
        let got = s.read_region(x, y, 0, rw as u64, rh as u64).unwrap();
        assert_eq!(got, expected_region(w, h, x, y, rw, rh, pixel), "region ({x}, {y}) {rw}x{rh}");
    }
}

#[test]
fn missing_openslide_library_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case 12.ndpi");
    std::fs::write(&path, b"II*\0 not really").unwrap();
    let e = Slide::open_with_openslide_library(&path, Path::new("/nonexistent/libopenslide.so.1")).err().unwrap().to_string();
    for want in ["case 12.ndpi", "/nonexistent/libopenslide.so.1", "apt-get install libopenslide0", "BIOFM_OPENSLIDE"] {
        assert!(e.contains(want), "`{want}` missing from: {e}");
    }
    // A file that is not an OpenSlide library.
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"not a library").unwrap();
    let e = Slide::open_with_openslide_library(&path, &fake).err().unwrap().to_string();
    assert!(e.contains("libfake.so") && e.contains("apt-get install libopenslide0"), "{e}");
}

#[test]
fn vendor_extension_files_that_are_not_slides_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["notes.ndpi", "scan.mrxs", "box.scn", "x.vms"] {
        let path = dir.path().join(name);
        std::fs::write(&path, b"just some text, not a slide\n").unwrap();
        let e = Slide::open(&path).err().unwrap().to_string();
        assert!(e.contains(name) && e.contains("does not recognise"), "{name}: {e}");
    }
    let missing = dir.path().join("gone.ndpi");
    let e = Slide::open(&missing).err().unwrap().to_string();
    assert!(e.contains("gone.ndpi") && e.contains("cannot open"), "{e}");
    // A broken image named as one.
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, [0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).unwrap();
    let e = Slide::open(&bad).err().unwrap().to_string();
    assert!(e.contains("broken.jpg"), "{e}");
}
