//! wsgw telemetry firmware for the ESP32-C3.
//!
//! Wires the hardware-free device logic (`telemetry-device`, the same state machine the
//! std simulator runs, with the policies this firmware follows: settings, wall clock,
//! reset reasons, TLS failures, the watchdog plan, sensor metrics) to esp-hal
//! (watchdog, reset reason, temperature sensor, I²C, flash, console), esp-radio (Wi-Fi
//! station, RSSI), embassy-net (DHCP, DNS, TCP, UDP for SNTP), mbedTLS (TLS 1.2/1.3
//! with server verification against Amazon's roots, certificate dates checked) and a
//! small WebSocket client.
//!
//! Tasks: `wifi` keeps the station joined (backoff between attempts) and samples RSSI;
//! `net` runs the IP stack; `console` takes provisioning commands; `main` runs the
//! device and feeds the RTC watchdog: it samples on the device's schedule, connects
//! when the device says so (sampling on while it connects), sends what the device
//! builds and feeds it what the cloud sends.
#![no_std]
#![no_main]
#![deny(clippy::mem_forget)]

extern crate alloc;

mod console;
mod sensors;
mod sntp;
mod storage;
mod tls;
mod ws;

use core::convert::Infallible;
use core::ffi::CStr;
use core::future::Future;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicI32, Ordering};

use embassy_executor::Spawner;
use embassy_futures::select::{select, select3, Either, Either3};
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{TcpReader, TcpSocket, TcpWriter};
use embassy_net::{Runner, Stack, StackResources};
use embassy_time::{with_timeout, Duration, Instant, Timer};
use embedded_io_async::{ErrorType, Read, Write};
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::rtc_cntl::{Rtc, RwdtStage};
use esp_hal::timer::timg::TimerGroup;
use esp_hal::tsens::{self, TemperatureSensor};
use esp_hal::uart::{Config as UartConfig, UartRx};
use esp_hal::usb::usb_serial_jtag::UsbSerialJtag;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, Interface, WifiController,
};
use log::{debug, error, info, warn};
use mbedtls_rs::{
    Certificate, ClientSessionConfig, Session, SessionConfig, SessionError, Tls, X509,
};
use static_cell::StaticCell;
use telemetry_device::settings::Connection;
use telemetry_device::{
    sample_metrics, Action, Backoff, BackoffConfig, Config, Device, FrameKind, Incoming,
    IntervalPersistence, RestartCause, RestartNote, SettingKey, Settings, SplitMix64, TimeSource,
    TlsFailure, TlsFailures, TlsVerdict, WatchdogPlan,
};
use telemetry_protocol::MAX_MESSAGE_LEN;

use crate::sensors::Sensors;
use crate::ws::{Event, WsClient, WsError};

esp_bootloader_esp_idf::esp_app_desc!();

/// Build-time defaults of the settings (build.rs); flash overrides them.
const DEFAULTS: [(SettingKey, &str); 8] = [
    (SettingKey::WifiSsid, env!("FW_DEFAULT_WIFI_SSID")),
    (SettingKey::WifiPassword, env!("FW_DEFAULT_WIFI_PASSWORD")),
    (SettingKey::Url, env!("FW_DEFAULT_WSGW_URL")),
    (SettingKey::DeviceId, env!("FW_DEFAULT_DEVICE_ID")),
    (SettingKey::Token, env!("FW_DEFAULT_DEVICE_TOKEN")),
    (SettingKey::I2cSda, env!("FW_DEFAULT_I2C_SDA")),
    (SettingKey::I2cScl, env!("FW_DEFAULT_I2C_SCL")),
    (
        SettingKey::SampleIntervalMs,
        env!("FW_DEFAULT_SAMPLE_INTERVAL_MS"),
    ),
];

/// When the firmware was built (Unix seconds): the wall clock's floor.
const BUILD_UNIX_S: &str = env!("FW_BUILD_UNIX_S");

/// Amazon Root CA 1–4 and Starfield Services Root G2, PEM, NUL-terminated (build.rs).
static AMAZON_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/amazon_roots.pem"));

/// The RTC watchdog resets the chip after 60 s without a feed; the main loop wakes at
/// least every 5 s to feed it. The longest step it awaits without feeding is a send
/// held up by TCP (30 s socket timeout) or a connection attempt (20 s), after an SNTP
/// query of at most 12 s that ends with a feed.
const WATCHDOG: WatchdogPlan = WatchdogPlan {
    timeout_ms: 60_000,
    feed_every_ms: 5_000,
};
/// The longest the main loop awaits one step without feeding the watchdog.
const LONGEST_STEP_MS: u32 = 30_000 + 4_000;

