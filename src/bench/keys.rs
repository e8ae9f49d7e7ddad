//! `tether bench keys` (to be written).

use super::Report;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: &Args) -> anyhow::Result<Report> {
    anyhow::bail!("tether bench keys is not written yet")
}
