//! The one send path of `/2fa/send`, `/sms/send` and `/cgi-bin/sendsms`: the gate
//! (a modem that could send), the `Idempotency-Key` sequence, the destination and
//! parts rules, then a code and its SMS, or a relayed text, queued durably.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Policy, TwoFactor};
use crate::otp::{
    destination_allowed, LockPolicy, OtpCode, SendLimits, SendRefusal, ServiceName, Template,
};
use crate::sms::{self, PhoneNumber, SmsText};
use crate::store::{Begin, NewCode, NewMessage, NewText, StoreError, StoredAnswer};

/// A validated `/2fa/send` request: a code goes out in `body`.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub service: ServiceName,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub body: Template,
}

impl SendRequest {
    /// SHA-256 over the fields, length-prefixed: the same request gives the same value
    /// whatever the JSON's key order or spacing.
    pub fn fingerprint(&self) -> String {
        fingerprint(&[
            self.service.as_str(),
            self.from.as_str(),
            self.to.as_str(),
            self.body.as_str(),
        ])
    }
}

/// A validated relay request: a text the account wrote, sent as it is.
#[derive(Debug, Clone)]
pub struct RelayRequest {
    pub to: PhoneNumber,
    /// The number to send from (a modem that owns it); any modem when absent.
    pub from: Option<PhoneNumber>,
    pub text: SmsText,
}

impl RelayRequest {
    /// As [`SendRequest::fingerprint`], under a first field no service name can be
    /// (it is empty), so that a key used for a code never replays a relay's answer.
    pub fn fingerprint(&self) -> String {
        fingerprint(&[
            "",
            self.from.as_ref().map_or("", PhoneNumber::as_str),
            self.to.as_str(),
            self.text.as_str(),
        ])
    }
}

fn fingerprint(fields: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// What is to be sent.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Code(SendRequest),
    Text(RelayRequest),
}