/// Readings kept while offline: at the default 1 s sample interval, ~3 minutes; at
/// 10 s, ~33 minutes. Each takes ~150 bytes of RAM.
const OFFLINE_BUFFER: usize = 200;
/// TCP buffers: TLS records are reassembled by mbedTLS, so these can stay small.
const TCP_RX: usize = 4_096;
const TCP_TX: usize = 4_096;
/// The main heap (everything but mbedTLS): Wi-Fi needs ~60 KB of it.
const HEAP_RECLAIMED: usize = 64 * 1024;
const HEAP_MAIN: usize = 48 * 1024;
/// Re-ask SNTP this often (the crystal drifts some seconds a day).
const SNTP_EVERY_MS: u64 = 6 * 60 * 60 * 1_000;
/// After SNTP did not answer, ask again this much later at the earliest.
const SNTP_RETRY_MS: u64 = 60 * 1_000;

/// Last RSSI of the access point in dBm, or `RSSI_UNKNOWN` while not joined.
static RSSI: AtomicI32 = AtomicI32::new(RSSI_UNKNOWN);
const RSSI_UNKNOWN: i32 = i32::MIN;

/// Why the firmware reset itself, kept across the software reset in RTC fast memory
/// (`[magic, cause]`, see `telemetry_device::RestartNote`).
#[esp_hal::ram(unstable(rtc_fast, persistent))]
static mut RESTART_NOTE: [u32; 2] = [0; 2];

static NET_RESOURCES: StaticCell<StackResources<5>> = StaticCell::new();
static TLS_RNG: StaticCell<tls::RadioRng> = StaticCell::new();
static TLS: StaticCell<Tls<'static>> = StaticCell::new();
static SETTINGS: StaticCell<Settings> = StaticCell::new();
static CONSOLE_SETTINGS: StaticCell<Settings> = StaticCell::new();
static DEVICE: StaticCell<Device<OFFLINE_BUFFER>> = StaticCell::new();
static WS: StaticCell<WsClient> = StaticCell::new();
static OUT: StaticCell<[u8; MAX_MESSAGE_LEN]> = StaticCell::new();
static TCP_RX_BUF: StaticCell<[u8; TCP_RX]> = StaticCell::new();
static TCP_TX_BUF: StaticCell<[u8; TCP_TX]> = StaticCell::new();

/// Notes `cause` where the next boot finds it and resets the chip.
pub fn restart(cause: RestartCause) -> ! {
    let note = RestartNote::new(cause);
    // SAFETY: a plain volatile store to a static only this function and
    // `take_restart_note` (at boot, before any task runs) touch.
    unsafe { addr_of_mut!(RESTART_NOTE).write_volatile([note.magic, u32::from(note.code)]) };
    esp_hal::system::software_reset()
}

/// Reads and clears what the previous run noted before resetting itself.
fn take_restart_note() -> Option<RestartCause> {
    // SAFETY: see `restart`.
    let [magic, code] = unsafe { addr_of_mut!(RESTART_NOTE).read_volatile() };
    unsafe { addr_of_mut!(RESTART_NOTE).write_volatile([0; 2]) };
    RestartNote {
        magic,
        code: code as u8,
    }
    .cause()
}

/// esp-backtrace's `custom-halt` hook: it has printed the panic and its backtrace;
/// note it and reset instead of looping forever.
#[unsafe(no_mangle)]
fn custom_halt() -> ! {
    restart(RestartCause::Panic)
}

/// A TCP socket mbedTLS can split into read and write halves. It borrows the socket,
/// so the socket outlives a session that failed to start and can still be aborted.
struct Tcp<'s, 'a>(&'s mut TcpSocket<'a>);

impl ErrorType for Tcp<'_, '_> {
    type Error = embassy_net::tcp::Error;
}

impl Read for Tcp<'_, '_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf).await
    }
}

impl Write for Tcp<'_, '_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().await
    }
}

impl mbedtls_rs::Split for Tcp<'_, '_> {
    type Read<'b>
        = TcpReader<'b>
    where
        Self: 'b;
    type Write<'b>
        = TcpWriter<'b>
    where
        Self: 'b;

    fn split(&mut self) -> (TcpReader<'_>, TcpWriter<'_>) {
        self.0.split()
    }
}

