//! A fault-injecting OpenID provider for what a certified provider will not produce: forged
//! ID tokens, hostile discovery documents, odd token responses. Plain HTTP on 127.0.0.1 (which
//! Keylink accepts for loopback hosts), one thread per connection.

use std::sync::{Arc, Mutex};

use super::http_server::{Reply, Request, Server};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const PRIVATE_KEY: &[u8] = include_bytes!("../../../keylink/tests/fixtures/test-rsa.pem");
pub const PUBLIC_KEY: &[u8] = include_bytes!("../../../keylink/tests/fixtures/test-rsa.pub.pem");
pub const JWKS: &str = include_str!("../../../keylink/tests/fixtures/test-rsa.jwks.json");
pub const CLIENT_ID: &str = "fake-client";

#[derive(Default)]
struct State {
    discovery_overrides: serde_json::Map<String, Value>,
    token_response: Option<(u16, String)>,
    token_requests: usize,
    discovery_redirect: Option<String>,
    /// Like GitHub: token responses are form-encoded unless the client asks for JSON.
    form_unless_json: bool,
    /// Headers and body of the last token request.
    last_token_request: Option<(Vec<(String, String)>, String)>,
    /// Hostile answers by path: `(path, reply maker)`.
    hostile: Vec<(String, Hostile)>,
    /// Refresh answers, in order (the first is used first).
    refresh_responses: Vec<(u16, String)>,
}

/// What a hostile provider does instead of answering normally.
#[derive(Clone, Debug)]
pub enum Hostile {
    /// Sends a valid-looking answer one byte every 1.5 s.
    Dribble,
    /// Sends 1 GiB.
    Huge,
    /// Answers with this status and JSON body.
    Json(u16, Value),
}

/// The fake provider. Dropping it stops it.
pub struct FakeIdp {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    server: Server,
}

impl FakeIdp {
    pub fn start() -> FakeIdp {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = Server::start(move |request, issuer| handle(request, &shared, issuer));
        FakeIdp {
            issuer: server.url.clone(),
            state,
            server,
        }
    }

    /// How many requests reached the provider.
    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    /// Replaces fields of the discovery document (a `null` removes the field).
    pub fn set_discovery(&self, fields: Value) {
        let mut state = self.state.lock().unwrap();
        for (k, v) in fields.as_object().unwrap() {
            state.discovery_overrides.insert(k.clone(), v.clone());
        }
    }

    /// Discovery answers `302 Found` to `location`.
    pub fn redirect_discovery_to(&self, location: &str) {
        self.state.lock().unwrap().discovery_redirect = Some(location.to_owned());
    }

    /// The next token endpoint answers with this status and body.
    pub fn set_token_response(&self, status: u16, body: Value) {
        self.state.lock().unwrap().token_response = Some((status, body.to_string()));
    }

    /// Answers requests for `path` (e.g. `/token`, `/jwks`, `/.well-known/openid-configuration`)
    /// the hostile way.
    pub fn set_hostile(&self, path: &str, hostile: Hostile) {
        self.state
            .lock()
            .unwrap()
            .hostile
            .push((path.to_owned(), hostile));
    }

    /// Answers the next refresh request with this status and body.
    pub fn push_refresh_response(&self, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .refresh_responses
            .push((status, body.to_string()));
    }

    /// Answers token requests form-encoded unless they `Accept: application/json` (GitHub).
    pub fn form_unless_json(&self) {
        self.state.lock().unwrap().form_unless_json = true;
    }

    /// The headers and form body of the last token request.
    pub fn last_token_request(&self) -> (Vec<(String, String)>, String) {
        self.state
            .lock()
            .unwrap()
            .last_token_request
            .clone()
            .expect("a token request")
    }

    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    /// Standard ID token claims for `nonce`, valid now.
    pub fn claims(&self, nonce: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        json!({
            "iss": self.issuer, "sub": "fake-user", "aud": CLIENT_ID, "exp": now + 300,
            "iat": now, "nonce": nonce, "email": "fake@example.test", "name": "Fake User"
        })
    }

    /// A token response carrying `id_token`.
    pub fn token_body(id_token: &str) -> Value {
        json!({
            "access_token": "fake-access-token-canary", "token_type": "Bearer", "expires_in": 300,
            "refresh_token": "fake-refresh-token-canary", "id_token": id_token,
            "scope": "openid email profile"
        })
    }

