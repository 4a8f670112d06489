//! The fence of every "write, fence, read" handshake between a thread that
//! makes work visible and a worker that may stop looking for it
//! (`parking.rs`, `threads.rs`, `monitor.rs`, the pool-done check of
//! `wait.rs`), split in two unequal halves. The fork deque (`forks.rs`)
//! uses the heavy half too, to cover owners that have not acknowledged a
//! thief.
//!
//! Each handshake is a Dekker pair: the producer pushes, fences, and looks
//! for a parked (or exiting, or blocked) worker; the worker registers,
//! fences, and looks at the queues. With a SeqCst fence on both sides one
//! of the two reads sees the other's write. But the producer's side runs
//! on every submission, and the worker's only when it runs out of work:
//! a full fence costs a submit + get in fork-join about 15% of its time
//! (W3 in the benchmark suite, side by side with the fence left out), and
//! a parking worker can afford far more.
//!
//! So on Linux the producer's half is [`light`]: a compiler fence, which
//! only keeps the compiler from moving the read above the write; and the
//! worker's half is [`heavy`]: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`,
//! which returns only once every running thread of the process has
//! executed a full memory barrier (the kernel interrupts each of them; a
//! thread not running passed one when it was switched out). That is the
//! pairing `membarrier(2)` documents ("the fast path uses a compiler
//! barrier, the slow path membarrier"), the asymmetric fence of Linux's
//! RCU and of Folly's `asymmetricHeavyBarrier`. Proof sketch, for a
//! producer P (push, light, read) and a worker W (register, heavy, check):
//! every thread passes a full barrier B somewhere inside W's call. If P's
//! push comes before P's B in program order, the push is visible to all
//! before W's call returns, so W's check sees it. Otherwise P's read comes
//! after its B, which comes after W's registration (made before the call,
//! and the call starts with a full barrier of its own), so P's read sees
//! W registered. Either way one side sees the other, as with two fences.
//!
//! The heavy half is not free for everyone else: the kernel interrupts
//! every CPU that runs a thread of the process at that moment, about a
//! microsecond of each one's time. A fence saved per submission is worth
//! that only while parks are rare next to submissions, and the more CPUs
//! the process runs on, the rarer they must be. So the asymmetric form is
//! used only on machines of at most [`MAX_CPUS`] CPUs (as many as the
//! process may use); a bigger one keeps a SeqCst fence on both sides, as
//! does any system where `membarrier` cannot be used (another OS, a kernel
//! older than 4.14, a sandbox that refuses the call, valgrind, Miri,
//! loom). Decided once, when the first pool is built and before any of its
//! threads or submissions exist. The loom models check the protocols in
//! the symmetric form.

use crate::core::sync::{fence, Ordering};

/// The most CPUs a process may run on for the asymmetric form to be used
/// (see the module docs). A judgment, not a measurement: the machines this
/// was measured on have 2, where a park interrupts at most one other CPU;
/// at 8, one park costs the other seven CPUs about as much time (7 µs or
/// so) as the fences of a thousand submissions save (5-10 ns each).
pub(crate) const MAX_CPUS: usize = 8;

/// Whether the asymmetric halves are in use: decided by [`init`], before
/// the first pool exists, and never changed after.
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
static ASYMMETRIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Decides, once per process, whether the asymmetric halves can be used.
/// Called when a pool is built, before it starts a thread or takes a job.
pub(crate) fn init() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    linux::init();
}

/// The producer's half: after making work visible, before looking for a
/// worker to hand it to. Pairs with [`heavy`].
#[inline]
pub(crate) fn light() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    if ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed) {
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        return;
    }
    fence(Ordering::SeqCst);
}

/// The worker's half: after registering as parked (or leaving, or
/// blocking), before looking at the queues. Pairs with [`light`], and with
/// a SeqCst fence (it is at least as strong as one on this thread).
pub(crate) fn heavy() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    if ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed) {
        linux::heavy();
        return;
    }
    fence(Ordering::SeqCst);
}

