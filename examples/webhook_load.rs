//! Load generator for `POST /webhooks/stripe`: the webhook benchmark's client half.
//!
//! Sends N distinct, realistic (~3 KB) `invoice.paid` events, each signed at send time like
//! Stripe does, from C concurrent tasks over one keep-alive HTTP client, and reports events/s and
//! latency percentiles per phase. No event matches a purchase, so creditd records each one
//! (`outcome: unmatched`) and never calls Stripe: what is measured is verify + parse + the one
//! `RECORD_EVENTS` statement.
//!
//!   cargo run --release --example webhook_load -- --url http://127.0.0.1:18080 \
//!       --secret whsec_bench --events 20000 --concurrency 16 --mode both
//!
//! Modes: `new` sends N fresh events; `duplicate` first sends them untimed, then times re-sending
//! them; `both` times the N new events and then the same N again as duplicates.
//! Every answer must be 200 with `duplicate` matching the phase; any other answer is counted as
//! a failure and makes the program exit 1. With `--server-pid`, the CPU time creditd used in each
//! phase is reported too (from /proc), next to this process's own and the machine's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    New,
    Duplicate,
    Both,
}

#[derive(Debug, Parser)]
#[command(about = "Webhook load generator for creditd")]
struct Args {
    /// Base URL of creditd, e.g. http://127.0.0.1:18080.
    #[arg(long, required_unless_present = "print_event")]
    url: Option<String>,
    /// Webhook signing secret creditd is configured with (STRIPE_WEBHOOK_SECRET).
    #[arg(long, required_unless_present = "print_event")]
    secret: Option<String>,
    /// Events per phase.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Concurrent requests in flight (one task and one keep-alive connection each).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Makes event and invoice ids unique across runs against the same database; default: the clock.
    #[arg(long)]
    run_id: Option<String>,
    /// creditd's process id, to report the CPU it used per phase.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Count only PostgreSQL connections to this database as `pg conn` (others go to `pg other`),
    /// since other clients may share the server.
    #[arg(long)]
    pg_database: Option<String>,
    /// Also print one machine-readable line per phase: `RESULT phase=.. eps=.. p50_ms=..`.
    #[arg(long)]
    machine: bool,
    /// Print one event body (the payload the pgbench baseline stores) and exit.
    #[arg(long)]
    print_event: bool,
}

