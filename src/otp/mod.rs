//! One-time-code policy: generation, keyed hashing, lifetime, attempt and abuse rules.
//! Pure rules and small types; the atomic read-modify-write lives in `store`.

mod clock;
mod code;
mod hasher;
mod limits;
mod pseudonym;
mod rules;
mod sealer;
mod template;

pub use clock::{Clock, ManualClock, SystemClock};
pub use code::OtpCode;
pub use hasher::{CodeHasher, KeyError, SecretKey};
pub use limits::{
    destination_allowed, AccountBudget, FailureCount, Gcra, LockPolicy, SendHistory, SendLimits,
    SendRefusal,
};
pub use pseudonym::{Pseudonymizer, PSEUDONYM_LEN};
pub use rules::{judge_attempt, AttemptVerdict, CodeState};
pub use sealer::{SealError, TextSealer};
pub use template::{ServiceName, ServiceNameError, Template, TemplateError, CODE_PLACEHOLDER};
