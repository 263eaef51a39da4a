//! The `keylink` command-line tool: argument parsing, printing and exit codes over the
//! `keylink` core library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
