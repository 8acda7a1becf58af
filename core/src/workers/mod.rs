//! Background work core runs beside the API: the outbox dispatcher (replies and media jobs),
//! the channel health checker, and the outgoing-webhook relay.

pub mod channel_health;
pub mod outbox;
pub mod outgoing_webhooks;
