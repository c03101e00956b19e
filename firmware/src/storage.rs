//! The settings partition: `wsgw_cfg` in `partitions.csv` (data, subtype `undefined`,
//! 64 KiB), found through the partition table with esp-bootloader-esp-idf and written
//! through esp-storage, as the host-tested `telemetry_device::SettingsStore`
//! (sequential-storage) over embassy-embedded-hal's blocking-to-async adapter.

use embassy_embedded_hal::adapter::BlockingAsync;
use esp_bootloader_esp_idf::partitions::{
    read_partition_table, FlashRegion, NorFlashRegion, PARTITION_TABLE_MAX_LEN,
};
use esp_storage::FlashStorage;
use log::{info, warn};
use static_cell::StaticCell;
use telemetry_device::SettingsStore;

/// The label of the settings partition in `partitions.csv`.
pub const PARTITION_LABEL: &str = "wsgw_cfg";

/// The store over the settings partition.
pub type Store = SettingsStore<BlockingAsync<NorFlashRegion<'static, 'static, 'static>>>;

static FLASH: StaticCell<FlashStorage<'static>> = StaticCell::new();
static TABLE: StaticCell<[u8; PARTITION_TABLE_MAX_LEN]> = StaticCell::new();
static REGION: StaticCell<FlashRegion<'static, 'static>> = StaticCell::new();

/// Opens the settings partition, or says why there is none (the device then runs on
/// its build-time defaults and cannot store anything).
pub fn open(flash: esp_hal::peripherals::FLASH<'static>) -> Option<Store> {
    let flash = FLASH.init(FlashStorage::new(flash));
    let table = TABLE.init([0; PARTITION_TABLE_MAX_LEN]);
    let entry = match read_partition_table(flash, table) {
        Ok(table) => table
            .iter()
            .find(|entry| entry.label_as_str() == PARTITION_LABEL),
        Err(error) => {
            warn!("settings: cannot read the partition table: {error:?}");
            return None;
        }
    };
    let Some(entry) = entry else {
        warn!(
            "settings: no {PARTITION_LABEL:?} partition; flash with --partition-table partitions.csv \
             to store settings (using the build-time defaults)"
        );
        return None;
    };
    let size = entry.len();
    let region = REGION.init(entry.as_flash_region(flash));
    let nor = match region.as_nor_flash() {
        Ok(nor) => nor,
        Err(error) => {
            warn!("settings: the {PARTITION_LABEL:?} partition is not writable: {error:?}");
            return None;
        }
    };
    match SettingsStore::new(BlockingAsync::new(nor), 0..size) {
        Ok(store) => {
            info!("settings: {PARTITION_LABEL:?} partition, {size} bytes");
            Some(store)
        }
        Err(error) => {
            warn!("settings: {error}");
            None
        }
    }
}
