//! The retry rules, as pure functions: what a failed attempt tells us about
//! whether the server processed the request ([`Processing`]), and what to do
//! about it ([`decide`]). Everything the client does after a failure goes
//! through here, so these rules are the whole retry policy.

use std::fmt;

/// How far a failed request got, as far as the client can know.
///
/// HTTP/2 gives a client two ways to learn that a request was *not*
/// processed (RFC 9113 §8.7): a GOAWAY whose last-stream-id is below the
/// request's stream, and a reset with `REFUSED_STREAM`. Anything else that
/// goes wrong after the request left may have happened after the server
/// acted on it.
///
/// # Example
///
/// ```
/// use winddown::http2::client::{Processing, Unprocessed};
///
/// let p = Processing::Unprocessed(Unprocessed::Refused);
/// assert!(p.is_safe_to_retry());
/// assert!(!Processing::MaybeProcessed.is_safe_to_retry());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processing {
    /// The request never left: the connection had already gone away (or
    /// failed) when it was to be sent, or no connection could be made.
    NotSent,
    /// The server said it did not process the request.
    Unprocessed(Unprocessed),
    /// The request was sent and then something failed: the server may have
    /// acted on it.
    MaybeProcessed,
    /// The server answered (response headers arrived); the failure came later,
    /// e.g. while reading the response body.
    Processed,
}

impl Processing {
    /// Whether retrying cannot make the server act twice.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::http2::client::Processing;
    /// assert!(Processing::NotSent.is_safe_to_retry());
    /// assert!(!Processing::Processed.is_safe_to_retry());
    /// ```
    pub fn is_safe_to_retry(self) -> bool {
        matches!(self, Processing::NotSent | Processing::Unprocessed(_))
    }
}

impl Processing {
    /// The further of two: what an error reports when a request was tried
    /// more than once (the caller must assume the worst any try reached).
    pub(crate) fn furthest(self, other: Processing) -> Processing {
        let rank = |p: Processing| match p {
            Processing::NotSent => 0,
            Processing::Unprocessed(_) => 1,
            Processing::MaybeProcessed => 2,
            Processing::Processed => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Processing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Processing::NotSent => f.write_str("not sent"),
            Processing::Unprocessed(why) => write!(f, "not processed ({why})"),
            Processing::MaybeProcessed => f.write_str("may have been processed"),
            Processing::Processed => f.write_str("processed"),
        }
    }
}

/// How the server said it did not process a request.
///
/// # Example
///
/// ```
/// use winddown::http2::client::Unprocessed;
/// assert_eq!(Unprocessed::AboveLastStreamId.to_string(), "above the GOAWAY's last-stream-id");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unprocessed {
    /// The stream's id was above the last-stream-id of a GOAWAY.
    AboveLastStreamId,
    /// The stream was reset with `REFUSED_STREAM`.
    Refused,
}

impl fmt::Display for Unprocessed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unprocessed::AboveLastStreamId => "above the GOAWAY's last-stream-id",
            Unprocessed::Refused => "REFUSED_STREAM",
        })
    }
}

/// What is known about the request itself when deciding on a retry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retryable {
    /// The body can be sent again (it is in memory, or was never taken).
    pub(crate) body_replayable: bool,
    /// The caller marked the request idempotent.
    pub(crate) idempotent: bool,
    /// A retry was already spent on this request.
    pub(crate) retried: bool,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send it on a new connection; this does not use up the retry (the
    /// request never left).
    Reroute,
    /// Send it again on a new connection, using up the one retry.
    Retry,
    /// Give up, for this reason.
    Fail(NotRetried),
}

/// Why a failed request was not retried.
///
/// # Example
///
/// ```
/// use winddown::http2::client::NotRetried;
/// assert_eq!(NotRetried::NotIdempotent.to_string(), "not marked idempotent");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotRetried {
    /// It may have been processed and the caller did not mark it idempotent.
    NotIdempotent,
    /// Its body was a one-shot stream that was (at least partly) sent.
    BodyNotReplayable,
    /// Its one retry was already spent.
    AlreadyRetried,
    /// The response had begun: a retry could duplicate what the caller saw.
    Answered,
    /// Nothing could be retried: the failure was the request's own (e.g. a
    /// malformed header) or a local limit.
    NotRetryable,
}

impl fmt::Display for NotRetried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotRetried::NotIdempotent => "not marked idempotent",
            NotRetried::BodyNotReplayable => "body not replayable",
            NotRetried::AlreadyRetried => "already retried once",
            NotRetried::Answered => "the server had answered",
            NotRetried::NotRetryable => "not retryable",
        })
    }
}

/// The retry rules.
///
/// | failure | retried? |
/// |---|---|
/// | not sent | always, on a new connection, without using the retry |
/// | not processed (GOAWAY above last id, `REFUSED_STREAM`) | once, whatever the method, if the body can be replayed |
/// | may have been processed | once, only if marked idempotent and the body can be replayed |
/// | answered, then failed | never |
pub(crate) fn decide(processing: Processing, request: Retryable) -> Decision {
    match processing {
        Processing::NotSent => Decision::Reroute,
        Processing::Processed => Decision::Fail(NotRetried::Answered),
        Processing::Unprocessed(_) => retry_once(request),
        Processing::MaybeProcessed if !request.idempotent => {
            Decision::Fail(NotRetried::NotIdempotent)
        }
        Processing::MaybeProcessed => retry_once(request),
    }
}

