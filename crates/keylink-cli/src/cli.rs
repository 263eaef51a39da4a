//! The `keylink` command line: the contract in the README (commands, JSON, exit codes), on top
//! of the [`Keylink`] API.

use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;

use keylink::rfc3339;
use keylink::{Account, AccountStatus, Revocation};
use keylink::{AppIdentity, Environment, Keylink, LinkProgress, LinkStart};
use keylink::{Error, ErrorCode};

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
        /// Print the linked account as JSON.
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
        /// Print JSON with the token and its expiry.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an account's tokens at the provider and delete them locally.
    Unlink {
        /// Account id or email.
        account: String,
    },
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
            id: &a.id,
            provider: &a.provider,
            issuer: &a.issuer,
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the CLI with the process arguments and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging();
    match run(cli.app.as_deref(), cli.command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keylink: {e}");
            exit_code(&e)
        }
    }
}

/// The exit codes of the CLI contract: 2 for usage or configuration errors (and an unknown
/// provider or account), 3 when the account must be linked again, 1 for everything else.
fn exit_code(e: &Error) -> i32 {
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

fn run(app: Option<&str>, command: Commands) -> Result<(), Error> {
    let identity = match app {
        Some(id) => AppIdentity::new(id)?,
        None => AppIdentity::keylink(),
    };
    let keylink = Keylink::builder()
        .identity(identity)
        .environment(Environment::capture(std::env::var_os))
        .build()?;
    // What the system policy refused of the user's files: said, and nothing else changes.
    for warning in &keylink.config().warnings {
        eprintln!("keylink: warning: {warning}");
    }
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
                        id: &p.id,
                        name: &p.name,
                        issuer: p.issuer.as_deref(),
                        redirect: match p.redirect {
                            keylink::RedirectKind::DeepLink => "deep-link",
                            keylink::RedirectKind::Loopback => "loopback",
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
            json,
        } => {
            let name = keylink.provider(&provider)?.name.clone();
            let start = match (device, no_browser) {
                (true, _) => LinkStart::device(provider),
                (false, true) => LinkStart::browser(provider).without_browser(),
                (false, false) => LinkStart::browser(provider),
            };
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
                let who = account
                    .email
                    .as_deref()
                    .or(account.name.as_deref())
                    .unwrap_or(&account.subject);
                eprintln!("Linked {} at {name}.", keylink::printable(who, 320));
                println!("{}", account.id);
            }
            Ok(())
        }
        Commands::OpenUrl { args } => {
            // The OS may add arguments around the URL; only a redirect URL is ever used.
            let url = args
                .iter()
                .find(|a| looks_like_redirect(keylink.identity(), a))
                .ok_or(keylink::RedirectError::RedirectMismatch)?;
            let account = keylink.complete_redirect(url)?;
            eprintln!(
                "Linked {}.",
                account.email.as_deref().unwrap_or(&account.id)
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
                    // Cleaned again when shown: an index written by an older version may
                    // hold text as the provider sent it.
                    let who = a
                        .email
                        .as_deref()
                        .or(a.name.as_deref())
                        .unwrap_or(&a.subject);
                    println!(
                        "{:<20} {:<10} {:<32} {}",
                        a.id,
                        a.provider,
                        keylink::printable(who, 320),
                        status
                    );
                }
            }
            Ok(())
        }
        Commands::Token {
            account,
            min_ttl,
            json,
        } => {
            let token = keylink.access_token(&account, min_ttl)?;
            if json {
                let a = keylink.account(&account)?;
                #[derive(Serialize)]
                struct T<'a> {
                    account: &'a str,
                    access_token: &'a str,
                    expires_at: Option<String>,
                }
                print_json(&T {
                    account: &a.id,
                    access_token: token.secret(),
                    expires_at: a.expires_at.map(rfc3339),
                });
            } else {
                println!("{}", token.secret());
            }
            Ok(())
        }
        Commands::Unlink { account } => {
            let report = keylink.unlink(&account)?;
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
            eprintln!("Unlinked {}.", report.account.id);
            Ok(())
        }
        Commands::Doctor { json } => doctor(&keylink, json),
    }
}

