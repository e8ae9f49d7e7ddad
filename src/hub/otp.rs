//! One-time passwords (DOMAIN.md, "One-time passwords (OTP)").
//!
//! A workstation requires a code when its own flag, its client's group or its team says so.
//! A technician asks for one per workstation; the hub makes it from the OS CSPRNG (16
//! characters from a 32-letter alphabet: 80 bits), keeps its SHA-256 and delivers it out of
//! band: by e-mail when a mail server is configured, else into the outbox admins read. The
//! connect path calls [`Hub::check_connect_otp`] before relaying to the agent; a code is used by
//! one SQL UPDATE, so of many simultaneous uses exactly one succeeds. If the connection then
//! does not open (the end user denies, a wrong passcode), the code is given back.
//!
//! Resending the same code needs the code. It is kept sealed by [`crate::secrets::seal`]
//! (purpose `otp:<id>`) under the hub's `seal.key`, separate from the database: a copy of the
//! database alone reveals no code. Outbox bodies are sealed the same way (`outbox:<code id>`).
//!
//! Rules chosen where DOMAIN.md is silent: one new code per technician and workstation an
//! hour, and separately one emergency code per technician and workstation an hour (so an
//! emergency still works after a normal request, but nobody can flood the admins' mailboxes);
//! a resend at most once a minute per technician and workstation. The hourly check and the
//! insert are one SQL statement, so parallel requests get one code between them. Every code is
//! audited right after it is stored and before it is delivered; a code that reaches neither a
//! mail server nor the outbox is removed again (audited). Expiry is audited promptly by a timer
//! on the hub's clock ([`expiry_timer`]), `at` the moment the code expired.

use crate::hub::audit::AuditEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::{Notify, watch};

use super::Hub;
use super::store::{
    AuditedChange, ChangeOutcome, NewAudit, NewOtp, NewOutbox, OtpRow, OtpUse, WorkstationRow,
};
use crate::protocol::{
    ClientId, ErrorCode, OTP_ALPHABET, OTP_LEN, OtpChannel, OtpDelivery, OtpIssued, OutboxMessage,
    ProtocolError, Refusal, Role, Secret, UserId, UserInfo, WorkstationId, format_otp,
    normalize_otp,
};
use crate::secrets;
use crate::secrets::seal::Purpose;

/// A new code for the same technician and workstation at most this often.
pub const REQUEST_INTERVAL: chrono::Duration = chrono::Duration::hours(1);
/// A resend for the same technician and workstation at most this often.
pub const RESEND_INTERVAL: chrono::Duration = chrono::Duration::minutes(1);
/// The expiry timer re-reads the store at least this often (a wall clock may be set back).
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(60);
/// Longest emergency reason.
pub const MAX_REASON: usize = 500;

/// The hub's mail server, for delivering codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender address.
    pub from: String,
    pub security: SmtpSecurity,
    /// Log in to the mail server (only over TLS: see [`SmtpConfig::check`]).
    pub login: Option<SmtpLogin>,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// Plain SMTP: for a relay on the same host or network, never with a login.
    #[default]
    Plain,
    /// Upgrade with STARTTLS, required (usually port 587).
    StartTls,
    /// TLS from the first byte ("implicit TLS", usually port 465).
    Tls,
}

/// A mail server login. The password's `Debug` is redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpLogin {
    pub user: String,
    pub password: Secret,
}

impl SmtpConfig {
    /// Refuse what would send a password in plain text.
    pub fn check(&self) -> Result<(), String> {
        if self.login.is_some() && self.security == SmtpSecurity::Plain {
            return Err(format!(
                "refusing to log in to the mail server {}:{} over plain text: add --smtp-starttls \
                 (usually port 587) or --smtp-tls (usually port 465), or drop --smtp-user for a \
                 relay that needs no login",
                self.host, self.port
            ));
        }
        Ok(())
    }
}

/// The OTP feature's part of the hub.
pub(super) struct OtpState {
    pub smtp: Option<SmtpConfig>,
    /// A code was issued: the expiry timer re-plans.
    wake: Notify,
    /// The last resend per technician and workstation (kept in memory: a restart forgets it).
    resends: Mutex<HashMap<(UserId, WorkstationId), DateTime<Utc>>>,
}

