//! A per-thread memo of a pure function of a short string, for the beacon's hot path:
//! the same user agents and signed browser ids come back page view after page view, and
//! a lookup costs a fraction of a bot scan or a MAC check. Each thread keeps its own (no
//! locks); a memo that fills up is emptied and starts over, so it stays small whatever
//! clients send.

use std::cell::RefCell;
use std::thread::LocalKey;

/// The most entries a thread keeps per memo.
const CAPACITY: usize = 4096;
/// Longer keys are not kept: they are rare, and each would hold its whole length.
const LONGEST_KEY: usize = 512;

pub type Memo<V> = RefCell<foldhash::HashMap<Box<str>, V>>;

/// `f(key)`, from this thread's memo when it has the key; only answers `keep` approves are
/// kept (e.g. not failed checks, which anyone can make up in any number).
pub fn memoized<V: Copy + 'static>(
    memo: &'static LocalKey<Memo<V>>,
    key: &str,
    f: impl FnOnce(&str) -> V,
    keep: impl FnOnce(&V) -> bool,
) -> V {
    if key.len() > LONGEST_KEY {
        return f(key);
    }
    if let Some(v) = memo.with(|m| m.borrow().get(key).copied()) {
        return v;
    }
    let v = f(key);
    if keep(&v) {
        memo.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= CAPACITY {
                m.clear();
            }
            m.insert(key.into(), v);
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static LENGTHS: Memo<usize> = RefCell::default();
    }

    #[test]
    fn a_key_is_computed_once_then_remembered_within_bounds() {
        let calls = Cell::new(0);
        let len = |s: &str| {
            calls.set(calls.get() + 1);
            s.len()
        };
        assert_eq!(memoized(&LENGTHS, "abc", len, |_| true), 3);
        assert_eq!(memoized(&LENGTHS, "abc", len, |_| true), 3);
        assert_eq!(calls.get(), 1);
        // Not kept when refused, nor when too long.
        memoized(&LENGTHS, "refused", len, |_| false);
        memoized(&LENGTHS, "refused", len, |_| false);
        let long = "x".repeat(LONGEST_KEY + 1);
        memoized(&LENGTHS, &long, len, |_| true);
        memoized(&LENGTHS, &long, len, |_| true);
        assert_eq!(calls.get(), 5);
        // A full memo starts over.
        for i in 0..CAPACITY + 10 {
            memoized(&LENGTHS, &i.to_string(), len, |_| true);
        }
        assert!(LENGTHS.with(|m| m.borrow().len()) <= CAPACITY);
    }
}
