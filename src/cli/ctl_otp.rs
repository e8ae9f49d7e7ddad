//! `tether ctl otp ...`, `ctl outbox list`, `ctl workstations require-otp`, `ctl groups
//! require-otp`, and the hub's OTP flags (issue 5: one-time passwords).

use clap::Subcommand;

use super::Failure;
use super::ctl_output::{OnOff, hub_error, print_json, when};
use crate::client::HubClient;
use crate::hub::otp::{SmtpConfig, SmtpLogin, SmtpSecurity};
use crate::protocol::{ConsoleReply, ConsoleRequest, OtpChannel, OtpIssued, Secret};

#[derive(Debug, Subcommand)]
pub enum OtpCommand {
    /// Ask for a one-time password for a workstation (id or host name); it is sent to your
    /// e-mail, or to the hub's outbox. At most one new one an hour per workstation.
    Request {
        workstation: String,
        /// Emergency access: the reason. The code goes to the admins, who pass it on, and the
        /// request is flagged in the audit log.
        #[arg(long, value_name = "REASON")]
        emergency: Option<String>,
    },
    /// Send your still valid one-time password for a workstation again.
    Resend { workstation: String },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Mail the hub kept instead of sending (admins).
    List,
}

/// `tether hub` flags for one-time passwords.
#[derive(Debug, Clone, clap::Args)]
pub struct HubOtpArgs {
    /// Mail server (HOST:PORT) for one-time passwords; without it they go to the outbox.
    #[arg(long, value_name = "HOST:PORT", requires = "smtp_from")]
    pub smtp: Option<String>,
    /// Sender address of the hub's mail.
    #[arg(long, value_name = "ADDR")]
    pub smtp_from: Option<String>,
    /// Upgrade the mail connection with STARTTLS (required when set; usually port 587).
    #[arg(long, requires = "smtp")]
    pub smtp_starttls: bool,
    /// Speak TLS to the mail server from the start (implicit TLS; usually port 465).
    #[arg(long, requires = "smtp", conflicts_with = "smtp_starttls")]
    pub smtp_tls: bool,
    /// Log in to the mail server as this user (needs --smtp-starttls or --smtp-tls).
    #[arg(long, value_name = "USER", requires_all = ["smtp", "smtp_password_file"])]
    pub smtp_user: Option<String>,
    /// File whose first line is the mail server password (never given on the command line).
    #[arg(long, value_name = "FILE", requires = "smtp_user")]
    pub smtp_password_file: Option<std::path::PathBuf>,
    /// Lifetime of a one-time password: 90s, 30m, 2h.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub otp_ttl: chrono::Duration,
}

impl HubOtpArgs {
    pub fn smtp(&self) -> Result<Option<SmtpConfig>, Failure> {
        let Some(addr) = &self.smtp else {
            return Ok(None);
        };
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| Failure {
                message: format!("--smtp {addr:?}: give HOST:PORT, e.g. mail.example.com:587"),
                code: 2,
            })?;
        let from = self.smtp_from.clone().unwrap_or_default();
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(Failure {
                message: format!("--smtp-from {from:?} is not an e-mail address"),
                code: 2,
            });
        }
        let security = match (self.smtp_starttls, self.smtp_tls) {
            (true, _) => SmtpSecurity::StartTls,
            (false, true) => SmtpSecurity::Tls,
            (false, false) => SmtpSecurity::Plain,
        };
        let usage = |message: String| Failure { message, code: 2 };
        let mut config = SmtpConfig {
            host: host.trim_matches(['[', ']']).to_owned(),
            port,
            from,
            security,
            login: None,
        };
        if let Some(user) = &self.smtp_user {
            // Before reading the password: refuse plain text whatever the file holds.
            config.login = Some(SmtpLogin {
                user: user.clone(),
                password: Secret::new(String::new()),
            });
            config.check().map_err(usage)?;
            let path = self
                .smtp_password_file
                .as_ref()
                .ok_or_else(|| usage("--smtp-user needs --smtp-password-file FILE".into()))?;
            config.login = Some(SmtpLogin {
                user: user.clone(),
                password: Secret::new(read_password_file(path)?),
            });
        }
        Ok(Some(config))
    }
}

/// The first line of a password file, without its line ending.
fn read_password_file(path: &std::path::Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure {
        message: format!("--smtp-password-file {}: {e}", path.display()),
        code: 2,
    })?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        return Err(Failure {
            message: format!(
                "--smtp-password-file {}: the first line is empty; put the mail server password there",
                path.display()
            ),
            code: 2,
        });
    }
    Ok(password)
}

