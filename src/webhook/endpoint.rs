//! One `[[webhook]]` as the workers use it: where to post, how to sign, what to read.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::{secret_is_valid, WebhookConfig};
use crate::store::EventFilter;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("[[webhook]] {label}: cannot read secret_file {path}: {source}")]
    SecretFile {
        label: String,
        path: String,
        source: std::io::Error,
    },
    #[error("[[webhook]] {label}: the secret in {path} is not whsec_ and the base64 of at least 16 bytes")]
    BadSecretFile { label: String, path: String },
    #[error("[[webhook]] {label}: {detail}")]
    Invalid { label: String, detail: String },
}

pub struct Endpoint {
    /// The key of its cursor in the store: a digest of its URL and account, so that a
    /// renamed or reordered endpoint keeps its place and no URL is stored.
    pub id: String,
    /// Its name in `/metrics` and logs.
    pub label: String,
    pub url: reqwest::Url,
    pub signer: standardwebhooks::Webhook,
    pub filter: EventFilter,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// From a validated config (the secret file is read now).
    pub fn from_config(config: &WebhookConfig) -> Result<Self, EndpointError> {
        let digest = Sha256::new()
            .chain_update(config.url.as_bytes())
            .chain_update([0])
            .chain_update(config.account.as_deref().unwrap_or("").as_bytes())
            .finalize();
        let id = format!("wh_{}", hex::encode(&digest[..12]));
        let url = reqwest::Url::parse(&config.url).map_err(|e| EndpointError::Invalid {
            label: config.name.clone().unwrap_or_default(),
            detail: e.to_string(),
        })?;
        let label = config.name.clone().unwrap_or_else(|| {
            let host = url.host_str().unwrap_or("webhook");
            match url.port() {
                Some(port) => format!("{host}:{port}#{}", &id[3..11]),
                None => format!("{host}#{}", &id[3..11]),
            }
        });
        let secret = match (&config.secret, &config.secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => read_secret(&label, path)?,
            (None, None) => {
                return Err(EndpointError::Invalid {
                    label,
                    detail: "no secret".into(),
                })
            }
        };
        let signer =
            standardwebhooks::Webhook::new(&secret).map_err(|e| EndpointError::Invalid {
                label: label.clone(),
                detail: format!("the secret does not decode: {e}"),
            })?;
        Ok(Self {
            id,
            label,
            url,
            signer,
            filter: EventFilter {
                account: config.account.clone(),
                kinds: config.kinds(),
            },
        })
    }
}

fn read_secret(label: &str, path: &Path) -> Result<String, EndpointError> {
    let text = std::fs::read_to_string(path).map_err(|source| EndpointError::SecretFile {
        label: label.to_owned(),
        path: path.display().to_string(),
        source,
    })?;
    let secret = text.trim_end_matches(['\n', '\r']).to_owned();
    if !secret_is_valid(&secret) {
        return Err(EndpointError::BadSecretFile {
            label: label.to_owned(),
            path: path.display().to_string(),
        });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secret: Option<&str>, secret_file: Option<&Path>) -> WebhookConfig {
        WebhookConfig {
            url: "https://user:pw@hooks.example:8443/t/0k3n?x=1".into(),
            secret: secret.map(str::to_owned),
            secret_file: secret_file.map(Path::to_path_buf),
            account: Some("AC1".into()),
            events: None,
            name: None,
        }
    }

    #[test]
    fn a_secret_file_is_read_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        let from_file = Endpoint::from_config(&config(None, Some(&good))).unwrap();
        let inline = Endpoint::from_config(&config(
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            None,
        ))
        .unwrap();
        let sign = |e: &Endpoint| e.signer.sign("evt_1", 1_700_000_000, b"{}").unwrap();
        assert_eq!(sign(&from_file), sign(&inline));
        assert_eq!(
            from_file.id, inline.id,
            "the id depends on URL and account only"
        );

        let bad = dir.path().join("bad");
        std::fs::write(&bad, "hunter2").unwrap();
        let error = Endpoint::from_config(&config(None, Some(&bad))).unwrap_err();
        assert!(
            matches!(error, EndpointError::BadSecretFile { .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"));
        let missing = Endpoint::from_config(&config(None, Some(&dir.path().join("none"))));
        assert!(matches!(missing, Err(EndpointError::SecretFile { .. })));
    }

    #[test]
    fn the_default_label_names_the_host_and_hides_the_rest_of_the_url() {
        let endpoint = Endpoint::from_config(&config(
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            None,
        ))
        .unwrap();
        assert!(
            endpoint.label.starts_with("hooks.example:8443#"),
            "{}",
            endpoint.label
        );
        for secret in ["user", "pw", "0k3n", "x=1"] {
            assert!(!endpoint.label.contains(secret), "{}", endpoint.label);
            assert!(!endpoint.id.contains(secret));
        }
    }
}
