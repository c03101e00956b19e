//! The binary's own flags and subcommands beside the runner's (`wsgw_aws::runner`): the
//! system's settings, simulated devices, and device tokens.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telemetry_simulator::cli::{run_until_stopped, DevicesArgs};
use telemetry_simulator::{Simulator, SimulatorConfig};
use wsgw_aws::runner::{self, Args, Runner, ServeArgs};

use crate::access::{
    self, AccessError, CorsOrigins, CORS_ORIGIN_ENV, DASHBOARD_KEYS_ENV, DEVICE_KEYS_ENV,
    DEVICE_SECRET_ENV, SHARED_DEVICE_TOKEN_ENV,
};
use crate::{Telemetry, DEFAULT_HISTORY_TTL_DAYS};

/// The ESP32 telemetry system: live readings, per-dashboard push intervals, device
/// control, REST history and a dashboard.
#[derive(Debug, Parser)]
#[command(name = "telemetry", version, about)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How to serve (`wsgw_aws::runner`).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The system's settings.
    #[command(flatten)]
    pub settings: Settings,
    /// Also run this many simulated devices (sim-01 …) in this process, so the
    /// dashboard shows live data at once.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub simulate: usize,
}

/// The runner's subcommands and the system's own.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// `invoke`.
    #[command(flatten)]
    Wsgw(runner::Command),
    /// Run simulated devices (the firmware's own device logic) against a running API.
    Simulate(DevicesArgs),
    /// Print the token a device presents when the device secret is set: the firmware's
    /// DEVICE_TOKEN, bound to this device id.
    DeviceToken(DeviceTokenArgs),
}

/// Environment variable: days to keep readings (Lambda and local runs).
pub const HISTORY_TTL_ENV: &str = "TELEMETRY_HISTORY_TTL_DAYS";

/// The system's settings, in every mode (local, Lambda, `invoke`).
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Days to keep readings.
    #[arg(long, env = HISTORY_TTL_ENV, value_name = "DAYS", global = true, default_value_t = DEFAULT_HISTORY_TTL_DAYS)]
    pub history_ttl_days: u32,

    /// Without keys: the fleet secret (32+ bytes) each device's own token is derived
    /// from (`telemetry device-token ID`); devices without theirs are refused.
    #[arg(long, env = DEVICE_SECRET_ENV, value_name = "SECRET", global = true, hide_env_values = true)]
    pub device_secret: Option<String>,

    /// Turns auth on: device keys, `esp32-01=KEY,esp32-02=KEY`; a device presents its
    /// own (`?token=KEY`) and may only send for its own device_id.
    #[arg(long, env = DEVICE_KEYS_ENV, value_name = "ID=KEY,…", global = true, hide_env_values = true)]
    pub device_keys: Option<String>,

    /// Turns auth on: dashboard keys, `NAME=KEY` or `NAME=KEY=operator` (only operators
    /// change a device's sample interval); the page asks for its key, and the REST API
    /// wants one as `Authorization: Bearer KEY`.
    #[arg(long, env = DASHBOARD_KEYS_ENV, value_name = "NAME=KEY[=operator],…", global = true, hide_env_values = true)]
    pub dashboard_keys: Option<String>,

    /// Origins whose pages may call the REST API (Access-Control-Allow-Origin), comma
    /// separated, or `*`; default: `*` without keys, none with keys.
    #[arg(long, env = CORS_ORIGIN_ENV, value_name = "ORIGIN,…", global = true)]
    pub cors_origin: Option<String>,
}

/// A setting's value, unless it is unset or blank.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.trim().is_empty())
}

impl Settings {
    /// The state these settings ask for: the 0.1 shared token is refused, a device
    /// secret must be long and not combined with keys, origins must be origins.
    pub fn state(&self) -> Result<Telemetry, AccessError> {
        if given(std::env::var(SHARED_DEVICE_TOKEN_ENV).ok().as_deref()).is_some() {
            return Err(AccessError::SharedDeviceToken);
        }
        let keys = access::authorizer(self.device_keys.as_deref(), self.dashboard_keys.as_deref())?;
        let secret = given(self.device_secret.as_deref())
            .map(access::device_secret)
            .transpose()?;
        if secret.is_some() && keys.is_some() {
            return Err(AccessError::KeysAndSecret);
        }
        let mut state = Telemetry::new().with_history_ttl_days(self.history_ttl_days);
        if let Some(origins) = given(self.cors_origin.as_deref()) {
            state = state.with_cors_origins(CorsOrigins::parse(origins)?);
        }
        if let Some(keys) = keys {
            state = state.with_keys(keys);
        }
        Ok(match secret {
            Some(secret) => state.with_device_secret(secret),
            None => state,
        })
    }