    /// The provider's configuration for a Keylink config file.
    pub fn config(&self, provider: &str) -> String {
        format!(
            "[providers.{provider}]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nscopes = [\"openid\", \"email\", \"profile\"]\n",
            self.issuer
        )
    }
}

/// Signs `claims` with the test RSA key (RS256, kid test-key-1).
pub fn sign_rs256(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(PRIVATE_KEY).unwrap(),
    )
    .unwrap()
}

/// The classic key-confusion forgery: HS256 with the RSA public key as the HMAC secret.
pub fn sign_hs256_with_public_key(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-key-1".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(PUBLIC_KEY)).unwrap()
}

/// An unsigned token (`alg: none`).
pub fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

fn handle(request: &Request, state: &Mutex<State>, issuer: &str) -> Reply {
    let path = request.path.split('?').next().unwrap_or("");
    if path.starts_with("/.well-known/")
        && let Some(location) = state.lock().unwrap().discovery_redirect.clone()
    {
        return Reply::Respond(302, vec![("location".into(), location)], Vec::new());
    }
    let hostile = state
        .lock()
        .unwrap()
        .hostile
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, h)| h.clone());
    match hostile {
        Some(Hostile::Dribble) => {
            return Reply::Dribble(
                200,
                br#"{"error":"slow","error_description":"this answer arrives one byte at a time"}"#
                    .to_vec(),
                std::time::Duration::from_millis(1500),
            );
        }
        Some(Hostile::Huge) => return Reply::Huge(200, 1 << 30),
        Some(Hostile::Json(status, body)) => return Reply::json(status, &body),
        None => {}
    }
    match path {
        p if p.ends_with("/.well-known/openid-configuration") => {
            let mut doc = json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/auth"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "authorization_response_iss_parameter_supported": true
            });
            let state = state.lock().unwrap();
            for (k, v) in &state.discovery_overrides {
                if v.is_null() {
                    doc.as_object_mut().unwrap().remove(k);
                } else {
                    doc[k] = v.clone();
                }
            }
            Reply::json(200, &doc)
        }
        "/jwks" => Reply::json(200, &serde_json::from_str(JWKS).unwrap()),
        "/token" => {
            let mut state = state.lock().unwrap();
            state.token_requests += 1;
            let body = String::from_utf8_lossy(&request.body).into_owned();
            let is_refresh = body.contains("grant_type=refresh_token");
            state.last_token_request = Some((request.headers.clone(), body));
            if is_refresh && !state.refresh_responses.is_empty() {
                let (status, body) = state.refresh_responses.remove(0);
                return Reply::Respond(
                    status,
                    vec![("content-type".into(), "application/json".into())],
                    body.into_bytes(),
                );
            }
            let wants_json = request
                .header("accept")
                .is_some_and(|a| a.contains("application/json"));
            match state.token_response.take() {
                Some((status, body)) if state.form_unless_json && !wants_json => {
                    let value: Value = serde_json::from_str(&body).unwrap();
                    let form: String = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(value.as_object().unwrap().iter().map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| v.to_string()),
                            )
                        }))
                        .finish();
                    Reply::Respond(
                        status,
                        vec![(
                            "content-type".into(),
                            "application/x-www-form-urlencoded".into(),
                        )],
                        form.into_bytes(),
                    )
                }
                Some((status, body)) => Reply::Respond(
                    status,
                    vec![("content-type".into(), "application/json".into())],
                    body.into_bytes(),
                ),
                None => Reply::json(400, &json!({"error": "invalid_grant"})),
            }
        }
        "/userinfo" => Reply::json(200, &json!({"sub": "fake-user"})),
        // GitHub's user API: a numeric id, a login, often no public name or email.
        "/user" => Reply::json(
            200,
            &json!({"id": 4242, "login": "octocat", "name": null, "email": "octo@example.test"}),
        ),
        // Dropbox's RPC-style account endpoint answers POST only.
        "/2/users/get_current_account" if request.method == "POST" => Reply::json(
            200,
            &json!({"account_id": "dbid:AAH4f99", "email": "drop@example.test", "name": {"display_name": "Drop Box"}}),
        ),
        _ => Reply::json(404, &json!({})),
    }
}
