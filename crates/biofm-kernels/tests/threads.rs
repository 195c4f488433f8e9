//! `init_threads` sets both our rayon pool and candle's thread count. A separate test
//! binary, because both are process-global.

#[test]
fn init_threads_configures_rayon_and_candle() {
    biofm_kernels::init_threads(Some(2));
    assert_eq!(rayon::current_num_threads(), 2);
    assert_eq!(candle_core::utils::get_num_threads(), 2);
    assert_eq!(std::env::var("CANDLE_NUM_THREADS").as_deref(), Ok("2"));
}

#[test]
fn data_parallel_keeps_part_order_and_reports_errors() {
    biofm_kernels::init_threads(Some(2));
    let out = biofm_kernels::data_parallel(5, |i| Ok::<_, String>(i * 10)).unwrap();
    assert_eq!(out, vec![0, 10, 20, 30, 40]);
    let err = biofm_kernels::data_parallel(4, |i| if i == 2 { Err(format!("part {i} failed")) } else { Ok(i) });
    assert_eq!(err.unwrap_err(), "part 2 failed");
    // Kernels inside a part give the same numbers as outside.
    let x = candle_core::Tensor::arange(0f32, 64.0, &candle_core::Device::Cpu).unwrap().reshape((8, 8)).unwrap();
    let w = (x.clone() * 0.01).unwrap();
    let outside = biofm_kernels::linear(&x, &w, None).unwrap().to_vec2::<f32>().unwrap();
    let inside = biofm_kernels::data_parallel(2, |_| biofm_kernels::linear(&x, &w, None)).unwrap();
    for t in inside {
        assert_eq!(t.to_vec2::<f32>().unwrap(), outside);
    }
}
