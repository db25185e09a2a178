//! Ctrl-C: cancels the running statement instead of killing the shell.
//!
//! The runner *arms* an [`Interrupt`] with the connection's [`Canceller`] while a statement or
//! command runs. [`Interrupt::listen`] starts a thread that waits for SIGINT (Ctrl-C on
//! Windows) and *fires*: it calls the armed canceller, which stops the statement (the engine's
//! cancel flag, or dropping the HTTP request, which the server takes as cancellation).
//!
//! While nothing is armed, what Ctrl-C does depends on [`Idle`]: the interactive shell ignores
//! it (at its prompt the terminal is in raw mode, so Ctrl-C reaches the line editor as a key,
//! not as a signal); a script exits with status 130 as if killed, and so does a second Ctrl-C
//! while a cancelled statement has not stopped yet.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::connection::Canceller;

/// The exit status of a script ended by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// What Ctrl-C does when no statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Nothing (the interactive shell).
    Ignore,
    /// Exit with status 130 (scripts).
    Exit,
}

/// Where Ctrl-C goes: the statement that runs, if any.
#[derive(Clone, Default)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    armed: Mutex<Option<Canceller>>,
    fired: AtomicBool,
    /// [`Idle`] as a number: 0 ignore, 1 exit.
    idle: AtomicU8,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupt")
            .field("fired", &self.fired())
            .finish_non_exhaustive()
    }
}

/// Disarms its [`Interrupt`] when dropped.
#[derive(Debug)]
pub struct Armed<'a> {
    interrupt: &'a Interrupt,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        *lock(&self.interrupt.inner.armed) = None;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What happened when Ctrl-C fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// The running statement was asked to stop.
    Cancelled,
    /// Nothing ran, and Ctrl-C is ignored then.
    Ignored,
    /// The process should exit (a script, or a second Ctrl-C).
    Exit,
}

impl Interrupt {
    /// A new, unarmed interrupt.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Routes Ctrl-C to `canceller` until the returned guard is dropped, and clears
    /// [`Interrupt::fired`].
    pub fn arm(&self, canceller: Canceller) -> Armed<'_> {
        let mut armed = lock(&self.inner.armed);
        self.inner.fired.store(false, Ordering::SeqCst);
        *armed = Some(canceller);
        Armed { interrupt: self }
    }

    /// True if Ctrl-C fired since the last [`Interrupt::arm`].
    pub fn fired(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    /// Sets what Ctrl-C does while nothing is armed.
    pub fn set_idle(&self, idle: Idle) {
        self.inner.idle.store(
            match idle {
                Idle::Ignore => 0,
                Idle::Exit => 1,
            },
            Ordering::SeqCst,
        );
    }

    /// What Ctrl-C does: cancels the armed statement; see the module documentation.
    pub fn fire(&self) -> Fired {
        let exit_when_idle = self.inner.idle.load(Ordering::SeqCst) == 1;
        let armed = lock(&self.inner.armed);
        match armed.as_ref() {
            Some(_) if exit_when_idle && self.inner.fired.load(Ordering::SeqCst) => Fired::Exit,
            Some(cancel) => {
                self.inner.fired.store(true, Ordering::SeqCst);
                cancel();
                Fired::Cancelled
            }
            None if exit_when_idle => Fired::Exit,
            None => Fired::Ignored,
        }
    }

    /// Handles Ctrl-C from now on with this interrupt (the first call in a process starts a
    /// thread that waits for the signal; later calls switch it to this interrupt). Returns
    /// once the handler is installed. Fails if the signal handler cannot be installed.
    pub fn listen(&self) -> std::io::Result<()> {
        static CURRENT: OnceLock<Mutex<Interrupt>> = OnceLock::new();
        let mut started = Ok(());
        let current = CURRENT.get_or_init(|| {
            started = start_listener(|| {
                let Some(current) = CURRENT.get() else {
                    return;
                };
                let interrupt = lock(current).clone();
                if interrupt.fire() == Fired::Exit {
                    std::process::exit(EXIT_INTERRUPTED);
                }
            });
            Mutex::new(self.clone())
        });
        *lock(current) = self.clone();
        started
    }
}

/// Starts a thread that calls `on_signal` at every Ctrl-C; returns once it listens.
fn start_listener(on_signal: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("nqdb-ctrl-c".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                #[cfg(unix)]
                let mut signals = {
                    use tokio::signal::unix::{SignalKind, signal};
                    match signal(SignalKind::interrupt()) {
                        Ok(signals) => signals,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    }
                };
                #[cfg(windows)]
                let mut signals = match tokio::signal::windows::ctrl_c() {
                    Ok(signals) => signals,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while signals.recv().await.is_some() {
                    on_signal();
                }
            });
        })?;
    ready_rx.recv().unwrap_or_else(|_| {
        Err(std::io::Error::other(
            "the Ctrl-C thread stopped before it listened",
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn test_fire_cancels_only_while_armed() {
        let interrupt = Interrupt::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let canceller: Canceller = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });

        assert_eq!(interrupt.fire(), Fired::Ignored);
        {
            let _armed = interrupt.arm(Arc::clone(&canceller));
            assert!(!interrupt.fired());
            assert_eq!(interrupt.fire(), Fired::Cancelled);
            assert!(interrupt.fired());
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        }
        assert_eq!(interrupt.fire(), Fired::Ignored);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Arming again starts afresh.
        let _armed = interrupt.arm(canceller);
        assert!(!interrupt.fired());
    }

    #[test]
    fn test_scripts_exit_when_idle_or_on_a_second_ctrl_c() {
        let interrupt = Interrupt::new();
        interrupt.set_idle(Idle::Exit);
        assert_eq!(interrupt.fire(), Fired::Exit);
        let _armed = interrupt.arm(Arc::new(|| {}));
        assert_eq!(interrupt.fire(), Fired::Cancelled);
        assert_eq!(interrupt.fire(), Fired::Exit);
    }
}
