//! The settings in flash: one [`sequential-storage`](https://docs.rs/sequential-storage)
//! map item per [`SettingKey`] in a dedicated flash partition, so a change writes one
//! small item (no sector erase until the pages fill up, then the oldest page is
//! reclaimed) and a power cut during a write loses at most that one change.
//!
//! Generic over any `embedded-storage-async` [`NorFlash`]: the firmware passes its
//! `wsgw_cfg` partition (esp-bootloader-esp-idf's `FlashRegion`), the tests a RAM flash
//! with NOR semantics.

use core::fmt;
use core::ops::Range;

use embedded_storage_async::nor_flash::NorFlash;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

use crate::settings::{SettingKey, Settings, MAX_URL_LEN};

/// A buffer this large holds any stored item (key, longest value, word padding).
pub const ITEM_BUFFER_LEN: usize = MAX_URL_LEN + 32;

/// Why the flash could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The flash range is not whole pages, or fewer than two.
    Layout,
    /// The flash driver failed.
    Flash,
    /// The stored data is corrupt beyond what sequential-storage repairs.
    Corrupted,
    /// No room even after reclaiming pages.
    Full,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::Layout => "the settings partition must be at least two whole flash pages",
            StoreError::Flash => "the flash driver failed",
            StoreError::Corrupted => "the stored settings are corrupt (factory-reset erases them)",
            StoreError::Full => "the settings partition is full",
        })
    }
}

impl core::error::Error for StoreError {}

fn store_error<E>(error: sequential_storage::Error<E>) -> StoreError {
    match error {
        sequential_storage::Error::Storage { .. } => StoreError::Flash,
        sequential_storage::Error::FullStorage => StoreError::Full,
        sequential_storage::Error::Corrupted { .. } => StoreError::Corrupted,
        _ => StoreError::Corrupted,
    }
}

/// The settings partition.
pub struct SettingsStore<S: NorFlash> {
    map: MapStorage<u8, S, Cache<Uncached, Uncached, Uncached, u8>>,
    buffer: [u8; ITEM_BUFFER_LEN],
}

/// What [`SettingsStore::load`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Settings read.
    pub loaded: usize,
    /// Stored values the current rules refuse (ignored; the default applies).
    pub refused: Option<SettingKey>,
}

impl<S: NorFlash> SettingsStore<S> {
    /// The store over `range` (byte offsets in `flash`, whole pages, at least two).
    pub fn new(flash: S, range: Range<u32>) -> Result<Self, StoreError> {
        let config = MapConfig::try_new(range).map_err(|_| StoreError::Layout)?;
        Ok(SettingsStore {
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            buffer: [0; ITEM_BUFFER_LEN],
        })
    }

    /// Lays every stored value over `settings`' defaults.
    pub async fn load(&mut self, settings: &mut Settings) -> Result<LoadReport, StoreError> {
        let mut report = LoadReport::default();
        for key in SettingKey::ALL {
            let value: Option<&[u8]> = self
                .map
                .fetch_item(&mut self.buffer, &key.id())
                .await
                .map_err(store_error)?;
            let Some(value) = value else { continue };
            let loaded = core::str::from_utf8(value)
                .ok()
                .and_then(|text| settings.load_stored(key, text).ok());
            match loaded {
                Some(()) => report.loaded += 1,
                None => report.refused = Some(key),
            }
        }
        Ok(report)
    }

    /// Stores `value` for `key` (checked first); `None` stores the removal (`unset`).
    pub async fn save(&mut self, key: SettingKey, value: Option<&str>) -> Result<(), StoreError> {
        if let Some(value) = value {
            key.validate(value).map_err(|_| StoreError::Corrupted)?;
        }
        let bytes: &[u8] = value.unwrap_or("").as_bytes();
        self.map
            .store_item(&mut self.buffer, &key.id(), &bytes)
            .await
            .map_err(store_error)
    }

    /// Erases every stored value (`factory-reset`).
    pub async fn erase(&mut self) -> Result<(), StoreError> {
        self.map.erase_all().await.map_err(store_error)
    }

    /// The flash back.
    pub fn into_flash(self) -> S {
        self.map.destroy().0
    }
}
