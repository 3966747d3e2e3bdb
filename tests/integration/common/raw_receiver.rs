//! A webhook receiver that speaks raw TCP, for handlers that misbehave below HTTP: it
//! answers each request from a script — bytes as they are (garbage, or a valid answer
//! with a body that is not JSON), a connection reset, or silence — then a plain 200.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum RawReply {
    /// These bytes, then the connection is closed.
    Bytes(Vec<u8>),
    /// The connection is reset (RST) without an answer.
    Reset,
}

impl RawReply {
    /// A well-formed HTTP answer with this status line and body.
    pub fn http(status: &str, content_type: &str, body: &str) -> Self {
        Self::Bytes(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

/// One request as received: its head and body, and when it arrived.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub head: String,
    pub body: String,
    pub at: Instant,
}

impl RawRequest {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

#[derive(Default)]
struct State {
    received: Vec<RawRequest>,
    script: VecDeque<RawReply>,
}

/// A loopback port bound but not listening: connections to it are refused (a handler
/// that is down), and no other test can take it until a receiver starts on it.
pub struct ReservedPort(tokio::net::TcpSocket);

impl ReservedPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        Self(socket)
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
}

#[derive(Clone)]
pub struct RawReceiver {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl RawReceiver {
    pub async fn start() -> Self {
        Self::listen(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// Listens on a port held since `ReservedPort::new` (a handler that was down comes back
    /// where it was, and no other test took its port meanwhile).
    pub fn start_reserved(port: ReservedPort) -> Self {
        Self::listen(port.0.listen(1024).unwrap())
    }

    fn listen(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn script(&self, replies: impl IntoIterator<Item = RawReply>) {
        self.state.lock().script.extend(replies);
    }

    pub fn received(&self) -> Vec<RawRequest> {
        self.state.lock().received.clone()
    }

    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RawRequest> {
        let deadline = Instant::now() + timeout;
        while self.state.lock().received.len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

/// Reads one request (head, then `content-length` bytes), answers it, closes.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let request = RawRequest {
        head,
        body: String::new(),
        at: Instant::now(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request = RawRequest {
        body: String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned(),
        ..request
    };
    let reply = {
        let mut s = state.lock();
        s.received.push(request);
        s.script
            .pop_front()
            .unwrap_or_else(|| RawReply::http("200 OK", "text/plain", ""))
    };
    match reply {
        RawReply::Bytes(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        RawReply::Reset => {
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    }
}
