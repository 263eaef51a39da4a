//! `docker-credential-keylink`: docker's credential helper, answering with the token of the
//! account mapped to a registry under `[credentials]`.

fn main() {
    std::process::exit(keylink_cli::docker_credential_main());
}