/// A paid invoice event as Stripe sends it (API 2025-03-31.basil): an invoice with one line,
/// payment settings, status transitions and so on; compact, as Stripe sends it. `__EVT__`,
/// `__INV__` and `__T__` are replaced per event.
const TEMPLATE: &str = r#"{"id":"__EVT__","object":"event","api_version":"2025-03-31.basil","created":__T__,"data":{"object":{"id":"__INV__","object":"invoice","account_country":"US","account_name":"Bench Labs, Inc.","account_tax_ids":null,"amount_due":2500,"amount_overpaid":0,"amount_paid":2500,"amount_remaining":0,"amount_shipping":0,"application":null,"attempt_count":1,"attempted":true,"auto_advance":false,"automatic_tax":{"disabled_reason":null,"enabled":false,"liability":null,"provider":null,"status":null},"automatically_finalizes_at":null,"billing_reason":"manual","collection_method":"charge_automatically","confirmation_secret":null,"created":__T__,"currency":"usd","custom_fields":null,"customer":"cus_bench","customer_address":{"city":"Berlin","country":"DE","line1":"Torstrasse 1","line2":null,"postal_code":"10119","state":null},"customer_email":"billing@bench.example","customer_name":"Bench Customer","customer_phone":null,"customer_shipping":null,"customer_tax_exempt":"none","customer_tax_ids":[],"default_payment_method":null,"default_source":null,"default_tax_rates":[],"description":"Prepaid usage credits","discounts":[],"due_date":null,"effective_at":__T__,"ending_balance":0,"footer":null,"from_invoice":null,"hosted_invoice_url":"https://invoice.stripe.com/i/acct_1Bench/test_YWNjdF8xQmVuY2gsX1JiZW5jaA0200abcdef?s=ap","invoice_pdf":"https://pay.stripe.com/invoice/acct_1Bench/test_YWNjdF8xQmVuY2gsX1JiZW5jaA0200abcdef/pdf?s=ap","issuer":{"type":"self"},"last_finalization_error":null,"latest_revision":null,"lines":{"object":"list","data":[{"id":"il___INV__","object":"line_item","amount":2500,"currency":"usd","description":"Usage credits: 2,500 units","discount_amounts":[],"discountable":true,"discounts":[],"invoice":"__INV__","livemode":false,"metadata":{},"parent":{"invoice_item_details":{"invoice_item":"ii___INV__","proration":false,"proration_details":{"credited_items":null},"subscription":null},"subscription_item_details":null,"type":"invoice_item_details"},"period":{"end":__T__,"start":__T__},"pretax_credit_amounts":[],"pricing":{"price_details":{"price":"price_1BenchCredits2500","product":"prod_BenchCredits"},"type":"price_details","unit_amount_decimal":"2500"},"quantity":1,"taxes":[]}],"has_more":false,"total_count":1,"url":"/v1/invoices/__INV__/lines"},"livemode":false,"metadata":{"order_ref":"bench-order"},"next_payment_attempt":null,"number":"BENCH-0001","on_behalf_of":null,"parent":null,"payment_settings":{"default_mandate":null,"payment_method_options":{"acss_debit":null,"bancontact":null,"card":{"request_three_d_secure":"automatic"},"customer_balance":null,"konbini":null,"sepa_debit":null,"us_bank_account":null},"payment_method_types":null},"period_end":__T__,"period_start":__T__,"post_payment_credit_notes_amount":0,"pre_payment_credit_notes_amount":0,"receipt_number":null,"rendering":{"amount_tax_display":null,"pdf":{"page_size":"auto"},"template":null,"template_version":null},"shipping_cost":null,"shipping_details":null,"starting_balance":0,"statement_descriptor":null,"status":"paid","status_transitions":{"finalized_at":__T__,"marked_uncollectible_at":null,"paid_at":__T__,"voided_at":null},"subtotal":2500,"subtotal_excluding_tax":2500,"test_clock":null,"total":2500,"total_discount_amounts":[],"total_excluding_tax":2500,"total_pretax_credit_amounts":[],"total_taxes":[],"webhooks_delivered_at":__T__}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":"bench-__INV__"},"type":"invoice.paid"}"#;

/// Event `i` of a run. Ids are unique per (run, i) but not in send order: multiplying by an odd
/// constant permutes u32, so consecutive events land at scattered places in the primary key, as
/// Stripe's ids and the pgbench baseline's random ids do.
fn event_body(run_id: &str, i: usize, created: &str) -> String {
    let scrambled = (i as u32).wrapping_mul(0x9E37_79B1);
    TEMPLATE
        .replace("__EVT__", &format!("evt_{run_id}{scrambled:08x}"))
        .replace("__INV__", &format!("in_{run_id}{scrambled:08x}"))
        .replace("__T__", created)
}

struct Phase {
    name: &'static str,
    expect_duplicate: bool,
}