/// Device uptime in milliseconds: the device logic's clock.
fn now_ms() -> u64 {
    Instant::now().as_millis()
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    // The watchdog first: from here on a stall resets the chip.
    let mut rtc = Rtc::new(peripherals.RTC_TIMER);
    if let Err(error) = WATCHDOG.validate(LONGEST_STEP_MS) {
        error!("watchdog plan: {error}");
    }
    rtc.rwdt.set_timeout(
        RwdtStage::Stage0,
        esp_hal::time::Duration::from_millis(WATCHDOG.timeout_ms.into()),
    );
    rtc.rwdt.enable();

    let chip_reason = esp_hal::system::reset_reason();
    let reset_reason =
        telemetry_device::reset_reason(chip_reason.map(|r| r as u32), take_restart_note());
    info!(
        "wsgw telemetry firmware {} (ESP32-C3): reset reason {reset_reason} ({chip_reason:?})",
        env!("CARGO_PKG_VERSION")
    );

    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: HEAP_RECLAIMED);
    esp_alloc::heap_allocator!(size: HEAP_MAIN);
    // mbedTLS's own arena and clock, before anything of mbedTLS runs.
    tls::install();

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    // Settings: build-time defaults, then what flash stores.
    let settings = SETTINGS.init(Settings::with_defaults(&DEFAULTS));
    let mut store = storage::open(peripherals.FLASH);
    if let Some(store) = store.as_mut() {
        match store.load(settings).await {
            Ok(report) => {
                info!("settings: {} stored values", report.loaded);
                if let Some(key) = report.refused {
                    warn!("settings: the stored {key} is not valid any more; using the default");
                }
            }
            Err(error) => warn!("settings: {error}; using the build-time defaults"),
        }
    }
    *console::STORE.lock().await = store;
    let settings: &'static Settings = settings;

    // The console runs whatever the configuration.
    let usb = UsbSerialJtag::new(peripherals.USB_DEVICE).into_async();
    let (usb_rx, _usb_tx) = usb.split();
    let uart_rx = match UartRx::new(peripherals.UART0, UartConfig::default()) {
        Ok(rx) => rx.with_rx(peripherals.GPIO20).into_async(),
        Err(error) => panic!("cannot configure the console UART: {error:?}"),
    };
    let console_settings = CONSOLE_SETTINGS.init(settings.clone());
    spawner.spawn(
        console::console_task(usb_rx, uart_rx, console_settings)
            .expect("the console task is spawned once"),
    );

    let connection = match settings.connection() {
        Ok(connection) => connection,
        Err(_) => unconfigured(&mut rtc, settings).await,
    };
    info!(
        "device {}, gateway {}{}",
        connection.device_id,
        settings.value(SettingKey::Url).unwrap_or(""),
        if connection.token.is_some() {
            " (with token)"
        } else {
            ""
        }
    );

    let wifi = match WifiController::new(peripherals.WIFI, Default::default()) {
        Ok(wifi) => wifi,
        Err(error) => panic!("cannot start Wi-Fi: {error:?}"),
    };
    let station = Interface::station();
    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    let (stack, runner) = embassy_net::new(
        station,
        embassy_net::Config::dhcpv4(Default::default()),
        NET_RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(
        wifi_task(wifi, seed, connection.wifi_ssid, connection.wifi_password)
            .expect("the wifi task is spawned once"),
    );
    spawner.spawn(net_task(runner).expect("the net task is spawned once"));

    // After Wi-Fi started: the hardware RNG is now a true RNG.
    let tls: &'static Tls<'static> = match Tls::new(TLS_RNG.init(tls::RadioRng(Rng::new()))) {
        Ok(tls) => TLS.init(tls),
        Err(error) => panic!("cannot start mbedTLS: {error:?}"),
    };
    let roots =
        CStr::from_bytes_with_nul(AMAZON_ROOTS_PEM).expect("build.rs NUL-terminates the bundle");
    let roots = match Certificate::new(X509::PEM(roots)) {
        Ok(roots) => roots,
        Err(error) => panic!("cannot parse the embedded root certificates: {error:?}"),
    };

    let chip = match TemperatureSensor::new(peripherals.TSENS, tsens::Config::default()) {
        Ok(sensor) => sensor,
        Err(error) => panic!("cannot start the temperature sensor: {error:?}"),
    };
    Timer::after_millis(1).await; // let the sensor settle
    let sensors = Sensors::new(chip, peripherals.I2C0, settings.i2c_pins());

    let build_ms = BUILD_UNIX_S.parse::<u64>().unwrap_or(0) * 1_000;
    let mut config = Config::new(&connection.device_id)
        .unwrap_or_else(|error| panic!("device_id: {error}"))
        .with_seed(seed.rotate_left(17))
        .with_reset_reason(reset_reason)
        .with_build_time_ms(build_ms);
    if let Some(interval) = settings.sample_interval_ms() {
        config = config.with_sample_interval_ms(interval);
    }
    let device = DEVICE.init_with(|| match Device::new(config, now_ms()) {
        Ok(device) => device,
        Err(error) => panic!("device settings: {error}"),
    });
    info!(
        "sampling every {} ms, heartbeat after {} s idle, renewing connections after {} min, {} readings kept offline",
        device.sample_interval_ms(),
        device.config().heartbeat_interval_ms / 1_000,
        device.config().max_connection_age_ms / 60_000,
        device.buffer_limit()
    );

    let mut app = App {
        interval: IntervalPersistence::new(settings.sample_interval_ms()),
        device,
        sensors,
        stack,
        tls,
        roots,
        connection,
        rtc,
        tls_failures: TlsFailures::default(),
        next_sntp_ms: 0,
        ws: WS.init_with(WsClient::new),
        out: OUT.init([0; MAX_MESSAGE_LEN]),
    };
    let mut buffers = TcpBuffers {
        rx: TCP_RX_BUF.init([0; TCP_RX]),
        tx: TCP_TX_BUF.init([0; TCP_TX]),
    };
    app.run(&mut buffers).await
}

