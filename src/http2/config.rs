//! [`Config`]: the server's timeouts and limits, with grpc-go's defaults.

use std::time::Duration;

/// Timeouts and limits of the HTTP/2 server. Every bound on a stop lives here.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`ping_ack_timeout`](Config::ping_ack_timeout) | 5 s | grpc-go since 1.63 |
/// | [`handshake_timeout`](Config::handshake_timeout) | 10 s | x/net/http2's preface timeout |
/// | [`linger`](Config::linger) | 1 s | grpc-go since 1.63 |
/// | [`flush_timeout`](Config::flush_timeout) | 1 s | a peer that stops reading cannot hold a hard stop |
/// | [`max_concurrent_streams`](Config::max_concurrent_streams) | 1000 | bounds one client's share |
/// | [`max_connection_idle`](Config::max_connection_idle) | off | gRPC A9: drain connections idle this long |
/// | [`max_connection_age`](Config::max_connection_age) | off | gRPC A9: drain connections this old (±10% jitter) |
/// | [`max_connection_age_grace`](Config::max_connection_age_grace) | off (wait) | gRPC A9: then force them |
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use winddown::http2::Config;
///
/// let config = Config::default().ping_ack_timeout(Duration::from_secs(2));
/// assert_eq!(config.get_ping_ack_timeout(), Duration::from_secs(2));
/// assert_eq!(config.get_linger(), Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) ping_ack_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) linger: Duration,
    pub(crate) flush_timeout: Duration,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) max_connection_idle: Option<Duration>,
    pub(crate) max_connection_age: Option<Duration>,
    pub(crate) max_connection_age_grace: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ping_ack_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(1),
            flush_timeout: Duration::from_secs(1),
            max_concurrent_streams: 1000,
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
        }
    }
}

impl Config {
    setting! {
        "winddown::http2::Config",
        /// How long a draining connection waits for the ACK of the PING sent with
        /// the first GOAWAY (B5). After it, the server behaves as if the ACK came:
        /// new streams are refused with `REFUSED_STREAM`, open ones finish, then
        /// the connection closes with the final GOAWAY.
        ///
        /// In a stop's drain it counts from the drain's start, on one timer for
        /// all the server's connections, which send their GOAWAY then. A
        /// connection the drain reaches with less than half of it left (one
        /// still in its handshake, say), or after the stop, counts its own from
        /// its GOAWAY, as does a connection's own drain (max age, max idle):
        /// each waits at least half of it, and at most all of it.
        ///
        /// # Example
        ///
        /// ```
        /// let config = winddown::http2::Config::default()
        ///     .ping_ack_timeout(std::time::Duration::from_millis(500));
        /// # let _ = config;
        /// ```
        ping_ack_timeout, get_ping_ack_timeout: Duration
    }

    setting! {
        "winddown::http2::Config",
        /// How long a new connection may take to send the HTTP/2 preface (B6).
        ///
        /// # Example
        ///
        /// ```
        /// let config = winddown::http2::Config::default()
        ///     .handshake_timeout(std::time::Duration::from_secs(3));
        /// # let _ = config;
        /// ```
        handshake_timeout, get_handshake_timeout: Duration
    }

    setting! {
        "winddown::http2::Config",
        /// After the final GOAWAY, how long the server keeps reading (and
        /// discarding) what the client still sends, waiting for the client's
        /// own close, so unread bytes do not turn the close into an RST that
        /// destroys responses in flight (B4). The server's FIN goes with its
        /// close, or halfway through for a client that waits for it first.
        ///
        /// In a stop's drain, "halfway" is one deadline for all the lingering
        /// connections, half the linger after the first of them began: each
        /// sends its FIN between a quarter and a half of the linger after its
        /// own began (one that begins later, or after the stop, times its
        /// own), and closes within the whole linger, as outside a stop.
        ///
        /// # Example
        ///
        /// ```
        /// let config = winddown::http2::Config::default()
        ///     .linger(std::time::Duration::from_millis(200));
        /// # let _ = config;
        /// ```
        linger, get_linger: Duration
    }

