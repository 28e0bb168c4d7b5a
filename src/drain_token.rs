//! [`DrainToken`]: a one-way, level-triggered signal with child tokens.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use event_listener::{Event, EventListener};

use crate::sync::{lock, Arc, AtomicBool, Mutex, Ordering};
use crate::wait;

/// A one-way signal: once fired it stays fired (grpc-go's `drainChan`).
///
/// Clones share the signal. [`fire`](DrainToken::fire) is idempotent and says
/// whether this call was the one that fired it; [`is_fired`](DrainToken::is_fired)
/// is a single atomic load; [`wait`](DrainToken::wait) is a future that is ready
/// at once if the token already fired and otherwise does not allocate.
///
/// [`child`](DrainToken::child) makes a token that fires when its parent fires
/// and can also be fired on its own without touching the parent: a server
/// drains one connection (max age, idle) through a child of the server-wide
/// drain token. A child created from an already-fired parent starts fired.
///
/// The same type is the hard-stop signal: [`Shutdown`](crate::Shutdown) hands
/// out one token that fires on drain and one that fires on stop.
///
/// # Memory ordering
///
/// Firing is a `swap` with `AcqRel` and checking a load with `Acquire`, so
/// whatever the firing thread wrote before [`fire`](Self::fire) is visible to
/// a thread that then sees [`is_fired`](Self::is_fired) return `true` or whose
/// [`wait`](Self::wait) completes.
///
/// # Example
///
/// ```
/// use winddown::DrainToken;
///
/// let server = DrainToken::new();
/// let connection = server.child();
///
/// assert!(connection.fire()); // drain one connection alone
/// assert!(!server.is_fired());
///
/// let other = server.child();
/// assert!(server.fire()); // drain everything
/// assert!(other.is_fired());
/// assert!(!server.fire()); // already fired: a no-op that says so
/// ```
#[derive(Clone)]
pub struct DrainToken {
    node: Arc<Node>,
}

struct Node {
    fired: AtomicBool,
    event: Event,
    /// Children to fire with this node. Nodes only ever point down the tree,
    /// so there are no reference cycles; entries no handle can reach any more
    /// are pruned when the list doubles.
    children: Mutex<Children>,
}

#[derive(Default)]
struct Children {
    nodes: Vec<Arc<Node>>,
    prune_at: usize,
}

impl DrainToken {
    /// Creates a token that has not fired.
    ///
    /// # Example
    ///
    /// ```
    /// let token = winddown::DrainToken::new();
    /// assert!(!token.is_fired());
    /// ```
    pub fn new() -> Self {
        Self::with_state(false)
    }

    fn with_state(fired: bool) -> Self {
        Self {
            node: Arc::new(Node {
                fired: AtomicBool::new(fired),
                event: Event::new(),
                children: Mutex::new(Children::default()),
            }),
        }
    }

    /// Fires the token and every descendant; returns `true` if this call fired
    /// it and `false` if it had already fired (in which case nothing happens).
    ///
    /// Every waiter is woken. Children are fired after the parent, so a thread
    /// that sees a child fired because of its parent also sees the parent fired.
    ///
    /// # Example
    ///
    /// ```
    /// let token = winddown::DrainToken::new();
    /// assert!(token.fire());
    /// assert!(!token.fire());
    /// ```
    pub fn fire(&self) -> bool {
        if !fire_one(&self.node) {
            return false;
        }
        // Iterative, so a deep chain of children cannot overflow the stack.
        let mut pending = take_children(&self.node);
        while let Some(node) = pending.pop() {
            if fire_one(&node) {
                pending.extend(take_children(&node));
            }
        }
        true
    }

    /// Whether the token has fired: one atomic load.
    ///
    /// # Example
    ///
    /// ```
    /// let token = winddown::DrainToken::new();
    /// let clone = token.clone();
    /// token.fire();
    /// assert!(clone.is_fired());
    /// ```
    #[inline]
    pub fn is_fired(&self) -> bool {
        self.node.fired.load(Ordering::Acquire)
    }