impl OtpState {
    pub fn new(smtp: Option<SmtpConfig>) -> Self {
        Self {
            smtp,
            wake: Notify::new(),
            resends: Mutex::new(HashMap::new()),
        }
    }
}

fn rate_limited(message: String, wait: u64) -> ProtocolError {
    let mut err = ProtocolError::new(ErrorCode::RateLimited, message);
    err.retry_after_secs = Some(wait);
    err
}

/// A new code in canonical form: 16 characters, 5 bits each (256 is a multiple of 32, so
/// taking each random byte modulo 32 has no bias).
fn new_code() -> Result<String, ProtocolError> {
    let mut bytes = [0u8; OTP_LEN];
    secrets::random_bytes(&mut bytes).map_err(|_| ProtocolError::internal())?;
    Ok(bytes
        .iter()
        .map(|b| OTP_ALPHABET[usize::from(b % 32)] as char)
        .collect())
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn refusal(reason: Refusal, message: String) -> ProtocolError {
    let mut err = ProtocolError::new(ErrorCode::Forbidden, message);
    err.refusal = Some(reason);
    err
}

/// An e-mail to send (or keep in the outbox).
struct Mail {
    to: Vec<String>,
    subject: String,
    body: String,
    kind: &'static str,
}

fn otp_mail(
    user: &UserInfo,
    row: &WorkstationRow,
    code: &str,
    otp: &OtpRow,
    to: Vec<String>,
) -> Mail {
    let host = &row.info.hostname;
    let code = format_otp(code);
    let expires = when(otp.expires_at);
    if otp.emergency {
        let reason = otp.reason.as_deref().unwrap_or("");
        Mail {
            to,
            subject: format!("EMERGENCY one-time password for {} on {host}", user.name),
            body: format!(
                "{} ({}) asked for emergency access to {host} ({}).\n\nReason: {reason}\n\n\
                 If the reason holds, pass this one-time password on to them:\n\n    {code}\n\n\
                 It is valid once, for {} on {host} only, until {expires}.\n",
                user.name, user.email, row.info.id, user.name
            ),
            kind: "emergency",
        }
    } else {
        Mail {
            to,
            subject: format!("Tether one-time password for {host}"),
            body: format!(
                "Your one-time password for {host} ({}):\n\n    {code}\n\n\
                 It is valid once, for {} on {host} only, until {expires}.\n",
                row.info.id, user.name
            ),
            kind: "otp",
        }
    }
}

/// Send by SMTP with lettre.
async fn send_mail(smtp: &SmtpConfig, mail: &Mail) -> Result<(), String> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let mut builder = Message::builder()
        .from(
            smtp.from
                .parse()
                .map_err(|e| format!("sender {:?}: {e}", smtp.from))?,
        )
        .subject(mail.subject.clone());
    for to in &mail.to {
        builder = builder.to(to.parse().map_err(|e| format!("recipient {to:?}: {e}"))?);
    }
    let message = builder
        .body(mail.body.clone())
        .map_err(|e| format!("cannot build the message: {e}"))?;
    smtp.check()?;
    let mut builder = match smtp.security {
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| format!("{}: {e}", smtp.host))?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| format!("{}: {e}", smtp.host))?,
        SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
    }
    .port(smtp.port)
    .timeout(Some(Duration::from_secs(10)));
    if let Some(login) = &smtp.login {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            login.user.clone(),
            login.password.expose().to_owned(),
        ));
    }
    let transport = builder.build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("{}:{}: {e}", smtp.host, smtp.port))
}

impl Hub {
    /// Seal text for keeping in the database under the hub's key.
    fn seal_text(&self, purpose: Purpose<'_>, plain: &str) -> Result<String, ProtocolError> {
        self.seal_key
            .seal(purpose, plain.as_bytes())
            .map_err(|_| ProtocolError::internal())
    }

    fn otp_audit(
        &self,
        user: &UserInfo,
        action: AuditEvent,
        row: &WorkstationRow,
        mut detail: serde_json::Value,
    ) -> NewAudit {
        if let Some(map) = detail.as_object_mut() {
            map.insert("hostname".into(), row.info.hostname.clone().into());
        }
        self.user_record(user, action, Some(row.info.id.clone()), detail)
    }