fn retry_once(request: Retryable) -> Decision {
    if request.retried {
        Decision::Fail(NotRetried::AlreadyRetried)
    } else if !request.body_replayable {
        Decision::Fail(NotRetried::BodyNotReplayable)
    } else {
        Decision::Retry
    }
}

/// What an h2 error on a request tells us. `sent` is whether `send_request`
/// had accepted the request (it had a stream id); `answered` whether response
/// headers had arrived.
///
/// h2 reports a stream above a received GOAWAY's last-stream-id with a
/// *remote GOAWAY* error, and a stream opened after any GOAWAY was received
/// with the same error from `send_request` (that one never left). A stream at
/// or below the last-stream-id is not touched by the GOAWAY: if the
/// connection then closes, it sees a broken pipe, which is "may have been
/// processed".
pub(crate) fn classify(error: &h2::Error, sent: bool, answered: bool) -> Option<Processing> {
    if answered {
        return Some(Processing::Processed);
    }
    let connection_gone = error.is_go_away() || error.is_io();
    if !sent {
        // `ready`/`send_request` failing with a connection error: it never
        // left. Any other error (a malformed request) is the request's own.
        return connection_gone.then_some(Processing::NotSent);
    }
    if error.is_go_away() && error.is_remote() {
        return Some(Processing::Unprocessed(Unprocessed::AboveLastStreamId));
    }
    if error.is_reset() && error.is_remote() && error.reason() == Some(h2::Reason::REFUSED_STREAM) {
        return Some(Processing::Unprocessed(Unprocessed::Refused));
    }
    Some(Processing::MaybeProcessed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body_replayable: bool, idempotent: bool, retried: bool) -> Retryable {
        Retryable {
            body_replayable,
            idempotent,
            retried,
        }
    }

    const UNPROCESSED: [Processing; 2] = [
        Processing::Unprocessed(Unprocessed::AboveLastStreamId),
        Processing::Unprocessed(Unprocessed::Refused),
    ];

    #[test]
    fn not_sent_is_always_rerouted() {
        for replayable in [true, false] {
            for idempotent in [true, false] {
                for retried in [true, false] {
                    let r = request(replayable, idempotent, retried);
                    assert_eq!(decide(Processing::NotSent, r), Decision::Reroute, "{r:?}");
                }
            }
        }
    }

    #[test]
    fn unprocessed_is_retried_once_whatever_the_idempotency() {
        for p in UNPROCESSED {
            for idempotent in [true, false] {
                let r = request(true, idempotent, false);
                assert_eq!(decide(p, r), Decision::Retry, "{p:?} {r:?}");
            }
        }
    }

    #[test]
    fn unprocessed_with_a_spent_body_is_not_retried() {
        for p in UNPROCESSED {
            for idempotent in [true, false] {
                let r = request(false, idempotent, false);
                assert_eq!(
                    decide(p, r),
                    Decision::Fail(NotRetried::BodyNotReplayable),
                    "{p:?} {r:?}"
                );
            }
        }
    }

    #[test]
    fn unprocessed_twice_is_not_retried_again() {
        for p in UNPROCESSED {
            for replayable in [true, false] {
                let r = request(replayable, true, true);
                assert_eq!(
                    decide(p, r),
                    Decision::Fail(NotRetried::AlreadyRetried),
                    "{p:?} {r:?}"
                );
            }
        }
    }

    #[test]
    fn maybe_processed_is_retried_only_when_idempotent() {
        let p = Processing::MaybeProcessed;
        assert_eq!(decide(p, request(true, true, false)), Decision::Retry);
        for replayable in [true, false] {
            for retried in [true, false] {
                assert_eq!(
                    decide(p, request(replayable, false, retried)),
                    Decision::Fail(NotRetried::NotIdempotent)
                );
            }
        }
    }

    #[test]
    fn maybe_processed_idempotent_needs_a_body_and_a_retry_left() {
        let p = Processing::MaybeProcessed;
        assert_eq!(
            decide(p, request(false, true, false)),
            Decision::Fail(NotRetried::BodyNotReplayable)
        );
        assert_eq!(
            decide(p, request(true, true, true)),
            Decision::Fail(NotRetried::AlreadyRetried)
        );
    }

    #[test]
    fn answered_is_never_retried() {
        for replayable in [true, false] {
            for idempotent in [true, false] {
                for retried in [true, false] {
                    let r = request(replayable, idempotent, retried);
                    assert_eq!(
                        decide(Processing::Processed, r),
                        Decision::Fail(NotRetried::Answered)
                    );
                }
            }
        }
    }

    #[test]
    fn an_error_reports_the_furthest_any_attempt_got() {
        let refused = Processing::Unprocessed(Unprocessed::Refused);
        let maybe = Processing::MaybeProcessed;
        assert_eq!(Processing::NotSent.furthest(maybe), maybe);
        assert_eq!(maybe.furthest(Processing::NotSent), maybe);
        assert_eq!(refused.furthest(Processing::NotSent), refused);
        assert_eq!(maybe.furthest(Processing::Processed), Processing::Processed);
    }

    #[test]
    fn classify_what_h2_lets_us_build() {
        // Remote GOAWAYs, remote resets and broken pipes can only come from a
        // connection: tests/client.rs drives each through a scripted server.
        // h2 lets us build a local reason, which is no proof of anything.
        let local = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert_eq!(
            classify(&local, true, false),
            Some(Processing::MaybeProcessed)
        );
        assert_eq!(classify(&local, true, true), Some(Processing::Processed));
        // Not a connection error before sending: the request's own fault.
        assert_eq!(classify(&local, false, false), None);
    }
}
