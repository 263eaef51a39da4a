//! The programs `keylink` and `docker-credential-keylink`: argument parsing, printing and exit
//! codes over the [`keylink`] library. This crate is those programs; apps use `keylink`.

mod cli;
mod helpers;

pub use cli::main;

/// Runs `docker-credential-keylink` with the process arguments and returns the exit code.
pub fn docker_credential_main() -> i32 {
    cli::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [action] = args.as_slice() else {
        eprintln!(
            "usage: docker-credential-keylink <get|store|erase|list> (docker runs it; see the README)"
        );
        return 2;
    };
    let result = cli::open(None).and_then(|keylink| helpers::docker_credential(&keylink, action));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("docker-credential-keylink: {}", cli::with_advice(&e));
            cli::exit_code(&e)
        }
    }
}
