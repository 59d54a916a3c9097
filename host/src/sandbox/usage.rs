//! Measuring an attempt: its CPU time, as the sum of the thread CPU time
//! each poll of its call took (the guest's code and the host functions it
//! called, on whatever runner thread polled it; time spent waiting in an
//! async host call costs nothing), and its peak memory (kept by the memory
//! limiter in `host.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use nix::time::{ClockId, clock_gettime};

/// The calling thread's CPU time, in ns (0 where the clock is missing).
fn thread_cpu_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec() as u64))
        .unwrap_or(0)
}

/// `inner`, counting the CPU time of its polls into `spent` (ns).
pub struct Metered<F> {
    inner: Pin<Box<F>>,
    spent: Arc<AtomicU64>,
}

impl<F> Metered<F> {
    /// Wraps `inner`; `spent` adds up its polls' CPU time.
    pub fn new(inner: F, spent: Arc<AtomicU64>) -> Self {
        Metered { inner: Box::pin(inner), spent }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = thread_cpu_ns();
        let polled = self.inner.as_mut().poll(cx);
        self.spent.fetch_add(thread_cpu_ns().saturating_sub(before), Ordering::Relaxed);
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn busy_polls_count_and_waiting_does_not() {
        let spent = Arc::new(AtomicU64::new(0));
        Metered::new(tokio::time::sleep(std::time::Duration::from_millis(50)), spent.clone()).await;
        assert!(spent.load(Ordering::Relaxed) < 5_000_000, "a sleep costs no CPU");
        // Spins until this thread has had 30 ms of CPU, however busy the machine.
        let busy = async {
            let until = thread_cpu_ns() + 30_000_000;
            while thread_cpu_ns() < until {
                std::hint::black_box(0u64);
            }
        };
        let before = spent.load(Ordering::Relaxed);
        Metered::new(busy, spent.clone()).await;
        assert!(spent.load(Ordering::Relaxed) - before >= 30_000_000, "30 ms of spinning counts");
    }
}
