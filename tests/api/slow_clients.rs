//! Hostile HTTP clients on real sockets: half a request line, a body that never comes, headers
//! or a body trickled a byte at a time. Each is cut off within the configured time while an
//! honest, signed webhook is answered and its purchase granted meanwhile.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestApp;

const HEADER_READ_TIMEOUT_MS: u64 = 1_000;
const REQUEST_TIMEOUT_MS: u64 = 2_000;
/// How long a test waits for the server to close a connection: the configured time plus room
/// for a slow machine. Closing never happens early by accident, so this only bounds the wait.
const CLOSE_WITHIN: Duration = Duration::from_secs(REQUEST_TIMEOUT_MS / 1000 + 10);

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(CLOSE_WITHIN, async {
        let mut buffer = [0_u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept a stalled connection open: {}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends `bytes` one at a time, `gap` apart, until done or the server hangs up.
async fn trickle(mut stream: TcpStream, bytes: Vec<u8>, gap: Duration) -> String {
    let (mut reader, mut writer) = stream.split();
    let writing = async {
        for byte in bytes {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
        // Everything sent without being cut off: wait for the server either way.
        std::future::pending::<()>().await
    };
    let mut received = Vec::new();
    let reading = async {
        let mut buffer = [0_u8; 4096];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    let finished = tokio::time::timeout(CLOSE_WITHIN, async {
        tokio::select! {
            () = reading => {}
            () = writing => {}
        }
    })
    .await;
    assert!(finished.is_ok(), "a trickling client was never cut off");
    drop(stream);
    String::from_utf8_lossy(&received).into_owned()
}

fn webhook_head(content_length: usize) -> String {
    format!(
        "POST /webhooks/stripe HTTP/1.1\r\nhost: creditd\r\ncontent-type: application/json\r\n\
         stripe-signature: t=1,v1=00\r\ncontent-length: {content_length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_trickling_clients_are_cut_off_while_webhooks_are_granted() {
    let app = TestApp::spawn_with(|config| {
        config.http_header_read_timeout_ms = HEADER_READ_TIMEOUT_MS;
        config.http_request_timeout_ms = REQUEST_TIMEOUT_MS;
    })
    .await;
    let addr = app.addr;

    // Half a request line, then nothing.
    let stalled_line = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"POST /webhooks/st").await.unwrap();
        until_closed(&mut stream).await
    });
    // Headers announcing 100 KiB, then 10 bytes.
    let stalled_body = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(webhook_head(100 * 1024).as_bytes())
            .await
            .unwrap();
        stream.write_all(b"{\"id\": \"ev").await.unwrap();
        until_closed(&mut stream).await
    });
    // Headers a byte every 100 ms: never complete within the header-read timeout.
    let trickled_headers = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let head = webhook_head(2).into_bytes();
        trickle(stream, head, Duration::from_millis(100)).await
    });
    // Complete headers, then the body a byte every 100 ms: cut by the request timeout.
    let trickled_body = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(webhook_head(1000).as_bytes())
            .await
            .unwrap();
        trickle(stream, vec![b' '; 1000], Duration::from_millis(100)).await
    });

    // Meanwhile an honest webhook is recorded and its purchase granted.
    let (purchase, invoice) = app.purchase_for_new_invoice(2500).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;

    let line = stalled_line.await.unwrap();
    assert!(!line.contains("200 OK"), "{line}");
    for (what, answer) in [
        ("a stalled body", stalled_body.await.unwrap()),
        ("a trickled body", trickled_body.await.unwrap()),
    ] {
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains("\"request_timeout\""),
            "{what} gets the JSON timeout error: {answer}"
        );
    }
    let headers = trickled_headers.await.unwrap();
    assert!(!headers.contains("200 OK"), "{headers}");
    assert_eq!(app.stripe.grants().len(), 1);
}

/// A request that stalls mid-body gets a JSON 408 naming the problem, and records nothing.
#[tokio::test]
async fn a_request_timeout_is_a_json_error_and_changes_nothing() {
    let app = TestApp::spawn_with(|config| config.http_request_timeout_ms = 300).await;
    let before = app.snapshot().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(webhook_head(500).as_bytes())
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole response");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"]["code"], "request_timeout");
    assert_eq!(app.snapshot().await, before);
}