    /// Audit codes that expired unused (each once), at the moment each expired.
    async fn note_expired_otps(&self) -> Result<(), ProtocolError> {
        let now = self.now();
        // Each noted expiry and its record: one commit.
        let records = |outcome: &ChangeOutcome| {
            let ChangeOutcome::Otps(expired) = outcome else {
                return Vec::new();
            };
            expired
                .iter()
                .map(|otp| NewAudit {
                    at: otp.expires_at,
                    actor: "hub".into(),
                    actor_email: None,
                    team_id: Some(otp.team_id.clone()),
                    action: AuditEvent::OtpExpire,
                    target: Some(otp.workstation_id.clone()),
                    detail: serde_json::json!({
                        "otp": otp.id,
                        "user": otp.user_id,
                        "emergency": otp.emergency,
                        "expired_at": otp.expires_at,
                    }),
                })
                .collect()
        };
        self.commit(AuditedChange::ExpireOtps { now }, records)
            .await?;
        Ok(())
    }

    /// Send a mail, or keep it in the outbox (no mail server, or sending failed: nothing lost).
    async fn deliver(
        &self,
        user: &UserInfo,
        row: &WorkstationRow,
        otp_id: &str,
        mail: Mail,
    ) -> Result<OtpDelivery, ProtocolError> {
        let failure = match &self.otp.smtp {
            Some(smtp) if !mail.to.is_empty() => match send_mail(smtp, &mail).await {
                Ok(()) => {
                    return Ok(OtpDelivery {
                        channel: OtpChannel::Email,
                        to: mail.to,
                        error: None,
                    });
                }
                Err(e) => Some(e),
            },
            Some(_) => Some("nobody to send it to has an e-mail address".to_owned()),
            None => None,
        };
        let why = match &failure {
            Some(e) => format!("e-mail failed: {e}"),
            None => "no mail server configured".to_owned(),
        };
        let failed = failure.as_ref().map(|e| {
            tracing::warn!(error = %e, "one-time password e-mail failed; kept in the outbox");
            let detail = serde_json::json!({ "otp": otp_id, "to": mail.to, "error": e });
            self.otp_audit(user, AuditEvent::OtpDeliveryFailed, row, detail)
        });
        let new = NewOutbox {
            at: self.now(),
            recipients: mail.to.join(", "),
            subject: mail.subject.clone(),
            body_sealed: self.seal_text(Purpose::Outbox(otp_id), &mail.body)?,
            kind: mail.kind.into(),
            why: why.clone(),
            otp_id: Some(otp_id.to_owned()),
        };
        match failed {
            // The failed sending and the mail kept instead: one commit.
            Some(record) => {
                let change = AuditedChange::AddOutbox(Box::new(new));
                self.commit(change, move |_| vec![record.clone()]).await?;
            }
            // No mail server: the issue's own record already says "outbox".
            None => {
                self.db(move |s| s.add_outbox(new)).await?;
            }
        }
        Ok(OtpDelivery {
            channel: OtpChannel::Outbox,
            to: mail.to,
            error: failure.map(|e| format!("{e}; the code is in the hub's outbox for its recipients (tether ctl outbox list)")),
        })
    }

    /// Who a code goes to: the technician, or for an emergency the admins of their team (and
    /// its owner): never another team's.
    async fn otp_recipients(
        &self,
        user: &UserInfo,
        emergency: bool,
    ) -> Result<Vec<String>, ProtocolError> {
        if emergency {
            let team = user.team_id.clone();
            self.db(move |s| s.admin_emails(&team)).await
        } else if user.email.is_empty() {
            Ok(Vec::new())
        } else {
            Ok(vec![user.email.clone()])
        }
    }

