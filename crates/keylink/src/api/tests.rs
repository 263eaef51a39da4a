use super::*;

fn redacted(text: &str, secret: &str) -> String {
    String::from_utf8(redact(text.as_bytes(), &[secret.as_bytes()])).unwrap()
}

#[test]
fn an_echoed_token_is_redacted_from_the_body() {
    assert_eq!(
        redacted("{\"seen\":\"tok-1\",\"again\":\"tok-1\"}", "tok-1"),
        "{\"seen\":\"[redacted]\",\"again\":\"[redacted]\"}"
    );
    assert_eq!(redacted("nothing here", "tok-1"), "nothing here");
}

#[test]
fn a_token_written_escaped_is_redacted_in_every_form() {
    let token = "ab/c+d=";
    for written in [
        r"ab\/c+d=",
        r"\u0061\u0062\u002F\u0063\u002b\u0064\u003d",
        r"a\u0062\/c\u002Bd=",
        "ab%2Fc%2Bd%3D",
        "ab%2fc+d%3d",
    ] {
        let text = format!("{{\"auth\":\"Bearer {written}\"}}");
        assert_eq!(
            redacted(&text, token),
            "{\"auth\":\"Bearer [redacted]\"}",
            "{written}"
        );
        assert!(contains_secret(text.as_bytes(), &[token.as_bytes()]));
    }
    // A JSON string the token is only a part of is redacted where it is, and a near miss
    // is left alone.
    assert_eq!(redacted(r"xab\/c+d=y", token), "x[redacted]y");
    assert_eq!(redacted(r"ab\/c+d", token), r"ab\/c+d");
    assert_eq!(redacted(r"\u00", token), r"\u00");
    assert!(!contains_secret(br"ab\/c+e=", &[token.as_bytes()]));
}

#[test]
fn a_decompression_bomb_is_refused_at_the_cap() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 4 * MAX_BODY_BYTES]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let refused = decode(&bomb, Encoding::Gzip).unwrap_err();
    assert!(
        refused.to_string().contains("larger than 1 MiB"),
        "{refused}"
    );
    assert!(decode(b"not gzip", Encoding::Gzip).is_err());
}

mod tokens_per_api {
    use super::*;
    use crate::test_harness::{Fixture, Reply, Request, T0, TestProvider, token_set};
    use crate::tokens::TokenSource;

    /// `plain` with two API origins, each configured with its own resource: the test
    /// provider itself (calendar) and a second server (files).
    const CONFIG: &str = r#"
[providers.plain]
name = "Plain Example"
client_id = "test-client"
authorization_endpoint = "https://plain.example/authorize"
token_endpoint = "{server}/token"
scopes = ["read", "write"]
api_origins = ["{server}", "{files}"]

[providers.plain.apis."{server}"]
resource = "https://calendar.example"
scopes = ["read"]

[providers.plain.apis."{files}"]
resource = "https://files.example"

# An API of its own, so a request may name its resource for another origin.
[providers.plain.apis."https://other.example"]
resource = "https://other.example"
"#;

    struct Apis {
        fixture: Fixture,
        files: TestProvider,
        tokens: TokenSource,
        account: AccountId,
    }

    /// The token endpoint issues a token named after the resource asked for; both APIs
    /// answer 200 (or `status` for the calendar API).
    fn apis(calendar_status: u16) -> Apis {
        let files = TestProvider::start();
        let fixture = Fixture::with_config(&CONFIG.replace("{files}", &files.base()));
        fixture
            .server
            .answer(move |r: &Request, _| match r.path.as_str() {
                "/token" => {
                    let access = match r.form("resource").as_deref() {
                        Some("https://calendar.example") => "token-for-calendar",
                        Some("https://files.example") => "token-for-files",
                        Some("https://other.example") => "token-for-other",
                        _ => "token-for-nothing",
                    };
                    Reply::tokens(access, None, 3600)
                }
                _ => Reply::json(calendar_status, serde_json::json!({ "api": "calendar" })),
            });
        files.answer(|_, _| Reply::json(200, serde_json::json!({ "api": "files" })));
        let mut account = fixture.seed(
            "alice",
            &token_set("account-token", Some("refresh-1"), Some(T0 + 3600)),
        );
        account.scopes = vec!["read".into(), "write".into()];
        let stored = account.clone();
        fixture
            .ctx
            .index()
            .unwrap()
            .update(move |accounts| {
                accounts.retain(|a| a.id != stored.id);
                accounts.push(stored);
            })
            .unwrap();
        Apis {
            fixture,
            files,
            tokens: TokenSource::default(),
            account: account.id,
        }
    }

    impl Apis {
        fn fetch(&self, request: &ApiRequest) -> Result<ApiResponse, Error> {
            request_fn(&self.fixture.ctx, &self.tokens, &self.account, request)
        }

        fn calendar(&self, path: &str) -> ApiRequest {
            ApiRequest::get(Url::parse(&format!("{}{path}", self.fixture.server.base())).unwrap())
        }

