//! The JSON bodies of the Cloud API messages endpoint (`POST /{phone-number-id}/messages`),
//! built from an [`OutboundMessage`]. Pure: the client sends what these return.

use serde_json::{Value, json};
use switchboard_core::domain::model::{IdentityKind, OutboundMessage, SendError, Template};

/// The media message types we send, chosen from the file's content type. Each has Meta's
/// size limit; anything WhatsApp does not play inline goes as a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
}

const MIB: u64 = 1024 * 1024;

impl MediaKind {
    /// Meta's supported types: JPEG/PNG images, MP4/3GPP video, AAC/AMR/MP3/M4A/OGG audio;
    /// everything else is sent as a document.
    pub(crate) fn for_content_type(content_type: &str) -> Self {
        match content_type {
            "image/jpeg" | "image/png" => Self::Image,
            "video/mp4" | "video/3gpp" => Self::Video,
            "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => Self::Audio,
            _ => Self::Document,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
        }
    }

    /// The largest file Meta accepts for the type.
    pub(crate) fn max_bytes(self) -> u64 {
        match self {
            Self::Image => 5 * MIB,
            Self::Video | Self::Audio => 16 * MIB,
            Self::Document => 100 * MIB,
        }
    }

    /// Audio messages cannot carry a caption.
    pub(crate) fn takes_caption(self) -> bool {
        self != Self::Audio
    }
}

/// The recipient as the API wants it: the wa_id or phone number, digits without `+`.
pub(crate) fn recipient(msg: &OutboundMessage) -> Result<String, SendError> {
    let invalid = |why: &str| SendError::Permanent {
        code: "unsupported_recipient".into(),
        message: why.to_string(),
    };
    if msg.to.kind != IdentityKind::WHATSAPP && msg.to.kind != IdentityKind::PHONE {
        return Err(invalid(&format!(
            "a WhatsApp channel cannot send to an address of kind {}",
            msg.to.kind
        )));
    }
    let to = msg.to.value.trim();
    let to = to
        .strip_prefix("whatsapp:")
        .unwrap_or(to)
        .trim_start_matches('+');
    if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the recipient is not a WhatsApp number"));
    }
    Ok(to.to_string())
}

fn envelope(to: &str, kind: &str, content: Value, reply_to: Option<&str>) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
    });
    body[kind] = content;
    if let Some(id) = reply_to {
        body["context"] = json!({ "message_id": id });
    }
    body
}

/// A text message; links are not previewed.
pub(crate) fn text(to: &str, body: &str, reply_to: Option<&str>) -> Value {
    envelope(
        to,
        "text",
        json!({ "preview_url": false, "body": body }),
        reply_to,
    )
}

/// A template message; `components` pass through as given (omitted when empty).
pub(crate) fn template(
    to: &str,
    template: &Template,
    reply_to: Option<&str>,
) -> Result<Value, SendError> {
    let invalid = |why: String| SendError::Permanent {
        code: "invalid_template".into(),
        message: why,
    };
    if template.name.trim().is_empty() {
        return Err(invalid("the template has no name".into()));
    }
    if template.language.trim().is_empty() {
        return Err(invalid("the template has no language code".into()));
    }
    let mut content = json!({
        "name": template.name.trim(),
        "language": { "code": template.language.trim() },
    });
    match &template.components {
        Value::Null => {}
        Value::Array(a) if a.is_empty() => {}
        Value::Array(_) => content["components"] = template.components.clone(),
        other => {
            return Err(invalid(format!(
                "template components must be an array, not {}",
                json_kind(other)
            )));
        }
    }
    Ok(envelope(to, "template", content, reply_to))
}

/// A media message by uploaded media id.
pub(crate) fn media(
    to: &str,
    kind: MediaKind,
    media_id: &str,
    caption: Option<&str>,
    filename: Option<&str>,
    reply_to: Option<&str>,
) -> Value {
    let mut content = json!({ "id": media_id });
    if let Some(c) = caption.filter(|_| kind.takes_caption()) {
        content["caption"] = json!(c);
    }
    if let Some(f) = filename.filter(|_| kind == MediaKind::Document) {
        content["filename"] = json!(f);
    }
    envelope(to, kind.as_str(), content, reply_to)
}