    /// A technician asks for a code for a workstation (`emergency`: with this reason).
    pub(super) async fn request_otp(
        &self,
        user: &UserInfo,
        key: &str,
        emergency: Option<String>,
    ) -> Result<OtpIssued, ProtocolError> {
        let row = self.team_workstation(&user.team_id, key).await?;
        self.note_expired_otps().await?;
        if !row.info.otp_required {
            return Err(ProtocolError::new(
                ErrorCode::Conflict,
                format!(
                    "{} does not require a one-time password: connect without one",
                    row.info.hostname
                ),
            ));
        }
        let reason = match emergency {
            None => None,
            Some(r) => {
                let r = r.trim().to_owned();
                if r.is_empty() || r.chars().count() > MAX_REASON {
                    return Err(ProtocolError::bad_request(format!(
                        "an emergency request needs a reason of 1 to {MAX_REASON} characters"
                    )));
                }
                Some(
                    r.chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect(),
                )
            }
        };
        // As stored (microseconds), so a resend reports the same times.
        let now = self.now().trunc_subsecs(6);
        let code = new_code()?;
        let id = secrets::new_id("otp").map_err(|_| ProtocolError::internal())?;
        let otp = OtpRow {
            id: id.clone(),
            user_id: user.id.clone(),
            workstation_id: row.info.id.clone(),
            team_id: row.team_id.clone(),
            issued_at: now,
            expires_at: now + self.limits.otp_ttl,
            used_at: None,
            emergency: reason.is_some(),
            reason: reason.clone(),
            sealed: self.seal_text(Purpose::Otp(&id), &code)?,
        };
        let new = NewOtp {
            id: otp.id.clone(),
            code_hash: secrets::hash_token(&code),
            user_id: otp.user_id.clone(),
            workstation_id: otp.workstation_id.clone(),
            team_id: otp.team_id.clone(),
            issued_at: otp.issued_at,
            expires_at: otp.expires_at,
            emergency: otp.emergency,
            reason: otp.reason.clone(),
            sealed: otp.sealed.clone(),
        };
        // Who it goes to, known before it exists, so its record can say.
        let to = self.otp_recipients(user, otp.emergency).await?;
        let action = if otp.emergency {
            AuditEvent::OtpEmergency
        } else {
            AuditEvent::OtpIssue
        };
        let planned = match &self.otp.smtp {
            Some(_) if !to.is_empty() => OtpChannel::Email,
            _ => OtpChannel::Outbox,
        };
        let detail = serde_json::json!({
            "otp": id,
            "emergency": otp.emergency,
            "reason": reason,
            "expires_at": otp.expires_at,
            "delivery": planned,
            "to": to,
        });
        let record = self.otp_audit(user, action, &row, detail);
        // The hourly check, the insert and its record in one commit: parallel requests get one
        // code, and no code exists unaudited (it is audited before it leaves the hub).
        let change = AuditedChange::IssueOtp {
            new: Box::new(new),
            since: now - REQUEST_INTERVAL,
        };
        let issued_now = self.commit(change, move |_| vec![record.clone()]).await?;
        if let ChangeOutcome::OtpInTheWay(last) = issued_now {
            let next = last.issued_at + REQUEST_INTERVAL;
            let wait = super::preauth::wait_secs(next, now);
            let detail = serde_json::json!({
                "retry_after_secs": wait,
                "last": last.id,
                "emergency": otp.emergency,
            });
            self.audit(self.otp_audit(user, AuditEvent::OtpRequestRefused, &row, detail))
                .await?;
            let kind = if otp.emergency {
                "an emergency one-time password"
            } else {
                "a one-time password"
            };
            return Err(rate_limited(
                format!(
                    "{kind} for {} was issued at {}: a new one is possible in {} min \
                     (at {}); resend the current one meanwhile",
                    row.info.hostname,
                    when(last.issued_at),
                    wait.div_ceil(60),
                    when(next)
                ),
                wait,
            ));
        }
        self.otp.wake.notify_one();
        let delivery = match self
            .deliver(user, &row, &id, otp_mail(user, &row, &code, &otp, to))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                self.withdraw_otp(user, &row, &id, &e).await;
                return Err(e);
            }
        };
        Ok(issued(&row, &otp, false, delivery))
    }

    /// Remove a code that reached nobody (neither a mail server nor the outbox), so it does not
    /// count toward the hourly limit; audited.
    async fn withdraw_otp(
        &self,
        user: &UserInfo,
        row: &WorkstationRow,
        id: &str,
        why: &ProtocolError,
    ) {
        let detail = serde_json::json!({
            "otp": id,
            "because": why.message,
            "removed": true,
        });
        let record = self.otp_audit(user, AuditEvent::OtpWithdraw, row, detail);
        // Removed only with its record: one commit.
        let change = AuditedChange::WithdrawOtp { id: id.to_owned() };
        if let Err(e) = self.commit(change, move |_| vec![record.clone()]).await {
            tracing::error!(otp = %id, %e, "an undelivered one-time password could not be withdrawn (it expires unused)");
        }
    }

    /// Deliver the technician's still valid code for a workstation again.
    pub(super) async fn resend_otp(
        &self,
        user: &UserInfo,
        key: &str,
    ) -> Result<OtpIssued, ProtocolError> {
        let row = self.team_workstation(&user.team_id, key).await?;
        self.note_expired_otps().await?;
        let (uid, wid) = (user.id.clone(), row.info.id.clone());
        let now = self.now();
        let otp = self
            .db(move |s| s.latest_otp(&uid, &wid, None))
            .await?
            .filter(|o| o.used_at.is_none() && o.expires_at > now)
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::NotFound,
                    format!(
                        "no valid one-time password of yours for {} to resend: request one",
                        row.info.hostname
                    ),
                )
            })?;
        let code = self
            .seal_key
            .open_text(Purpose::Otp(&otp.id), &otp.sealed)
            .ok_or_else(|| {
                tracing::error!(otp = %otp.id, "cannot unseal a one-time password: was seal.key replaced?");
                ProtocolError::new(
                    ErrorCode::Internal,
                    "this one-time password cannot be resent (the hub's seal.key changed): request a new one",
                )
            })?;
        // At most once a minute per technician and workstation: checked and noted at once.
        {
            let mut resends = self.otp.resends.lock().unwrap_or_else(|p| p.into_inner());
            resends.retain(|_, at| *at + RESEND_INTERVAL > now);
            let pair = (user.id.clone(), row.info.id.clone());
            if let Some(last) = resends.get(&pair) {
                let next = *last + RESEND_INTERVAL;
                let wait = super::preauth::wait_secs(next, now);
                return Err(rate_limited(
                    format!(
                        "the one-time password for {} was just resent: again in {wait} s",
                        row.info.hostname
                    ),
                    wait,
                ));
            }
            resends.insert(pair, now);
        }
        let to = self.otp_recipients(user, otp.emergency).await?;
        let delivery = self
            .deliver(user, &row, &otp.id, otp_mail(user, &row, &code, &otp, to))
            .await?;
        let detail = serde_json::json!({
            "otp": otp.id,
            "emergency": otp.emergency,
            "delivery": delivery.channel,
            "to": delivery.to,
        });
        self.audit(self.otp_audit(user, AuditEvent::OtpResend, &row, detail))
            .await?;
        Ok(issued(&row, &otp, true, delivery))
    }

    /// The session-start check: where the workstation requires a code, the presented one must
    /// be valid and is used now. Returns the used code's id (to give back if the connection does
    /// not open).
    pub(super) async fn check_connect_otp(
        &self,
        user: &UserInfo,
        row: &WorkstationRow,
        otp: Option<Secret>,
    ) -> Result<Option<String>, ProtocolError> {
        if !row.info.otp_required {
            return Ok(None);
        }
        self.note_expired_otps().await?;
        let host = &row.info.hostname;
        let Some(otp) = otp else {
            let detail =
                serde_json::json!({ "reason": Refusal::OtpRequired, "secret_presented": false });
            self.audit(self.otp_audit(user, AuditEvent::ConnectRefused, row, detail))
                .await?;
            return Err(refusal(
                Refusal::OtpRequired,
                format!(
                    "{host} requires a one-time password: request one (p in the console, or \
                     tether ctl otp request {host}) and connect with it"
                ),
            ));
        };
        let fail = |why: &'static str, otp_id: Option<String>| {
            let detail = serde_json::json!({ "reason": why, "otp": otp_id });
            self.otp_audit(user, AuditEvent::OtpFail, row, detail)
        };
        let Ok(code) = normalize_otp(otp.expose()) else {
            self.audit(fail("malformed", None)).await?;
            return Err(refusal(
                Refusal::OtpInvalid,
                "that is not a one-time password: they look like XXXX-XXXX-XXXX-XXXX".into(),
            ));
        };
        let hash = secrets::hash_token(&code);
        let (uid, wid, now) = (user.id.clone(), row.info.id.clone(), self.now());
        let change = AuditedChange::UseOtp {
            code_hash: hash,
            user: uid,
            workstation: wid,
            now,
        };
        // Used only with its record: one commit. A refusal changes nothing (audited below).
        let record = self.otp_audit(user, AuditEvent::OtpUse, row, serde_json::json!({}));
        let outcome = self
            .commit(change, move |outcome| match outcome {
                ChangeOutcome::Otp(used) => match &**used {
                    OtpUse::Accepted(o) => {
                        let mut record = record.clone();
                        record.detail["otp"] = o.id.clone().into();
                        record.detail["emergency"] = o.emergency.into();
                        vec![record]
                    }
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            })
            .await?;
        let ChangeOutcome::Otp(used) = outcome else {
            return Err(ProtocolError::internal());
        };
        let (why, id, message) = match *used {
            OtpUse::Accepted(o) => return Ok(Some(o.id)),
            OtpUse::Unknown => (
                "wrong",
                None,
                "the one-time password is wrong: check it, or request a new one".to_owned(),
            ),
            OtpUse::NotYours(o) => (
                "other technician or workstation",
                Some(o.id),
                format!("that one-time password is not for you on {host}: request your own"),
            ),
            OtpUse::Used(o) => (
                "already used",
                Some(o.id),
                "that one-time password was already used: request a new one".to_owned(),
            ),
            OtpUse::Expired(o) => (
                "expired",
                Some(o.id),
                format!(
                    "that one-time password expired at {}: request a new one",
                    when(o.expires_at)
                ),
            ),
        };
        self.audit(fail(why, id)).await?;
        Err(refusal(Refusal::OtpInvalid, message))
    }

    /// Give a code back: the connection it was used for did not open (audited).
    pub(super) async fn release_otp(
        &self,
        user: &UserInfo,
        row: &WorkstationRow,
        id: String,
        why: &ProtocolError,
    ) {
        let detail = serde_json::json!({ "otp": id, "because": why.message });
        let record = self.otp_audit(user, AuditEvent::OtpReturn, row, detail);
        // Given back only with its record: otherwise it stays used.
        let change = AuditedChange::ReleaseOtp { id };
        if let Err(e) = self.commit(change, move |_| vec![record.clone()]).await {
            tracing::warn!(%e, "could not give a one-time password back");
        }
    }

    /// Require (or not) a code for a workstation. Admins only: it is a security setting.
    pub(super) async fn set_workstation_otp(
        &self,
        user: &UserInfo,
        key: &str,
        required: bool,
    ) -> Result<crate::protocol::WorkstationInfo, ProtocolError> {
        let row = self.team_workstation(&user.team_id, key).await?;
        let record = self.otp_audit(user, AuditEvent::OtpRequire, &row, serde_json::json!({}));
        let change = AuditedChange::SetWorkstationOtp {
            workstation: row.info.id.clone(),
            required,
        };
        // The flag and its record in one commit; "effective" as the transaction sees it.
        self.commit(change, move |outcome| {
            let ChangeOutcome::Workstation(after) = outcome else {
                return Vec::new();
            };
            let mut record = record.clone();
            record.detail["required"] = required.into();
            record.detail["effective"] = after.info.otp_required.into();
            vec![record]
        })
        .await?;
        let info = self.workstation_info(&row.info.id).await?;
        self.publish(
            &row.team_id,
            crate::protocol::HubEvent::Workstation {
                workstation: info.clone(),
            },
        );
        Ok(info)
    }

    /// Require (or not) a code for a client's group, or the whole team. Admins only.
    pub(super) async fn set_group_otp(
        &self,
        user: &UserInfo,
        client: Option<ClientId>,
        required: bool,
    ) -> Result<(), ProtocolError> {
        let team = user.team_id.clone();
        let client_id = match client {
            None => None,
            Some(c) => {
                let t = team.clone();
                let found = self.db(move |s| s.client(&t, &c)).await?;
                Some(found.ok_or_else(|| ProtocolError::not_found("client"))?.id)
            }
        };
        let entry = NewAudit {
            at: self.now(),
            actor: user.name.clone(),
            actor_email: Some(user.email.clone()),
            team_id: Some(team.clone()),
            action: AuditEvent::OtpRequireGroup,
            target: client_id.clone(),
            detail: serde_json::json!({ "required": required }),
        };
        let change = AuditedChange::SetGroupOtp {
            team: team.clone(),
            client: client_id.clone(),
            required,
        };
        self.commit(change, move |_| vec![entry.clone()]).await?;
        // Every workstation of the group changed: tell the consoles.
        let t = team.clone();
        let rows = self
            .db(move |s| s.workstations(&t, client_id.as_ref()))
            .await?;
        for row in rows {
            let info = self.with_presence(row.info);
            self.publish(
                &team,
                crate::protocol::HubEvent::Workstation { workstation: info },
            );
        }
        Ok(())
    }

    /// A page of the reader's outbox, newest first, bodies unsealed, and the cursor of the
    /// next; reading it is audited. A message is shown only to its recipient: a code to the
    /// technician who asked for it, an emergency code to the admins (and owner) of that
    /// technician's team. Nobody else ever sees a code, whatever their role.
    pub(super) async fn list_outbox(
        &self,
        user: &UserInfo,
        limit: u32,
        page: &crate::protocol::PageRequest,
    ) -> Result<(Vec<OutboxMessage>, Option<crate::protocol::Cursor>), ProtocolError> {
        let after: Option<std::cmp::Reverse<i64>> = super::pager::start("outbox", page)?;
        self.note_expired_otps().await?;
        let limit = limit.clamp(1, 500);
        let reader = user.id.clone();
        let admin_of = matches!(user.role, Role::Admin | Role::Owner).then(|| user.team_id.clone());
        let rows = self
            .db(move |s| s.outbox(&reader, admin_of.as_ref(), limit))
            .await?;
        let messages = rows
            .into_iter()
            .filter(|r| after.is_none_or(|a| std::cmp::Reverse(r.id) > a))
            .map(|r| OutboxMessage {
                body: self
                    .seal_key
                    .open_text(
                        Purpose::Outbox(r.otp_id.as_deref().unwrap_or("")),
                        &r.body_sealed,
                    )
                    .unwrap_or_else(|| {
                        "(cannot be read: the hub's seal.key changed since this was written)".into()
                    }),
                id: r.id,
                at: r.at,
                to: r.recipients,
                subject: r.subject,
                kind: r.kind,
                why: r.why,
            });
        let page = super::pager::paginate(
            "outbox",
            messages,
            super::pager::rows_wanted(page),
            super::pager::PAGE_BUDGET,
            |m| std::cmp::Reverse(m.id),
        )?;
        let entry = NewAudit {
            at: self.now(),
            actor: user.name.clone(),
            actor_email: Some(user.email.clone()),
            team_id: Some(user.team_id.clone()),
            action: AuditEvent::OutboxRead,
            target: None,
            detail: serde_json::json!({ "messages": page.rows.len() }),
        };
        self.audit(entry).await?;
        Ok((page.rows, page.next))
    }
}