/// A device without Wi-Fi, URL or device id: says what is missing every minute,
/// keeps the watchdog fed and the console open, never connects.
async fn unconfigured(rtc: &mut Rtc<'static>, settings: &Settings) -> ! {
    loop {
        let mut missing: heapless::String<64> = heapless::String::new();
        for key in settings.missing() {
            let _ = missing.push_str(key.name());
            let _ = missing.push(' ');
        }
        warn!(
            "not configured: {}missing; not connecting. On the serial console: set KEY VALUE for each, then reboot (README.md, Provisioning)",
            missing
        );
        for _ in 0..12 {
            rtc.rwdt.feed();
            Timer::after_millis(WATCHDOG.feed_every_ms.into()).await;
        }
    }
}

struct App {
    device: &'static mut Device<OFFLINE_BUFFER>,
    sensors: Sensors,
    stack: Stack<'static>,
    tls: &'static Tls<'static>,
    roots: Certificate<'static>,
    connection: Connection<'static>,
    rtc: Rtc<'static>,
    tls_failures: TlsFailures,
    interval: IntervalPersistence,
    next_sntp_ms: u64,
    ws: &'static mut WsClient,
    out: &'static mut [u8; MAX_MESSAGE_LEN],
}

/// The TCP socket's buffers, apart from [`App`] so a socket can borrow them while the
/// app is in use.
struct TcpBuffers {
    rx: &'static mut [u8; TCP_RX],
    tx: &'static mut [u8; TCP_TX],
}

/// Why a connection attempt failed (logged with `{:?}`).
#[derive(Debug)]
#[allow(dead_code, reason = "the fields are read by Debug, in the logs")]
enum ConnectError<E> {
    Dns(embassy_net::dns::Error),
    NoAddress,
    Tcp(embassy_net::tcp::ConnectError),
    Tls(SessionError),
    WebSocket(WsError<E>),
    TimedOut,
}

/// How a served connection ended.
enum Ended {
    /// Closed on purpose (renewal) or by the server: close TLS and TCP politely.
    Closed,
    /// The link or the peer failed: abort (RST), nothing polite gets through.
    Lost,
}

impl App {
    async fn run(&mut self, buffers: &mut TcpBuffers) -> ! {
        let mut last_report = 0u64;
        loop {
            self.rtc.rwdt.feed();
            let now = now_ms();
            if now >= last_report + 60_000 {
                last_report = now;
                report(self.device);
            }
            self.persist_interval(now).await;
            match self.device.poll(now, self.out) {
                Action::Sample => sample(self.device, &mut self.sensors).await,
                Action::Wait { until_ms } => {
                    let wake = WATCHDOG.wake_by(now, until_ms.min(last_report + 60_000));
                    Timer::at(at(wake)).await;
                }
                Action::Connect => self.connect_and_serve(buffers).await,
                // Only while connected; not reachable here.
                Action::Send(_) | Action::Close(_) => self.device.on_disconnected(now_ms()),
            }
        }
    }

    /// Stores the sample interval in effect once it settled (the dashboard's last
    /// `control` survives a reboot), without wearing the flash.
    async fn persist_interval(&mut self, now: u64) {
        let interval = self.device.sample_interval_ms();
        let Some(value) = self.interval.poll(now, interval) else {
            return;
        };
        let mut text: heapless::String<12> = heapless::String::new();
        let _ = core::fmt::write(&mut text, format_args!("{value}"));
        let mut guard = console::STORE.lock().await;
        if let Some(store) = guard.as_mut() {
            match store.save(SettingKey::SampleIntervalMs, Some(&text)).await {
                Ok(()) => debug!("stored the sample interval {value} ms"),
                Err(error) => warn!("cannot store the sample interval: {error}"),
            }
        }
        // Written or not (no partition, a failing flash): do not retry at once.
        self.interval.written(now, value);
    }

    /// Asks SNTP when the clock has no SNTP time yet (or it is six hours old),
    /// sampling meanwhile.
    async fn sync_clock(&mut self) {
        let now = now_ms();
        if now < self.next_sntp_ms {
            return;
        }
        let answer = sampling_while(
            self.device,
            &mut self.sensors,
            self.out,
            sntp::query(self.stack),
        )
        .await;
        self.rtc.rwdt.feed();
        match answer {
            Some((uptime, unix_ms)) => match self.device.on_sntp(uptime, unix_ms) {
                Ok(()) => {
                    info!("clock set by SNTP");
                    self.next_sntp_ms = now + SNTP_EVERY_MS;
                }
                Err(error) => {
                    warn!("SNTP time refused: {error}");
                    self.next_sntp_ms = now + SNTP_RETRY_MS;
                }
            },
            None => {
                warn!(
                    "no SNTP server answered; certificates are checked against {:?}",
                    self.device.clock().source()
                );
                self.next_sntp_ms = now + SNTP_RETRY_MS;
            }
        }
    }

