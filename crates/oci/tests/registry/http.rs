//! A minimal in-process HTTP/1.1 server on 127.0.0.1 (one request per connection) for the
//! test doubles: `hostile_fake_registry` and the token issuer of the bearer-auth test.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug)]
pub struct FakeRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }
}

pub enum Body {
    Bytes(Vec<u8>),
    /// Chunked, never ends.
    Endless,
    /// Chunked, one byte every 100 ms, never ends (slow retrieval).
    Drip,
    /// No answer at all: the connection stays open and silent.
    Stall,
    /// No answer at all: the connection is closed once the request is read (a server or
    /// load balancer dropping a kept-alive connection as a request arrives).
    HangUp,
}

pub struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl FakeResponse {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Bytes(b.into());
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

type Handler = dyn Fn(&FakeRequest, u64) -> FakeResponse + Send + Sync;

pub struct TestServer {
    pub host: String,
    pub requests: Arc<Mutex<Vec<FakeRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// Start a server; `handler` gets each request and its 0-based sequence number.
pub async fn serve_http(
    handler: impl Fn(&FakeRequest, u64) -> FakeResponse + Send + Sync + 'static,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seq = Arc::new(AtomicU64::new(0));
    let handler: Arc<Handler> = Arc::new(handler);
    let reqs = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let reqs = reqs.clone();
            let seq = seq.clone();
            tokio::spawn(async move {
                let Some(req) = read_request(&mut sock).await else {
                    return;
                };
                reqs.lock().unwrap().push(req.clone());
                let n = seq.fetch_add(1, Ordering::SeqCst);
                let resp = handler(&req, n);
                let _ = write_response(&mut sock, &req, resp).await;
            });
        }
    });
    TestServer {
        host,
        requests,
        task,
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<FakeRequest> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let head_end = loop {
        let n = sock.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len.min(1 << 20) {
        let n = sock.read(&mut byte).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&byte[..n]);
    }
    Some(FakeRequest {
        method,
        target,
        headers,
        body,
    })
}

async fn write_response(
    sock: &mut tokio::net::TcpStream,
    req: &FakeRequest,
    resp: FakeResponse,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", resp.status);
    for (k, v) in &resp.headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    match resp.body {
        Body::Bytes(b) => {
            if !resp
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            {
                let _ = write!(head, "Content-Length: {}\r\n", b.len());
            }
            head.push_str("\r\n");
            sock.write_all(head.as_bytes()).await?;
            if req.method != "HEAD" {
                sock.write_all(&b).await?;
            }
        }
        Body::Endless => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            sock.write_all(head.as_bytes()).await?;
            let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
            // Until the client hangs up.
            loop {
                sock.write_all(chunk.as_bytes()).await?;
            }
        }
        Body::Drip => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            sock.write_all(head.as_bytes()).await?;
            loop {
                sock.write_all(b"1\r\na\r\n").await?;
                sock.flush().await?;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Body::Stall => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Body::HangUp => return sock.shutdown().await,
    }
    sock.flush().await
}
