//! Locked key memory: key material lives in pages locked against swapping
//! (`mlock`) and left out of core dumps (`madvise(MADV_DONTDUMP)`), and is
//! zeroized before its slot is reused.
//!
//! A small slab: 64 KiB chunks from `mmap`, each locked and marked once,
//! carved into slots of one size class (64 B .. 2 KiB). [`Locked<T>`] is a
//! `Box` whose value lives in such a slot. Slots are taken and returned only
//! on slow paths (a new epoch, a new sender), under one mutex. Chunks are
//! kept for the life of the process (the pool grows to its peak).
//!
//! Where the OS refuses (`RLIMIT_MEMLOCK` reached, no `MADV_DONTDUMP`), the
//! chunk is used anyway and [`status`] says so (health reports it); a value
//! too large for a slot falls back to the ordinary heap, zeroized all the
//! same. What this does not cover: copies a derivation leaves on the stack,
//! and, with the aws-lc-rs backend, the expanded AES key schedule, which
//! aws-lc keeps in its own heap allocation and cleanses when it is freed
//! (`OPENSSL_free` zeroes every allocation): health adds `KEYS_ON_HEAP |
//! KEYS_AEAD_ON_HEAP` for it (`context::health::key_memory`); with the
//! `rust-crypto` backend the key schedule is inside the locked slot and
//! zeroized on drop.

use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sync::{Mutex, MutexGuard};

const CHUNK: usize = 64 * 1024;
/// Slot sizes. 32 B holds an epoch secret (a context retains `max_epochs`
/// of them, so the class halves its key memory); 1600 B holds a shared
/// context's frontier (48 nodes and two words) without the 448 B a 2 KiB
/// slot would waste.
const CLASSES: [usize; 8] = [32, 64, 128, 256, 512, 1024, 1600, 2048];
/// The alignment of the heap fallback (and the most any slot class gives).
const SLOT_ALIGN: usize = 64;

/// [`status`] bit: every chunk so far is locked against swapping.
pub(crate) const LOCKED: u32 = 1;
/// [`status`] bit: every chunk so far is excluded from core dumps.
pub(crate) const DONTDUMP: u32 = 2;
/// [`status`] bit: some value was too large for a slot and lives unlocked.
pub(crate) const FALLBACK: u32 = 4;

static FAILURES: AtomicU32 = AtomicU32::new(0);
const LOCK_FAILED: u32 = 1;
const DONTDUMP_FAILED: u32 = 2;

/// What the pool achieved so far: `LOCKED | DONTDUMP` when every chunk got
/// both, plus `FALLBACK` if anything had to live on the ordinary heap.
pub fn status() -> u32 {
    let f = FAILURES.load(Ordering::Relaxed);
    let mut s = 0;
    if f & LOCK_FAILED == 0 {
        s |= LOCKED;
    }
    if f & DONTDUMP_FAILED == 0 {
        s |= DONTDUMP;
    }
    s | (f & FALLBACK)
}

pub(crate) struct Pool {
    free: [Vec<usize>; CLASSES.len()],
    /// The base address of every chunk (to lock them again after `fork()`).
    chunks: Vec<usize>,
    /// Bytes of the slots handed out and not yet returned.
    in_use: usize,
}

static POOL: Mutex<Pool> =
    Mutex::new(Pool { free: [const { Vec::new() }; CLASSES.len()], chunks: Vec::new(), in_use: 0 });

/// Bytes of locked key memory in use (the slots' sizes, rounded up to their
/// size classes; the heap fallback is not counted), for the footprint
/// benchmark and the memory figures in `docs/BENCHMARKS.md`.
pub fn in_use_bytes() -> usize {
    POOL.lock().in_use
}

/// The pool's lock, for the `pthread_atfork` prepare handler.
pub(crate) fn lock_pool() -> MutexGuard<'static, Pool> {
    POOL.lock()
}

/// How many 64 KiB chunks the pool holds.
#[cfg(test)]
pub fn chunks() -> usize {
    POOL.lock().chunks.len()
}