    /// One connection: DNS, TCP, (TLS), the WebSocket handshake, then serving until it
    /// ends. Reports every outcome to the device.
    async fn connect_and_serve(&mut self, buffers: &mut TcpBuffers) {
        let started = now_ms();
        if !self.stack.is_config_up() {
            // Not a failure: Wi-Fi or DHCP is not there yet.
            self.device.on_network_unavailable(now_ms());
            debug!("no network yet (Wi-Fi or DHCP)");
            return;
        }
        let endpoint = self.connection.endpoint;
        if endpoint.tls
            && (self.device.clock().source() != TimeSource::Sntp || now_ms() >= self.next_sntp_ms)
        {
            self.sync_clock().await;
        }
        let timeout = Duration::from_millis(self.device.config().connect_timeout_ms.into());
        let deadline = Instant::now() + timeout;

        let mut socket = TcpSocket::new(self.stack, &mut buffers.rx[..], &mut buffers.tx[..]);
        // A dead peer (Wi-Fi gone, NAT dropped us) is noticed within a minute even
        // when nothing is being sent.
        socket.set_timeout(Some(Duration::from_secs(30)));
        socket.set_keep_alive(Some(Duration::from_secs(20)));
        let stack = self.stack;
        let tcp = async {
            let addresses = stack
                .dns_query(endpoint.host, DnsQueryType::A)
                .await
                .map_err(ConnectError::<Infallible>::Dns)?;
            let address = *addresses.first().ok_or(ConnectError::NoAddress)?;
            info!(
                "connecting to {}:{} ({})",
                endpoint.host, endpoint.port, address
            );
            socket
                .connect((address, endpoint.port))
                .await
                .map_err(ConnectError::Tcp)
        };
        let tcp = with_deadline(deadline, tcp);
        if let Err(error) = sampling_while(self.device, &mut self.sensors, self.out, tcp).await {
            // Never leave a half-open connection behind at the gateway.
            socket.abort();
            let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
            connect_failed(self.device, &error);
            return;
        }

        let target = match endpoint.device_target(&self.connection.device_id, self.connection.token)
        {
            Ok(target) => target,
            Err(error) => {
                error!("request target: {error}");
                socket.abort();
                self.device.on_connect_failed(now_ms());
                return;
            }
        };
        let host = match endpoint.host_header() {
            Ok(host) => host,
            Err(error) => {
                error!("host header: {error}");
                socket.abort();
                self.device.on_connect_failed(now_ms());
                return;
            }
        };
        let mut origin: heapless::String<270> = heapless::String::new();
        let _ = origin.push_str(if endpoint.tls { "https://" } else { "http://" });
        let _ = origin.push_str(&host);

        if endpoint.tls {
            let started_tls = self
                .serve_tls(&mut socket, started, deadline, &host, &origin, &target)
                .await;
            if !started_tls {
                socket.abort();
                let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
            }
        } else {
            let ws = &mut *self.ws;
            let result = {
                let (mut reader, mut writer) = socket.split();
                let handshake = async {
                    ws.handshake(&mut reader, &mut writer, &host, &origin, &target)
                        .await
                        .map_err(ConnectError::WebSocket)
                };
                let handshake = with_deadline(deadline, handshake);
                match sampling_while(self.device, &mut self.sensors, self.out, handshake).await {
                    Ok(server_time) => {
                        connected(self.device, started, server_time, false);
                        Ok(self.serve(reader, writer).await)
                    }
                    Err(error) => Err(error),
                }
            };
            match result {
                Ok(Ended::Closed) => {
                    socket.close();
                    let _ = with_timeout(Duration::from_secs(2), socket.flush()).await;
                }
                Ok(Ended::Lost) => {
                    socket.abort();
                    let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
                }
                Err(error) => {
                    socket.abort();
                    let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
                    connect_failed(self.device, &error);
                }
            }
        }
    }

