#!/usr/bin/env python3
"""Builds BiomedCLIP-architecture open_clip models with random non-trivial weights and
records open_clip's outputs on real images and prompts.

Two sizes:

* tiny (default): ViT (width 32, depth 2, patch 16, 224 px) + BERT (hidden 32, 2 layers,
  reduced uncased WordPiece vocab). Written to ``data/models/tiny-biomedclip/`` in the
  exact open_clip hub layout (``open_clip_config.json``, ``open_clip_pytorch_model.bin``,
  tokenizer files) -- it is the demo model and the parity fixture -- plus reference
  outputs in ``crates/biofm-models/tests/fixtures/open_clip/``.
* full (``--full OUT``): the real BiomedCLIP configuration (``vit_base_patch16_224`` +
  BiomedBERT-base, 256-token context, MLP text projection) with random weights, for
  benchmarks and the full-size parity check. BiomedBERT's own vocabulary is not
  reachable offline, so the tokenizer is the bert-base-uncased vocabulary of
  all-MiniLM-L6-v2 (same size, 30522). Not committed (784 MB).

The towers are referenced the way open_clip and timm resolve them:
``timm_model_name: "local-dir:timm_tower"`` (timm's local config folder) and
``hf_model_name: "text_tower"`` (a local transformers config folder) for the tiny model;
the real names for the full one, served from a throw-away offline HF cache.

Usage (from the repository root):
    tools/reference/.venv/bin/python tools/reference/gen_openclip_fixtures.py
    tools/reference/.venv/bin/python tools/reference/gen_openclip_fixtures.py --full .cache/biomedclip-random
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# huggingface_hub reads its cache location at import time, so the offline cache that
# serves the full-size model's BiomedBERT config must be chosen before the imports.
if "--full" in sys.argv[1:-1]:
    _full_out = Path(sys.argv[sys.argv.index("--full") + 1]).resolve()
    os.environ["HF_HUB_CACHE"] = str(_full_out.parent / (_full_out.name + ".hf-cache"))
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import open_clip  # noqa: E402
import timm  # noqa: E402
import transformers  # noqa: E402

MINILM = Path(os.environ.get("BIOFM_TEST_DATA", ROOT / "data" / "downloads")) / "all-MiniLM-L6-v2"
SAMPLES = ["ihc.png", "retina.jpg", "microaneurysms.png", "cell.png"]
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]

# Real biomedical phrases; unicode and HTML entities exercise the text cleaning.
PROMPTS = [
    "adenocarcinoma histopathology",
    "immunohistochemistry staining of colonic glands",
    "a fundus photograph of a normal left eye",
    "Chest X-ray showing bilateral pleural effusion",
    "Hematoxylin & eosin stain, 40× magnification, scale bar 50 µm",
    "“Glioblastoma” on T1-weighted MRI with ≥2 cm enhancing lesion",
    "phase-contrast microscopy of a single cell in saline",
    "retinal microaneurysms in diabetic retinopathy",
    "tumor &amp; stroma",
    "",
]
LONG_PROMPT = " ".join(
    ["Immunohistochemical expression of FHL2 was assessed in colorectal adenocarcinoma and adjacent normal mucosa."] * 30
)
LABELS = [
    "adenocarcinoma histopathology",
    "immunohistochemistry",
    "fundus photograph",
    "brain MRI",
    "microscopy of a cell",
]
TEMPLATES = ["this is a photo of {}", "a biomedical image of {}"]


def perturb_(model, generator):
    """timm/HF initialise biases to 0 and norm weights to 1; nudge every bias, norm and
    LayerScale parameter so that a dropped bias or a wrong epsilon shows up."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            is_norm = any(s in name.lower() for s in ("norm", "layernorm", "ln_"))
            if leaf == "bias" or is_norm or leaf == "gamma" or name.endswith("cls_token"):
                p.add_(torch.randn(p.shape, generator=generator) * 0.02)


