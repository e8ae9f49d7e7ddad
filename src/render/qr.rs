//! A QR code as terminal text: two modules per cell, one above the other (upper half block),
//! with a one-module quiet zone. Used for the 2FA enrolment (the console and `ctl 2fa enable`).

use qrcode::{Color, EcLevel, QrCode};

/// The modules of a QR code for `data`, dark = `true`, with a `quiet`-module light border.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrModules {
    pub width: usize,
    pub dark: Vec<bool>,
}

impl QrModules {
    pub fn new(data: &str, quiet: usize) -> Result<Self, String> {
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L)
            .map_err(|e| format!("cannot make a QR code: {e}"))?;
        let inner = code.width();
        let colors = code.to_colors();
        let width = inner + 2 * quiet;
        let mut dark = vec![false; width * width];
        for y in 0..inner {
            for x in 0..inner {
                dark[(y + quiet) * width + x + quiet] = colors[y * inner + x] == Color::Dark;
            }
        }
        Ok(Self { width, dark })
    }

    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// Rows of cells: (top dark, bottom dark) per cell; `ceil(width / 2)` rows.
    pub fn cells(&self) -> Vec<Vec<(bool, bool)>> {
        (0..self.width.div_ceil(2))
            .map(|row| {
                (0..self.width)
                    .map(|x| (self.is_dark(x, 2 * row), self.is_dark(x, 2 * row + 1)))
                    .collect()
            })
            .collect()
    }

    /// Plain text for a dark terminal (as `qrencode -t UTF8`): light modules are drawn.
    pub fn text_lines(&self) -> Vec<String> {
        self.cells()
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|(top, bottom)| match (!top, !bottom) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otpauth_uri_fits_a_small_terminal() {
        let uri =
            "otpauth://totp/Tether:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tether";
        let qr = QrModules::new(uri, 1).expect("qr");
        assert!(qr.width <= 41, "{} modules", qr.width);
        let lines = qr.text_lines();
        assert_eq!(lines.len(), qr.width.div_ceil(2));
        assert!(lines.len() <= 21, "fits 24 rows with a border");
        // The quiet zone is light: drawn as full blocks on the first line.
        assert!(lines[0].chars().all(|c| c == '█' || c == '▀'));
        // The top-left finder pattern: a dark 7x7 ring one module in.
        assert!(qr.is_dark(1, 1) && qr.is_dark(7, 1) && qr.is_dark(1, 7));
        assert!(!qr.is_dark(2, 2) && qr.is_dark(3, 3));
    }
}