/// `90s`, `30m`, `2h` (a bare number is minutes).
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "m"), |i| s.split_at(i));
    let range = || format!("{s:?}: give a duration between 1 s and 24 h, e.g. 30m");
    // Digits only, so a parse failure is a number too large for i64: out of range, not garbage.
    let n: i64 = match num.parse() {
        Ok(n) => n,
        Err(_) if !num.is_empty() => return Err(range()),
        Err(_) => return Err(format!("{s:?}: give a number and a unit, e.g. 30m")),
    };
    // Checked constructors: chrono's `seconds`/`minutes`/`hours` panic on huge values.
    let d = match unit {
        "s" => chrono::TimeDelta::try_seconds(n),
        "m" => chrono::TimeDelta::try_minutes(n),
        "h" => chrono::TimeDelta::try_hours(n),
        _ => return Err(format!("{s:?}: the unit is s, m or h")),
    };
    match d {
        Some(d) if n > 0 && d <= chrono::TimeDelta::days(1) => Ok(d),
        _ => Err(range()),
    }
}

async fn ask(client: &HubClient, body: ConsoleRequest) -> Result<ConsoleReply, Failure> {
    client.request(body).await.map_err(hub_error)
}

fn describe(otp: &OtpIssued) -> String {
    let what = match (otp.resent, otp.emergency) {
        (true, _) => "one-time password sent again",
        (false, true) => "emergency one-time password issued",
        (false, false) => "one-time password issued",
    };
    let whom = if otp.delivery.to.is_empty() {
        "nobody with an e-mail address".to_owned()
    } else {
        otp.delivery.to.join(", ")
    };
    let how = match otp.delivery.channel {
        OtpChannel::Email => format!("e-mailed to {whom}"),
        OtpChannel::Outbox => format!("in the hub's outbox for {whom} (tether ctl outbox list)"),
    };
    format!(
        "{what} for {} ({}): {how}; valid once until {}",
        otp.hostname,
        otp.workstation_id,
        when(otp.expires_at)
    )
}

pub async fn otp(client: &HubClient, json: bool, command: OtpCommand) -> Result<(), Failure> {
    let body = match command {
        OtpCommand::Request {
            workstation,
            emergency,
        } => ConsoleRequest::RequestOtp {
            workstation,
            emergency,
        },
        OtpCommand::Resend { workstation } => ConsoleRequest::ResendOtp { workstation },
    };
    let ConsoleReply::Otp { otp } = ask(client, body).await? else {
        return Err("unexpected answer".into());
    };
    if json {
        print_json(&otp)?;
    } else {
        println!("{}", describe(&otp));
    }
    // The code is safe in the outbox, but the requester must know the e-mail did not go.
    match &otp.delivery.error {
        Some(e) => Err(format!("the e-mail could not be sent: {e}").into()),
        None => Ok(()),
    }
}

pub async fn outbox(
    client: &HubClient,
    json: bool,
    limit: Option<u64>,
    command: OutboxCommand,
) -> Result<(), Failure> {
    let OutboxCommand::List = command;
    // The hub keeps the newest 500 for reading; `--limit` stops earlier.
    let newest = limit.map_or(500, |n| u32::try_from(n).unwrap_or(500));
    let messages = super::ctl_list::collect(limit, |page| async move {
        match ask(
            client,
            ConsoleRequest::ListOutbox {
                limit: newest,
                page,
            },
        )
        .await?
        {
            ConsoleReply::Outbox { messages, next, .. } => Ok((messages, next)),
            _ => Err(Failure::from("unexpected answer")),
        }
    })
    .await?;
    if json {
        return print_json(&messages);
    }
    if messages.is_empty() {
        println!("the outbox is empty");
    }
    for m in messages {
        println!("#{} {}  {}  to: {}", m.id, when(m.at), m.kind, m.to);
        println!("subject: {}", m.subject);
        println!("why: {}", m.why);
        for line in m.body.lines() {
            println!("  {line}");
        }
        println!();
    }
    Ok(())
}

pub async fn require_workstation(
    client: &HubClient,
    json: bool,
    workstation: String,
    state: OnOff,
) -> Result<(), Failure> {
    let ConsoleReply::Workstation { workstation } = ask(
        client,
        ConsoleRequest::SetWorkstationOtp {
            workstation,
            required: state == OnOff::On,
        },
    )
    .await?
    else {
        return Err("unexpected answer".into());
    };
    if json {
        return print_json(&workstation);
    }
    let effective = if workstation.otp_required {
        "now requires a one-time password for every connection"
    } else {
        "no longer requires a one-time password"
    };
    let note = if state == OnOff::Off && workstation.otp_required {
        " (its group still requires one)"
    } else {
        ""
    };
    println!(
        "{} ({}) {effective}{note}",
        workstation.hostname, workstation.id
    );
    Ok(())
}