        fn files(&self, path: &str) -> ApiRequest {
            ApiRequest::get(Url::parse(&format!("{}{path}", self.files.base())).unwrap())
        }

        /// The bearer tokens `server` received at `path`, in order.
        fn bearers(server: &TestProvider, path: &str) -> Vec<String> {
            server
                .requests(path)
                .iter()
                .map(|r| r.header("authorization").unwrap_or_default().to_owned())
                .collect()
        }
    }

    use super::request as request_fn;

    #[test]
    fn each_configured_origin_gets_the_token_for_its_own_resource() {
        let apis = apis(200);
        assert_eq!(apis.fetch(&apis.calendar("/events")).unwrap().status, 200);
        assert_eq!(apis.fetch(&apis.files("/list")).unwrap().status, 200);
        // Again: both come from memory now, still each to its own API.
        apis.fetch(&apis.calendar("/events")).unwrap();
        apis.fetch(&apis.files("/list")).unwrap();
        assert_eq!(
            Apis::bearers(&apis.fixture.server, "/events"),
            ["Bearer token-for-calendar", "Bearer token-for-calendar"]
        );
        assert_eq!(
            Apis::bearers(&apis.files, "/list"),
            ["Bearer token-for-files", "Bearer token-for-files"]
        );
        let grants: Vec<(Option<String>, Option<String>)> = apis
            .fixture
            .server
            .requests("/token")
            .iter()
            .map(|r| (r.form("resource"), r.form("scope")))
            .collect();
        assert_eq!(
            grants,
            [
                (Some("https://calendar.example".into()), Some("read".into())),
                (Some("https://files.example".into()), None),
            ]
        );
    }

    #[test]
    fn a_resource_the_configuration_does_not_name_gets_no_token_and_nothing_is_sent() {
        let apis = apis(200);
        let request = apis
            .calendar("/events")
            .with_resource("https://unknown.example");
        let e = apis.fetch(&request).unwrap_err();
        assert!(
            matches!(e, crate::Error::ResourceNotConfigured { .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "https://unknown.example is not one of the APIs configured for plain, so no token was asked for it"
        );
        assert!(apis.fixture.server.requests("/token").is_empty());
        assert!(apis.fixture.server.requests("/events").is_empty());
    }

    #[test]
    fn a_resource_the_request_names_overrides_the_configured_one() {
        let apis = apis(200);
        let request = apis
            .calendar("/events")
            .with_resource("https://other.example");
        apis.fetch(&request).unwrap();
        apis.fetch(&apis.calendar("/events")).unwrap();
        assert_eq!(
            Apis::bearers(&apis.fixture.server, "/events"),
            ["Bearer token-for-other", "Bearer token-for-calendar"]
        );
        // The origin's configured scopes still apply to the named resource.
        let first = &apis.fixture.server.requests("/token")[0];
        assert_eq!(
            first.form("resource").as_deref(),
            Some("https://other.example")
        );
        assert_eq!(first.form("scope").as_deref(), Some("read"));
        let scoped = apis.files("/list").with_scopes(["write"]);
        apis.fetch(&scoped).unwrap();
        let last = apis.fixture.server.requests("/token").pop().unwrap();
        assert_eq!(
            last.form("resource").as_deref(),
            Some("https://files.example")
        );
        assert_eq!(last.form("scope").as_deref(), Some("write"));
    }

    #[test]
    fn a_scope_or_resource_that_cannot_be_asked_for_sends_nothing() {
        let apis = apis(200);
        let ungranted = apis.calendar("/events").with_scopes(["admin"]);
        assert!(matches!(
            apis.fetch(&ungranted),
            Err(Error::ScopeNotGranted { .. })
        ));
        let relative = apis.calendar("/events").with_resource("calendar");
        assert!(matches!(
            apis.fetch(&relative),
            Err(Error::InvalidResource(_))
        ));
        assert!(apis.fixture.server.requests("/token").is_empty());
        assert!(apis.fixture.server.requests("/events").is_empty());
    }

    #[test]
    fn a_refused_limited_token_is_refreshed_once_a_minute_and_the_accounts_token_is_untouched() {
        let apis = apis(401);
        // Refused: one refresh of the calendar's token, and the request once more.
        let answer = apis.fetch(&apis.calendar("/events")).unwrap();
        assert_eq!(answer.status, 401);
        assert_eq!(apis.fixture.server.requests("/events").len(), 2);
        let grants = apis.fixture.server.requests("/token");
        assert_eq!(grants.len(), 2, "the first token, then one refresh");
        assert!(
            grants
                .iter()
                .all(|g| g.form("resource").as_deref() == Some("https://calendar.example"))
        );
        // Within the minute: the refusal is the answer, and nothing is refreshed (SECURITY 49).
        apis.tokens.forget_all();
        let answer = apis.fetch(&apis.calendar("/events")).unwrap();
        assert_eq!(answer.status, 401);
        assert_eq!(apis.fixture.server.requests("/token").len(), 2);
        let stored = apis.fixture.stored_tokens(&apis.account).unwrap();
        assert_eq!(stored.access_token.secret(), "account-token");
    }
}
