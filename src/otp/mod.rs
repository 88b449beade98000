//! One-time-code policy: generation, keyed hashing, lifetime and attempt rules.
//! Pure rules and small types; the atomic read-modify-write lives in `store`.

mod clock;
mod code;
mod hasher;
mod rules;

pub use clock::{Clock, ManualClock, SystemClock};
pub use code::OtpCode;
pub use hasher::{CodeHasher, KeyError, SecretKey};
pub use rules::{judge_attempt, AttemptVerdict, CodeState};
mod template;

pub use template::{ServiceName, ServiceNameError, Template, TemplateError, CODE_PLACEHOLDER};
mod sealer;

pub use sealer::{SealError, TextSealer};
