//! wsgw telemetry firmware for the ESP32-C3.
//!
//! Wires the hardware-free device logic (`telemetry-device`, the same state machine the
//! std simulator runs) to esp-hal (on-chip temperature sensor, uptime), esp-radio
//! (Wi-Fi station, RSSI), embassy-net (DHCP, DNS, TCP), mbedTLS (TLS 1.2/1.3 with
//! server verification against Amazon's roots) and a small WebSocket client.
//!
//! Tasks: `wifi` keeps the station joined (backoff between attempts) and samples RSSI;
//! `net` runs the IP stack; `main` runs the device: it samples on the device's
//! schedule, connects when the device says so (sampling on while it connects), sends
//! what the device builds and feeds it what the cloud sends.
#![no_std]
#![no_main]
#![deny(clippy::mem_forget)]

extern crate alloc;

mod ws;

use core::convert::Infallible;
use core::ffi::CStr;
use core::future::Future;
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
use esp_hal::timer::timg::TimerGroup;
use esp_hal::tsens::{self, TemperatureSensor};
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, Interface, WifiController,
};
use log::{debug, error, info, warn};
use mbedtls_rs::{Certificate, ClientSessionConfig, Session, SessionConfig, Tls, X509};
use static_cell::StaticCell;
use telemetry_device::{
    Action, Backoff, BackoffConfig, Config, Device, Endpoint, FrameKind, Incoming, SplitMix64,
};
use telemetry_protocol::MAX_MESSAGE_LEN;

use crate::ws::{Event, WsClient, WsError};

esp_bootloader_esp_idf::esp_app_desc!();

// Build-time configuration (see build.rs and README.md).
const WIFI_SSID: &str = env!("FW_WIFI_SSID");
const WIFI_PASSWORD: &str = env!("FW_WIFI_PASSWORD");
const WSGW_URL: &str = env!("FW_WSGW_URL");
const DEVICE_ID: &str = env!("FW_DEVICE_ID");
const DEVICE_TOKEN: &str = env!("FW_DEVICE_TOKEN");

/// Amazon Root CA 1–4 and Starfield Services Root G2, PEM, NUL-terminated (build.rs).
static AMAZON_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/amazon_roots.pem"));

/// Readings kept while offline: at the default 1 s sample interval, ~3 minutes; at
/// 10 s, ~33 minutes. Each takes ~150 bytes of RAM.
const OFFLINE_BUFFER: usize = 200;
/// TCP buffers: TLS records are reassembled by mbedTLS, so these can stay small.
const TCP_RX: usize = 4_096;
const TCP_TX: usize = 4_096;

/// Last RSSI of the access point in dBm, or `RSSI_UNKNOWN` while not joined.
static RSSI: AtomicI32 = AtomicI32::new(RSSI_UNKNOWN);
const RSSI_UNKNOWN: i32 = i32::MIN;

static NET_RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
static TLS_RNG: StaticCell<RadioRng> = StaticCell::new();
static DEVICE: StaticCell<Device<OFFLINE_BUFFER>> = StaticCell::new();
static WS: StaticCell<WsClient> = StaticCell::new();
static OUT: StaticCell<[u8; MAX_MESSAGE_LEN]> = StaticCell::new();
static TCP_RX_BUF: StaticCell<[u8; TCP_RX]> = StaticCell::new();
static TCP_TX_BUF: StaticCell<[u8; TCP_TX]> = StaticCell::new();

/// esp-hal's hardware RNG as the `CryptoRng` mbedTLS needs. With the radio on, the RNG
/// mixes RF noise into its output and produces true random numbers (esp-hal's `rng`
/// documentation); it is only created after Wi-Fi is started.
struct RadioRng(Rng);

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

/// A TCP socket mbedTLS can split into read and write halves.
struct Tcp<'a>(TcpSocket<'a>);

impl ErrorType for Tcp<'_> {
    type Error = embassy_net::tcp::Error;
}

impl Read for Tcp<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf).await
    }
}

impl Write for Tcp<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().await
    }
}

