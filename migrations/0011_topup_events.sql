-- Outbound events for automatic top-ups (issue 15): `topup.succeeded` when a top-up is granted,
-- `topup.failed` when it fails, `topup.paused` when that failure paused its rule. They are born
-- from the same purchase transition as the purchase's own event, in the same transaction, with
-- ids derived from that transition, so a replayed transition makes none of them twice.

ALTER TABLE webhook_messages DROP CONSTRAINT webhook_messages_event_type_check;
ALTER TABLE webhook_messages ADD CONSTRAINT webhook_messages_event_type_check CHECK (event_type IN (
    'purchase.invoice_ready', 'purchase.granted', 'purchase.failed', 'purchase.rejected',
    'purchase.canceled', 'purchase.reversed', 'purchase.partially_reversed',
    'purchase.paid_without_credits', 'topup.succeeded', 'topup.failed', 'topup.paused'));

CREATE OR REPLACE FUNCTION webhook_messages_for_transition() RETURNS trigger AS $$
DECLARE
    stem text := webhook_message_stem(NEW.purchase_id) || '_t' || NEW.id || '_';
    paid boolean;
    topup text;
    paused_now boolean;
BEGIN
    IF NOT webhook_transition_is_event(NEW.purchase_id, NEW.id, NEW.to_status) THEN
        RETURN NULL;
    END IF;
    PERFORM enqueue_webhook_message(stem || NEW.to_status, NEW.purchase_id,
                                    'purchase.' || NEW.to_status, NEW.id);
    -- "Money taken, no credits": the definition of db::purchases::paid_without_credits.
    IF NEW.to_status IN ('failed', 'rejected') THEN
        SELECT paid_at IS NOT NULL INTO paid FROM purchases WHERE id = NEW.purchase_id;
        IF paid THEN
            PERFORM enqueue_webhook_message(stem || 'paid_without_credits', NEW.purchase_id,
                                            'purchase.paid_without_credits', NEW.id);
        END IF;
    END IF;
    SELECT topup_customer INTO topup FROM purchases WHERE id = NEW.purchase_id;
    IF topup IS NOT NULL AND NEW.to_status = 'granted' THEN
        PERFORM enqueue_webhook_message(stem || 'topup_succeeded', NEW.purchase_id,
                                        'topup.succeeded', NEW.id);
    ELSIF topup IS NOT NULL AND NEW.to_status = 'failed' THEN
        PERFORM enqueue_webhook_message(stem || 'topup_failed', NEW.purchase_id,
                                        'topup.failed', NEW.id);
        -- The rule's failure count trigger (purchases_topup_outcome, 0009) runs before the
        -- transition is written, so a pause caused by this failure is already stamped now().
        SELECT paused_at = now() INTO paused_now FROM auto_topup_rules WHERE customer = topup;
        IF paused_now THEN
            PERFORM enqueue_webhook_message(stem || 'topup_paused', NEW.purchase_id,
                                            'topup.paused', NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
