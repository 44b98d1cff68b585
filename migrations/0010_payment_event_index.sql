-- no-transaction
-- The purchase detail lists a purchase's refund, dispute and Checkout events too: they carry no
-- invoice id (0006 and 0009 record them against the purchase they were matched to), so neither
-- invoice index finds them. Partial on events without an invoice, which `invoice.paid` never is,
-- so recording a payment pays no extra index insertion. CONCURRENTLY, one statement per file.
CREATE INDEX CONCURRENTLY IF NOT EXISTS stripe_events_purchase_without_invoice
    ON stripe_events (purchase_id) WHERE invoice_id IS NULL AND purchase_id IS NOT NULL;
