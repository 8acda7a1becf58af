//! The traffic: signed Twilio inbound-SMS webhooks and WhatsApp Cloud API batches.
//!
//! Every message gets a fresh provider id (`SM…` MessageSid, `wamid.…`) made of a per-run
//! nonce and a sequence number, so runs never collide. Senders are drawn uniformly from
//! 1,000 distinct numbers per channel. A share of the requests (5 % by default) are
//! re-sends of one of the last 1,024 requests, byte for byte with the same signature, as a
//! provider retry is: those carry ids already sent, possibly still in flight.
//!
//! The signatures are computed here from the providers' documentation, not with
//! Switchboard's code (the tests cross-check both):
//!
//! - Twilio: `base64(HMAC-SHA1(auth_token, url + k1 + v1 + k2 + v2 …))` over the full URL
//!   Twilio calls and the POST parameters sorted by name, in `X-Twilio-Signature`.
//! - Meta: `sha256=` + lowercase hex `HMAC-SHA256(app_secret, raw body)`, in
//!   `X-Hub-Signature-256`.

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sha1::Sha1;
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Distinct senders per channel.
pub const SENDERS: u32 = 1_000;
/// How many recent requests a duplicate may re-send.
const RECENT: usize = 1_024;

/// Which webhook a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Twilio,
    WhatsApp,
}

/// Where requests go and the secrets they are signed with.
#[derive(Debug, Clone)]
pub struct Target {
    /// The public base URL (`server.public_url`), no trailing slash.
    pub public_url: String,
    pub twilio_channel: String,
    pub twilio_auth_token: String,
    pub twilio_account_sid: String,
    /// Our number, the `To` of every SMS.
    pub twilio_number: String,
    pub wa_channel: String,
    pub wa_app_secret: String,
    pub wa_phone_number_id: String,
}

impl Target {
    /// The request path of the Twilio incoming-message webhook.
    pub fn twilio_path(&self) -> String {
        format!("/webhooks/{}/messages", self.twilio_channel)
    }

    /// The request path of the WhatsApp webhook.
    pub fn wa_path(&self) -> String {
        format!("/webhooks/{}", self.wa_channel)
    }
}

/// The traffic mix.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Share of requests that are WhatsApp batches (the rest are Twilio SMS).
    pub wa_share: f64,
    /// Messages per WhatsApp batch.
    pub wa_batch: usize,
    /// Share of requests that re-send an earlier request.
    pub dup_share: f64,
}

/// A request ready to send: body, signature and the provider ids it carries.
#[derive(Debug)]
pub struct Prepared {
    pub kind: Kind,
    pub body: Bytes,
    /// `X-Twilio-Signature` or `X-Hub-Signature-256` value.
    pub signature: String,
    pub ids: Arc<[String]>,
}

impl Prepared {
    pub fn content_type(&self) -> &'static str {
        match self.kind {
            Kind::Twilio => "application/x-www-form-urlencoded",
            Kind::WhatsApp => "application/json",
        }
    }

    pub fn signature_header(&self) -> &'static str {
        match self.kind {
            Kind::Twilio => "x-twilio-signature",
            Kind::WhatsApp => "x-hub-signature-256",
        }
    }
}

/// One request to send: a fresh one or a re-send.
#[derive(Debug, Clone)]
pub struct Send {
    pub prepared: Arc<Prepared>,
    pub duplicate: bool,
}

/// Makes the requests of a run, in order.
pub struct Generator {
    target: Arc<Target>,
    mix: Mix,
    rng: StdRng,
    nonce: u64,
    seq: u64,
    recent: VecDeque<Arc<Prepared>>,
    twilio_url: String,
}

impl Generator {
    pub fn new(target: Arc<Target>, mix: Mix, seed: u64) -> Self {
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ seed.rotate_left(32);
        let twilio_url = format!("{}{}", target.public_url, target.twilio_path());
        Self {
            target,
            mix,
            rng: StdRng::seed_from_u64(seed),
            nonce,
            seq: 0,
            recent: VecDeque::with_capacity(RECENT),
            twilio_url,
        }
    }

