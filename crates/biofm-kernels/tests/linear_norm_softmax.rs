//! `linear`, `linear_act`, `layer_norm` and `softmax_last_dim` against the candle-op
//! oracle, on odd shapes, strided views and extreme values.

mod common;

use biofm_kernels::{layer_norm, linear, linear_act, linear_residual, naive, softmax_last_dim, Activation};
use candle_core::{Device, Tensor};
use common::{assert_close, assert_close_scaled, values, Rng};

#[test]
fn linear_matches_naive() {
    let mut rng = Rng::new(10);
    // (leading dims, in, out)
    for (lead, k, n) in [
        (&[3usize, 7][..], 100, 13),
        (&[1, 1], 36, 1),
        (&[2, 197], 768, 64),
        (&[257], 20, 300),
        (&[], 8, 5),
    ] {
        let mut dims = lead.to_vec();
        dims.push(k);
        let x = rng.tensor(&dims, 1.0);
        let w = rng.tensor(&[n, k], 0.1);
        let b = rng.tensor(&[n], 0.5);
        for bias in [Some(&b), None] {
            let fast = linear(&x, &w, bias).unwrap();
            let slow = naive::linear(&x, &w, bias).unwrap();
            // GEMM summation order differs: compare relative to the output scale.
            assert_close_scaled(&format!("linear {dims:?}x[{n},{k}]"), &fast, &slow, 1e-6);
        }
    }
}

#[test]
fn linear_reads_strided_operands() {
    let mut rng = Rng::new(11);
    // x: the middle third of a packed projection; weight: a transposed [in, out] matrix.
    let packed = rng.tensor(&[3, 7, 3 * 24], 1.0);
    let x = packed.narrow(2, 24, 24).unwrap();
    let w_in_out = rng.tensor(&[24, 10], 0.2);
    let w = w_in_out.t().unwrap();
    assert!(!x.is_contiguous() && !w.is_contiguous());
    let b = rng.tensor(&[20], 0.5).narrow(0, 5, 10).unwrap();
    let fast = linear(&x, &w, Some(&b)).unwrap();
    let slow = naive::linear(&x.contiguous().unwrap(), &w.contiguous().unwrap(), Some(&b)).unwrap();
    assert_close_scaled("strided linear", &fast, &slow, 1e-6);
}

#[test]
fn linear_act_matches_naive() {
    let mut rng = Rng::new(12);
    let x = rng.tensor(&[3, 197, 40], 1.0);
    let w = rng.tensor(&[77, 40], 0.3);
    let b = rng.tensor(&[77], 0.5);
    for act in [
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::QuickGelu,
        Activation::Silu,
        Activation::Relu,
    ] {
        for bias in [Some(&b), None] {
            let fast = linear_act(&x, &w, bias, act).unwrap();
            let slow = naive::activation(&naive::linear(&x, &w, bias).unwrap(), act).unwrap();
            assert_close_scaled(&format!("linear_act {act:?}"), &fast, &slow, 1e-6);
        }
    }
}

