//! One retry policy for every HTTP client of the toolkit: the registry client
//! (`oci::registry`), the GitHub forge (`forge::github`), and the MLflow and webhook clients to
//! come. Clients keep their own protocol knowledge (how to send, what an answer means); this
//! module decides *whether and when to ask again*.
//!
//! # API
//! - [`Policy`]: the settings (first backoff delay, attempts, the longest rate-limit wait, the
//!   longest `Retry-After` honoured). The command line builds it from the environment and hands
//!   it to each client; no client reads the environment itself.
//! - [`Policy::run`]`(idempotent, attempt)`: calls `attempt` until it gives a final answer. Each
//!   call of `attempt` sends the request once and classifies what happened as an [`Attempt`]:
//!   - [`Attempt::Done`]: a final answer (a success, or an error the caller judges);
//!   - [`Attempt::Busy`]: the server is in trouble (5xx, 429 without a wait): asked again after
//!     its `Retry-After` (at most `max_retry_after`) or the backoff, **only when idempotent**;
//!     otherwise its answer is handed back;
//!   - [`Attempt::Limited`]: a rate limit that says how long to wait: nothing was applied, so it
//!     is asked again after that wait whatever the method, unless the wait is longer than
//!     `max_wait` ([`Failure::WaitTooLong`]);
//!   - [`Attempt::NotSent`]: no connection was made: asked again whatever the method;
//!   - [`Attempt::Lost`]: sent, and no answer came: asked again only when idempotent; otherwise
//!     the request is "sent but unanswered", [`Failure::Unanswered`], a value the caller
//!     branches on (re-read the state, never repeat a write blindly).
//!
//!   Backoff doubles per attempt (`backoff`, `2 × backoff`, …); at most `attempts` tries for
//!   busy and lost answers, and as many rate-limit waits.
//! - [`rate_limit`]`(status, headers, message)`: the wait a 403/429 answer asks for — its
//!   `Retry-After`; else `x-ratelimit-remaining: 0` with `x-ratelimit-reset` (epoch seconds,
//!   GitHub's and many APIs' convention); else GitHub's "secondary rate limit" text (60 s).
//! - [`retry_after`] / [`http_date`]: `Retry-After` as seconds or an HTTP date (RFC 9110).
//!
//! Waits are logged (tracing, warn) with what was asked and for how long.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::NaiveDateTime;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// How a client retries; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The first backoff delay; doubled per attempt.
    pub backoff: Duration,
    /// Tries for busy and lost answers (and rate-limit waits), the first included.
    pub attempts: u32,
    /// The longest rate-limit wait honoured; a longer one fails with [`Failure::WaitTooLong`].
    pub max_wait: Duration,
    /// The longest `Retry-After` of a busy answer honoured; a longer one is shortened to it.
    pub max_retry_after: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            backoff: Duration::from_millis(250),
            attempts: 5,
            max_wait: Duration::from_secs(900),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// What one try of a request came to, as the client reads it.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// A final answer: handed back as it is.
    Done(Result<T, E>),
    /// The server is in trouble (`why`, for the log): worth asking again later if the request
    /// is idempotent.
    Busy {
        answer: Result<T, E>,
        retry_after: Option<Duration>,
        why: String,
    },
    /// A rate limit asking to wait this long: nothing was applied.
    Limited {
        answer: Result<T, E>,
        wait: Duration,
    },
    /// No connection was made: nothing reached the server.
    NotSent(E),
    /// Sent, and no answer came: it may or may not have been applied.
    Lost(E),
}

/// Why [`Policy::run`] gave up.
#[derive(Debug)]
pub enum Failure<E> {
    /// The last answer's error (final, or after the retries ran out).
    Error(E),
    /// A request that is not idempotent was sent and got no answer: its effect is unknown.
    Unanswered(E),
    /// The server asks to wait `wait`, longer than the policy's `max_wait`.
    WaitTooLong { wait: Duration, error: Option<E> },
}

impl Failure<anyhow::Error> {
    /// For clients without a use for the kinds: the error inside, or the too-long wait in words.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Error(e) | Failure::Unanswered(e) => e,
            Failure::WaitTooLong { wait, error } => {
                let asked = anyhow::anyhow!("the server asks to wait {} s", wait.as_secs());
                error.map_or(asked, |e| {
                    e.context(format!("waiting {} s", wait.as_secs()))
                })
            }
        }
    }
}

impl Policy {
    /// The delay before try `n + 1` after `n` tries (n ≥ 1): `backoff × 2^(n-1)`.
    pub fn delay(&self, tries: u32) -> Duration {
        self.backoff
            .saturating_mul(2u32.saturating_pow(tries.saturating_sub(1).min(16)))
    }