    /// The next request: a re-send with probability `dup_share` (once anything was sent),
    /// else a fresh Twilio SMS or WhatsApp batch.
    pub fn next_send(&mut self) -> Send {
        if !self.recent.is_empty() && self.rng.random_bool(self.mix.dup_share) {
            let i = self.rng.random_range(0..self.recent.len());
            return Send {
                prepared: self.recent[i].clone(),
                duplicate: true,
            };
        }
        let prepared = Arc::new(if self.rng.random_bool(self.mix.wa_share) {
            self.whatsapp()
        } else {
            self.twilio()
        });
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(prepared.clone());
        Send {
            prepared,
            duplicate: false,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn sender(&mut self) -> u32 {
        self.rng.random_range(0..SENDERS)
    }

    /// An inbound SMS with the parameters Twilio's incoming-message webhook sends.
    fn twilio(&mut self) -> Prepared {
        let seq = self.next_seq();
        let sid = format!("SM{:016x}{:016x}", self.nonce, seq);
        let from = format!("+1415555{:04}", self.sender());
        let body = format!(
            "Bench message {seq}: is my order #{} shipped yet?",
            seq % 9973
        );
        let t = &self.target;
        let params: Vec<(&str, &str)> = vec![
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", &sid),
            ("NumMedia", "0"),
            ("ToCity", "SAN FRANCISCO"),
            ("FromZip", "94110"),
            ("SmsSid", &sid),
            ("FromState", "CA"),
            ("SmsStatus", "received"),
            ("FromCity", "SAN FRANCISCO"),
            ("Body", &body),
            ("FromCountry", "US"),
            ("To", &t.twilio_number),
            ("ToZip", "94103"),
            ("NumSegments", "1"),
            ("MessageSid", &sid),
            ("AccountSid", &t.twilio_account_sid),
            ("From", &from),
            ("ApiVersion", "2010-04-01"),
        ];
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            form.append_pair(k, v);
        }
        let encoded = form.finish();
        let signature = twilio_signature(&t.twilio_auth_token, &self.twilio_url, &params);
        Prepared {
            kind: Kind::Twilio,
            body: Bytes::from(encoded),
            signature,
            ids: Arc::from(vec![sid]),
        }
    }

    /// A Cloud API delivery: one entry, one `messages` change, `wa_batch` text messages from
    /// random senders, with their contacts.
    fn whatsapp(&mut self) -> Prepared {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let mut ids = Vec::with_capacity(self.mix.wa_batch);
        let mut messages = Vec::with_capacity(self.mix.wa_batch);
        let mut contacts = Vec::with_capacity(self.mix.wa_batch);
        for _ in 0..self.mix.wa_batch.max(1) {
            let seq = self.next_seq();
            let sender = self.sender();
            let wa_id = format!("1650555{sender:04}");
            let id = format!("wamid.bench{:016x}{:016x}", self.nonce, seq);
            messages.push(json!({
                "from": wa_id,
                "id": id,
                "timestamp": now,
                "type": "text",
                "text": { "body": format!("Bench message {seq}: hello, any news on my order?") }
            }));
            contacts.push(
                json!({ "profile": { "name": format!("Bench Sender {sender}") }, "wa_id": wa_id }),
            );
            ids.push(id);
        }
        let t = &self.target;
        let payload = json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": "102290129340398",
                "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "15550783881",
                            "phone_number_id": t.wa_phone_number_id
                        },
                        "contacts": contacts,
                        "messages": messages
                    },
                    "field": "messages"
                }]
            }]
        });
        let body = payload.to_string().into_bytes();
        let signature = hub_signature(&t.wa_app_secret, &body);
        Prepared {
            kind: Kind::WhatsApp,
            body: Bytes::from(body),
            signature,
            ids: Arc::from(ids),
        }
    }
}

/// `X-Twilio-Signature` as Twilio documents it: HMAC-SHA1 keyed with the auth token over
/// the URL followed by every parameter name and value, sorted by name, base64.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    let mut data = String::from(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `X-Hub-Signature-256` as Meta sends it: `sha256=` and the lowercase hex HMAC-SHA256 of
/// the raw body keyed with the app secret.
pub fn hub_signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn target() -> Arc<Target> {
        Arc::new(Target {
            public_url: "http://127.0.0.1:9999".into(),
            twilio_channel: "bench-sms".into(),
            twilio_auth_token: "twilio-secret".into(),
            twilio_account_sid: "AC00000000000000000000000000000001".into(),
            twilio_number: "+15005550006".into(),
            wa_channel: "bench-wa".into(),
            wa_app_secret: "meta-secret".into(),
            wa_phone_number_id: "106540352242922".into(),
        })
    }

    #[test]
    fn twilio_signature_matches_twilios_published_vector() {
        // The vector of Twilio's SDK test suites (auth token 12345).
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("From", "+14158675309"),
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio_signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn signatures_agree_with_switchboards_verifiers() {
        let t = target();
        let mix = Mix {
            wa_share: 0.5,
            wa_batch: 3,
            dup_share: 0.0,
        };
        let mut g = Generator::new(t.clone(), mix, 7);
        let (mut tw, mut wa) = (0, 0);
        for _ in 0..50 {
            let p = g.next_send().prepared;
            match p.kind {
                Kind::Twilio => {
                    tw += 1;
                    let params: Vec<(String, String)> =
                        url::form_urlencoded::parse(&p.body).into_owned().collect();
                    let url = format!("{}{}", t.public_url, t.twilio_path());
                    let theirs = switchboard_twilio::sign(&t.twilio_auth_token, &url, &params);
                    assert_eq!(p.signature, theirs);
                    assert!(params.iter().any(|(k, v)| k == "NumMedia" && v == "0"));
                    assert!(
                        params
                            .iter()
                            .any(|(k, v)| k == "MessageSid" && *v == p.ids[0])
                    );
                }
                Kind::WhatsApp => {
                    wa += 1;
                    let theirs = switchboard_whatsapp::sign(&t.wa_app_secret, &p.body);
                    assert_eq!(p.signature, theirs);
                    let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
                    let msgs = &v["entry"][0]["changes"][0]["value"]["messages"];
                    assert_eq!(msgs.as_array().unwrap().len(), 3);
                    assert_eq!(msgs[2]["id"], p.ids[2].as_str());
                }
            }
        }
        assert!(tw > 0 && wa > 0);
    }

    #[test]
    fn ids_are_unique_and_duplicates_resend_earlier_requests() {
        let mix = Mix {
            wa_share: 0.5,
            wa_batch: 2,
            dup_share: 0.05,
        };
        let mut g = Generator::new(target(), mix, 11);
        let mut seen = HashSet::new();
        let (mut dups, mut total) = (0, 0);
        for _ in 0..4_000 {
            let s = g.next_send();
            total += 1;
            if s.duplicate {
                dups += 1;
                assert!(s.prepared.ids.iter().all(|id| seen.contains(id)));
            } else {
                assert!(s.prepared.ids.iter().all(|id| seen.insert(id.clone())));
            }
        }
        let share = dups as f64 / total as f64;
        assert!((0.03..0.07).contains(&share), "duplicate share {share}");
    }
}
