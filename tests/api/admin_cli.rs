//! `creditd resync` and `creditd replay` from a terminal: the same code as the endpoints, with the
//! grants made by a running server's workers.

use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;

use crate::harness::TestApp;
use creditd::sandbox::FakeStripe;

fn creditd(app: &TestApp, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_creditd"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
        .env("STRIPE_API_BASE", app.stripe.base_url())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn the_cli_resyncs_and_replays_with_the_endpoints_code() {
    let app = TestApp::spawn().await;
    app.stripe.set_webhook_delivery(false);
    let (first, invoice) = app.purchase_for_new_invoice(1100).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());

    let since = (chrono::Utc::now().timestamp() - 600).to_string();
    let output = creditd(&app, &["resync", "--since", &since])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("completed"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["granted", "1"]),
        "{stdout}"
    );
    assert!(stdout.contains("workers"), "{stdout}");
    app.wait_for_status(first["id"].as_str().unwrap(), "granted")
        .await;

    let (second, invoice) = app.purchase_for_new_invoice(1300).await;
    let event = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let output = creditd(&app, &["replay", event["id"].as_str().unwrap()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let answer: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(answer["outcome"], "scheduled");
    app.wait_for_status(second["id"].as_str().unwrap(), "granted")
        .await;
    assert_eq!(app.stripe.grants().len(), 2);

    let actors: Vec<(String, String)> =
        sqlx::query_as("SELECT action, actor FROM admin_audit ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        actors,
        vec![
            ("resync.start".into(), "cli".into()),
            ("event.replay".into(), "cli".into())
        ]
    );

    let output = creditd(&app, &["resync", "--since", "1000"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--since") && stderr.contains("30 days"),
        "{stderr}"
    );
}

/// The flags and the JSON body reach the same `ResyncParams`, stored with each re-sync; a rule
/// broken in one is broken in the other, under the same field's name.
#[tokio::test]
async fn the_cli_and_the_endpoint_start_the_same_resync_for_the_same_parameters() {
    use crate::harness::ADMIN_TOKEN;

    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    let (since, until) = ((now - 600).to_string(), (now - 60).to_string());
    let types = "invoice.paid,invoice.voided";
    let args = [
        "resync",
        "--since",
        &since,
        "--until",
        &until,
        "--types",
        types,
        "--dry-run",
    ];
    let output = creditd(&app, &args).output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body = serde_json::json!({"since": since, "until": until, "dry_run": true,
        "types": ["invoice.paid", "invoice.voided"], "source": "events"});
    let (status, answer) = app
        .api(
            reqwest::Method::POST,
            "/admin/resync",
            Some(&body),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{answer}");
    let stored: Vec<(String, Value)> =
        sqlx::query_as("SELECT actor, params FROM resyncs ORDER BY created_at, actor")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0].1, stored[1].1, "{stored:?}");
    assert_eq!(
        stored[0].1["types"],
        serde_json::json!(["invoice.paid", "invoice.voided"])
    );

    let output = creditd(&app, &["resync", "--since", &since, "--types", "invoice.*"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--types"));
    let body = serde_json::json!({"since": since, "types": ["invoice.*"]});
    let (status, answer) = app
        .api(
            reqwest::Method::POST,
            "/admin/resync",
            Some(&body),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "types");
}
