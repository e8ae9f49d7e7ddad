//! The kitty graphics protocol: the picture is transmitted and placed once under an image id,
//! then edited in place: each damaged rectangle is sent as a frame edit of the root frame
//! (`a=f,r=1,x,y,s,v`), followed by `a=a,c=1` so kitty shows the edited frame. Pixels are
//! 24-bit RGB, zlib-compressed (`o=z`), base64 in chunks of at most 4096 bytes, and quiet
//! (`q=2`: the terminal never answers, so nothing arrives on our input).

use std::io::Write;

use base64::Engine;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use ratatui::layout::Rect as CellRect;

use super::scale::{merge_overlapping, scale_damaged, scale_into};
use super::sixel::{PaneOrigin, move_to, tmux_wrap};
use crate::frame::{Framebuffer, Rect};

/// Largest base64 payload in one escape sequence, as the protocol requires.
pub const CHUNK: usize = 4096;

/// RGB bytes of a picture (kitty's `f=24`).
fn rgb(img: &Framebuffer) -> Vec<u8> {
    let mut out = Vec::with_capacity(img.as_rgba().len() / 4 * 3);
    for px in img.as_rgba().chunks_exact(4) {
        out.extend_from_slice(&px[..3]);
    }
    out
}

/// Append a graphics command carrying `data` zlib-compressed and base64-encoded, split into
/// chunks: the first chunk carries `control`, the rest only `m` and `q`.
pub fn command(control: &str, data: &[u8], tmux: bool, out: &mut Vec<u8>) {
    let mut z = ZlibEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail; an error here would only mean an empty payload.
    let compressed = z
        .write_all(data)
        .and_then(|()| z.finish())
        .unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(compressed);
    let chunks: Vec<&[u8]> = if b64.is_empty() {
        vec![&[][..]]
    } else {
        b64.as_bytes().chunks(CHUNK).collect()
    };
    let mut seq = Vec::with_capacity(b64.len() + chunks.len() * 32 + control.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i + 1 < chunks.len());
        seq.clear();
        seq.extend_from_slice(b"\x1b_G");
        if i == 0 {
            seq.extend_from_slice(control.as_bytes());
            let _ = write!(seq, ",o=z,q=2,m={more}");
        } else {
            let _ = write!(seq, "q=2,m={more}");
        }
        seq.push(b';');
        seq.extend_from_slice(chunk);
        seq.extend_from_slice(b"\x1b\\");
        if tmux {
            tmux_wrap(&seq, out);
        } else {
            out.extend_from_slice(&seq);
        }
    }
}

/// A command without data.
fn plain(control: &str, tmux: bool, out: &mut Vec<u8>) {
    let seq = format!("\x1b_G{control},q=2\x1b\\");
    if tmux {
        tmux_wrap(seq.as_bytes(), out);
    } else {
        out.extend_from_slice(seq.as_bytes());
    }
}

/// A picture shown with the kitty graphics protocol on a terminal area, kept between frames.
#[derive(Debug, Clone)]
pub struct KittyView {
    id: u32,
    area: CellRect,
    scaled: Framebuffer,
    placed: bool,
    tmux: bool,
    /// Inside tmux: where its pane starts on the outer terminal (see [`PaneOrigin`]).
    tmux_pane: PaneOrigin,
}

impl KittyView {
    /// A view with image id `id` (non-zero, unique on the terminal) shown on `area` (cells)
    /// from a picture of `width` x `height` pixels (the area's size in terminal pixels, or
    /// less to save bandwidth: the terminal stretches it to the area).
    pub fn new(id: u32, area: CellRect, width: u32, height: u32) -> Self {
        Self {
            id: id.max(1),
            area,
            scaled: Framebuffer::new(width.max(1), height.max(1)),
            placed: false,
            tmux: false,
            tmux_pane: PaneOrigin::default(),
        }
    }

