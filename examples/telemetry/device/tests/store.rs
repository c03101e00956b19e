//! The settings partition, on a RAM flash with NOR semantics (erase to 0xFF, writes
//! only clear bits, word-aligned), including power cuts in the middle of a write.

use std::cell::RefCell;
use std::rc::Rc;

use embedded_storage_async::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use futures::executor::block_on;
use telemetry_device::{SettingKey, Settings, SettingsStore, StoreError};

const PAGE: usize = 4_096;
const PAGES: usize = 4;

#[derive(Debug)]
struct PowerCut;

impl NorFlashError for PowerCut {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// RAM flash; after `writes_left` word writes it loses power (the rest of that write
/// and everything after it is not applied).
#[derive(Clone)]
struct RamFlash {
    bytes: Rc<RefCell<Vec<u8>>>,
    writes_left: Rc<RefCell<Option<usize>>>,
    erases: Rc<RefCell<usize>>,
}

impl RamFlash {
    fn new() -> Self {
        RamFlash {
            bytes: Rc::new(RefCell::new(vec![0xFF; PAGE * PAGES])),
            writes_left: Rc::new(RefCell::new(None)),
            erases: Rc::new(RefCell::new(0)),
        }
    }

    fn cut_power_after(&self, words: usize) {
        *self.writes_left.borrow_mut() = Some(words);
    }

