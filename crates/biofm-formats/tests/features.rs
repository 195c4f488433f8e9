//! Patch-feature HDF5 files: layout, round trip, atomic writes, bad input.

use biofm_formats::features::{read_features, write_features, FeatureAttrs};

fn attrs() -> FeatureAttrs {
    FeatureAttrs {
        encoder: "uni".into(),
        name: "slide_1".into(),
        patch_size: 256,
        patch_size_level0: 512,
        target_magnification: 20.0,
        level0_magnification: Some(40.0),
        level0_mpp: Some(0.25),
        overlap: 0,
        level0_width: 4000,
        level0_height: 3000,
    }
}

#[test]
fn round_trip_with_the_toolkit_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("20x_256px_0px_overlap/features_uni/slide_1.h5");
    let feats: Vec<f32> = (0..3 * 4).map(|i| i as f32 * 0.25 - 1.0).collect();
    let coords = [[0i64, 0], [512, 0], [1024, 512]];
    write_features(&path, &feats, 4, &coords, &attrs()).unwrap();
    // The datasets the Python toolkits read: features [N, D] float32, coords [N, 2] int64.
    let f = hdf5::File::open(&path).unwrap();
    let d = f.dataset("features").unwrap();
    assert_eq!(d.shape(), vec![3, 4]);
    assert_eq!(d.dtype().unwrap().to_descriptor().unwrap(), hdf5::types::TypeDescriptor::Float(hdf5::types::FloatSize::U4));
    let c = f.dataset("coords").unwrap();
    assert_eq!(c.shape(), vec![3, 2]);
    assert_eq!(c.dtype().unwrap().to_descriptor().unwrap(), hdf5::types::TypeDescriptor::Integer(hdf5::types::IntSize::U8));
    // TRIDENT's attributes on the datasets: integers as int64 (TITAN reads
    // coords.attrs["patch_size_level0"]), names as strings.
    let ps0: i64 = c.attr("patch_size_level0").unwrap().read_scalar().unwrap();
    assert_eq!(ps0, 512);
    let mag: i64 = c.attr("level0_magnification").unwrap().read_scalar().unwrap();
    assert_eq!(mag, 40);
    let w: i64 = c.attr("level0_width").unwrap().read_scalar().unwrap();
    assert_eq!(w, 4000);
    let enc: hdf5::types::VarLenUnicode = d.attr("encoder").unwrap().read_scalar().unwrap();
    assert_eq!(enc.as_str(), "uni");
    let name: hdf5::types::VarLenUnicode = c.attr("name").unwrap().read_scalar().unwrap();
    assert_eq!(name.as_str(), "slide_1");
    drop(f);
    let (f2, dim, c2, a2) = read_features(&path).unwrap();
    assert_eq!((f2, dim, c2, a2), (feats, 4, coords.to_vec(), attrs()));
    let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("partial")).count();
    assert_eq!(leftovers, 0);
}

#[test]
fn mismatched_sizes_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.h5");
    let e = write_features(&path, &[1.0; 7], 4, &[[0, 0], [1, 1]], &attrs()).unwrap_err().to_string();
    assert!(e.contains("do not fill"), "{e}");
    assert!(!path.exists());
    std::fs::write(&path, b"not hdf5").unwrap();
    let e = format!("{:#}", read_features(&path).unwrap_err());
    assert!(e.contains("s.h5"), "{e}");
}
