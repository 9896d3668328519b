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
    /// Mappings of dropped [`LockedVec`]s kept for the next one, zeroized,
    /// locked and marked as when they were made: `(base, len)`, at most
    /// [`SPARE_BYTES`] in all. Mapping, locking and unmapping cost an export
    /// or an import more than its cryptography.
    spare: Vec<(usize, usize)>,
    /// Every [`LockedVec`] alive, and the thread that made it: a forked
    /// child wipes those of the threads it does not have.
    live: Vec<Live>,
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            free: [const { Vec::new() }; CLASSES.len()],
            chunks: Vec::new(),
            in_use: 0,
            spare: Vec::new(),
            live: Vec::new(),
        }
    }

    /// A [`LockedVec`] at `base` is gone.
    fn forget_live(&mut self, base: usize) {
        if let Some(i) = self.live.iter().position(|v| v.base == base) {
            self.live.swap_remove(i);
        }
    }
}

/// A [`LockedVec`]'s memory, as the pool knows it.
#[derive(Clone, Copy)]
pub(crate) struct Live {
    base: usize,
    /// Its capacity in bytes.
    bytes: usize,
    /// Bytes mapped; 0 on the heap.
    mapped: usize,
    /// The thread that made it and alone uses it (a `LockedVec` is not `Send`).
    owner: libc::pthread_t,
}

/// The most bytes of [`LockedVec`] mappings the pool keeps for reuse (an
/// export's or an import's buffers for a default configuration, a few
/// pages each, fit; a larger one maps and unmaps its own).
const SPARE_BYTES: usize = 64 * 1024;

