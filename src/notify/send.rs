//! Sending: one POST per webhook that takes the message's event, through the retry policy of
//! [`crate::http`] (see the module documentation of [`super`] for what is retried).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;

use super::{payload, Message, Notifier, NotifyKind, Webhook};
use crate::http::{Attempt, Failure, Policy};

/// The `notify:` webhooks, ready to send.
pub struct Webhooks {
    hooks: Vec<Webhook>,
    policy: Policy,
    timeout: Duration,
}

impl Webhooks {
    /// `timeout` bounds each request.
    pub fn new(hooks: Vec<Webhook>, policy: Policy, timeout: Duration) -> Webhooks {
        Webhooks {
            hooks,
            policy,
            timeout,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    async fn send_all(&self, message: &Message) -> Vec<String> {
        let client = match reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("mlops/", env!("CARGO_PKG_VERSION")))
            // Webhooks answer with a redirect only when misconfigured; never re-POST elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => return vec![format!("notify: cannot set up the HTTP client: {e}")],
        };
        let delivery = hex::encode(rand::random::<[u8; 16]>());
        let sent_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut warnings = Vec::new();
        for hook in self
            .hooks
            .iter()
            .filter(|h| h.events.contains(&message.event))
        {
            let body = match hook.kind {
                NotifyKind::Slack => payload::slack(message),
                NotifyKind::Teams => payload::teams(message),
                NotifyKind::Webhook => payload::generic(message, &delivery, &sent_at),
            };
            let bytes = body.to_string().into_bytes();
            let sent = match headers(hook, message, &delivery, &bytes) {
                Ok(headers) => post(&client, &self.policy, hook, headers, bytes).await,
                Err(e) => Err(format!("a header would not be valid: {e}")),
            };
            if let Err(why) = sent {
                warnings.push(format!(
                    "notify: {} did not take the {} message: {why}",
                    hook.label(),
                    message.event.as_str()
                ));
            }
        }
        warnings
    }
}

/// The request's headers; the generic webhook's carry the event, the delivery id and the
/// body's signature.
fn headers(
    hook: &Webhook,
    message: &Message,
    delivery: &str,
    body: &[u8],
) -> Result<HeaderMap, reqwest::header::InvalidHeaderValue> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if hook.kind == NotifyKind::Webhook {
        headers.insert(
            "x-mlops-event",
            HeaderValue::from_static(message.event.as_str()),
        );
        headers.insert("x-mlops-delivery", HeaderValue::try_from(delivery)?);
        if let Some(secret) = &hook.secret {
            let sig = payload::signature(secret, body);
            headers.insert("x-mlops-signature-256", HeaderValue::try_from(sig)?);
        }
    }
    Ok(headers)
}

/// One webhook's POST until it is taken, refused, or the retries run out.
async fn post(
    client: &reqwest::Client,
    policy: &Policy,
    hook: &Webhook,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<(), String> {
    let what = format!("POST {}", hook.label());
    // idempotent = true lets a busy answer (5xx, 429) be asked again; a lost one is made final
    // below, so a message the receiver may have posted is never sent twice.
    let outcome = policy
        .run(&what, true, || {
            let request = client
                .post(&hook.url)
                .headers(headers.clone())
                .body(body.clone());
            async move { classify(request.send().await).await }
        })
        .await;
    outcome.map_err(|f| match f {
        Failure::Error(e) | Failure::Unanswered(e) => e,
        Failure::WaitTooLong { wait, .. } => {
            format!("it asks to wait {} s; not waiting", wait.as_secs())
        }
    })
}

/// A transport error in words, without its URL (a webhook URL is a credential) but with its
/// causes (refused, reset, DNS, TLS).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn classify(sent: reqwest::Result<reqwest::Response>) -> Attempt<(), String> {
    let answer = match sent {
        Ok(a) => a,
        Err(e) if e.is_connect() => {
            return Attempt::NotSent(format!("cannot connect: {}", describe(e)))
        }
        // Sent (or partly): it may have been posted; never sent again.
        Err(e) if e.is_timeout() => {
            return Attempt::Done(Err("no answer in time; not sent again".into()))
        }
        Err(e) => {
            return Attempt::Done(Err(format!("no answer ({}); not sent again", describe(e))))
        }
    };
    let status = answer.status();
    if status.is_success() {
        return Attempt::Done(Ok(()));
    }
    let retry_after = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::http::retry_after(v, std::time::SystemTime::now()));
    let excerpt: String = answer
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let error = format!(
        "it answered {status}: {}",
        crate::text::clean(excerpt.trim())
    );
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Attempt::Busy {
            answer: Err(error),
            retry_after,
            why: format!("it answered {status}"),
        };
    }
    Attempt::Done(Err(error))
}

impl Notifier for Webhooks {
    fn send(&self, message: &Message) -> Vec<String> {
        if !self.hooks.iter().any(|h| h.events.contains(&message.event)) {
            return Vec::new();
        }
        // Its own thread and runtime: callers may be inside a runtime already.
        std::thread::scope(|scope| {
            let sending = scope.spawn(|| {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(self.send_all(message)),
                    Err(e) => vec![format!("notify: cannot start the HTTP runtime: {e}")],
                }
            });
            sending
                .join()
                .unwrap_or_else(|_| vec!["notify: sending the message failed unexpectedly".into()])
        })
    }
}
