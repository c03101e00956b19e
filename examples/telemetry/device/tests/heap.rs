//! The firmware's heap over thousands of TLS reconnects, on the host, with the two
//! allocators esp-alloc can be built with: linked_list_allocator (first fit, "LLFF",
//! esp-alloc's default) and rlsf (TLSF), the same crate versions the firmware locks.
//!
//! Each TLS session replays the allocations an mbedTLS 3 client makes for a TLS 1.2
//! ECDHE-RSA handshake with an RSA-2048 chain of two certificates (API Gateway's),
//! with the firmware's record buffers (16 KiB in, 4 KiB out): the record buffers,
//! handshake and transform contexts, the parsed chain (certificate structures, DER
//! copies, name lists, RSA keys), the bignum temporaries of ECDHE and the signature
//! check, freed as mbedTLS frees them. Sizes are mbedTLS's structure sizes for a
//! 32-bit target, varied a little per session. Between sessions the Wi-Fi driver
//! allocates packet buffers and control blocks of 100-1,700 bytes, most short-lived
//! and a few kept for hundreds of sessions: what fragments a shared heap.
//!
//! Layouts of the firmware's 160 KiB of heap compared:
//! - one shared heap, first fit (the firmware before this change);
//! - one shared heap, TLSF;
//! - the firmware's layout: a 48 KiB arena only mbedTLS allocates from
//!   (`mbedtls_platform_set_calloc_free`), holding the parsed roots for good, and a
//!   112 KiB heap for everything else, both first fit (esp-alloc's default), and the
//!   same with TLSF.
//!
//! Run with `--nocapture` to see the figures firmware/README.md quotes.

use std::alloc::Layout;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use linked_list_allocator::Heap as FirstFit;
use rlsf::Tlsf;
use telemetry_device::{largest_allocatable, SplitMix64};

const KIB: usize = 1024;
const SESSIONS: usize = 5_000;
/// What one session needs in one piece: the incoming record buffer.
const IN_BUFFER: usize = 16_384 + 333;

/// One allocator under test.
trait Allocator {
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>>;
    fn free(&mut self, ptr: NonNull<u8>, size: usize);
    /// The largest block it can hand out now (probed the way the firmware does).
    fn largest_block(&mut self) -> usize {
        let limit = self.capacity();
        largest_allocatable(limit, 16, |size| match self.alloc(size) {
            Some(ptr) => {
                self.free(ptr, size);
                true
            }
            None => false,
        })
    }
    fn capacity(&self) -> usize;
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size.max(1), 4).unwrap()
}

struct Llff {
    heap: FirstFit,
    capacity: usize,
}

impl Llff {
    fn new(memory: &'static mut [MaybeUninit<u8>]) -> Self {
        let capacity = memory.len();
        Llff {
            heap: FirstFit::from_slice(memory),
            capacity,
        }
    }
}

impl Allocator for Llff {
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        self.heap.allocate_first_fit(layout(size)).ok()
    }
    fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: `ptr` came from this heap with this layout and is freed once.
        unsafe { self.heap.deallocate(ptr, layout(size)) }
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
}

/// esp-alloc's TLSF parameters, with 32-bit bitmaps as on the ESP32-C3.
struct TlsfHeap {
    heap: Tlsf<'static, u32, u32, 32, 32>,
    capacity: usize,
}

impl TlsfHeap {
    fn new(memory: &'static mut [MaybeUninit<u8>]) -> Self {
        let capacity = memory.len();
        let mut heap = Tlsf::new();
        heap.insert_free_block(memory);
        TlsfHeap { heap, capacity }
    }
}

impl Allocator for TlsfHeap {
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        self.heap.allocate(layout(size))
    }
    fn free(&mut self, ptr: NonNull<u8>, _size: usize) {
        // SAFETY: `ptr` came from this heap and is freed once.
        unsafe { self.heap.deallocate(ptr, 4) }
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
}

fn memory(size: usize) -> &'static mut [MaybeUninit<u8>] {
    Box::leak(vec![MaybeUninit::uninit(); size].into_boxed_slice())
}

/// A live allocation.
struct Block {
    ptr: NonNull<u8>,
    size: usize,
}

fn vary(rng: &mut SplitMix64, size: usize, spread: usize) -> usize {
    size + rng.up_to(spread as u64) as usize
}

/// Allocates `size` or reports the session failed (as mbedTLS's calloc returning NULL
/// fails the handshake).
fn take(heap: &mut dyn Allocator, live: &mut Vec<Block>, size: usize) -> Result<(), ()> {
    let ptr = heap.alloc(size).ok_or(())?;
    live.push(Block { ptr, size });
    Ok(())
}

