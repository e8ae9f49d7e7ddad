//! The `x11` source (placeholder while it is written).
use super::{Screen, ScreenError};
pub(super) async fn start(_display: Option<&str>) -> Result<Screen, ScreenError> {
    Err(ScreenError::NoScreen)
}
