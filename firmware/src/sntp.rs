//! Asking an SNTP server the time, with the `sntpc` client over an embassy-net UDP
//! socket (`sntpc-net-embassy`). What the answer is worth is decided by the
//! host-tested `telemetry_device::WallClock`.

use core::net::{IpAddr, SocketAddr};

use embassy_net::dns::DnsQueryType;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, Stack};
use embassy_time::{with_timeout, Duration, Instant};
use log::{debug, info};
use sntpc::{NtpContext, NtpTimestampGenerator};
use sntpc_net_embassy::UdpSocketWrapper;

/// Asked in turn until one answers: Amazon's public NTP service, then the NTP pool.
const SERVERS: [&str; 2] = ["time.aws.com", "pool.ntp.org"];
/// How long one server gets (DNS, then the exchange).
const TIMEOUT: Duration = Duration::from_secs(3);

/// Timestamps from the device's uptime: the exchange measures the offset between
/// uptime and the server's Unix time.
#[derive(Clone, Copy, Default)]
struct Uptime(u64);

impl NtpTimestampGenerator for Uptime {
    fn init(&mut self) {
        self.0 = Instant::now().as_micros();
    }

    fn timestamp_sec(&self) -> u64 {
        self.0 / 1_000_000
    }

    fn timestamp_subsec_micros(&self) -> u32 {
        (self.0 % 1_000_000) as u32
    }
}

/// The Unix time (ms) at uptime `now_ms` according to the first server that
/// answers, or `None`.
pub async fn query(stack: Stack<'static>) -> Option<(u64, u64)> {
    for server in SERVERS {
        let Ok(Ok(addresses)) =
            with_timeout(TIMEOUT, stack.dns_query(server, DnsQueryType::A)).await
        else {
            debug!("SNTP: cannot resolve {server}");
            continue;
        };
        let Some(IpAddress::Ipv4(address)) = addresses.first().copied() else {
            continue;
        };
        let mut rx_meta = [PacketMetadata::EMPTY; 2];
        let mut tx_meta = [PacketMetadata::EMPTY; 2];
        let mut rx = [0u8; 128];
        let mut tx = [0u8; 128];
        let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
        if socket.bind(0).is_err() {
            continue;
        }
        let socket = UdpSocketWrapper::new(socket);
        let target = SocketAddr::new(IpAddr::V4(address), 123);
        let exchange = sntpc::get_time(target, &socket, NtpContext::new(Uptime::default()));
        match with_timeout(TIMEOUT, exchange).await {
            Ok(Ok(result)) => {
                let now = Instant::now().as_millis();
                let unix_ms = (now as i64).saturating_add(result.offset() / 1_000);
                info!(
                    "SNTP: {server} answered (round trip {} ms, stratum {})",
                    result.roundtrip() / 1_000,
                    result.stratum()
                );
                return Some((now, u64::try_from(unix_ms).ok()?));
            }
            Ok(Err(error)) => debug!("SNTP: {server}: {error:?}"),
            Err(_) => debug!("SNTP: {server} did not answer"),
        }
    }
    None
}
