//! Reading a fleetsh config file: the TOML text parsed into its keys, then checked and typed
//! into a [`FileConfig`] ([`FileConfig::parse`], [`FileConfig::load`], and deserializing a
//! `FileConfig` directly); and finding the file a program uses ([`Layers::read`]).

use std::path::Path;

use serde::Deserialize;

use super::file::{FileConfig, default_config_file};
use super::keys::FileKeys;
use super::layers::{Flags, Layers};
use super::validate::check;
use crate::Error;

impl Layers {
    /// Reads the config file in use, with no flags yet: `config` (`--config FILE`) when
    /// given, else the default file ([`default_config_file`]) when it exists, else none.
    pub fn read(config: Option<&Path>) -> Result<Layers, Error> {
        let file_path = match config {
            Some(p) => Some(p.to_path_buf()),
            None => default_config_file().filter(|p| p.exists()),
        };
        let file = match &file_path {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        Ok(Layers {
            flags: Flags::default(),
            file,
            file_path,
        })
    }
}

impl FileConfig {
    /// Parses TOML text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let keys: FileKeys = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        check(keys).map_err(|e| match e {
            Error::InvalidSetting { setting, reason } => Error::Config {
                path: path.to_path_buf(),
                message: key_message(setting, &reason),
            },
            other => other,
        })
    }

    /// Reads and parses a TOML config file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

/// A bad value, naming its key: ``key `fanout`: must be at least 1``.
fn key_message(key: &str, reason: &str) -> String {
    format!("key `{key}`: {reason}")
}

impl<'de> Deserialize<'de> for FileConfig {
    /// The keys of a config file, checked as [`FileConfig::parse`] checks them.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        check(FileKeys::deserialize(d)?).map_err(|e| {
            serde::de::Error::custom(match e {
                Error::InvalidSetting { setting, reason } => key_message(setting, &reason),
                other => other.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {

    use std::path::PathBuf;
    use std::time::Duration;

    use crate::config::FileConfig;

    fn p() -> PathBuf {
        PathBuf::from("fleetsh.toml")
    }

    #[test]
    fn connection_options_parse_and_bad_values_name_the_key() {
        let cfg = FileConfig::parse(
            "keepalive_interval = 15\nkeepalive_count = 4\ninactivity_timeout = 600.5\n\
             window_size = 65536\nmax_packet_size = 4096\n\
             ciphers = [\"aes128-gcm@openssh.com\"]\n",
            &p(),
        )
        .unwrap();
        assert_eq!(cfg.keepalive_interval, Some(Duration::from_secs(15)));
        assert_eq!(cfg.keepalive_count, Some(4));
        assert_eq!(cfg.inactivity_timeout, Some(Duration::from_millis(600_500)));
        assert_eq!(cfg.window_size, Some(65536));
        assert_eq!(cfg.max_packet_size, Some(4096));
        assert_eq!(
            cfg.ciphers,
            Some(vec!["aes128-gcm@openssh.com".to_string()])
        );
        for (text, key) in [
            ("keepalive_interval = 0\n", "keepalive_interval"),
            ("keepalive_interval = -1\n", "keepalive_interval"),
            ("inactivity_timeout = 0\n", "inactivity_timeout"),
            ("keepalive_count = 0\n", "keepalive_count"),
            ("max_packet_size = 100\n", "max_packet_size"),
            ("max_packet_size = 70000\n", "max_packet_size"),
            ("window_size = 1000\n", "window_size"),
            (
                "max_packet_size = 8192\nwindow_size = 4096\n",
                "window_size",
            ),
        ] {
            let e = FileConfig::parse(text, &p()).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("fleetsh.toml"), "{text}: {e}");
        }
    }

    #[test]
    fn unknown_key_is_rejected_by_name_with_file_and_line() {
        let err = FileConfig::parse("fanout = 10\nfanuot = 3\n", &p()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("fleetsh.toml"), "{msg}");
        assert!(msg.contains("fanuot"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn wrong_type_and_bad_values_are_rejected() {
        let msg = FileConfig::parse("fanout = \"many\"", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("fanout"), "{msg}");
        let msg = FileConfig::parse("fanout = 0", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`fanout`"), "{msg}");
        let msg = FileConfig::parse("connect_timeout = -1", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("connect_timeout"), "{msg}");
        let msg = FileConfig::parse("host_key_check = \"maybe\"", &p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("host_key_check"), "{msg}");
    }

    #[test]
    fn durations_are_checked_and_typed_while_the_file_is_read() {
        let cfg = FileConfig::parse(
            "connect_timeout = 2.5\ncommand_timeout = 60\nidle_timeout = 0.25\nretry_delay = 0\n",
            &p(),
        )
        .unwrap();
        assert_eq!(cfg.connect_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(cfg.command_timeout, Some(Duration::from_secs(60)));
        assert_eq!(cfg.idle_timeout, Some(Duration::from_millis(250)));
        assert_eq!(cfg.retry_delay, Some(Duration::ZERO));
        for key in [
            "connect_timeout",
            "command_timeout",
            "idle_timeout",
            "retry_delay",
            "keepalive_interval",
            "inactivity_timeout",
        ] {
            for (value, shown) in [
                ("-1", "-1"),
                ("nan", "NaN"),
                ("inf", "inf"),
                ("-inf", "-inf"),
                ("1e10", "10000000000"),
            ] {
                let e = FileConfig::parse(&format!("{key} = {value}\n"), &p())
                    .unwrap_err()
                    .to_string();
                assert_eq!(
                    e,
                    format!(
                        "config fleetsh.toml: key `{key}`: {shown} is not a duration in seconds"
                    )
                );
            }
        }
        // Zero, and a duration that rounds to zero, cannot work but for the retry delay.
        for text in ["connect_timeout = 0", "command_timeout = 1e-12"] {
            let e = FileConfig::parse(text, &p()).unwrap_err().to_string();
            assert!(e.ends_with("must be greater than zero"), "{text}: {e}");
        }
    }

    #[test]
    fn deserializing_checks_as_parse_does() {
        let cfg: FileConfig = toml::from_str("keepalive_interval = 15\n").unwrap();
        assert_eq!(cfg.keepalive_interval, Some(Duration::from_secs(15)));
        let e = toml::from_str::<FileConfig>("retry_delay = -3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `retry_delay`: -3 is not a duration in seconds"),
            "{e}"
        );
        let e = toml::from_str::<FileConfig>("fanout = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `fanout`: must be at least 1"), "{e}");
    }
}
