//! End-to-end tests of the `biofm` binary: real images, the bundled tiny BiomedCLIP-
//! architecture model (whose open_clip reference outputs are committed), the offline HF
//! cache path, and every bad input the CLI promises to handle with a clear message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}
fn tiny() -> PathBuf {
    root().join("data/models/tiny-biomedclip")
}
fn samples() -> PathBuf {
    root().join("data/samples")
}

fn biofm(args: &[&str]) -> Output {
    biofm_env(args, &[])
}

fn biofm_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_biofm"));
    c.args(args).current_dir(root()).env("HF_HUB_OFFLINE", "1").env("BIOFM_THREADS", "2");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: non-zero exit, no panic, and `needle` in the message.
fn fails_with(o: &Output, needle: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {e}");
    assert!(!e.contains("panicked"), "panic instead of an error: {e}");
    assert!(e.to_lowercase().contains(&needle.to_lowercase()), "expected `{needle}` in: {e}");
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "biofm failed: {}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The committed open_clip reference for the tiny model.
fn reference() -> (std::collections::HashMap<String, candle_core::Tensor>, serde_json::Value) {
    let base = root().join("crates/biofm-models/tests/fixtures/open_clip/tiny_biomedclip_reference");
    let t = candle_core::safetensors::load(base.with_extension("safetensors"), &candle_core::Device::Cpu).unwrap();
    let m = serde_json::from_str(&std::fs::read_to_string(base.with_extension("json")).unwrap()).unwrap();
    (t, m)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn embed_image_writes_open_clip_embeddings_in_input_order() {
    let (r, meta) = reference();
    let dir = tempfile::tempdir().unwrap();
    // Files in the reference's order; the folder form is sorted by name.
    let files: Vec<String> = meta["images"].as_array().unwrap().iter()
        .map(|n| samples().join(n.as_str().unwrap()).display().to_string()).collect();
    let model = tiny();
    for ext in ["npy", "safetensors", "jsonl"] {
        let out = dir.path().join(format!("emb.{ext}"));
        let mut args = vec!["embed", "image", "-q", "--model", model.to_str().unwrap(), "--normalize", "--batch-size", "3", "--out", out.to_str().unwrap()];
        args.extend(files.iter().map(String::as_str));
        ok(&biofm(&args));
        let t = biofm_formats::EmbeddingTable::read(&out).unwrap();
        assert_eq!(t.len(), files.len());
        let want = r["image_embeddings"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let d = max_abs(&t.data, &want);
        assert!(d < 1e-4, "{ext}: max abs diff {d}");
        if ext != "npy" {
            assert_eq!(t.inputs, files);
        }
    }
    // A folder expands in sorted order.
    let out = dir.path().join("folder.jsonl");
    ok(&biofm(&["embed", "image", "-q", "--model", tiny().to_str().unwrap(), "--out", out.to_str().unwrap(), samples().to_str().unwrap()]));
    let t = biofm_formats::EmbeddingTable::read(&out).unwrap();
    let names: Vec<String> = t.inputs.iter().map(|p| Path::new(p).file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["cell.png", "ihc.png", "microaneurysms.png", "retina.jpg"]);
}

#[test]
fn embed_text_matches_open_clip_and_reports_truncation() {
    let (r, meta) = reference();
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = meta["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    // Blank lines are skipped by --file, so the empty prompt is compared separately.
    let nonblank: Vec<(usize, &String)> = prompts.iter().enumerate().filter(|(_, p)| !p.trim().is_empty()).collect();
    let file = dir.path().join("prompts.txt");
    std::fs::write(&file, nonblank.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>().join("\n")).unwrap();
    let out = dir.path().join("t.safetensors");
    let o = biofm(&["embed", "text", "--model", tiny().to_str().unwrap(), "--normalize", "--out", out.to_str().unwrap(), "--file", file.to_str().unwrap()]);
    ok(&o);
    assert!(stderr(&o).contains("truncated"), "no truncation note: {}", stderr(&o));
    let t = biofm_formats::EmbeddingTable::read(&out).unwrap();
    let want = r["text_embeddings"].to_vec2::<f32>().unwrap();
    for (row, (i, _)) in nonblank.iter().enumerate() {
        let d = max_abs(t.row(row), &want[*i]);
        assert!(d < 1e-4, "prompt {i}: {d}");
    }
    // An empty string is a valid text ([CLS] [SEP]) when given directly.
    let out2 = dir.path().join("e.jsonl");
    ok(&biofm(&["embed", "text", "-q", "--model", tiny().to_str().unwrap(), "--normalize", "--out", out2.to_str().unwrap(), "--text", ""]));
    let e = biofm_formats::EmbeddingTable::read(&out2).unwrap();
    let empty_idx = prompts.iter().position(|p| p.is_empty()).unwrap();
    assert!(max_abs(e.row(0), &want[empty_idx]) < 1e-4);
}

#[test]
fn zero_shot_json_matches_open_clip() {
    let (r, meta) = reference();
    let labels: Vec<String> = meta["labels"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    let templates: Vec<String> = meta["templates"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    let mut args: Vec<String> = vec!["zero-shot".into(), "-q".into(), "--model".into(), tiny().display().to_string(), "--format".into(), "json".into(), "--labels".into()];
    args.extend(labels.iter().cloned());
    args.push("--template".into());
    args.extend(templates.iter().cloned());
    args.push("--".into());
    args.extend(meta["images"].as_array().unwrap().iter().map(|n| samples().join(n.as_str().unwrap()).display().to_string()));
    let out = ok(&biofm(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let want = r["zero_shot_probs"].to_vec2::<f32>().unwrap();
    for (i, p) in v["predictions"].as_array().unwrap().iter().enumerate() {
        let got: Vec<f32> = p["probabilities"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert!(max_abs(&got, &want[i]) < 1e-4);
        assert_eq!(p["label"].as_str().unwrap(), meta["zero_shot_top1"][i].as_str().unwrap());
    }
    // The table form prints every image.
    let table = ok(&biofm(&["zero-shot", "-q", "--model", tiny().to_str().unwrap(), "--labels", "a", "b", "--", samples().to_str().unwrap()]));
    assert!(table.contains("retina.jpg") && table.contains("ihc.png"), "{table}");
}

#[test]
fn retrieve_both_directions() {
    let out = ok(&biofm(&["retrieve", "-q", "--model", tiny().to_str().unwrap(), "--images", samples().to_str().unwrap(),
        "--text", "fundus photograph", "--top-k", "2", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits = v["queries"][0]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits[0]["score"].as_f64().unwrap() >= hits[1]["score"].as_f64().unwrap());
    let out = ok(&biofm(&["retrieve", "-q", "--model", tiny().to_str().unwrap(), "--images", samples().to_str().unwrap(),
        "--text", "a", "b", "c", "--query-images", "--top-k", "5", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["queries"].as_array().unwrap().len(), 4);
    assert_eq!(v["queries"][0]["hits"].as_array().unwrap().len(), 3, "top-k is capped by the candidates");
}

/// `hf:ORG/NAME` resolves offline from an HF cache laid out as huggingface_hub writes it.
#[test]
fn hf_model_resolves_offline_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--biofm-test--tiny-biomedclip");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snap = repo.join("snapshots").join(commit);
    let mut files = Vec::new();
    collect(&tiny(), &tiny(), &mut files);
    for rel in files {
        let bytes = std::fs::read(tiny().join(&rel)).unwrap();
        let blob = repo.join("blobs").join(format!("{:x}", fxhash(&bytes)));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, &bytes).unwrap();
        let link = snap.join(&rel);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let depth = rel.components().count() + 1;
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(blob.file_name().unwrap());
        std::os::unix::fs::symlink(target, &link).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy");
    let env = [("HF_HUB_CACHE", cache.path().to_str().unwrap())];
    ok(&biofm_env(&["embed", "image", "-q", "--model", "hf:biofm-test/tiny-biomedclip", "--out", out.to_str().unwrap(), samples().join("ihc.png").to_str().unwrap()], &env));
    let local = dir.path().join("l.npy");
    ok(&biofm(&["embed", "image", "-q", "--model", tiny().to_str().unwrap(), "--out", local.to_str().unwrap(), samples().join("ihc.png").to_str().unwrap()]));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&local).unwrap());
    // A revision that is not in the cache fails offline with a message naming the cache.
    let o = biofm_env(&["embed", "image", "--model", "hf:biofm-test/tiny-biomedclip@v2", "--out", out.to_str().unwrap(), samples().join("ihc.png").to_str().unwrap()], &env);
    fails_with(&o, "v2");
    let o = biofm_env(&["embed", "image", "--model", "hf:biofm-test/other", "--out", out.to_str().unwrap(), samples().join("ihc.png").to_str().unwrap()], &env);
    fails_with(&o, "biofm-test/other");
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(base, &p, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().to_path_buf());
        }
    }
}

fn fxhash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x100000001b3))
}

#[test]
fn models_gallery_lists_every_seed_model() {
    let out = ok(&biofm(&["models"]));
    for name in ["biomedclip", "conch", "uni", "uni2-h", "titan", "medimageinsight", "omiclip", "scgpt", "sleepfm", "biomedparse", "retfound", "decipher-mr"] {
        assert!(out.contains(name), "{name} missing from the gallery");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&biofm(&["models", "--format", "json"]))).unwrap();
    assert!(json.as_array().unwrap().iter().any(|e| e["name"] == "biomedclip" && e["status"] == "supported"));
}

#[test]
fn demo_runs_on_bundled_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&biofm(&["demo", "-q", "--out-dir", dir.path().to_str().unwrap()]));
    assert!(out.contains("RANDOM"), "the demo must say its weights are random");
    assert!(out.contains("--model biomedclip"), "the demo must show how to use real weights");
    assert!(dir.path().join("image_embeddings.npy").is_file());
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_images_fail_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npy");
    let m = tiny();
    let run = |img: &Path| biofm(&["embed", "image", "--model", m.to_str().unwrap(), "--out", out.to_str().unwrap(), img.to_str().unwrap()]);
    // Truncated JPEG and PNG.
    for name in ["retina.jpg", "ihc.png"] {
        let bytes = std::fs::read(samples().join(name)).unwrap();
        let p = dir.path().join(format!("cut-{name}"));
        std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
        fails_with(&run(&p), &format!("cut-{name}"));
    }
    // Corrupt bytes in the middle of a PNG (CRC / zlib errors).
    let mut bytes = std::fs::read(samples().join("ihc.png")).unwrap();
    for b in &mut bytes[2000..2100] {
        *b ^= 0x5a;
    }
    let p = dir.path().join("corrupt.png");
    std::fs::write(&p, &bytes).unwrap();
    fails_with(&run(&p), "corrupt.png");
    // Unknown format.
    let p = dir.path().join("notes.png");
    std::fs::write(&p, "this is not an image").unwrap();
    fails_with(&run(&p), "notes.png");
    // Missing file, empty folder.
    fails_with(&run(&dir.path().join("missing.png")), "does not exist");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails_with(&run(&empty), "contains no images");
    assert!(!out.exists(), "nothing may be written when the run fails");
}

#[test]
fn bad_models_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npy");
    let img = samples().join("ihc.png");
    let run = |m: &str| biofm(&["embed", "image", "--model", m, "--out", out.to_str().unwrap(), img.to_str().unwrap()]);
    // A folder without any config.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    fails_with(&run(bare.to_str().unwrap()), "has no model configuration");
    // Config and weights that disagree: the tiny config with a wider embed_dim.
    let bad = dir.path().join("disagree");
    copy_dir(&tiny(), &bad);
    let cfg = std::fs::read_to_string(bad.join("open_clip_config.json")).unwrap().replace("\"embed_dim\": 16", "\"embed_dim\": 24");
    std::fs::write(bad.join("open_clip_config.json"), cfg).unwrap();
    let o = run(bad.to_str().unwrap());
    fails_with(&o, "visual.head.proj.weight");
    assert!(stderr(&o).contains("[24, 32]") && stderr(&o).contains("[16, 32]"), "both shapes must be named: {}", stderr(&o));
    // A truncated checkpoint.
    let cut = dir.path().join("cut");
    copy_dir(&tiny(), &cut);
    let ck = cut.join("open_clip_pytorch_model.bin");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&run(cut.to_str().unwrap()), "open_clip_pytorch_model.bin");
    // A path that does not exist, a malformed hub reference, an unavailable registry model.
    fails_with(&run(dir.path().join("nope").to_str().unwrap()), "nope");
    fails_with(&run("hf:not a repo"), "hf:");
    fails_with(&run("conch"), "conch");
}