    /// Waits until the token fires; ready at once if it already has.
    ///
    /// The waiter's list node lives inside the returned future, so waiting
    /// allocates nothing. See [`wait_owned`](Self::wait_owned) for a `'static`
    /// future.
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::DrainToken;
    ///
    /// let token = DrainToken::new();
    /// let remote = token.clone();
    /// std::thread::spawn(move || remote.fire());
    /// futures_lite::future::block_on(token.wait());
    /// assert!(token.is_fired());
    /// ```
    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        // Not an `async fn`: its future would wrap this one (a server keeps
        // one per connection).
        wait::until(&self.node.event, |_| self.is_fired())
    }

    /// Like [`wait`](Self::wait), but owns a clone of the token, so the future
    /// is `'static` (to hand to a server that takes a shutdown future, or to
    /// spawn).
    ///
    /// # Example
    ///
    /// ```
    /// use winddown::DrainToken;
    ///
    /// fn needs_static(fut: impl std::future::Future<Output = ()> + Send + 'static) -> impl std::future::Future<Output = ()> {
    ///     fut
    /// }
    ///
    /// let token = DrainToken::new();
    /// let fut = needs_static(token.wait_owned());
    /// token.fire();
    /// futures_lite::future::block_on(fut);
    /// ```
    pub fn wait_owned(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let token = self.clone();
        async move { token.wait().await }
    }

    /// Blocks the current thread until the token fires.
    ///
    /// # Example
    ///
    /// ```
    /// let token = winddown::DrainToken::new();
    /// token.fire();
    /// token.wait_blocking(); // already fired: returns at once
    /// ```
    pub fn wait_blocking(&self) {
        wait::block_until(&self.node.event, |_| self.is_fired(), None);
    }

    /// Blocks the current thread until the token fires or `timeout` passes;
    /// returns whether it fired.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let token = winddown::DrainToken::new();
    /// assert!(!token.wait_blocking_timeout(Duration::from_millis(1)));
    /// token.fire();
    /// assert!(token.wait_blocking_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> bool {
        wait::block_until(&self.node.event, |_| self.is_fired(), Some(timeout))
    }

    /// A token that fires when this one fires, and can also be fired alone.
    ///
    /// Firing the child never fires the parent. A child of a fired token is
    /// created fired. Dropping every handle to a child lets the parent forget
    /// it (lazily, when its list of children has doubled), so creating a child
    /// per connection does not grow the parent without bound.
    ///
    /// # Example
    ///
    /// ```
    /// let parent = winddown::DrainToken::new();
    /// let child = parent.child();
    /// let grandchild = child.child();
    /// parent.fire();
    /// assert!(child.is_fired() && grandchild.is_fired());
    /// ```
    pub fn child(&self) -> DrainToken {
        let mut children = lock(&self.node.children);
        // Checked under the lock that `fire` takes after setting the flag:
        // either `fire` finds the child in the list, or the flag is seen here.
        if self.is_fired() {
            return Self::with_state(true);
        }
        let child = Self::new();
        if children.nodes.len() >= children.prune_at {
            prune(&mut children.nodes, 0);
            children.prune_at = (children.nodes.len() * 2).max(8);
        }
        children.nodes.push(child.node.clone());
        child
    }

    /// Wakes `waker` when the token fires (at once if it already has), for as
    /// long as the returned listener is kept: one listener that a
    /// [`Shutdown`](crate::Shutdown) holds for all its connections.
    pub(crate) fn wake_on_fire(&self, waker: &Waker) -> EventListener {
        let mut listener = self.node.event.listen();
        // Registered before the flag is checked: a fire after `listen` either
        // notifies the listener (ready here) or finds the waker in it.
        let notified = Pin::new(&mut listener).poll(&mut Context::from_waker(waker));
        if notified.is_ready() || self.is_fired() {
            waker.wake_by_ref();
        }
        listener
    }

    /// Whether two handles refer to the same signal.
    ///
    /// # Example
    ///
    /// ```
    /// let token = winddown::DrainToken::new();
    /// assert!(token.same_as(&token.clone()));
    /// assert!(!token.same_as(&token.child()));
    /// ```
    pub fn same_as(&self, other: &DrainToken) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

/// Sets the flag and wakes the node's waiters; `false` if it was already set.
fn fire_one(node: &Node) -> bool {
    if node.fired.swap(true, Ordering::AcqRel) {
        return false;
    }
    node.event.notify(usize::MAX);
    true
}

