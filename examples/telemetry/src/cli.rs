//! The binary's own flags and subcommands beside the runner's (`wsgw_aws::runner`): the
//! system's settings, and the simulator's subcommands (simulated devices, device tokens).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telemetry_simulator::{cli, run_devices, Credentials, SimulatorConfig};
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

impl Cli {
    /// Does what the command line asks: serve (with `--simulate N` devices beside the
    /// LocalGateway, presenting the keys or tokens the settings give them), `invoke`, or
    /// a simulator's subcommand with the devices' keys or tokens from the settings.
    pub async fn run(self) -> ExitCode {
        let command = match self.command {
            Some(Command::Devices(command)) => {
                runner::init_logs("info");
                return match self.settings.credentials() {
                    Ok(credentials) => command.run("telemetry", &credentials).await,
                    Err(error) => fail(&error.to_string()),
                };
            }
            Some(Command::Wsgw(command)) => Some(command),
            None => None,
        };
        let runner = match self.settings.runner() {
            Ok(runner) => runner,
            Err(error) => return fail(&error.to_string()),
        };
        let args = Args {
            command,
            serve: self.serve,
        };
        if self.simulate == 0 {
            return runner.run(args).await;
        }
        let settings = self.settings;
        let devices = move |url, stopping| async move {
            let credentials = settings.credentials().map_err(|error| error.to_string())?;
            let config = SimulatorConfig::new(url, self.simulate).with_credentials(&credentials);
            tracing::info!(devices = self.simulate, "simulated devices started");
            let reports = run_devices(config, stopping).await;
            reports.map(drop).map_err(|error| error.to_string())
        };
        runner.beside(devices).run(args).await
    }
}

/// The runner's subcommands and the simulator's.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// `invoke`.
    #[command(flatten)]
    Wsgw(runner::Command),
    /// `simulate`, `device-token`.
    #[command(flatten)]
    Devices(cli::Command),
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
        let state = Telemetry::new().with_history_ttl_days(self.history_ttl_days);
        let mut state = match (keys, self.credentials()?.secret) {
            (Some(_), Some(_)) => return Err(AccessError::KeysAndSecret),
            (Some(keys), None) => state.with_keys(keys),
            (None, Some(secret)) => state.with_device_secret(secret),
            (None, None) => state,
        };
        if let Some(origins) = given(self.cors_origin.as_deref()) {
            state = state.with_cors_origins(CorsOrigins::parse(origins)?);
        }
        Ok(state)
    }

    /// What simulated devices present: their keys, or their tokens derived from the secret.
    pub fn credentials(&self) -> Result<Credentials, AccessError> {
        Ok(Credentials {
            keys: access::device_tokens(self.device_keys.as_deref().unwrap_or("")),
            secret: given(self.device_secret.as_deref())
                .map(access::device_secret)
                .transpose()?,
        })
    }

    /// The runner of the system these settings describe: its router, its history, the
    /// dashboard, and what the start lines say about auth.
    pub fn runner(&self) -> Result<Runner<Telemetry>, AccessError> {
        let state = self.state()?;
        let runner = crate::runner(state.clone());
        Ok(if state.auth_required() {
            runner.note("auth is on: devices connect with ?token=KEY; open http://{addr}/ and enter a dashboard key (the REST API wants it as Authorization: Bearer KEY)")
        } else if state.device_secret().is_some() {
            runner.note("devices present their own token (telemetry device-token ID); dashboards and the REST API are open, and nobody changes a device's sample interval")
        } else {
            runner
        })
    }
}

fn fail(error: &str) -> ExitCode {
    eprintln!("telemetry: {error}");
    ExitCode::FAILURE
}