impl mbedtls_rs::Split for Tcp<'_> {
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
    // Wi-Fi needs ~60 KB, mbedTLS ~45 KB per session (two 16 KB record buffers).
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 96 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    info!(
        "wsgw telemetry firmware {} (ESP32-C3): device {DEVICE_ID}, gateway {WSGW_URL}",
        env!("CARGO_PKG_VERSION")
    );
    let endpoint = Endpoint::parse(WSGW_URL).expect("WSGW_URL was checked by build.rs");

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
    spawner.spawn(wifi_task(wifi, seed).expect("the wifi task is spawned once"));
    spawner.spawn(net_task(runner).expect("the net task is spawned once"));

    // After Wi-Fi started: the hardware RNG is now a true RNG.
    let tls = match Tls::new(TLS_RNG.init(RadioRng(Rng::new()))) {
        Ok(tls) => tls,
        Err(error) => panic!("cannot start mbedTLS: {error:?}"),
    };
    let roots =
        CStr::from_bytes_with_nul(AMAZON_ROOTS_PEM).expect("build.rs NUL-terminates the bundle");
    let roots = match Certificate::new(X509::PEM(roots)) {
        Ok(roots) => roots,
        Err(error) => panic!("cannot parse the embedded root certificates: {error:?}"),
    };

    let sensor = match TemperatureSensor::new(peripherals.TSENS, tsens::Config::default()) {
        Ok(sensor) => sensor,
        Err(error) => panic!("cannot start the temperature sensor: {error:?}"),
    };
    Timer::after_millis(1).await; // let the sensor settle

    let config = match Config::new(DEVICE_ID) {
        Ok(config) => config.with_seed(seed.rotate_left(17)),
        Err(error) => panic!("DEVICE_ID: {error}"),
    };
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
        device,
        sensor,
        stack,
        tls,
        roots,
        endpoint,
        ws: WS.init_with(WsClient::new),
        out: OUT.init([0; MAX_MESSAGE_LEN]),
        tcp_rx: TCP_RX_BUF.init([0; TCP_RX]),
        tcp_tx: TCP_TX_BUF.init([0; TCP_TX]),
    };
    app.run().await
}

struct App {
    device: &'static mut Device<OFFLINE_BUFFER>,
    sensor: TemperatureSensor<'static>,
    stack: Stack<'static>,
    tls: Tls<'static>,
    roots: Certificate<'static>,
    endpoint: Endpoint<'static>,
    ws: &'static mut WsClient,
    out: &'static mut [u8; MAX_MESSAGE_LEN],
    tcp_rx: &'static mut [u8; TCP_RX],
    tcp_tx: &'static mut [u8; TCP_TX],
}

/// Why a connection attempt failed (logged with `{:?}`).
#[derive(Debug)]
#[allow(dead_code, reason = "the fields are read by Debug, in the logs")]
enum ConnectError<E> {
    Dns(embassy_net::dns::Error),
    NoAddress,
    Tcp(embassy_net::tcp::ConnectError),
    Tls(mbedtls_rs::SessionError),
    WebSocket(WsError<E>),
    TimedOut,
}

impl App {
    async fn run(&mut self) -> ! {
        let mut last_report = 0u64;
        loop {
            let now = now_ms();
            if now >= last_report + 60_000 {
                last_report = now;
                report(self.device);
            }
            match self.device.poll(now, self.out) {
                Action::Sample => sample(self.device, &self.sensor),
                Action::Wait { until_ms } => {
                    Timer::at(at(until_ms.min(last_report + 60_000))).await;
                }
                Action::Connect => self.connect_and_serve().await,
                // Only while connected; not reachable here.
                Action::Send(_) | Action::Close(_) => self.device.on_disconnected(now_ms()),
            }
        }
    }