#[test]
fn bad_arguments_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let m = tiny();
    let img = samples().join("ihc.png");
    // Empty label list (a labels file with only blank lines).
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "\n  \n").unwrap();
    fails_with(&biofm(&["zero-shot", "--model", m.to_str().unwrap(), "--labels-file", labels.to_str().unwrap(), img.to_str().unwrap()]), "no text lines");
    // A template without a placeholder.
    fails_with(&biofm(&["zero-shot", "--model", m.to_str().unwrap(), "--labels", "a", "--template", "a photo", "--", img.to_str().unwrap()]), "placeholder");
    // Unwritable output paths: missing directory, a directory, an unknown extension.
    let run_out = |o: &Path| biofm(&["embed", "image", "--model", m.to_str().unwrap(), "--out", o.to_str().unwrap(), img.to_str().unwrap()]);
    fails_with(&run_out(&dir.path().join("no/such/dir/o.npy")), "does not exist");
    fails_with(&run_out(dir.path()), "is a directory");
    fails_with(&run_out(&dir.path().join("o.csv")), "extension");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"x").is_err() {
        // Only meaningful when not running as root.
        fails_with(&run_out(&ro.join("o.npy")), "not writable");
    }
    // A text model asked to embed images, an image-text task on a text model.
    let minilm = biofm_testdata::downloaded_dir_of("all-MiniLM-L6-v2/model.safetensors");
    fails_with(&biofm(&["embed", "image", "--model", minilm.to_str().unwrap(), "--out", dir.path().join("x.npy").to_str().unwrap(), img.to_str().unwrap()]), "no image encoder");
    fails_with(&biofm(&["zero-shot", "--model", minilm.to_str().unwrap(), "--labels", "a", "--", img.to_str().unwrap()]), "image");
    // Non-UTF-8 text file.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, [b'o', b'k', b'\n', 0xff, 0xfe]).unwrap();
    fails_with(&biofm(&["embed", "text", "--model", m.to_str().unwrap(), "--out", dir.path().join("t.npy").to_str().unwrap(), "--file", bad.to_str().unwrap()]), "not UTF-8");
}

#[test]
fn real_minilm_through_the_cli() {
    let minilm = biofm_testdata::downloaded_dir_of("all-MiniLM-L6-v2/model.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    ok(&biofm(&["embed", "text", "-q", "--model", minilm.to_str().unwrap(), "--out", out.to_str().unwrap(), "--text", "Colorectal adenocarcinoma with FHL2 expression.", "Normal fundus."]));
    let t = biofm_formats::EmbeddingTable::read(&out).unwrap();
    assert_eq!((t.len(), t.dim), (2, 384));
    for i in 0..2 {
        let n: f32 = t.row(i).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "all-MiniLM-L6-v2 normalises its embeddings");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