fn take_children(node: &Node) -> Vec<Arc<Node>> {
    mem::take(&mut lock(&node.children).nodes)
}

/// Drops the children that no handle can reach: a node held only by its
/// parent's list, with no reachable children of its own. Locks parent before
/// child, the same top-down order as every other path, so it cannot deadlock.
/// Below [`PRUNE_DEPTH`] levels it keeps nodes rather than recurse further
/// (they are freed when an ancestor fires or is dropped).
fn prune(nodes: &mut Vec<Arc<Node>>, depth: usize) {
    nodes.retain(|node| {
        if Arc::strong_count(node) > 1 || depth >= PRUNE_DEPTH {
            return true;
        }
        let mut children = lock(&node.children);
        prune(&mut children.nodes, depth + 1);
        !children.nodes.is_empty()
    });
}

const PRUNE_DEPTH: usize = 32;

impl Drop for Node {
    /// Unlinks descendants iteratively: dropping a long chain of unfired
    /// children must not recurse once per level.
    fn drop(&mut self) {
        let mut pending = take_children(self);
        while let Some(node) = pending.pop() {
            // Held only here, so nobody else can reach it or its children.
            if Arc::strong_count(&node) == 1 {
                pending.extend(take_children(&node));
            }
        }
    }
}

impl Default for DrainToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DrainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainToken")
            .field("fired", &self.is_fired())
            .finish()
    }
}

#[cfg(all(test, not(winddown_loom)))]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<DrainToken>();
    }

    #[test]
    fn wait_is_ready_at_once_when_fired() {
        let token = DrainToken::new();
        token.fire();
        assert!(future::block_on(future::poll_once(token.wait())).is_some());
    }

    #[test]
    fn wait_pending_until_fire() {
        let token = DrainToken::new();
        let mut wait = Box::pin(token.wait());
        assert!(future::block_on(future::poll_once(wait.as_mut())).is_none());
        token.fire();
        assert!(future::block_on(future::poll_once(wait.as_mut())).is_some());
    }

    #[test]
    fn child_fired_alone_leaves_parent_and_siblings() {
        let parent = DrainToken::new();
        let a = parent.child();
        let b = parent.child();
        assert!(a.fire());
        assert!(!parent.is_fired());
        assert!(!b.is_fired());
        parent.fire();
        assert!(b.is_fired());
    }

    #[test]
    fn child_of_fired_parent_starts_fired() {
        let parent = DrainToken::new();
        parent.fire();
        assert!(parent.child().is_fired());
    }

    #[test]
    fn orphaned_grandchild_still_fires_with_root() {
        let root = DrainToken::new();
        let grandchild = root.child().child(); // the middle handle is dropped
        for _ in 0..100 {
            drop(root.child()); // force several prunes
        }
        root.fire();
        assert!(grandchild.is_fired());
    }

    #[test]
    fn dropped_children_are_pruned() {
        let root = DrainToken::new();
        for _ in 0..10_000 {
            drop(root.child());
        }
        let len = lock(&root.node.children).nodes.len();
        assert!(len <= 16, "children list grew to {len}");
    }

    #[test]
    fn deep_chain_fires_without_recursion() {
        let root = DrainToken::new();
        let mut leaf = root.clone();
        let mut keep = Vec::new();
        for _ in 0..100_000 {
            leaf = leaf.child();
            keep.push(leaf.clone());
        }
        root.fire();
        assert!(leaf.is_fired());
    }

    #[test]
    fn deep_unfired_chain_drops_without_recursion() {
        let root = DrainToken::new();
        let mut leaf = root.clone();
        for _ in 0..100_000 {
            leaf = leaf.child(); // each intermediate handle is dropped at once
        }
        drop(leaf);
        drop(root);
    }

    #[test]
    fn waiters_on_many_threads_all_wake() {
        let token = DrainToken::new();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let token = token.clone();
                std::thread::spawn(move || token.wait_blocking_timeout(Duration::from_secs(10)))
            })
            .collect();
        token.fire();
        for t in threads {
            assert!(t.join().expect("waiter thread"));
        }
    }
}
