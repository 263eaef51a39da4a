//! The `keylink` command-line tool.

fn main() {
    std::process::exit(keylink::cli::main());
}
