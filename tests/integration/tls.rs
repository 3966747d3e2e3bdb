//! Webhooks over HTTPS, as handlers on the internet take them: the footfall binary's
//! rustls (with ring) completes a handshake with a handler whose certificate chains to a
//! root the system trusts (`SSL_CERT_FILE`, as rustls-native-certs reads it), and refuses
//! one whose certificate does not. The receivers are Python's own HTTPS server, with
//! certificates made by the `openssl` command.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::config_file::footfall_toml;
use crate::common::process::FootfallProcess;
use crate::common::{
    Backend, KeysGuard, TOKEN, TestApp, cookie_key, first_attempt_error, handler_on_lead_added,
    redis_url, site_and_form, submit_form, test_settings, unique_prefix,
};

/// An HTTPS receiver: prints its port, then `WEBHOOK <webhook-id>` for each POST.
const RECEIVER: &str = r#"
import http.server, ssl, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        print("WEBHOOK", self.headers.get("webhook-id"), flush=True)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Runs `openssl` with `args` (split at spaces) in `dir`.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("the openssl command runs");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority `name` in `dir` (name.pem, name.key), and a server certificate
/// for 127.0.0.1 signed by it (name-server.pem, name-server.key).
fn authority_and_server(dir: &Path, name: &str) {
    std::fs::write(
        dir.join(format!("{name}-server.ext")),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    openssl(
        dir,
        &format!(
            "req -x509 {key} -keyout {name}.key -out {name}.pem -days 2 -subj /CN={name} \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
        ),
    );
    openssl(
        dir,
        &format!("req {key} -keyout {name}-server.key -out {name}-server.csr -subj /CN=127.0.0.1"),
    );
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}-server.csr -CA {name}.pem -CAkey {name}.key -CAcreateserial \
             -out {name}-server.pem -days 2 -extfile {name}-server.ext"
        ),
    );
}

/// A Python HTTPS receiver with `name`'s server certificate; its port, and its lines.
struct TlsReceiver {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl TlsReceiver {
    fn start(dir: &Path, name: &str) -> Self {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(RECEIVER)
            .arg(dir.join(format!("{name}-server.pem")))
            .arg(dir.join(format!("{name}-server.key")))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The guard first: a receiver that never says its port still goes.
        let mut receiver = Self {
            child,
            port: 0,
            lines,
        };
        let first = receiver
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the receiver says its port");
        receiver.port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver's first line: {first}"));
        receiver
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/hook", self.port)
    }
}

impl Drop for TlsReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory of the test's own, removed at the end.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_reaches_an_https_handler_the_system_trusts_and_no_other() {
    let dir = TempDir(std::env::temp_dir().join(format!("footfall-tls-{}", unique_prefix())));
    std::fs::create_dir_all(&dir.0).unwrap();
    authority_and_server(&dir.0, "trusted");
    authority_and_server(&dir.0, "stranger");
    let trusted = TlsReceiver::start(&dir.0, "trusted");
    let stranger = TlsReceiver::start(&dir.0, "stranger");

    // The process trusts the first authority only.
    let prefix = unique_prefix();
    let toml = footfall_toml(&redis_url(), &prefix, &cookie_key(), "");
    let roots = dir.0.join("trusted.pem");
    // Dropped after the process, which keeps retrying the untrusted handler till it stops.
    let _keys = KeysGuard::new(&redis_url(), &prefix);
    let process =
        FootfallProcess::start_with_env(&toml, &[("SSL_CERT_FILE", roots.to_str().unwrap())]);
    let mut settings = test_settings(Backend::Redis);
    settings.store.key_prefix = prefix;
    let app = TestApp::attach(process.base.clone(), settings);

    let pipeline = app.pipeline().await;
    let (_, form) = site_and_form(&app, TOKEN, "shop.example").await;
    handler_on_lead_added(&app, &pipeline, "trusted", &trusted.url()).await;
    let stranger_id =
        handler_on_lead_added(&app, &pipeline, "stranger", &stranger.url()).await["id"]
            .as_u64()
            .unwrap();
    submit_form(&app, &form, None, "Tess").await;

    let line = tokio::task::block_in_place(|| trusted.lines.recv_timeout(Duration::from_secs(10)))
        .expect("the trusted handler got the webhook over HTTPS");
    assert!(line.starts_with("WEBHOOK "), "{line}");

    // The other handler's certificate chains to no trusted root: refused, and said so.
    let error = first_attempt_error(
        &app,
        &format!("/api/v4/webhook_events?handler_id={stranger_id}"),
        "failed attempt of the untrusted handler",
    )
    .await;
    // rustls's verdict on a chain to no trusted root.
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(
        stranger.lines.try_recv().is_err(),
        "the untrusted handler was sent the webhook"
    );
}

/// A Redis that takes TLS connections only, with `name`'s server certificate; stopped
/// when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(dir: &Path, name: &str) -> Self {
        let port = crate::common::redis_servers::free_port();
        let file = |suffix: &str| dir.join(format!("{name}{suffix}"));
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(file("-server.pem"))
            .arg("--tls-key-file")
            .arg(file("-server.key"))
            .arg("--tls-ca-cert-file")
            .arg(file(".pem"))
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let redis = Self { child, port };
        let started = std::time::Instant::now();
        loop {
            let pong = Command::new("redis-cli")
                .args(["--tls", "--cacert"])
                .arg(file(".pem"))
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"));
            if pong {
                return redis;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the TLS redis-server did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A managed Redis that requires TLS (`rediss://`): footfall connects through rustls,
/// trusting the system's roots, and the whole flow works over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footfall_keeps_its_state_in_a_redis_that_requires_tls() {
    let dir = TempDir(std::env::temp_dir().join(format!("footfall-tls-{}", unique_prefix())));
    std::fs::create_dir_all(&dir.0).unwrap();
    authority_and_server(&dir.0, "redis");
    let redis = TlsRedis::start(&dir.0, "redis");
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let prefix = unique_prefix();
    let toml = footfall_toml(&url, &prefix, &cookie_key(), "");
    let roots = dir.0.join("redis.pem");
    let process =
        FootfallProcess::start_with_env(&toml, &[("SSL_CERT_FILE", roots.to_str().unwrap())]);
    let mut settings = test_settings(Backend::Redis);
    settings.store.key_prefix = prefix;
    let app = TestApp::attach(process.base.clone(), settings);

    let (_, form) = site_and_form(&app, TOKEN, "shop.example").await;
    submit_form(&app, &form, None, "Tess").await;
    let (status, body) = app.get("/api/v4/leads/unsorted").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["_embedded"]["unsorted"].as_array().unwrap().len(), 1);
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{ready}");
    drop(process);
}
