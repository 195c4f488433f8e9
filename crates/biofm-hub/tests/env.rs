//! `HubConfig::from_vars` against the settings huggingface_hub 2.4.0 resolved for the same
//! environments (tests/fixtures/env_cases.json, made by gen_hub_fixtures.py).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use biofm_hub::{Error, HubConfig};

#[test]
fn environment_resolves_like_huggingface_hub() {
    let fixture = common::fixture("env_cases.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "fixture has only {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let tmp_str = tmp.path().to_str().unwrap();
        let sub = |s: &str| s.replace("<TMP>", tmp_str);
        for (path, text) in case["files"].as_object().unwrap() {
            let path = PathBuf::from(sub(path));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text.as_str().unwrap()).unwrap();
        }
        // Every case ran with HOME set to this unless it sets HOME itself.
        let home = sub(fixture["home"].as_str().unwrap());
        let mut vars: HashMap<String, String> = HashMap::from([("HOME".to_owned(), home)]);
        for (k, v) in case["env"].as_object().unwrap() {
            vars.insert(k.clone(), sub(v.as_str().unwrap()));
        }
        let config = HubConfig::from_vars(|k| vars.get(k).cloned())
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let want = &case["expected"];
        assert_eq!(
            config.cache_dir,
            PathBuf::from(sub(want["cache_dir"].as_str().unwrap())),
            "{name}: cache_dir"
        );
        assert_eq!(
            config.endpoint,
            want["endpoint"].as_str().unwrap(),
            "{name}: endpoint"
        );
        assert_eq!(
            config.token.as_deref(),
            want["token"].as_str(),
            "{name}: token"
        );
        assert_eq!(
            config.offline,
            want["offline"].as_bool().unwrap(),
            "{name}: offline"
        );
        let secs = |key: &str| Duration::from_secs(want[key].as_u64().unwrap());
        assert_eq!(
            config.etag_timeout,
            secs("etag_timeout"),
            "{name}: etag_timeout"
        );
        assert_eq!(
            config.download_timeout,
            secs("download_timeout"),
            "{name}: download_timeout"
        );
    }
}

fn config_error(vars: &[(&str, &str)]) -> Error {
    let vars: HashMap<&str, &str> = vars.iter().copied().collect();
    HubConfig::from_vars(|k| vars.get(k).map(|v| v.to_string())).expect_err("expected an error")
}

#[test]
fn unusable_values_are_errors_naming_the_variable() {
    let err = config_error(&[("HOME", "h"), ("HF_HUB_ETAG_TIMEOUT", "soon")]);
    assert!(
        err.to_string().contains("HF_HUB_ETAG_TIMEOUT=\"soon\""),
        "{err}"
    );

    let err = config_error(&[("HOME", "h"), ("HF_ENDPOINT", "huggingface.co")]);
    assert!(
        err.to_string().contains("HF_ENDPOINT") && err.to_string().contains("http"),
        "{err}"
    );

    let err = config_error(&[]);
    assert!(
        err.to_string().contains("HOME") && err.to_string().contains("HF_HUB_CACHE"),
        "{err}"
    );
}

#[test]
fn token_file_that_is_a_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("token")).unwrap();
    let home = tmp.path().to_str().unwrap().to_owned();
    let err = HubConfig::from_vars(|k| (k == "HF_HOME").then(|| home.clone())).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("token"),
        "{err}"
    );
}

#[test]
fn debug_output_hides_the_token() {
    let mut config = HubConfig::new("cache");
    config.token = Some("hf_secret_value".into());
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("hf_secret_value") && shown.contains("redacted"),
        "{shown}"
    );
}
