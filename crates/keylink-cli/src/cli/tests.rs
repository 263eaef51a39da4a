use clap::Parser;

use super::{Cli, Commands, TokenArgs};

fn plain(args: &[&str]) -> Option<TokenArgs> {
    TokenArgs::plain(args.iter().map(std::ffi::OsString::from))
}

/// What clap makes of the same arguments, in the fast lane's terms.
fn clap(args: &[&str]) -> Option<TokenArgs> {
    let cli = Cli::try_parse_from(std::iter::once("keylink").chain(args.iter().copied())).ok()?;
    match cli.command {
        // A limited token (--scope, --resource) is never the fast lane's.
        Commands::Token {
            account,
            min_ttl,
            scopes,
            resource: None,
            json,
        } if scopes.is_empty() => Some(TokenArgs {
            // clap also reads KEYLINK_APP; the fast lane's caller does that.
            app: cli.app,
            account,
            min_ttl,
            json,
        }),
        _ => None,
    }
}

#[test]
fn the_fast_lane_reads_plain_token_commands_as_clap_does() {
    let forms: &[&[&str]] = &[
        &["token", "alice@example.com"],
        &["token", "demo-0b2876c881", "--json"],
        &["token", "--json", "demo-0b2876c881"],
        &["token", "--min-ttl", "300", "a"],
        &["token", "--min-ttl=300", "--json", "a"],
        &["token", "a", "--min-ttl", "0"],
        &["--app", "com.example.notes", "token", "a"],
        &["--app=com.example.notes", "token", "a"],
        &["token", "a", "--app", "com.example.notes"],
    ];
    for args in forms {
        let fast = plain(args);
        assert!(fast.is_some(), "{args:?} should take the fast lane");
        assert_eq!(fast, clap(args), "{args:?}");
    }
}

#[test]
fn everything_else_is_left_to_clap() {
    let forms: &[&[&str]] = &[
        &[],
        &["token"],
        &["token", "a", "b"],
        &["token", "--help"],
        &["token", "-h", "a"],
        &["token", "--min-ttl", "soon", "a"],
        &["token", "--min-ttl", "-1", "a"],
        &["token", "--json=yes", "a"],
        &["token", "--scope", "mail", "a"],
        &["token", "a", "--resource", "https://api.example.com"],
        &["token", "--resource=https://api.example.com", "a"],
        &["token", "a", "--"],
        &["token", "--", "a"],
        &["list", "--json"],
        &["--version"],
        &["link", "token"],
        &["--app", "", "token", "a"],
        &["--app"],
        &["token", "a", "--min-ttl"],
        &["token", "", "--json"],
    ];
    for args in forms {
        assert_eq!(plain(args), None, "{args:?}");
    }
}
