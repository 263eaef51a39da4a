//! A tiny HTTP/1.1 server on 127.0.0.1 for test doubles: one thread per connection, one
//! request per connection, and replies that can also hang or drop the connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body came chunked (`Transfer-Encoding: chunked`).
    pub chunked: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub enum Reply {
    /// Answer with status, extra headers and body.
    Respond(u16, Vec<(String, String)>, Vec<u8>),
    /// Keep the connection open without answering until the server stops.
    Hang,
    /// Answer with status and headers at once, then the body one byte per `every`.
    Dribble(u16, Vec<u8>, Duration),
    /// A body of `bytes` bytes streamed as fast as the client reads, without a
    /// content-length (chunked), so only reading it tells its size.
    Huge(u16, u64),
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::Respond(
            status,
            vec![("content-type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
    }
}

/// A running server; dropping it stops accepting and releases hanging connections.
pub struct Server {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request, &str) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let (st, rq, base) = (stop.clone(), requests.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let (handler, st, rq, base) =
                    (handler.clone(), st.clone(), rq.clone(), base.clone());
                std::thread::spawn(move || {
                    if let Some(request) = read_request(&stream) {
                        rq.fetch_add(1, Ordering::SeqCst);
                        match handler(&request, &base) {
                            Reply::Respond(status, headers, body) => {
                                write_response(&stream, status, &headers, &body)
                            }
                            Reply::Hang => {
                                while !st.load(Ordering::SeqCst) {
                                    std::thread::sleep(Duration::from_millis(20));
                                }
                            }
                            Reply::Dribble(status, body, every) => {
                                dribble(&stream, status, &body, every, &st)
                            }
                            Reply::Huge(status, bytes) => stream_huge(&stream, status, bytes, &st),
                        }
                    }
                });
            }
        });
        Server {
            url,
            requests,
            stop,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Reads one request: its line, headers and body (by `Content-Length`, or chunked), answering
/// `Expect: 100-continue` first as curl-based clients such as git wait for it.
pub fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) <= 2 {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if request
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let mut writer = stream;
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    request.chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    request.body = if request.chunked {
        read_chunked(&mut reader)?
    } else {
        let length = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(request)
}

/// A chunked body (git sends one when a push is larger than `http.postBuffer`).
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        let size = size_line.trim().split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        if size == 0 {
            // Trailers, if any, up to the blank line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).ok()? <= 2 {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

/// Writes a whole HTTP/1.1 response with a content-length, and closes the exchange.
pub fn write_response(
    mut stream: &TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Test",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn dribble(mut stream: &TcpStream, status: u16, body: &[u8], every: Duration, stop: &AtomicBool) {
    let head = format!(
        "HTTP/1.1 {status} Test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    for byte in body {
        if stop.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
            return;
        }
        let _ = stream.flush();
        std::thread::sleep(every);
    }
}

fn stream_huge(mut stream: &TcpStream, status: u16, bytes: u64, stop: &AtomicBool) {
    let head = format!(
        "HTTP/1.1 {status} Test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    // A JSON string that never ends: `{"keys":"aaaa...`.
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0u64;
    let _ = write!(stream, "9\r\n{{\"keys\":\"\r\n");
    while sent < bytes && !stop.load(Ordering::SeqCst) {
        if write!(stream, "{:x}\r\n", chunk.len()).is_err()
            || stream.write_all(&chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            return;
        }
        sent += chunk.len() as u64;
    }
    let _ = stream.write_all(b"0\r\n\r\n");
}