fn looks_like_redirect(app: &AppIdentity, arg: &str) -> bool {
    app.is_redirect(arg) || arg.starts_with("http://127.0.0.1:")
}

/// Clock skew against a provider beyond which ID tokens and expiry go wrong.
const MAX_CLOCK_SKEW: i64 = 60;

/// One check of `doctor`: a stable id, `ok`/`warn`/`fail`, what was found and, when
/// something is wrong, what to do.
#[derive(Serialize)]
struct Check {
    id: String,
    status: &'static str,
    message: String,
    fix: Option<String>,
}

impl Check {
    /// A check whose text follows the house form "what happened; what to do": the part
    /// after the last "; " is the fix when the check did not pass.
    fn new(id: impl Into<String>, status: &'static str, text: String) -> Check {
        let (message, fix) = match text.rsplit_once("; ") {
            Some((message, fix)) if status != "ok" => (message.to_owned(), Some(fix.to_owned())),
            _ => (text, None),
        };
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

fn doctor(keylink: &Keylink, json: bool) -> Result<(), Error> {
    let mut checks = Vec::new();
    let files: Vec<String> = keylink
        .config()
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    checks.push(Check::new(
        "config",
        "ok",
        if files.is_empty() {
            "configuration: no file, built-in defaults".into()
        } else {
            format!("configuration: {}", files.join(", "))
        },
    ));
    if let Some(policy) = &keylink.config().policy {
        checks.push(policy_check(policy));
    }
    checks.push(match keylink.check_keychain() {
        Ok(()) => Check::new("keychain", "ok", "keychain: reachable and writable".into()),
        Err(e) => Check::new("keychain", "fail", format!("keychain: {e}")),
    });
    for provider in keylink.config().providers.values() {
        let id = format!("provider.{}", provider.id);
        match keylink.metadata(provider) {
            Ok(metadata) => {
                checks.push(Check::new(
                    &id,
                    "ok",
                    format!("provider {}: reachable", provider.id),
                ));
                let clock = format!("clock.{}", provider.id);
                match provider_clock_skew(keylink, &metadata) {
                    Some(skew) if skew.abs() > MAX_CLOCK_SKEW => checks.push(Check::new(
                        clock,
                        "warn",
                        format!(
                            "clock: this computer's clock is {skew} s off from {}'s; set the time automatically (NTP)",
                            provider.id
                        ),
                    )),
                    Some(skew) => checks.push(Check::new(
                        clock,
                        "ok",
                        format!("clock: within {} s of {}", skew.abs(), provider.id),
                    )),
                    None => {}
                }
            }
            Err(e) => checks.push(Check::new(
                id,
                "fail",
                format!("provider {}: {e}", provider.id),
            )),
        }
    }
    #[cfg(target_os = "linux")]
    {
        let (status, text) = url_scheme_check(keylink.identity().scheme());
        checks.push(Check::new(
            "url_scheme",
            status,
            format!("URL scheme: {text}"),
        ));
    }
    let failed = checks.iter().filter(|c| c.status == "fail").count();
    if json {
        #[derive(Serialize)]
        struct Report<'a> {
            app: &'a str,
            failed: usize,
            checks: &'a [Check],
        }
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

/// The system policy file must not be writable by anyone but its owner, and on a managed
/// machine belongs to root: otherwise a user could rewrite the admin's providers.
fn policy_check(policy: &std::path::Path) -> Check {
    let shown = policy.display();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(policy) {
            Ok(meta) if meta.mode() & 0o022 != 0 => {
                return Check::new(
                    "policy",
                    "fail",
                    format!(
                        "policy: {shown} can be written by other users (mode {:03o}), so they can change the providers it sets; run `chmod 644 {shown}` as root",
                        meta.mode() & 0o777
                    ),
                );
            }
            Ok(meta) if meta.uid() != 0 => {
                return Check::new(
                    "policy",
                    "warn",
                    format!(
                        "policy: {shown} belongs to user id {}, not root; run `chown root:root {shown}`",
                        meta.uid()
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => {
                return Check::new(
                    "policy",
                    "fail",
                    format!("policy: {shown} cannot be read ({e}); check that it exists"),
                );
            }
        }
    }
    Check::new(
        "policy",
        "ok",
        format!("policy: {shown}, not writable by users"),
    )
}

/// The URL-scheme line of `doctor`: the handler as `xdg-open` finds it, and what to do when it
/// finds none that works. A warning, not a failure: links still complete through
/// `keylink open-url` or a loopback redirect.
#[cfg(target_os = "linux")]
fn url_scheme_check(scheme: &str) -> (&'static str, String) {
    use keylink::{HandlerResolution, XdgEnvironment, resolve_url_handler};
    const REGISTER: &str = "start the Keylink app once (it registers itself) or install the keylink package; until then deliver redirects with `keylink open-url`";
    let Some(env) = XdgEnvironment::from_vars(|name| std::env::var_os(name)) else {
        return (
            "warn",
            format!(
                "cannot look up what handles {scheme}: neither HOME nor XDG_DATA_HOME is an absolute directory; set HOME"
            ),
        );
    };
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
            )
        }
        Ok(HandlerResolution::NoDefault) => (
            "warn",
            format!("nothing handles {scheme}, so browsers cannot hand sign-ins back; {REGISTER}"),
        ),
        Ok(HandlerResolution::DesktopFileMissing { id }) => (
            "warn",
            format!(
                "{scheme} is set to open with {id}, which is in no applications directory; {REGISTER}"
            ),
        ),
        Ok(HandlerResolution::UnusableEntry {
            desktop_file,
            problem,
        }) => (
            "warn",
            format!(
                "{scheme} opens with {}, but {problem}; {REGISTER}",
                desktop_file.display()
            ),
        ),
        Ok(HandlerResolution::ProgramMissing {
            desktop_file,
            program,
        }) => (
            "warn",
            format!(
                "{} runs {}, which does not exist (moved or deleted?); start the Keylink app from where it is now to register it again",
                desktop_file.display(),
                program.display()
            ),
        ),
        Ok(HandlerResolution::ProgramNotExecutable {
            desktop_file,
            program,
        }) => (
            "warn",
            format!(
                "{} runs {}, which is not an executable file; make it executable (chmod +x) or start the Keylink app again",
                desktop_file.display(),
                program.display()
            ),
        ),
        Ok(HandlerResolution::QuotedProgram {
            desktop_file,
            program,
        }) => (
            "warn",
            format!(
                "{} quotes the path of {}, which xdg-open outside GNOME and KDE cannot run, so Chromium's sign-ins get lost; start the Keylink app once to rewrite it",
                desktop_file.display(),
                program.display()
            ),
        ),
        Ok(other) => (
            "warn",
            format!(
                "the handler of {scheme} is in a state this doctor does not know ({other:?}); {REGISTER}"
            ),
        ),
        Err(e) => ("warn", e.to_string()),
    }
}

/// Local time minus the provider's, from the HTTP `Date` of its authorization endpoint.
fn provider_clock_skew(keylink: &Keylink, metadata: &keylink::Metadata) -> Option<i64> {
    let http = keylink.http();
    let answer = http
        .send(
            "the authorization endpoint",
            http.client().head(metadata.authorization_endpoint.clone()),
        )
        .ok()?;
    let date = answer.header("date")?;
    let theirs = httpdate::parse_http_date(date).ok()?;
    let theirs = theirs.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let ours = keylink::Clock::now(&keylink::SystemClock);
    Some(ours - i64::try_from(theirs).ok()?)
}
