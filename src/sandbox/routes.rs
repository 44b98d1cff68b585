//! Maps an operation id to the code that executes it against the state.

use super::error::ApiError;
use super::state::{Ctx, State};
use super::{
    balances, cards, checkout, credits, customers, events, invoice_items, invoices, payments,
};
use serde_json::Value;

/// Executes one validated operation. `args` are the `{...}` path segments in order.
pub fn execute(
    st: &mut State,
    ctx: &Ctx,
    op_id: &str,
    args: &[String],
    p: &Value,
) -> Result<Value, ApiError> {
    let id = args.first().map(String::as_str).unwrap_or_default();
    match op_id {
        "PostInvoices" => invoices::create(st, ctx, p),
        "PostInvoiceitems" => invoice_items::create(st, ctx, p),
        "PostInvoicesInvoiceFinalize" => invoices::finalize(st, ctx, id, p),
        "PostInvoicesInvoicePay" => cards::pay(st, ctx, id, p),
        "PostCheckoutSessions" => checkout::create(st, p),
        "GetCheckoutSessions" => checkout::list(st, p),
        "GetCheckoutSessionsSession" => checkout::retrieve(st, id),
        "PostInvoicesInvoiceVoid" => invoices::void(st, ctx, id),
        "PostInvoicesInvoiceMarkUncollectible" => invoices::mark_uncollectible(st, ctx, id),
        "GetInvoicesInvoice" => invoices::retrieve(st, id),
        "GetInvoices" => invoices::list(st, p),
        "GetInvoiceitemsInvoiceitem" => invoice_items::retrieve(st, id),
        "PostCustomers" => customers::create(st, ctx, p),
        "GetCustomersCustomer" => customers::retrieve(st, id),
        "GetInvoicePayments" => payments::list_invoice_payments(st, p),
        "GetChargesCharge" => payments::retrieve(&st.charges, "charge", id),
        "GetPaymentIntentsIntent" => payments::retrieve(&st.payment_intents, "payment_intent", id),
        "PostRefunds" => payments::refund(st, ctx, p),
        "PostCreditNotes" => payments::create_credit_note(st, ctx, p),
        "GetCreditNotes" => payments::list_credit_notes(st, p),
        "GetRefunds" => payments::list_by_payment(st, p, false),
        "GetDisputes" => payments::list_by_payment(st, p, true),
        "GetRefundsRefund" => payments::retrieve(&st.refunds, "refund", id),
        "GetDisputesDispute" => payments::retrieve(&st.disputes, "dispute", id),
        "PostBillingCreditGrants" => credits::create_grant(st, ctx, p),
        "GetBillingCreditGrants" => credits::list_grants(st, p),
        "GetBillingCreditGrantsId" => credits::retrieve_grant(st, id),
        "PostBillingCreditGrantsId" => credits::update_grant(st, ctx, id, p),
        "PostBillingCreditGrantsIdVoid" => credits::void_grant(st, ctx, id),
        "PostBillingCreditGrantsIdExpire" => credits::expire_grant(st, ctx, id),
        "GetBillingCreditBalanceSummary" => balances::balance_summary(st, p),
        "GetBillingCreditBalanceTransactions" => balances::list_transactions(st, p),
        "GetBillingCreditBalanceTransactionsId" => balances::retrieve_transaction(st, id),
        "GetEvents" => events::list(st, p),
        "GetEventsId" => events::retrieve(st, id),
        other => Err(ApiError::new(
            501,
            "api_error",
            format!("The fake does not implement {other}"),
        )),
    }
}
