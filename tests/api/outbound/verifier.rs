//! Fidelity: deliveries verify with the official Standard Webhooks library for Python, installed
//! from PyPI into this test's own virtualenv (tests/sdk/standardwebhooks_verify.py), with the
//! secret creditd showed at registration, old and new during a rotation.

use std::path::{Path, PathBuf};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{admin_post, granted_purchase, register};
use crate::harness::TestApp;
use crate::harness::receiver::Receiver;

/// Pinned so that a new release cannot change what this test checks without a commit.
const STANDARDWEBHOOKS: &str = "1.1.0";

async fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A virtualenv with standardwebhooks, made once per target directory and reused.
async fn verifier_python() -> PathBuf {
    let venv =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("standardwebhooks-{STANDARDWEBHOOKS}"));
    let python = venv.join("bin/python");
    let check = "import standardwebhooks.webhooks";
    let ready = Command::new(&python).args(["-c", check]).status().await;
    if !matches!(ready, Ok(s) if s.success()) {
        run(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
            "python3 -m venv",
        )
        .await;
        let pin = format!("standardwebhooks=={STANDARDWEBHOOKS}");
        let args = [
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &pin,
        ];
        run(
            Command::new(&python).args(args),
            "pip install standardwebhooks",
        )
        .await;
    }
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_verify_with_the_python_standard_webhooks_library() {
    let python = verifier_python().await;
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (id, old) = register(&app, &receiver.url, json!(["purchase.granted"])).await;
    granted_purchase(&app).await;
    let before = receiver.wait_for_type("purchase.granted").await;
    let (_, rotated) = admin_post(
        &app,
        &format!("/admin/webhook_endpoints/{id}/rotate_secret"),
        None,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    granted_purchase(&app).await;
    let after = receiver.wait_for(2).await[1].clone();

    let cases = json!([
        {"secret": old, "id": before.id, "timestamp": before.timestamp, "signature": before.signature, "body": before.body, "valid": true},
        {"secret": old, "id": after.id, "timestamp": after.timestamp, "signature": after.signature, "body": after.body, "valid": true},
        {"secret": new, "id": after.id, "timestamp": after.timestamp, "signature": after.signature, "body": after.body, "valid": true},
        {"secret": new, "id": before.id, "timestamp": before.timestamp, "signature": before.signature, "body": before.body, "valid": false},
        {"secret": old, "id": before.id, "timestamp": before.timestamp, "signature": before.signature, "body": before.body.replace("granted", "grantee"), "valid": false},
    ]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/standardwebhooks_verify.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(cases.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.trim(), "5 cases as expected", "{text}");
}