    /// TLS, the WebSocket handshake and serving, over the connected `socket`; ends
    /// the connection itself, except when the TLS session could not even be created
    /// (returns `false`: the caller aborts the socket).
    async fn serve_tls(
        &mut self,
        socket: &mut TcpSocket<'_>,
        started: u64,
        deadline: Instant,
        host: &str,
        origin: &str,
        target: &str,
    ) -> bool {
        let now = now_ms();
        tls::set_certificate_time(now, self.device.clock().certificate_time_ms(now));
        let mut server_name: heapless::Vec<u8, 256> = heapless::Vec::new();
        let _ = server_name.extend_from_slice(self.connection.endpoint.host.as_bytes());
        let _ = server_name.push(0);
        let Ok(server_name) = CStr::from_bytes_with_nul(&server_name) else {
            // Unreachable: a parsed host has no NUL byte.
            self.device.on_connect_failed(now_ms());
            return false;
        };
        let config = SessionConfig::Client(ClientSessionConfig {
            ca_chain: Some(self.roots.clone()),
            server_name: Some(server_name),
            ..ClientSessionConfig::new()
        });
        let mut session = match Session::new(self.tls.reference(), Tcp(socket), &config) {
            Ok(session) => session,
            Err(error) => {
                // Only an allocation failure gets here, before TLS sent anything; the
                // caller aborts the socket.
                self.tls_failed(&ConnectError::<Infallible>::Tls(error));
                return false;
            }
        };
        let ws = &mut *self.ws;
        let result = {
            let handshake = async {
                let (mut reader, mut writer) = session.split().await.map_err(ConnectError::Tls)?;
                let server_time = ws
                    .handshake(&mut reader, &mut writer, host, origin, target)
                    .await
                    .map_err(ConnectError::WebSocket)?;
                Ok((reader, writer, server_time))
            };
            let handshake = with_deadline(deadline, handshake);
            match sampling_while(self.device, &mut self.sensors, self.out, handshake).await {
                Ok((reader, writer, server_time)) => {
                    self.tls_failures.on_established();
                    connected(self.device, started, server_time, true);
                    Ok(self.serve(reader, writer).await)
                }
                Err(error) => Err(error),
            }
        };
        match result {
            Ok(Ended::Closed) => {
                // close_notify, then FIN.
                let _ = with_timeout(Duration::from_secs(2), session.close()).await;
                session.stream().0.close();
                let _ = with_timeout(Duration::from_secs(2), session.stream().0.flush()).await;
            }
            Ok(Ended::Lost) => {
                session.stream().0.abort();
                let _ = with_timeout(Duration::from_secs(1), session.stream().0.flush()).await;
            }
            Err(error) => {
                let established = session.tls_version().is_some();
                let verification = session.tls_verification_details();
                session.stream().0.abort();
                let _ = with_timeout(Duration::from_secs(1), session.stream().0.flush()).await;
                if verification != 0 {
                    // MBEDTLS_X509_BADCERT_* bits: 0x01 expired, 0x0200 not yet valid.
                    warn!(
                        "certificate verification failed: flags {verification:#x} (clock {:?})",
                        self.device.clock().source()
                    );
                }
                if established {
                    // TLS worked; the WebSocket handshake did not.
                    self.tls_failures.on_established();
                    connect_failed(self.device, &error);
                } else {
                    self.tls_failed(&error);
                }
            }
        }
        true
    }

    /// Serves an open connection until it ends (see [`serve_connection`]).
    async fn serve<R, W>(&mut self, reader: R, writer: W) -> Ended
    where
        R: Read,
        W: Write<Error = R::Error>,
        R::Error: core::fmt::Debug,
    {
        serve_connection(self, reader, writer).await
    }

    /// A TLS attempt failed after TCP connected: counts it and restarts the device
    /// when the failures call for it.
    fn tls_failed<E: core::fmt::Debug>(&mut self, error: &ConnectError<E>) {
        let kind = match error {
            ConnectError::Tls(SessionError::MbedTls(code))
                if tls::is_out_of_memory(code.code()) =>
            {
                TlsFailure::OutOfMemory
            }
            _ => TlsFailure::Handshake,
        };
        connect_failed(self.device, error);
        if self.tls_failures.on_failure(kind) == TlsVerdict::Restart {
            error!(
                "{} consecutive TLS failures (largest free block in the TLS arena {} B): restarting",
                self.tls_failures.consecutive(),
                tls::largest_free_block(&tls::ARENA, tls::ARENA_SIZE)
            );
            restart(RestartCause::TlsFailures);
        }
    }
}

fn connected(
    device: &mut Device<OFFLINE_BUFFER>,
    started: u64,
    server_time: Option<u64>,
    tls: bool,
) {
    device.on_connected(now_ms(), server_time);
    let stats = device.stats();
    info!(
        "connected ({}) in {} ms; clock {:?}; {} buffered readings to send",
        if tls {
            "wss, server verified"
        } else {
            "ws, no TLS"
        },
        now_ms() - started,
        device.clock().source(),
        stats.buffered
    );
}

fn connect_failed<E: core::fmt::Debug>(
    device: &mut Device<OFFLINE_BUFFER>,
    error: &ConnectError<E>,
) {
    device.on_connect_failed(now_ms());
    warn!(
        "connection attempt failed: {error:?}; next attempt in {} ms ({} buffered, {} dropped)",
        retry_in(device),
        device.stats().buffered,
        device.stats().readings_dropped
    );
}