impl Outgoing {
    fn fingerprint(&self) -> String {
        match self {
            Self::Code(request) => request.fingerprint(),
            Self::Text(request) => request.fingerprint(),
        }
    }
}

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(key: &str) -> Option<Self> {
        ((1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message the store queued: its id (the API's `requestID`) and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub message_id: String,
    pub expires_at: DateTime<Utc>,
}

impl Issued {
    /// The answer kept under an `Idempotency-Key`: the body `/2fa/send` answers (what
    /// earlier versions kept, so their keys still replay).
    fn stored_answer(&self) -> StoredAnswer {
        StoredAnswer {
            status: 200,
            body: json!({
                "code": 200,
                "message": "OK",
                "requestID": self.message_id,
                "status": "queued",
                "expires_at": self.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
            .to_string(),
        }
    }

    fn from_stored(answer: &StoredAnswer) -> Result<Self, SendError> {
        let body: serde_json::Value =
            serde_json::from_str(&answer.body).map_err(|e| corrupt_answer(&e.to_string()))?;
        let message_id = body["requestID"]
            .as_str()
            .ok_or_else(|| corrupt_answer("no requestID"))?
            .to_owned();
        let expires_at = body["expires_at"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .ok_or_else(|| corrupt_answer("no expires_at"))?
            .with_timezone(&Utc);
        Ok(Self {
            message_id,
            expires_at,
        })
    }
}

fn corrupt_answer(detail: &str) -> SendError {
    SendError::Store(StoreError::Corrupt {
        what: "idempotency",
        detail: format!("a stored answer that is not a send's: {detail}"),
    })
}

/// A send that was accepted: now, or before under the same `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub issued: Issued,
    /// The answer of an earlier request with the same key and body.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no modem could send it: {0}")]
    NoModemAvailable(String),
    #[error("the SMS would need {parts_needed} parts; at most {max_parts} are allowed")]
    BodyTooLong {
        parts_needed: usize,
        max_parts: usize,
    },
    #[error("the destination is not in otp.allowed_prefixes")]
    DestinationNotAllowed,
    #[error("refused by a send limit: {0:?}")]
    Limited(SendRefusal),
    #[error("a request with this Idempotency-Key is still being answered")]
    KeyInFlight,
    #[error("this Idempotency-Key was used with another request")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TwoFactor {
    /// Send `outgoing` for `account`, at most once per `key`: a key seen with the same
    /// request replays its first answer; a refusal frees the key (nothing was sent).
    pub async fn submit(
        &self,
        account: &str,
        key: Option<&IdempotencyKey>,
        outgoing: &Outgoing,
    ) -> Result<Accepted, SendError> {
        let Some(key) = key else {
            let issued = self.accept(account, outgoing).await?;
            return Ok(Accepted {
                issued,
                replayed: false,
            });
        };
        let begin = self
            .store
            .begin_idempotent(account, key.as_str(), &outgoing.fingerprint())
            .await?;
        match begin {
            Begin::Proceed => {}
            Begin::Replay(answer) => {
                return Ok(Accepted {
                    issued: Issued::from_stored(&answer)?,
                    replayed: true,
                })
            }
            Begin::InFlight => return Err(SendError::KeyInFlight),
            Begin::Mismatch => return Err(SendError::KeyReused),
        }
        let outcome = self.accept(account, outgoing).await;
        let answer = outcome.as_ref().ok().map(Issued::stored_answer);
        if let Err(e) = self
            .store
            .finish_idempotent(account, key.as_str(), answer)
            .await
        {
            tracing::error!(error = %e, "could not record an idempotent answer");
        }
        Ok(Accepted {
            issued: outcome?,
            replayed: false,
        })
    }

    async fn accept(&self, account: &str, outgoing: &Outgoing) -> Result<Issued, SendError> {
        if let Some(capacity) = &self.capacity {
            capacity.can_send().map_err(|reason| {
                tracing::warn!(%reason, "refusing a send: no modem could take it");
                SendError::NoModemAvailable(reason)
            })?;
        }
        match outgoing {
            Outgoing::Code(request) => self.send(account, request).await,
            Outgoing::Text(request) => self.relay(account, request).await,
        }
    }

    /// Generate a code, store its hash and queue its SMS; returns once both are
    /// durable. No gate and no key: [`TwoFactor::submit`] adds them.
    pub async fn send(&self, account: &str, request: &SendRequest) -> Result<Issued, SendError> {
        let policy = self.policy();
        let code = OtpCode::generate(policy.otp.code_length);
        let text = request.body.render(&code);
        admissible(&policy, &request.to, &text)?;
        let ttl = i64::try_from(policy.otp.ttl_secs).unwrap_or(i64::MAX);
        let scope = super::scope(account, &request.service, &request.to);
        let message_id = super::new_message_id();
        let new = NewCode {
            hash: self.hasher.hash_code(&scope.binding(), &code),
            ttl: chrono::Duration::seconds(ttl),
            max_attempts: policy.otp.max_attempts,
            message: NewMessage {
                id: message_id.clone(),
                account: account.to_owned(),
                from: request.from.as_str().to_owned(),
                to: request.to.as_str().to_owned(),
                text,
            },
            service: request.service.as_str().to_owned(),
            to_masked: request.to.masked(),
            scope,
        };
        let limits = SendLimits::from_config(&policy.otp);
        let lock = LockPolicy::from_config(&policy.otp);
        let issued = self
            .store
            .issue_code(&new, &limits, &lock)
            .await?
            .map_err(|refusal| refused(&request.to, request.service.as_str(), refusal))?;
        self.queued.notify_one();
        tracing::info!(message_id = %message_id, to = %request.to, service = request.service.as_str(), "code issued, SMS queued");
        Ok(Issued {
            message_id,
            expires_at: issued.expires_at,
        })
    }

    /// Queue a relayed text under the number's daily cap and the account's rate (a
    /// relay has no cooldown: the client decides when to send). Durable on return.
    pub async fn relay(&self, account: &str, request: &RelayRequest) -> Result<Issued, SendError> {
        let policy = self.policy();
        admissible(&policy, &request.to, request.text.as_str())?;
        let message_id = super::new_message_id();
        let ttl = i64::try_from(policy.sms.relay_ttl_secs).unwrap_or(i64::MAX);
        let new = NewText {
            message: NewMessage {
                id: message_id.clone(),
                account: account.to_owned(),
                from: request
                    .from
                    .as_ref()
                    .map_or_else(String::new, |from| from.as_str().to_owned()),
                to: request.to.as_str().to_owned(),
                text: request.text.as_str().to_owned(),
            },
            ttl: chrono::Duration::seconds(ttl),
            to_masked: request.to.masked(),
        };
        let limits = SendLimits {
            cooldown: chrono::Duration::zero(),
            ..SendLimits::from_config(&policy.otp)
        };
        let queued = self
            .store
            .queue_text(&new, &limits)
            .await?
            .map_err(|refusal| refused(&request.to, crate::store::RELAY_SERVICE, refusal))?;
        self.queued.notify_one();
        tracing::info!(message_id = %message_id, to = %request.to, "relayed SMS queued");
        Ok(Issued {
            message_id,
            expires_at: queued.expires_at,
        })
    }
}

/// The rules every outgoing SMS meets: a destination the operator allows, and a text
/// within `[sms] max_parts`.
fn admissible(policy: &Policy, to: &PhoneNumber, text: &str) -> Result<(), SendError> {
    if !destination_allowed(&policy.otp.allowed_prefixes, to.as_str()) {
        return Err(SendError::DestinationNotAllowed);
    }
    let plan = sms::plan_with(text, policy.sms.concat_reference_16bit);
    if plan.parts > policy.sms.max_parts {
        return Err(SendError::BodyTooLong {
            parts_needed: plan.parts,
            max_parts: policy.sms.max_parts,
        });
    }
    Ok(())
}

fn refused(to: &PhoneNumber, service: &str, refusal: SendRefusal) -> SendError {
    tracing::info!(%to, service, refusal = ?refusal, "send refused by a limit");
    SendError::Limited(refusal)
}
