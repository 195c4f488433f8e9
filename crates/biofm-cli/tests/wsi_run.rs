//! `biofm wsi run` as users and schedulers run it: a folder of slides, broken ones
//! among them, a run killed mid-slide and restarted, two processes sharing one job
//! folder. The encoder is a tiny random-weight model with UNI's contract (the same
//! fixture the feature parity test uses).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn slides() -> PathBuf {
    biofm_testdata::slides()
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../biofm-pipelines/tests/fixtures/wsi_features/model")
}

/// A slide folder with `n` copies of the 3000 x 2200 test slide under different names.
fn copies(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::os::unix::fs::symlink(slides().join("tiled_jpeg.tif"), dir.join(format!("slide_{i}.tif"))).unwrap();
    }
}

fn run_cmd(slides: &Path, job: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_biofm"));
    c.args(["--threads", "1", "wsi", "run", "--encoder", "uni", "--weights"])
        .arg(model())
        .arg("--slides")
        .arg(slides)
        .arg("--job")
        .arg(job)
        .args(extra);
    c
}

fn features_dir(job: &Path) -> PathBuf {
    job.join("20x_256px_0px_overlap/features_uni")
}

/// Names of the finished feature files, and every other entry of the folder that is not
/// bookkeeping (temporary files would show up here).
fn outputs(job: &Path) -> (Vec<String>, Vec<String>) {
    let mut done = Vec::new();
    let mut other = Vec::new();
    for e in std::fs::read_dir(features_dir(job)).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if n.ends_with(".h5") && !n.starts_with('.') {
            done.push(n);
        } else if n != "_status" && n != "_locks" {
            other.push(n);
        }
    }
    done.sort();
    (done, other)
}

