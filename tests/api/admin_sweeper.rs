//! The sweeper: a paid invoice whose `invoice.paid` event never existed is still fulfilled.

use crate::harness::TestApp;

#[tokio::test]
async fn the_sweeper_fulfils_a_paid_invoice_whose_event_never_existed() {
    let app = TestApp::spawn_with(|config| config.sweeper_interval_secs = 1).await;
    app.stripe.set_webhook_delivery(false);
    let (purchase, invoice) = app.purchase_for_new_invoice(3100).await;
    let (unpaid, _) = app.purchase_for_new_invoice(700).await;
    let invoice_id = invoice["id"].as_str().unwrap();
    app.stripe.pay_invoice(invoice_id);
    // As if Stripe had never created the event.
    app.stripe.remove_events("invoice.paid");
    assert!(
        app.stripe
            .events()
            .iter()
            .all(|e| e["type"] != "invoice.paid")
    );

    let purchase_id = purchase["id"].as_str().unwrap();
    app.wait_for_status(purchase_id, "granted").await;
    assert_eq!(app.stripe.grants().len(), 1);
    assert_eq!(
        app.get_purchase(unpaid["id"].as_str().unwrap()).await["status"],
        "awaiting_payment"
    );
    let (recorded,): (i64,) = sqlx::query_as("SELECT count(*) FROM stripe_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(recorded, 0);
    let (checks,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM stripe_calls WHERE purchase_id = $1 AND method = 'GET' AND path = $2",
    )
    .bind(purchase_id)
    .bind(format!("/v1/invoices/{invoice_id}"))
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        checks >= 1,
        "the sweeper's invoice check is logged for the purchase"
    );
}