    /// Wrap commands for tmux's passthrough to the terminal tmux runs in, where the pane starts
    /// at `pane`; `None` writes them plainly.
    pub fn set_tmux_pane(&mut self, pane: Option<PaneOrigin>) {
        self.tmux = pane.is_some();
        self.tmux_pane = pane.unwrap_or_default();
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn area(&self) -> CellRect {
        self.area
    }

    pub fn scaled(&self) -> &Framebuffer {
        &self.scaled
    }

    /// Scale all of `src` and send it: transmitted and placed the first time, edited in place
    /// afterwards (the placement stays, so nothing flickers).
    pub fn render(&mut self, src: &Framebuffer, out: &mut Vec<u8>) {
        scale_into(src, &mut self.scaled);
        if self.placed {
            let all = self.scaled.bounds();
            self.edit(&[all], out);
            return;
        }
        let (w, h) = (self.scaled.width(), self.scaled.height());
        if self.tmux {
            // tmux places passed-through bytes at its own idea of the outer cursor: the move
            // goes through too, in outer coordinates.
            let mut at = Vec::new();
            move_to(
                &mut at,
                self.tmux_pane.col.saturating_add(self.area.x),
                self.tmux_pane.row.saturating_add(self.area.y),
            );
            tmux_wrap(&at, out);
        } else {
            move_to(out, self.area.x, self.area.y);
        }
        // C=1: the cursor stays put, so placing the image can never scroll the screen.
        let control = format!(
            "a=T,i={},f=24,s={w},v={h},c={},r={},C=1",
            self.id, self.area.width, self.area.height
        );
        command(&control, &rgb(&self.scaled), self.tmux, out);
        self.placed = true;
    }

    /// Re-scale what source `damage` touches and send only those rectangles as edits.
    pub fn render_damage(&mut self, src: &Framebuffer, damage: &[Rect], out: &mut Vec<u8>) {
        if !self.placed {
            self.render(src, out);
            return;
        }
        let touched = scale_damaged(src, &mut self.scaled, damage);
        self.edit(&merge_overlapping(touched), out);
    }

    fn edit(&mut self, rects: &[Rect], out: &mut Vec<u8>) {
        if rects.is_empty() {
            return;
        }
        for r in rects {
            let control = format!(
                "a=f,r=1,i={},f=24,x={},y={},s={},v={}",
                self.id, r.x, r.y, r.width, r.height
            );
            command(&control, &rgb(&self.scaled.crop(*r)), self.tmux, out);
        }
        // Show the edited root frame.
        plain(&format!("a=a,c=1,i={}", self.id), self.tmux, out);
    }

    /// Remove the image and its placement from the terminal.
    pub fn delete(&mut self, out: &mut Vec<u8>) {
        plain(&format!("a=d,d=I,i={}", self.id), self.tmux, out);
        self.placed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_tmux_the_placement_moves_the_outer_cursor() {
        let mut view = KittyView::new(5, CellRect::new(2, 1, 8, 4), 80, 80);
        view.set_tmux_pane(Some(PaneOrigin { col: 40, row: 3 }));
        let mut out = Vec::new();
        view.render(&Framebuffer::new(80, 80), &mut out);
        assert!(
            out.starts_with(b"\x1bPtmux;\x1b\x1b[5;43H\x1b\\\x1bPtmux;\x1b\x1b_Ga=T"),
            "{:?}",
            String::from_utf8_lossy(&out[..40])
        );
    }

    #[test]
    fn chunks_stay_under_the_limit() {
        // Noise does not compress, so it takes many chunks.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let data: Vec<u8> = (0..100_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let mut out = Vec::new();
        command("a=t,i=7,f=24,s=1,v=1", &data, false, &mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let seqs: Vec<&str> = text.split("\x1b\\").filter(|s| !s.is_empty()).collect();
        assert!(seqs.len() > 20);
        for (i, s) in seqs.iter().enumerate() {
            let (control, payload) = s.split_once(';').unwrap_or_default();
            assert!(payload.len() <= CHUNK);
            let last = i + 1 == seqs.len();
            assert!(
                control.ends_with(if last { "m=0" } else { "m=1" }),
                "{control}"
            );
            if i == 0 {
                assert!(control.starts_with("\x1b_Ga=t,i=7"));
                assert!(control.contains("o=z,q=2"));
            } else {
                assert_eq!(control, format!("\x1b_Gq=2,m={}", u8::from(!last)));
            }
        }
    }
}