struct PhaseResult {
    name: &'static str,
    events: usize,
    failures: usize,
    elapsed: Duration,
    /// Sorted, in microseconds.
    latencies: Vec<u32>,
    cpu: CpuUse,
    first_failure: Option<String>,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile, in milliseconds.
    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[index] as f64 / 1000.0
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.events == 0 || args.concurrency == 0 {
        eprintln!("--events and --concurrency must be at least 1");
        return std::process::ExitCode::FAILURE;
    }
    if args.print_event {
        println!(
            "{}",
            event_body("0000000000000000", 0, &now_secs().to_string())
        );
        return std::process::ExitCode::SUCCESS;
    }
    let (Some(url), Some(secret)) = (args.url.clone(), args.secret.clone()) else {
        unreachable!("clap requires --url and --secret");
    };
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{:016x}", nanos % (1u128 << 64))
    });
    let endpoint = format!("{}/webhooks/stripe", url.trim_end_matches('/'));

    // Built before any timing: the bodies are what Stripe would send, only signing happens per request.
    let created = now_secs().to_string();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..args.events)
            .map(|i| Bytes::from(event_body(&run_id, i, &created)))
            .collect(),
    );
    let avg_len = bodies.iter().map(Bytes::len).sum::<usize>() / bodies.len();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the HTTP client");

    // Open the keep-alive connections before timing, so the first phase does not pay TCP setup.
    let warm: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let client = client.clone();
            let url = format!("{}/healthz", url.trim_end_matches('/'));
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    for task in warm {
        match task.await.expect("warm-up task") {
            Ok(status) if status.is_success() => {}
            other => {
                eprintln!("webhook_load: {url} is not answering /healthz: {other:?}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }

    let phases: Vec<(Phase, bool)> = match args.mode {
        Mode::New => vec![(
            Phase {
                name: "new",
                expect_duplicate: false,
            },
            true,
        )],
        Mode::Duplicate => vec![
            (
                Phase {
                    name: "prime",
                    expect_duplicate: false,
                },
                false,
            ),
            (
                Phase {
                    name: "duplicate",
                    expect_duplicate: true,
                },
                true,
            ),
        ],
        Mode::Both => vec![
            (
                Phase {
                    name: "new",
                    expect_duplicate: false,
                },
                true,
            ),
            (
                Phase {
                    name: "duplicate",
                    expect_duplicate: true,
                },
                true,
            ),
        ],
    };

    println!(
        "webhook_load: {} events/phase of {avg_len} bytes, concurrency {}, run id {run_id}",
        args.events, args.concurrency
    );
    let mut results = Vec::new();
    for (phase, report) in phases {
        let result = run_phase(&client, &endpoint, &secret, &args, &bodies, phase).await;
        // The untimed priming phase is shown only when it failed.
        if report || result.failures > 0 {
            results.push(result);
        }
    }

    println!();
    println!(
        "{:<10} {:>7} {:>5} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "phase", "events", "fail", "secs", "events/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut failed = false;
    for r in &results {
        println!(
            "{:<10} {:>7} {:>5} {:>7.2} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            r.name,
            r.events,
            r.failures,
            r.elapsed.as_secs_f64(),
            r.rate(),
            r.pct(50.0),
            r.pct(90.0),
            r.pct(99.0),
            r.pct(100.0),
        );
        if r.failures > 0 {
            failed = true;
            eprintln!(
                "webhook_load: {}: {} of {} requests failed; first: {}",
                r.name,
                r.failures,
                r.events,
                r.first_failure.as_deref().unwrap_or("?")
            );
        }
    }
    println!();
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}   (CPU ms per event; machine: {} cpus)",
        "phase",
        "creditd",
        "client",
        "pg conn",
        "pg avac",
        "pg other",
        "rest",
        "machine",
        results.first().map(|r| r.cpu.cpus).unwrap_or(0)
    );
    for r in &results {
        let per = |ms: f64| ms / r.events as f64;
        let c = &r.cpu;
        let machine = c.machine_busy * c.cpus as f64 * r.elapsed.as_secs_f64() * 1000.0;
        let known = c.server_ms.unwrap_or(0.0)
            + c.self_ms
            + c.pg_backend_ms
            + c.pg_autovacuum_ms
            + c.pg_other_ms;
        println!(
            "{:<10} {:>8} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}   ({:.0}% busy)",
            r.name,
            c.server_ms
                .map(|ms| format!("{:.3}", per(ms)))
                .unwrap_or_else(|| "-".into()),
            per(c.self_ms),
            per(c.pg_backend_ms),
            per(c.pg_autovacuum_ms),
            per(c.pg_other_ms),
            per((machine - known).max(0.0)),
            per(machine),
            c.machine_busy * 100.0,
        );
    }
    if args.machine {
        for r in &results {
            println!(
                "RESULT phase={} events={} failures={} secs={:.3} eps={:.1} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} server_cpu_ms_per_event={} client_cpu_ms_per_event={:.4} pg_backend_cpu_ms_per_event={:.4} pg_autovacuum_cpu_ms_per_event={:.4} pg_other_cpu_ms_per_event={:.4} machine_busy={:.3}",
                r.name,
                r.events,
                r.failures,
                r.elapsed.as_secs_f64(),
                r.rate(),
                r.pct(50.0),
                r.pct(90.0),
                r.pct(99.0),
                r.pct(100.0),
                r.cpu
                    .server_ms
                    .map(|ms| format!("{:.4}", ms / r.events as f64))
                    .unwrap_or_else(|| "-".into()),
                r.cpu.self_ms / r.events as f64,
                r.cpu.pg_backend_ms / r.events as f64,
                r.cpu.pg_autovacuum_ms / r.events as f64,
                r.cpu.pg_other_ms / r.events as f64,
                r.cpu.machine_busy,
            );
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

async fn run_phase(
    client: &reqwest::Client,
    endpoint: &str,
    secret: &str,
    args: &Args,
    bodies: &Arc<Vec<Bytes>>,
    phase: Phase,
) -> PhaseResult {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = CpuSnapshot::take(args.server_pid, args.pg_database.as_deref());
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let client = client.clone();
            let endpoint = endpoint.to_owned();
            let secret = secret.to_owned();
            let bodies = Arc::clone(bodies);
            let next = Arc::clone(&next);
            let expect_duplicate = phase.expect_duplicate;
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(bodies.len() / 8 + 16);
                let mut failures = 0usize;
                let mut first_failure = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let sent = Instant::now();
                    let signature =
                        creditd::stripe::signature::sign(&secret, now_secs(), body.as_ref());
                    let outcome = send(&client, &endpoint, signature, body.clone()).await;
                    latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    let problem = match outcome {
                        Ok((200, duplicate)) if duplicate == Some(expect_duplicate) => None,
                        Ok((status, duplicate)) => Some(format!(
                            "event {i}: status {status}, duplicate {duplicate:?}, expected {expect_duplicate}"
                        )),
                        Err(error) => Some(format!("event {i}: {error}")),
                    };
                    if let Some(problem) = problem {
                        failures += 1;
                        first_failure.get_or_insert(problem);
                    }
                }
                (latencies, failures, first_failure)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(bodies.len());
    let mut failures = 0;
    let mut first_failure = None;
    for task in tasks {
        let (lat, fail, first) = task.await.expect("load task panicked");
        latencies.extend(lat);
        failures += fail;
        if first_failure.is_none() {
            first_failure = first;
        }
    }
    let elapsed = started.elapsed();
    let cpu = CpuSnapshot::take(args.server_pid, args.pg_database.as_deref()).since(&cpu_before);
    latencies.sort_unstable();
    PhaseResult {
        name: phase.name,
        events: bodies.len(),
        failures,
        elapsed,
        latencies,
        cpu,
        first_failure,
    }
}

/// Sends one event; returns the status and the `duplicate` field of a JSON answer.
async fn send(
    client: &reqwest::Client,
    endpoint: &str,
    signature: String,
    body: Bytes,
) -> Result<(u16, Option<bool>), reqwest::Error> {
    let response = client
        .post(endpoint)
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer = response.bytes().await?;
    let duplicate = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v.get("duplicate").and_then(serde_json::Value::as_bool));
    Ok((status, duplicate))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// CPU used during a phase, from /proc (Linux); zeros elsewhere.
struct CpuUse {
    self_ms: f64,
    server_ms: Option<f64>,
    /// PostgreSQL processes on this machine: backends (connections), autovacuum workers, and the
    /// rest (WAL writer, checkpointer, background writer...). Processes that exit during the
    /// phase are missed, so short-lived autovacuum workers may be under-counted.
    pg_backend_ms: f64,
    pg_autovacuum_ms: f64,
    pg_other_ms: f64,
    /// Fraction of all CPUs that were busy (anything but idle and iowait).
    machine_busy: f64,
    cpus: usize,
}

struct CpuSnapshot {
    self_ticks: u64,
    server_ticks: Option<u64>,
    postgres: std::collections::HashMap<u32, (PgKind, u64)>,
    machine_busy: u64,
    machine_total: u64,
    cpus: usize,
}

/// Clock ticks per second of /proc's times (USER_HZ); 100 on every mainstream Linux.
const TICKS_PER_SEC: f64 = 100.0;

impl CpuSnapshot {
    fn take(server_pid: Option<u32>, pg_database: Option<&str>) -> Self {
        let (machine_busy, machine_total, cpus) = machine_ticks().unwrap_or((0, 0, 0));
        CpuSnapshot {
            self_ticks: process_ticks("self").unwrap_or(0),
            server_ticks: server_pid.and_then(|pid| process_ticks(&pid.to_string())),
            postgres: postgres_ticks(pg_database),
            machine_busy,
            machine_total,
            cpus,
        }
    }

    fn since(&self, before: &CpuSnapshot) -> CpuUse {
        let ms = |ticks: u64| ticks as f64 * 1000.0 / TICKS_PER_SEC;
        let total = self.machine_total.saturating_sub(before.machine_total);
        let mut pg = [0u64; 3];
        for (pid, (kind, ticks)) in &self.postgres {
            let earlier = before.postgres.get(pid).map(|(_, t)| *t).unwrap_or(0);
            pg[*kind as usize] += ticks.saturating_sub(earlier);
        }
        CpuUse {
            pg_backend_ms: ms(pg[PgKind::Backend as usize]),
            pg_autovacuum_ms: ms(pg[PgKind::Autovacuum as usize]),
            pg_other_ms: ms(pg[PgKind::Other as usize]),
            self_ms: ms(self.self_ticks.saturating_sub(before.self_ticks)),
            server_ms: match (self.server_ticks, before.server_ticks) {
                (Some(after), Some(before)) => Some(ms(after.saturating_sub(before))),
                _ => None,
            },
            machine_busy: if total == 0 {
                0.0
            } else {
                self.machine_busy.saturating_sub(before.machine_busy) as f64 / total as f64
            },
            cpus: self.cpus,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgKind {
    Backend = 0,
    Autovacuum = 1,
    Other = 2,
}

/// CPU ticks of every process named `postgres`, by pid, classified by its process title.
fn postgres_ticks(database: Option<&str>) -> std::collections::HashMap<u32, (PgKind, u64)> {
    // A backend's title: `postgres: <user> <database> <host>(<port>) <activity>`.
    let ours = |title: &str| match database {
        Some(db) => title.split_whitespace().nth(2) == Some(db),
        None => true,
    };
    let mut found = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() != "postgres" {
            continue;
        }
        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let title = String::from_utf8_lossy(&title);
        let kind = if title.contains("autovacuum worker") {
            PgKind::Autovacuum
        } else if (title.contains("127.0.0.1(") || title.contains("[local]")) && ours(&title) {
            PgKind::Backend
        } else {
            PgKind::Other
        };
        if let Some(ticks) = process_ticks(&pid.to_string()) {
            found.insert(pid, (kind, ticks));
        }
    }
    found
}

/// utime + stime of a process, in clock ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the full line, utime is 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) ticks over all CPUs, and the number of CPUs, from /proc/stat.
fn machine_ticks() -> Option<(u64, u64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total, cpus))
}
