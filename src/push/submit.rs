//! A small bounded pool: run a function over items on at most N threads, keeping the order of
//! the results. Used for the POSTs, so a large offering finishes quickly without hammering the
//! server with more than N requests at a time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Apply `work` to every item on at most `concurrency` threads; results come back in item
/// order.
pub fn run_bounded<T, R, F>(items: &[T], concurrency: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = concurrency.max(1).min(items.len());
    if threads <= 1 {
        return items.iter().map(&work).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = work(&items[i]);
                    slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn keeps_order_and_never_exceeds_the_bound() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u32> = (0..40).collect();
        let out = run_bounded(&items, 4, |&i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, (0..40).map(|i| i * 2).collect::<Vec<_>>());
        let peak = peak.load(Ordering::SeqCst);
        // 40 items of 5 ms on 4 threads: all 4 run at once, never a fifth.
        assert_eq!(peak, 4);
    }

    #[test]
    fn empty_and_single_inputs_run_inline() {
        let none: Vec<u8> = Vec::new();
        assert!(run_bounded(&none, 8, |&x| x).is_empty());
        assert_eq!(run_bounded(&[7u8], 8, |&x| x + 1), vec![8]);
    }
}