pub async fn require_group(
    client: &HubClient,
    json: bool,
    group: Option<String>,
    state: OnOff,
) -> Result<(), Failure> {
    let required = state == OnOff::On;
    ask(
        client,
        ConsoleRequest::SetGroupOtp {
            client: group.clone(),
            required,
        },
    )
    .await?;
    if json {
        return print_json(&serde_json::json!({ "client": group, "otp": required }));
    }
    println!(
        "one-time passwords {} for every workstation of {}",
        if required { "required" } else { "not required" },
        group.as_deref().unwrap_or("the team")
    );
    Ok(())
}

/// Rows for `ctl groups list`: a column for the OTP requirement.
pub fn otp_cell(required: bool) -> String {
    if required { "required" } else { "-" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("30m"), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_duration("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_duration("2h"), Ok(chrono::Duration::hours(2)));
        assert_eq!(parse_duration("45"), Ok(chrono::Duration::minutes(45)));
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("25h").is_err());
        assert!(parse_duration("m").is_err());
    }

    fn hub_args(extra: &[&str]) -> Result<HubOtpArgs, clap::Error> {
        use clap::Parser;
        let mut argv = vec!["tether", "hub", "--smtp", "mail.example.com:25"];
        argv.extend_from_slice(&["--smtp-from", "hub@example.com"]);
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv)?.command {
            crate::cli::Command::Hub(h) => Ok(h.otp),
            other => panic!("not the hub: {other:?}"),
        }
    }

    #[test]
    fn a_mail_login_over_plain_text_is_refused_at_startup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("smtp-password");
        std::fs::write(&file, "hunter2 hunter2\n").expect("write");
        let file = file.to_str().expect("utf-8");
        let login = ["--smtp-user", "hub", "--smtp-password-file", file];

        let e = hub_args(&login)
            .expect("parses")
            .smtp()
            .expect_err("refused");
        assert_eq!(e.code, 2);
        assert!(e.message.contains("over plain text"), "{}", e.message);
        assert!(e.message.contains("--smtp-starttls"), "{}", e.message);
        assert!(!e.message.contains("hunter2"));

        for (flag, security) in [
            ("--smtp-starttls", SmtpSecurity::StartTls),
            ("--smtp-tls", SmtpSecurity::Tls),
        ] {
            let mut args = login.to_vec();
            args.push(flag);
            let config = hub_args(&args)
                .expect("parses")
                .smtp()
                .expect("accepted")
                .expect("configured");
            assert_eq!(config.security, security);
            let l = config.login.as_ref().expect("login");
            assert_eq!(
                (l.user.as_str(), l.password.expose()),
                ("hub", "hunter2 hunter2")
            );
            assert!(!format!("{config:?}").contains("hunter2"), "redacted");
            assert!(config.check().is_ok());
        }

        // No login: plain SMTP to a local relay stays allowed.
        let plain = hub_args(&[])
            .expect("parses")
            .smtp()
            .expect("ok")
            .expect("set");
        assert_eq!((plain.security, plain.login), (SmtpSecurity::Plain, None));
        // The password is never a flag; a user without a password file, and both TLS modes
        // at once, are usage errors.
        assert!(hub_args(&["--smtp-password", "x"]).is_err());
        assert!(hub_args(&["--smtp-user", "hub", "--smtp-tls"]).is_err());
        assert!(hub_args(&["--smtp-tls", "--smtp-starttls"]).is_err());
        // An empty password file is refused in words.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let e = hub_args(&[
            "--smtp-tls",
            "--smtp-user",
            "hub",
            "--smtp-password-file",
            empty.to_str().expect("utf-8"),
        ])
        .expect("parses")
        .smtp()
        .expect_err("empty");
        assert!(e.message.contains("empty"), "{}", e.message);
    }

    #[test]
    fn huge_durations_are_refused_not_a_panic() {
        for huge in [
            "9223372036854775807s",
            "9223372036854775807m",
            "9223372036854775807h",
            "153722867280912931m",
            "2562047788015216h",
            "99999999999999999999999h",
        ] {
            let e = parse_duration(huge).expect_err(huge);
            assert!(e.contains("between 1 s and 24 h"), "{huge}: {e}");
        }
        assert_eq!(parse_duration("24h"), Ok(chrono::TimeDelta::days(1)));
        assert_eq!(parse_duration("86400s"), Ok(chrono::TimeDelta::days(1)));
        assert!(parse_duration("86401s").is_err());
    }
}
