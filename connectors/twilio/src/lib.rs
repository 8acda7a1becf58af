//! twilio