/// Whether the asymmetric halves are in use (the fork deque's take-back,
/// tests).
#[cfg_attr(loom, allow(dead_code))]
#[inline]
pub(crate) fn asymmetric() -> bool {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    return ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
    return false;
}

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod linux {
    use std::sync::atomic::Ordering;

    use once_cell::sync::OnceCell;

    use super::ASYMMETRIC;

    /// `membarrier` commands (linux/membarrier.h, as libc spells them).
    const CMD_QUERY: libc::c_int = libc::MEMBARRIER_CMD_QUERY as libc::c_int;
    const CMD_PRIVATE_EXPEDITED: libc::c_int =
        libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED as libc::c_int;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int =
        libc::MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED as libc::c_int;

    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        #[allow(unsafe_code)]
        // SAFETY: `membarrier` takes two integers (and a CPU id, unused
        // without a flag), touches no memory of ours, and reports failure
        // in its return value.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    pub(super) fn init() {
        static DONE: OnceCell<()> = OnceCell::new();
        DONE.get_or_init(|| {
            // The kernel says which commands it has; the process must
            // register before it uses the expedited one.
            let cpus = std::thread::available_parallelism().map_or(usize::MAX, |n| n.get());
            let supported = membarrier(CMD_QUERY);
            let usable = cpus <= super::MAX_CPUS
                && supported >= 0
                && supported & libc::c_long::from(CMD_PRIVATE_EXPEDITED) != 0
                && membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
                && membarrier(CMD_PRIVATE_EXPEDITED) == 0;
            // Published to the pool's threads and submitters by whatever
            // hands them the pool (a thread start, a reference to it).
            ASYMMETRIC.store(usable, Ordering::Relaxed);
        });
    }

    #[cold]
    pub(super) fn heavy() {
        if membarrier(CMD_PRIVATE_EXPEDITED) != 0 {
            fall_back();
        }
    }

    /// The kernel refused the call it accepted at `init` (a seccomp filter
    /// installed since, a child after `fork`): fences on both sides from
    /// now on. Producers see the switch within nanoseconds (a SeqCst store
    /// they load); until then one may still skip its fence, and its push
    /// reaches this thread once it has left that core's store buffer, so
    /// this check waits a millisecond, far longer than that takes, before
    /// it looks at the queues.
    #[cold]
    pub(super) fn fall_back() {
        ASYMMETRIC.store(false, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(1));
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Both halves run whichever form they take, the form is decided once,
    /// and where the kernel offers the expedited `membarrier` (Linux 4.14
    /// and later, outside a sandbox or valgrind that refuses it) on a
    /// machine of at most `MAX_CPUS` CPUs, the asymmetric form is the one
    /// in use and stays so: a call the kernel refuses (unregistered, a
    /// wrong argument) would make this fail. Then the kernel "refuses" the
    /// call (the fall-back a later seccomp filter would cause) while a pool
    /// has work queued and other tests of this process run theirs: the
    /// form switches to fences, and every task still ends. One test, since
    /// the switch is for the whole process.
    #[test]
    fn the_asymmetric_form_is_used_wherever_the_kernel_offers_it() {
        init();
        let first = asymmetric();
        light();
        heavy();
        init();
        assert_eq!(asymmetric(), first, "decided once, and kept");
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            #[allow(unsafe_code)]
            // SAFETY: the query command reads nothing of ours.
            let offered = unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    libc::MEMBARRIER_CMD_QUERY as libc::c_int,
                    0u32,
                    0,
                )
            };
            let expedited = libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED as libc::c_long;
            let cpus = std::thread::available_parallelism().map_or(usize::MAX, |n| n.get());
            if offered >= 0 && offered & expedited != 0 && cpus <= MAX_CPUS {
                assert!(
                    asymmetric(),
                    "the kernel offers membarrier, but it is not used"
                );
            }

            let long = std::time::Duration::from_secs(20);
            let pool = crate::ThreadPool::new(2).unwrap();
            let queued: Vec<_> = (0..10_000u64).map(|i| pool.submit(move || i)).collect();
            linux::fall_back();
            assert!(!asymmetric(), "switched to fences");
            let pool = std::sync::Arc::new(pool);
            let inner = pool.clone();
            let nested = pool.submit(move || {
                (0..1_000u64)
                    .map(|i| inner.submit(move || i))
                    .map(|h| h.get().unwrap())
                    .sum::<u64>()
            });
            for (i, handle) in queued.into_iter().enumerate() {
                assert_eq!(handle.get_timeout(long), Ok(i as u64));
            }
            assert_eq!(nested.get_timeout(long), Ok(499_500));
            heavy();
        }
    }
}
