//! `Image.resize` against Pillow 13: all six filters, down- and upscaling, odd sizes,
//! the pass-order rule, and every mode (premultiplied alpha, 16-bit, 32-bit int and
//! float, CMYK, palette and bilevel images forced to NEAREST).

mod image_common;

use std::collections::HashMap;

use biofm_preprocess::image::{decode_file, DecodeOptions, Filter, Image};
use image_common::{assert_no_failures, input_path, load};

fn filter(name: &str) -> Filter {
    match name {
        "nearest" => Filter::Nearest,
        "box" => Filter::Box,
        "bilinear" => Filter::Bilinear,
        "hamming" => Filter::Hamming,
        "bicubic" => Filter::Bicubic,
        "lanczos" => Filter::Lanczos,
        other => panic!("unknown filter {other}"),
    }
}

#[test]
fn resize_matches_pillow() {
    let fx = load();
    let mut decoded: HashMap<String, Image> = HashMap::new();
    let mut failures = Vec::new();
    let cases = fx.list("resize");
    let mut filters_seen = std::collections::HashSet::new();
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let src = decoded.entry(input.to_string()).or_insert_with(|| {
            decode_file(input_path(input), &DecodeOptions::default()).expect("decode")
        });
        let (w, h) = (
            case["size"][0].as_u64().unwrap() as u32,
            case["size"][1].as_u64().unwrap() as u32,
        );
        let fname = case["filter"].as_str().unwrap();
        filters_seen.insert(fname.to_string());
        let label = format!("{input} ({}) -> {w}x{h} {fname}", src.mode());
        let out = match src.resize(w, h, filter(fname)) {
            Ok(out) => out,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        if out.mode().pil_name() != case["mode"] {
            failures.push(format!(
                "{label}: mode {}, Pillow {}",
                out.mode(),
                case["mode"]
            ));
            continue;
        }
        let bands = out.mode().bands();
        let shape: Vec<usize> = if bands == 1 {
            vec![h as usize, w as usize]
        } else {
            vec![h as usize, w as usize, bands]
        };
        if let Err(e) = fx.compare(&case["out"], &shape, &out.to_le_bytes()) {
            failures.push(format!("{label}: {e}"));
        }
    }
    assert_eq!(
        filters_seen.len(),
        6,
        "all six filters must be covered: {filters_seen:?}"
    );
    assert_no_failures("resize", cases.len(), &failures);
}
