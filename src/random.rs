//! A small, fast source of jitter (not for cryptography): a per-thread xorshift generator seeded
//! from the standard library's randomly keyed hasher, so no extra crate is needed.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

thread_local! {
    static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
}

/// A uniformly distributed number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}
