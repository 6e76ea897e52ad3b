//! `coffer demo`'s push part, run as a user runs it: the demo starts, prints a `curl -N` line,
//! and the stream that line opens receives the `balance.changed` that the simulator's webhook
//! causes (a deposit booked in the P100 simulator, P100's webhook delivered to the demo, the pair
//! refreshed).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);
const KEY: &str = "coffer_demo_test_admin_key_0123456789";

/// The demo process, killed when dropped.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `coffer demo` on a free port and returns it with the `curl -N` line it printed.
fn start(db: &std::path::Path) -> (Demo, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (k, _) in std::env::vars() {
        if k.starts_with("COFFER_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .env("COFFER_ADMIN_KEY", KEY)
        .env("NO_COLOR", "1")
        .args(["demo", "--listen", "127.0.0.1:0", "--database"])
        .arg(format!("sqlite://{}", db.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Drains the demo's output to the end: closing the pipe once the line is found made
        // the demo's next `println!` fail (EPIPE) and the demo exit under the stream.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    loop {
        let line = rx
            .recv_timeout(DEADLINE.saturating_sub(started.elapsed()))
            .expect("the demo printed no `curl -N` line");
        if line.contains("curl -N") {
            return (demo, line.trim().to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_curl_line_streams_the_webhooks_change() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("coffer-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_demo, line) = start(&dir.join("demo.db"));
    // curl -N -H 'x-api-key: KEY' -H 'accept: text/event-stream' 'URL'
    let quoted: Vec<&str> = line.split('\'').skip(1).step_by(2).collect();
    assert_eq!(quoted.len(), 3, "{line}");
    assert_eq!(quoted[0], format!("x-api-key: {KEY}"));
    assert_eq!(quoted[1], "accept: text/event-stream");
    let url = quoted[2];
    assert!(url.contains("/v2/events?"), "{line}");

    let mut stream = reqwest::Client::new()
        .get(url)
        .header("x-api-key", KEY)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    let got = tokio::time::timeout(DEADLINE, async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: balance.changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "no balance.changed on the stream: {seen}");
    let data = seen.lines().find_map(|l| l.strip_prefix("data:")).unwrap();
    let event: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
    assert_eq!(event["type"], "balance.changed");
    assert_eq!(event["customer_id"], "globex");
    assert_eq!(event["provider"], "p100");
    let _ = std::fs::remove_dir_all(&dir);
}
