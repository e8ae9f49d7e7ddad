//! The `vnc://` source (placeholder while it is written).
use super::{Screen, ScreenError, VncTarget};
pub(super) async fn start(_target: &VncTarget) -> Result<Screen, ScreenError> {
    Err(ScreenError::NoScreen)
}
