//! Real data: the all-MiniLM-L6-v2 safetensors checkpoint (fetched by
//! scripts/fetch-test-data.sh into `<workspace>/data/downloads`, or `$BIOFM_TEST_DATA`).

use biofm_weights::{StoredDType, Weights};
use candle_core::{DType, Device};
use std::path::PathBuf;

fn model_file() -> PathBuf {
    biofm_testdata::downloaded("all-MiniLM-L6-v2/model.safetensors")
}

#[test]
fn minilm_counts_and_values() {
    let path = model_file();
    let w = Weights::open(&path).unwrap();
    assert_eq!(w.len(), 104);
    let params: usize = w
        .keys()
        .map(|k| w.info(k).unwrap().shape.iter().product::<usize>())
        .sum();
    assert_eq!(params, 22_713_728);
    let pos = w.info("embeddings.position_ids").unwrap();
    assert_eq!(
        (pos.dtype, pos.shape.as_slice()),
        (StoredDType::I64, &[1, 512][..])
    );
    assert_eq!(
        w.info("embeddings.word_embeddings.weight").unwrap().shape,
        [30522, 384]
    );

    // Every tensor, materialised through the mmap, equals the bytes the reference
    // safetensors reader sees.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, view) in st.tensors() {
        let info = w.info(&name).unwrap();
        let dtype = info.dtype.candle_dtype().unwrap();
        let t = w
            .get(&name, view.shape(), dtype, &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap();
        let ours: Vec<u8> = match dtype {
            DType::F32 => t
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            DType::I64 => t
                .to_vec1::<i64>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            d => panic!("{name}: unexpected dtype {d:?}"),
        };
        assert!(
            ours == view.data(),
            "{name} differs from the safetensors crate's bytes"
        );
    }
    w.check_unused(&[]).unwrap();
}