/// In a forked child, from the `pthread_atfork` child handler, with the
/// pool's lock held by this (the only) thread: locks every chunk again.
///
/// Linux does not carry `mlock` over `fork()`: the child's copies of the
/// chunks start unlocked (`VmLck: 0 kB`), while `MADV_DONTDUMP` is inherited
/// (`VmFlags` keeps `dd`, loses `lo`). So the child locks them again; locking
/// makes the pages resident and private to the child (the copy-on-write
/// copies are made now, at most the pool's size). Only system calls, no
/// allocation. Where the OS refuses, [`status`] stops claiming `LOCKED`, so
/// that the child's health tells the truth.
pub(crate) fn relock_after_fork(pool: &Pool) {
    #[cfg(feature = "test-hooks")]
    let refused = REFUSE.load(Ordering::SeqCst) & 1 != 0;
    #[cfg(not(feature = "test-hooks"))]
    let refused = false;
    for &base in &pool.chunks {
        // SAFETY: `base..base+CHUNK` is a chunk mapped by `grow` and never
        // unmapped (the child inherited the mapping); mlock only changes how
        // the kernel treats the range.
        if refused || unsafe { libc::mlock(base as *const libc::c_void, CHUNK) } != 0 {
            FAILURES.fetch_or(LOCK_FAILED, Ordering::Relaxed);
        }
    }
}

/// Records that the chunks may not be locked (a forked child that could not
/// lock them again): [`status`] stops claiming `LOCKED`.
pub(crate) fn mark_unlocked() {
    FAILURES.fetch_or(LOCK_FAILED, Ordering::Relaxed);
}

/// A slot of class `c` is aligned to the largest power of two dividing its
/// size (chunks are page-aligned and carved at multiples of the size),
/// capped at [`SLOT_ALIGN`].
const fn class_align(c: usize) -> usize {
    let size = CLASSES[c];
    let low = size & size.wrapping_neg();
    if low < SLOT_ALIGN {
        low
    } else {
        SLOT_ALIGN
    }
}

fn class_of(layout: Layout) -> Option<usize> {
    (0..CLASSES.len()).find(|&c| layout.size() <= CLASSES[c] && layout.align() <= class_align(c))
}

/// Test-only: make the OS "refuse" from now on (see [`refuse_key_memory`]).
#[cfg(feature = "test-hooks")]
static REFUSE: AtomicU32 = AtomicU32::new(0);

/// Test-only (`test-hooks` feature, never in a release): from now on, new
/// chunks (and a forked child locking its chunks again) behave as if `mlock` failed (`lock`: `RLIMIT_MEMLOCK` reached; the
/// chunk is used unlocked) or as if no chunk could be mapped at all (`map`:
/// key material goes to the ordinary heap). Lets a test show the fallback
/// works and is reported in health, even as root, where `mlock` never fails.
#[cfg(feature = "test-hooks")]
pub fn refuse_key_memory(lock: bool, map: bool) {
    REFUSE.store(u32::from(lock) | (u32::from(map) << 1), Ordering::SeqCst);
}

/// A new chunk carved into slots of class `c`, pushed on its free list.
fn grow(pool: &mut Pool, c: usize) -> bool {
    #[cfg(feature = "test-hooks")]
    let refuse = REFUSE.load(Ordering::SeqCst);
    #[cfg(not(feature = "test-hooks"))]
    let refuse = 0u32;
    if refuse & 2 != 0 {
        return false;
    }
    let Some(p) = super::map_anonymous(CHUNK) else { return false };
    // SAFETY: `p..p+CHUNK` is the mapping just created, owned by the pool.
    if refuse & 1 != 0 || unsafe { libc::mlock(p, CHUNK) } != 0 {
        FAILURES.fetch_or(LOCK_FAILED, Ordering::Relaxed);
    }
    // SAFETY: as above; madvise only changes how the kernel treats the range.
    if unsafe { libc::madvise(p, CHUNK, libc::MADV_DONTDUMP) } != 0 {
        FAILURES.fetch_or(DONTDUMP_FAILED, Ordering::Relaxed);
    }
    let size = CLASSES[c];
    let base = p as usize;
    pool.free[c].extend((0..CHUNK / size).rev().map(|i| base + i * size));
    pool.chunks.push(base);
    true
}