/// Serves an open connection until it ends; the device is told how it ended.
async fn serve_connection<R, W>(app: &mut App, mut reader: R, mut writer: W) -> Ended
where
    R: Read,
    W: Write<Error = R::Error>,
    R::Error: core::fmt::Debug,
{
    let App {
        device,
        sensors,
        rtc,
        ws,
        out,
        stack,
        ..
    } = app;
    let (device, ws, out, stack) = (&mut **device, &mut **ws, &mut **out, *stack);
    loop {
        rtc.rwdt.feed();
        let now = now_ms();
        match device.poll(now, out) {
            Action::Sample => sample(device, sensors).await,
            Action::Send(frame) => match ws.send_text(&mut writer, &out[..frame.len]).await {
                Ok(()) => {
                    device.on_sent(now_ms());
                    match frame.kind {
                        FrameKind::Reading { seq, backlog } if backlog > 0 => {
                            debug!("sent reading {seq} ({backlog} more buffered)");
                        }
                        FrameKind::Reading { seq, .. } => debug!("sent reading {seq}"),
                        FrameKind::ControlAck { sample_interval_ms } => {
                            info!("acknowledged: sampling every {sample_interval_ms} ms");
                        }
                        FrameKind::Heartbeat { .. } => debug!("heartbeat sent"),
                    }
                }
                Err(error) => {
                    device.on_disconnected(now_ms());
                    warn!(
                        "connection lost while sending: {error:?}; reconnecting in {} ms",
                        retry_in(device)
                    );
                    return Ended::Lost;
                }
            },
            Action::Close(reason) => {
                info!("renewing the connection ({reason:?})");
                close_handshake(device, ws, &mut reader, &mut writer).await;
                device.on_disconnected(now_ms());
                return Ended::Closed;
            }
            Action::Connect => {
                device.on_disconnected(now_ms());
                return Ended::Lost;
            }
            Action::Wait { until_ms } => {
                let woke = select3(
                    Timer::at(at(WATCHDOG.wake_by(now, until_ms))),
                    ws.next_event(&mut reader, &mut writer),
                    stack.wait_link_down(),
                )
                .await;
                match woke {
                    Either3::First(()) => {}
                    Either3::Second(Ok(Event::Text(text))) => {
                        let incoming = device.on_text(now_ms(), text);
                        log_incoming(&incoming);
                    }
                    Either3::Second(Ok(Event::Closed(code))) => {
                        device.on_disconnected(now_ms());
                        info!(
                            "the gateway closed the connection ({code:?}); reconnecting in {} ms",
                            retry_in(device)
                        );
                        return Ended::Closed;
                    }
                    Either3::Second(Err(error)) => {
                        device.on_disconnected(now_ms());
                        warn!(
                            "connection lost: {error:?}; reconnecting in {} ms",
                            retry_in(device)
                        );
                        return Ended::Lost;
                    }
                    Either3::Third(()) => {
                        device.on_disconnected(now_ms());
                        warn!("Wi-Fi link down; reconnecting in {} ms", retry_in(device));
                        return Ended::Lost;
                    }
                }
            }
        }
    }
}

/// Sends our close frame and reads until the server's answers it (2 s at most),
/// handing every message that arrives meanwhile to the device: a `control` sent
/// during a renewal is applied and acknowledged on the next connection.
async fn close_handshake<R, W>(
    device: &mut Device<OFFLINE_BUFFER>,
    ws: &mut WsClient,
    reader: &mut R,
    writer: &mut W,
) where
    R: Read,
    W: Write<Error = R::Error>,
{
    let _ = with_timeout(Duration::from_secs(2), ws.close(writer, "renewing")).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match embassy_time::with_deadline(deadline, ws.next_event(reader, writer)).await {
            Ok(Ok(Event::Text(text))) => {
                let incoming = device.on_text(now_ms(), text);
                log_incoming(&incoming);
            }
            Ok(Ok(Event::Closed(_))) | Ok(Err(_)) | Err(_) => return,
        }
    }
}

fn log_incoming(incoming: &Incoming) {
    match incoming {
        Incoming::ControlApplied { sample_interval_ms } => {
            info!("control: sampling every {sample_interval_ms} ms from now");
        }
        Incoming::ControlRejected { requested, kept_ms } => {
            warn!("control: {requested} ms is out of bounds, keeping {kept_ms} ms");
        }
        Incoming::CloudError(reply) => {
            warn!(
                "the cloud refused a message: {} ({})",
                reply.code, reply.message
            );
        }
        Incoming::Unknown => debug!("ignored a message of an unknown type"),
        Incoming::Malformed(error) => debug!("ignored a malformed frame: {error}"),
    }
}

/// Runs `work` while taking the samples that fall due meanwhile.
async fn sampling_while<F: Future>(
    device: &mut Device<OFFLINE_BUFFER>,
    sensors: &mut Sensors,
    out: &mut [u8; MAX_MESSAGE_LEN],
    work: F,
) -> F::Output {
    let sampler = async {
        loop {
            match device.poll(now_ms(), out) {
                Action::Sample => sample(device, sensors).await,
                Action::Wait { until_ms } => Timer::at(at(until_ms)).await,
                // While connecting the device only samples or waits.
                _ => Timer::after_millis(100).await,
            }
        }
    };
    match select(work, sampler).await {
        Either::First(output) => output,
        Either::Second(()) => unreachable!("the sampler never ends"),
    }
}

