//! mbedTLS's memory and clock.
//!
//! - **Memory**: every `mbedtls_calloc`/`mbedtls_free` goes to a dedicated 48 KiB arena
//!   (`mbedtls_platform_set_calloc_free`, MbedTLS's `MBEDTLS_PLATFORM_MEMORY`, which
//!   mbedtls-rs-sys always enables), an `esp_alloc::EspHeap` of its own. The parsed
//!   roots stay in it for good; everything a session allocates is freed when the
//!   session ends, so the arena is back to the same state after every connection
//!   whatever the Wi-Fi driver does on the main heap (host figures:
//!   `examples/telemetry/device/tests/heap.rs`).
//! - **Clock**: with mbedtls-rs's `hook-wall-clock`, X.509 validity dates are checked
//!   against [`CertificateClock`], which reads the time the main loop published from
//!   the device's `WallClock` (SNTP, the server's `Date`, the build time as floor).
//! - **Randomness**: esp-hal's RNG, a true RNG once the radio is on.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::convert::Infallible;
use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;
use core::ptr::{addr_of_mut, null_mut};

use critical_section::Mutex;
use esp_alloc::{EspHeap, HeapRegion, MemoryCapability};
use esp_hal::rng::Rng;
use mbedtls_rs::sys::hook::backend::embassy::timer::EmbassyTimer;
use mbedtls_rs::sys::hook::timer::hook_timer;
use mbedtls_rs::sys::hook::wall_clock::{hook_wall_clock, MbedtlsWallClock};
use mbedtls_rs::sys::{mbedtls_platform_set_calloc_free, tm};
use telemetry_device::http::civil_from_unix_ms;

/// The arena mbedTLS allocates from: a TLS 1.2/1.3 session with a 16 KiB incoming and
/// 4 KiB outgoing record buffer, an RSA-2048 chain and ECDHE, plus the parsed roots.
pub const ARENA_SIZE: usize = 48 * 1024;

/// mbedTLS's heap; nothing else allocates from it.
pub static ARENA: EspHeap = EspHeap::empty();

static mut ARENA_MEMORY: MaybeUninit<[u8; ARENA_SIZE]> = MaybeUninit::uninit();

/// Bytes in front of each block, holding its size for `free`.
const HEADER: usize = 8;

/// Gives the arena its memory and routes mbedTLS's allocations and clocks to it. Call
/// once, before anything of mbedTLS runs (the roots are parsed next).
pub fn install() {
    static INSTALLED: Mutex<Cell<bool>> = Mutex::new(Cell::new(false));
    if critical_section::with(|cs| INSTALLED.borrow(cs).replace(true)) {
        return;
    }
    // SAFETY: ARENA_MEMORY is used only here, once (guarded above), and only by ARENA.
    unsafe {
        ARENA.add_region(HeapRegion::new(
            addr_of_mut!(ARENA_MEMORY).cast::<u8>(),
            ARENA_SIZE,
            MemoryCapability::Internal.into(),
        ));
        mbedtls_platform_set_calloc_free(Some(arena_calloc), Some(arena_free));
    }
    static TIMER: EmbassyTimer = EmbassyTimer;
    static CLOCK: CertificateClock = CertificateClock;
    // SAFETY: both hooks are statics, installed before any mbedTLS call.
    unsafe {
        hook_timer(Some(&TIMER));
        hook_wall_clock(Some(&CLOCK));
    }
}

unsafe extern "C" fn arena_calloc(count: usize, size: usize) -> *mut c_void {
    let Some(total) = count
        .checked_mul(size)
        .and_then(|bytes| bytes.checked_add(HEADER))
    else {
        return null_mut();
    };
    let Ok(layout) = Layout::from_size_align(total, HEADER) else {
        return null_mut();
    };
    // SAFETY: a non-zero layout; the block is zeroed (calloc) and its size recorded in
    // the header `arena_free` reads back.
    unsafe {
        let block = ARENA.alloc_zeroed(layout);
        if block.is_null() {
            return null_mut();
        }
        block.cast::<usize>().write(total);
        block.add(HEADER).cast()
    }
}

unsafe extern "C" fn arena_free(pointer: *mut c_void) {
    if pointer.is_null() {
        return;
    }
    // SAFETY: `pointer` came from `arena_calloc`, which put the block's size in front.
    unsafe {
        let block = pointer.cast::<u8>().sub(HEADER);
        let total = block.cast::<usize>().read();
        ARENA.dealloc(block, Layout::from_size_align_unchecked(total, HEADER));
    }
}

/// The largest block `heap` can hand out now, to 16 bytes (probed with allocations
/// that are freed at once).
pub fn largest_free_block(heap: &EspHeap, limit: usize) -> usize {
    telemetry_device::largest_allocatable(limit, 16, |size| {
        let Ok(layout) = Layout::from_size_align(size, 4) else {
            return false;
        };
        // SAFETY: a non-zero layout; the block is freed at once with the same layout.
        unsafe {
            let block = heap.alloc(layout);
            if block.is_null() {
                return false;
            }
            heap.dealloc(block, layout);
            true
        }
    })
}

/// Unix time minus uptime, in ms, for certificate checks; `None` until published.
static CERTIFICATE_OFFSET_MS: Mutex<Cell<Option<i64>>> = Mutex::new(Cell::new(None));

/// Publishes the time certificates are checked against: `unix_ms` at uptime
/// `uptime_ms` (the device's `WallClock::certificate_time_ms`).
pub fn set_certificate_time(uptime_ms: u64, unix_ms: u64) {
    let offset = unix_ms as i64 - uptime_ms as i64;
    critical_section::with(|cs| CERTIFICATE_OFFSET_MS.borrow(cs).set(Some(offset)));
}

/// mbedTLS's wall clock: the published time, advancing with uptime. Before anything
/// was published it answers `None`, and mbedTLS refuses every certificate.
pub struct CertificateClock;

impl MbedtlsWallClock for CertificateClock {
    fn instant(&self) -> Option<tm> {
        let offset = critical_section::with(|cs| CERTIFICATE_OFFSET_MS.borrow(cs).get())?;
        let uptime = embassy_time::Instant::now().as_millis() as i64;
        let unix_ms = u64::try_from(uptime.saturating_add(offset)).ok()?;
        let t = civil_from_unix_ms(unix_ms);
        Some(tm {
            tm_sec: t.second as c_int,
            tm_min: t.minute as c_int,
            tm_hour: t.hour as c_int,
            tm_mday: t.day as c_int,
            tm_mon: t.month as c_int - 1,
            tm_year: t.year as c_int - 1900,
            tm_wday: t.weekday as c_int,
            tm_yday: t.yearday as c_int,
            tm_isdst: 0,
        })
    }
}

/// esp-hal's hardware RNG as the `CryptoRng` mbedTLS needs. With the radio on, the RNG
/// mixes RF noise into its output and produces true random numbers (esp-hal's `rng`
/// documentation); it is only created after Wi-Fi is started.
pub struct RadioRng(pub Rng);

impl rand_core::TryRng for RadioRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.random())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok((u64::from(self.0.random()) << 32) | u64::from(self.0.random()))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.0.read(dest);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for RadioRng {}

/// Whether an mbedTLS error code is an allocation failure (of the SSL, X.509, bignum,
/// public-key or elliptic-curve layer).
pub fn is_out_of_memory(code: i32) -> bool {
    const ALLOC_FAILED: [i32; 5] = [-0x7F00, -0x2880, -0x0010, -0x3F80, -0x4D80];
    ALLOC_FAILED.contains(&code)
}