/// Marks an inbound message (and the ones before it) as read.
pub(crate) fn read_receipt(wamid: &str) -> Value {
    json!({ "messaging_product": "whatsapp", "status": "read", "message_id": wamid })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::domain::model::Identity;

    fn msg(kind: IdentityKind, to: &str) -> OutboundMessage {
        OutboundMessage {
            message_id: "m1".into(),
            tenant_id: "t".into(),
            channel_id: "c".into(),
            conversation_id: "cv".into(),
            to: Identity {
                kind,
                value: to.into(),
            },
            subject: None,
            text: Some("hi".into()),
            media_urls: vec![],
            in_reply_to: None,
            template: None,
            thread: Default::default(),
        }
    }

    #[test]
    fn recipients() {
        let ok = |k, v| recipient(&msg(k, v));
        assert_eq!(
            ok(IdentityKind::WHATSAPP, "16505551234"),
            Ok("16505551234".into())
        );
        assert_eq!(
            ok(IdentityKind::PHONE, "+16505551234"),
            Ok("16505551234".into())
        );
        assert_eq!(
            ok(IdentityKind::WHATSAPP, "whatsapp:+16505551234"),
            Ok("16505551234".into())
        );
        for (k, v) in [
            (IdentityKind::EMAIL, "a@b.example"),
            (IdentityKind::WHATSAPP, ""),
            (IdentityKind::PHONE, "+1 650"),
        ] {
            assert!(
                matches!(ok(k, v), Err(SendError::Permanent { ref code, .. }) if code == "unsupported_recipient"),
                "{v}"
            );
        }
    }

    #[test]
    fn text_and_reply_bodies() {
        assert_eq!(
            text("16505551234", "Hello", None),
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234",
                   "type":"text","text":{"preview_url":false,"body":"Hello"}})
        );
        let reply = text("1", "Yes", Some("wamid.A"));
        assert_eq!(reply["context"], json!({"message_id": "wamid.A"}));
    }

    #[test]
    fn template_bodies() {
        let mut t = Template {
            name: "order_update".into(),
            language: "en_US".into(),
            components: Value::Null,
        };
        let b = template("1", &t, None).expect("valid");
        assert_eq!(
            b["template"],
            json!({"name":"order_update","language":{"code":"en_US"}})
        );
        t.components = json!([{"type":"body","parameters":[{"type":"text","text":"#1042"}]}]);
        let b = template("1", &t, None).expect("valid");
        assert_eq!(
            b["template"]["components"][0]["parameters"][0]["text"],
            "#1042"
        );
        t.components = json!({"type": "body"});
        assert!(template("1", &t, None).is_err());
        t.components = Value::Null;
        t.language = " ".into();
        assert!(template("1", &t, None).is_err());
    }

    #[test]
    fn media_bodies() {
        let b = media(
            "1",
            MediaKind::Image,
            "m1",
            Some("look"),
            Some("x.jpg"),
            None,
        );
        assert_eq!(b["type"], "image");
        assert_eq!(b["image"], json!({"id":"m1","caption":"look"}));
        let b = media("1", MediaKind::Audio, "m2", Some("ignored"), None, None);
        assert_eq!(b["audio"], json!({"id":"m2"}));
        let b = media(
            "1",
            MediaKind::Document,
            "m3",
            None,
            Some("invoice.pdf"),
            Some("wamid.B"),
        );
        assert_eq!(b["document"], json!({"id":"m3","filename":"invoice.pdf"}));
        assert_eq!(b["context"]["message_id"], "wamid.B");
    }

    #[test]
    fn media_kinds() {
        assert_eq!(MediaKind::for_content_type("image/png"), MediaKind::Image);
        assert_eq!(
            MediaKind::for_content_type("image/gif"),
            MediaKind::Document
        );
        assert_eq!(MediaKind::for_content_type("video/mp4"), MediaKind::Video);
        assert_eq!(MediaKind::for_content_type("audio/ogg"), MediaKind::Audio);
        assert_eq!(
            MediaKind::for_content_type("application/pdf"),
            MediaKind::Document
        );
        assert_eq!(MediaKind::Image.max_bytes(), 5 * MIB);
    }
}
