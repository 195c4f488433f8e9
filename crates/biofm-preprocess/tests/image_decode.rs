//! Decoding against Pillow 13: `Image.open` mode, size and pixels, `convert("RGB")`,
//! `ImageOps.exif_transpose`, and the error paths (bomb guard, budgets, corrupt files).

mod image_common;

use biofm_preprocess::image::{
    decode_bytes, decode_file, DecodeOptions, ImageError, MAX_IMAGE_PIXELS,
};
use image_common::{assert_no_failures, input_path, load, read_input};

fn hwc(width: u32, height: u32, bands: usize) -> Vec<usize> {
    if bands == 1 {
        vec![height as usize, width as usize]
    } else {
        vec![height as usize, width as usize, bands]
    }
}

#[test]
fn decoded_pixels_match_pillow() {
    let fx = load();
    let mut failures = Vec::new();
    let records = fx.list("decode");
    for rec in records {
        let input = rec["input"].as_str().unwrap();
        let result = decode_file(input_path(input), &DecodeOptions::default());
        if rec["error"] == "unsupported" {
            // A layout Pillow opens but this decoder refuses: the error must say so.
            match result {
                Err(ImageError::Unsupported { name, .. }) if name.ends_with(input) => {}
                other => failures.push(format!(
                    "{input}: expected an Unsupported error, got {other:?}"
                )),
            }
            continue;
        }
        let img = match result {
            Ok(img) => img,
            Err(e) => {
                failures.push(format!("{input}: {e}"));
                continue;
            }
        };
        let (w, h) = img.size();
        let want_size = [
            rec["size"][0].as_u64().unwrap() as u32,
            rec["size"][1].as_u64().unwrap() as u32,
        ];
        if img.mode().pil_name() != rec["mode"] || [w, h] != want_size {
            failures.push(format!(
                "{input}: mode {} size {w}x{h}, Pillow {} {want_size:?}",
                img.mode(),
                rec["mode"]
            ));
            continue;
        }
        if rec.get("pixels").is_some() {
            if let Err(e) = fx.compare(
                &rec["pixels"],
                &hwc(w, h, img.mode().bands()),
                &img.to_le_bytes(),
            ) {
                failures.push(format!("{input}: pixels: {e}"));
            }
        }
        let rgb = img.convert_rgb();
        if let Err(e) = fx.compare(&rec["rgb"], &hwc(w, h, 3), &rgb.to_le_bytes()) {
            failures.push(format!("{input}: convert(\"RGB\"): {e}"));
        }
    }
    assert_no_failures("decode", records.len(), &failures);
}

#[test]
fn exif_orientation_is_ignored_by_default_and_applied_on_request() {
    let fx = load();
    let mut failures = Vec::new();
    let cases: Vec<_> = fx
        .list("decode")
        .iter()
        .filter(|r| r.get("transposed").is_some())
        .collect();
    for rec in &cases {
        let input = rec["input"].as_str().unwrap();
        let plain = decode_file(input_path(input), &DecodeOptions::default()).unwrap();
        let want_plain = (
            rec["size"][0].as_u64().unwrap() as u32,
            rec["size"][1].as_u64().unwrap() as u32,
        );
        if plain.size() != want_plain {
            failures.push(format!(
                "{input}: default decode has size {:?}, Image.open gives {want_plain:?}",
                plain.size()
            ));
        }
        let opts = DecodeOptions {
            exif_transpose: true,
            ..DecodeOptions::default()
        };
        let img = decode_file(input_path(input), &opts).unwrap();
        let t = &rec["transposed"];
        let (w, h) = img.size();
        if img.mode().pil_name() != t["mode"]
            || [u64::from(w), u64::from(h)]
                != [
                    t["size"][0].as_u64().unwrap(),
                    t["size"][1].as_u64().unwrap(),
                ]
        {
            failures.push(format!(
                "{input}: transposed mode {} size {w}x{h}, Pillow {} {}",
                img.mode(),
                t["mode"],
                t["size"]
            ));
            continue;
        }
        if let Err(e) = fx.compare(&t["rgb"], &hwc(w, h, 3), &img.convert_rgb().to_le_bytes()) {
            failures.push(format!("{input}: exif_transpose: {e}"));
        }
    }
    // The zoo has a JPEG (orientation 6) and a PNG (eXIf, orientation 3).
    assert!(
        cases.len() >= 2,
        "expected orientation cases in the fixtures"
    );
    assert_no_failures("exif_transpose", cases.len(), &failures);
}

/// One zoo file per container format, with its pixel count.
const FORMATS: [(&str, u64); 4] = [
    ("jpeg_420_q75.jpg", 61 * 47),
    ("png_rgb.png", 61 * 47),
    ("tiff_rgb8_lzw.tif", 61 * 47),
    ("bmp_rgb.bmp", 61 * 47),
];

#[test]
fn decompression_bomb_guard_is_pils_twice_max_image_pixels() {
    assert_eq!(MAX_IMAGE_PIXELS, 89_478_485);
    for (file, pixels) in FORMATS {
        let bytes = read_input(file);
        // PIL refuses only above 2 × MAX_IMAGE_PIXELS.
        let at_limit = DecodeOptions {
            max_image_pixels: Some(pixels.div_ceil(2)),
            ..DecodeOptions::default()
        };
        assert!(
            decode_bytes(&bytes, file, &at_limit).is_ok(),
            "{file} at the limit"
        );
        let below = DecodeOptions {
            max_image_pixels: Some(pixels / 2 - 1),
            ..DecodeOptions::default()
        };
        match decode_bytes(&bytes, file, &below) {
            Err(ImageError::DecompressionBomb { pixels: p, .. }) => assert_eq!(p, pixels, "{file}"),
            other => panic!("{file}: expected DecompressionBomb, got {other:?}"),
        }
        let off = DecodeOptions {
            max_image_pixels: None,
            ..DecodeOptions::default()
        };
        assert!(
            decode_bytes(&bytes, file, &off).is_ok(),
            "{file} with the guard off"
        );
    }
}