fn locks(job: &Path) -> Vec<String> {
    std::fs::read_dir(features_dir(job).join("_locks"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// `state -> slides` from the per-slide lines a run prints.
fn lines(o: &Output) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let mut w = l.split_whitespace();
        if let (Some(state), Some(slide)) = (w.next(), w.next()) {
            m.entry(state.to_string()).or_default().push(slide.to_string());
        }
    }
    m
}

fn read(path: &Path) -> (Vec<f32>, Vec<[i64; 2]>) {
    let (f, _, c, _) = biofm_formats::features::read_features(path).unwrap();
    (f, c)
}

#[test]
fn broken_slides_are_reported_and_the_rest_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("slides");
    std::fs::create_dir_all(&s).unwrap();
    for n in ["aperio.svs", "truncated.svs", "no_mpp.tif", "corrupt_tile.tif", "bigtiff_lzw.tif"] {
        std::os::unix::fs::symlink(slides().join(n), s.join(n)).unwrap();
    }
    std::fs::write(s.join("notes.txt"), "not a slide").unwrap();
    let job = dir.path().join("job");
    let o = run_cmd(&s, &job, &["--continue-on-error", "-q"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "failed slides must give a non-zero exit status");
    assert!(err.contains("3 slide(s) failed") && !err.contains("panicked"), "{err}");
    let by_state = lines(&o);
    assert_eq!(by_state["done"], vec!["aperio", "bigtiff_lzw"]);
    assert_eq!(by_state["failed"], vec!["corrupt_tile", "no_mpp", "truncated"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("--mpp"), "the missing-mpp failure says how to fix it: {stdout}");
    let (done, other) = outputs(&job);
    assert_eq!(done, vec!["aperio.h5", "bigtiff_lzw.h5"]);
    assert!(other.is_empty(), "{other:?}");
    // `wsi status` summarises what every process recorded.
    let o = Command::new(env!("CARGO_BIN_EXE_biofm")).args(["wsi", "status"]).arg(&job).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("2 done, 3 failed") && out.contains("no_mpp") && out.contains("--overrides"), "{out}");
    // Without the flag, the first failure stops the job with a hint.
    let job2 = dir.path().join("job2");
    let o = run_cmd(&s, &job2, &["-q"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--continue-on-error"), "{err}");
    // Rerun with an mpp for the slide that has none (CSV overrides): only the
    // unfinished slides are tried again.
    let csv = dir.path().join("mpp.csv");
    std::fs::write(&csv, "slide,mpp\nno_mpp.tif,0.5\n").unwrap();
    let o = run_cmd(&s, &job, &["--continue-on-error", "-q", "--overrides"]).arg(&csv).output().unwrap();
    let by_state = lines(&o);
    assert_eq!(by_state["done"], vec!["no_mpp"]);
    assert_eq!(by_state["skipped"], vec!["aperio", "bigtiff_lzw"]);
    assert_eq!(by_state["failed"].len(), 2);
}

#[test]
fn a_killed_run_resumes_with_one_correct_file_per_slide() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("slides");
    copies(&s, 6);
    // Reference: one uninterrupted run.
    let clean = dir.path().join("clean");
    let o = run_cmd(&s, &clean, &["-q", "--batch-size", "4"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Kill a run while it holds a slide's lock, after at least one slide is done.
    let job = dir.path().join("job");
    let mut child = run_cmd(&s, &job, &["-q", "--batch-size", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    let mut caught = false;
    while t0.elapsed() < Duration::from_secs(120) {
        if features_dir(&job).is_dir() && !outputs(&job).0.is_empty() && !locks(&job).is_empty() {
            child.kill().unwrap();
            caught = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait().unwrap();
    assert!(caught, "the run finished before it could be interrupted");
    let (done_before, _) = outputs(&job);
    assert!(done_before.len() < 6, "{done_before:?}");
    assert_eq!(locks(&job).len(), 1, "the killed process's lock stays behind");
    let o = Command::new(env!("CARGO_BIN_EXE_biofm")).args(["wsi", "status"]).arg(&job).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("{} done, 1 in progress", done_before.len())), "{out}");
    // Restart: the dead process's lock is taken over, the rest is finished.
    let o = run_cmd(&s, &job, &[]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("stale lock"), "{err}");
    let by_state = lines(&o);
    assert_eq!(by_state["skipped"].len(), done_before.len());
    assert_eq!(by_state["done"].len() + by_state["skipped"].len(), 6);
    let (done, other) = outputs(&job);
    assert_eq!(done.len(), 6);
    assert!(other.is_empty(), "left behind: {other:?}");
    assert!(locks(&job).is_empty());
    for name in &done {
        let (f, c) = read(&features_dir(&job).join(name));
        let (rf, rc) = read(&features_dir(&clean).join(name));
        assert_eq!(c, rc, "{name}");
        let err = f.iter().zip(&rf).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(f.len() == rf.len() && err < 1e-5, "{name}: {err}");
    }
}

#[test]
fn two_processes_share_a_job_and_do_each_slide_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("slides");
    copies(&s, 8);
    let job = dir.path().join("job");
    let a = run_cmd(&s, &job, &["-q", "--batch-size", "2"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let b = run_cmd(&s, &job, &["-q", "--batch-size", "2"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(oa.status.success() && ob.status.success(), "{}{}", String::from_utf8_lossy(&oa.stderr), String::from_utf8_lossy(&ob.stderr));
    let (la, lb) = (lines(&oa), lines(&ob));
    let mut all_done: Vec<String> = la.get("done").cloned().unwrap_or_default();
    all_done.extend(lb.get("done").cloned().unwrap_or_default());
    all_done.sort();
    let want: Vec<String> = (0..8).map(|i| format!("slide_{i}")).collect();
    assert_eq!(all_done, want, "every slide done exactly once across the two processes\nA: {la:?}\nB: {lb:?}");
    let (done, other) = outputs(&job);
    assert_eq!(done.len(), 8);
    assert!(other.is_empty(), "{other:?}");
    assert!(locks(&job).is_empty());
    // Each status file names the process that did the slide.
    let pids: std::collections::BTreeSet<u64> = (0..8)
        .map(|i| {
            let v: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(features_dir(&job).join(format!("_status/slide_{i}.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(v["state"], "done");
            v["pid"].as_u64().unwrap()
        })
        .collect();
    assert!(!pids.is_empty() && pids.len() <= 2);
}