/// A `Box` whose value lives in locked, non-dumpable memory and is
/// zeroized (after its own `Drop`) before the memory is reused.
///
/// One word: the slot's size class follows from `T`, and the rare heap
/// fallback is marked in bit 0 of the address (slots are aligned to at
/// least 32 bytes and fallback allocations to 64, so the bit is otherwise
/// 0). Every
/// epoch holds one or two of these, so the word matters: it keeps an idle
/// context's window small.
pub struct Locked<T> {
    tagged: NonNull<u8>,
    _owns: PhantomData<T>,
}

/// Bit 0 of `tagged`: the value lives on the ordinary heap.
const HEAP: usize = 1;

/// The layout of a heap fallback for `T`: 64-byte aligned, so bit 0 is free.
fn fallback_layout<T>() -> Layout {
    let l = Layout::new::<T>();
    Layout::from_size_align(l.size(), l.align().max(SLOT_ALIGN)).expect("a type's size rounded to 64 fits")
}

// SAFETY: `Locked<T>` owns its `T` exactly like `Box<T>` does.
unsafe impl<T: Send> Send for Locked<T> {}
// SAFETY: shared access only hands out `&T`, as `Box<T>` does.
unsafe impl<T: Sync> Sync for Locked<T> {}

impl<T> Locked<T> {
    /// Moves `value` into a locked slot.
    pub fn new(value: T) -> Locked<T> {
        let layout = Layout::new::<T>();
        let slot = class_of(layout).and_then(|c| {
            let mut pool = POOL.lock();
            if pool.free[c].is_empty() && !grow(&mut pool, c) {
                return None;
            }
            pool.in_use += CLASSES[c];
            pool.free[c].pop()
        });
        let (ptr, tag) = match slot {
            Some(addr) => (addr as *mut T, 0),
            None => {
                FAILURES.fetch_or(FALLBACK, Ordering::Relaxed);
                let layout = fallback_layout::<T>();
                if layout.size() == 0 {
                    // A well-aligned dangling pointer (never dereferenced for a ZST).
                    (SLOT_ALIGN as *mut T, HEAP)
                } else {
                    // SAFETY: non-zero size; a null result is handled below.
                    let p = unsafe { std::alloc::alloc(layout) } as *mut T;
                    if p.is_null() {
                        std::alloc::handle_alloc_error(layout);
                    }
                    (p, HEAP)
                }
            }
        };
        // SAFETY: `ptr` is valid for writes of `T` and aligned: a slot of
        // class `c` is at least `size_of::<T>()` bytes and aligned to
        // `class_align(c)`, which `class_of` chose at least `align_of::<T>()`;
        // the fallback comes from the global allocator with
        // `fallback_layout::<T>()`.
        unsafe { ptr.write(value) };
        // SAFETY: not null (a slot address, an allocation, or 64 for a ZST);
        // bit 0 of each is 0 (aligned to at least 32 bytes), so setting it
        // keeps it so.
        let tagged = unsafe { NonNull::new_unchecked(ptr.cast::<u8>().wrapping_add(tag)) };
        Locked { tagged, _owns: PhantomData }
    }

    #[inline]
    fn ptr(&self) -> *mut T {
        self.tagged.as_ptr().wrapping_sub(self.tagged.as_ptr() as usize & HEAP).cast::<T>()
    }
}

impl<T> core::ops::Deref for Locked<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `ptr()` holds an initialized `T` owned by `self` until drop.
        unsafe { &*self.ptr() }
    }
}

impl<T> core::ops::DerefMut for Locked<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes the access unique.
        unsafe { &mut *self.ptr() }
    }
}

