//! Typed settings: `config/default.toml`, then `config/{VELVET_ENV}.toml`,
//! then `VELVET__SECTION__KEY` environment variables, each over the last.
//!
//! Every field has a default in code as well, so a node started from any
//! directory still runs: on loopback, on the in-process store, with the
//! demo experience and ephemeral development keys.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A value that must never reach a log line or a debug print.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub tokens: TokenSettings,
    pub admission: AdmissionSettings,
    pub ws: WsSettings,
    pub experiences: ExperienceSettings,
    pub log: LogSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// A request still running after this long is answered with 503.
    pub request_timeout_ms: u64,
    /// How long a shutdown waits for open requests and sockets.
    pub shutdown_grace_ms: u64,
    /// Requests handled at once; past this the node sheds load with 503.
    pub max_concurrent_requests: usize,
    /// Sessions and enters per client address: sustained rate and burst.
    pub client_rate_per_second: u32,
    pub client_burst: u32,
    /// Header carrying the client address when behind a trusted proxy
    /// (e.g. `x-real-ip`); empty means the socket's peer address.
    pub client_ip_header: String,
    /// Shop origins (`https://shop.example`) whose pages may call the API
    /// from the browser; empty means no cross-origin calls.
    pub cors_origins: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://…` of one Redis; empty means the in-process store.
    pub url: Secret,
    /// Comma-separated seeds of a Redis Cluster.
    pub cluster_nodes: Secret,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub admin_key: Secret,
    pub merchant_key: Secret,
    pub session_secret: Secret,
    pub session_ttl_seconds: u64,
    /// HS256 secret the shop signs account assertions with.
    pub shop_secret: Secret,
    /// Or a JWKS file of the shop's public keys (takes precedence).
    pub shop_jwks_file: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    /// PEM (PKCS#8) Ed25519 private key; empty means an ephemeral key.
    pub signing_key_file: String,
    /// Older public keys (PEM, SPKI) still published during a rotation.
    pub previous_public_key_files: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionSettings {
    pub tick_ms: u64,
    pub lease_ttl_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsSettings {
    pub auth_timeout_ms: u64,
    pub ping_interval_ms: u64,
    /// Messages queued for one client before it is dropped as too slow.
    pub send_queue: usize,
    pub max_message_bytes: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperienceSettings {
    /// JSON file of experiences to create at start; empty means none.
    pub file: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// An `EnvFilter` directive, e.g. `info,velvet=debug`.
    pub filter: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 16 * 1024,
            request_timeout_ms: 10_000,
            shutdown_grace_ms: 5_000,
            max_concurrent_requests: 2_048,
            client_rate_per_second: 20,
            client_burst: 100,
            client_ip_header: String::new(),
            cors_origins: Vec::new(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            admin_key: Secret::default(),
            merchant_key: Secret::default(),
            session_secret: Secret::default(),
            session_ttl_seconds: 7 * 24 * 3600,
            shop_secret: Secret::default(),
            shop_jwks_file: String::new(),
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "velvet".into(),
            audience: "checkout".into(),
            signing_key_file: String::new(),
            previous_public_key_files: Vec::new(),
        }
    }
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            tick_ms: 1_000,
            lease_ttl_ms: 5_000,
        }
    }
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            auth_timeout_ms: 5_000,
            ping_interval_ms: 15_000,
            send_queue: 32,
            max_message_bytes: 4 * 1024,
        }
    }
}

impl Default for ExperienceSettings {
    fn default() -> Self {
        Self {
            file: "config/demo-experiences.json".into(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Settings {
    /// Reads the layered configuration from `dir` (normally `config/`).
    pub fn load_from(dir: &std::path::Path) -> Result<Self, ConfigError> {
        let env_name = std::env::var("VELVET_ENV").unwrap_or_default();
        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(false));
        if !env_name.is_empty() {
            let file = dir.join(format!("{env_name}.toml"));
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let env = config::Environment::with_prefix("VELVET")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("tokens.previous_public_key_files")
            .with_list_parse_key("server.cors_origins")
            .try_parsing(true);
        let settings: Settings = builder.add_source(env).build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads from `VELVET_CONFIG_DIR`, or `config/` under the current directory.
    pub fn load() -> Result<Self, ConfigError> {
        let dir = std::env::var("VELVET_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        Self::load_from(&PathBuf::from(dir))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.into(),
        };
        if self.admission.tick_ms == 0 {
            return Err(invalid("admission.tick_ms", "must be at least 1"));
        }
        // Renewal happens every tick, so the lease must outlive a few of them.
        if self.admission.lease_ttl_ms < 3 * self.admission.tick_ms {
            return Err(invalid(
                "admission.lease_ttl_ms",
                "must be at least 3 ticks",
            ));
        }
        if self.ws.send_queue == 0 {
            return Err(invalid("ws.send_queue", "must be at least 1"));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be `text` or `json`"));
        }
        if self.server.max_concurrent_requests == 0 {
            return Err(invalid(
                "server.max_concurrent_requests",
                "must be at least 1",
            ));
        }
        if self.server.client_rate_per_second == 0 || self.server.client_burst == 0 {
            return Err(invalid(
                "server.client_rate_per_second",
                "rate and burst must be ≥ 1",
            ));
        }
        if self.server.body_limit_bytes < 256 {
            return Err(invalid("server.body_limit_bytes", "must be at least 256"));
        }
        if let Some(bad) = self.server.cors_origins.iter().find(|o| !is_origin(o)) {
            return Err(ConfigError::Invalid {
                key: "server.cors_origins",
                reason: format!("`{bad}` is not an origin like https://shop.example"),
            });
        }
        for (key, url) in [
            ("redis.url", self.redis.url.expose()),
            ("redis.cluster_nodes", self.redis.cluster_nodes.expose()),
        ] {
            let bad = url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .any(|u| !u.starts_with("redis://"));
            if bad {
                return Err(invalid(key, "must be redis:// URLs (TLS is not built in)"));
            }
        }
        Ok(())
    }

    /// Test and tool helper: defaults with a listener on an ephemeral port.
    pub fn for_tests() -> Self {
        let mut s = Self::default();
        s.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        s.experiences.file = String::new();
        s
    }
}

/// `scheme://host[:port]` and nothing after, lowercase: what a browser
/// sends in `Origin`, so a listed origin that could never match is refused.
fn is_origin(text: &str) -> bool {
    let Some((scheme, host)) = text.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.is_ascii()
        && host == host.to_ascii_lowercase()
        && !host.contains(['/', '?', '#', '@', ' ', '*'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_must_be_bare_origins() {
        assert!(is_origin("https://shop.example"));
        assert!(is_origin("http://127.0.0.1:3000"));
        for bad in [
            "*",
            "https://shop.example/",
            "shop.example",
            "https://Shop.example",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
        let mut settings = Settings::for_tests();
        settings.server.cors_origins = vec!["https://shop.example/checkout".into()];
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("server.cors_origins"), "{err}");
    }
}