fn release(heap: &mut dyn Allocator, blocks: &mut Vec<Block>) {
    for block in blocks.drain(..).rev() {
        heap.free(block.ptr, block.size);
    }
}

/// The parsed roots (five certificates), allocated at boot and kept.
fn parse_roots(heap: &mut dyn Allocator, rng: &mut SplitMix64) -> Vec<Block> {
    let mut kept = Vec::new();
    for _ in 0..5 {
        let _ = take(heap, &mut kept, 560); // mbedtls_x509_crt
        let _ = take(heap, &mut kept, vary(rng, 880, 600)); // DER copy
        for _ in 0..6 {
            let _ = take(heap, &mut kept, 40); // subject/issuer name entries
        }
        let _ = take(heap, &mut kept, vary(rng, 280, 300)); // public key
    }
    kept
}

/// One client session, start to close. `between` runs in the middle of it (the
/// Wi-Fi driver's allocations while the handshake waits for the network).
fn session(
    heap: &mut dyn Allocator,
    rng: &mut SplitMix64,
    between: &mut dyn FnMut(&mut dyn Allocator, &mut SplitMix64),
) -> Result<(), ()> {
    let mut session = Vec::new();
    let result = (|| {
        // mbedtls_ssl_setup: record buffers, then the handshake's own state.
        take(heap, &mut session, IN_BUFFER)?;
        take(heap, &mut session, 4_096 + 333)?;
        let mut handshake = Vec::new();
        take(heap, &mut handshake, 2_400)?; // handshake params (+ checksums)
        take(heap, &mut session, 560)?; // transform
        take(heap, &mut session, 200)?; // session
        between(heap, rng);
        // The server's chain: kept with the session (MBEDTLS_SSL_KEEP_PEER_CERTIFICATE).
        for _ in 0..2 {
            take(heap, &mut session, 560)?;
            take(heap, &mut session, vary(rng, 1_200, 500))?;
            for _ in 0..8 {
                take(heap, &mut session, vary(rng, 32, 24))?;
            }
            take(heap, &mut session, 300)?;
        }
        // ECDHE and the RSA signature check: bignum temporaries, freed in waves.
        for _ in 0..6 {
            let mut wave = Vec::new();
            for _ in 0..12 {
                take(heap, &mut wave, vary(rng, 36, 96))?;
            }
            take(heap, &mut wave, vary(rng, 256, 256))?;
            release(heap, &mut wave);
        }
        release(heap, &mut handshake);
        between(heap, rng);
        Ok(())
    })();
    release(heap, &mut session);
    result
}

/// The Wi-Fi driver's allocations between two TLS steps: mostly short-lived, a few
/// kept for a long time.
struct WifiTraffic {
    long_lived: Vec<(usize, Block)>,
    round: usize,
    failed: usize,
}

impl WifiTraffic {
    fn step(&mut self, heap: &mut dyn Allocator, rng: &mut SplitMix64) {
        self.round += 1;
        let round = self.round;
        let mut expired = Vec::new();
        self.long_lived.retain(|(until, block)| {
            if *until <= round {
                expired.push(Block {
                    ptr: block.ptr,
                    size: block.size,
                });
                false
            } else {
                true
            }
        });
        for block in expired {
            heap.free(block.ptr, block.size);
        }
        let mut short = Vec::new();
        for _ in 0..4 {
            let size = vary(rng, 100, 1_600);
            match heap.alloc(size) {
                Some(ptr) => short.push(Block { ptr, size }),
                None => self.failed += 1,
            }
        }
        // One in three steps leaves a block behind for 1-400 more steps.
        if rng.up_to(2) == 0 {
            let size = vary(rng, 100, 1_600);
            match heap.alloc(size) {
                Some(ptr) => {
                    let until = round + 1 + rng.up_to(400) as usize;
                    self.long_lived.push((until, Block { ptr, size }));
                }
                None => self.failed += 1,
            }
        }
        release(heap, &mut short);
    }
}

struct Outcome {
    failed_sessions: usize,
    failed_wifi_allocations: usize,
    largest_after_first: usize,
    smallest_largest: usize,
    largest_at_end: usize,
}