    /// The runner of the system these settings describe: its router, its history, the
    /// dashboard, and what the start lines say about auth.
    pub fn runner(&self) -> Result<Runner<Telemetry>, AccessError> {
        let state = self.state()?;
        let note = if state.auth_required() {
            Some("auth is on: devices connect with ?token=KEY; open http://{addr}/ and enter a dashboard key (the REST API wants it as Authorization: Bearer KEY)")
        } else if state.device_secret().is_some() {
            Some("devices present their own token (telemetry device-token ID); dashboards and the REST API are open, and nobody changes a device's sample interval")
        } else {
            None
        };
        let runner = crate::runner(state);
        Ok(match note {
            Some(note) => runner.note(note),
            None => runner,
        })
    }
}

/// Serves the system as `args` say and, with `simulate` devices, runs them beside the
/// LocalGateway (`--simulate N`), presenting the keys or tokens the settings give them.
pub async fn serve(settings: &Settings, args: Args, simulate: usize) -> ExitCode {
    let runner = match settings.runner() {
        Ok(runner) => runner,
        Err(error) => return fail(&error.to_string()),
    };
    if simulate == 0 || args.command.is_some() || wsgw_aws::lambda::is_lambda() {
        return runner.run(args).await;
    }
    runner::init_logs("info");
    let local = match runner.start_local(&args.serve).await {
        Ok(local) => local,
        Err(error) => return fail(&error),
    };
    let mut config = SimulatorConfig::new(local.ws_url().to_owned(), simulate);
    let started = simulator_tokens(
        &config,
        settings.device_secret.as_deref(),
        settings.device_keys.as_deref(),
    )
    .and_then(|tokens| {
        config.tokens = tokens;
        Simulator::start(config).map_err(|error| error.to_string())
    });
    let simulator = match started {
        Ok(simulator) => simulator,
        Err(error) => return fail(&error),
    };
    tracing::info!(devices = simulate, "simulated devices started");
    let outcome = local.wait().await;
    simulator.shutdown().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &str) -> ExitCode {
    eprintln!("telemetry: {error}");
    ExitCode::FAILURE
}

/// `device-token`: one device's token.
#[derive(Debug, clap::Args)]
pub struct DeviceTokenArgs {
    /// The device id the token opens.
    pub device_id: String,
    /// The fleet secret (32+ bytes).
    #[arg(long, env = DEVICE_SECRET_ENV, value_name = "SECRET", hide_env_values = true)]
    pub device_secret: String,
}

/// `telemetry device-token ID`: prints the device's token.
pub fn device_token(args: &DeviceTokenArgs) -> ExitCode {
    if let Err(error) = crate::protocol::validate_device_id(&args.device_id) {
        return fail(&format!("{:?}: {error}", args.device_id));
    }
    match access::device_secret(&args.device_secret) {
        Ok(secret) => {
            println!("{}", secret.token_for(&args.device_id));
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error.to_string()),
    }
}

/// `telemetry simulate`: devices against a running API until Ctrl-C or SIGTERM, each
/// presenting the key or token the settings give it.
pub async fn simulate(devices: DevicesArgs, settings: &Settings) -> ExitCode {
    runner::init_logs("info");
    let mut config = devices.config();
    config.tokens = match simulator_tokens(
        &config,
        settings.device_secret.as_deref(),
        settings.device_keys.as_deref(),
    ) {
        Ok(tokens) => tokens,
        Err(error) => return fail(&error),
    };
    run_until_stopped("telemetry", config).await
}

/// What simulated devices present: their keys, or their tokens derived from the secret.
fn simulator_tokens(
    config: &SimulatorConfig,
    device_secret: Option<&str>,
    device_keys: Option<&str>,
) -> Result<BTreeMap<String, String>, String> {
    let mut tokens = access::device_tokens(device_keys.unwrap_or(""));
    if let Some(secret) = given(device_secret) {
        let secret = access::device_secret(secret).map_err(|error| error.to_string())?;
        for index in 0..config.devices {
            let id = config.device_id(index);
            tokens.insert(id.clone(), secret.token_for(&id));
        }
    }
    Ok(tokens)
}