    setting! {
        "winddown::http2::Config",
        /// On a hard stop, how long the final GOAWAY may take to reach a client
        /// before the socket is dropped regardless (a client that stops reading
        /// must not hold the stop).
        ///
        /// # Example
        ///
        /// ```
        /// let config = winddown::http2::Config::default()
        ///     .flush_timeout(std::time::Duration::from_millis(100));
        /// # let _ = config;
        /// ```
        flush_timeout, get_flush_timeout: Duration
    }

    setting! {
        "winddown::http2::Config",
        /// The most streams one client may have open at once (advertised in
        /// SETTINGS; h2 refuses the excess with `REFUSED_STREAM`).
        ///
        /// # Example
        ///
        /// ```
        /// let config = winddown::http2::Config::default().max_concurrent_streams(100);
        /// assert_eq!(config.get_max_concurrent_streams(), 100);
        /// ```
        max_concurrent_streams, get_max_concurrent_streams: u32
    }

    /// Drains a connection (the same two-phase GOAWAY as a full stop, for
    /// this connection alone) once it has had no open stream for `idle`
    /// (gRPC's `MaxConnectionIdle`, proposal A9).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = winddown::http2::Config::default().max_connection_idle(Duration::from_secs(300));
    /// assert_eq!(config.get_max_connection_idle(), Some(Duration::from_secs(300)));
    /// ```
    pub fn max_connection_idle(mut self, idle: Duration) -> Self {
        self.max_connection_idle = Some(idle);
        self
    }

    /// The max idle time, if set.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::Config::default().get_max_connection_idle(), None);
    /// ```
    pub fn get_max_connection_idle(&self) -> Option<Duration> {
        self.max_connection_idle
    }

    /// Drains a connection once it is `age` old, give or take a random 10%
    /// so connections made together do not all reconnect together (gRPC's
    /// `MaxConnectionAge`, proposal A9): clients move to new connections, and
    /// so to new backends as a deployment scales.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = winddown::http2::Config::default().max_connection_age(Duration::from_secs(1800));
    /// assert_eq!(config.get_max_connection_age(), Some(Duration::from_secs(1800)));
    /// ```
    pub fn max_connection_age(mut self, age: Duration) -> Self {
        self.max_connection_age = Some(age);
        self
    }

    /// The max connection age, if set.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::Config::default().get_max_connection_age(), None);
    /// ```
    pub fn get_max_connection_age(&self) -> Option<Duration> {
        self.max_connection_age
    }

    /// After a connection's age drain began, how long its streams may run
    /// before the connection is forced closed (GOAWAY(last, CANCEL)); unset,
    /// it waits for them (gRPC's `MaxConnectionAgeGrace`).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = winddown::http2::Config::default().max_connection_age_grace(Duration::from_secs(30));
    /// assert_eq!(config.get_max_connection_age_grace(), Some(Duration::from_secs(30)));
    /// ```
    pub fn max_connection_age_grace(mut self, grace: Duration) -> Self {
        self.max_connection_age_grace = Some(grace);
        self
    }

    /// The age grace, if set.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(winddown::http2::Config::default().get_max_connection_age_grace(), None);
    /// ```
    pub fn get_max_connection_age_grace(&self) -> Option<Duration> {
        self.max_connection_age_grace
    }

    /// The age of this connection's drain: `max_connection_age` ±10%.
    pub(crate) fn jittered_age(&self) -> Option<Duration> {
        self.max_connection_age
            .map(|age| age.mul_f64(fastrand::f64().mul_add(0.2, 0.9)))
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::*;

    #[test]
    fn age_jitter_stays_within_ten_percent() {
        let config = Config::default().max_connection_age(Duration::from_secs(100));
        let ages: Vec<Duration> = (0..1000).filter_map(|_| config.jittered_age()).collect();
        assert_eq!(ages.len(), 1000);
        assert!(ages
            .iter()
            .all(|a| (90.0..=110.0).contains(&a.as_secs_f64())));
        let spread =
            ages.iter().max().unwrap().as_secs_f64() - ages.iter().min().unwrap().as_secs_f64();
        assert!(spread > 10.0, "jitter spreads the ages: {spread}");
        assert_eq!(Config::default().jittered_age(), None);
    }
}
