//! Hosted backend presets: one variable picks the OTLP endpoint and the auth
//! header, built from a key.

use std::fmt;

use base64::Engine as _;

use crate::export::config::env::Env;
use crate::export::config::otlp_headers::Headers;
use crate::export::config::vars;

/// A hosted OTLP backend whose endpoint and auth header `traced` knows.
///
/// ```
/// let grafana = traced::Backend::GrafanaCloud {
///     zone: "prod-us-east-0".into(),
///     instance_id: "123456".into(),
///     token: "glc_secret".into(),
/// };
/// assert_eq!(grafana.endpoint(), "https://otlp-gateway-prod-us-east-0.grafana.net/otlp");
/// // The key never shows in Debug output.
/// assert!(!format!("{grafana:?}").contains("glc_secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// Honeycomb, US instance (`x-honeycomb-team`).
    Honeycomb {
        /// The ingest API key.
        api_key: String,
    },
    /// Honeycomb, EU instance (`x-honeycomb-team`).
    HoneycombEu {
        /// The ingest API key.
        api_key: String,
    },
    /// Datadog, US1 site (`dd-api-key`).
    DatadogUs {
        /// The API key.
        api_key: String,
    },
    /// Datadog, EU site (`dd-api-key`).
    DatadogEu {
        /// The API key.
        api_key: String,
    },
    /// New Relic, US region (`api-key`).
    NewRelicUs {
        /// The ingest license key.
        license_key: String,
    },
    /// New Relic, EU region (`api-key`).
    NewRelicEu {
        /// The ingest license key.
        license_key: String,
    },
    /// Grafana Cloud's OTLP gateway (`Authorization: Basic base64(instance:token)`).
    GrafanaCloud {
        /// The stack's zone, e.g. `prod-us-east-0`.
        zone: String,
        /// The stack's instance id.
        instance_id: String,
        /// An access policy token with traces:write.
        token: String,
    },
}

impl Backend {
    /// The preset's name, as `TRACED_BACKEND` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Honeycomb { .. } => "honeycomb",
            Backend::HoneycombEu { .. } => "honeycomb-eu",
            Backend::DatadogUs { .. } => "datadog-us",
            Backend::DatadogEu { .. } => "datadog-eu",
            Backend::NewRelicUs { .. } => "newrelic-us",
            Backend::NewRelicEu { .. } => "newrelic-eu",
            Backend::GrafanaCloud { .. } => "grafana",
        }
    }

    /// The OTLP base endpoint (`/v1/traces` is appended for HTTP).
    pub fn endpoint(&self) -> String {
        match self {
            Backend::Honeycomb { .. } => "https://api.honeycomb.io".into(),
            Backend::HoneycombEu { .. } => "https://api.eu1.honeycomb.io".into(),
            Backend::DatadogUs { .. } => "https://otlp.datadoghq.com".into(),
            Backend::DatadogEu { .. } => "https://otlp.datadoghq.eu".into(),
            Backend::NewRelicUs { .. } => "https://otlp.nr-data.net:4318".into(),
            Backend::NewRelicEu { .. } => "https://otlp.eu01.nr-data.net:4318".into(),
            Backend::GrafanaCloud { zone, .. } => format!("https://otlp-gateway-{zone}.grafana.net/otlp"),
        }
    }

    /// The auth header the backend expects.
    pub fn headers(&self) -> Headers {
        let mut headers = Headers::default();
        match self {
            Backend::Honeycomb { api_key } | Backend::HoneycombEu { api_key } => {
                headers.insert("x-honeycomb-team", api_key);
            }
            Backend::DatadogUs { api_key } | Backend::DatadogEu { api_key } => headers.insert("dd-api-key", api_key),
            Backend::NewRelicUs { license_key } | Backend::NewRelicEu { license_key } => {
                headers.insert("api-key", license_key);
            }
            Backend::GrafanaCloud { instance_id, token, .. } => {
                let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{instance_id}:{token}"));
                headers.insert("Authorization", format!("Basic {credentials}"));
            }
        }
        headers
    }

    pub(crate) fn from_env(name: &str, env: &Env<'_>) -> Result<Backend, String> {
        let key = || {
            env.get(vars::BACKEND_KEY)
                .ok_or_else(|| format!("{} is not set; no backend preset used", vars::BACKEND_KEY))
        };
        Ok(match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "honeycomb" | "honeycomb-us" => Backend::Honeycomb { api_key: key()? },
            "honeycomb-eu" => Backend::HoneycombEu { api_key: key()? },
            "datadog" | "datadog-us" => Backend::DatadogUs { api_key: key()? },
            "datadog-eu" => Backend::DatadogEu { api_key: key()? },
            "newrelic" | "newrelic-us" | "new-relic" | "new-relic-us" => Backend::NewRelicUs { license_key: key()? },
            "newrelic-eu" | "new-relic-eu" => Backend::NewRelicEu { license_key: key()? },
            "grafana" | "grafana-cloud" => {
                let missing = |var: &str| format!("{var} is not set; no backend preset used");
                let zone = env.get(vars::GRAFANA_ZONE).ok_or_else(|| missing(vars::GRAFANA_ZONE))?;
                let instance_id =
                    env.get(vars::GRAFANA_INSTANCE_ID).ok_or_else(|| missing(vars::GRAFANA_INSTANCE_ID))?;
                Backend::GrafanaCloud { zone, instance_id, token: key()? }
            }
            _ => {
                return Err(
                    "unknown backend (honeycomb, honeycomb-eu, datadog-us, datadog-eu, newrelic-us, newrelic-eu, \
                     grafana); \
                     no backend preset used"
                        .into(),
                );
            }
        })
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::GrafanaCloud { zone, instance_id, .. } => f
                .debug_struct("GrafanaCloud")
                .field("zone", zone)
                .field("instance_id", instance_id)
                .field("token", &"***")
                .finish(),
            other => write!(f, "{}(***)", other.name()),
        }
    }
}