static POOL: Mutex<Pool> = Mutex::new(Pool::new());

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
pub(crate) fn relock_after_fork(pool: &mut Pool) {
    #[cfg(feature = "test-hooks")]
    let refused = REFUSE.load(Ordering::SeqCst) & 1 != 0;
    #[cfg(not(feature = "test-hooks"))]
    let refused = false;
    let chunks = pool.chunks.iter().map(|&base| (base, CHUNK));
    for (base, len) in chunks.chain(pool.spare.iter().copied()) {
        // SAFETY: `base..base+len` is a chunk mapped by `grow` and never
        // unmapped, or a spare mapping the pool owns (the child inherited
        // both); mlock only changes how the kernel treats the range.
        if refused || unsafe { libc::mlock(base as *const libc::c_void, len) } != 0 {
            FAILURES.fetch_or(LOCK_FAILED, Ordering::Relaxed);
        }
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    pool.live.retain(|v| {
        // SAFETY: pthread_equal only compares two thread ids.
        if unsafe { libc::pthread_equal(v.owner, me) } != 0 {
            // This thread's own (an export or import under way in it): it
            // goes on with it, locked again.
            // SAFETY: as for a chunk: a mapping this thread's vector owns.
            if v.mapped > 0 && (refused || unsafe { libc::mlock(v.base as *const libc::c_void, v.mapped) } != 0) {
                FAILURES.fetch_or(LOCK_FAILED, Ordering::Relaxed);
            }
            return true;
        }
        // A vector of a thread the child does not have (it was exporting or
        // importing at the fork): nobody here will use or drop it. A mapping
        // is given back (the child's copy of its pages goes with it; wiping
        // first would only make the child copy them), heap memory is wiped
        // and left (freeing it is the allocator's business).
        if v.mapped > 0 {
            // SAFETY: the vector's own mapping (not a chunk, not a spare),
            // used by nothing in the child.
            unsafe { libc::munmap(v.base as *mut libc::c_void, v.mapped) };
        } else {
            // SAFETY: `base..base+bytes` is that vector's heap memory,
            // inherited by the child and used by no thread of it.
            zeroize::Zeroize::zeroize(unsafe { core::slice::from_raw_parts_mut(v.base as *mut u8, v.bytes) });
        }
        false
    });
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

/// Locks `p..p+len` (a mapping of the caller's); where the OS refuses
/// (`RLIMIT_MEMLOCK`), unmaps the spare `LockedVec` mappings, locked memory
/// kept only as a cache, and tries once more.
fn mlock_or_drop_spares(spare: &mut Vec<(usize, usize)>, p: *mut libc::c_void, len: usize) -> bool {
    // SAFETY: mlock only changes how the kernel treats the range.
    if unsafe { libc::mlock(p, len) } == 0 {
        return true;
    }
    if spare.is_empty() {
        return false;
    }
    for (base, l) in spare.drain(..) {
        // SAFETY: a spare mapping is owned by the pool and used by nobody.
        unsafe { libc::munmap(base as *mut libc::c_void, l) };
    }
    // SAFETY: as above.
    unsafe { libc::mlock(p, len) == 0 }
}

/// `len` bytes of new key memory (a chunk, or a [`LockedVec`]'s pages):
/// mapped, locked and left out of core dumps, and whether it is locked.
/// Where the OS refuses to lock (after the spares are given back) or to
/// mark, [`status`] remembers it; `None` where it maps nothing.
fn map_key_memory(spare: &mut Vec<(usize, usize)>, len: usize) -> Option<(*mut libc::c_void, bool)> {
    #[cfg(feature = "test-hooks")]
    let refuse = REFUSE.load(Ordering::SeqCst);
    #[cfg(not(feature = "test-hooks"))]
    let refuse = 0u32;
    if refuse & 2 != 0 {
        return None;
    }
    let p = super::map_anonymous(len)?;
    let locked = refuse & 1 == 0 && mlock_or_drop_spares(spare, p, len);
    if !locked {
        FAILURES.fetch_or(LOCK_FAILED, Ordering::Relaxed);
    }
    // SAFETY: `p..p+len` is the mapping just created, owned by the caller;
    // madvise only changes how the kernel treats the range.
    if unsafe { libc::madvise(p, len, libc::MADV_DONTDUMP) } != 0 {
        FAILURES.fetch_or(DONTDUMP_FAILED, Ordering::Relaxed);
    }
    Some((p, locked))
}

/// A new chunk carved into slots of class `c`, pushed on its free list.
fn grow(pool: &mut Pool, c: usize) -> bool {
    let Some((p, _)) = map_key_memory(&mut pool.spare, CHUNK) else { return false };
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

/// A vector of `T` with a capacity fixed when it is made, in pages of its
/// own that are locked and left out of core dumps as the pool's chunks are,
/// and zeroized (all of its capacity, after the elements' own `Drop`) when
/// it drops, its pages then kept for the next one (up to [`SPARE_BYTES`] in
/// all) or unmapped: for the passing secrets of an export or an
/// import (a snapshot's epoch secrets and frontier, a blob's plaintext
/// body), too many and too varied in size for the pool's slots. It never
/// reallocates, so no copy is left behind: filling it past its capacity is a
/// bug, and panics.
///
/// Where the OS refuses to map, it lives on the ordinary heap (zeroized
/// all the same) and [`status`] adds `FALLBACK`; where it refuses to lock or
/// to leave the pages out of dumps, [`status`] stops claiming `LOCKED` or
/// `DONTDUMP`, as for a chunk.
pub struct LockedVec<T> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    /// Bytes mapped; 0 for the heap fallback (or nothing allocated).
    mapped: usize,
    /// A mapping the OS refused to lock: never kept as a spare.
    unlocked: bool,
    _owns: PhantomData<T>,
}

// Neither `Send` nor `Sync` (its raw pointer makes it neither): the thread
// that makes a `LockedVec` is the one that uses and drops it, which is what
// lets a forked child tell the vectors of the threads it lost
// (`relock_after_fork`). Checked at compile time, with the snapshot that
// holds them, in `blob`'s tests.

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|p| p.is_power_of_two()).unwrap_or(4096)
}

