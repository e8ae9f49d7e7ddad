//! `tether bench hub` (to be written).

use super::Report;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: &Args) -> anyhow::Result<Report> {
    anyhow::bail!("tether bench hub is not written yet")
}
