//! `tether bench console` (to be written).

use super::Report;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<Report> {
    anyhow::bail!("tether bench console is not written yet")
}