    fn restore_power(&self) {
        *self.writes_left.borrow_mut() = None;
    }
}

impl ErrorType for RamFlash {
    type Error = PowerCut;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 4;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), PowerCut> {
        let offset = offset as usize;
        bytes.copy_from_slice(&self.bytes.borrow()[offset..offset + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        PAGE * PAGES
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), PowerCut> {
        if self.writes_left.borrow().is_some_and(|left| left == 0) {
            return Err(PowerCut);
        }
        assert_eq!(from as usize % PAGE, 0);
        assert_eq!(to as usize % PAGE, 0);
        self.bytes.borrow_mut()[from as usize..to as usize].fill(0xFF);
        *self.erases.borrow_mut() += 1;
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), PowerCut> {
        assert_eq!(offset as usize % 4, 0, "word-aligned writes");
        assert_eq!(bytes.len() % 4, 0, "whole words");
        for (index, word) in bytes.chunks(4).enumerate() {
            let mut left = self.writes_left.borrow_mut();
            if let Some(left) = left.as_mut() {
                if *left == 0 {
                    return Err(PowerCut);
                }
                *left -= 1;
            }
            let at = offset as usize + index * 4;
            let mut memory = self.bytes.borrow_mut();
            for (cell, byte) in memory[at..at + 4].iter_mut().zip(word) {
                // NOR: a write can only clear bits.
                *cell &= *byte;
            }
        }
        Ok(())
    }
}

fn defaults() -> Settings {
    Settings::with_defaults(&[
        (SettingKey::WifiSsid, "build-wifi"),
        (SettingKey::Url, "ws://192.168.1.10:8080"),
    ])
}

fn store(flash: &RamFlash) -> SettingsStore<RamFlash> {
    SettingsStore::new(flash.clone(), 0..(PAGE * PAGES) as u32).unwrap()
}

fn load(flash: &RamFlash) -> Settings {
    let mut settings = defaults();
    block_on(store(flash).load(&mut settings)).unwrap();
    settings
}

#[test]
fn settings_set_on_the_console_survive_a_reboot() {
    let flash = RamFlash::new();
    block_on(async {
        let mut store = store(&flash);
        store
            .save(SettingKey::WifiSsid, Some("Field Wi-Fi"))
            .await
            .unwrap();
        store
            .save(SettingKey::WifiPassword, Some("correct horse"))
            .await
            .unwrap();
        store
            .save(SettingKey::DeviceId, Some("esp32-c3-07"))
            .await
            .unwrap();
        store
            .save(SettingKey::SampleIntervalMs, Some("5000"))
            .await
            .unwrap();
    });
    // A new boot: a new store over the same flash.
    let settings = load(&flash);
    assert_eq!(settings.value(SettingKey::WifiSsid), Some("Field Wi-Fi"));
    assert_eq!(
        settings.value(SettingKey::WifiPassword),
        Some("correct horse")
    );
    assert_eq!(
        settings.value(SettingKey::Url),
        Some("ws://192.168.1.10:8080")
    );
    assert_eq!(settings.sample_interval_ms(), Some(5_000));
    assert_eq!(settings.missing().count(), 0);
}

#[test]
fn unset_stores_the_removal_and_the_default_comes_back_after_a_reboot() {
    let flash = RamFlash::new();
    block_on(async {
        let mut store = store(&flash);
        store
            .save(SettingKey::Url, Some("wss://api.example.com/prod"))
            .await
            .unwrap();
        store.save(SettingKey::Url, None).await.unwrap();
    });
    assert_eq!(
        load(&flash).value(SettingKey::Url),
        Some("ws://192.168.1.10:8080")
    );
}

#[test]
fn factory_reset_erases_everything_stored() {
    let flash = RamFlash::new();
    block_on(async {
        let mut store = store(&flash);
        store
            .save(SettingKey::DeviceId, Some("esp32-c3-07"))
            .await
            .unwrap();
        store.erase().await.unwrap();
    });
    let settings = load(&flash);
    assert_eq!(settings.value(SettingKey::DeviceId), None);
    assert_eq!(
        settings.missing().collect::<Vec<_>>(),
        [SettingKey::DeviceId]
    );
}

#[test]
fn an_empty_partition_is_an_unconfigured_device_not_an_error() {
    let flash = RamFlash::new();
    let mut settings = Settings::with_defaults(&[]);
    let report = block_on(store(&flash).load(&mut settings)).unwrap();
    assert_eq!(report.loaded, 0);
    assert_eq!(settings.missing().count(), 3);
}

#[test]
fn thousands_of_interval_changes_wrap_around_the_pages_and_the_last_one_wins() {
    let flash = RamFlash::new();
    block_on(async {
        let mut store = store(&flash);
        store
            .save(SettingKey::DeviceId, Some("esp32-c3-07"))
            .await
            .unwrap();
        for i in 0..3_000u32 {
            let interval = 250 + i;
            store
                .save(SettingKey::SampleIntervalMs, Some(&interval.to_string()))
                .await
                .unwrap();
        }
    });
    let settings = load(&flash);
    assert_eq!(settings.sample_interval_ms(), Some(250 + 2_999));
    assert_eq!(settings.value(SettingKey::DeviceId), Some("esp32-c3-07"));
    let erases = *flash.erases.borrow();
    assert!(
        erases < 3_000 / 50,
        "{erases} page erases for 3,000 writes: items are appended, pages reclaimed"
    );
}

#[test]
fn a_power_cut_during_a_write_keeps_the_old_value_or_the_new_one_and_nothing_else() {
    for cut_after in 0..40 {
        let flash = RamFlash::new();
        block_on(async {
            let mut store = store(&flash);
            store
                .save(SettingKey::DeviceId, Some("esp32-c3-07"))
                .await
                .unwrap();
            store
                .save(SettingKey::Url, Some("wss://old.example.com/prod"))
                .await
                .unwrap();
            flash.cut_power_after(cut_after);
            let result = store
                .save(SettingKey::Url, Some("wss://new.example.com/prod"))
                .await;
            if result.is_err() {
                assert_eq!(result, Err(StoreError::Flash));
            }
        });
        flash.restore_power();
        let settings = load(&flash);
        let url = settings.value(SettingKey::Url);
        assert!(
            url == Some("wss://old.example.com/prod") || url == Some("wss://new.example.com/prod"),
            "cut after {cut_after} words: {url:?}"
        );
        assert_eq!(settings.value(SettingKey::DeviceId), Some("esp32-c3-07"));
        // And the store still takes writes afterwards.
        block_on(store(&flash).save(SettingKey::Token, Some("t0k3n"))).unwrap();
        assert_eq!(load(&flash).value(SettingKey::Token), Some("t0k3n"));
    }
}

#[test]
fn a_partition_that_is_not_two_whole_pages_is_refused() {
    let flash = RamFlash::new();
    assert!(matches!(
        SettingsStore::new(flash.clone(), 0..PAGE as u32),
        Err(StoreError::Layout)
    ));
    assert!(matches!(
        SettingsStore::new(flash, 100..(2 * PAGE) as u32),
        Err(StoreError::Layout)
    ));
}