impl<T> Drop for Locked<T> {
    fn drop(&mut self) {
        let size = core::mem::size_of::<T>();
        let p = self.ptr();
        let on_heap = self.tagged.as_ptr() as usize & HEAP != 0;
        // SAFETY: the value is initialized and dropped exactly once, here.
        unsafe { core::ptr::drop_in_place(p) };
        if size > 0 {
            // SAFETY: `p` is valid for `size` bytes (the slot or allocation);
            // after drop_in_place they are plain bytes to be wiped.
            let bytes = unsafe { core::slice::from_raw_parts_mut(p as *mut u8, size) };
            zeroize::Zeroize::zeroize(bytes);
        }
        if !on_heap {
            // A slot: its class is the one `new` took it from (a function of `T`).
            if let Some(c) = class_of(Layout::new::<T>()) {
                let mut pool = POOL.lock();
                pool.in_use -= CLASSES[c];
                pool.free[c].push(p as usize);
            }
        } else if size > 0 {
            // SAFETY: allocated in `new` with this very layout.
            unsafe { std::alloc::dealloc(p as *mut u8, fallback_layout::<T>()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_live_in_pool_slots_and_are_wiped_on_drop() {
        let a = Locked::new([0xA5u8; 32]);
        let addr = &*a as *const [u8; 32] as usize;
        assert_eq!(addr % 32, 0);
        assert!(chunks() >= 1);
        drop(a);
        // The slot is back on its free list, wiped: the pool's memory stays
        // mapped, so reading it is defined.
        let pool = POOL.lock();
        assert!(pool.free[0].contains(&addr));
        // SAFETY: the slot is inside a live chunk of the pool (never unmapped).
        let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, 32) };
        assert!(bytes.iter().all(|&b| b == 0), "slot zeroized");
    }

    /// The kernel's view of the chunk holding `addr`: its `VmFlags`.
    fn vm_flags(addr: usize) -> Vec<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                        inside = a <= addr && addr < b;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return flags.split_whitespace().map(String::from).collect();
                }
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn the_kernel_agrees_with_the_status() {
        let a = Locked::new([1u8; 48]);
        let flags = vm_flags(&*a as *const [u8; 48] as usize);
        let st = status();
        // "lo": VM_LOCKED; "dd": do not dump.
        assert_eq!(flags.iter().any(|f| f == "lo"), st & LOCKED != 0, "{flags:?} vs status {st}");
        assert_eq!(flags.iter().any(|f| f == "dd"), st & DONTDUMP != 0, "{flags:?} vs status {st}");
    }

    #[test]
    fn drop_runs_the_values_own_drop_first() {
        use std::sync::atomic::AtomicUsize;
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct D(#[allow(dead_code)] [u8; 100]);
        impl Drop for D {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(Locked::new(D([1; 100])));
        assert_eq!(DROPS.load(Ordering::Relaxed), 1);
        // Too large for a slot: the heap fallback, flagged.
        let big = Locked::new([7u8; 4096]);
        assert_eq!(big[4095], 7);
        assert_ne!(status() & FALLBACK, 0);
    }

    #[test]
    fn every_value_gets_the_smallest_class_that_fits_its_size_and_alignment() {
        #[repr(align(64))]
        struct Aligned([u8; 32]);
        let secret = Locked::new([1u8; 32]);
        let aligned = Locked::new(Aligned([2; 32]));
        let frontier_sized = Locked::new([3u8; 1552]);
        assert_eq!(&*secret as *const _ as usize % 32, 0);
        assert_eq!(&*aligned as *const Aligned as usize % 64, 0, "a 64-aligned type skips the 32 B class");
        assert_eq!(aligned.0[31], 2);
        assert_eq!(class_of(Layout::new::<[u8; 32]>()), Some(0));
        assert_eq!(class_of(Layout::new::<Aligned>()), Some(1));
        assert_eq!(CLASSES[class_of(Layout::new::<[u8; 1552]>()).unwrap()], 1600);
        assert_eq!(frontier_sized[1551], 3);
        for (c, size) in CLASSES.iter().enumerate() {
            assert_eq!(size % class_align(c), 0);
            assert!(class_align(c) >= 32);
        }
        drop((secret, aligned, frontier_sized));
    }

    #[test]
    fn a_locked_box_is_one_word_and_option_keeps_the_niche() {
        assert_eq!(core::mem::size_of::<Locked<[u8; 32]>>(), core::mem::size_of::<usize>());
        assert_eq!(core::mem::size_of::<Option<Locked<[u8; 32]>>>(), core::mem::size_of::<usize>());
    }

    #[test]
    fn a_value_too_large_for_a_slot_lives_on_the_heap_and_is_usable() {
        let mut big = Locked::new([7u8; 4096]);
        assert_eq!(big.as_ptr() as usize % SLOT_ALIGN, 0, "the heap fallback is 64-byte aligned too");
        big[4095] = 9;
        assert_eq!((big[0], big[4095]), (7, 9));
        assert!(status() & FALLBACK != 0);
        drop(big);
        // A slot value next to it still goes back to its free list.
        let small = Locked::new(1u64);
        assert_eq!(*small, 1);
    }
}
