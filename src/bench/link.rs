//! `tether bench link` (to be written).

use super::Report;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: &Args) -> anyhow::Result<Report> {
    anyhow::bail!("tether bench link is not written yet")
}
