//! Benchmark: `access_token` for a still-valid token, in process (the fast path an app hits
//! for every API call), through the blocking API (`Keylink`) and the async one
//! (`AsyncKeylink` on a tokio runtime, awaited from a task). Run through `make bench`, which
//! links a demo account first:
//!
//!     cargo bench --bench access_token -- <account>
//!
//! Prints the median and the 99th percentile over batches of calls.

use std::time::{Duration, Instant};

const BATCH: u32 = 10_000;
const BATCHES: usize = 200;

/// Median and 99th percentile (ns per call) of `batch`, each run timing BATCH calls.
fn measure(mut batch: impl FnMut()) -> (f64, f64) {
    let mut per_call_ns: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            batch();
            start.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .collect();
    per_call_ns.sort_by(f64::total_cmp);
    (
        per_call_ns[per_call_ns.len() / 2],
        per_call_ns[per_call_ns.len() * 99 / 100],
    )
}

fn main() {
    let Some(account) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench --bench access_token -- <account>");
        std::process::exit(2);
    };
    let keylink = keylink::Keylink::builder(keylink::AppIdentity::keylink())
        .environment(keylink::Environment::capture(std::env::var_os))
        .build()
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
    let account = keylink.account(&account).map(|a| a.id).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    // The first call reads the keychain; the benchmark measures the calls after it.
    let first = Instant::now();
    if let Err(e) = keylink.access_token(&account, Duration::from_secs(60)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let cold = first.elapsed();
    println!(
        "access_token, first call (keychain read): {:.1} ms",
        cold.as_secs_f64() * 1e3
    );

    let (median, p99) = measure(|| {
        for _ in 0..BATCH {
            let token = keylink
                .access_token(&account, Duration::from_secs(60))
                .expect("token");
            std::hint::black_box(token);
        }
    });
    println!(
        "access_token, blocking API, valid token in memory: median {median:.0} ns, p99 {p99:.0} ns per call ({} calls)",
        BATCHES as u32 * BATCH
    );

    // The async API as a Tauri command or a tokio task uses it: awaited on a multi-threaded
    // runtime's worker.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let keylink = keylink.into_async();
    let (median, p99) = measure(|| {
        let keylink = keylink.clone();
        let account = account.clone();
        runtime.block_on(async move {
            let task = tokio::spawn(async move {
                for _ in 0..BATCH {
                    let token = keylink
                        .access_token(&account, Duration::from_secs(60))
                        .await
                        .expect("token");
                    std::hint::black_box(token);
                }
            });
            task.await.expect("the benchmark task");
        });
    });
    println!(
        "access_token, async API, valid token in memory: median {median:.0} ns, p99 {p99:.0} ns per call ({} calls)",
        BATCHES as u32 * BATCH
    );
}
