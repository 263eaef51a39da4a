//! A proxy in front of the real test provider's token endpoint that injects faults: error
//! statuses, `Retry-After`, malformed bodies, answers that never come, and a provider answer
//! that is withheld from Keylink (as if Keylink died right after the provider rotated the
//! token). Keylink reaches it as the provider's `token_endpoint` override.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::http_server::{Reply, Server};

/// What the proxy does with the next token request.
pub enum Fault {
    /// Answer with this status, headers and body without asking the provider.
    Answer(u16, Vec<(&'static str, String)>, String),
    /// Never answer.
    Hang,
    /// Ask the provider, then never pass its answer on.
    ForwardThenHang,
}

pub struct FaultProxy {
    pub token_endpoint: String,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    provider_answers: Arc<AtomicUsize>,
    server: Server,
}

impl FaultProxy {
    /// A proxy forwarding to `<issuer>/token` (trusting the test CA through `http`).
    pub fn start(issuer: &str, http: reqwest::blocking::Client) -> FaultProxy {
        let faults: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let provider_answers = Arc::new(AtomicUsize::new(0));
        let (queue, answered, target) = (
            faults.clone(),
            provider_answers.clone(),
            format!("{issuer}/token"),
        );
        let server = Server::start(move |request, _| {
            let forward = || {
                let response = http
                    .post(&target)
                    .header(
                        "content-type",
                        request
                            .header("content-type")
                            .unwrap_or("application/x-www-form-urlencoded"),
                    )
                    .header("accept", "application/json")
                    .body(request.body.clone())
                    .send()
                    .unwrap();
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = response.bytes().unwrap().to_vec();
                answered.fetch_add(1, Ordering::SeqCst);
                (status, content_type, body)
            };
            match queue.lock().unwrap().pop_front() {
                Some(Fault::Answer(status, headers, body)) => Reply::Respond(
                    status,
                    headers
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                    body.into_bytes(),
                ),
                Some(Fault::Hang) => Reply::Hang,
                Some(Fault::ForwardThenHang) => {
                    forward();
                    Reply::Hang
                }
                None => {
                    let (status, content_type, body) = forward();
                    let headers = content_type
                        .map(|c| vec![("content-type".to_owned(), c)])
                        .unwrap_or_default();
                    Reply::Respond(status, headers, body)
                }
            }
        });
        FaultProxy {
            token_endpoint: format!("{}/token", server.url),
            faults,
            provider_answers,
            server,
        }
    }

    /// Queues faults for the next requests; afterwards requests are forwarded again.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    /// How many token requests reached the proxy.
    pub fn requests(&self) -> usize {
        self.server.request_count()
    }

    /// How many forwarded requests the provider has answered.
    pub fn provider_answers(&self) -> usize {
        self.provider_answers.load(Ordering::SeqCst)
    }
}