/// Set the dimensions a file declares, without touching its pixel data.
fn with_declared_size(file: &str, width: u32, height: u32) -> Vec<u8> {
    let mut b = read_input(file);
    match file.rsplit('.').next().unwrap() {
        "png" => {
            b[16..20].copy_from_slice(&width.to_be_bytes());
            b[20..24].copy_from_slice(&height.to_be_bytes());
            let crc = crc32(&b[12..29]);
            b[29..33].copy_from_slice(&crc.to_be_bytes());
        }
        "jpg" => {
            let sof = (2..b.len() - 1)
                .find(|&i| b[i] == 0xFF && (0xC0..=0xC2).contains(&b[i + 1]))
                .unwrap();
            b[sof + 5..sof + 7].copy_from_slice(&(height as u16).to_be_bytes());
            b[sof + 7..sof + 9].copy_from_slice(&(width as u16).to_be_bytes());
        }
        "bmp" => {
            b[18..22].copy_from_slice(&width.to_le_bytes());
            b[22..26].copy_from_slice(&height.to_le_bytes());
        }
        "tif" => {
            // Little-endian, first IFD: rewrite the ImageWidth / ImageLength entries.
            let ifd = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
            let n = u16::from_le_bytes([b[ifd], b[ifd + 1]]) as usize;
            for i in 0..n {
                let e = ifd + 2 + 12 * i;
                let tag = u16::from_le_bytes([b[e], b[e + 1]]);
                let value = match tag {
                    256 => width,
                    257 => height,
                    _ => continue,
                };
                b[e + 2..e + 4].copy_from_slice(&4u16.to_le_bytes());
                b[e + 8..e + 12].copy_from_slice(&value.to_le_bytes());
            }
        }
        other => panic!("no size patcher for {other}"),
    }
    b
}

fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |mut c, &byte| {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
        c
    })
}

#[test]
fn bomb_and_zero_size_are_refused_from_the_header() {
    for (file, _) in FORMATS {
        // 60000 × 60000 = 3.6e9 pixels: refused before any pixel buffer is allocated (the
        // files hold only a few KB of pixel data, so a decode attempt would fail differently).
        let huge = with_declared_size(file, 60_000, 60_000);
        match decode_bytes(&huge, file, &DecodeOptions::default()) {
            Err(ImageError::DecompressionBomb {
                width: 60_000,
                height: 60_000,
                ..
            }) => {}
            other => panic!("{file}: expected DecompressionBomb, got {other:?}"),
        }
        let zero = with_declared_size(file, 0, 47);
        let err =
            decode_bytes(&zero, file, &DecodeOptions::default()).expect_err("zero width must fail");
        assert!(
            err.to_string().starts_with(&format!("{file}: ")),
            "{file}: {err}"
        );
    }
}

#[test]
fn byte_budget_caps_file_and_pixels() {
    let file = "png_rgb.png";
    let bytes = read_input(file);
    let opts = DecodeOptions {
        max_bytes: 61 * 47 * 3 - 1,
        ..DecodeOptions::default()
    };
    match decode_bytes(&bytes, file, &opts) {
        Err(ImageError::OverBudget {
            what: "decoded image",
            ..
        }) => {}
        other => panic!("expected OverBudget for the pixels, got {other:?}"),
    }
    let opts = DecodeOptions {
        max_bytes: bytes.len() as u64 - 1,
        ..DecodeOptions::default()
    };
    match decode_file(input_path(file), &opts) {
        Err(ImageError::OverBudget { what: "file", .. }) => {}
        other => panic!("expected OverBudget for the file, got {other:?}"),
    }
}

#[test]
fn errors_name_the_file() {
    let missing = input_path("no_such_file.png");
    let err = decode_file(&missing, &DecodeOptions::default()).unwrap_err();
    assert!(
        matches!(err, ImageError::Io { .. }) && err.to_string().contains("no_such_file.png"),
        "{err}"
    );

    let err = decode_bytes(b"GIF89a....", "anim.gif", &DecodeOptions::default()).unwrap_err();
    assert!(
        matches!(err, ImageError::UnknownFormat { .. })
            && err.to_string().starts_with("anim.gif: "),
        "{err}"
    );

    // Magic bytes decide, not the extension.
    let png = read_input("png_rgb.png");
    assert!(decode_bytes(&png, "really_a_png.jpg", &DecodeOptions::default()).is_ok());

    for file in [
        "jpeg_420_q75.jpg",
        "png_rgb.png",
        "tiff_rgb8_lzw.tif",
        "bmp_rgb.bmp",
    ] {
        let bytes = read_input(file);
        let cut = &bytes[..bytes.len() * 2 / 3];
        let err = decode_bytes(cut, file, &DecodeOptions::default())
            .expect_err("truncated file must fail");
        assert!(err.to_string().starts_with(&format!("{file}: ")), "{err}");
    }
    // BMP reports where the data ran out.
    let bmp = read_input("bmp_rgb.bmp");
    let err = decode_bytes(&bmp[..1000], "cut.bmp", &DecodeOptions::default()).unwrap_err();
    assert!(err.to_string().contains("at byte 1000"), "{err}");
}
