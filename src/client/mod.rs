//! A technician's side of the hub: the typed connection used by `ctl` and the console, and the
//! local login store (tokens per hub, pinned certificates).

pub mod store;
