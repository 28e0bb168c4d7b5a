//! [`ClientConfig`]: the client's timeouts and limits.

use std::time::Duration;

/// Timeouts and limits of the [`Client`](super::Client).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`connect_timeout`](ClientConfig::connect_timeout) | 5 s | per address, TCP connect and HTTP/2 handshake |
/// | [`request_timeout`](ClientConfig::request_timeout) | none | the whole request, retries included |
/// | [`max_response_body`](ClientConfig::max_response_body) | 16 MiB | a response is read into memory |
/// | [`max_reroutes`](ClientConfig::max_reroutes) | 4 | sends of a request that never left (each on a newer connection) |
/// | [`connect_backoff`](ClientConfig::connect_backoff) | 100 ms | after every address failed, the first wait before connecting again (doubling, ±20 % jitter) |
/// | [`max_connect_backoff`](ClientConfig::max_connect_backoff) | 5 s | the longest such wait |
/// | [`keepalive`](ClientConfig::keepalive) | off | PING a connection this often, to find a peer gone without a word |
/// | [`keepalive_timeout`](ClientConfig::keepalive_timeout) | 20 s | then close it if the PING is not answered (grpc's default) |
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use winddown::http2::client::ClientConfig;
///
/// let config = ClientConfig::default().request_timeout(Some(Duration::from_secs(2)));
/// assert_eq!(config.get_request_timeout(), Some(Duration::from_secs(2)));
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) max_response_body: usize,
    pub(crate) max_reroutes: u32,
    pub(crate) connect_backoff: Duration,
    pub(crate) max_connect_backoff: Duration,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: None,
            max_response_body: 16 << 20,
            max_reroutes: 4,
            connect_backoff: Duration::from_millis(100),
            max_connect_backoff: Duration::from_secs(5),
            keepalive: None,
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

impl ClientConfig {
    setting!(
        "winddown::http2::client::ClientConfig",
        /// How long one address may take to accept a connection and an
        /// HTTP/2 handshake before the next address is tried.
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().connect_timeout(std::time::Duration::from_secs(1));
        /// # let _ = c;
        /// ```
        connect_timeout, get_connect_timeout: Duration
    );
    setting!(
        "winddown::http2::client::ClientConfig",
        /// How long a whole request may take, connects and retries included
        /// (`None`: no limit).
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().request_timeout(Some(std::time::Duration::from_secs(30)));
        /// # let _ = c;
        /// ```
        request_timeout, get_request_timeout: Option<Duration>
    );
    setting!(
        "winddown::http2::client::ClientConfig",
        /// The largest response body read into memory; a larger one fails with
        /// [`ErrorKind::ResponseTooLarge`](super::ErrorKind::ResponseTooLarge).
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().max_response_body(1 << 20);
        /// # let _ = c;
        /// ```
        max_response_body, get_max_response_body: usize
    );
    setting!(
        "winddown::http2::client::ClientConfig",
        /// How many times a request that never left may be moved to a newer
        /// connection (e.g. each one received a GOAWAY before it could be sent).
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().max_reroutes(8);
        /// # let _ = c;
        /// ```
        max_reroutes, get_max_reroutes: u32
    );
    setting!(
        "winddown::http2::client::ClientConfig",
        /// After a round in which every address failed to connect, how long
        /// before the next round; meanwhile requests fail at once with
        /// [`ErrorKind::Connect`](super::ErrorKind::Connect) (not sent). The
        /// wait doubles after each failed round, with ±20 % jitter, up to
        /// [`max_connect_backoff`](Self::max_connect_backoff), and resets on
        /// success.
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().connect_backoff(std::time::Duration::from_millis(50));
        /// # let _ = c;
        /// ```
        connect_backoff, get_connect_backoff: Duration
    );
    setting!(
        "winddown::http2::client::ClientConfig",
        /// The longest wait between connect rounds that all failed.
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().max_connect_backoff(std::time::Duration::from_secs(30));
        /// # let _ = c;
        /// ```
        max_connect_backoff, get_max_connect_backoff: Duration
    );
    setting!(
        "winddown::http2::client::ClientConfig",
        /// PING each connection this often (`None`: never). A connection
        /// whose PING goes unanswered for
        /// [`keepalive_timeout`](Self::keepalive_timeout) is closed, and new
        /// requests go to a new one. Off by default, as in grpc: servers may
        /// limit how often they accept PINGs (grpc-go answers pings more
        /// often than every 5 minutes on an idle connection with GOAWAY
        /// `too_many_pings`).
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().keepalive(Some(std::time::Duration::from_secs(30)));
        /// # let _ = c;
        /// ```
        keepalive, get_keepalive: Option<Duration>
    );
    setting!(
        "winddown::http2::client::ClientConfig",
        /// How long a keepalive PING may go unanswered before its connection
        /// is closed.
        ///
        /// # Example
        ///
        /// ```
        /// let c = winddown::http2::client::ClientConfig::default().keepalive_timeout(std::time::Duration::from_secs(5));
        /// # let _ = c;
        /// ```
        keepalive_timeout, get_keepalive_timeout: Duration
    );
}