#[test]
fn linear_residual_matches_naive() {
    let mut rng = Rng::new(13);
    for (lead, k, n) in [(&[3usize, 7][..], 100, 13), (&[1, 197], 64, 48), (&[5], 3, 1)] {
        let mut x_dims = lead.to_vec();
        x_dims.push(k);
        let mut y_dims = lead.to_vec();
        y_dims.push(n);
        let x = rng.tensor(&x_dims, 1.0);
        let w = rng.tensor(&[n, k], 0.2);
        let b = rng.tensor(&[n], 0.5);
        let r = rng.tensor(&y_dims, 3.0);
        for bias in [Some(&b), None] {
            let fast = linear_residual(&x, &w, bias, &r).unwrap();
            let slow = (&r + naive::linear(&x, &w, bias).unwrap()).unwrap();
            assert_close_scaled(&format!("linear_residual {x_dims:?}"), &fast, &slow, 1e-6);
        }
    }
    // A strided residual (every other row of a larger tensor) and a shape mismatch.
    let x = rng.tensor(&[4, 10], 1.0);
    let w = rng.tensor(&[6, 10], 0.3);
    let r = rng
        .tensor(&[8, 6], 1.0)
        .reshape((4, 2, 6))
        .unwrap()
        .narrow(1, 0, 1)
        .unwrap()
        .squeeze(1)
        .unwrap();
    assert!(!r.is_contiguous());
    let slow = (&r + naive::linear(&x, &w, None).unwrap()).unwrap();
    assert_close_scaled(
        "strided residual",
        &linear_residual(&x, &w, None, &r).unwrap(),
        &slow,
        1e-6,
    );
    let err = linear_residual(&x, &w, None, &rng.tensor(&[4, 5], 1.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("residual") && err.contains("[4, 5]"), "{err}");
}

#[test]
fn layer_norm_matches_naive() {
    let mut rng = Rng::new(20);
    for dims in [&[3usize, 7, 100][..], &[1, 1, 37], &[2, 197, 768], &[4, 1], &[9]] {
        let n = *dims.last().unwrap();
        let x = rng.tensor(dims, 2.0);
        let w = (rng.tensor(&[n], 0.2) + 1.0).unwrap();
        let b = rng.tensor(&[n], 0.2);
        for eps in [1e-6, 1e-5, 1e-12] {
            for bias in [Some(&b), None] {
                let fast = layer_norm(&x, &w, bias, eps).unwrap();
                let slow = naive::layer_norm(&x, &w, bias, eps).unwrap();
                assert_close(&format!("layer_norm {dims:?} eps {eps}"), &fast, &slow, 1e-6, 1e-6);
            }
        }
    }
}

#[test]
fn layer_norm_large_offset_and_strided_rows() {
    let mut rng = Rng::new(21);
    let n = 300;
    // Rows with mean 1000 and std 0.01: a one-pass E[x^2] - E[x]^2 would lose all digits.
    let noise = values(&rng.tensor(&[4, n], 0.01));
    let rows: Vec<f32> = noise.iter().map(|v| v + 1000.0).collect();
    let x = Tensor::from_vec(rows.clone(), (4, n), &Device::Cpu).unwrap();
    let w = Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let got = values(&layer_norm(&x, &w, None, 1e-6).unwrap());
    for r in 0..4 {
        let row: Vec<f64> = rows[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
        let mean = row.iter().sum::<f64>() / n as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        for j in 0..n {
            let want = (row[j] - mean) / (var + 1e-6).sqrt();
            let g = got[r * n + j] as f64;
            // The reference uses the same f32 inputs in f64; a mean accumulated naively in
            // f32 would be off by ~1e-4 here, i.e. 1e-2 after normalisation.
            assert!((g - want).abs() < 1e-5, "row {r} col {j}: {g} vs {want}");
        }
    }
    // Transposed input goes through the contiguous copy.
    let xt = rng.tensor(&[n, 5], 1.0).t().unwrap();
    let fast = layer_norm(&xt, &w, None, 1e-6).unwrap();
    assert_close(
        "strided layer_norm",
        &fast,
        &naive::layer_norm(&xt, &w, None, 1e-6).unwrap(),
        1e-6,
        1e-6,
    );
}

#[test]
fn softmax_matches_naive() {
    let mut rng = Rng::new(30);
    for dims in [&[3usize, 7, 257][..], &[1, 1, 1], &[2, 12, 197, 197], &[5, 13], &[7]] {
        for std in [1.0, 30.0] {
            let x = rng.tensor(dims, std);
            let fast = softmax_last_dim(&x).unwrap();
            assert_close(
                &format!("softmax {dims:?} std {std}"),
                &fast,
                &naive::softmax_last_dim(&x).unwrap(),
                1e-6,
                1e-9,
            );
            // Rows sum to 1.
            let sums = values(&fast.sum_keepdim(dims.len() - 1).unwrap());
            assert!(
                sums.iter().all(|s| (s - 1.0).abs() < 1e-5),
                "softmax rows must sum to 1"
            );
        }
    }
}

#[test]
fn softmax_extreme_values() {
    let rows: Vec<Vec<f32>> = vec![
        vec![1e4, -1e4, 0.0, 3.0],
        vec![f32::MIN, f32::MIN, 2.0, f32::MIN],
        vec![f32::MIN; 4],
        vec![f32::NEG_INFINITY, 1.0, 1.0, f32::NEG_INFINITY],
        vec![88.0, 87.0, -200.0, 0.0],
        vec![-1e30, 1e30, 5.0, 0.0],
    ];
    let flat: Vec<f32> = rows.concat();
    let x = Tensor::from_vec(flat, (rows.len(), 4), &Device::Cpu).unwrap();
    let fast = softmax_last_dim(&x).unwrap();
    assert_close(
        "softmax extremes",
        &fast,
        &naive::softmax_last_dim(&x).unwrap(),
        1e-6,
        1e-30,
    );
    let v = values(&fast);
    assert_eq!(&v[4..8], &[0.0, 0.0, 1.0, 0.0], "single unmasked entry");
    assert_eq!(&v[8..12], &[0.25; 4], "all-masked row is uniform, as in PyTorch");
    // Strided (transposed) input.
    let xt = Rng::new(31).tensor(&[9, 6], 3.0).t().unwrap();
    assert_close(
        "strided softmax",
        &softmax_last_dim(&xt).unwrap(),
        &naive::softmax_last_dim(&xt).unwrap(),
        1e-6,
        1e-9,
    );
}
