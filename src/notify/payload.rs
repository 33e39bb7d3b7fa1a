//! The body each kind of receiver expects, and the generic webhook's signature.

use hmac::{KeyInit, Mac};
use serde_json::{json, Value};

use super::{Message, Severity};

/// Slack's limit for a section's text is 3,000 characters; Teams cards and our JSON get the
/// same cut so a huge report never makes a receiver refuse the message.
const MAX_TEXT: usize = 2_900;

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_TEXT).collect();
    out.push_str("\n…(cut)");
    out
}

/// Slack's mrkdwn treats `<…>` as links and mentions (`<!channel>`) and `&` as an entity:
/// text from data (column names, reasons) is escaped as Slack documents.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn facts(m: &Message) -> Vec<(&'static str, String)> {
    let mut f = vec![("Model", m.model.clone())];
    if let Some(e) = &m.environment {
        f.push(("Environment", e.clone()));
    }
    if let Some(d) = &m.digest {
        f.push(("Digest", d.clone()));
    }
    f.push(("Event", format!("{} {}", m.event.as_str(), m.action)));
    f
}

fn emoji(s: Severity) -> &'static str {
    match s {
        Severity::Good => ":white_check_mark:",
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Bad => ":rotating_light:",
    }
}

/// A Slack incoming-webhook message: `text` (the notification's fallback) and blocks.
pub fn slack(m: &Message) -> Value {
    let title = slack_escape(&m.title);
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("{} *{title}*", emoji(m.severity))}
    })];
    if !m.text.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(&slack_escape(&m.text))}
        }));
    }
    let mut context: Vec<Value> = facts(m)
        .into_iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}:* {}", slack_escape(&v))}))
        .collect();
    if let Some(url) = &m.url {
        context.push(json!({"type": "mrkdwn", "text": format!("<{}|details>", slack_escape(url))}));
    }
    blocks.push(json!({"type": "context", "elements": context}));
    json!({"text": title, "blocks": blocks})
}

/// A Teams Workflows webhook message: one attachment, an Adaptive Card 1.4.
pub fn teams(m: &Message) -> Value {
    let color = match m.severity {
        Severity::Good => "Good",
        Severity::Info => "Accent",
        Severity::Warning => "Warning",
        Severity::Bad => "Attention",
    };
    let mut body = vec![json!({
        "type": "TextBlock", "text": m.title, "weight": "Bolder", "size": "Medium",
        "color": color, "wrap": true
    })];
    if !m.text.is_empty() {
        body.push(json!({"type": "TextBlock", "text": cut(&m.text), "wrap": true}));
    }
    let facts: Vec<Value> = facts(m)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(url) = &m.url {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Details", "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }]
    })
}

/// mlops' own JSON for a generic webhook; `delivery` is the message's id.
pub fn generic(m: &Message, delivery: &str, sent_at: &str) -> Value {
    json!({
        "delivery": delivery,
        "event": m.event.as_str(),
        "action": m.action,
        "severity": m.severity,
        "title": m.title,
        "text": cut(&m.text),
        "model": m.model,
        "environment": m.environment,
        "digest": m.digest,
        "url": m.url,
        "sent_at": sent_at,
    })
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `secret`, the value of
/// `X-Mlops-Signature-256`. A receiver computes the same over the raw body it got and compares
/// in constant time.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length (RFC 2104 hashes a long one first): for Hmac,
    // new_from_slice accepts every length, so the fallback below is never taken.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return "sha256=".into();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NotifyEvent;

    fn message() -> Message {
        Message::new(NotifyEvent::Monitor, "opened", Severity::Bad, "churn")
            .title("churn/staging: monitoring alert")
            .text("drift: <!channel> & x3")
            .environment("staging")
            .url(Some("https://github.com/acme/churn/issues/7".into()))
    }

    #[test]
    fn slack_text_cannot_mention_the_channel_or_open_a_link() {
        let v = slack(&message());
        let text = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(text, "drift: &lt;!channel&gt; &amp; x3");
        assert_eq!(v["text"], "churn/staging: monitoring alert");
    }

    #[test]
    fn a_teams_message_carries_one_adaptive_card() {
        let v = teams(&message());
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(
            a["content"]["actions"][0]["url"],
            "https://github.com/acme/churn/issues/7"
        );
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn long_text_is_cut() {
        let m = message().text("x".repeat(10_000));
        let v = generic(&m, "d", "t");
        assert!(v["text"].as_str().unwrap().chars().count() < 3_000);
    }
}