/// Runs `SESSIONS` sessions on `tls`, with the Wi-Fi traffic on `wifi` (the same
/// heap when shared), and records the TLS heap's largest block after each session.
fn run(tls: &mut dyn Allocator, mut wifi: Option<&mut dyn Allocator>) -> Outcome {
    let mut rng = SplitMix64::new(21);
    let _roots = parse_roots(tls, &mut rng);
    let mut traffic = WifiTraffic {
        long_lived: Vec::new(),
        round: 0,
        failed: 0,
    };
    let mut outcome = Outcome {
        failed_sessions: 0,
        failed_wifi_allocations: 0,
        largest_after_first: 0,
        smallest_largest: usize::MAX,
        largest_at_end: 0,
    };
    for index in 0..SESSIONS {
        let result = match wifi.as_deref_mut() {
            Some(wifi) => session(tls, &mut rng, &mut |_, rng| traffic.step(wifi, rng)),
            None => session(tls, &mut rng, &mut |heap, rng| traffic.step(heap, rng)),
        };
        if result.is_err() {
            outcome.failed_sessions += 1;
        }
        let largest = tls.largest_block();
        if index == 0 {
            outcome.largest_after_first = largest;
        }
        outcome.smallest_largest = outcome.smallest_largest.min(largest);
        outcome.largest_at_end = largest;
    }
    outcome.failed_wifi_allocations = traffic.failed;
    outcome
}

fn report(name: &str, outcome: &Outcome) {
    eprintln!(
        "{name}: largest free block after session 1: {} B, smallest after any of {SESSIONS}: {} B, at the end: {} B; sessions that could not allocate: {}; Wi-Fi allocations that failed: {}",
        outcome.largest_after_first,
        outcome.smallest_largest,
        outcome.largest_at_end,
        outcome.failed_sessions,
        outcome.failed_wifi_allocations
    );
}

#[test]
fn a_dedicated_tls_arena_keeps_its_largest_block_through_thousands_of_sessions() {
    // The firmware: esp-alloc's default (first fit) for both heaps.
    let mut arena = Llff::new(memory(48 * KIB));
    let mut main = Llff::new(memory(112 * KIB));
    let outcome = run(&mut arena, Some(&mut main));
    report("48 KiB TLS arena + 112 KiB heap, first fit", &outcome);
    assert_eq!(outcome.failed_sessions, 0);
    assert_eq!(outcome.failed_wifi_allocations, 0);
    assert_eq!(
        outcome.smallest_largest, outcome.largest_after_first,
        "every session gives the arena back whole"
    );
    assert!(outcome.largest_after_first >= IN_BUFFER);
    // With TLSF the arena is just as stable.
    let mut arena = TlsfHeap::new(memory(48 * KIB));
    let mut main = TlsfHeap::new(memory(112 * KIB));
    let outcome = run(&mut arena, Some(&mut main));
    report("48 KiB TLS arena + 112 KiB heap, TLSF", &outcome);
    assert_eq!(outcome.failed_sessions, 0);
    assert_eq!(outcome.smallest_largest, outcome.largest_after_first);
}

#[test]
fn a_shared_first_fit_heap_fragments_where_the_arena_does_not() {
    let mut shared = Llff::new(memory(160 * KIB));
    let first_fit = run(&mut shared, None);
    report("160 KiB shared heap, first fit (LLFF)", &first_fit);
    let mut shared = TlsfHeap::new(memory(160 * KIB));
    let tlsf = run(&mut shared, None);
    report("160 KiB shared heap, TLSF", &tlsf);
    // The shared heap's largest block drifts with the Wi-Fi traffic around it, far
    // below what it was after the first session; TLSF's size classes make it worse
    // for a 16 KiB request.
    assert!(
        first_fit.smallest_largest < first_fit.largest_after_first / 2,
        "first fit: {} vs {}",
        first_fit.smallest_largest,
        first_fit.largest_after_first
    );
    assert!(tlsf.failed_sessions > 0);
}

#[test]
fn the_probe_finds_what_the_allocator_can_really_hand_out() {
    let mut heap = TlsfHeap::new(memory(64 * KIB));
    let mut rng = SplitMix64::new(3);
    let mut live = Vec::new();
    for _ in 0..200 {
        let size = vary(&mut rng, 16, 600);
        if let Some(ptr) = heap.alloc(size) {
            live.push(Block { ptr, size });
        }
    }
    // Free every other block: holes between live blocks.
    let mut kept = Vec::new();
    for (index, block) in live.into_iter().enumerate() {
        if index % 2 == 0 {
            heap.free(block.ptr, block.size);
        } else {
            kept.push(block);
        }
    }
    let largest = heap.largest_block();
    assert!(largest > 0);
    let ptr = heap.alloc(largest).expect("the probed size allocates");
    heap.free(ptr, largest);
    assert!(
        heap.alloc(largest + 16).is_none() || heap.alloc(largest + 32).is_none(),
        "nothing much larger does"
    );
}
