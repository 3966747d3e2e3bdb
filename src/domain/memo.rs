//! A memo of a pure function of a short string, for the beacon's hot path: the same user
//! agents and signed browser ids come back page view after page view, and a lookup costs
//! a fraction of a bot scan or a MAC check. Each thread keeps its own entries (no locks);
//! a thread's memo that fills up is emptied and starts over, so it stays small whatever
//! clients send.

use std::cell::RefCell;

use thread_local::ThreadLocal;

/// The most entries a thread keeps per memo.
const CAPACITY: usize = 4096;
/// Longer keys are not kept: they are rare, and each would hold its whole length.
const LONGEST_KEY: usize = 512;

pub struct Memo<V: Send> {
    threads: ThreadLocal<RefCell<foldhash::HashMap<Box<str>, V>>>,
}

impl<V: Copy + Send> Memo<V> {
    pub const fn new() -> Self {
        Self {
            threads: ThreadLocal::new(),
        }
    }

    /// `f(key)`, from this thread's entries when they have the key; only answers `keep`
    /// approves are kept (e.g. not failed checks, which anyone can make up in any number).
    pub fn get_or(&self, key: &str, f: impl FnOnce(&str) -> V, keep: impl FnOnce(&V) -> bool) -> V {
        if key.len() > LONGEST_KEY {
            return f(key);
        }
        let entries = self.threads.get_or_default();
        if let Some(v) = entries.borrow().get(key).copied() {
            return v;
        }
        let v = f(key);
        if keep(&v) {
            let mut entries = entries.borrow_mut();
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key.into(), v);
        }
        v
    }
}

impl<V: Copy + Send> Default for Memo<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// A copy starts empty: what it remembers would be the same anyway.
impl<V: Copy + Send> Clone for Memo<V> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_key_is_computed_once_then_remembered_within_bounds() {
        let lengths = Memo::new();
        let calls = Cell::new(0);
        let len = |s: &str| {
            calls.set(calls.get() + 1);
            s.len()
        };
        assert_eq!(lengths.get_or("abc", len, |_| true), 3);
        assert_eq!(lengths.get_or("abc", len, |_| true), 3);
        assert_eq!(calls.get(), 1);
        // Not kept when refused, nor when too long.
        lengths.get_or("refused", len, |_| false);
        lengths.get_or("refused", len, |_| false);
        let long = "x".repeat(LONGEST_KEY + 1);
        lengths.get_or(&long, len, |_| true);
        lengths.get_or(&long, len, |_| true);
        assert_eq!(calls.get(), 5);
        // A full memo starts over.
        for i in 0..CAPACITY + 10 {
            lengths.get_or(&i.to_string(), len, |_| true);
        }
        assert!(lengths.threads.get().unwrap().borrow().len() <= CAPACITY);
    }
}