def reduced_vocab(full_vocab_path: Path, n_words: int):
    """Specials, every single character and '##' character piece, and the most frequent
    whole words of the bert-base-uncased vocabulary (kept in original order)."""
    tokens = full_vocab_path.read_text(encoding="utf-8").splitlines()
    keep = []
    words = 0
    for i, t in enumerate(tokens):
        if t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
            keep.append(t)
        elif t.startswith("[unused"):
            continue
        elif len(t) == 1 or (t.startswith("##") and len(t) == 3):
            keep.append(t)
        elif i >= 1996 and words < n_words:
            keep.append(t)
            words += 1
    return keep


def write_tokenizer(out: Path, vocab_tokens):
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(vocab_tokens) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary itself (`vocab=`), not a file path.
    tok = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab_tokens)}, do_lower_case=True)
    tok.model_max_length = 512
    tok.save_pretrained(str(out))
    # Keep the hub layout small and canonical: tokenizer.json + vocab.txt + configs.
    return tok


def state_dict_with_stale_keys(model, max_pos):
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # Checkpoints saved with transformers < 4.31 (like BiomedCLIP's) carry this buffer.
    sd["text.transformer.embeddings.position_ids"] = torch.arange(max_pos).unsqueeze(0)
    return sd


def build_tiny(out: Path):
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "timm_tower").mkdir()
    (out / "text_tower").mkdir()
    vocab = reduced_vocab(MINILM / "vocab.txt", 2500)
    write_tokenizer(out, vocab)
    timm_cfg = {
        "architecture": "vit_base_patch16_224",
        "num_classes": 0,
        "model_args": {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 224},
        "pretrained_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD, "interpolation": "bicubic",
                           "crop_pct": 1.0, "input_size": [3, 224, 224]},
    }
    (out / "timm_tower" / "config.json").write_text(json.dumps(timm_cfg, indent=2) + "\n")
    bert_cfg = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0,
    )
    bert_cfg.save_pretrained(str(out / "text_tower"))
    oc_cfg = {
        "model_cfg": {
            "embed_dim": 16,
            "vision_cfg": {"timm_model_name": "local-dir:timm_tower", "timm_model_pretrained": False,
                           "timm_pool": "", "timm_proj": "linear", "image_size": 224},
            "text_cfg": {"hf_model_name": "text_tower", "hf_tokenizer_name": "text_tower",
                         "hf_proj_type": "mlp", "hf_pooler_type": "cls_last_hidden_state_pooler",
                         "context_length": 256},
        },
        "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD},
    }
    (out / "open_clip_config.json").write_text(json.dumps(oc_cfg, indent=2) + "\n")
    return 512


