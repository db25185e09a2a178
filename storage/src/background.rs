//! A background thread that runs a task every interval until stopped: the buffer pool's
//! flusher and the log's relaxed-policy syncer.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A thread running `tick` every interval. `tick` returns false to end the thread (typically
/// when the object it works on is gone).
pub(crate) struct Periodic {
    signal: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

impl std::fmt::Debug for Periodic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Periodic")
            .field("thread", &self.handle.thread().name())
            .finish()
    }
}

impl Periodic {
    pub fn start(
        name: &str,
        interval: Duration,
        mut tick: impl FnMut() -> bool + Send + 'static,
    ) -> std::io::Result<Periodic> {
        let signal = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_signal = Arc::clone(&signal);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                loop {
                    {
                        let (stop, cv) = &*thread_signal;
                        let mut stop = stop.lock();
                        if !*stop {
                            cv.wait_for(&mut stop, interval);
                        }
                        if *stop {
                            return;
                        }
                    }
                    if !tick() {
                        return;
                    }
                }
            })?;
        Ok(Periodic { signal, handle })
    }

    /// Asks the thread to stop without waiting for it.
    pub fn signal(&self) {
        let (stop, cv) = &*self.signal;
        *stop.lock() = true;
        cv.notify_all();
    }

    /// Stops the thread and waits for it, unless called from the thread itself (which happens
    /// when the task held the last reference to its owner).
    pub fn stop(self) {
        self.signal();
        if self.handle.thread().id() != std::thread::current().id() {
            let _ = self.handle.join();
        }
    }
}
