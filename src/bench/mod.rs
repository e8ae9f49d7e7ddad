//! `tether bench`: what users feel, measured end to end on real TLS WebSockets over loopback with
//! the real protocol. One command, one subcommand per figure; each prints a table (or `--json`).
//!
//! - `keys`: a key typed into a real console (driven through a pseudo-terminal) until the remote
//!   shell's echo is drawn.
//! - `hub --agents N`: connect rate, memory per agent, presence fan-out, a reconnect storm.
//! - `link --rtt 100ms --rate 10mbit`: a window drag through a delaying, rate-limiting proxy.
//! - `viewers --count N`: what each extra viewer of one screen costs agent and hub.
//! - `console --rows N`: the console's own `update` + `draw` at a desk's size.
//! - `logins --concurrent 500`: a wrong-login flood: the hub's memory and a valid login's wait.

mod console;
mod hub;
pub mod keys;
mod link;
mod logins;
pub mod rig;
mod viewers;

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Print the figures as one JSON object instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub what: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Key -> echo through a real console in a pseudo-terminal and a real PTY terminal session.
    Keys(keys::Args),
    /// Many lightweight agents on one hub: memory, presence fan-out, reconnect storm.
    Hub(hub::Args),
    /// A window drag through a delaying, rate-limiting proxy: fps, link use, latency.
    Link(link::Args),
    /// Agent and hub cost per viewer of one screen.
    Viewers(viewers::Args),
    /// The console's update and draw with many rows: filter, event and draw times.
    Console(console::Args),
    /// Concurrent wrong logins: the hub's memory and a valid login's latency meanwhile.
    Logins(logins::Args),
}

/// One bench's figures: a title and rows of (figure, measured, goal).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bench: String,
    /// What was measured and how, in one line (shown above the table).
    pub setup: String,
    pub rows: Vec<Figure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub figure: String,
    pub measured: String,
    /// The raw number behind `measured`, in `unit` (for `--json` consumers).
    pub value: f64,
    pub unit: String,
    /// The goal, where the issue sets one ("" where it does not).
    pub goal: String,
}

impl Report {
    pub fn new(bench: &str, setup: impl Into<String>) -> Self {
        Self {
            bench: bench.to_owned(),
            setup: setup.into(),
            rows: Vec::new(),
        }
    }

    /// Add a figure; `measured` is formatted from `value` and `unit`.
    pub fn add(&mut self, figure: impl Into<String>, value: f64, unit: &str, goal: &str) {
        let measured = match unit {
            "ms" => format!("{value:.2} ms"),
            "us" => format!("{value:.1} µs"),
            "%" => format!("{value:.1} %"),
            "MB" => format!("{value:.1} MB"),
            "KB" => format!("{value:.1} KB"),
            "fps" => format!("{value:.1} fps"),
            "/s" => format!("{value:.0} /s"),
            "s" => format!("{value:.2} s"),
            "" => format!("{value}"),
            other => format!("{value:.2} {other}"),
        };
        self.rows.push(Figure {
            figure: figure.into(),
            measured,
            value,
            unit: unit.to_owned(),
            goal: goal.to_owned(),
        });
    }

    /// The median and 99th percentile of `samples` (sorted here), as "NAME, p50" and
    /// "NAME, p99" in milliseconds, with their goals.
    pub fn add_p50_p99(&mut self, name: &str, samples: &mut [Duration], goals: (&str, &str)) {
        samples.sort();
        self.add(
            format!("{name}, p50"),
            ms(percentile(samples, 50.0)),
            "ms",
            goals.0,
        );
        self.add(
            format!("{name}, p99"),
            ms(percentile(samples, 99.0)),
            "ms",
            goals.1,
        );
    }

    /// The table as text: one line per figure, columns aligned.
    pub fn table(&self) -> String {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.figure.chars().count())
            .max()
            .unwrap_or(0)
            .max("figure".len());
        let w1 = self
            .rows
            .iter()
            .map(|r| r.measured.chars().count())
            .max()
            .unwrap_or(0)
            .max("measured".len());
        let mut out = format!("tether bench {}: {}\n\n", self.bench, self.setup);
        out.push_str(&format!("{:<w0$}  {:>w1$}  goal\n", "figure", "measured"));
        for r in &self.rows {
            out.push_str(&format!(
                "{:<w0$}  {:>w1$}  {}\n",
                r.figure, r.measured, r.goal
            ));
        }
        out
    }
}

/// Milliseconds of a duration, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p`-th percentile (0..=100) of sorted samples (nearest rank); zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Run one bench and print its report.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = match &args.what {
        BenchCommand::Console(a) => console::run(a)?,
        other => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                match other {
                    BenchCommand::Keys(a) => keys::run(a).await,
                    BenchCommand::Hub(a) => hub::run(a).await,
                    BenchCommand::Link(a) => link::run(a).await,
                    BenchCommand::Viewers(a) => viewers::run(a).await,
                    BenchCommand::Logins(a) => logins::run(a).await,
                    BenchCommand::Console(_) => unreachable!("handled above"),
                }
            })?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let mut r = Report::new("x", "setup");
        r.add("a long figure name", 1.5, "ms", "<= 10 ms");
        r.add("b", 20.0, "fps", "");
        let table = r.table();
        assert!(
            table.contains("a long figure name   1.50 ms  <= 10 ms"),
            "{table}"
        );
        assert!(table.contains("b                   20.0 fps"), "{table}");
    }
}
