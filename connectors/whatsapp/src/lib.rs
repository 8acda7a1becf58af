//! Switchboard's WhatsApp Cloud API connector (work in progress).
