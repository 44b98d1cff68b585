//! `creditd sandbox` and `creditd demo` as real processes: the sandbox serves Stripe, creditd is
//! pointed at it, and the demo walks a purchase to a grant and spends part of it.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::harness::process::{CreditdProcess, free_port};
use crate::harness::{ADMIN_TOKEN, API_TOKEN, PATIENCE, WEBHOOK_SECRET, fresh_database};

const CREDITD: &str = env!("CARGO_BIN_EXE_creditd");

/// `creditd sandbox` on `port`, delivering webhooks to `webhook_url`; ready when it returns.
async fn start_sandbox(port: u16, webhook_url: &str, extra_args: &[&str]) -> Child {
    let child = Command::new(CREDITD)
        .args(["sandbox", "--listen-addr", &format!("127.0.0.1:{port}")])
        .args(["--webhook-url", webhook_url])
        .args(extra_args)
        .env_clear()
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn creditd sandbox");
    let health = format!("http://127.0.0.1:{port}/_sandbox/health");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !matches!(reqwest::get(&health).await, Ok(r) if r.status().is_success()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sandbox never answered"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    child
}

/// Runs a `creditd` command line with only `env`; returns success, stdout and stderr.
async fn creditd_cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(CREDITD)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_turns_a_purchase_into_a_grant_against_creditd_sandbox() {
    let (database_url, _db) = fresh_database().await;
    let sandbox_port = free_port();
    let base = format!("http://127.0.0.1:{sandbox_port}");
    // creditd needs Stripe only once asked to do something, so it can start first.
    let creditd = CreditdProcess::start_against(&database_url, &base, &[]).await;
    let _sandbox = start_sandbox(sandbox_port, &creditd.url("/webhooks/stripe"), &[]).await;
    let creditd_url = creditd.url("");
    let env = [
        ("CREDITD_URL", creditd_url.as_str()),
        ("API_TOKEN", API_TOKEN),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("STRIPE_API_BASE", base.as_str()),
        ("STRIPE_SECRET_KEY", "sk_test_demo"),
    ];

    let (ok, out, err) = creditd_cli(&["demo", "--timeout-secs", "30"], &env).await;
    assert!(ok, "the demo failed:\n{out}\n{err}\n{}", creditd.logs());
    assert!(out.contains("$ curl -s -X POST '"), "{out}");
    assert!(
        out.contains("\"display\": \"6.00 USD\""),
        "1000 bought, 400 used: {out}"
    );
    let grant = out
        .rsplit("became grant ")
        .next()
        .unwrap()
        .trim()
        .trim_end_matches('.');
    let answer = reqwest::Client::new()
        .get(format!("{base}/v1/billing/credit_grants/{grant}"))
        .basic_auth("sk_test_demo", Some(""))
        .send()
        .await
        .unwrap();
    let grant_json: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        grant_json["amount"]["monetary"]["value"], 1000,
        "{grant_json}"
    );
    let customer = grant_json["customer"].as_str().unwrap();
    let grants: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{base}/v1/billing/credit_grants?customer={customer}"
        ))
        .bearer_auth("sk_test_demo")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        grants["data"].as_array().unwrap().len(),
        1,
        "exactly one grant"
    );

    let wrong = [
        ("API_TOKEN", "not-the-token"),
        ("CREDITD_URL", creditd_url.as_str()),
        ("STRIPE_API_BASE", base.as_str()),
    ];
    let (ok, out, err) = creditd_cli(&["demo"], &wrong).await;
    assert!(
        !ok && err.contains("answered 401"),
        "a failing step fails the demo: {out}\n{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creditd_sandbox_actions_steer_a_running_sandbox_and_fail_loudly() {
    let port = free_port();
    let _sandbox = start_sandbox(port, "http://127.0.0.1:9/unused", &[]).await;
    let base = format!("http://127.0.0.1:{port}");
    let env = [("SANDBOX_URL", base.as_str())];
    let (ok, out, _) = creditd_cli(&["sandbox", "customer"], &env).await;
    let customer: serde_json::Value = serde_json::from_str(&out).unwrap();
    let customer = customer["id"].as_str().unwrap().to_string();
    assert!(ok && customer.starts_with("cus_"), "{out}");
    let (ok, out, err) = creditd_cli(&["sandbox", "pay", "in_nope"], &env).await;
    assert!(!ok, "paying an unknown invoice fails: {out}");
    assert!(
        out.contains("No such invoice: 'in_nope'") && err.contains("404"),
        "{out}{err}"
    );
    let (ok, out, _) = creditd_cli(&["sandbox", "balance", &customer, "-1000"], &env).await;
    assert!(ok && out.contains("-1000"), "{out}");
    let (ok, _, _) =
        creditd_cli(&["sandbox", "fault", "500", "--path", "/v1/invoices"], &env).await;
    assert!(ok);
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .bearer_auth("sk_test_x")
            .send()
    };
    assert_eq!(
        get("/v1/invoices").await.unwrap().status(),
        500,
        "the fault hits once"
    );
    assert_eq!(get("/v1/invoices").await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creditd_sandbox_keeps_its_state_in_a_file_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("creditd-sandbox-state-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let file_arg = file.to_str().unwrap();
    let http = reqwest::Client::new();
    let port = free_port();
    let mut first = start_sandbox(
        port,
        "http://127.0.0.1:9/unused",
        &["--state-file", file_arg],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let customer: serde_json::Value = http
        .post(format!("{base}/v1/customers"))
        .basic_auth("sk_test_x", Some(""))
        .form(&[("name", "Kept"), ("balance", "-300")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customer = customer["id"].as_str().unwrap().to_string();
    let env = [("SANDBOX_URL", base.as_str())];
    let (ok, _, _) = creditd_cli(&["sandbox", "use-credits", &customer, "500"], &env).await;
    assert!(ok);
    let pid = first.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = tokio::time::timeout(PATIENCE, first.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.success() && file.exists(), "saved at SIGTERM");

    let port = free_port();
    let _second = start_sandbox(
        port,
        "http://127.0.0.1:9/unused",
        &["--state-file", file_arg],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .bearer_auth("sk_test_x")
            .send()
    };
    let kept: serde_json::Value = get(format!("/v1/customers/{customer}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (kept["name"].clone(), kept["balance"].clone()),
        (serde_json::json!("Kept"), serde_json::json!(0))
    );
    let query = format!("/v1/invoices?customer={customer}");
    let invoices: serde_json::Value = get(query).await.unwrap().json().await.unwrap();
    assert_eq!(
        invoices["data"][0]["amount_due"], 200,
        "500 used, 300 from the balance"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
