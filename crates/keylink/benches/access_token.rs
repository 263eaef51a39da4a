//! Benchmark: `access_token` for a still-valid token, in process (the fast path an app hits
//! for every API call), through the blocking API (`Keylink`) and the async one
//! (`AsyncKeylink` on a tokio runtime, awaited from a task), and one round trip to the token
//! agent (`keylink::agent::ask` against an agent serving in this process, as `keylink token`
//! asks it). Run through `make bench`, which links a demo account first and gives the run a
//! private `XDG_RUNTIME_DIR`:
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

    agent_round_trip(&account);
}

/// One request to the token agent and its answer, from connect to the parsed token: what
/// `keylink token` adds to its own start when an agent runs.
#[cfg(unix)]
fn agent_round_trip(account: &keylink::AccountId) {
    use keylink::agent::{self, Agent};
    let env = keylink::Environment::capture(std::env::var_os);
    let identity = keylink::AppIdentity::keylink();
    let server = Agent::bind(identity.clone(), env.clone()).unwrap_or_else(|e| {
        eprintln!("error: the agent: {e}");
        std::process::exit(1)
    });
    let stopper = server.stopper();
    let serving = std::thread::spawn(move || server.serve());
    let ask = || agent::ask(&identity, &env, account.as_str(), Duration::from_secs(60));
    // The first answer reads the keychain.
    if ask().is_none() {
        eprintln!("error: the agent did not answer");
        std::process::exit(1);
    }
    const ROUND_TRIPS: u32 = 200;
    let mut per_call_us: Vec<f64> = (0..50)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUND_TRIPS {
                std::hint::black_box(ask().expect("an answer"));
            }
            start.elapsed().as_nanos() as f64 / f64::from(ROUND_TRIPS) / 1e3
        })
        .collect();
    per_call_us.sort_by(f64::total_cmp);
    println!(
        "agent round trip, valid token: median {:.0} µs, p99 {:.0} µs per request ({} requests)",
        per_call_us[per_call_us.len() / 2],
        per_call_us[per_call_us.len() * 99 / 100],
        50 * ROUND_TRIPS
    );
    stopper.stop();
    let _ = serving.join();
}

#[cfg(not(unix))]
fn agent_round_trip(_: &keylink::AccountId) {}