    /// One connection: DNS, TCP, (TLS), the WebSocket handshake, then serving until it
    /// ends. Reports every outcome to the device.
    async fn connect_and_serve(&mut self) {
        let started = now_ms();
        if !self.stack.is_config_up() {
            self.device.on_connect_failed(now_ms());
            info!(
                "no network yet (Wi-Fi or DHCP); next attempt in {} ms",
                retry_in(self.device)
            );
            return;
        }
        let timeout = Duration::from_millis(self.device.config().connect_timeout_ms.into());
        let deadline = Instant::now() + timeout;

        let mut socket = TcpSocket::new(self.stack, self.tcp_rx, self.tcp_tx);
        // A dead peer (Wi-Fi gone, NAT dropped us) is noticed within a minute even
        // when nothing is being sent.
        socket.set_timeout(Some(Duration::from_secs(30)));
        socket.set_keep_alive(Some(Duration::from_secs(20)));
        let endpoint = self.endpoint;
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
        if let Err(error) = sampling_while(self.device, &self.sensor, self.out, tcp).await {
            connect_failed(self.device, &error);
            return;
        }

        let target = match endpoint.device_target(DEVICE_ID, Some(DEVICE_TOKEN)) {
            Ok(target) => target,
            Err(error) => panic!("request target: {error}"),
        };
        let host = endpoint.host_header().expect("checked by build.rs");
        let mut origin: heapless::String<270> = heapless::String::new();
        let _ = origin.push_str(if endpoint.tls { "https://" } else { "http://" });
        let _ = origin.push_str(&host);

        if endpoint.tls {
            let mut server_name: heapless::Vec<u8, 256> = heapless::Vec::new();
            let _ = server_name.extend_from_slice(endpoint.host.as_bytes());
            let _ = server_name.push(0);
            let server_name =
                CStr::from_bytes_with_nul(&server_name).expect("a host has no NUL byte");
            let config = SessionConfig::Client(ClientSessionConfig {
                ca_chain: Some(self.roots.clone()),
                server_name: Some(server_name),
                ..ClientSessionConfig::new()
            });
            let mut session = match Session::new(self.tls.reference(), Tcp(socket), &config) {
                Ok(session) => session,
                Err(error) => {
                    connect_failed(self.device, &ConnectError::<Infallible>::Tls(error));
                    return;
                }
            };
            let ws = &mut *self.ws;
            let handshake = async {
                let (mut reader, mut writer) = session.split().await.map_err(ConnectError::Tls)?;
                let server_time = ws
                    .handshake(&mut reader, &mut writer, &host, &origin, &target)
                    .await
                    .map_err(ConnectError::WebSocket)?;
                Ok((reader, writer, server_time))
            };
            let handshake = with_deadline(deadline, handshake);
            let result = sampling_while(self.device, &self.sensor, self.out, handshake).await;
            match result {
                Ok((reader, writer, server_time)) => {
                    connected(self.device, started, server_time, true);
                    serve(
                        self.device,
                        &self.sensor,
                        self.ws,
                        self.out,
                        stack,
                        reader,
                        writer,
                    )
                    .await;
                }
                Err(error) => connect_failed(self.device, &error),
            }
        } else {
            let (mut reader, mut writer) = socket.split();
            let ws = &mut *self.ws;
            let handshake = async {
                ws.handshake(&mut reader, &mut writer, &host, &origin, &target)
                    .await
                    .map_err(ConnectError::WebSocket)
            };
            let handshake = with_deadline(deadline, handshake);
            let result = sampling_while(self.device, &self.sensor, self.out, handshake).await;
            match result {
                Ok(server_time) => {
                    connected(self.device, started, server_time, false);
                    serve(
                        self.device,
                        &self.sensor,
                        self.ws,
                        self.out,
                        stack,
                        reader,
                        writer,
                    )
                    .await;
                }
                Err(error) => connect_failed(self.device, &error),
            }
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
        "connected ({}) in {} ms; clock {}; {} buffered readings to send",
        if tls {
            "wss, server verified"
        } else {
            "ws, no TLS"
        },
        now_ms() - started,
        if server_time.is_some() {
            "set from the server's Date"
        } else {
            "unknown (ts_ms 0)"
        },
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
async fn serve<R, W>(
    device: &mut Device<OFFLINE_BUFFER>,
    sensor: &TemperatureSensor<'static>,
    ws: &mut WsClient,
    out: &mut [u8; MAX_MESSAGE_LEN],
    stack: Stack<'static>,
    mut reader: R,
    mut writer: W,
) where
    R: Read,
    W: Write<Error = R::Error>,
    R::Error: core::fmt::Debug,
{
    loop {
        match device.poll(now_ms(), out) {
            Action::Sample => sample(device, sensor),
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
                    return;
                }
            },
            Action::Close(reason) => {
                info!("renewing the connection ({reason:?})");
                let _ =
                    with_timeout(Duration::from_secs(2), ws.close(&mut writer, "renewing")).await;
                let _ = with_timeout(
                    Duration::from_secs(2),
                    ws.next_event(&mut reader, &mut writer),
                )
                .await;
                device.on_disconnected(now_ms());
                return;
            }
            Action::Connect => {
                device.on_disconnected(now_ms());
                return;
            }
            Action::Wait { until_ms } => {
                let woke = select3(
                    Timer::at(at(until_ms)),
                    ws.next_event(&mut reader, &mut writer),
                    stack.wait_link_down(),
                )
                .await;
                match woke {
                    Either3::First(()) => {}
                    Either3::Second(Ok(Event::Text(text))) => {
                        match device.on_text(now_ms(), text) {
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
                            Incoming::Malformed(error) => {
                                debug!("ignored a malformed frame: {error}")
                            }
                        }
                    }
                    Either3::Second(Ok(Event::Closed(code))) => {
                        device.on_disconnected(now_ms());
                        info!(
                            "the gateway closed the connection ({code:?}); reconnecting in {} ms",
                            retry_in(device)
                        );
                        return;
                    }
                    Either3::Second(Err(error)) => {
                        device.on_disconnected(now_ms());
                        warn!(
                            "connection lost: {error:?}; reconnecting in {} ms",
                            retry_in(device)
                        );
                        return;
                    }
                    Either3::Third(()) => {
                        device.on_disconnected(now_ms());
                        warn!("Wi-Fi link down; reconnecting in {} ms", retry_in(device));
                        return;
                    }
                }
            }
        }
    }
}

/// Runs `work` while taking the samples that fall due meanwhile.
async fn sampling_while<F: Future>(
    device: &mut Device<OFFLINE_BUFFER>,
    sensor: &TemperatureSensor<'static>,
    out: &mut [u8; MAX_MESSAGE_LEN],
    work: F,
) -> F::Output {
    let sampler = async {
        loop {
            match device.poll(now_ms(), out) {
                Action::Sample => sample(device, sensor),
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

/// Reads the sensors into the device: chip temperature, uptime, RSSI when joined, and
/// the count of readings dropped from the offline buffer.
fn sample(device: &mut Device<OFFLINE_BUFFER>, sensor: &TemperatureSensor<'static>) {
    let now = now_ms();
    let temperature = sensor.get_temperature().to_celsius();
    let mut readings: heapless::Vec<(&'static str, f64), 4> = heapless::Vec::new();
    if temperature.is_finite() {
        let _ = readings.push(("temperature_c", round2(f64::from(temperature))));
    }
    let _ = readings.push(("uptime_s", (now / 1_000) as f64));
    let rssi = RSSI.load(Ordering::Relaxed);
    if rssi != RSSI_UNKNOWN {
        let _ = readings.push(("rssi_dbm", f64::from(rssi)));
    }
    let _ = readings.push((
        "offline_dropped",
        f64::from(device.stats().readings_dropped),
    ));
    match device.on_sample(now, &readings) {
        Ok(seq) => debug!("sample {seq}: {temperature:.2} °C, RSSI {rssi}"),
        Err(error) => warn!("sample refused: {error}"),
    }
}

/// Rounds to two decimals (no `f64::round` without std).
fn round2(value: f64) -> f64 {
    let scaled = value * 100.0;
    let rounded = if scaled >= 0.0 {
        scaled + 0.5
    } else {
        scaled - 0.5
    };
    (rounded as i64) as f64 / 100.0
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
        "stats: {} samples, {} sent ({} resent), {} buffered, {} dropped, {} connects, {} failed attempts, {} renewals, {} heartbeats, interval {} ms, free heap {} B",
        s.samples,
        s.readings_sent,
        s.readings_resent,
        s.buffered,
        s.readings_dropped,
        s.connects,
        s.connect_failures,
        s.renewals,
        s.heartbeats_sent,
        device.sample_interval_ms(),
        esp_alloc::HEAP.free()
    );
}

/// Keeps the station joined, with backoff between attempts, and samples the RSSI.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>, seed: u64) {
    let authentication = if WIFI_PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(
            WIFI_PASSWORD.try_into().expect("checked by build.rs"),
        )
    };
    let station = StationConfig::default()
        .with_ssid(WIFI_SSID.try_into().expect("checked by build.rs"))
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
        info!("Wi-Fi: joining {WIFI_SSID:?}");
        match controller.connect_async().await {
            Ok(joined) => {
                info!("Wi-Fi: joined {WIFI_SSID:?} on channel {}", joined.channel);
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
            Err(error) => warn!("Wi-Fi: could not join {WIFI_SSID:?}: {error:?}"),
        }
        let delay = backoff.fail(&mut rng);
        info!("Wi-Fi: next attempt in {delay} ms");
        Timer::after_millis(delay.into()).await;
    }
}

/// Runs the IP stack (DHCP, DNS, TCP).
#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}
