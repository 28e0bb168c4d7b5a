//! The one waiting loop every primitive uses: check, register a listener,
//! check again, sleep. Registering before the second check is what makes a
//! wake-up impossible to lose: a change between the two checks is either
//! seen by the second check or notifies the listener.

use std::future::Future;
use std::time::{Duration, Instant};

use event_listener::{listener, Event, Listener};

/// Completes once `ready` returns `true`. `ready(true)` is the check made
/// after the listener is registered (a primitive may arm its notifier there).
// Not an `async fn`: that would keep a second copy of both arguments in a
// future that a server keeps per connection.
#[allow(clippy::manual_async_fn)]
pub(crate) fn until<'a>(
    event: &'a Event,
    mut ready: impl FnMut(bool) -> bool + 'a,
) -> impl Future<Output = ()> + 'a {
    async move {
        loop {
            if ready(false) {
                return;
            }
            // The listener lives inside this future: waiting allocates nothing.
            listener!(event => woken);
            if ready(true) {
                return;
            }
            woken.await;
        }
    }
}

/// Blocks the thread until `ready` returns `true` or `timeout` passes;
/// returns whether it became ready.
pub(crate) fn block_until(
    event: &Event,
    mut ready: impl FnMut(bool) -> bool,
    timeout: Option<Duration>,
) -> bool {
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    loop {
        if ready(false) {
            return true;
        }
        listener!(event => woken);
        if ready(true) {
            return true;
        }
        match deadline {
            Some(deadline) => {
                if woken.wait_deadline(deadline).is_none() {
                    return ready(true);
                }
            }
            None => woken.wait(),
        }
    }
}