async fn with_deadline<T, E, F>(deadline: Instant, work: F) -> Result<T, ConnectError<E>>
where
    F: Future<Output = Result<T, ConnectError<E>>>,
{
    match embassy_time::with_deadline(deadline, work).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::TimedOut),
    }
}

/// Reads the sensors into the device (see `telemetry_device::sample_metrics`).
async fn sample(device: &mut Device<OFFLINE_BUFFER>, sensors: &mut Sensors) {
    let now = now_ms();
    let rssi = RSSI.load(Ordering::Relaxed);
    let inputs = sensors
        .read(
            now,
            (rssi != RSSI_UNKNOWN).then_some(rssi),
            device.stats().readings_dropped,
        )
        .await;
    let metrics = sample_metrics(&inputs);
    match device.on_sample(now, &metrics) {
        Ok(seq) => debug!("sample {seq}: {metrics:?}"),
        Err(error) => warn!("sample refused: {error}"),
    }
}

fn retry_in(device: &Device<OFFLINE_BUFFER>) -> u64 {
    match device.link() {
        telemetry_device::Link::Offline { retry_at_ms } => retry_at_ms.saturating_sub(now_ms()),
        _ => 0,
    }
}

fn report(device: &Device<OFFLINE_BUFFER>) {
    let s = device.stats();
    info!(
        "stats: {} samples, {} sent ({} resent), {} buffered, {} dropped, {} connects, {} failed attempts, {} network waits, {} renewals, {} heartbeats, interval {} ms, clock {:?}, heap {} B free (largest block {} B), TLS arena largest block {} B of {} B",
        s.samples,
        s.readings_sent,
        s.readings_resent,
        s.buffered,
        s.readings_dropped,
        s.connects,
        s.connect_failures,
        s.network_waits,
        s.renewals,
        s.heartbeats_sent,
        device.sample_interval_ms(),
        device.clock().source(),
        esp_alloc::HEAP.free(),
        tls::largest_free_block(&esp_alloc::HEAP, HEAP_RECLAIMED + HEAP_MAIN),
        tls::largest_free_block(&tls::ARENA, tls::ARENA_SIZE),
        tls::ARENA_SIZE
    );
}

/// Keeps the station joined, with backoff between attempts, and samples the RSSI.
#[embassy_executor::task]
async fn wifi_task(
    mut controller: WifiController<'static>,
    seed: u64,
    ssid: &'static str,
    password: &'static str,
) {
    let authentication = if password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        match password.try_into() {
            Ok(password) => AuthenticationMethodConfig::Wpa2Personal(password),
            Err(_) => {
                error!("Wi-Fi: the passphrase does not fit; not joining");
                return;
            }
        }
    };
    let Ok(ssid_config) = ssid.try_into() else {
        error!("Wi-Fi: the SSID does not fit; not joining");
        return;
    };
    let station = StationConfig::default()
        .with_ssid(ssid_config)
        .with_authentication(authentication);
    if let Err(error) = controller.set_config(&WifiConfig::Station(station)) {
        error!("Wi-Fi: cannot configure the station: {error:?}");
    }
    let mut backoff = Backoff::new(BackoffConfig {
        initial_ms: 1_000,
        max_ms: 30_000,
        stable_after_ms: 30_000,
    });
    let mut rng = SplitMix64::new(seed);
    loop {
        info!("Wi-Fi: joining {ssid:?}");
        match controller.connect_async().await {
            Ok(joined) => {
                info!("Wi-Fi: joined {ssid:?} on channel {}", joined.channel);
                backoff.reset();
                loop {
                    if let Ok(rssi) = controller.rssi() {
                        RSSI.store(rssi, Ordering::Relaxed);
                    }
                    match select(
                        controller.wait_for_disconnect_async(),
                        Timer::after_secs(10),
                    )
                    .await
                    {
                        Either::First(Ok(left)) => {
                            warn!("Wi-Fi: disconnected ({:?})", left.reason);
                            break;
                        }
                        Either::First(Err(error)) => {
                            warn!("Wi-Fi: disconnected ({error:?})");
                            break;
                        }
                        Either::Second(()) => {}
                    }
                }
                RSSI.store(RSSI_UNKNOWN, Ordering::Relaxed);
            }
            Err(error) => warn!("Wi-Fi: could not join {ssid:?}: {error:?}"),
        }
        let delay = backoff.fail(&mut rng);
        info!("Wi-Fi: next attempt in {delay} ms");
        Timer::after_millis(delay.into()).await;
    }
}

/// Runs the IP stack (DHCP, DNS, TCP, UDP).
#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}
