//! Many callers asking one process for the same account's access token at the same moment,
//! as an app with several background jobs would. Used by the concurrency test and benchmark.
//!
//!     cargo run --example token_callers -- <account> <callers> [min-ttl]
//!
//! Prints one line per caller: the token, or `error: <message>`. Exits 1 if any caller failed.

use std::sync::{Arc, Barrier};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(account), Some(callers)) = (args.first(), args.get(1).and_then(|n| n.parse().ok()))
    else {
        eprintln!("usage: token_callers <account> <callers> [min-ttl]");
        std::process::exit(2);
    };
    let min_ttl = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(60);
    let keylink = match keylink::Keylink::builder(keylink::AppIdentity::keylink())
        .environment(keylink::Environment::capture(std::env::var_os))
        .build()
    {
        Ok(k) => Arc::new(k),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(if e.code() == keylink::ErrorCode::Config {
                2
            } else {
                1
            });
        }
    };
    // The account as a person names it (its id or email), resolved once.
    let account = match keylink.account(account) {
        Ok(found) => found.id,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let start = Arc::new(Barrier::new(callers));
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let (keylink, start, account) = (keylink.clone(), start.clone(), account.clone());
            std::thread::spawn(move || {
                start.wait();
                keylink.access_token(&account, std::time::Duration::from_secs(min_ttl))
            })
        })
        .collect();
    let mut failed = false;
    for handle in handles {
        match handle.join() {
            Ok(Ok(token)) => println!("{}", token.secret()),
            Ok(Err(e)) => {
                failed = true;
                println!("error: {e}");
            }
            Err(_) => {
                failed = true;
                println!("error: a caller panicked");
            }
        }
    }
    std::process::exit(i32::from(failed));
}
