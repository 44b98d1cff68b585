//! An optional state file for `creditd sandbox --state-file`: the objects and events are written
//! as JSON when the sandbox stops and read back when it starts, so a laptop's data survives a
//! restart. Idempotency keys, faults and recorded requests are deliberately left out: they model
//! the moment, not the account.

use super::state::{State, Stored};
use super::{CardBehaviour, FakeStripe};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    customers: Vec<String>,
    customer_objects: HashMap<String, Value>,
    invoices: Vec<Value>,
    items: Vec<Value>,
    grants: Vec<Value>,
    txns: Vec<Value>,
    #[serde(default)]
    payments: [Vec<Value>; 5],
    events: Vec<Value>,
    delivered: HashSet<String>,
    balances: HashMap<String, i64>,
    discounts: HashMap<String, Value>,
    clock_offset: i64,
    invoice_numbers: u64,
    #[serde(default)]
    cards: HashMap<String, CardBehaviour>,
    #[serde(default)]
    checkout_sessions: Vec<Value>,
    #[serde(default)]
    checkout_requests: HashMap<String, Value>,
}

/// Objects keep their order; sequence numbers are handed out again on load.
fn values(list: &[Stored]) -> Vec<Value> {
    list.iter().map(|s| s.json.clone()).collect()
}

fn restore(st: &mut State, list: Vec<Value>) -> Vec<Stored> {
    list.into_iter().map(|json| st.stored(json)).collect()
}

impl FakeStripe {
    /// Writes the sandbox's objects and events to `path` (through a temporary file and a rename,
    /// so a crash mid-write leaves the previous file whole).
    pub fn save_state(&self, path: &Path) -> anyhow::Result<()> {
        let snapshot = {
            let st = self.lock();
            Snapshot {
                customers: st.customers.clone(),
                customer_objects: st.customer_objects.clone(),
                invoices: values(&st.invoices),
                items: values(&st.items),
                grants: values(&st.grants),
                txns: values(&st.txns),
                payments: [
                    values(&st.payment_intents),
                    values(&st.charges),
                    values(&st.invoice_payments),
                    values(&st.refunds),
                    values(&st.disputes),
                ],
                events: values(&st.events),
                delivered: st.delivered.clone(),
                balances: st.balances.clone(),
                discounts: st.discounts.clone(),
                clock_offset: st.clock_offset,
                invoice_numbers: st.invoice_numbers,
                cards: st.cards.clone(),
                checkout_sessions: values(&st.checkout_sessions),
                checkout_requests: st.checkout_requests.clone(),
            }
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&snapshot)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
    }

    /// Replaces the sandbox's objects and events with those saved in `path`.
    pub fn load_state(&self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let snap: Snapshot = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a sandbox state file", path.display()))?;
        let mut st = self.lock();
        st.customers = snap.customers;
        st.customer_objects = snap.customer_objects;
        st.invoices = restore(&mut st, snap.invoices);
        st.items = restore(&mut st, snap.items);
        st.grants = restore(&mut st, snap.grants);
        st.txns = restore(&mut st, snap.txns);
        let [intents, charges, invoice_payments, refunds, disputes] = snap.payments;
        st.payment_intents = restore(&mut st, intents);
        st.charges = restore(&mut st, charges);
        st.invoice_payments = restore(&mut st, invoice_payments);
        st.refunds = restore(&mut st, refunds);
        st.disputes = restore(&mut st, disputes);
        st.events = restore(&mut st, snap.events);
        st.delivered = snap.delivered;
        st.balances = snap.balances;
        st.discounts = snap.discounts;
        st.clock_offset = snap.clock_offset;
        st.invoice_numbers = snap.invoice_numbers;
        st.cards = snap.cards;
        st.checkout_sessions = restore(&mut st, snap.checkout_sessions);
        st.checkout_requests = snap.checkout_requests;
        Ok(())
    }
}