impl<T> LockedVec<T> {
    /// An empty vector with room for exactly `cap` elements: a spare
    /// mapping of the right size, a new one, or the heap; recorded as live
    /// (for a forked child, `relock_after_fork`).
    pub fn with_capacity(cap: usize) -> LockedVec<T> {
        let layout = Layout::array::<T>(cap).expect("a LockedVec's capacity fits in memory");
        let at = |ptr, mapped, unlocked| LockedVec { ptr, len: 0, cap, mapped, unlocked, _owns: PhantomData };
        if layout.size() == 0 {
            return at(NonNull::dangling(), 0, false);
        }
        let page = page_size();
        let len = layout.size().div_ceil(page) * page;
        let mut pool = POOL.lock();
        let spare = pool.spare.iter().position(|&(_, l)| l == len);
        let v = if layout.align() > page {
            // A page would not be aligned for `T`.
            None
        } else if let Some(i) = spare {
            let (base, _) = pool.spare.swap_remove(i);
            // SAFETY: a spare mapping is non-NULL and page-aligned, `len`
            // bytes, zeroed, locked and owned by the pool, which hands it over.
            Some(at(unsafe { NonNull::new_unchecked(base as *mut T) }, len, false))
        } else {
            map_key_memory(&mut pool.spare, len).map(|(p, locked)| {
                // SAFETY: mmap never returns NULL on success.
                at(unsafe { NonNull::new_unchecked(p.cast::<T>()) }, len, !locked)
            })
        };
        let v = v.unwrap_or_else(|| {
            FAILURES.fetch_or(FALLBACK, Ordering::Relaxed);
            // SAFETY: the layout's size is not zero (checked above).
            let p = unsafe { std::alloc::alloc(layout) }.cast::<T>();
            let Some(ptr) = NonNull::new(p) else { std::alloc::handle_alloc_error(layout) };
            at(ptr, 0, false)
        });
        // SAFETY: pthread_self has no preconditions.
        let owner = unsafe { libc::pthread_self() };
        pool.live.push(Live { base: v.ptr.as_ptr() as usize, bytes: layout.size(), mapped: v.mapped, owner });
        v
    }

    /// Appends `value`. Panics if the vector is full (its capacity was
    /// computed wrong: a bug).
    pub fn push(&mut self, value: T) {
        assert!(self.len < self.cap, "a LockedVec filled past the capacity it was made with");
        // SAFETY: `len < cap`, so the slot is inside the allocation, aligned
        // and not yet initialized.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
    }

    /// Appends `value` if there is room; gives it back if the vector is full.
    pub fn push_within_capacity(&mut self, value: T) -> Result<(), T> {
        if self.len == self.cap {
            return Err(value);
        }
        self.push(value);
        Ok(())
    }

    /// Removes the last element (its bytes stay until the vector drops,
    /// and are zeroized then).
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the element at `len` was initialized and is no longer
        // counted, so it is read (moved out) exactly once.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }
}

impl<T: Copy> LockedVec<T> {
    /// Appends every element of `src`. Panics as [`LockedVec::push`] does.
    pub fn extend_from_slice(&mut self, src: &[T]) {
        assert!(src.len() <= self.cap - self.len, "a LockedVec filled past the capacity it was made with");
        // SAFETY: room for `src.len()` more (checked); `src` cannot overlap
        // the uninitialized tail (`&mut self` excludes a borrow of it).
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(self.len), src.len()) };
        self.len += src.len();
    }
}

impl LockedVec<u8> {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> LockedVec<u8> {
        let mut v = LockedVec::with_capacity(len);
        // SAFETY: the allocation holds `len` bytes; writing zeros initializes them.
        unsafe { core::ptr::write_bytes(v.ptr.as_ptr(), 0, len) };
        v.len = len;
        v
    }
}

impl<T> Extend<T> for LockedVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

/// Collects an iterator that knows its length (its `size_hint`'s upper
/// bound is the capacity).
impl<T> FromIterator<T> for LockedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> LockedVec<T> {
        let iter = iter.into_iter();
        let mut v = LockedVec::with_capacity(iter.size_hint().1.expect("an iterator of known length"));
        v.extend(iter);
        v
    }
}

