//! `--model` parsing: hub references, local paths, the registry hook, malformed input.

use std::cell::Cell;
use std::path::PathBuf;

use biofm_hub::{Error, HubRepo, ModelRef};

fn hub(input: &str) -> HubRepo {
    match ModelRef::parse(input) {
        Ok(ModelRef::Hub(repo)) => repo,
        other => panic!("{input}: expected a hub reference, got {other:?}"),
    }
}

#[test]
fn hub_references_parse_with_default_and_explicit_revisions() {
    let main = hub("hf:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224");
    assert_eq!(
        main.repo_id(),
        "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    );
    assert_eq!(main.revision(), "main");
    assert!(!main.revision_is_commit());
    assert_eq!(
        main.to_string(),
        "hf:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    );

    let tag = hub("hf:MahmoodLab/UNI@v1.0");
    assert_eq!((tag.repo_id(), tag.revision()), ("MahmoodLab/UNI", "v1.0"));
    assert_eq!(tag.to_string(), "hf:MahmoodLab/UNI@v1.0");

    let pr = hub("hf:org/name@refs/pr/1");
    assert_eq!(pr.revision(), "refs/pr/1");

    let commit = "0123456789abcdef0123456789abcdef01234567";
    let pinned = hub(&format!("hf:org/name@{commit}"));
    assert_eq!(pinned.revision(), commit);
    assert!(pinned.revision_is_commit());
    // Upper-case hex or a short hash is a ref name to huggingface_hub, not a commit.
    assert!(!hub("hf:org/name@0123456789ABCDEF0123456789ABCDEF01234567").revision_is_commit());
    assert!(!hub("hf:org/name@0123abc").revision_is_commit());
}

#[test]
fn open_clip_hf_hub_prefix_is_an_alias() {
    assert_eq!(hub("hf-hub:org/name@dev"), hub("hf:org/name@dev"));
    assert_eq!(
        HubRepo::new("org/name", Some("dev")).unwrap(),
        hub("hf-hub:org/name@dev")
    );
}

#[test]
fn anything_else_is_a_local_path() {
    for input in [
        "models/uni",
        "./uni",
        "uni",
        "../weights/model dir",
        "hf_models/x",
    ] {
        assert_eq!(
            ModelRef::parse(input).unwrap(),
            ModelRef::Local(PathBuf::from(input)),
            "{input}"
        );
    }
}

#[test]
fn malformed_hub_references_are_rejected_with_the_accepted_forms() {
    let cases = [
        ("", "empty"),
        ("hf:", "expected ORG/NAME"),
        ("hf:biomedclip", "expected ORG/NAME"),
        ("hf:org/", "is empty"),
        ("hf:/name", "is empty"),
        ("hf:a/b/c", "exactly ORG/NAME"),
        ("hf:org/na me", "may only contain"),
        ("hf:org/-name", "cannot start or end"),
        ("hf:org/name.", "cannot start or end"),
        ("hf:org/na--me", "`--` or `..`"),
        ("hf:org/na..me", "`--` or `..`"),
        ("hf:org/name.git", "`.git`"),
        ("hf:org/name@", "revision `` is empty"),
        ("hf:org/name@../../etc", "starting with `.`"),
        ("hf:org/name@a//b", "empty path segment"),
        ("hf:org/name@my branch", "not allowed"),
        ("hf://org/name", "without `//`"),
        (&format!("hf:org/{}", "n".repeat(97)), "longer than 96"),
    ];
    for (input, reason) in cases {
        let err = ModelRef::parse(input).expect_err(input);
        assert!(matches!(err, Error::InvalidRef { .. }), "{input}: {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("`{input}`")),
            "{input}: message does not quote the input: {msg}"
        );
        assert!(
            msg.contains(reason),
            "{input}: expected `{reason}` in: {msg}"
        );
        for form in ["hf:ORG/NAME@REV", "hf-hub:ORG/NAME[@REV]", "DIR"] {
            assert!(
                msg.contains(form),
                "{input}: accepted form {form} missing from: {msg}"
            );
        }
    }
}

#[test]
fn registry_hook_resolves_bare_names_only() {
    let asked = Cell::new(0);
    let registry = |name: &str| {
        asked.set(asked.get() + 1);
        (name == "biomedclip").then(|| "hf-hub:microsoft/BiomedCLIP@main".to_owned())
    };
    assert_eq!(
        ModelRef::parse_with_registry("biomedclip", registry).unwrap(),
        ModelRef::Hub(HubRepo::new("microsoft/BiomedCLIP", Some("main")).unwrap())
    );
    assert_eq!(asked.get(), 1);
    // Unknown bare names fall back to a local path.
    assert_eq!(
        ModelRef::parse_with_registry("my-model", registry).unwrap(),
        ModelRef::Local(PathBuf::from("my-model"))
    );
    assert_eq!(asked.get(), 2);
    // Paths and hub references never reach the registry.
    for input in ["./biomedclip", "dir/biomedclip", "hf:org/biomedclip"] {
        ModelRef::parse_with_registry(input, registry).unwrap();
    }
    assert_eq!(asked.get(), 2);
    // A registry entry that is itself malformed is reported as such.
    let err = ModelRef::parse_with_registry("broken", |_| Some("hf:nope".to_owned())).unwrap_err();
    assert!(err.to_string().contains("`hf:nope`"), "{err}");
}
