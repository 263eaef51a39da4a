//! The `keylink` command-line tool.

fn main() {
    std::process::exit(keylink_cli::main());
}
