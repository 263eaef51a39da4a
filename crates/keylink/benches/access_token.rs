//! Benchmark: `Keylink::access_token` for a still-valid token, in process (the fast path an
//! app hits for every API call). Run through `make bench`, which links a demo account first:
//!
//!     cargo bench --bench access_token -- <account>
//!
//! Prints the median and the 99th percentile over batches of calls.

use std::time::Instant;

fn main() {
    let Some(account) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench --bench access_token -- <account>");
        std::process::exit(2);
    };
    let keylink = keylink::Keylink::builder()
        .environment(keylink::Environment::capture(std::env::var_os))
        .build()
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
    // The first call reads the keychain; the benchmark measures the calls after it.
    let first = Instant::now();
    if let Err(e) = keylink.access_token(&account, 60) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let cold = first.elapsed();
    const BATCH: u32 = 10_000;
    let mut per_call_ns: Vec<f64> = (0..200)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCH {
                let token = keylink.access_token(&account, 60).expect("token");
                std::hint::black_box(token);
            }
            start.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .collect();
    per_call_ns.sort_by(f64::total_cmp);
    let median = per_call_ns[per_call_ns.len() / 2];
    let p99 = per_call_ns[per_call_ns.len() * 99 / 100];
    println!(
        "access_token, first call (keychain read): {:.1} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "access_token, valid token in memory: median {median:.0} ns, p99 {p99:.0} ns per call ({} calls)",
        200 * BATCH
    );
}