impl<T> core::ops::Deref for LockedVec<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` elements are initialized and owned by `self`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> core::ops::DerefMut for LockedVec<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as above, and `&mut self` makes the access unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<'a, T> IntoIterator for &'a LockedVec<T> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut LockedVec<T> {
    type Item = &'a mut T;
    type IntoIter = core::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl<T> LockedVec<T> {
    /// Drops every element, then zeroizes the whole capacity (the bytes of
    /// elements popped or moved out included).
    fn clear_and_wipe(&mut self) {
        /// Wipes the capacity even when an element's `Drop` panics.
        struct Wipe(*mut u8, usize);
        impl Drop for Wipe {
            fn drop(&mut self) {
                if self.1 > 0 {
                    // SAFETY: the allocation holds `self.1` bytes; no element
                    // is alive any more, so they are plain bytes to be wiped.
                    zeroize::Zeroize::zeroize(unsafe { core::slice::from_raw_parts_mut(self.0, self.1) });
                }
            }
        }
        let p = self.ptr.as_ptr();
        let len = core::mem::replace(&mut self.len, 0);
        let _wipe = Wipe(p.cast::<u8>(), Layout::array::<T>(self.cap).map_or(0, |l| l.size()));
        // SAFETY: the first `len` elements were initialized; `self.len` is
        // 0 before they drop, so each drops exactly once, here.
        unsafe { core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(p, len)) };
    }
}

impl<T> Drop for LockedVec<T> {
    fn drop(&mut self) {
        /// Wiped and released even when an element's `Drop` panics.
        struct Release<'a, T>(&'a mut LockedVec<T>);
        impl<T> Drop for Release<'_, T> {
            fn drop(&mut self) {
                self.0.release();
            }
        }
        Release(self).0.clear_and_wipe();
    }
}

impl<T> LockedVec<T> {
    /// Gives the wiped memory back: to the spares, the OS or the heap.
    fn release(&mut self) {
        let p = self.ptr.as_ptr();
        let Ok(layout) = Layout::array::<T>(self.cap) else { return };
        if layout.size() == 0 {
            return;
        }
        if self.mapped > 0 {
            let mut pool = POOL.lock();
            pool.forget_live(p as usize);
            let kept: usize = pool.spare.iter().map(|&(_, l)| l).sum();
            if !self.unlocked && kept + self.mapped <= SPARE_BYTES {
                // Wiped above: the next LockedVec of this size takes it.
                pool.spare.push((p as usize, self.mapped));
                return;
            }
            drop(pool);
            // SAFETY: `p..p+mapped` is the mapping `with_capacity` made (or
            // took from the spares), owned by this vector and used by
            // nothing after this.
            unsafe { libc::munmap(p.cast::<libc::c_void>(), self.mapped) };
        } else {
            POOL.lock().forget_live(p as usize);
            // SAFETY: allocated in `with_capacity` with this very layout.
            unsafe { std::alloc::dealloc(p.cast::<u8>(), layout) }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// The kernel's view of the mapping holding `addr`: its `VmFlags`.
    pub(crate) fn vm_flags(addr: usize) -> Vec<String> {
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
    fn a_locked_vec_lives_in_locked_undumped_pages() {
        let mut v: LockedVec<[u8; 32]> = LockedVec::with_capacity(300);
        v.push([0xA5; 32]);
        v.extend([[1; 32], [2; 32]]);
        assert_eq!((v.len(), v[0][0], v[2][31]), (3, 0xA5, 2));
        assert_eq!(v.as_ptr() as usize % page_size(), 0, "its own pages");
        let flags = vm_flags(v.as_ptr() as usize);
        let st = status();
        assert_eq!(flags.iter().any(|f| f == "lo"), st & LOCKED != 0, "{flags:?} vs status {st}");
        assert_eq!(flags.iter().any(|f| f == "dd"), st & DONTDUMP != 0, "{flags:?} vs status {st}");
        let bytes = LockedVec::zeroed(5000);
        assert_eq!(bytes.len(), 5000);
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_locked_vec_drops_its_elements_and_wipes_its_whole_capacity() {
        use std::sync::atomic::AtomicUsize;
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct D([u8; 40]);
        impl Drop for D {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut v = LockedVec::with_capacity(4);
        v.push(D([0x5A; 40]));
        v.push(D([0x5B; 40]));
        v.push(D([0x5C; 40]));
        let popped = v.pop().expect("three pushed");
        assert_eq!(popped.0[0], 0x5C);
        drop(popped);
        assert_eq!(DROPS.load(Ordering::Relaxed), 1);
        // The popped element's bytes are still in the buffer until the wipe.
        // SAFETY: the buffer holds 4 * 40 bytes, mapped until `v` drops.
        let raw = unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), 4 * 40) };
        assert_eq!(raw[80], 0x5C);
        v.clear_and_wipe();
        assert_eq!(DROPS.load(Ordering::Relaxed), 3, "each element dropped once");
        assert_eq!(v.len(), 0);
        // SAFETY: as above (`v` is alive).
        let raw = unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), 4 * 40) };
        assert!(raw.iter().all(|&b| b == 0), "the whole capacity zeroized");
        drop(v);
        assert_eq!(DROPS.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_dropped_locked_vecs_mapping_is_kept_wiped_reused_and_locked_again_after_fork() {
        // A size no other test uses, so nobody else takes the spare.
        let len = 5 * page_size();
        {
            // Room in the spares (another test's may fill them): they are a
            // cache, emptying it only costs the next ones a mapping.
            let mut pool = POOL.lock();
            for (base, l) in pool.spare.drain(..) {
                // SAFETY: a spare mapping is owned by the pool, used by nobody.
                unsafe { libc::munmap(base as *mut libc::c_void, l) };
            }
        }
        let mut v: LockedVec<u8> = LockedVec::with_capacity(len);
        v.extend_from_slice(&[0xC3; 100]);
        let base = v.as_ptr() as usize;
        drop(v);
        {
            let pool = POOL.lock();
            assert!(pool.spare.contains(&(base, len)), "kept for reuse");
            // SAFETY: a spare mapping stays mapped while the pool holds it.
            let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, len) };
            assert!(bytes.iter().all(|&b| b == 0), "wiped before it was kept");
        }
        // As in a forked child, where mlock is not inherited: the child
        // handler's pass over a pool that holds this spare (a pool of its
        // own: the global one lists other tests' live vectors, which the
        // pass would take for a lost thread's).
        let mut child = Pool::new();
        child.spare.push((base, len));
        // SAFETY: munlock only changes how the kernel treats the range.
        assert_eq!(unsafe { libc::munlock(base as *const libc::c_void, len) }, 0);
        assert!(!vm_flags(base).iter().any(|f| f == "lo"));
        relock_after_fork(&mut child);
        assert_eq!(vm_flags(base).iter().any(|f| f == "lo"), status() & LOCKED != 0, "locked again");
        assert!(vm_flags(base).iter().any(|f| f == "dd") || status() & DONTDUMP == 0);
        let again: LockedVec<u8> = LockedVec::with_capacity(len);
        assert_eq!(again.as_ptr() as usize, base, "the next one of its size takes it");
        // Larger than the spares may hold: mapped and unmapped on its own.
        let big: LockedVec<u8> = LockedVec::zeroed(SPARE_BYTES + 1);
        let big_base = big.as_ptr() as usize;
        drop(big);
        assert!(!POOL.lock().spare.iter().any(|&(b, _)| b == big_base), "not kept");
    }

    #[test]
    fn a_panicking_element_drop_still_wipes_and_releases() {
        struct P(#[allow(dead_code)] [u8; 40], bool);
        impl Drop for P {
            fn drop(&mut self) {
                if self.1 {
                    panic!("element drop panics");
                }
            }
        }
        // A size no other test uses; room in the spares (see above).
        let len = 7 * page_size();
        {
            let mut pool = POOL.lock();
            for (base, l) in pool.spare.drain(..) {
                // SAFETY: a spare mapping is owned by the pool, used by nobody.
                unsafe { libc::munmap(base as *mut libc::c_void, l) };
            }
        }
        let mut v = LockedVec::with_capacity(len / core::mem::size_of::<P>());
        v.push(P([0x5A; 40], true));
        v.push(P([0x5B; 40], false));
        let base = v.as_ptr() as usize;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(v)));
        assert!(r.is_err());
        // Released (kept, as it fits) and wiped all the same.
        let pool = POOL.lock();
        let kept = pool.spare.iter().find(|&&(b, _)| b == base).map(|&(_, l)| l);
        let kept = kept.expect("released to the spares despite the panic");
        // SAFETY: a spare mapping stays mapped while the pool holds it.
        let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, kept) };
        assert!(bytes.iter().all(|&b| b == 0), "wiped despite the panic");
    }

    #[test]
    fn a_forked_child_wipes_the_vectors_of_the_threads_it_lost_and_keeps_its_own() {
        // The pass of the child handler over a pool of its own (see above):
        // one vector of this thread, mapped and filled, and one of a thread
        // the "child" does not have, on the heap (so that the test can read
        // it after the pass; a mapped one is unmapped instead).
        let page = page_size();
        let own = super::super::map_anonymous(page).expect("a page") as usize;
        // SAFETY: the page just mapped, owned by this test.
        unsafe { core::ptr::write_bytes(own as *mut u8, 0xA1, page) };
        let lost_layout = Layout::from_size_align(96, 16).unwrap();
        // SAFETY: a non-zero size.
        let lost = unsafe { std::alloc::alloc(lost_layout) } as usize;
        assert_ne!(lost, 0);
        // SAFETY: 96 bytes just allocated.
        unsafe { core::ptr::write_bytes(lost as *mut u8, 0xB2, 96) };
        // SAFETY: pthread_self has no preconditions.
        let other = std::thread::spawn(|| unsafe { libc::pthread_self() } as usize).join().unwrap();
        let mut child = Pool::new();
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        child.live.push(Live { base: own, bytes: page, mapped: page, owner: me });
        child.live.push(Live { base: lost, bytes: 96, mapped: 0, owner: other as libc::pthread_t });
        // SAFETY: munlock only changes how the kernel treats the range.
        unsafe { libc::munlock(own as *const libc::c_void, page) };
        relock_after_fork(&mut child);
        assert_eq!(child.live.len(), 1, "the lost thread's vector is forgotten");
        assert_eq!(child.live[0].base, own);
        // SAFETY: the lost vector's heap memory, still allocated (wiped only).
        let wiped = unsafe { core::slice::from_raw_parts(lost as *const u8, 96) };
        assert!(wiped.iter().all(|&b| b == 0), "the lost thread's secrets are wiped");
        // SAFETY: this thread's mapping, left mapped by the pass.
        let kept = unsafe { core::slice::from_raw_parts(own as *const u8, page) };
        assert!(kept.iter().all(|&b| b == 0xA1), "this thread's own vector is left as it is");
        assert_eq!(vm_flags(own).iter().any(|f| f == "lo"), status() & LOCKED != 0, "and locked again");
        // SAFETY: both owned by this test, used by nothing else.
        unsafe {
            libc::munmap(own as *mut libc::c_void, page);
            std::alloc::dealloc(lost as *mut u8, lost_layout);
        }
    }

    #[test]
    fn a_mapping_the_os_would_not_lock_is_not_kept_for_reuse() {
        let len = 6 * page_size();
        let mut v: LockedVec<u8> = LockedVec::with_capacity(len);
        // As `with_capacity` marks it when mlock is refused (as root, where
        // this runs, mlock is never refused).
        v.unlocked = true;
        let base = v.as_ptr() as usize;
        drop(v);
        assert!(!POOL.lock().spare.iter().any(|&(b, _)| b == base), "an unlocked mapping is unmapped, not kept");
    }

    #[test]
    fn a_locked_vec_never_grows() {
        let mut v = LockedVec::with_capacity(2);
        assert!(v.push_within_capacity(1u64).is_ok());
        assert!(v.push_within_capacity(2u64).is_ok());
        assert_eq!(v.push_within_capacity(3u64), Err(3));
        assert_eq!(&v[..], &[1, 2]);
        let full = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| v.push(3)));
        assert!(full.is_err(), "push past the capacity panics");
        let mut b = LockedVec::with_capacity(3);
        b.extend_from_slice(&[1u8, 2]);
        let over = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.extend_from_slice(&[3, 4])));
        assert!(over.is_err(), "extend past the capacity panics");
        assert_eq!(&b[..], &[1, 2]);
        let empty: LockedVec<u64> = LockedVec::with_capacity(0);
        assert!(empty.is_empty());
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
