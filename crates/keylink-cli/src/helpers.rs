//! Credential helpers for the tools people already run, each speaking its tool's protocol
//! over a linked account's fresh access token: git's (`keylink git-credential`), kubectl's exec
//! plugin (`keylink kubectl-credential`, `keylink kubeconfig`) and docker's
//! (`docker-credential-keylink`). Which account answers for which server is configured under
//! `[credentials."<server>"]`; a server without an entry gets nothing, so the tool asks
//! elsewhere.

use std::io::{BufRead, Read, Write};
use std::time::Duration;

use keylink::clock::rfc3339;
use keylink::provider::{ServerCredential, ServerOrigin};
use keylink::{AccessToken, Account, AccountId, Error, Keylink};
use serde::Serialize;

/// How long a token handed to a tool stays valid at least: git, kubectl and docker may use it
/// for a whole clone, apply or pull.
const MIN_TTL: Duration = Duration::from_secs(60);

/// The most of stdin a helper reads: a credential request is a few lines.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// A fresh token for the account a person named (id or email), and the account as it is
/// after any refresh (its expiry moved).
fn fresh_token(keylink: &Keylink, account: &str) -> Result<(AccessToken, Account), Error> {
    // The token agent first, when one runs (these tools ask on every operation); the
    // account as the index has it now.
    #[cfg(unix)]
    if let Some(answer) = keylink::agent::ask(
        keylink.identity(),
        &keylink::Environment::capture(std::env::var_os),
        account,
        MIN_TTL,
    ) {
        let account = keylink.account(answer.account.as_str())?;
        return Ok((answer.access_token, account));
    }
    let id = keylink.account(account)?.id;
    let token = keylink.access_token(&id, MIN_TTL)?;
    let account = keylink.account(id.as_str())?;
    Ok((token, account))
}

/// The configured entry for `server`, if any.
fn credential_for<'a>(keylink: &'a Keylink, server: &ServerOrigin) -> Option<&'a ServerCredential> {
    keylink.config().credentials.get(server)
}

/// Stdin, at most [`MAX_REQUEST_BYTES`], as text.
fn read_request() -> String {
    let mut text = String::new();
    let _ = std::io::stdin()
        .take(MAX_REQUEST_BYTES)
        .read_to_string(&mut text);
    text
}

