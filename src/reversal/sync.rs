//! Reading Stripe's truth about a purchase's payments: which InvoicePayments paid its invoice, and
//! every refund and dispute of those payments now.

use serde::de::DeserializeOwned;

use super::ReversalKind;
use crate::attempt::Attempt;
use crate::db;
use crate::stripe::api::reversal as api;
use crate::stripe::types::{CreditNote, Dispute, InvoicePayment, List, Listed, Refund};
use crate::stripe::{StripeError, StripeRequest};

type Read<T> = anyhow::Result<Result<T, StripeError>>;

/// Every object of a Stripe list, each page logged against the purchase.
async fn all_pages<T: DeserializeOwned + Listed>(
    attempt: &Attempt<'_>,
    page: impl Fn(Option<&str>) -> StripeRequest,
) -> Read<Vec<T>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let list: List<T> = match attempt.call(page(cursor.as_deref())).await? {
            Ok(list) => list,
            Err(error) => return Ok(Err(error)),
        };
        let last = list.data.last().map(|o| o.id().to_owned());
        let has_more = list.has_more;
        all.extend(list.data);
        match (has_more, last) {
            (true, Some(last)) => cursor = Some(last),
            _ => return Ok(Ok(all)),
        }
    }
}

/// Records how the invoice was paid, linking queued refund and dispute events about those
/// payments. Returns whether the purchase's refunds and disputes are due to be read.
pub async fn link_invoice_payments(attempt: &Attempt<'_>, invoice_id: &str) -> Read<bool> {
    let payments: Vec<InvoicePayment> = match all_pages(attempt, |after| {
        api::list_invoice_payments(invoice_id, after)
    })
    .await?
    {
        Ok(payments) => payments,
        Err(error) => return Ok(Err(error)),
    };
    let paid: Vec<InvoicePayment> = payments
        .into_iter()
        .filter(|p| p.status.as_deref().is_none_or(|s| s == "paid"))
        .collect();
    let mut connection = attempt.services.db.acquire().await?;
    let due = db::reversals::link_payments(&mut connection, &attempt.purchase.id, &paid).await?;
    Ok(Ok(due))
}

/// Reads every refund and dispute of the purchase's payments, and the part of its invoice's credit
/// notes that was not refunded (credited to the balance or paid out of band), into `reversals`. A purchase with no
/// linked payment (granted by an older creditd) links its invoice's payments first.
pub async fn read_reversals(attempt: &Attempt<'_>) -> Read<()> {
    let purchase = attempt.purchase;
    let db = &attempt.services.db;
    let mut payments = db::reversals::payments_of(db, &purchase.id).await?;
    if payments.is_empty()
        && let Some(invoice_id) = &purchase.invoice_id
    {
        if let Err(error) = link_invoice_payments(attempt, invoice_id.as_str()).await? {
            return Ok(Err(error));
        }
        payments = db::reversals::payments_of(db, &purchase.id).await?;
    }
    let mut rows = Vec::new();
    for payment in &payments {
        let (pi, charge) = (payment.payment_intent.as_deref(), payment.charge.as_deref());
        let refunds: Vec<Refund> = match all_pages(attempt, |after| {
            api::list_for_payment(false, pi, charge, after)
        })
        .await?
        {
            Ok(refunds) => refunds,
            Err(error) => return Ok(Err(error)),
        };
        let disputes: Vec<Dispute> = match all_pages(attempt, |after| {
            api::list_for_payment(true, pi, charge, after)
        })
        .await?
        {
            Ok(disputes) => disputes,
            Err(error) => return Ok(Err(error)),
        };
        for refund in refunds {
            let reversed = refund.holds_money();
            rows.push((
                refund.id,
                ReversalKind::Refund,
                refund.amount,
                refund.currency,
                refund.status,
                reversed,
            ));
        }
        // An inquiry (`warning_*`) moves no money and changes nothing, so it is not a reversal.
        for dispute in disputes
            .into_iter()
            .filter(|d| !d.status.starts_with("warning_"))
        {
            let reversed = dispute.holds_money();
            rows.push((
                dispute.id,
                ReversalKind::Dispute,
                dispute.amount,
                dispute.currency,
                dispute.status,
                reversed,
            ));
        }
    }
    if let Some(invoice_id) = &purchase.invoice_id {
        let invoice_id = invoice_id.as_str();
        let notes: Vec<CreditNote> =
            match all_pages(attempt, |after| api::list_credit_notes(invoice_id, after)).await? {
                Ok(notes) => notes,
                Err(error) => return Ok(Err(error)),
            };
        for note in notes {
            let amount = note.returned_without_refund();
            if amount > 0 {
                let reversed = note.status != "void";
                let kind = ReversalKind::CreditNote;
                rows.push((note.id, kind, amount, note.currency, note.status, reversed));
            }
        }
    }
    db::reversals::upsert_reversals(db, &purchase.id, &rows).await?;
    Ok(Ok(()))
}
