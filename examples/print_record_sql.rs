//! Prints `creditd::db::events::RECORD_EVENTS` with its `$n` placeholders replaced, for the pgbench
//! baseline of the webhook benchmark: the baseline runs the very statement creditd runs, so it
//! cannot drift from it.
//!
//!   cargo run --release --example print_record_sql -- 'CAST(:evt_id AS text)' ... (one per $n)
//!
//! Argument k replaces `$k`. The number of arguments must equal the highest placeholder in the
//! statement, so adding or removing a bind in creditd breaks the benchmark loudly instead of
//! silently benchmarking something else. Placeholders are read as `$` plus all following digits,
//! so `$1` never matches the start of `$10`. The statement is printed with a closing `;`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let replacements: Vec<String> = std::env::args().skip(1).collect();
    let sql: &str = &creditd::db::events::RECORD_EVENTS;
    let highest = placeholders(sql).map(|(_, _, n)| n).max().unwrap_or(0);
    if replacements.len() != highest {
        eprintln!(
            "print_record_sql: RECORD_EVENTS has placeholders $1..${highest} but {} replacements were given",
            replacements.len()
        );
        return ExitCode::FAILURE;
    }
    let mut out = String::with_capacity(sql.len() + 256);
    let mut copied = 0;
    for (start, end, n) in placeholders(sql) {
        out.push_str(&sql[copied..start]);
        out.push_str(&replacements[n - 1]);
        copied = end;
    }
    out.push_str(&sql[copied..]);
    println!("{};", out.trim());
    ExitCode::SUCCESS
}

/// (start, end, number) of every `$<digits>` in `sql`, in order.
fn placeholders(sql: &str) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let bytes = sql.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i] == b'$' {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 {
                    let (start, end) = (i, i + 1 + digits);
                    i = end;
                    let n = sql[start + 1..end].parse().expect("digits parse");
                    return Some((start, end, n));
                }
            }
            i += 1;
        }
        None
    })
}
