//! In-process hot paths, with criterion (the benchmarks are in `src/hot_paths.rs`, which
//! `wsgw-bench hot-paths` runs too): `cargo bench -p wsgw-bench --bench hot_paths`.

#[path = "../src/hot_paths.rs"]
mod hot_paths;

criterion::criterion_group!(benches, hot_paths::all);
criterion::criterion_main!(benches);