/// The expiry timer: audits each code's expiry when it happens (on the hub's clock), and
/// re-plans when a code is issued or the clock jumps.
pub(super) async fn expiry_timer(hub: Arc<Hub>, mut stop: watch::Receiver<bool>) {
    let mut jumps = hub.clock.jumps();
    loop {
        if let Err(e) = hub.note_expired_otps().await {
            tracing::warn!(%e, "could not audit expired one-time passwords");
        }
        let next = match hub.db(|s| s.next_otp_expiry()).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(%e, "could not read the next one-time password expiry");
                None
            }
        };
        let wait = next
            .and_then(|t| (t - hub.now()).to_std().ok())
            .map_or(MAX_TIMER_SLEEP, |d| {
                d.min(MAX_TIMER_SLEEP) + Duration::from_millis(1)
            });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = hub.otp.wake.notified() => {}
            _ = async {
                match jumps.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = stop.changed() => return,
        }
    }
}

fn issued(row: &WorkstationRow, otp: &OtpRow, resent: bool, delivery: OtpDelivery) -> OtpIssued {
    OtpIssued {
        id: otp.id.clone(),
        workstation_id: row.info.id.clone(),
        hostname: row.info.hostname.clone(),
        issued_at: otp.issued_at,
        expires_at: otp.expires_at,
        emergency: otp.emergency,
        resent,
        delivery,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_80_bits_in_the_alphabet_and_normalise_to_themselves() {
        let a = new_code().expect("code");
        let b = new_code().expect("code");
        assert_ne!(a, b);
        assert_eq!(a.len(), OTP_LEN);
        assert_eq!(normalize_otp(&format_otp(&a)).as_deref(), Ok(a.as_str()));
        assert_eq!(
            normalize_otp(&format_otp(&a).to_lowercase()).as_deref(),
            Ok(a.as_str())
        );
    }
}