    /// Sends a request (each call of `attempt` is one try) until its answer is final; see the
    /// module documentation. `what` names the request in logs.
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        idempotent: bool,
        mut attempt: F,
    ) -> Result<T, Failure<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
        E: std::fmt::Display,
    {
        let attempts = self.attempts.max(1);
        let (mut tries, mut waits) = (0u32, 0u32);
        loop {
            tries += 1;
            match attempt().await {
                Attempt::Done(answer) => return answer.map_err(Failure::Error),
                Attempt::Busy {
                    answer,
                    retry_after,
                    why,
                } => {
                    if !idempotent || tries >= attempts {
                        return answer.map_err(Failure::Error);
                    }
                    let wait = retry_after
                        .map(|d| d.min(self.max_retry_after))
                        .unwrap_or_else(|| self.delay(tries));
                    tracing::info!("{what}: {why}; asking again in {:.1} s", wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                }
                Attempt::Limited { answer, wait } => {
                    if wait > self.max_wait {
                        return Err(Failure::WaitTooLong {
                            wait,
                            error: answer.err(),
                        });
                    }
                    waits += 1;
                    if waits >= attempts {
                        return answer.map_err(Failure::Error);
                    }
                    tries -= 1;
                    tracing::warn!(
                        "{what}: rate limit; waiting {:.1} s as the server asks",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
                Attempt::NotSent(e) => {
                    if tries >= attempts {
                        return Err(Failure::Error(e));
                    }
                    tracing::info!("{what}: {e}; trying again");
                    tokio::time::sleep(self.delay(tries)).await;
                }
                Attempt::Lost(e) => {
                    if !idempotent {
                        return Err(Failure::Unanswered(e));
                    }
                    if tries >= attempts {
                        return Err(Failure::Error(e));
                    }
                    tracing::info!("{what}: {e}; asking again");
                    tokio::time::sleep(self.delay(tries)).await;
                }
            }
        }
    }
}

/// How long a 403 or 429 answer asks us to wait, if it is a rate limit: its `Retry-After`;
/// else, with `x-ratelimit-remaining: 0`, until just past `x-ratelimit-reset` (epoch
/// seconds); else 60 s for GitHub's "secondary rate limit" `message`. None otherwise.
pub fn rate_limit(status: StatusCode, headers: &HeaderMap, message: &str) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now();
    if let Some(wait) = header("retry-after").and_then(|v| retry_after(v, now)) {
        return Some(wait);
    }
    if header("x-ratelimit-remaining").map(str::trim) == Some("0") {
        if let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok())
        {
            let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
            // The reset is a whole second; wait until it has fully passed.
            return Some(
                Duration::from_secs(reset).saturating_sub(now) + Duration::from_millis(200),
            );
        }
    }
    if message.to_lowercase().contains("secondary rate limit") {
        return Some(Duration::from_secs(60));
    }
    None
}

