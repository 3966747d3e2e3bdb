//! Loading the settings: the defaults, then the file, then `FOOTFALL__…` environment
//! variables, read as text that each setting's type gives its meaning.

use std::path::Path;

use super::{ConfigError, Settings};

/// Environment variables that hold lists, split on commas.
const LIST_KEYS: [&str; 5] = [
    "cookies.keys",
    "delivery.retry_schedule_seconds",
    "store.redis_cluster_urls",
    "store.redis_sentinels",
    "server.trusted_proxies",
];

impl Settings {
    /// Loads defaults, then the file (required when given explicitly, optional
    /// `config.toml` otherwise), then `FOOTFALL__…` environment variables.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(explicit, std::env::vars().collect())
    }

    /// [`Settings::load`] with `env` for the environment. Every variable is read as the
    /// text it is, and the setting's type decides what it means (config's own guessing
    /// read `KEY_PREFIX=007` as the number 7, and a one-item list `60` as a number); the
    /// list settings are split on commas, an empty variable being an empty list.
    pub fn load_with_env(
        explicit: Option<&Path>,
        env: config::Map<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        match explicit {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Missing(path.to_owned()));
                }
                builder = builder.add_source(config::File::from(path).required(true));
            }
            None => {
                builder = builder.add_source(config::File::with_name("config.toml").required(false))
            }
        }
        for key in LIST_KEYS {
            let var = format!("FOOTFALL__{}", key.replace('.', "__").to_uppercase());
            if let Some(value) = env.get(&var) {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect();
                builder = builder.set_override(key, items)?;
            }
        }
        let env = config::Environment::with_prefix("FOOTFALL")
            .prefix_separator("__")
            .separator("__")
            .source(Some(env));
        let settings: Settings = builder.add_source(env).build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");

    fn load(vars: &[(&str, &str)]) -> Settings {
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_with_env(Some(Path::new(SHIPPED)), env).unwrap()
    }

    #[test]
    fn environment_variables_mean_what_their_settings_type_says() {
        let s = load(&[
            ("FOOTFALL__DELIVERY__RETRY_SCHEDULE_SECONDS", "60"),
            ("FOOTFALL__STORE__KEY_PREFIX", "007"),
            ("FOOTFALL__STORE__REDIS_CLUSTER_URLS", ""),
            (
                "FOOTFALL__SERVER__TRUSTED_PROXIES",
                "10.0.0.0/8, 192.168.1.1",
            ),
            ("FOOTFALL__DELIVERY__CONCURRENCY", "8"),
            ("FOOTFALL__DELIVERY__JITTER_RATIO", "0.1"),
            ("FOOTFALL__DEMO__ENABLED", "false"),
        ]);
        assert_eq!(s.delivery.retry_schedule_seconds, [60]);
        assert_eq!(s.store.key_prefix, "007");
        assert!(s.store.redis_cluster_urls.is_empty());
        assert_eq!(s.server.trusted_proxies, ["10.0.0.0/8", "192.168.1.1"]);
        assert_eq!(s.delivery.concurrency, 8);
        assert_eq!(s.delivery.jitter_ratio, 0.1);
        assert!(!s.demo.enabled);
        let s = load(&[("FOOTFALL__DELIVERY__RETRY_SCHEDULE_SECONDS", "5,60,600")]);
        assert_eq!(s.delivery.retry_schedule_seconds, [5, 60, 600]);
    }
}
