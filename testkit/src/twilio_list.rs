//! The fake Twilio's Messages list, `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! as Twilio documents it: the account's messages, newest first, filtered by `To`, `From`
//! and `DateSent` (a GMT date `YYYY-MM-DD`: `DateSent=` that day, `DateSent>=` on or after
//! its midnight, `DateSent<=` on or before the day), in pages of `PageSize` (default 50, at
//! most 1000) walked with `Page` and `PageToken`. A page is `{"messages": [...]}` with
//! `page`, `page_size`, `start`, `end`, `uri`, `first_page_uri`, `next_page_uri` (null on
//! the last page) and `previous_page_uri`.

use crate::twilio::{FakeState, account_of, twilio_error};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use time::format_description::well_known::Rfc2822;
use time::{Date, OffsetDateTime};

/// Now, as Twilio writes dates (RFC 2822, GMT).
pub(crate) fn rfc2822_now() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc2822).ok())
        .unwrap_or_default()
}

/// The filters and page of one list request.
struct Query {
    to: Option<String>,
    from: Option<String>,
    /// (`=`, `>=` or `<=`, the date).
    date_sent: Vec<(&'static str, Date)>,
    page_size: usize,
    page: usize,
}

impl Query {
    fn parse(raw: &str) -> Result<Self, String> {
        let mut q = Query {
            to: None,
            from: None,
            date_sent: Vec::new(),
            page_size: 50,
            page: 0,
        };
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            let date = || {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                Date::parse(&v, &format).map_err(|_| format!("{k}: not a YYYY-MM-DD date"))
            };
            match k.as_ref() {
                "To" => q.to = Some(v.into_owned()),
                "From" => q.from = Some(v.into_owned()),
                "DateSent" => q.date_sent.push(("=", date()?)),
                "DateSent>" => q.date_sent.push((">=", date()?)),
                "DateSent<" => q.date_sent.push(("<=", date()?)),
                "PageSize" => {
                    q.page_size = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or("PageSize: 1 to 1000")?;
                }
                "Page" => q.page = v.parse().map_err(|_| "Page: a number")?,
                _ => {}
            }
        }
        Ok(q)
    }

    fn matches(&self, m: &Value) -> bool {
        let field = |k: &str| m.get(k).and_then(Value::as_str);
        if self.to.as_deref().is_some_and(|to| field("to") != Some(to))
            || self
                .from
                .as_deref()
                .is_some_and(|f| field("from") != Some(f))
        {
            return false;
        }
        let sent = field("date_sent").and_then(|d| OffsetDateTime::parse(d, &Rfc2822).ok());
        self.date_sent.iter().all(|(op, date)| match sent {
            None => false,
            Some(sent) => match *op {
                ">=" => sent.date() >= *date,
                "<=" => sent.date() <= *date,
                _ => sent.date() == *date,
            },
        })
    }

    /// The query string of page `page` (filters as received, Twilio's names).
    fn uri(&self, account: &str, page: usize) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(to) = &self.to {
            q.append_pair("To", to);
        }
        if let Some(from) = &self.from {
            q.append_pair("From", from);
        }
        for (op, date) in &self.date_sent {
            let key = match *op {
                ">=" => "DateSent>",
                "<=" => "DateSent<",
                _ => "DateSent",
            };
            q.append_pair(key, &date.to_string());
        }
        q.append_pair("PageSize", &self.page_size.to_string());
        q.append_pair("Page", &page.to_string());
        if page > 0 {
            q.append_pair("PageToken", &format!("PASM{page:032}"));
        }
        format!(
            "/2010-04-01/Accounts/{account}/Messages.json?{}",
            q.finish()
        )
    }
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`.
pub(crate) async fn list(
    State(s): State<Arc<FakeState>>,
    Path(sid): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if account_of(&headers).is_none() {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let q = match Query::parse(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return twilio_error(StatusCode::BAD_REQUEST, 20001, &e),
    };
    let matching: Vec<Value> = {
        let all = s.messages.lock().expect("lock");
        all.iter().rev().filter(|m| q.matches(m)).cloned().collect()
    };
    let start = q.page * q.page_size;
    let items: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(q.page_size)
        .cloned()
        .collect();
    let more = matching.len() > start + items.len();
    axum::Json(json!({
        "first_page_uri": q.uri(&sid, 0),
        "end": (start + items.len()).saturating_sub(1),
        "previous_page_uri": (q.page > 0).then(|| q.uri(&sid, q.page - 1)),
        "messages": items,
        "uri": q.uri(&sid, q.page),
        "page_size": q.page_size,
        "start": start,
        "next_page_uri": more.then(|| q.uri(&sid, q.page + 1)),
        "page": q.page,
    }))
    .into_response()
}