/// How long a `Retry-After` value asks us to wait, counted from `now`: `120`, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`; the obsolete RFC 850 and asctime forms too). A date in the
/// past means now (zero). None when the value is neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP date (RFC 9110 section 5.6.7): IMF-fixdate, or one of the two obsolete forms a
/// recipient must still accept.
pub(crate) fn http_date(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let utc = if let Some(rest) = text.strip_suffix(" GMT") {
        // IMF-fixdate `Sun, 06 Nov 1994 08:49:37`, then RFC 850 `Sunday, 06-Nov-94 08:49:37`.
        NaiveDateTime::parse_from_str(rest, "%a, %d %b %Y %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(rest, "%A, %d-%b-%y %H:%M:%S"))
            .ok()?
            .and_utc()
    } else {
        // asctime `Sun Nov  6 08:49:37 1994` (day padded with a space); the padding collapses.
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        NaiveDateTime::parse_from_str(&collapsed, "%a %b %e %H:%M:%S %Y")
            .ok()?
            .and_utc()
    };
    Some(SystemTime::from(utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn quick() -> Policy {
        Policy {
            backoff: Duration::from_millis(1),
            attempts: 3,
            max_wait: Duration::from_secs(1),
            max_retry_after: Duration::from_millis(5),
        }
    }

    /// Runs `policy` over a script of attempts; returns the result and the number of tries.
    fn script(
        idempotent: bool,
        steps: Vec<Attempt<u32, String>>,
    ) -> (Result<u32, Failure<String>>, usize) {
        let steps = RefCell::new(steps.into_iter());
        let tries = RefCell::new(0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = rt.block_on(quick().run("GET /x", idempotent, || {
            *tries.borrow_mut() += 1;
            let next = steps
                .borrow_mut()
                .next()
                .expect("the policy asked once too often");
            async move { next }
        }));
        (result, tries.into_inner())
    }

    fn busy() -> Attempt<u32, String> {
        Attempt::Busy {
            answer: Err("HTTP 502".into()),
            retry_after: None,
            why: "HTTP 502".into(),
        }
    }

    #[test]
    fn busy_answers_are_asked_again_only_when_idempotent() {
        let (r, tries) = script(true, vec![busy(), busy(), Attempt::Done(Ok(7))]);
        assert_eq!((r.unwrap(), tries), (7, 3));
        let (r, tries) = script(false, vec![busy()]);
        assert!(matches!(r, Err(Failure::Error(e)) if e == "HTTP 502"));
        assert_eq!(tries, 1);
        // The attempts run out: the last answer is handed back.
        let (r, tries) = script(true, vec![busy(), busy(), busy()]);
        assert!(matches!(r, Err(Failure::Error(_))));
        assert_eq!(tries, 3);
    }

    #[test]
    fn a_lost_write_is_unanswered_and_never_repeated() {
        let (r, tries) = script(false, vec![Attempt::Lost("reset".into())]);
        assert!(matches!(r, Err(Failure::Unanswered(e)) if e == "reset"));
        assert_eq!(tries, 1);
        let (r, tries) = script(
            true,
            vec![Attempt::Lost("reset".into()), Attempt::Done(Ok(1))],
        );
        assert_eq!((r.unwrap(), tries), (1, 2));
    }

    #[test]
    fn what_never_left_is_sent_again_whatever_the_method() {
        let (r, tries) = script(
            false,
            vec![Attempt::NotSent("refused".into()), Attempt::Done(Ok(2))],
        );
        assert_eq!((r.unwrap(), tries), (2, 2));
        let refused = || Attempt::NotSent("refused".to_string());
        let (r, tries) = script(false, vec![refused(), refused(), refused()]);
        assert!(matches!(r, Err(Failure::Error(e)) if e == "refused"));
        assert_eq!(tries, 3);
    }

    #[test]
    fn rate_limits_are_waited_out_up_to_max_wait() {
        let limited = |ms| Attempt::Limited {
            answer: Err("403".to_string()),
            wait: Duration::from_millis(ms),
        };
        let start = std::time::Instant::now();
        let (r, tries) = script(false, vec![limited(30), Attempt::Done(Ok(3))]);
        assert_eq!((r.unwrap(), tries), (3, 2));
        assert!(start.elapsed() >= Duration::from_millis(30));
        // Waits do not use up the tries of busy answers.
        let (r, _) = script(
            true,
            vec![limited(1), busy(), limited(1), busy(), Attempt::Done(Ok(4))],
        );
        assert_eq!(r.unwrap(), 4);
        let (r, tries) = script(false, vec![limited(5_000)]);
        assert!(
            matches!(r, Err(Failure::WaitTooLong { wait, error: Some(_) }) if wait == Duration::from_secs(5))
        );
        assert_eq!(tries, 1);
    }

    #[test]
    fn a_busy_retry_after_is_honoured_but_shortened() {
        let start = std::time::Instant::now();
        let (r, _) = script(
            true,
            vec![
                Attempt::Busy {
                    answer: Ok(0),
                    retry_after: Some(Duration::from_secs(3600)),
                    why: "HTTP 503".into(),
                },
                Attempt::Done(Ok(5)),
            ],
        );
        assert_eq!(r.unwrap(), 5);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles() {
        let p = Policy {
            backoff: Duration::from_millis(100),
            ..Policy::default()
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(3), Duration::from_millis(400));
        assert!(p.delay(1000) >= p.delay(17));
    }

    #[test]
    fn rate_limit_answers_say_how_long() {
        let mut h = HeaderMap::new();
        let forbidden = StatusCode::FORBIDDEN;
        assert_eq!(rate_limit(forbidden, &h, "Resource not accessible"), None);
        assert_eq!(
            rate_limit(forbidden, &h, "You have exceeded a secondary rate limit."),
            Some(Duration::from_secs(60))
        );
        let at = chrono::Utc::now() + chrono::Duration::seconds(30);
        h.insert(
            "retry-after",
            at.format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
                .parse()
                .unwrap(),
        );
        let wait = rate_limit(StatusCode::TOO_MANY_REQUESTS, &h, "").unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        // Only 403 and 429 are rate limits.
        assert_eq!(rate_limit(StatusCode::SERVICE_UNAVAILABLE, &h, ""), None);
        let mut h = HeaderMap::new();
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 10;
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let wait = rate_limit(forbidden, &h, "").unwrap();
        assert!(
            wait > Duration::from_secs(8) && wait <= Duration::from_millis(10_200),
            "{wait:?}"
        );
        h.insert("x-ratelimit-remaining", "12".parse().unwrap());
        assert_eq!(rate_limit(forbidden, &h, ""), None);
    }

    /// 1994-11-06T08:49:37Z, RFC 9110's example date.
    fn example() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn seconds() {
        let now = SystemTime::now();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn the_three_date_forms_name_the_same_instant() {
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(http_date(form), Some(example()), "{form}");
        }
    }

    #[test]
    fn a_date_counts_from_now_and_the_past_is_zero() {
        let now = example() - Duration::from_secs(90);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(90))
        );
        let later = example() + Duration::from_secs(5);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_not_a_wait() {
        let now = SystemTime::now();
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }
}