def build_full(out: Path, cache: Path):
    """Real BiomedCLIP config; BiomedBERT config + a stand-in tokenizer served offline."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    name = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    commit = "0" * 40
    snap = cache / ("models--" + name.replace("/", "--")) / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text(commit)
    bert_cfg = json.loads((ROOT / "crates/biofm-models/src/text_configs/biomedbert-base-uncased.json").read_text()) \
        if (ROOT / "crates/biofm-models/src/text_configs/biomedbert-base-uncased.json").exists() else None
    if bert_cfg is None:
        bert_cfg = transformers.BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                                           num_attention_heads=12, intermediate_size=3072,
                                           max_position_embeddings=512, type_vocab_size=2,
                                           layer_norm_eps=1e-12, pad_token_id=0).to_dict()
    (snap / "config.json").write_text(json.dumps(bert_cfg, indent=2))
    vocab = (MINILM / "vocab.txt").read_text(encoding="utf-8").splitlines()
    write_tokenizer(out, vocab)
    for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (out / f).exists():
            shutil.copy(out / f, snap / f)
    oc_cfg = {
        "model_cfg": {
            "embed_dim": 512,
            "vision_cfg": {"timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": False,
                           "timm_pool": "", "timm_proj": "linear", "image_size": 224},
            "text_cfg": {"hf_model_name": name, "hf_tokenizer_name": name, "hf_proj_type": "mlp",
                         "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 256},
        },
        "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD},
    }
    (out / "open_clip_config.json").write_text(json.dumps(oc_cfg, indent=2) + "\n")
    return 512


def run_reference(model_dir: Path, ref_out: Path, seed: int, full: bool):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    cwd = os.getcwd()
    os.chdir(model_dir)  # relative tower folders resolve against the model directory
    try:
        # No checkpoint yet: build randomly initialised towers (no hub download).
        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{model_dir}", pretrained_hf=False)
        tokenizer = open_clip.get_tokenizer(f"local-dir:{model_dir}")
    finally:
        os.chdir(cwd)
    model.eval()
    perturb_(model, gen)
    max_pos = model.text.transformer.config.max_position_embeddings
    sd = state_dict_with_stale_keys(model, max_pos)
    torch.save(sd, model_dir / "open_clip_pytorch_model.bin")

    # Reload from the written checkpoint exactly as a user would, to be sure the
    # references come from the published layout.
    os.chdir(model_dir)
    try:
        model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{model_dir}")
    finally:
        os.chdir(cwd)
    model.eval()

    out = {}
    meta = {
        "model_dir": str(model_dir.relative_to(ROOT)) if model_dir.is_relative_to(ROOT) else model_dir.name,
        "versions": {"torch": torch.__version__, "open_clip": open_clip.__version__, "timm": timm.__version__,
                     "transformers": transformers.__version__, "pillow": Image.__version__},
        "images": SAMPLES,
        "prompts": PROMPTS + [LONG_PROMPT],
        "labels": LABELS,
        "templates": TEMPLATES,
    }
    with torch.inference_mode():
        pix = torch.stack([preprocess(Image.open(ROOT / "data" / "samples" / s)) for s in SAMPLES])
        img = model.encode_image(pix)
        out["image_features"] = img
        out["image_embeddings"] = torch.nn.functional.normalize(img, dim=-1)
        texts = PROMPTS + [LONG_PROMPT]
        ids = tokenizer(texts)
        out["token_ids"] = ids.to(torch.int64)
        txt = model.encode_text(ids)
        out["text_features"] = txt
        out["text_embeddings"] = torch.nn.functional.normalize(txt, dim=-1)
        classifier = open_clip.build_zero_shot_classifier(
            model, tokenizer=tokenizer, classnames=LABELS, templates=TEMPLATES,
            num_classes_per_batch=10, device="cpu", use_tqdm=False)
        out["zero_shot_classifier"] = classifier
        logits = model.logit_scale.exp() * out["image_embeddings"] @ classifier
        out["zero_shot_logits"] = logits
        out["zero_shot_probs"] = logits.softmax(dim=-1)
        out["logit_scale"] = model.logit_scale.detach().reshape(1)
        meta["zero_shot_top1"] = [LABELS[i] for i in logits.argmax(-1).tolist()]
        meta["cleaned_prompts"] = [open_clip.tokenizer._clean_whitespace(t) for t in texts]
    ref_out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().float() if v.is_floating_point() else v.contiguous()
               for k, v in out.items()}, str(ref_out.with_suffix(".safetensors")))
    ref_out.with_suffix(".json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {model_dir} and {ref_out.with_suffix('.safetensors')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", type=Path, help="write the full-size random model here (not committed)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (MINILM / "vocab.txt").exists():
        sys.exit("all-MiniLM-L6-v2 not found: run scripts/fetch-test-data.sh first")
    torch.manual_seed(args.seed)
    if args.full:
        out = args.full.resolve()
        cache = Path(os.environ["HF_HUB_CACHE"])
        shutil.rmtree(cache, ignore_errors=True)
        build_full(out, cache)
        run_reference(out, out / "reference", args.seed, full=True)
    else:
        out = ROOT / "data" / "models" / "tiny-biomedclip"
        build_tiny(out)
        run_reference(out, ROOT / "crates/biofm-models/tests/fixtures/open_clip/tiny_biomedclip_reference", args.seed, full=False)


if __name__ == "__main__":
    main()
