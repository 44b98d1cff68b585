//! Fidelity: the official stripe-python SDK, installed from PyPI into this test's own virtualenv,
//! drives the sandbox (tests/sdk/stripe_python_fidelity.py) and verifies a webhook it delivered.

use std::path::{Path, PathBuf};

use axum::http::HeaderMap;
use creditd::sandbox::FakeStripe;
use tokio::process::Command;
use tokio::sync::mpsc;

/// Pinned so that a new SDK release cannot change what this test checks without a commit.
const STRIPE_PYTHON: &str = "16.1.0";
const SECRET: &str = "whsec_sdk_fidelity";

async fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// A virtualenv with stripe-python, made once per target directory and reused.
async fn sdk_python() -> PathBuf {
    let venv =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("stripe-python-{STRIPE_PYTHON}"));
    let python = venv.join("bin/python");
    let check = format!("import stripe, sys; sys.exit(stripe.VERSION != '{STRIPE_PYTHON}')");
    let ready = Command::new(&python).args(["-c", &check]).status().await;
    if !matches!(ready, Ok(s) if s.success()) {
        run(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
            "python3 -m venv",
        )
        .await;
        let pin = format!("stripe=={STRIPE_PYTHON}");
        run(
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &pin,
            ]),
            "pip install stripe",
        )
        .await;
    }
    python
}

/// A webhook endpoint that hands each delivery's body and `Stripe-Signature` to the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| async move {
            let signature = headers["stripe-signature"].to_str().unwrap().to_string();
            let _ = tx.send((body, signature));
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_python_drives_the_sandbox_and_verifies_its_webhooks() {
    let python = sdk_python().await;
    let fake = FakeStripe::start().await;
    let (url, mut deliveries) = receiver().await;
    fake.set_webhook_endpoint(&url, &[SECRET]);
    let customer = fake.create_customer();
    let invoice = fake.create_open_invoice(&customer, 700, "usd", &[]);
    fake.pay_invoice(invoice["id"].as_str().unwrap());
    let (payload, signature) = loop {
        let (body, signature) = deliveries.recv().await.expect("a delivery");
        if body.contains("\"type\":\"invoice.paid\"") {
            break (body, signature);
        }
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/stripe_python_fidelity.py"
    );
    let out = run(
        Command::new(&python)
            .arg(script)
            .env("SANDBOX_URL", fake.base_url())
            .env("CUSTOMER", &customer)
            .env("CARD_INVOICE", invoice["id"].as_str().unwrap())
            .env("WEBHOOK_SECRET", SECRET)
            .env("WEBHOOK_PAYLOAD", payload)
            .env("WEBHOOK_SIGNATURE", signature),
        "the stripe-python fidelity script",
    )
    .await;
    assert!(
        out.contains(&format!("stripe-python {STRIPE_PYTHON}")),
        "{out}"
    );
    let sdk_calls = fake.requests_to("POST", "/v1/billing/credit_grants");
    assert_eq!(
        sdk_calls.len(),
        2,
        "one grant, one refused for its unknown parameter"
    );
}