/// `keylink git-credential <action>`: git's credential-helper protocol
/// (gitcredentials(7), git-credential(1)).
pub(crate) fn git_credential(keylink: &Keylink, action: &str) -> Result<(), Error> {
    // `key=value` lines up to a blank line or the end.
    let mut fields: Vec<(String, String)> = Vec::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().take(MAX_REQUEST_BYTES).lines() {
        let Ok(line) = line else { break };
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            fields.push((key.to_owned(), value.to_owned()));
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let server = match (field("protocol"), field("host")) {
        (Some(protocol), Some(host)) => ServerOrigin::from_request(protocol, host).ok(),
        _ => None,
    };
    let Some(entry) = server.as_ref().and_then(|s| credential_for(keylink, s)) else {
        // Not ours: git asks its next helper, or the person.
        return Ok(());
    };
    match action {
        "get" => {
            let (token, account) = fresh_token(keylink, &entry.account)?;
            let mut answer = format!("username={}\npassword={}\n", entry.username, token.secret());
            if let Some(expiry) = account.expires_at {
                answer.push_str(&format!("password_expiry_utc={expiry}\n"));
            }
            print_secret(&answer);
            Ok(())
        }
        // git lost the server's trust in this password (HTTP 401): if it is the account's
        // current token, replace it now; the account stays linked.
        "erase" => {
            let Some(refused) = field("password") else {
                return Ok(());
            };
            let id = keylink.account(&entry.account)?.id;
            forget_refused_token(keylink, &id, refused)
        }
        // git offers every password that worked; Keylink keeps only its own tokens.
        _ => Ok(()),
    }
}

/// Replaces the account's token when `refused` is it (a server answered 401 to it).
fn forget_refused_token(keylink: &Keylink, id: &AccountId, refused: &str) -> Result<(), Error> {
    let current = keylink.access_token(id, Duration::ZERO)?;
    // Compared in constant time, as the secret types do.
    if current != AccessToken::new(refused) {
        return Ok(());
    }
    match keylink.replace_refused_token(id, &current) {
        Ok(_) | Err(Error::TokenRejectedAgain(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Prints text holding a secret to stdout in one write, and flushes it.
fn print_secret(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// `keylink kubectl-credential <account>`: an `ExecCredential` for kubectl's exec
/// credential plugins, in the API version kubectl asked for in `KUBERNETES_EXEC_INFO`.
pub(crate) fn kubectl_credential(keylink: &Keylink, account: &str) -> Result<(), Error> {
    const V1: &str = "client.authentication.k8s.io/v1";
    const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
    let asked = std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|info| serde_json::from_str::<serde_json::Value>(&info).ok())
        .and_then(|info| info["apiVersion"].as_str().map(str::to_owned));
    let api_version = match asked.as_deref() {
        Some(V1BETA1) => V1BETA1,
        _ => V1,
    };
    let (token, account) = fresh_token(keylink, account)?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status<'a> {
        token: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        expiration_timestamp: Option<String>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ExecCredential<'a> {
        api_version: &'a str,
        kind: &'a str,
        status: Status<'a>,
    }
    let credential = ExecCredential {
        api_version,
        kind: "ExecCredential",
        status: Status {
            token: token.secret(),
            expiration_timestamp: account.expires_at.map(rfc3339),
        },
    };
    print_secret(&format!(
        "{}\n",
        serde_json::to_string(&credential).unwrap_or_default()
    ));
    Ok(())
}

/// `keylink kubeconfig <account> --server URL`: a kubeconfig whose user runs
/// `keylink kubectl-credential <account id>` for every kubectl call.
pub(crate) fn kubeconfig(
    keylink: &Keylink,
    account: &str,
    server: &str,
    name: Option<&str>,
    certificate_authority: Option<&std::path::Path>,
) -> Result<(), Error> {
    let account = keylink.account(account)?;
    let name = name.map_or_else(|| format!("keylink-{}", account.provider), str::to_owned);
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| "keylink".to_owned());
    // YAML is a superset of JSON: every string below is written as a JSON string, so no
    // value can change the document's structure.
    let q = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let mut cluster = format!("    server: {}\n", q(server));
    if let Some(ca) = certificate_authority {
        cluster.push_str(&format!(
            "    certificate-authority: {}\n",
            q(&ca.display().to_string())
        ));
    }
    let identity = keylink.identity().identifier();
    let mut args = String::new();
    if identity != keylink::AppIdentity::keylink().identifier() {
        args.push_str(&format!("      - --app\n      - {}\n", q(identity)));
    }
    args.push_str(&format!(
        "      - kubectl-credential\n      - {}\n",
        q(account.id.as_str())
    ));
    println!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n{cluster}users:\n- name: {n}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {program}\n      args:\n{args}contexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {n}\ncurrent-context: {n}",
        n = q(&name),
        program = q(&program),
    );
    Ok(())
}

/// The server a docker credential request names: a URL, or a bare registry host (https).
fn docker_server(text: &str) -> Option<ServerOrigin> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    // docker may name a path below the registry (`https://index.docker.io/v1/`).
    ServerOrigin::parse(&url.origin().ascii_serialization()).ok()
}

/// What `docker-credential-keylink` answers when it has nothing for a server: the exact text
/// docker's helper client recognises as "not found".
const DOCKER_NOT_FOUND: &str = "credentials not found in native keychain";

/// `docker-credential-keylink <get|store|erase|list>`: docker's credential-helper protocol
/// (github.com/docker/docker-credential-helpers), on stdin and stdout. Returns the exit code.
pub(crate) fn docker_credential(keylink: &Keylink, action: &str) -> Result<i32, Error> {
    match action {
        "get" => {
            let request = read_request();
            let found = docker_server(&request).and_then(|server| credential_for(keylink, &server));
            let Some(entry) = found else {
                println!("{DOCKER_NOT_FOUND}");
                return Ok(1);
            };
            let (token, _) = fresh_token(keylink, &entry.account)?;
            #[derive(Serialize)]
            #[serde(rename_all = "PascalCase")]
            struct Answer<'a> {
                #[serde(rename = "ServerURL")]
                server_url: &'a str,
                username: &'a str,
                secret: &'a str,
            }
            let answer = Answer {
                server_url: request.trim(),
                username: &entry.username,
                secret: token.secret(),
            };
            print_secret(&format!(
                "{}\n",
                serde_json::to_string(&answer).unwrap_or_default()
            ));
            Ok(0)
        }
        "store" => {
            // The request holds the password docker wants kept: read, never kept.
            let _ = read_request();
            eprintln!(
                "docker-credential-keylink: Keylink does not store registry passwords; map the registry to a linked account under [credentials] in keylink.toml instead"
            );
            Ok(1)
        }
        "erase" => {
            // `docker logout`: the account stays linked; nothing to forget here.
            let _ = read_request();
            Ok(0)
        }
        "list" => {
            let list: std::collections::BTreeMap<&str, &str> = keylink
                .config()
                .credentials
                .iter()
                .map(|(server, entry)| (server.as_str(), entry.username.as_str()))
                .collect();
            println!("{}", serde_json::to_string(&list).unwrap_or_default());
            Ok(0)
        }
        _ => {
            eprintln!(
                "docker-credential-keylink: unknown action; use get, store, erase or list (docker runs it for you)"
            );
            Ok(2)
        }
    }
}

/// How docker names `server` in its configuration: the host, with the port when it is not
/// the default.
pub(crate) fn registry_key(server: &ServerOrigin) -> String {
    url::Url::parse(server.as_str())
        .ok()
        .and_then(|url| {
            let host = url.host_str()?.to_owned();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| server.to_string())
}

/// The tools set up to ask Keylink for `server`'s credentials: git (its
/// `credential.<url>.helper` runs `keylink git-credential`) and docker (`credHelpers` or
/// `credsStore` in its `config.json` names `keylink`). Read the way each tool reads its own
/// configuration; a tool that is not installed asks nobody.
pub(crate) fn tools_asking(server: &ServerOrigin) -> Vec<&'static str> {
    let mut tools = Vec::new();
    let git = std::process::Command::new("git")
        .args([
            "config",
            "--get-urlmatch",
            "credential.helper",
            server.as_str(),
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(out) = git {
        let helper = String::from_utf8_lossy(&out.stdout);
        if helper.contains("keylink") && helper.contains("git-credential") {
            tools.push("git");
        }
    }
    let docker_dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")));
    let docker_config = docker_dir
        .and_then(|dir| std::fs::File::open(dir.join("config.json")).ok())
        .and_then(|file| {
            let mut text = String::new();
            file.take(MAX_REQUEST_BYTES * 16)
                .read_to_string(&mut text)
                .ok()?;
            serde_json::from_str::<serde_json::Value>(&text).ok()
        });
    if let Some(config) = docker_config {
        let key = registry_key(server);
        if config["credHelpers"][&key] == "keylink" || config["credsStore"] == "keylink" {
            tools.push("docker");
        }
    }
    tools
}
