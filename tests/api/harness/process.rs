//! creditd as a real child process, for tests that crash it with SIGKILL or stop it with SIGTERM.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{ADMIN_TOKEN, API_TOKEN, PATIENCE, WEBHOOK_SECRET, json_response};
use creditd::sandbox::FakeStripe;

/// A purchase registered through a running process for a new open invoice.
pub struct Registered {
    pub purchase_id: String,
    pub invoice_id: String,
    pub customer: String,
}

pub struct CreditdProcess {
    pub child: Child,
    pub port: u16,
    pub log_path: PathBuf,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl CreditdProcess {
    /// Starts `creditd serve` and waits until it answers /readyz. Logs go to a file for inspection.
    pub async fn start(
        database_url: &str,
        stripe: &FakeStripe,
        extra_env: &[(&str, &str)],
    ) -> CreditdProcess {
        Self::start_against(database_url, &stripe.base_url(), extra_env).await
    }

    /// [`CreditdProcess::start`] against the Stripe at `stripe_base`, e.g. a `creditd sandbox`.
    pub async fn start_against(
        database_url: &str,
        stripe_base: &str,
        extra_env: &[(&str, &str)],
    ) -> CreditdProcess {
        let port = free_port();
        let log_path =
            std::env::temp_dir().join(format!("creditd-test-{port}-{}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_creditd"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("STRIPE_API_BASE", stripe_base)
            .env("API_TOKEN", API_TOKEN)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                "debug,sqlx=warn,hyper=warn,reqwest=warn,h2=warn",
            )
            .env("WORKER_POLL_INTERVAL_MS", "50")
            .env("WORKER_LEASE_SECS", "5")
            // Short, so that the 5 s lease outlasts a request with its retries (see `bounds`).
            .env("STRIPE_TIMEOUT_MS", "1000")
            .env("STRIPE_RETRY_MAX_MS", "100")
            .env("FULFILMENT_RETRY_BASE_MS", "50")
            .env("FULFILMENT_RETRY_MAX_SECS", "1")
            .env("STRIPE_RETRY_BASE_MS", "10")
            .env("OUTBOUND_ALLOW_HTTP", "true")
            .env("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")
            .env("OUTBOUND_RETRY_SCHEDULE", "50ms,50ms,50ms")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        // An empty value removes the harness's own setting, so creditd's default applies.
        for (key, value) in extra_env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        let child = command.spawn().expect("spawn creditd");
        let process = CreditdProcess {
            child,
            port,
            log_path,
        };
        process.wait_ready().await;
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Creates a customer and an open invoice for `amount` cents at the fake, and registers a
    /// purchase for it through this process's API.
    pub async fn register_purchase(&self, stripe: &FakeStripe, amount: i64) -> Registered {
        let customer = stripe.create_customer();
        let invoice = stripe.create_open_invoice(&customer, amount, "usd", &[]);
        let invoice_id = invoice["id"].as_str().unwrap().to_owned();
        let body = serde_json::json!({"customer": customer, "amount": amount, "currency": "usd",
                                      "invoice_id": invoice_id});
        let response = reqwest::Client::new()
            .post(self.url("/v1/purchases"))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, purchase) = json_response(response).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{purchase}");
        Registered {
            purchase_id: purchase["id"].as_str().unwrap().to_owned(),
            invoice_id,
            customer,
        }
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "creditd never became ready: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A real crash: SIGKILL, no cleanup, no drain.
    pub async fn kill(mut self) -> String {
        self.child.kill().await.expect("kill creditd");
        self.logs()
    }

    /// A polite stop: SIGTERM, then waits for the exit status.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("running") as i32;
        // The `kill` command rather than libc: the signal is all we need.
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("creditd exits after SIGTERM")
            .unwrap();
        (exit, self.logs())
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}
