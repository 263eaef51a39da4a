//! The `keylink` command line: the contract in the README (commands, JSON, exit codes), on top
//! of the [`Keylink`] API.

use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;

use keylink::clock::{ClockOffset, rfc3339};
use keylink::{Account, store::AccountStatus, token::Revocation, token::SignOut};
use keylink::{AppIdentity, Environment, Keylink, LinkProgress, LinkStart, ProviderId};
use keylink::{Error, ErrorCode, IdentityError};

#[derive(Parser)]
#[command(
    name = "keylink",
    version,
    about = "Link cloud accounts and get fresh access tokens from the OS keychain"
)]
struct Cli {
    /// The app whose accounts to use, by its identifier (default: the Keylink app's,
    /// dev.keylink, shared with the Keylink desktop app).
    #[arg(long, global = true, env = "KEYLINK_APP", value_name = "IDENTIFIER")]
    app: Option<String>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// List the configured providers.
    Providers {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Link an account: sign in at the provider in the browser, or on another device.
    Link {
        /// Provider id (see `keylink providers`).
        provider: String,
        /// Seconds to wait for the sign-in.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
        /// Print the URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Sign in on another device (phone, laptop) with a code, for SSH sessions and
        /// machines without a browser (RFC 8628).
        #[arg(long, conflicts_with = "no_browser")]
        device: bool,
        /// Also ask for this scope, besides the provider's configured ones (repeatable).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// Print the linked account as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign in again as a linked account (the same person only); with --scope, ask for more
    /// permissions, keeping those already granted.
    Reconnect {
        /// Account id or email.
        account: String,
        /// Seconds to wait for the sign-in.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
        /// Print the URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Also ask for this scope, besides those the account has (repeatable).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// Print the account as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a redirect URL (what the OS URL-scheme handler runs).
    #[command(name = "open-url")]
    OpenUrl {
        /// The redirect URL. Other arguments around it are ignored.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List linked accounts (no secrets).
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token, refreshing it first if needed.
    Token {
        /// Account id or email.
        account: String,
        /// Refresh when the token expires within this many seconds.
        #[arg(long, default_value_t = 60)]
        min_ttl: u64,
        /// A token limited to this granted scope (repeatable; RFC 6749 §6).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// A token for this API only (an absolute URI; RFC 8707).
        #[arg(long, value_name = "URI")]
        resource: Option<String>,
        /// Print JSON with the token and its expiry.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an account's tokens at the provider and delete them locally.
    Unlink {
        /// Account id or email.
        account: String,
        /// Also end your sign-in at the provider: opens its sign-out page in the browser.
        #[arg(long)]
        sign_out: bool,
    },
    /// git's credential helper: answers git with the token of the account mapped to the
    /// server under [credentials] (git runs it; see the README).
    #[command(name = "git-credential")]
    GitCredential {
        /// What git asks: get, store or erase.
        #[arg(value_parser = ["get", "store", "erase"])]
        action: String,
    },
    /// kubectl's exec credential plugin: prints an ExecCredential with the account's token.
    #[command(name = "kubectl-credential")]
    KubectlCredential {
        /// Account id or email.
        account: String,
    },
    /// Print a kubeconfig whose user gets its token from `keylink kubectl-credential`.
    Kubeconfig {
        /// Account id or email.
        account: String,
        /// The Kubernetes API server's URL.
        #[arg(long)]
        server: String,
        /// The name of the cluster, user and context (default keylink-<provider>).
        #[arg(long)]
        name: Option<String>,
        /// A CA certificate file (PEM) for the API server.
        #[arg(long, value_name = "FILE")]
        certificate_authority: Option<std::path::PathBuf>,
    },
    /// Serve fresh access tokens to your own processes from memory, over
    /// $XDG_RUNTIME_DIR/keylink/<app>.sock, until stopped; `keylink token` asks it first.
    Agent,
    /// Check the keychain, configuration, providers and URL scheme registration.
    Doctor {
        /// Print every check as JSON (for fleet tooling).
        #[arg(long)]
        json: bool,
    },
}

/// The JSON form of an account (the documented contract).
#[derive(Serialize)]
struct AccountJson<'a> {
    id: &'a str,
    provider: &'a str,
    issuer: &'a str,
    subject: &'a str,
    email: Option<&'a str>,
    name: Option<&'a str>,
    scopes: &'a [String],
    linked_at: String,
    expires_at: Option<String>,
    status: AccountStatus,
}

impl<'a> From<&'a Account> for AccountJson<'a> {
    fn from(a: &'a Account) -> Self {
        AccountJson {
            id: a.id.as_str(),
            provider: a.provider.as_str(),
            issuer: a.issuer.as_str(),
            subject: &a.subject,
            email: a.email.as_deref(),
            name: a.name.as_deref(),
            scopes: &a.scopes,
            linked_at: rfc3339(a.linked_at),
            expires_at: a.expires_at.map(rfc3339),
            status: a.status,
        }
    }
}

/// Log lines only when `RUST_LOG` asks for them: what goes wrong is said once, in the error
/// (the core logs what it also returns), and colour codes only to a terminal.
pub(crate) fn init_logging() {
    use std::io::IsTerminal;
    if std::env::var_os("RUST_LOG").is_none() {
        return;
    }
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!(
                "keylink: warning: RUST_LOG is not a valid log filter ({e}), so nothing is logged"
            );
            return;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs the CLI with the process arguments and returns the exit code.
pub fn main() -> i32 {
    // `keylink token` in its plain forms goes to the agent before clap builds its command
    // tree, which alone costs about as much as the agent's answer (see the README's
    // benchmarks); every other form, and every unanswered request, takes the usual path.
    let mut agent_asked = false;
    #[cfg(unix)]
    if let Some(args) = TokenArgs::plain(std::env::args_os().skip(1)) {
        let app = args
            .app
            .or_else(|| std::env::var("KEYLINK_APP").ok().filter(|a| !a.is_empty()));
        match token_from_agent(app.as_deref(), &args.account, args.min_ttl, args.json) {
            Ok(true) => return 0,
            Ok(false) => agent_asked = true,
            // Said below, the usual way.
            Err(_) => {}
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging();
    if matches!(cli.command, Commands::Agent) {
        return run_agent(cli.app.as_deref());
    }
    let doctor_json = matches!(cli.command, Commands::Doctor { json: true });
    match run(cli.app.as_deref(), cli.command, agent_asked) {
        Ok(()) => 0,
        Err(e) => {
            // Fleet tooling reads stdout: a configuration Keylink refuses (such as an untrusted
            // system policy) is still a report there.
            if doctor_json && e.code() == ErrorCode::Config {
                let (message, fix) = (format!("configuration: {e}"), fix_for(&e));
                print_json(&Report {
                    app: cli
                        .app
                        .as_deref()
                        .unwrap_or(AppIdentity::keylink().identifier()),
                    failed: 1,
                    checks: &[Check::fail("config", message, fix)],
                });
            }
            eprintln!("keylink: {}", with_advice(&e));
            exit_code(&e)
        }
    }
}

/// The exit codes of the CLI contract: 2 for usage or configuration errors (and an unknown
/// provider or account), 3 when the account must be linked again, 1 for everything else.
pub(crate) fn exit_code(e: &Error) -> i32 {
    match e.code() {
        ErrorCode::Config | ErrorCode::NotFound => 2,
        ErrorCode::NeedsRelink => 3,
        _ => 1,
    }
}

fn print_json(value: &impl Serialize) {
    // Serialising our own plain types cannot fail.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Keylink for the app `app` (the Keylink app's by default) with the documented
/// environment; what the system policy refused of the user's files is said on stderr.
/// `keylink token` answered by the token agent, when one runs and serves the request:
/// printed exactly as without it. `false` when it did not answer; the keychain is asked then,
/// and says what is wrong.
#[cfg(unix)]
fn token_from_agent(
    app: Option<&str>,
    account: &str,
    min_ttl: u64,
    json: bool,
) -> Result<bool, Error> {
    let env = Environment::capture(std::env::var_os);
    let ttl = Duration::from_secs(min_ttl);
    let Some(answer) = keylink::agent::ask(&identity(app)?, &env, account, ttl) else {
        return Ok(false);
    };
    for warning in &answer.warnings {
        eprintln!("keylink: warning: {warning}");
    }
    print_token(
        &answer.account,
        &answer.access_token,
        answer.expires_at,
        json,
    );
    Ok(true)
}

/// The arguments of `keylink token` in the forms scripts and tools use, read without clap:
/// `[--app ID] token [--json] [--min-ttl SECS] ACCOUNT`, options before or after the
/// account, `--opt=value` or `--opt value`. Anything else is left to clap.
#[derive(Debug, PartialEq, Eq)]
struct TokenArgs {
    app: Option<String>,
    account: String,
    min_ttl: u64,
    json: bool,
}

impl TokenArgs {
    fn plain(args: impl Iterator<Item = std::ffi::OsString>) -> Option<TokenArgs> {
        let args: Vec<String> = args.map(|a| a.into_string().ok()).collect::<Option<_>>()?;
        let mut parsed = TokenArgs {
            app: None,
            account: String::new(),
            min_ttl: 60,
            json: false,
        };
        let (mut command, mut account) = (false, None);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            match name.as_str() {
                "--app" => parsed.app = Some(inline.or_else(|| args.next())?),
                "--min-ttl" if command => {
                    parsed.min_ttl = inline.or_else(|| args.next())?.parse().ok()?
                }
                "--json" if command && inline.is_none() => parsed.json = true,
                "token" if !command => command = true,
                _ if command && account.is_none() && !arg.starts_with('-') && !arg.is_empty() => {
                    account = Some(arg)
                }
                _ => return None,
            }
        }
        parsed.account = account?;
        (command && parsed.app.as_deref() != Some("")).then_some(parsed)
    }
}

/// `keylink token`'s output: the token alone, or JSON with its account and expiry.
fn print_token(
    account: &keylink::AccountId,
    token: &keylink::AccessToken,
    expires_at: Option<keylink::clock::UnixTime>,
    json: bool,
) {
    if json {
        #[derive(Serialize)]
        struct T<'a> {
            account: &'a str,
            access_token: &'a str,
            expires_at: Option<String>,
        }
        print_json(&T {
            account: account.as_str(),
            access_token: token.secret(),
            expires_at: expires_at.map(rfc3339),
        });
    } else {
        println!("{}", token.secret());
    }
}

/// The identity of the app `app` (the Keylink app's by default).
fn identity(app: Option<&str>) -> Result<AppIdentity, Error> {
    Ok(match app {
        Some(id) => AppIdentity::new(id)?,
        None => AppIdentity::keylink(),
    })
}

pub(crate) fn open(app: Option<&str>) -> Result<Keylink, Error> {
    let keylink = Keylink::builder(identity(app)?)
        .environment(Environment::capture(std::env::var_os))
        .build()?;
    for warning in &keylink.config().warnings {
        eprintln!("keylink: warning: {warning}");
    }
    Ok(keylink)
}

/// Runs `command`; `agent_asked` when the token agent already had its chance to answer it.
fn run(app: Option<&str>, command: Commands, agent_asked: bool) -> Result<(), Error> {
    #[cfg(unix)]
    // The agent serves the account's own token only: a limited one is asked for below.
    if let Commands::Token {
        account,
        min_ttl,
        scopes,
        resource: None,
        json,
    } = &command
        && scopes.is_empty()
        && !agent_asked
        && token_from_agent(app, account, *min_ttl, *json)?
    {
        return Ok(());
    }
    let keylink = open(app)?;
    match command {
        Commands::Providers { json } => {
            let providers = &keylink.config().providers;
            if json {
                #[derive(Serialize)]
                struct P<'a> {
                    id: &'a str,
                    name: &'a str,
                    issuer: Option<&'a str>,
                    redirect: &'static str,
                    redirect_uri: String,
                    scopes: &'a [String],
                    source: &'static str,
                    locked: bool,
                }
                let list: Vec<P<'_>> = providers
                    .values()
                    .map(|p| P {
                        id: p.id.as_str(),
                        name: &p.name,
                        issuer: p.issuer.as_deref(),
                        redirect: match p.redirect {
                            keylink::provider::RedirectKind::DeepLink => "deep-link",
                            keylink::provider::RedirectKind::Loopback => "loopback",
                        },
                        redirect_uri: keylink.redirect_uri_to_register(p),
                        scopes: &p.scopes,
                        source: if p.from_policy { "policy" } else { "user" },
                        locked: p.locked,
                    })
                    .collect();
                print_json(&list);
            } else if providers.is_empty() {
                eprintln!(
                    "No providers are configured; add one to the configuration file (see the README)."
                );
            } else {
                for p in providers.values() {
                    let source = match (p.from_policy, p.locked) {
                        (true, true) => " (system policy, locked)",
                        (true, false) => " (system policy)",
                        _ => "",
                    };
                    println!(
                        "{:<16} {:<24} redirect URI to register: {}{source}",
                        p.id,
                        p.name,
                        keylink.redirect_uri_to_register(p)
                    );
                }
            }
            Ok(())
        }
        Commands::Link {
            provider,
            timeout,
            no_browser,
            device,
            scopes,
            json,
        } => {
            let provider = ProviderId::new(provider);
            let name = keylink.provider(&provider)?.name.clone();
            let start = match (device, no_browser) {
                (true, _) => LinkStart::device(provider),
                (false, true) => LinkStart::browser(provider).without_browser(),
                (false, false) => LinkStart::browser(provider),
            }
            .scopes(scopes);
            let session = keylink.link(start)?;
            let account = session.run(Duration::from_secs(timeout), |progress| match progress {
                LinkProgress::OpenInBrowser(url) => {
                    eprintln!("Open this URL in your browser to link your {name} account:");
                    eprintln!("{url}");
                }
                LinkProgress::BrowserOpened => eprintln!(
                    "Continue in your browser to link your {name} account (waiting up to {timeout} s)..."
                ),
                LinkProgress::CodeShown(code) => {
                    eprintln!(
                        "To link your {name} account, open {} and enter the code {}",
                        code.verification_uri, code.user_code
                    );
                    if let Some(complete) = &code.verification_uri_complete {
                        eprintln!("Or open this address, which has the code filled in: {complete}");
                    }
                    eprintln!(
                        "Waiting up to {} s for the sign-in...",
                        timeout.min(code.expires_in.as_secs())
                    );
                }
                _ => {}
            })?;
            if json {
                print_json(&AccountJson::from(&account));
            } else {
                eprintln!("Linked {} at {name}.", account.label());
                println!("{}", account.id);
            }
            Ok(())
        }
        Commands::Reconnect {
            account,
            timeout,
            no_browser,
            scopes,
            json,
        } => reconnect(&keylink, &account, timeout, no_browser, scopes, json),
        Commands::OpenUrl { args } => {
            // The OS may add arguments around the URL; only a redirect URL is ever used.
            let url = args
                .iter()
                .find(|a| looks_like_redirect(keylink.identity(), a))
                .ok_or(keylink::link::RedirectError::RedirectMismatch)?;
            // The provider's confirmation after `unlink --sign-out`: not a sign-in.
            if let Some(provider) = keylink.signed_out_provider(url) {
                eprintln!(
                    "You are signed out of {}.",
                    keylink.provider(&provider)?.name
                );
                return Ok(());
            }
            let account = keylink.complete_redirect(url)?;
            eprintln!(
                "Linked {}.",
                account.email.as_deref().unwrap_or(account.id.as_str())
            );
            Ok(())
        }
        Commands::List { json } => {
            let accounts = keylink.accounts()?;
            if json {
                let list: Vec<AccountJson<'_>> = accounts.iter().map(AccountJson::from).collect();
                print_json(&list);
            } else if accounts.is_empty() {
                eprintln!("No accounts are linked; run `keylink link <provider>`.");
            } else {
                for a in &accounts {
                    let status = match a.status {
                        AccountStatus::Ok => "ok",
                        AccountStatus::NeedsRelink => "needs_relink",
                    };
                    println!(
                        "{:<20} {:<10} {:<32} {}",
                        a.id,
                        a.provider,
                        a.label(),
                        status
                    );
                }
            }
            Ok(())
        }
        Commands::Token {
            account,
            min_ttl,
            scopes,
            resource,
            json,
        } => {
            // The account as the person named it: its id or its email.
            let id = keylink.account(&account)?.id;
            if !scopes.is_empty() || resource.is_some() {
                let mut request = keylink::token::TokenRequest::new();
                for scope in &scopes {
                    request = request.scope(scope)?;
                }
                if let Some(resource) = &resource {
                    request = request.resource(resource)?;
                }
                let token =
                    keylink.access_token_for(&id, &request, Duration::from_secs(min_ttl))?;
                print_token(&id, &token.access_token, token.expires_at, json);
                return Ok(());
            }
            let token = keylink.access_token(&id, Duration::from_secs(min_ttl))?;
            // Read again: a refresh just now moved the expiry.
            let a = keylink.account(id.as_str())?;
            print_token(&a.id, &token, a.expires_at, json);
            Ok(())
        }
        Commands::GitCredential { action } => crate::helpers::git_credential(&keylink, &action),
        Commands::KubectlCredential { account } => {
            crate::helpers::kubectl_credential(&keylink, &account)
        }
        Commands::Kubeconfig {
            account,
            server,
            name,
            certificate_authority,
        } => crate::helpers::kubeconfig(
            &keylink,
            &account,
            &server,
            name.as_deref(),
            certificate_authority.as_deref(),
        ),
        Commands::Unlink { account, sign_out } => {
            let account = keylink.account(&account)?;
            let name = keylink
                .provider(&account.provider)
                .map_or_else(|_| account.provider.to_string(), |p| p.name.clone());
            let report = if sign_out {
                keylink.unlink_and_sign_out(&account.id)?
            } else {
                keylink.unlink(&account.id)?
            };
            match report.revocation {
                Revocation::Revoked => eprintln!(
                    "Revoked the tokens of {} at the provider.",
                    report.account.id
                ),
                Revocation::NotSupported => eprintln!(
                    "The provider has no revocation endpoint; the tokens of {} were only deleted locally.",
                    report.account.id
                ),
                Revocation::Failed(e) => eprintln!(
                    "warning: could not revoke the tokens of {} at the provider ({e}); they were deleted locally.",
                    report.account.id
                ),
            }
            let still = "you are still signed in there in your browser";
            match report.sign_out {
                None => {}
                Some(SignOut::Opened) => eprintln!(
                    "Opened {name}'s sign-out page in your browser; confirm there to end your sign-in at {name}."
                ),
                Some(SignOut::NotSupported) => {
                    eprintln!("{name} offers no way to end its sign-in from here; {still}.")
                }
                Some(SignOut::NoIdToken) => eprintln!(
                    "{name} gave no ID token for this account, so its sign-in cannot be ended from here; {still}."
                ),
                Some(SignOut::Failed(e)) => {
                    eprintln!("warning: could not open {name}'s sign-out page ({e}); {still}.")
                }
                Some(_) => eprintln!("{name}'s sign-in could not be ended from here; {still}."),
            }
            eprintln!("Unlinked {}.", report.account.id);
            Ok(())
        }
        Commands::Agent => unreachable!("`keylink agent` is run by main"),
        Commands::Doctor { json } => doctor(&keylink, json),
    }
}

fn looks_like_redirect(app: &AppIdentity, arg: &str) -> bool {
    app.is_redirect(arg) || arg.starts_with("http://127.0.0.1:")
}

/// Clock skew against a provider beyond which ID tokens and expiry go wrong.
const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(60);

/// One check of `doctor`: a stable id, `ok`/`warn`/`fail`/`skip`, what was found and, when
/// something is wrong, what to do, kept apart so fleet tooling can show either.
#[derive(Serialize)]
struct Check {
    id: String,
    status: &'static str,
    message: String,
    fix: Option<String>,
}

impl Check {
    fn ok(id: impl Into<String>, message: String) -> Check {
        Check::with("ok", id, message, None)
    }

    fn warn(id: impl Into<String>, message: String, fix: Option<String>) -> Check {
        Check::with("warn", id, message, fix)
    }

    fn fail(id: impl Into<String>, message: String, fix: Option<String>) -> Check {
        Check::with("fail", id, message, fix)
    }

    /// A check that could not be made; the message says why.
    fn skip(id: impl Into<String>, message: String) -> Check {
        Check::with("skip", id, message, None)
    }

    fn with(
        status: &'static str,
        id: impl Into<String>,
        message: String,
        fix: Option<String>,
    ) -> Check {
        Check {
            id: id.into(),
            status,
            message,
            fix,
        }
    }

    fn line(&self) -> String {
        match &self.fix {
            Some(fix) => format!("{:<4}  {}; {fix}", self.status, self.message),
            None => format!("{:<4}  {}", self.status, self.message),
        }
    }
}

/// The JSON form of `doctor`'s report.
#[derive(Serialize)]
struct Report<'a> {
    app: &'a str,
    failed: usize,
    checks: &'a [Check],
}

/// `keylink reconnect`: signs in again as `account` (SECURITY 45: the same person only),
/// asking for `scopes` besides those it has; says which of them the provider did not grant.
fn reconnect(
    keylink: &Keylink,
    account: &str,
    timeout: u64,
    no_browser: bool,
    scopes: Vec<String>,
    json: bool,
) -> Result<(), Error> {
    let before = keylink.account(account)?;
    let name = keylink.provider(&before.provider)?.name.clone();
    let label = before.label().to_owned();
    let mut start = LinkStart::reconnect(before.id.clone()).scopes(scopes.clone());
    if no_browser {
        start = start.without_browser();
    }
    let session = keylink.link(start)?;
    let result = session.run(Duration::from_secs(timeout), |progress| match progress {
        LinkProgress::OpenInBrowser(url) => {
            eprintln!("Open this URL in your browser and sign in to {name} as {label}:");
            eprintln!("{url}");
        }
        LinkProgress::BrowserOpened => eprintln!(
            "Continue in your browser and sign in to {name} as {label} (waiting up to {timeout} s)..."
        ),
        _ => {}
    });
    let after = match result {
        Ok(after) => after,
        // Declined at the provider, here or in the process that received the redirect: the
        // account is as it was, which "nothing was linked" would not say.
        Err(e)
            if matches!(e, Error::SignInDeclined(_))
                || matches!(
                    e,
                    Error::LinkFailed {
                        code: ErrorCode::Cancelled,
                        ..
                    }
                ) =>
        {
            return Err(Error::LinkFailed {
                code: ErrorCode::Cancelled,
                message: format!(
                    "the sign-in at {name} was declined, so nothing was changed: {label} keeps the permissions it had"
                ),
                remedy: Some(format!(
                    "run `keylink reconnect {}` again when you are ready",
                    before.id
                )),
            });
        }
        Err(e) => return Err(e),
    };
    if json {
        print_json(&AccountJson::from(&after));
    } else {
        eprintln!("Reconnected {} at {name}.", after.label());
        println!("{}", after.id);
    }
    let missing: Vec<&str> = scopes
        .iter()
        .filter(|s| !after.scopes.contains(s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "keylink: {name} did not grant {}; the account has {}",
            missing.join(" "),
            after.scopes.join(" ")
        );
    }
    Ok(())
}

/// What a `keylink` user can do about `e`, in the CLI's own commands, flags and variables:
/// the library's messages say only what happened.
fn advice(e: &Error) -> Option<String> {
    use keylink::link::DeviceError;
    use keylink::store::StoreError;
    let text = match e {
        Error::UnknownProvider(_) => "run `keylink providers` to see the configured ones".into(),
        Error::UnknownAccount(_) => "run `keylink list` to see the linked accounts".into(),
        Error::AmbiguousAccount(_) => "use the account id from `keylink list` instead".into(),
        Error::InvalidScope(_) => "give each scope to its own --scope, spelled as the provider documents it".into(),
        Error::Browser(_) => "use --device to sign in from another device, or --no-browser to open the printed URL yourself (or set BROWSER)".into(),
        Error::NeedsRelink(_) => "run `keylink link` for its provider".into(),
        Error::ScopeNotGranted { account, scopes } => format!(
            "run `keylink reconnect {account}{}` to ask for it",
            scopes.iter().map(|s| format!(" --scope {s}")).collect::<String>()
        ),
        Error::InvalidResource(_) => "give --resource the API's URI, such as https://api.example.com".into(),
        Error::Identity(IdentityError::DataDirUnknown(_)) => "set KEYLINK_DATA_DIR to an absolute path of your own".into(),
        Error::ChecksFailed(_) => "fix the lines marked fail above".into(),
        Error::LinkTimedOut(_) => "run the link again".into(),
        Error::Device(DeviceError::Unsupported(provider)) => {
            format!("use `keylink link {provider}` in a browser instead")
        }
        Error::Store(StoreError::Keychain(_)) => {
            "try again, and run `keylink doctor` if it persists".into()
        }
        Error::Store(StoreError::DataDir { .. }) | Error::Pending(_) => {
            "check its permissions or set KEYLINK_DATA_DIR".into()
        }
        _ => return None,
    };
    Some(text)
}

/// What to do about `e`: the CLI's own advice, else the library's remedy for every front end.
fn fix_for(e: &Error) -> Option<String> {
    advice(e).or_else(|| e.remedy())
}

/// `e` as the CLI says it: what happened, then what to do.
pub(crate) fn with_advice(e: &Error) -> String {
    match fix_for(e) {
        Some(advice) => format!("{e}; {advice}"),
        None => e.to_string(),
    }
}

/// Whether the account `[credentials."<server>"]` names can answer git, kubectl and docker:
/// linked, and not waiting to be linked again.
fn credential_check(
    keylink: &Keylink,
    server: &keylink::provider::ServerOrigin,
    entry: &keylink::provider::ServerCredential,
) -> Check {
    let id = format!("credentials.{server}");
    match keylink.account(&entry.account) {
        Ok(account) if account.status == AccountStatus::NeedsRelink => Check::warn(
            id,
            format!(
                "credentials for {server}: the account {} must be linked again before tools get tokens",
                account.id
            ),
            Some(format!("keylink link {}", account.provider)),
        ),
        Ok(account) => {
            let answered = format!(
                "credentials for {server}: answered with the token of {} ({})",
                account.id,
                account.label()
            );
            let tools = crate::helpers::tools_asking(server);
            if tools.is_empty() {
                Check::warn(
                    id,
                    format!("{answered}, but neither git nor docker is set up to ask Keylink"),
                    Some(format!(
                        "for git: git config --global credential.{server}.helper '!keylink git-credential'; for docker: \"credHelpers\": {{\"{}\": \"keylink\"}} in ~/.docker/config.json",
                        crate::helpers::registry_key(server)
                    )),
                )
            } else {
                let verb = if tools.len() == 1 { "asks" } else { "ask" };
                Check::ok(
                    id,
                    format!("{answered}; {} {verb} Keylink", tools.join(" and ")),
                )
            }
        }
        Err(e) => Check::fail(
            id,
            format!("credentials for {server}: {e}"),
            Some("link the account, or fix `account` under [credentials] in keylink.toml".into()),
        ),
    }
}

fn doctor(keylink: &Keylink, json: bool) -> Result<(), Error> {
    let mut checks = Vec::new();
    let files: Vec<String> = keylink
        .config()
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    checks.push(Check::ok(
        "config",
        if files.is_empty() {
            "configuration: no file, built-in defaults".into()
        } else {
            format!("configuration: {}", files.join(", "))
        },
    ));
    if let Some(check) = policy_check(keylink.config()) {
        checks.push(check);
    }
    checks.push(match keylink.check_keychain() {
        Ok(()) => Check::ok("keychain", "keychain: reachable and writable".into()),
        Err(e) => Check::fail("keychain", format!("keychain: {e}"), fix_for(&e)),
    });
    for provider in keylink.config().providers.values() {
        let id = format!("provider.{}", provider.id);
        let clock = format!("clock.{}", provider.id);
        match keylink.metadata(provider) {
            Ok(metadata) => {
                checks.push(Check::ok(
                    id,
                    format!("provider {}: reachable", provider.id),
                ));
                checks.push(match keylink.clock_offset(&metadata) {
                    Ok(offset) if offset.magnitude() > MAX_CLOCK_SKEW => {
                        let (by, side) = match offset {
                            ClockOffset::Ahead(by) => (by, "ahead of"),
                            ClockOffset::Behind(by) => (by, "behind"),
                        };
                        Check::warn(
                            clock,
                            format!(
                                "clock: this computer's clock is {} s {side} {}'s",
                                by.as_secs(),
                                provider.id
                            ),
                            Some("set the time automatically (NTP)".into()),
                        )
                    }
                    Ok(offset) => Check::ok(
                        clock,
                        format!(
                            "clock: within {} s of {}",
                            offset.magnitude().as_secs(),
                            provider.id
                        ),
                    ),
                    Err(why) => Check::skip(
                        clock,
                        format!("clock: not compared with {}'s, because {why}", provider.id),
                    ),
                });
            }
            Err(e) => {
                let message = format!("provider {}: {e}", provider.id);
                checks.push(Check::fail(id, message, fix_for(&e)));
                checks.push(Check::skip(
                    clock,
                    format!(
                        "clock: not compared with {}'s, because the provider could not be reached",
                        provider.id
                    ),
                ));
            }
        }
    }
    for (server, entry) in &keylink.config().credentials {
        checks.push(credential_check(keylink, server, entry));
    }
    #[cfg(unix)]
    checks.push(agent_check(keylink));
    #[cfg(target_os = "linux")]
    {
        let (status, message, fix) = url_scheme_check(keylink.identity().scheme());
        checks.push(Check::with(
            status,
            "url_scheme",
            format!("URL scheme: {message}"),
            fix,
        ));
    }
    let failed = checks.iter().filter(|c| c.status == "fail").count();
    if json {
        print_json(&Report {
            app: keylink.identity().identifier(),
            failed,
            checks: &checks,
        });
    } else {
        for check in &checks {
            println!("{}", check.line());
        }
    }
    if failed > 0 {
        Err(Error::ChecksFailed(failed))
    } else {
        Ok(())
    }
}

/// The system policy, which Keylink used only because root owns it and nobody else can write
/// it (SECURITY 47), and a `KEYLINK_POLICY` file it did not use, with why and what to do.
fn policy_check(config: &keylink::Config) -> Option<Check> {
    use keylink::{provider::IgnoredReason, provider::Untrusted};
    let applied = config.policy.as_deref().map(std::path::Path::display);
    let Some(ignored) = &config.ignored_policy else {
        return applied.map(|file| {
            Check::ok(
                "policy",
                format!("policy: {file}, owned by root and writable only by root"),
            )
        });
    };
    let instead = match applied {
        Some(file) => format!("the system policy {file} applies"),
        None => "no system policy applies".to_owned(),
    };
    let message = format!("policy: {ignored}; {instead}");
    let file = ignored.file.display();
    let fix = match &ignored.reason {
        IgnoredReason::Missing => {
            return Some(Check::warn(
                "policy",
                message,
                Some(format!(
                    "create {file} as root (owned by root, writable only by root), or unset KEYLINK_POLICY"
                )),
            ));
        }
        IgnoredReason::SystemPolicyDeployed => {
            return Some(Check::warn(
                "policy",
                message,
                Some(format!(
                    "unset KEYLINK_POLICY; to change the policy, edit {} as root",
                    keylink::provider::SYSTEM_POLICY_FILE
                )),
            ));
        }
        IgnoredReason::Untrusted(Untrusted::NotOwnedByRoot { .. }) => format!(
            "run `sudo chown root:root {file} && sudo chmod 644 {file}`, or unset KEYLINK_POLICY"
        ),
        IgnoredReason::Untrusted(Untrusted::WritableByOthers { .. }) => {
            format!("run `sudo chmod 644 {file}`, or unset KEYLINK_POLICY")
        }
        IgnoredReason::Untrusted(Untrusted::NotRegularFile) => {
            "point KEYLINK_POLICY at a regular file owned by root, or unset it".to_owned()
        }
        IgnoredReason::Unreadable(_) => {
            format!("run `sudo chmod 644 {file}`, or unset KEYLINK_POLICY")
        }
        _ => "unset KEYLINK_POLICY".to_owned(),
    };
    Some(Check::fail("policy", message, Some(fix)))
}

/// The URL-scheme line of `doctor`: the handler as `xdg-open` finds it, and what to do when it
/// finds none that works. A warning, not a failure: links still complete through
/// `keylink open-url` or a loopback redirect.
#[cfg(target_os = "linux")]
fn url_scheme_check(scheme: &str) -> (&'static str, String, Option<String>) {
    use keylink::{
        platform::HandlerResolution, platform::XdgEnvironment, platform::resolve_url_handler,
    };
    const REGISTER: &str = "start the Keylink app once (it registers itself) or install the keylink package; until then deliver redirects with `keylink open-url`";
    let warn = |message: String, fix: &str| ("warn", message, Some(fix.to_owned()));
    let Some(env) = XdgEnvironment::from_vars(|name| std::env::var_os(name)) else {
        return warn(
            format!(
                "cannot look up what handles {scheme}: neither HOME nor XDG_DATA_HOME is an absolute directory"
            ),
            "set HOME",
        );
    };
    // A package's handler that the user's own leftovers shadow (SECURITY 55): the exact files
    // and the command, whatever xdg-open would find instead.
    match keylink::platform::shadowed_package_handler(scheme, &env) {
        Ok(Some(shadow)) => {
            let instead = match (&shadow.default_id, shadow.leftovers.first()) {
                (_, Some(file)) => format!("the per-user entry {}", file.display()),
                (Some(id), None) => format!("{id}, which no applications directory has"),
                (None, None) => "nothing".to_owned(),
            };
            return (
                "warn",
                format!(
                    "{scheme} should open with the installed package's {}, but your own files send it to {instead} (left by a Keylink run from outside the package), so browsers hand sign-ins to the wrong program",
                    shadow.package_entry.display()
                ),
                Some(shadow.fix),
            );
        }
        Ok(None) => {}
        Err(e) => return warn(e.to_string(), REGISTER),
    }
    match resolve_url_handler(scheme, &env) {
        Ok(HandlerResolution::Resolved {
            desktop_file,
            program,
        }) => {
            let target = match std::fs::read_link(&program) {
                Ok(_) => std::fs::canonicalize(&program)
                    .map(|t| format!(" -> {}", t.display()))
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            (
                "ok",
                format!(
                    "{scheme} opens with {} ({}{target})",
                    desktop_file.display(),
                    program.display()
                ),
                None,
            )
        }
        Ok(HandlerResolution::NoDefault) => warn(
            format!("nothing handles {scheme}, so browsers cannot hand sign-ins back"),
            REGISTER,
        ),
        Ok(HandlerResolution::DesktopFileMissing { id }) => warn(
            format!("{scheme} is set to open with {id}, which is in no applications directory"),
            REGISTER,
        ),
        Ok(HandlerResolution::UnusableEntry {
            desktop_file,
            problem,
        }) => warn(
            format!(
                "{scheme} opens with {}, but {problem}",
                desktop_file.display()
            ),
            REGISTER,
        ),
        Ok(HandlerResolution::ProgramMissing {
            desktop_file,
            program,
        }) => warn(
            format!(
                "{} runs {}, which does not exist (moved or deleted?)",
                desktop_file.display(),
                program.display()
            ),
            "start the Keylink app from where it is now to register it again",
        ),
        Ok(HandlerResolution::ProgramNotExecutable {
            desktop_file,
            program,
        }) => warn(
            format!(
                "{} runs {}, which is not an executable file",
                desktop_file.display(),
                program.display()
            ),
            "make it executable (chmod +x) or start the Keylink app again",
        ),
        Ok(HandlerResolution::QuotedProgram {
            desktop_file,
            program,
        }) => warn(
            format!(
                "{} quotes the path of {}, which xdg-open outside GNOME and KDE cannot run, so Chromium's sign-ins get lost",
                desktop_file.display(),
                program.display()
            ),
            "start the Keylink app once to rewrite it",
        ),
        Ok(other) => warn(
            format!("the handler of {scheme} is in a state this doctor does not know ({other:?})"),
            REGISTER,
        ),
        Err(e) => warn(e.to_string(), REGISTER),
    }
}

/// Whether a token agent serves this app's tokens (`agent`): information, never a failure,
/// since everything works from the keychain without one.
#[cfg(unix)]
fn agent_check(keylink: &Keylink) -> Check {
    use keylink::agent::AgentStatus;
    let env = Environment::capture(std::env::var_os);
    match keylink::agent::status(keylink.identity(), &env) {
        AgentStatus::Serving(path) => Check::ok(
            "agent",
            format!("token agent: serving on {}", path.display()),
        ),
        AgentStatus::NotRunning(path) => Check::ok(
            "agent",
            format!(
                "token agent: none serves on {}, so tokens come from the keychain (`keylink agent` starts one)",
                path.display()
            ),
        ),
        AgentStatus::NoRuntimeDir => Check::ok(
            "agent",
            "token agent: XDG_RUNTIME_DIR is not set, so tokens come from the keychain".into(),
        ),
        AgentStatus::UnsafeDir { path, problem } => Check::warn(
            "agent",
            format!(
                "token agent: {} {problem}, so it is not used",
                path.display()
            ),
            Some(format!(
                "remove {} (nothing in it is kept) and start the agent again",
                path.display()
            )),
        ),
        AgentStatus::OtherUser { path, uid } => Check::warn(
            "agent",
            format!(
                "token agent: {} belongs to user id {uid}, so it is not used",
                path.display()
            ),
            Some(format!(
                "remove {} and start the agent again",
                path.display()
            )),
        ),
        _ => Check::skip("agent", "token agent: its state is not known".into()),
    }
}

/// `keylink agent`: serves until stopped, on the socket systemd passes (socket activation)
/// or on one of its own. The configuration is loaded once first, so an unusable one stops
/// it at once with the usual error and exit code.
fn run_agent(app: Option<&str>) -> i32 {
    let keylink = match open(app) {
        Ok(keylink) => keylink,
        Err(e) => {
            eprintln!("keylink: {}", with_advice(&e));
            return exit_code(&e);
        }
    };
    #[cfg(unix)]
    {
        use keylink::agent::{Agent, AgentError};
        let fail = |e: AgentError| {
            match e.remedy() {
                Some(remedy) => eprintln!("keylink: {e}; {remedy}."),
                None => eprintln!("keylink: {e}."),
            }
            1
        };
        let env = Environment::capture(std::env::var_os);
        let identity = keylink.identity().clone();
        let activated = listenfd::ListenFd::from_env()
            .take_unix_listener(0)
            .ok()
            .flatten();
        let agent = match activated {
            Some(listener) => Agent::from_listener(listener, identity, env),
            None => Agent::bind(identity, env),
        };
        let agent = match agent {
            Ok(agent) => agent,
            Err(e) => return fail(e),
        };
        eprintln!(
            "keylink agent: serving the tokens of {} on {} until stopped",
            keylink.identity().identifier(),
            agent.path().display()
        );
        drop(keylink);
        match agent.serve() {
            Ok(()) => 0,
            Err(e) => fail(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = keylink;
        eprintln!("keylink: the token agent runs only on Unix systems.");
        1
    }
}

#[cfg(test)]
mod tests;
