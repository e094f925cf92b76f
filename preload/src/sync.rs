//! A mutex that survives `fork()`.
//!
//! The child of a multi-threaded program gets a copy of our memory, including a lock
//! that another thread may have held at that instant; with a plain mutex its next
//! `connect()` would hang forever. Our locks are taken in `pthread_atfork`'s
//! prepare handler and released in both processes afterwards (as glibc does for
//! malloc), so a child always starts with them free. They are never held across
//! blocking I/O.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use std::sync::Once;

pub struct ForkMutex<T> {
    raw: UnsafeCell<libc::pthread_mutex_t>,
    val: UnsafeCell<T>,
}

// SAFETY: access to `val` is serialised by the pthread mutex.
unsafe impl<T: Send> Sync for ForkMutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for ForkMutex<T> {}

pub struct Guard<'a, T> {
    m: &'a ForkMutex<T>,
}

impl<T> ForkMutex<T> {
    pub const fn new(v: T) -> Self {
        ForkMutex {
            raw: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
            val: UnsafeCell::new(v),
        }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        register_atfork();
        self.raw_lock();
        Guard { m: self }
    }

    fn raw_lock(&self) {
        // SAFETY: a statically initialised mutex, never moved once in use (statics).
        unsafe { libc::pthread_mutex_lock(self.raw.get()) };
    }

    fn raw_unlock(&self) {
        // SAFETY: as above; called only by the holder (or by atfork on its behalf).
        unsafe { libc::pthread_mutex_unlock(self.raw.get()) };
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the mutex is held.
        unsafe { &*self.m.val.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the mutex is held.
        unsafe { &mut *self.m.val.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.m.raw_unlock();
    }
}

static ATFORK: Once = Once::new();

extern "C" fn prepare() {
    // Fixed order, the reverse of nothing: the code never holds two at once.
    crate::source::CACHE.raw_lock();
    crate::table::TABLE.raw_lock();
    crate::fallback::MEMORY.raw_lock();
}

extern "C" fn after() {
    crate::fallback::MEMORY.raw_unlock();
    crate::table::TABLE.raw_unlock();
    crate::source::CACHE.raw_unlock();
}

fn register_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: plain C callbacks that only lock/unlock our static mutexes.
        unsafe { libc::pthread_atfork(Some(prepare), Some(after), Some(after)) };
    });
}
