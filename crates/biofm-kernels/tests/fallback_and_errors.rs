//! Non-f32 inputs take the candle-op path (same results as `naive`, dtype preserved) and
//! bad shapes give errors naming the shapes, not panics.

mod common;

use biofm_kernels::{
    activation, attention, erf, layer_norm, linear, linear_act, linear_residual, naive, softmax_last_dim, Activation,
};
use candle_core::{DType, Device, Tensor};
use common::Rng;

fn assert_same(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.dtype(), b.dtype(), "{what}: dtype");
    assert_eq!(a.dims(), b.dims(), "{what}: shape");
    assert_eq!(common::values(a), common::values(b), "{what}: values");
}

#[test]
fn half_precision_inputs_use_the_candle_path() {
    let mut rng = Rng::new(50);
    for dtype in [DType::BF16, DType::F16] {
        let x = rng.tensor(&[2, 7, 12], 1.0).to_dtype(dtype).unwrap();
        let w = rng.tensor(&[5, 12], 0.3).to_dtype(dtype).unwrap();
        let b = rng.tensor(&[5], 0.3).to_dtype(dtype).unwrap();
        let g = rng.tensor(&[12], 0.3).to_dtype(dtype).unwrap();
        for act in [Activation::Gelu, Activation::Silu, Activation::Relu] {
            assert_same(
                "activation",
                &activation(&x, act).unwrap(),
                &naive::activation(&x, act).unwrap(),
            );
            let y = naive::activation(&naive::linear(&x, &w, Some(&b)).unwrap(), act).unwrap();
            assert_same("linear_act", &linear_act(&x, &w, Some(&b), act).unwrap(), &y);
        }
        assert_same("erf", &erf(&x).unwrap(), &x.erf().unwrap());
        assert_same(
            "linear",
            &linear(&x, &w, Some(&b)).unwrap(),
            &naive::linear(&x, &w, Some(&b)).unwrap(),
        );
        let r = rng.tensor(&[2, 7, 5], 1.0).to_dtype(dtype).unwrap();
        assert_same(
            "linear_residual",
            &linear_residual(&x, &w, Some(&b), &r).unwrap(),
            &(&r + naive::linear(&x, &w, Some(&b)).unwrap()).unwrap(),
        );
        assert_same(
            "layer_norm",
            &layer_norm(&x, &g, Some(&g), 1e-6).unwrap(),
            &naive::layer_norm(&x, &g, Some(&g), 1e-6).unwrap(),
        );
        assert_same(
            "softmax",
            &softmax_last_dim(&x).unwrap(),
            &naive::softmax_last_dim(&x).unwrap(),
        );
        let out = attention(&x, &x, &x, 3, 0.5, None).unwrap();
        assert_same("attention", &out, &naive::attention(&x, &x, &x, 3, 0.5, None).unwrap());
    }
}

#[test]
fn mixed_dtypes_fall_back_instead_of_misreading() {
    let mut rng = Rng::new(51);
    let x = rng.tensor(&[3, 8], 1.0);
    let w = rng.tensor(&[4, 8], 1.0).to_dtype(DType::F16).unwrap();
    // candle's matmul rejects mixed dtypes: an error, not a reinterpretation of bytes.
    assert!(linear(&x, &w, None).is_err());
}

#[test]
fn shape_errors_name_the_shapes() {
    let dev = Device::Cpu;
    let x = Tensor::zeros((2, 3, 8), DType::F32, &dev).unwrap();
    let msg = |r: candle_core::Result<Tensor>| r.unwrap_err().to_string();

    let w = Tensor::zeros((4, 7), DType::F32, &dev).unwrap();
    let e = msg(linear(&x, &w, None));
    assert!(
        e.contains("linear") && e.contains("[2, 3, 8]") && e.contains("[4, 7]"),
        "{e}"
    );
    let w = Tensor::zeros((4, 8), DType::F32, &dev).unwrap();
    let b = Tensor::zeros(5, DType::F32, &dev).unwrap();
    let e = msg(linear(&x, &w, Some(&b)));
    assert!(e.contains("bias") && e.contains("[5]"), "{e}");

    let g = Tensor::zeros(7, DType::F32, &dev).unwrap();
    let e = msg(layer_norm(&x, &g, None, 1e-6));
    assert!(e.contains("layer_norm") && e.contains("[7]"), "{e}");

    let e = msg(attention(&x, &x, &x, 3, 1.0, None));
    assert!(e.contains("3 heads") && e.contains("[2, 3, 8]"), "{e}");
    let k = Tensor::zeros((2, 5, 6), DType::F32, &dev).unwrap();
    let e = msg(attention(&x, &k, &k, 2, 1.0, None));
    assert!(e.contains("[2, 5, 6]"), "{e}");
    let flat = Tensor::zeros((2, 8), DType::F32, &dev).unwrap();
    assert!(msg(attention(&flat, &flat, &flat, 2, 1.0, None)).contains("[B, N, D]"));

    let scalar = Tensor::new(1f32, &dev).unwrap();
    assert!(msg(linear(&scalar, &w, None)).contains("scalar"));
}

#[test]
fn empty_tensors() {
    let dev = Device::Cpu;
    let x = Tensor::zeros((0, 8), DType::F32, &dev).unwrap();
    let w = Tensor::zeros((4, 8), DType::F32, &dev).unwrap();
    assert_eq!(linear(&x, &w, None).unwrap().dims(), &[0, 4]);
    // No input features: the output is the bias (zeros without one), as in PyTorch.
    let (x0, w0, b) = (
        Tensor::zeros((3, 0), DType::F32, &dev).unwrap(),
        Tensor::zeros((4, 0), DType::F32, &dev).unwrap(),
        Tensor::new(&[1f32, 2., 3., 4.], &dev).unwrap(),
    );
    assert_eq!(
        common::values(&linear(&x0, &w0, Some(&b)).unwrap()),
        [1., 2., 3., 4.].repeat(3)
    );
    assert_eq!(common::values(&linear(&x0, &w0, None).unwrap()), vec![0.0; 12]);
    let no_out = Tensor::zeros((0, 8), DType::F32, &dev).unwrap();
    assert_eq!(linear(&w, &no_out, None).unwrap().dims(), &[4, 0]);
    assert_eq!(activation(&x, Activation::Gelu).unwrap().dims(), &[0, 8]);
    assert_eq!(softmax_last_dim(&x).unwrap().dims(), &[0, 8]);
    let q = Tensor::zeros((1, 0, 8), DType::F32, &dev).unwrap();
    let k = Tensor::zeros((1, 3, 8), DType::F32, &dev).unwrap();
    assert_eq!(attention(&q, &k, &k, 2, 1.0, None).unwrap().dims(), &[1, 0, 8]);
}
